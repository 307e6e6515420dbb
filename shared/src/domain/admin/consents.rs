//! `/api/v1/patients/{id}/consents`: a patient's decision on each scope each study requests.
//!
//! Pending = the study requests the scope and no decision is recorded; a decision is
//! `consented: true` (with its time) or `false` (refused or revoked). POST and PATCH record
//! decisions (upsert), DELETE removes them (back to pending; without a body, all of them). Every
//! entry is validated and authorized before anything is written, and all of it is written
//! atomically. Granting is the patient's own act (`access::may_change_consent`): a practitioner
//! may record a refusal or a withdrawal, never a grant.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::input::{Body, id_of};
use super::{data_source_view, patient_view, visible_patient};
use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::{Repo, keys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentWrite {
    Create,
    Update,
    Delete,
}

async fn study_json(repo: &Repo, s: &Study) -> Result<Value> {
    let org = repo.org(s.organization_id).await?;
    let mut dss = Vec::new();
    for d in repo.linked_ids(&keys::study(s.id), "D#").await? {
        if let Some(ds) = repo.data_source(d).await? {
            dss.push(to_value(&data_source_view(repo, &ds).await?));
        }
    }
    Ok(json!({
        "id": s.id, "name": s.name, "description": s.description,
        "organization": org.as_ref().map(|o| to_value(&OrgRef::from(o))),
        "iconUrl": s.icon_url, "dataSources": dss,
    }))
}

pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    let (p, _) = visible_patient(repo, c, id).await?;
    let consents = repo.consents(id).await?;
    let decided: BTreeMap<(Id, Id), &Consent> = consents.iter().map(|c| ((c.study_id, c.code_id), c)).collect();
    let mut pending_studies = Vec::new();
    let mut studies = Vec::new();
    for s in repo.studies(&repo.patient_study_ids(id).await?).await? {
        // A practitioner sees the studies of organizations they are in, not the patient's
        // dealings with other organizations.
        if !access::may_see_study_consents(c, id, s.organization_id) {
            continue;
        }
        let requested = repo.codes(&repo.linked_ids(&keys::study(s.id), "C#").await?).await?;
        let mut pending = Vec::new();
        let mut done = Vec::new();
        for code in &requested {
            match decided.get(&(s.id, code.id)) {
                None => pending.push(json!({"code": to_value(&CodeView::from(code)), "consented": null, "consentedTime": null})),
                Some(d) => done.push(json!({"code": to_value(&CodeView::from(code)), "consented": d.consented, "consentedTime": ts(d.consented_time)})),
            }
        }
        if !pending.is_empty() {
            let mut v = study_json(repo, &s).await?;
            v["pendingScopeConsents"] = Value::Array(pending);
            pending_studies.push(v);
        }
        if !done.is_empty() {
            let mut v = study_json(repo, &s).await?;
            v["scopeConsents"] = Value::Array(done);
            studies.push(v);
        }
    }
    let shown: BTreeSet<Id> = studies.iter().chain(&pending_studies).filter_map(|v| v["id"].as_i64()).collect();
    let consented: BTreeSet<Id> =
        consents.iter().filter(|d| d.consented && shown.contains(&d.study_id)).map(|d| d.code_id).collect();
    let consolidated: Vec<Value> = repo
        .codes(&consented.into_iter().collect::<Vec<_>>())
        .await?
        .iter()
        .map(|c| to_value(&CodeView::from(c)))
        .collect();
    Ok(json!({
        "patient": to_value(&patient_view(repo, &p).await?),
        "consolidatedConsentedScopes": consolidated,
        "studiesPendingConsent": pending_studies,
        "studies": studies,
    }))
}

/// `DELETE ...consents` without a body: forget every decision of the patient (the patient only:
/// upstream's `GET ...consents?reset=true`, which changed state on a GET).
pub async fn reset(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    let (_, orgs) = visible_patient(repo, c, id).await?;
    let all = repo.consents(id).await?;
    // Forgetting is the patient's act whatever the study; with no decision there is nothing to check.
    let study_org = match all.first() {
        Some(first) => repo.study(first.study_id).await?.map(|s| s.organization_id).unwrap_or_default(),
        None => 0,
    };
    if !access::may_change_consent(c, id, &orgs, study_org, access::ConsentChange::Forget) {
        return Err(Error::forbidden());
    }
    let n = all.len();
    for chunk in all.chunks(90) {
        let rm: Vec<ConsentKey> = chunk.iter().map(Consent::key).collect();
        repo.write_consents(&[], &rm).await?;
    }
    Ok(json!({ "resetCount": n }))
}

