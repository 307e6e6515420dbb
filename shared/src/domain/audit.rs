//! The audit trail: one record per request that reads or writes patient data or consent, or
//! grants access (logins, tokens, invitations, API keys). Records say when, who (user, role,
//! client), what (action, resource, ids or the search and its result count), which patients,
//! which studies and consents allowed it, the outcome, and where from. They never hold
//! observation values or tokens. Records are append-only (the port has no update or delete).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::fhir::{USER_ID_SYSTEM, prune, ts_ms};
use crate::model::Id;

pub use crate::model::{Agent, AuditRecord, Grant};

/// What a handler adds to the record of its request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub agent: Option<Agent>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub ids: Vec<String>,
    pub count: Option<usize>,
    pub patients: BTreeSet<Id>,
    /// Studies the request concerns beyond those of its grants (an enrolment).
    pub studies: BTreeSet<Id>,
    pub grants: BTreeSet<Grant>,
    pub reason: Option<String>,
}

/// The longest text a record keeps of each field (the rest is cut, marked).
const MAX_AGENT_TEXT: usize = 256;
const MAX_PATH: usize = 2048;
const MAX_REASON: usize = 1024;
const MAX_USER_AGENT: usize = 200;
/// The longest lists a record keeps.
const MAX_PATIENTS: usize = 1000;
const MAX_GRANTS: usize = 1000;
const MAX_IDS: usize = 100;

/// `s` cut to at most `max` bytes (on a character boundary), marked with what was cut.
fn cut(s: &mut String, max: usize, truncated: &mut bool) {
    if s.len() <= max {
        return;
    }
    let mut at = max.saturating_sub(24);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    let cut_bytes = s.len() - at;
    s.truncate(at);
    s.push_str(&format!("…[+{cut_bytes} bytes]"));
    *truncated = true;
}

/// What one reader may see of audit records (`AuditRecord::seen_by`).
#[derive(Debug, Clone, Default)]
pub struct AuditReader {
    /// Sees every record whole (a superuser).
    pub all: bool,
    /// The patients whose records the reader may see.
    pub patients: BTreeSet<Id>,
    /// The organizations whose studies (and roles) the reader may see in a record.
    pub orgs: BTreeSet<Id>,
    /// Sees where requests came from (source address, user agent): not a patient.
    pub network: bool,
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
            "patient" => q.patient = Some(crate::fhir::search::reference_id(v, "Patient", k)?),
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
    /// The record with every text and list within its bound (an anonymous caller decides the
    /// length of the name it tries, a client the length of its path): each item stays far below
    /// what a store item may hold.
    pub fn bounded(mut self) -> Self {
        let mut t = self.truncated;
        for f in [&mut self.agent.role, &mut self.agent.client_id, &mut self.agent.attempted] {
            if let Some(v) = f.as_mut() {
                cut(v, MAX_AGENT_TEXT, &mut t);
            }
        }
        cut(&mut self.path, MAX_PATH, &mut t);
        if let Some(q) = self.query.as_mut() {
            cut(q, MAX_PATH, &mut t);
        }
        if let Some(r) = self.reason.as_mut() {
            cut(r, MAX_REASON, &mut t);
        }
        if let Some(u) = self.user_agent.as_mut() {
            cut(u, MAX_USER_AGENT, &mut t);
        }
        if let Some(a) = self.source_address.as_mut() {
            cut(a, 64, &mut t);
        }
        for id in &mut self.ids {
            cut(id, 64, &mut t);
        }
        for (_, _, code) in &mut self.grants {
            cut(code, 256, &mut t);
        }
        for c in &mut self.consents {
            cut(c, 300, &mut t);
        }
        for (len, max) in [
            (self.patients.len(), MAX_PATIENTS),
            (self.grants.len(), MAX_GRANTS),
            (self.studies.len(), MAX_GRANTS),
            (self.consents.len(), MAX_GRANTS),
            (self.ids.len(), MAX_IDS),
        ] {
            t |= len > max;
        }
        self.patients.truncate(MAX_PATIENTS);
        self.grants.truncate(MAX_GRANTS);
        self.studies.truncate(MAX_GRANTS);
        self.consents.truncate(MAX_GRANTS);
        self.ids.truncate(MAX_IDS);
        self.truncated = t;
        self
    }

