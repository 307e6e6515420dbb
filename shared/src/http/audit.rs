//! The audit middleware: for every request that touches patient data, consent or access
//! grants, one record is written after the handler ran and before the answer leaves. If the
//! record cannot be stored, the answer is replaced by a 503: there is no unaudited access.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::domain::Caller;
use crate::domain::audit::{Agent, AuditNote, AuditRecord};
use crate::domain::model::Id;

/// Where handlers and extractors add to the record of the current request.
#[derive(Clone, Default)]
pub struct AuditSlot(pub Arc<Mutex<AuditNote>>);

impl AuditSlot {
    pub fn with(&self, f: impl FnOnce(&mut AuditNote)) {
        if let Ok(mut n) = self.0.lock() {
            f(&mut n);
        }
    }
    /// Records who the caller is.
    pub fn caller(&self, c: &Caller) {
        let role = if c.is_superuser() {
            "superuser".to_string()
        } else if !c.is_practitioner() && c.patient_id().is_some() {
            "patient".to_string()
        } else {
            c.roles.iter().map(|(o, r)| format!("{}@{o}", r.as_str())).collect::<Vec<_>>().join(",")
        };
        let agent =
            Agent { user_id: Some(c.id()), role: Some(role), client_id: Some(c.client_id.clone()), attempted: None };
        self.with(|n| n.agent = Some(agent));
    }
}

/// The slot as handlers extract it (absent on routes that are not audited).
pub type Slot = Option<axum::Extension<AuditSlot>>;

/// Adds to the record of the current request, if it is audited.
pub fn note(slot: &Slot, f: impl FnOnce(&mut AuditNote)) {
    if let Some(axum::Extension(s)) = slot {
        s.with(f);
    }
}

/// The message of an error answer, for the record (set by the error types).
#[derive(Clone)]
pub struct AuditReason(pub String);

/// Which requests are audited, as (action, FHIR AuditEvent action).
fn classify(method: &Method, path: &str) -> Option<(&'static str, &'static str)> {
    let seg: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let get = *method == Method::GET || *method == Method::HEAD;
    let a = match (seg.get(1).copied(), seg.get(2).copied(), seg.get(3).copied()) {
        (Some("FHIR"), Some("R5"), Some("metadata" | ".well-known")) => return None,
        (Some("FHIR"), Some("R5"), Some("AuditEvent")) => ("audit.read", "E"),
        (Some("FHIR"), Some("R5"), None) if *method == Method::POST => ("observation.upload", "C"),
        (Some("FHIR"), Some("R5"), Some("Observation")) if *method == Method::POST && seg.len() == 4 => {
            ("observation.upload", "C")
        }
        (Some("FHIR"), Some("R5"), Some(_)) if seg.len() >= 5 && seg[4] != "_search" => ("fhir.read", "R"),
        (Some("FHIR"), Some("R5"), Some(_)) => ("fhir.search", "E"),
        (Some("api"), Some("v1"), Some("observations")) => ("observation.search", "E"),
        (Some("api"), Some("v1"), Some("patients")) => match (seg.get(5).copied(), get) {
            (Some("consents"), true) => ("consent.read", "R"),
            (Some("consents"), false) if *method == Method::DELETE => ("consent.forget", "D"),
            (Some("consents"), false) => ("consent.write", "U"),
            (Some("audit"), _) => ("audit.read", "E"),
            (Some("global_add_organization"), _) => ("patient.organization.add", "U"),
            _ if seg.get(4) == Some(&"global_lookup") => ("patient.lookup", "E"),
            (_, true) => ("patient.read", "R"),
            (_, false) if *method == Method::POST => ("patient.create", "C"),
            (_, false) if *method == Method::DELETE => ("patient.delete", "D"),
            (_, false) => ("patient.update", "U"),
        },
        (Some("api"), Some("v1"), Some("studies")) if seg.get(5) == Some(&"patients") => {
            if get {
                ("enrolment.read", "R")
            } else {
                ("enrolment.write", "U")
            }
        }
        // Who may reach whose data: memberships, accounts, what studies ask for and take from.
        (Some("api"), Some("v1"), Some("organizations"))
            if !get && matches!(seg.get(5), Some(&("user" | "remove_user"))) =>
        {
            ("organization.member.write", "U")
        }
        (Some("api"), Some("v1"), Some("practitioners")) if *method == Method::POST => ("practitioner.create", "C"),
        (Some("api"), Some("v1"), Some("studies"))
            if !get && matches!(seg.get(5), Some(&("scope_requests" | "data_sources" | "clients"))) =>
        {
            ("study.grant.write", "U")
        }
        (Some("o"), Some("authorize"), _) => ("authorize", "E"),
        (Some("accounts"), Some("logout"), _) => ("logout", "E"),
        (Some("api"), Some("v1"), Some("invitation")) if seg.len() == 5 && *method == Method::POST => {
            ("invitation.redeem", "E")
        }
        (Some("api"), Some("v1"), Some("invitation")) if *method == Method::POST => ("invitation.issue", "C"),
        (Some("api"), Some("v1"), Some("invitation")) => ("invitation.read", "R"),
        (Some("api"), Some("v1"), Some("practitioner_clients")) if *method == Method::POST => ("apikey.create", "C"),
        (Some("api"), Some("v1"), Some("practitioner_clients")) if *method == Method::DELETE => ("apikey.revoke", "D"),
        (Some("api"), Some("v1"), Some("practitioners")) if *method == Method::DELETE => ("practitioner.delete", "D"),
        (Some("o"), Some("token"), _) if *method == Method::POST => ("token", "E"),
        (Some("accounts"), Some("login"), _) if *method == Method::POST => ("login", "E"),
        _ => return None,
    };
    Some(a)
}

