//! `/api/v1/studies` and their sub-resources (patients, scope requests, clients, data sources).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::input::{Body, id_of, text};
use super::{data_source_view, load_org, patient_view, practitioner_only, study_view, visible_study};
use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::{Repo, keys};

pub async fn list(repo: &Repo, c: &Caller, org: Option<Id>) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    let orgs: Vec<Id> = match org {
        Some(o) => {
            load_org(repo, o).await?;
            if !access::is_in_org(c, o) {
                return Err(Error::Forbidden(format!("You do not have access to Organization/{o}.")));
            }
            vec![o]
        }
        None => match access::listing_reach(c) {
            access::Reach::All => repo.list_orgs().await?.iter().map(|o| o.id).collect(),
            access::Reach::Orgs(orgs) => orgs,
        },
    };
    let mut ids = BTreeSet::new();
    for o in orgs {
        ids.extend(repo.org_study_ids(o).await?);
    }
    let mut studies = repo.studies(&ids.into_iter().collect::<Vec<_>>()).await?;
    studies.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
    let mut out = Vec::new();
    for s in &studies {
        out.push(to_value(&study_view(repo, s).await?));
    }
    Ok(out)
}

pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    practitioner_only(c)?;
    let s = visible_study(repo, c, id).await?;
    Ok(to_value(&study_view(repo, &s).await?))
}

pub async fn create(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    let org = match body.opt_id("organization")? {
        Some(o) => o,
        None => body.opt_id("organization_id")?.ok_or_else(|| Error::bad("organization is required."))?,
    };
    if !access::may_manage_patients_and_studies(c, org) {
        return Err(Error::forbidden());
    }
    load_org(repo, org).await.map_err(|_| Error::bad("Organization not found."))?;
    let s = Study {
        id: repo.next_id("study").await?,
        name: text(body.req_str("name")?, "name", 200)?,
        description: body.opt_str("description")?.unwrap_or_default(),
        organization_id: org,
        icon_url: body.opt_str("icon_url")?,
    };
    repo.create_study(&s).await?;
    Ok(to_value(&StudyFlat::from(&s)))
}

async fn managed_study(repo: &Repo, c: &Caller, id: Id) -> Result<Study> {
    let s = repo.study(id).await?.ok_or_else(Error::not_found)?;
    if !access::may_manage_patients_and_studies(c, s.organization_id) {
        return Err(Error::forbidden());
    }
    Ok(s)
}

pub async fn update(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    let mut s = managed_study(repo, c, id).await?;
    if let Some(n) = body.opt_str("name")? {
        s.name = text(n, "name", 200)?;
    }
    if let Some(d) = body.opt_str("description")? {
        s.description = d;
    }
    if body.get("icon_url").is_some() {
        s.icon_url = body.opt_str("icon_url")?;
    }
    let org = match body.get("organization") {
        Some(Value::Object(o)) => o.get("id").and_then(id_of),
        Some(v) => id_of(v),
        None => None,
    };
    if org.is_some_and(|o| o != s.organization_id) {
        return Err(Error::bad("A study cannot move to another organization."));
    }
    repo.save_study(&s).await?;
    Ok(to_value(&StudyFlat::from(&s)))
}

pub async fn delete(repo: &Repo, c: &Caller, id: Id) -> Result<()> {
    let s = managed_study(repo, c, id).await?;
    repo.delete_study(&s).await
}

// ------------------------------------------------------------------- enrolled patients

pub async fn patients(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    let s = visible_study(repo, c, id).await?;
    let mut out = Vec::new();
    let added: BTreeSet<Id> = repo.org_added_patient_ids(s.organization_id).await?.into_iter().collect();
    for p in repo.study_patient_ids(s.id).await? {
        if added.contains(&p) {
            // Added by this organization, not consented here yet: it sees that they are
            // enrolled, nothing of them.
            out.push(json!({"id": p, "pendingConsent": true}));
        } else if let Some(p) = repo.patient(p).await? {
            out.push(to_value(&patient_view(repo, &p).await?));
        }
    }
    Ok(out)
}

