//! The audit trail: one record per request that reads or writes patient data or consent, or
//! grants access (logins, tokens, invitations, API keys). Records say when, who (user, role,
//! client), what (action, resource, ids or the search and its result count), which patients,
//! which studies and consents allowed it, the outcome, and where from. They never hold
//! observation values or tokens. Records are append-only (the port has no update or delete).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::Id;
use crate::fhir::{USER_ID_SYSTEM, prune, ts_ms};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    #[serde(default)]
    pub user_id: Option<Id>,
    /// `superuser`, `patient`, or the practitioner's roles as `role@organization`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// For failed logins: the name that was tried.
    #[serde(default)]
    pub attempted: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Time-ordered id: `{ms:013}{random}`.
    pub id: String,
    pub recorded: i64,
    /// What was done, e.g. `observation.search`, `consent.write`, `token`.
    pub action: String,
    /// FHIR AuditEvent action: C, R, U, D or E.
    pub fhir_action: String,
    pub allowed: bool,
    pub status: u16,
    #[serde(default)]
    pub reason: Option<String>,
    pub agent: Agent,
    pub method: String,
    pub path: String,
    /// The search parameters (never values of data).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub patients: Vec<Id>,
    #[serde(default)]
    pub studies: Vec<Id>,
    /// The consents that allowed it, as `study/scope-code`.
    #[serde(default)]
    pub consents: Vec<String>,
    #[serde(default)]
    pub source_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// What a handler adds to the record of its request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub agent: Option<Agent>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub ids: Vec<String>,
    pub count: Option<usize>,
    pub patients: BTreeSet<Id>,
    pub studies: BTreeSet<Id>,
    pub consents: BTreeSet<String>,
    pub reason: Option<String>,
}

impl AuditRecord {
    /// The record as a FHIR R5 AuditEvent.
    pub fn to_fhir(&self) -> Value {
        let outcome_code = if self.allowed {
            "0"
        } else if self.status >= 500 {
            "8"
        } else {
            "4"
        };
        let who = match self.agent.user_id {
            Some(u) => json!({"identifier": {"system": USER_ID_SYSTEM, "value": u.to_string()}}),
            None => {
                json!({"display": self.agent.attempted.clone().map_or("anonymous".to_string(), |a| format!("unauthenticated ({a})"))})
            }
        };
        let mut entities: Vec<Value> = self
            .patients
            .iter()
            .map(|p| json!({"what": {"reference": format!("Patient/{p}")}, "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}]}}))
            .collect();
        for s in &self.studies {
            let consents: Vec<&String> = self.consents.iter().filter(|c| c.starts_with(&format!("{s}/"))).collect();
            entities.push(json!({
                "what": {"reference": format!("Group/{s}")},
                "detail": consents.iter().map(|c| json!({"type": {"text": "consent"}, "valueString": c})).collect::<Vec<_>>(),
            }));
        }
        if self.query.is_some() || self.count.is_some() || !self.ids.is_empty() {
            let mut detail = Vec::new();
            if let Some(n) = self.count {
                detail.push(json!({"type": {"text": "results"}, "valueInteger": n}));
            }
            for id in &self.ids {
                detail.push(json!({"type": {"text": "id"}, "valueString": id}));
            }
            entities.push(json!({
                "what": {"display": self.resource_type.clone().unwrap_or_else(|| "request".into())},
                "query": self.query.as_ref().map(|q| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, q)),
                "detail": detail,
            }));
        }
        let mut agent = json!({
            "who": who,
            "requestor": true,
            "role": self.agent.role.iter().map(|r| json!({"text": r})).collect::<Vec<_>>(),
            "networkString": self.source_address,
        });
        if let Some(c) = &self.agent.client_id {
            agent["extension"] = json!([{"url": "https://jupyterhealth.org/fhir/StructureDefinition/oauth-client-id", "valueString": c}]);
        }
        prune(json!({
            "resourceType": "AuditEvent",
            "id": self.id,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}]}],
            "code": {"coding": [{"system": "https://jupyterhealth.org/fhir/CodeSystem/audit-action", "code": self.action}], "text": format!("{} {}", self.method, self.path)},
            "action": self.fhir_action,
            "recorded": ts_ms(self.recorded),
            "outcome": {
                "code": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-outcome", "code": outcome_code},
                "detail": [{"text": format!("{}{}", self.status, self.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())}],
            },
            "patient": (self.patients.len() == 1).then(|| json!({"reference": format!("Patient/{}", self.patients[0])})),
            "agent": [agent],
            "source": {"observer": {"display": "JupyterHealth Exchange"}, "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3", "display": "Web Server"}]}]},
            "entity": entities,
        }))
    }
}

/// A parsed FHIR AuditEvent search.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub patient: Option<Id>,
    pub agent: Option<Id>,
    pub date: crate::fhir::search::TimeRange,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub count: usize,
    pub cursor: Option<String>,
}

