//! A patient's consents as FHIR R5 Consent resources: one per (patient, study the patient is
//! enrolled in), id `{patient}-{study}`.
//!
//! * `status`: `active` while any scope of the study is consented, `inactive` once every decision
//!   is a refusal or a revocation, `draft` while the patient has decided nothing yet.
//! * `decision` `deny` at the root: nothing is shared but what a provision permits. `provision[0]`
//!   (an exception, so: permit) names the study (`actor`, role information recipient), the action
//!   `access` and the consented scopes (`code`); nested in it (an exception to the exception, so:
//!   deny) the scopes refused or revoked. A study without a consented scope has no provision: its
//!   refusals are what the root already says.
//! * `grantee`: the study's organization; `controller`: the patient; `date`: the last decision.
//!
//! Readable by the patient, and per study by practitioners with a role in its organization.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::access;
use crate::domain::Caller;
use crate::error::{Error, Result};
use crate::fhir::{prune, search::TimeRange};
use crate::model::{Code, Consent, Id, Study};
use crate::repo::Repo;

fn coding(c: &Code) -> Value {
    json!({"system": c.coding_system, "code": c.coding_code, "display": c.text})
}

/// The Consent of one patient and study from the patient's decisions on its scopes.
pub fn render(patient: Id, study: &Study, decisions: &[&Consent], codes: &BTreeMap<Id, Code>) -> Value {
    let permitted: Vec<Value> =
        decisions.iter().filter(|d| d.consented).filter_map(|d| codes.get(&d.code_id)).map(coding).collect();
    let refused: Vec<Value> =
        decisions.iter().filter(|d| !d.consented).filter_map(|d| codes.get(&d.code_id)).map(coding).collect();
    let status = match (decisions.is_empty(), permitted.is_empty()) {
        (true, _) => "draft",
        (false, false) => "active",
        (false, true) => "inactive",
    };
    let last = decisions.iter().map(|d| d.consented_time).max();
    let provision = (!permitted.is_empty()).then(|| {
        json!([{
            "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
                "reference": {"reference": format!("Group/{}", study.id), "display": study.name},
            }],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "code": permitted.iter().map(|c| json!({"coding": [c]})).collect::<Vec<_>>(),
            "provision": if refused.is_empty() { Value::Null } else {
                json!([{"code": refused.iter().map(|c| json!({"coding": [c]})).collect::<Vec<_>>()}])
            },
        }])
    });
    prune(json!({
        "resourceType": "Consent",
        "id": format!("{patient}-{}", study.id),
        "meta": {"lastUpdated": last.map(crate::domain::views::ts)},
        "status": status,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "subject": {"reference": format!("Patient/{patient}")},
        "date": last.map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())),
        "grantor": [{"reference": format!("Patient/{patient}")}],
        "grantee": [{"reference": format!("Organization/{}", study.organization_id)}],
        "controller": [{"reference": format!("Patient/{patient}")}],
        "decision": "deny",
        "provision": provision,
    }))
}

/// A Consent search: `patient` (required for practitioners), `_id`, `status`, `_lastUpdated`.
#[derive(Debug, Default)]
pub struct ConsentQuery {
    pub patient: Option<Id>,
    pub ids: Option<Vec<String>>,
    pub status: Option<Vec<String>>,
    pub last_updated: TimeRange,
}

pub fn parse_query(params: &[(String, String)]) -> std::result::Result<ConsentQuery, String> {
    let mut q = ConsentQuery::default();
    for (k, v) in params {
        match k.as_str() {
            "patient" => q.patient = Some(crate::fhir::search::reference_id(v, "Patient", k)?),
            "_id" => q.ids = Some(v.split(',').map(str::to_string).collect()),
            "status" => q.status = Some(v.split(',').map(str::to_string).collect()),
            "_lastUpdated" => q.last_updated = q.last_updated.intersect(crate::fhir::search::parse_date(v)?),
            "_count" | "_format" => {}
            other => return Err(format!("Unknown or unsupported search parameter {other:?} for Consent")),
        }
    }
    Ok(q)
}

/// The Consents of a patient the caller may read (one per study they are enrolled in).
pub async fn of_patient(repo: &Repo, c: &Caller, patient: Id) -> Result<Vec<Value>> {
    let Some(links) = repo.patient_with_links(patient).await? else { return Ok(vec![]) };
    let codes: BTreeMap<Id, Code> = repo.list_codes().await?.into_iter().map(|c| (c.id, c)).collect();
    let mut out = Vec::new();
    for study in repo.studies(&links.studies).await? {
        if !access::may_read_consent_resource(c, patient, study.organization_id) {
            continue;
        }
        let decisions: Vec<&Consent> = links.consents.iter().filter(|d| d.study_id == study.id).collect();
        out.push(render(patient, &study, &decisions, &codes));
    }
    Ok(out)
}

/// A Consent search (the patient's own when they search).
pub async fn search(repo: &Repo, c: &Caller, q: &ConsentQuery) -> Result<Vec<Value>> {
    let patient = match (access::patient_self(c), q.patient) {
        (Some(me), Some(p)) if p != me => {
            return Err(Error::Forbidden(format!("You do not have access to Patient/{p}.")));
        }
        (Some(me), _) => me,
        (None, Some(p)) => p,
        (None, None) => return Err(Error::bad("Consent searches need patient=<id>.")),
    };
    let mut all = of_patient(repo, c, patient).await?;
    all.retain(|r| {
        let lu =
            r["meta"]["lastUpdated"].as_str().and_then(|t| crate::fhir::search::parse_date(t).ok()).and_then(|t| t.lo);
        q.ids.as_ref().is_none_or(|ids| ids.iter().any(|i| r["id"] == i.as_str()))
            && q.status.as_ref().is_none_or(|s| s.iter().any(|x| r["status"] == x.as_str()))
            && (q.last_updated.is_all() || lu.is_some_and(|t| q.last_updated.contains(t)))
    });
    Ok(all)
}

/// One Consent by id (`{patient}-{study}`); 404 when absent or not the caller's to read.
pub async fn read(repo: &Repo, c: &Caller, id: &str) -> Result<(Id, Value)> {
    let not_found = || Error::NotFound(format!("Consent/{id} not found."));
    let (p, s) = id.split_once('-').ok_or_else(not_found)?;
    let (p, s): (Id, Id) = (p.parse().map_err(|_| not_found())?, s.parse().map_err(|_| not_found())?);
    let found = of_patient(repo, c, p).await?.into_iter().find(|r| r["id"] == format!("{p}-{s}").as_str());
    found.map(|r| (p, r)).ok_or_else(not_found)
}