pub async fn add_patients(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    let s = managed_study(repo, c, id).await?;
    let ids = body.id_list("patient_ids")?;
    // The organization's patients, and those it added that have yet to consent here (enrolling
    // them is how the study's request reaches them).
    let mut org_patients: BTreeSet<Id> = repo.org_patient_ids(s.organization_id).await?.into_iter().collect();
    org_patients.extend(repo.org_added_patient_ids(s.organization_id).await?);
    for p in &ids {
        if repo.patient(*p).await?.is_none() {
            return Err(Error::bad(format!("Patient {p} does not exist.")));
        }
        if !org_patients.contains(p) {
            return Err(Error::bad(format!("Patient {p} is not in the study's organization.")));
        }
    }
    let unique: Vec<Id> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    repo.enrol(s.id, &unique).await?;
    let sv = to_value(&study_view(repo, &s).await?);
    let mut rows = Vec::new();
    for p in unique {
        if let Some(p) = repo.patient(p).await? {
            rows.push(json!({"study": sv, "patient": to_value(&patient_view(repo, &p).await?)}));
        }
    }
    Ok(json!({ "studyPatients": rows }))
}

pub async fn remove_patients(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<()> {
    let s = managed_study(repo, c, id).await?;
    let ids = body.id_list("patient_ids")?;
    repo.unenrol(s.id, &ids).await
}

// ------------------------------------------------------------------- scope requests

pub async fn scope_requests(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    let s = visible_study(repo, c, id).await?;
    let sv = to_value(&StudyFlat::from(&s));
    let codes = repo.codes(&repo.linked_ids(&keys::study(id), "C#").await?).await?;
    Ok(codes
        .iter()
        .map(|code| json!({"id": code.id, "study": sv, "scopeCode": to_value(&CodeView::from(code))}))
        .collect())
}

pub async fn set_scope_request(repo: &Repo, c: &Caller, id: Id, body: &Body, present: bool) -> Result<Value> {
    let s = managed_study(repo, c, id).await?;
    let code_id = body.opt_id("scope_code_id")?.ok_or_else(|| Error::bad("scopeCodeId is required."))?;
    let code = repo.code(code_id).await?.ok_or_else(|| Error::bad(format!("Scope code {code_id} does not exist.")))?;
    if !present {
        // Decisions first: a crash in between leaves the scope requested and pending, never a
        // grant that a later request would bring back.
        repo.forget_scope_consents(id, code_id).await?;
    }
    repo.set_link(&keys::study(id), "C#", code_id, present).await?;
    Ok(json!({"id": code.id, "study": to_value(&StudyFlat::from(&s)), "scopeCode": to_value(&CodeView::from(&code))}))
}

// ------------------------------------------------------------------- clients

pub async fn clients(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    let s = visible_study(repo, c, id).await?;
    let sv = to_value(&StudyFlat::from(&s));
    let mut out = Vec::new();
    for cid in repo.linked_ids(&keys::study(id), "L#").await? {
        if let Some(cl) = repo.client(cid).await? {
            out.push(json!({"id": cl.id, "study": sv, "client": to_value(&ClientView::from(&cl))}));
        }
    }
    Ok(out)
}

pub async fn set_client(repo: &Repo, c: &Caller, id: Id, body: &Body, present: bool) -> Result<Value> {
    let s = managed_study(repo, c, id).await?;
    let cid = body.opt_id("client_id")?.ok_or_else(|| Error::bad("clientId is required (the client's numeric id)."))?;
    let cl = repo.client(cid).await?.filter(|c| c.kind == ClientKind::PatientApp);
    let cl = cl.ok_or_else(|| Error::bad(format!("Client {cid} is not a patient app.")))?;
    repo.set_link(&keys::study(id), "L#", cid, present).await?;
    Ok(json!({"id": cl.id, "study": to_value(&StudyFlat::from(&s)), "client": to_value(&ClientView::from(&cl))}))
}

// ------------------------------------------------------------------- data sources

pub async fn data_sources(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    let s = visible_study(repo, c, id).await?;
    let sv = to_value(&StudyFlat::from(&s));
    let mut out = Vec::new();
    for d in repo.linked_ids(&keys::study(id), "D#").await? {
        if let Some(ds) = repo.data_source(d).await? {
            out.push(json!({"id": ds.id, "study": sv, "dataSource": to_value(&data_source_view(repo, &ds).await?)}));
        }
    }
    Ok(out)
}

pub async fn set_data_source(repo: &Repo, c: &Caller, id: Id, body: &Body, present: bool) -> Result<Value> {
    let s = managed_study(repo, c, id).await?;
    let did = body.opt_id("data_source_id")?.ok_or_else(|| Error::bad("dataSourceId is required."))?;
    let ds = repo.data_source(did).await?.ok_or_else(|| Error::bad(format!("Data source {did} does not exist.")))?;
    repo.set_link(&keys::study(id), "D#", did, present).await?;
    Ok(
        json!({"id": ds.id, "study": to_value(&StudyFlat::from(&s)), "dataSource": to_value(&data_source_view(repo, &ds).await?)}),
    )
}