pub fn parse_audit_search(params: &[(String, String)]) -> Result<AuditSearch, String> {
    let mut q = AuditSearch { count: crate::fhir::DEFAULT_COUNT, ..Default::default() };
    for (k, v) in params {
        match k.as_str() {
            "patient" => {
                q.patient = Some(
                    v.strip_prefix("Patient/")
                        .unwrap_or(v)
                        .parse()
                        .map_err(|_| format!("patient={v:?} is not a Patient id"))?,
                )
            }
            "agent" => {
                let raw = v.rsplit('|').next().unwrap_or(v);
                q.agent =
                    Some(raw.parse().map_err(|_| format!("agent={v:?} is not a user id ([{USER_ID_SYSTEM}|]id)"))?)
            }
            "date" => q.date = q.date.intersect(crate::fhir::search::parse_date(v)?),
            "action" => match v.as_str() {
                "C" | "R" | "U" | "D" | "E" => q.action = Some(v.clone()),
                _ => return Err(format!("action={v:?} must be one of C, R, U, D, E")),
            },
            "outcome" => match v.rsplit('|').next().unwrap_or(v) {
                o @ ("0" | "4" | "8" | "12") => q.outcome = Some(o.to_string()),
                _ => return Err(format!("outcome={v:?} must be one of 0, 4, 8, 12")),
            },
            "_count" => {
                let n: usize = v.parse().map_err(|_| format!("_count={v:?} is not a number"))?;
                if n == 0 || n > crate::fhir::MAX_COUNT {
                    return Err(format!("_count must be between 1 and {}", crate::fhir::MAX_COUNT));
                }
                q.count = n;
            }
            "_cursor" => {
                if v.len() < 13 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err("_cursor is not a cursor this server issued".into());
                }
                q.cursor = Some(v.clone());
            }
            other => return Err(format!("Unknown or unsupported search parameter {other:?} for AuditEvent")),
        }
    }
    Ok(q)
}

impl AuditRecord {
    pub fn outcome_code(&self) -> &'static str {
        if self.allowed {
            "0"
        } else if self.status >= 500 {
            "8"
        } else {
            "4"
        }
    }
}

/// AuditEvent search for superusers, and for managers of the organizations of the patients
/// involved. Newest first, paged by the last record id.
pub async fn search(
    repo: &crate::repo::Repo,
    log: &dyn crate::ports::AuditLog,
    c: &super::Caller,
    q: &AuditSearch,
) -> crate::error::Result<(Vec<AuditRecord>, Option<String>)> {
    use crate::error::Error;
    if !c.is_practitioner() {
        return Err(Error::Forbidden("Patients see who accessed their data at /api/v1/patients/{id}/audit.".into()));
    }
    // The patients whose records a manager may read.
    let mut managed: Option<BTreeSet<Id>> = None;
    if !c.is_superuser() {
        let mut set = BTreeSet::new();
        for (o, r) in &c.roles {
            if *r == super::model::Role::Manager {
                set.extend(repo.org_patient_ids(*o).await?);
            }
        }
        if let Some(p) = q.patient
            && !set.contains(&p)
        {
            return Err(Error::Forbidden(format!("You do not manage an organization of Patient/{p}.")));
        }
        if q.patient.is_none() && q.agent.is_none() {
            return Err(Error::Forbidden(
                "Search audit events by patient or agent (superusers may search all).".into(),
            ));
        }
        managed = Some(set);
    }
    let mut out = Vec::new();
    let mut after = q.cursor.clone();
    for _ in 0..50 {
        let aq = crate::ports::AuditQuery {
            patient: q.patient,
            agent: q.agent,
            lo: q.date.lo,
            hi: q.date.hi,
            limit: q.count,
            after: after.clone(),
        };
        let (page, next) = log.query(&aq).await.map_err(Error::Unavailable)?;
        for r in page {
            after = Some(r.id.clone());
            let visible = managed.as_ref().is_none_or(|m| r.patients.iter().any(|p| m.contains(p)));
            let wanted = q.action.as_ref().is_none_or(|a| *a == r.fhir_action)
                && q.outcome.as_ref().is_none_or(|o| o == r.outcome_code());
            if visible && wanted {
                out.push(r);
                if out.len() == q.count {
                    return Ok((out, after));
                }
            }
        }
        if next.is_none() {
            return Ok((out, None));
        }
    }
    let last = out.last().map(|r: &AuditRecord| r.id.clone()).or(after);
    Ok((out, last))
}

/// "Who accessed my data": a patient's own view (also for superusers and managers of their
/// organizations).
pub async fn patient_view(
    repo: &crate::repo::Repo,
    log: &dyn crate::ports::AuditLog,
    c: &super::Caller,
    patient: Id,
    cursor: Option<String>,
    limit: usize,
) -> crate::error::Result<(Vec<Value>, Option<String>)> {
    use crate::error::Error;
    repo.patient(patient).await?.ok_or_else(Error::not_found)?;
    let orgs = repo.patient_org_ids(patient).await?;
    let manager = orgs.iter().any(|o| c.role_in(*o) == Some(super::model::Role::Manager));
    if c.patient_id() != Some(patient) && !c.is_superuser() && !manager {
        return Err(Error::forbidden());
    }
    let aq = crate::ports::AuditQuery {
        patient: Some(patient),
        limit: limit.clamp(1, 1000),
        after: cursor,
        ..Default::default()
    };
    let (recs, next) = log.query(&aq).await.map_err(Error::Unavailable)?;
    let mut out = Vec::new();
    for r in recs {
        let email = match r.agent.user_id {
            Some(u) => repo.user(u).await?.map(|u| u.email),
            None => None,
        };
        out.push(json!({
            "id": r.id, "recorded": ts_ms(r.recorded), "action": r.action, "method": r.method, "path": r.path,
            "outcome": if r.allowed { "allowed" } else { "refused" }, "status": r.status, "reason": r.reason,
            "agent": {"userId": r.agent.user_id, "email": email, "role": r.agent.role, "clientId": r.agent.client_id},
            "count": r.count, "studies": r.studies, "consents": r.consents, "sourceAddress": r.source_address,
        }));
    }
    Ok((out, next))
}
