//! `/api/v1/patients` (records, organizations, consolidated clients).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::input::{Body, Params, camel, param_id, valid_date, valid_email};
use super::{load_org, patient_view, practitioner_only, visible_patient, visible_study};
use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::{NewPatient, Repo};

/// The longest name and phone number a patient record keeps, in characters.
const MAX_NAME: usize = 150;
const MAX_PHONE: usize = 32;

/// An optional text field, refused when longer than `max` characters.
fn bounded(body: &Body, field: &str, max: usize) -> Result<Option<String>> {
    match body.opt_str(field)? {
        Some(v) if v.chars().count() > max => {
            Err(Error::bad(format!("{} is longer than {max} characters.", camel(field))))
        }
        other => Ok(other),
    }
}

/// Identifiers one patient may carry (each is a key written in the patient's transaction).
const MAX_PATIENT_IDENTIFIERS: usize = 20;

fn identifiers(body: &Body) -> Result<Option<Vec<(String, String)>>> {
    match body.get("identifiers") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            if a.len() > MAX_PATIENT_IDENTIFIERS {
                return Err(Error::bad(format!("At most {MAX_PATIENT_IDENTIFIERS} identifiers are accepted.")));
            }
            let mut out: Vec<(String, String)> = Vec::new();
            for v in a {
                let s = v.get("system").and_then(Value::as_str).map(str::trim).unwrap_or("");
                let val = v.get("value").and_then(Value::as_str).map(str::trim).unwrap_or("");
                if s.is_empty() || val.is_empty() {
                    return Err(Error::bad("Each identifier needs a non-blank system and value."));
                }
                // What a store key can hold, as for observation identifiers.
                crate::model::check_identifier(s, val).map_err(Error::BadRequest)?;
                if !out.iter().any(|(a, b)| a == s && b == val) {
                    out.push((s.to_string(), val.to_string()));
                }
            }
            Ok(Some(out))
        }
        Some(_) => Err(Error::bad("identifiers must be a list of {system, value}.")),
    }
}

fn birth_date(body: &Body) -> Result<Option<String>> {
    match body.opt_str("birth_date")? {
        Some(d) if !d.is_empty() => {
            if valid_date(&d) {
                Ok(Some(d))
            } else {
                Err(Error::bad("Enter a valid birth date (YYYY-MM-DD)."))
            }
        }
        _ => Ok(None),
    }
}

/// `GET /patients`: patients sharing an organization with the caller, narrowed by filters.
pub async fn list(repo: &Repo, c: &Caller, q: &Params) -> Result<Vec<Value>> {
    if !access::is_practitioner(c) {
        // A patient sees only themself.
        return match access::patient_self(c) {
            Some(p) => match repo.patient(p).await? {
                Some(p) => Ok(vec![to_value(&patient_view(repo, &p).await?)]),
                None => Ok(vec![]),
            },
            None => Ok(vec![]),
        };
    }
    let org = param_id(q, "organization_id")?;
    let study = param_id(q, "study_id")?;
    let only = param_id(q, "patient_id")?;
    let ident = q.get("patient_identifier_value").filter(|v| !v.is_empty());
    let mut ids: BTreeSet<Id> = BTreeSet::new();
    if let Some(o) = org {
        load_org(repo, o).await?;
        if !access::is_in_org(c, o) {
            return Err(Error::Forbidden(format!("You do not have access to Organization/{o}.")));
        }
        ids.extend(repo.org_patient_ids(o).await?);
    } else {
        match access::listing_reach(c) {
            access::Reach::All => ids.extend(repo.list_all_patients().await?.iter().map(|p| p.id)),
            access::Reach::Orgs(orgs) => {
                for o in orgs {
                    ids.extend(repo.org_patient_ids(o).await?);
                }
            }
        }
    }
    if let Some(s) = study {
        let s = visible_study(repo, c, s).await?;
        let enrolled: BTreeSet<Id> = repo.study_patient_ids(s.id).await?.into_iter().collect();
        ids.retain(|p| enrolled.contains(p));
    }
    if let Some(p) = only {
        ids.retain(|x| *x == p);
    }
    let mut out = Vec::new();
    for id in ids {
        let Some(p) = repo.patient(id).await? else { continue };
        if let Some(v) = ident
            && !p.identifiers.iter().any(|i| i.value == *v)
        {
            continue;
        }
        out.push(to_value(&patient_view(repo, &p).await?));
    }
    Ok(out)
}

pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    let (p, _) = visible_patient(repo, c, id).await?;
    Ok(to_value(&patient_view(repo, &p).await?))
}

/// `GET /patients/me`.
pub async fn me(repo: &Repo, c: &Caller) -> Result<Value> {
    let id = c.patient_id().ok_or_else(|| Error::Forbidden("Only patients have a patient record.".into()))?;
    get(repo, c, id).await
}

pub async fn create(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    let org = body.opt_id("organization_id")?.ok_or_else(|| Error::bad("organizationId is required."))?;
    if !access::may_manage_patients_and_studies(c, org) {
        return Err(Error::forbidden());
    }
    load_org(repo, org).await.map_err(|_| Error::bad("Organization not found."))?;
    let email = body.opt_str("telecom_email")?.map(|e| e.trim().to_lowercase()).unwrap_or_default();
    if email.is_empty() {
        return Err(Error::bad("Email is required to create a patient."));
    }
    if !valid_email(&email) {
        return Err(Error::bad("Enter a valid email address."));
    }
    let np = NewPatient {
        email,
        name_family: bounded(body, "name_family", MAX_NAME)?.map(|s| s.trim().to_string()),
        name_given: bounded(body, "name_given", MAX_NAME)?.map(|s| s.trim().to_string()),
        birth_date: birth_date(body)?,
        telecom_phone: bounded(body, "telecom_phone", MAX_PHONE)?,
        identifiers: identifiers(body)?.unwrap_or_default(),
        organization_id: org,
    };
    let p = repo.create_patient(np).await?;
    Ok(to_value(&patient_view(repo, &p).await?))
}