    /// The record as it concerns one patient: stored once per patient it names, so that a
    /// patient's trail holds nothing of the other patients of the same request.
    pub fn project(&self, patient: Id) -> AuditRecord {
        let mut r = self.clone();
        r.patients = vec![patient];
        r.grants.retain(|g| g.0 == patient);
        if self.grants.is_empty() && self.patients.len() > 1 {
            // A record from before grants were kept: its consents cannot be told apart.
            r.studies.clear();
            r.consents.clear();
        } else if !self.grants.is_empty() {
            let (studies, consents) = projections(&r.grants);
            // Studies of the other patients' grants go; a study the request concerns as such stays.
            let others: BTreeSet<Id> = self.grants.iter().filter(|g| g.0 != patient).map(grant_study).collect();
            r.studies.retain(|s| studies.contains(s) || !others.contains(s));
            r.consents = consents;
        }
        if self.patients.len() > 1 {
            // The count, ids and query describe the whole request, the other patients included.
            (r.count, r.ids, r.query) = (None, Vec::new(), None);
        }
        r
    }

    /// The record as `reader` may see it, or `None` when it concerns nothing the reader may see:
    /// only the patients they may see, the studies of organizations they are in (and consents
    /// through them), the agent's roles in those organizations; the count, ids and query only
    /// when nothing was taken out; the network details only for staff.
    pub fn seen_by(&self, reader: &AuditReader, study_org: &dyn Fn(Id) -> Option<Id>) -> Option<AuditRecord> {
        if reader.all {
            return Some(self.clone());
        }
        let mut r = self.clone();
        r.patients.retain(|p| reader.patients.contains(p));
        if r.patients.is_empty() {
            return None;
        }
        let study_seen = |s: Id| study_org(s).is_some_and(|o| reader.orgs.contains(&o));
        r.studies.retain(|s| study_seen(*s));
        if self.grants.is_empty() {
            r.consents.retain(|c| {
                c.split('/').next().and_then(|s| s.parse().ok()).is_some_and(|s: Id| r.studies.contains(&s))
            });
        } else {
            r.grants.retain(|g| reader.patients.contains(&g.0) && study_seen(g.1));
            r.consents = projections(&r.grants).1;
        }
        let cut_something = r.patients.len() != self.patients.len()
            || r.studies.len() != self.studies.len()
            || r.consents.len() != self.consents.len();
        if cut_something {
            (r.count, r.ids, r.query) = (None, Vec::new(), None);
        }
        r.agent.role = self.agent.role.as_ref().map(|roles| {
            roles
                .split(',')
                .filter(|role| match role.rsplit_once('@') {
                    Some((_, org)) => org.parse().is_ok_and(|o: Id| reader.orgs.contains(&o)),
                    None => true, // `superuser`, `patient`
                })
                .collect::<Vec<_>>()
                .join(",")
        });
        if !reader.network {
            (r.source_address, r.user_agent) = (None, None);
        }
        Some(r)
    }

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

/// `studies` and `consents` (`study/scope-code`) of a list of grants.
pub fn projections(grants: &[Grant]) -> (Vec<Id>, Vec<String>) {
    let studies: BTreeSet<Id> = grants.iter().map(|g| g.1).collect();
    let consents: BTreeSet<String> = grants.iter().map(|g| format!("{}/{}", g.1, g.2)).collect();
    (studies.into_iter().collect(), consents.into_iter().collect())
}

/// What `c` may see of audit records: a superuser everything; a manager the patients of the
/// organizations they manage (`access::may_read_audit_of`) and the studies of the organizations
/// they hold a role in; a patient their own trail, through the studies they are enrolled in.
pub async fn reader(repo: &crate::repo::Repo, c: &super::Caller) -> crate::error::Result<AuditReader> {
    if crate::access::reads_every_audit_record(c) {
        return Ok(AuditReader { all: true, network: true, ..Default::default() });
    }
    let mut r = AuditReader::default();
    if let Some(me) = crate::access::patient_self(c) {
        r.patients.insert(me);
        for s in repo.studies(&repo.patient_study_ids(me).await?).await? {
            r.orgs.insert(s.organization_id);
        }
        return Ok(r);
    }
    r.network = true;
    r.orgs = crate::access::searched_orgs(c).into_iter().collect();
    for o in crate::access::searched_orgs(c).into_iter().filter(|o| crate::access::may_read_audit_in(c, *o)) {
        r.patients.extend(repo.org_patient_ids(o).await?);
    }
    Ok(r)
}

fn grant_study(g: &Grant) -> Id {
    g.1
}

/// A study-to-organization lookup for `seen_by`, read once per study.
struct StudyOrgs(std::collections::BTreeMap<Id, Option<Id>>);

impl StudyOrgs {
    async fn load(repo: &crate::repo::Repo, recs: &[AuditRecord]) -> crate::error::Result<Self> {
        let mut m = std::collections::BTreeMap::new();
        let studies: BTreeSet<Id> =
            recs.iter().flat_map(|r| r.studies.iter().copied().chain(r.grants.iter().map(grant_study))).collect();
        for s in studies {
            if let std::collections::btree_map::Entry::Vacant(e) = m.entry(s) {
                e.insert(repo.study(s).await?.map(|st| st.organization_id));
            }
        }
        Ok(Self(m))
    }
    fn org(&self, s: Id) -> Option<Id> {
        self.0.get(&s).copied().flatten()
    }
}

/// How many audit records one AuditEvent search reads at most; a page that a filter leaves
/// short ends with a `next` link to go on from.
pub const AUDIT_SCAN_BUDGET: usize = 2_000;

/// Store queries one AuditEvent search makes at most.
pub const AUDIT_QUERIES: usize = 4;

/// AuditEvent search: superusers see every record; a manager the records of the patients of the
/// organizations they manage, each only as far as it concerns what they may see
/// (`AuditRecord::seen_by`). Newest first, paged by the last record id.
pub async fn search(
    repo: &crate::repo::Repo,
    log: &dyn crate::ports::AuditLog,
    c: &super::Caller,
    q: &AuditSearch,
) -> crate::error::Result<(Vec<AuditRecord>, Option<String>)> {
    use crate::error::Error;
    if !crate::access::may_search_audit(c) {
        return Err(Error::Forbidden("Patients see who accessed their data at /api/v1/patients/{id}/audit.".into()));
    }
    let reader = reader(repo, c).await?;
    if !reader.all {
        if let Some(p) = q.patient
            && !reader.patients.contains(&p)
        {
            return Err(Error::Forbidden(format!("You do not manage an organization of Patient/{p}.")));
        }
        if q.patient.is_none() && q.agent.is_none() {
            return Err(Error::Forbidden(
                "Search audit events by patient or agent (superusers may search all).".into(),
            ));
        }
    }
    let mut out = Vec::new();
    let mut after = q.cursor.clone();
    let mut budget = AUDIT_SCAN_BUDGET;
    // Store queries one search makes at most (a query of every record looks at a week).
    for _ in 0..AUDIT_QUERIES {
        if budget == 0 {
            break;
        }
        let aq = crate::ports::AuditQuery {
            patient: q.patient,
            agent: q.agent,
            lo: q.date.lo,
            hi: q.date.hi,
            limit: q.count.clamp(1, budget),
            after: after.clone(),
        };
        let (page, next) = log.query(&aq).await.map_err(Error::Unavailable)?;
        budget = budget.saturating_sub(page.len().max(1));
        let orgs = StudyOrgs::load(repo, &page).await?;
        for r in page {
            after = Some(r.id.clone());
            let wanted = q.action.as_ref().is_none_or(|a| *a == r.fhir_action)
                && q.outcome.as_ref().is_none_or(|o| o == r.outcome_code());
            if let Some(seen) = r.seen_by(&reader, &|s| orgs.org(s)).filter(|_| wanted) {
                out.push(seen);
                if out.len() == q.count {
                    return Ok((out, after));
                }
            }
        }
        match next {
            None => return Ok((out, None)),
            // Where the store says to go on from: the last record read, or a day boundary.
            Some(n) => after = Some(n),
        }
    }
    // The budget is spent: what was found so far, and where to go on from (the last record
    // read, whether or not it was kept).
    Ok((out, after))
}

/// "Who accessed my data": a patient's own view (also for superusers and managers of their
/// organizations), each record as far as the reader may see it.
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
    let reader = reader(repo, c).await?;
    if !reader.all && !reader.patients.contains(&patient) {
        return Err(Error::forbidden());
    }
    let aq = crate::ports::AuditQuery {
        patient: Some(patient),
        limit: limit.clamp(1, 1000),
        after: cursor,
        ..Default::default()
    };
    let (recs, next) = log.query(&aq).await.map_err(Error::Unavailable)?;
    let orgs = StudyOrgs::load(repo, &recs).await?;
    let mut out = Vec::new();
    for r in recs.iter().filter_map(|r| r.seen_by(&reader, &|s| orgs.org(s))) {
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
