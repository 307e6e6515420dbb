//! The admin services: one function per admin operation, called by the HTTP routers with the
//! verified caller and the parsed input. Access rules come from `crate::access`.
//!
//! Must not depend on: axum, lambda_http, aws_sdk_*.

pub mod catalog;
pub mod consents;
pub mod input;
pub mod invitations;
pub mod orgs;
pub mod patients;
pub mod studies;
pub mod users;

use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::Repo;

pub async fn load_org(repo: &Repo, id: Id) -> Result<Organization> {
    repo.org(id).await?.ok_or_else(Error::not_found)
}

pub async fn org_view(repo: &Repo, c: &Caller, id: Id) -> Result<OrgView> {
    let o = load_org(repo, id).await?;
    Ok(OrgView::new(&o, access::role_label(c, o.id)))
}

/// A patient as the admin API shows it; `role_for` decides whether nested organizations carry
/// the caller's role (upstream leaves it null when nested).
pub async fn patient_view(repo: &Repo, p: &Patient) -> Result<PatientView> {
    let email = match p.user_id {
        Some(u) => repo.user(u).await?.map(|u| u.email),
        None => None,
    };
    let mut organizations = Vec::new();
    for o in repo.patient_org_ids(p.id).await? {
        if let Some(org) = repo.org(o).await? {
            organizations.push(OrgView::new(&org, None));
        }
    }
    Ok(PatientView {
        id: p.id,
        jhe_user_id: p.user_id,
        identifiers: p
            .identifiers
            .iter()
            .map(|i| IdentifierView { id: i.id, system: i.system.clone(), value: i.value.clone() })
            .collect(),
        name_family: p.name_family.clone(),
        name_given: p.name_given.clone(),
        birth_date: p.birth_date.clone(),
        telecom_phone: p.telecom_phone.clone(),
        telecom_email: email,
        organizations,
        last_updated: ts(p.last_updated),
    })
}

pub async fn study_view(repo: &Repo, s: &Study) -> Result<StudyView> {
    let org = load_org(repo, s.organization_id).await?;
    Ok(StudyView {
        id: s.id,
        name: s.name.clone(),
        description: s.description.clone(),
        organization: OrgRef::from(&org),
        icon_url: s.icon_url.clone(),
    })
}

pub async fn data_source_view(repo: &Repo, d: &DataSource) -> Result<DataSourceView> {
    let codes = repo.codes(&repo.supported_scope_ids(d.id).await?).await?;
    Ok(DataSourceView {
        id: d.id,
        name: d.name.clone(),
        ds_type: d.ds_type.clone(),
        supported_scopes: codes.iter().map(CodeView::from).collect(),
    })
}

/// The patient and their organizations, if the caller may see them (403 otherwise, 404 if absent).
pub async fn visible_patient(repo: &Repo, c: &Caller, id: Id) -> Result<(Patient, Vec<Id>)> {
    let p = repo.patient(id).await?.ok_or_else(Error::not_found)?;
    let orgs = repo.patient_org_ids(id).await?;
    if !access::may_see_patient(c, id, &orgs) {
        return Err(Error::forbidden());
    }
    Ok((p, orgs))
}

/// The study, if the caller holds a role in its organization (403 otherwise).
pub async fn visible_study(repo: &Repo, c: &Caller, id: Id) -> Result<Study> {
    let s = repo.study(id).await?.ok_or_else(Error::not_found)?;
    if !access::is_in_org(c, s.organization_id) {
        return Err(Error::forbidden());
    }
    Ok(s)
}

/// Refuses callers who are not practitioners (patients acting as themselves).
pub fn practitioner_only(c: &Caller) -> Result<()> {
    if access::is_practitioner(c) { Ok(()) } else { Err(Error::forbidden()) }
}

pub fn superuser_only(c: &Caller) -> Result<()> {
    if access::is_administrator(c) { Ok(()) } else { Err(Error::forbidden()) }
}
