//! The audit middleware: for every request that touches patient data, consent or access
//! grants, one record is written after the handler ran and before the answer leaves. If the
//! record cannot be stored, the answer is replaced by a 503: there is no unaudited access.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::domain::Caller;
use crate::domain::audit::{Agent, AuditNote, AuditRecord};
use crate::model::Id;

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
        let role = crate::access::agent_role(c);
        let agent =
            Agent { user_id: Some(c.id()), role: Some(role), client_id: Some(c.client_id.clone()), attempted: None };
        self.with(|n| n.agent = Some(agent));
    }
}

/// The action of a record written for a route the route table classes as not audited, which
/// noted a patient all the same (a test fails on any such record).
pub const UNCLASSIFIED: &str = "unclassified";

/// The slot as handlers extract it (every routed request has one).
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
    // The route's class, from the route table (by the pattern the router matched).
    let audit = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|m| super::routes::audit_of(req.method(), m.as_str()));
    let Some(audit) = audit else {
        // No route: the fallback's 404.
        return next.run(req).await;
    };
    let class = audit.class(req.uri().path());
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
    let (action, fhir_action) = match class {
        Some(c) => c,
        // A route classed as touching no patient data did: record it anyway, and say so.
        None if !note.patients.is_empty() || !note.grants.is_empty() || path_patient.is_some() => {
            tracing::error!(path = %path, "a route classed as not audited touched patient data; recorded as unclassified");
            (UNCLASSIFIED, "E")
        }
        None => return resp,
    };
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