/// The path as recorded: an invitation's token is a secret (it can be redeemed again for a
/// while), so it is not kept; the invitation's id is noted instead.
fn recorded_path(path: &str) -> String {
    match path.strip_prefix("/api/v1/invitation/") {
        Some(token) if !token.is_empty() => "/api/v1/invitation/{token}".to_string(),
        _ => path.to_string(),
    }
}

/// The address of the peer the request came from, as the runtime saw it: the TCP peer locally,
/// API Gateway's `sourceIp` in a Lambda function (`functions/lambda` inserts it).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::IpAddr);

fn new_id(ms: i64) -> String {
    format!("{ms:013}{}", crate::auth::crypto::random_alnum(8))
}

/// The middleware; apply with `from_fn_with_state`.
pub async fn audited(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some((action, fhir_action)) = classify(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path = recorded_path(req.uri().path());
    let query = req.uri().query().map(|q| {
        // Keep the parameters, never a token or a cursor's content.
        q.split('&')
            .filter(|kv| !kv.starts_with("_cursor=") && !kv.to_lowercase().contains("token"))
            .collect::<Vec<_>>()
            .join("&")
    });
    let source = super::extract::source_ip(req.extensions(), req.headers(), &s.settings.trusted_proxies)
        .map(|ip| ip.to_string());
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
    let path_patient: Option<Id> = {
        let seg: Vec<&str> = path.split('/').collect();
        (seg.get(3) == Some(&"patients")).then(|| seg.get(4).and_then(|p| p.parse().ok())).flatten()
    };
    let resp = next.run(req).await;
    let note = slot.0.lock().map(|n| n.clone()).unwrap_or_default();
    let status = resp.status().as_u16();
    let reason = note.reason.clone().or_else(|| resp.extensions().get::<AuditReason>().map(|r| r.0.clone()));
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let mut patients = note.patients.clone();
    if let Some(p) = path_patient {
        patients.insert(p);
    }
    let grants: Vec<_> = note.grants.iter().cloned().collect();
    let (granted, consents) = crate::domain::audit::projections(&grants);
    let studies: Vec<Id> =
        note.studies.iter().copied().chain(granted).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let rec = AuditRecord {
        id: new_id(now),
        recorded: now,
        action: note.action.clone().unwrap_or_else(|| action.to_string()),
        fhir_action: fhir_action.to_string(),
        allowed: resp.status().is_success() || resp.status().is_redirection(),
        status,
        reason,
        agent: note.agent.clone().unwrap_or_default(),
        method,
        path,
        query: query.filter(|q| !q.is_empty()),
        resource_type: note.resource_type.clone(),
        ids: note.ids.clone(),
        count: note.count,
        patients: patients.into_iter().collect(),
        studies,
        consents,
        source_address: source,
        user_agent: ua,
        grants,
        truncated: false,
    }
    .bounded();
    if let Err(e) = s.audit.append(&rec).await {
        tracing::error!(error = %e, "audit record not stored; refusing the answer");
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"detail": "The access could not be recorded in the audit trail; nothing was returned. Try again."})),
        )
            .into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    resp
}
