//! HTTP: the state every handler gets, one router per route group, and `app()` merging them.
//! The same routers run under `lambda_http` (one group per function) and in the local server.
//!
//! Must not depend on: aws_sdk_*.

pub mod admin;
pub mod audit;
pub mod error;
pub mod extract;
pub mod fhir;
pub mod oauth;
pub mod openapi;
pub mod routes;
pub mod serve;
pub mod site;
pub mod stored;
pub mod wire;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::issuer::Issuer;
use crate::config::Settings;
use crate::ports::{AuditLog, BlobStore, Identity};
use crate::repo::Repo;

/// Injected once; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub repo: Repo,
    pub identity: Arc<dyn Identity>,
    pub issuer: Arc<Issuer>,
    pub settings: Arc<Settings>,
    /// Where uploads are archived before they are indexed.
    pub blobs: Arc<dyn BlobStore>,
    /// The append-only audit trail.
    pub audit: Arc<dyn AuditLog>,
}

/// `/health`: liveness, no store access.
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": crate::config::VERSION}))
}

/// `/api/schema/`: the OpenAPI document (JSON, which YAML readers read too), its server the site URL.
async fn api_schema(axum::extract::State(s): axum::extract::State<AppState>) -> axum::response::Response {
    let mut r = Json(openapi::document(&s.settings.site_url)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/vnd.oai.openapi+json"),
    );
    r
}

/// The route groups, by name: each becomes one Lambda function; `app()` serves them all.
pub fn route_groups() -> Vec<(&'static str, Router<AppState>)> {
    routes::GROUPS.iter().map(|g| (*g, routes::router(g))).collect()
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    no_route(uri.path())
}

/// The paths whose answers, errors included, are FHIR (OperationOutcomes): the FHIR API and the
/// R4 import.
pub const FHIR_PREFIXES: [&str; 2] = ["/FHIR/", "/fhir-import/"];

/// Whether a path's answers are FHIR (`FHIR_PREFIXES`).
pub fn is_fhir_path(path: &str) -> bool {
    FHIR_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The answer for a path no route serves: `{"detail"}`, or an OperationOutcome on FHIR paths.
pub fn no_route(path: &str) -> axum::response::Response {
    if is_fhir_path(path) {
        return fhir::FhirError(crate::error::Error::NotFound("No such FHIR endpoint.".into())).into_response();
    }
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response()
}

/// A route group ready to serve: the panic boundary inside the audit middleware (so a handler's
/// panic is answered and recorded like any other failure), and the state applied.
pub fn serve_group(group: Router<AppState>, state: AppState) -> Router {
    group
        .layer(axum::middleware::from_fn(caught))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::audited))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), from_the_edge))
        .with_state(state)
}

/// The header the CDN adds with `Settings::origin_secret`.
pub const ORIGIN_SECRET_HEADER: &str = "x-jhe-origin-secret";

/// With an origin secret configured, only requests that came through the CDN get in.
async fn from_the_edge(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(secret) = &s.settings.origin_secret {
        let sent = req.headers().get(ORIGIN_SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !crate::auth::crypto::ct_eq(sent, secret) {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"detail": "Use the site's address, not the API's own endpoint."})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Runs the handler, turning a panic into the route's usual 500 (an OperationOutcome on FHIR
/// routes, `{"detail"}` elsewhere); the cause is logged, never sent.
async fn caught(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::Poll;
    let fhir = is_fhir_path(req.uri().path());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut run = Box::pin(next.run(req));
    let done = std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx))) {
        Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(cause) => Poll::Ready(Err(cause)),
    })
    .await;
    match done {
        Ok(resp) => resp,
        Err(cause) => {
            let what = cause
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| cause.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let err = crate::error::Error::Internal(format!("handler panicked on {method} {path}: {what}"));
            if fhir { fhir::FhirError(err).into_response() } else { error::ApiError(err).into_response() }
        }
    }
}

/// Every route of every group, with the audit middleware and the state applied.
pub fn app(state: AppState) -> Router {
    let mut r = Router::new();
    for (_, g) in route_groups() {
        r = r.merge(g);
    }
    serve_group(r, state)
}