/// Which organization a write acts through: the one named (it must be the patient's), or any of
/// the patient's organizations where the caller may manage patients.
fn acting_org(c: &Caller, orgs: &[Id], named: Option<Id>) -> Result<()> {
    match named {
        Some(o) if !orgs.contains(&o) => Err(Error::bad(format!("The patient is not in organization {o}."))),
        Some(o) if !access::may_manage_patients_and_studies(c, o) => Err(Error::forbidden()),
        Some(_) => Ok(()),
        None if access::may_manage_patient(c, orgs) => Ok(()),
        None => Err(Error::forbidden()),
    }
}

pub async fn update(repo: &Repo, c: &Caller, id: Id, q: &Params, body: &Body) -> Result<Value> {
    let (mut p, orgs) = visible_patient(repo, c, id).await?;
    acting_org(c, &orgs, param_id(q, "organization_id")?)?;
    if body.get("name_family").is_some() {
        p.name_family = bounded(body, "name_family", MAX_NAME)?;
    }
    if body.get("name_given").is_some() {
        p.name_given = bounded(body, "name_given", MAX_NAME)?;
    }
    if body.get("birth_date").is_some() {
        p.birth_date = birth_date(body)?;
    }
    if body.get("telecom_phone").is_some() {
        p.telecom_phone = bounded(body, "telecom_phone", MAX_PHONE)?;
    }
    let idents = identifiers(body)?;
    let p = repo.update_patient(p, idents).await?;
    Ok(to_value(&patient_view(repo, &p).await?))
}

/// `DELETE /patients/{id}?organizationId=`: removes the patient from that organization. Returns
/// the accounts deleted (the patient's user, when this was their last organization).
pub async fn delete(repo: &Repo, c: &Caller, id: Id, q: &Params) -> Result<Vec<GoneAccount>> {
    let org = param_id(q, "organization_id")?.ok_or_else(|| Error::bad("organizationId required"))?;
    let (_, orgs) = visible_patient(repo, c, id).await?;
    acting_org(c, &orgs, Some(org))?;
    repo.remove_patient_from_org(id, org).await
}

/// `GET /patients/global_lookup?email=`: find an existing patient to add to one's organization.
pub async fn global_lookup(repo: &Repo, c: &Caller, email: Option<&str>) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    if !access::may_add_existing_patients(c) {
        return Err(Error::forbidden());
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty()).ok_or_else(|| Error::bad("email is required."))?;
    let Some(u) = repo.user_by_email(email).await? else { return Ok(vec![]) };
    let Some(pid) = u.patient_id else { return Ok(vec![]) };
    let Some(p) = repo.patient(pid).await? else { return Ok(vec![]) };
    // A patient of the caller's organizations reads as everywhere else; anyone else's only as
    // far as adding them needs: that they exist, and their id.
    if access::may_see_patient(c, pid, &repo.patient_org_ids(pid).await?) {
        Ok(vec![to_value(&patient_view(repo, &p).await?)])
    } else {
        Ok(vec![json!({"id": pid})])
    }
}

/// `PATCH /patients/{id}/global_add_organization?organizationId=`.
pub async fn add_organization(repo: &Repo, c: &Caller, id: Id, q: &Params, body: &Body) -> Result<Value> {
    let org = match param_id(q, "organization_id")? {
        Some(o) => o,
        None => body.opt_id("organization_id")?.ok_or_else(|| Error::bad("organizationId required"))?,
    };
    if !access::may_manage_patients_and_studies(c, org) {
        return Err(Error::forbidden());
    }
    let o = load_org(repo, org).await?;
    repo.patient(id).await?.ok_or_else(Error::not_found)?;
    repo.add_patient_org(id, org).await.map_err(|e| match e {
        Error::Conflict(m) => Error::BadRequest(m),
        other => other,
    })?;
    // The organization gets nothing of the patient until they consent in one of its studies.
    Ok(json!({
        "id": id,
        "organizations": [to_value(&OrgView::new(&o, None))],
        "pendingConsent": true,
        "detail": "Added. Enrol the patient in a study of this organization; its practitioners see the patient once the patient consents there.",
    }))
}

/// `GET /patients/{id}/consolidated_clients`: the apps of the patient's studies, with the
/// patient's invitations for each.
pub async fn consolidated_clients(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    visible_patient(repo, c, id).await?;
    let mut client_ids = BTreeSet::new();
    for s in repo.patient_study_ids(id).await? {
        client_ids.extend(repo.linked_ids(&crate::repo::keys::study(s), "L#").await?);
    }
    let invitations = repo.invitations_of(id).await?;
    let mut out = Vec::new();
    for cid in client_ids {
        let Some(client) = repo.client(cid).await? else { continue };
        let mut invs: Vec<&Invitation> = invitations.iter().filter(|i| i.client == cid).collect();
        invs.sort_by_key(|i| std::cmp::Reverse(i.created));
        out.push(json!({
            "id": client.id, "name": client.name, "clientId": client.client_id,
            "invitationUrl": client.invitation_url,
            "patientInvitations": invs.iter().map(|i| to_value(&InvitationView::from(*i))).collect::<Vec<_>>(),
        }));
    }
    Ok(out)
}
