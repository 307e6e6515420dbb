//! Extractors: the verified `Caller`, JSON bodies with normalised keys and a size limit, query
//! parameters, and the request's absolute URL (for page links).

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::wire::{snake, snake_keys};
use crate::domain::Caller;
use crate::domain::admin::input::{Body, Params};
use crate::error::Error;
use crate::repo::ClientRef;

fn unauthorized(m: &str) -> ApiError {
    ApiError(Error::Unauthorized(m.into()))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Resolves the caller from a bearer token: verified by the identity port, then the user and
/// their roles loaded; API-key tokens stop working as soon as the key is deleted.
pub async fn resolve_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("Authentication credentials were not provided."))?;
    let vt = state.identity.verify(token).await.map_err(|why| {
        tracing::info!(%why, "bearer token refused");
        unauthorized("Invalid or expired token.")
    })?;
    let named: Option<i64> = if vt.subject.is_empty() && vt.api_key.is_some() {
        None
    } else {
        Some(vt.subject.parse().map_err(|_| unauthorized("Invalid or expired token."))?)
    };
    let uid = match &vt.api_key {
        Some(key) => match state.repo.client_ref(key).await? {
            Some(ClientRef::ApiKey { user_id, .. }) if named.is_none_or(|u| u == user_id) => user_id,
            _ => return Err(unauthorized("This API key has been revoked.")),
        },
        None => named.ok_or_else(|| unauthorized("Invalid or expired token."))?,
    };
    let user = state.repo.user(uid).await?.ok_or_else(|| unauthorized("Invalid or expired token."))?;
    let roles: BTreeMap<_, _> = state.repo.user_roles(uid).await?.into_iter().collect();
    // An API key's own client id (the pool issues every key's tokens to one app client).
    Ok(Caller { user, roles, client_id: vt.api_key.unwrap_or(vt.client_id) })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = resolve_caller(state, &parts.headers).await?;
        if let Some(slot) = parts.extensions.get::<super::audit::AuditSlot>() {
            slot.caller(&c);
        }
        Ok(c)
    }
}

/// A JSON (or form) object body, keys converted to snake_case.
pub struct JsonBody(pub Body);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, &state.settings).await.map_err(|e| {
            ApiError(match e {
                BodyError::TooLarge(_) => Error::PayloadTooLarge(e.message()),
                BodyError::TooSlow => Error::Timeout(e.message()),
                BodyError::Broken(_) => Error::BadRequest(e.message()),
            })
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Body::default()));
        }
        let v: Value = if is_form {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| ApiError(Error::bad(format!("Malformed form body: {e}"))))?;
            Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ApiError(Error::bad(format!("JSON parse error - {e}"))))?
        };
        Ok(Self(Body::from_value(snake_keys(v))?))
    }
}

/// Query parameters with snake_case keys.
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parse_query(parts.uri.query().unwrap_or(""))?))
    }
}

pub fn parse_query(q: &str) -> Result<Params, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(q).map_err(|e| ApiError(Error::bad(format!("Malformed query string: {e}"))))?;
    Ok(pairs.into_iter().map(|(k, v)| (snake(&k), v)).collect())
}

/// The request's absolute URL, on the configured site URL: links (`fullUrl`, `next`, `Location`,
/// discovery documents) never come from the `Host` or `X-Forwarded-*` headers a client sends
/// (behind CloudFront `Host` is the API's own host; elsewhere anyone's).
#[derive(Debug, Clone)]
pub struct ReqUrl {
    /// `scheme://host[:port]` of the site.
    pub origin: String,
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl ReqUrl {
    pub fn from_parts(uri: &axum::http::Uri, site_url: &str) -> Self {
        let query = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
        Self { origin: site_url.to_string(), path: uri.path().to_string(), query }
    }

    /// This URL with one query parameter set (added or replaced).
    pub fn with_param(&self, key: &str, value: &str) -> String {
        let mut q: Vec<(String, String)> = self.query.iter().filter(|(k, _)| k != key).cloned().collect();
        q.push((key.to_string(), value.to_string()));
        let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
        format!("{}{}?{qs}", self.origin, self.path)
    }

    pub fn full(&self) -> String {
        if self.query.is_empty() {
            format!("{}{}", self.origin, self.path)
        } else {
            format!("{}{}?{}", self.origin, self.path, serde_urlencoded::to_string(&self.query).unwrap_or_default())
        }
    }
}

impl FromRequestParts<AppState> for ReqUrl {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(&parts.uri, &state.settings.site_url))
    }
}

/// The address a request came from: the peer as the runtime saw it (the TCP peer locally, API
/// Gateway's `sourceIp` in a Lambda function, `audit::PeerAddr`), or, when that peer is a
/// configured proxy (`Settings::trusted_proxies`), the first hop of `X-Forwarded-For`, read from
/// the right, that is not one. A forwarding header from anyone else is not believed.
pub fn source_ip(
    parts_ext: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = parts_ext
        .get::<super::audit::PeerAddr>()
        .map(|p| p.0)
        .or_else(|| parts_ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()))?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let chain: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(chain.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer))
}

/// The client's address (`source_ip`), for counting failed attempts.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(source_ip(&parts.extensions, &parts.headers, &state.settings.trusted_proxies)))
    }
}

/// Why a request body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than `JHE_MAX_BODY_BYTES` (413).
    TooLarge(usize),
    /// Not sent within the time allowed (`Settings::body_read_timeout`, 408).
    TooSlow,
    /// The connection broke (400).
    Broken(String),
}

impl BodyError {
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            Self::TooLarge(_) => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooSlow => axum::http::StatusCode::REQUEST_TIMEOUT,
            Self::Broken(_) => axum::http::StatusCode::BAD_REQUEST,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Self::TooLarge(limit) => format!("The request body is larger than {limit} bytes."),
            Self::TooSlow => "The request body was not sent in time.".to_string(),
            Self::Broken(e) => format!("The request body could not be read: {e}"),
        }
    }
}

/// Reads a request body: at most the configured limit (`JHE_MAX_BODY_BYTES`, the one limit of
/// every route; a declared `Content-Length` over it is refused before reading), within the
/// configured time (`JHE_BODY_READ_TIMEOUT_SECS`). Each route answers the error in its own format.
pub async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    settings: &crate::config::Settings,
) -> Result<axum::body::Bytes, BodyError> {
    let limit = settings.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match tokio::time::timeout(settings.body_read_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            // `to_bytes` says "length limit exceeded" when the body outgrew the limit.
            let text = e.to_string();
            if text.contains("length limit") { Err(BodyError::TooLarge(limit)) } else { Err(BodyError::Broken(text)) }
        }
    }
}