pub async fn write(repo: &Repo, c: &Caller, id: Id, body: &Body, mode: ConsentWrite) -> Result<Value> {
    let (_, patient_orgs) = visible_patient(repo, c, id).await?;
    let entries = match body.get("study_scope_consents") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(Error::bad("studyScopeConsents is required (a non-empty list).")),
    };
    let enrolled: BTreeSet<Id> = repo.patient_study_ids(id).await?.into_iter().collect();
    let now = OffsetDateTime::now_utc();
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for e in entries {
        let study_id = e.get("study_id").and_then(id_of).ok_or_else(|| Error::bad("Each entry needs a studyId."))?;
        let study =
            repo.study(study_id).await?.ok_or_else(|| Error::bad(format!("Study {study_id} does not exist.")))?;
        // Every caller with a role in the study's organization is told what is wrong with the
        // body; whether they may make the change is decided per scope, below.
        if c.patient_id() != Some(id) && !access::is_in_org(c, study.organization_id) {
            return Err(Error::forbidden());
        }
        if !enrolled.contains(&study_id) {
            return Err(Error::bad(format!("Patient {id} is not enrolled in study {study_id}.")));
        }
        let requested: BTreeSet<Id> = repo.linked_ids(&keys::study(study_id), "C#").await?.into_iter().collect();
        let scopes = match e.get("scope_consents") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Err(Error::bad("Each entry needs a non-empty scopeConsents list.")),
        };
        for sc in scopes {
            let system = sc
                .get("coding_system")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::bad("Each scope needs codingSystem."))?;
            let code_s = sc
                .get("coding_code")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::bad("Each scope needs codingCode."))?;
            let code = repo
                .code_by_key(system, code_s)
                .await?
                .ok_or_else(|| Error::bad(format!("Code not found: {system}|{code_s}.")))?;
            if !requested.contains(&code.id) {
                return Err(Error::bad(format!("Study {study_id} does not request scope {system}|{code_s}.")));
            }
            if !seen.insert((study_id, code.id)) {
                return Err(Error::bad(format!("Scope {system}|{code_s} is given twice for study {study_id}.")));
            }
            let sp = json!({"study": study_id, "patient": id});
            if mode == ConsentWrite::Delete {
                changes.push((access::ConsentChange::Forget, study.organization_id));
                remove.push(ConsentKey { patient_id: id, study_id, code_id: code.id });
                out.push(json!({"studyPatient": sp, "scopeCode": to_value(&CodeView::from(&code)), "consented": null}));
                continue;
            }
            let consented = match sc.get("consented") {
                Some(Value::Bool(b)) => *b,
                _ => return Err(Error::bad("Each scope needs consented: true or false.")),
            };
            let change = if consented { access::ConsentChange::Grant } else { access::ConsentChange::Refuse };
            changes.push((change, study.organization_id));
            set.push(Consent { patient_id: id, study_id, code_id: code.id, consented, consented_time: now });
            out.push(json!({
                "studyPatient": sp, "scopeCode": to_value(&CodeView::from(&code)),
                "consented": consented, "consentedTime": ts(now),
            }));
        }
    }
    // The body is valid as a whole; now whether the caller may make each change.
    for &(change, study_org) in &changes {
        if !access::may_change_consent(c, id, &patient_orgs, study_org, change) {
            return Err(if change == access::ConsentChange::Grant {
                Error::Forbidden(
                    "Only the patient can grant consent (with their own app or login); a practitioner may record a refusal or a withdrawal.".into(),
                )
            } else {
                Error::forbidden()
            });
        }
    }
    repo.write_consents(&set, &remove).await?;
    // A grant in a study of an organization that added the patient makes it one of theirs.
    let granted_orgs: BTreeSet<Id> =
        changes.iter().filter(|(ch, _)| *ch == access::ConsentChange::Grant).map(|(_, org)| *org).collect();
    for (org, added) in repo.patient_org_links(id).await? {
        if added && granted_orgs.contains(&org) {
            repo.establish_patient_org(id, org).await?;
        }
    }
    Ok(json!({ "studyScopeConsents": out }))
}
