//! The built-in OIDC issuer's HTTP side, on upstream's paths: discovery and JWKS, the
//! authorization endpoint with its login form (CSRF-protected, cookie session), the token
//! endpoint, userinfo, and the web UI's settings script. CORS is open on `/o/` as upstream.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use super::AppState;
use super::extract::{ClientAddr, ReqUrl, parse_query, read_body, resolve_caller};
use crate::auth::crypto::random_alnum;
use crate::auth::flows::{self, Authorized, Granted, Login, with_query};
use crate::auth::issuer::{OAuthError, TokenRequest};
use crate::model::Id;

const SESSION_COOKIE: &str = "jhe_session";
const CSRF_COOKIE: &str = "csrftoken";
const SESSION_TTL: i64 = 12 * 3600;

/// Open CORS on the OAuth endpoints (tokens are not cookies there), with preflight answered here.
pub(super) async fn cors(req: Request, next: Next) -> Response {
    let mut resp =
        if req.method() == Method::OPTIONS { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

/// The user pool, when it (not the built-in issuer) signs users in: the login pages, discovery
/// and keys are then the pool's, and these routes send the browser there.
fn pool(s: &AppState) -> Option<&crate::config::CognitoSettings> {
    s.settings.cognito.as_ref().filter(|_| s.issuer.is_delegating())
}

pub(super) async fn discovery(State(s): State<AppState>) -> Response {
    if let Some(c) = pool(&s) {
        return Redirect::temporary(&format!("{}/.well-known/openid-configuration", c.issuer)).into_response();
    }
    let site = &s.settings.site_url;
    Json(json!({
        "issuer": s.issuer.settings.issuer,
        "authorization_endpoint": format!("{site}/o/authorize/"),
        "token_endpoint": format!("{site}/o/token/"),
        "userinfo_endpoint": format!("{site}/o/userinfo/"),
        "jwks_uri": format!("{site}/o/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email"],
        "claims_supported": ["sub", "email", "iss", "aud", "exp", "iat"],
    }))
    .into_response()
}

pub(super) async fn jwks(State(s): State<AppState>) -> Response {
    if let Some(c) = pool(&s) {
        return Redirect::temporary(&c.jwks_url).into_response();
    }
    Json(s.issuer.jwks().await).into_response()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The user of a live login session, if the request carries one.
async fn session_user(s: &AppState, headers: &HeaderMap) -> crate::error::Result<Option<Id>> {
    match cookie(headers, SESSION_COOKIE) {
        Some(raw) => crate::auth::sessions::user(&s.repo, &s.issuer.signer, raw).await,
        None => Ok(None),
    }
}

/// `; Secure` when the site is served over https (a cookie then never travels in the clear).
fn secure(s: &AppState) -> &'static str {
    if s.settings.site_url.starts_with("https://") { "; Secure" } else { "" }
}

/// 429 with `Retry-After`: too many failures in a row from this account or address.
fn held_back(wait: i64, html: bool) -> Response {
    let msg = format!("Too many failed attempts. Try again in {wait} seconds.");
    let mut r = if html {
        (StatusCode::TOO_MANY_REQUESTS, Html(format!("<h1>Too many attempts</h1><p>{msg}</p>"))).into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": "slow_down", "error_description": msg}))).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r.extensions_mut().insert(super::audit::AuditReason(msg));
    r
}

fn oauth_error_page(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": "invalid_request", "error_description": msg}))).into_response()
}

pub(super) async fn authorize(State(s): State<AppState>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    if let Some(c) = pool(&s) {
        // The managed login checks the client, redirect URI and PKCE itself.
        let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Redirect::to(&format!("{}/oauth2/authorize{q}", c.domain)).into_response();
    }
    let Ok(q) = parse_query(uri.query().unwrap_or("")) else {
        return oauth_error_page(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let user = match session_user(&s, &headers).await {
        Ok(u) => u,
        Err(e) => return super::error::ApiError(e).into_response(),
    };
    match flows::authorize(&s.issuer, &s.repo, &s.settings.site_url, &q, user).await {
        Ok(Authorized::Refused(why)) => oauth_error_page(StatusCode::BAD_REQUEST, why),
        Ok(Authorized::Redirect(to)) => Redirect::to(&to).into_response(),
        Ok(Authorized::Login) => {
            let next = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
            Redirect::to(&with_query("/accounts/login/", &[("next", &next)])).into_response()
        }
        Err(e) => super::error::ApiError(e).into_response(),
    }
}

fn oauth_error(e: OAuthError) -> Response {
    let status = match e.error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = (status, Json(json!({"error": e.error, "error_description": e.description}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"oauth\""));
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

use super::audit::{Slot, note};

pub(super) async fn token(
    State(s): State<AppState>,
    slot: Slot,
    addr: ClientAddr,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let req = match read_body(&headers, body, &s.settings).await.map(|b| TokenRequest::from_form(&b, authorization)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return oauth_error(e),
        Err(e) => return with_status(oauth_error(OAuthError::invalid_request(e.message())), e.status()),
    };
    note_token_request(&slot, &req);
    match flows::grant(&s.issuer, &s.repo, &*s.identity, req, addr.0).await {
        Ok(granted) => token_answer(&slot, granted),
        Err(e) => super::error::ApiError(e).into_response(),
    }
}

/// The token endpoint's answer to what its request came to, noted for the audit record.
fn token_answer(slot: &Slot, granted: Granted) -> Response {
    match granted {
        Granted::Tokens { tokens, user } => {
            note(slot, |n| n.agent.iter_mut().for_each(|a| a.user_id = user));
            no_store(Json(tokens).into_response())
        }
        Granted::Refused(e) => {
            note(slot, |n| n.reason = Some(format!("{}: {}", e.error, e.description)));
            oauth_error(e)
        }
        Granted::HeldBack(wait) => held_back(wait, false),
    }
}

/// The grant type and client of a token request, for its audit record.
fn note_token_request(slot: &Slot, req: &TokenRequest) {
    let grant = if req.grant_type.is_empty() { "none" } else { req.grant_type.as_str() };
    note(slot, |n| {
        n.action = Some(format!("token.{grant}"));
        n.agent = Some(crate::domain::audit::Agent { client_id: req.client_id.clone(), ..Default::default() });
    });
}

fn with_status(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match resolve_caller(&s, &headers).await {
        Ok(c) => Json(json!({"sub": c.user.id.to_string(), "email": c.user.email})).into_response(),
        Err(e) => e.into_response(),
    }
}

// ------------------------------------------------------------------- login pages

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

/// Only same-site paths may be redirected to after login (no open redirects): a `/` not followed
/// by another `/` or a `\\`, and only visible ASCII (a tab or line break that a browser drops
/// would turn `/\t/evil.example` into `//evil.example`, and cannot go in a header at all);
/// anything else goes to `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !matches!(n.as_bytes().get(1), Some(b'/' | b'\\'))
                && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(s: &AppState, next: &str, error: Option<&str>, email: &str) -> Response {
    let raw = random_alnum(32);
    let signed = s.issuer.signer.sign(&format!("csrf:{raw}"));
    let err =
        error.map(|e| format!(r#"<div class="alert alert-danger" role="alert">{}</div>"#, esc(e))).unwrap_or_default();
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · JupyterHealth Exchange</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="{css}"></head>
<body class="bg-body-tertiary"><main class="container py-5"><div class="row justify-content-center"><div class="col-12 col-sm-9 col-md-6 col-lg-4">
<h1 class="h3 mb-4 text-center">JupyterHealth Exchange</h1>{err}
<form method="post" action="/accounts/login/" class="card card-body shadow-sm">
<input type="hidden" name="csrfmiddlewaretoken" value="{raw}">
<input type="hidden" name="next" value="{next}">
<label for="username" class="form-label">Email</label><input id="username" name="username" type="email" class="form-control mb-3" autocomplete="username" required value="{email}">
<label for="password" class="form-label">Password</label><input id="password" name="password" type="password" class="form-control mb-4" autocomplete="current-password" required>
<button type="submit" class="btn btn-primary w-100">Sign in</button></form></div></div></main></body></html>"#,
        css = super::site::BOOTSTRAP_CSS,
        next = esc(next),
        email = esc(email),
    );
    let mut resp = Html(html).into_response();
    if error.is_some() {
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("{CSRF_COOKIE}={signed}; Path=/accounts/; HttpOnly; SameSite=Lax{}", secure(s)))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Never framed (no clickjacking of the password form); no script at all.
    super::site::protect(
        resp.headers_mut(),
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
    );
    resp
}

pub(super) async fn login_form(State(s): State<AppState>, url: ReqUrl) -> Response {
    if pool(&s).is_some() {
        // The web UI starts the pool's login (with PKCE) itself.
        return Redirect::to("/").into_response();
    }
    let next = url.query.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str());
    login_page(&s, &safe_next(next), None, "")
}

pub(super) async fn login_submit(
    State(s): State<AppState>,
    slot: Slot,
    addr: ClientAddr,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if pool(&s).is_some() {
        return Redirect::to("/").into_response();
    }
    let form = match read_body(&headers, body, &s.settings).await {
        Ok(b) => LoginForm::parse(&b),
        Err(e) => {
            return (e.status(), Html(format!("<h1>{}</h1><p>{}</p>", e.status(), esc(&e.message())))).into_response();
        }
    };
    if !form.noted_csrf_matches(&s, &slot, &headers) {
        return (StatusCode::FORBIDDEN, Html(CSRF_FAILED)).into_response();
    }
    let email = form.email.clone();
    match flows::password_login(&s.issuer, &s.repo, &email, form.password.clone(), addr.0, SESSION_TTL).await {
        Ok(login) => login_answer(&s, &slot, login, &form),
        Err(e) => super::error::ApiError(e).into_response(),
    }
}

/// The login form's answer to what the attempt came to, noted for the audit record.
fn login_answer(s: &AppState, slot: &Slot, login: Login, form: &LoginForm) -> Response {
    match login {
        Login::SignedIn { user, session } => signed_in(s, slot, &user, &session, &form.next),
        Login::Refused => {
            note(slot, |n| n.reason = Some("wrong email or password".into()));
            login_page(s, &form.next, Some("Please enter a correct email and password."), &form.email)
        }
        Login::HeldBack(wait) => held_back(wait, true),
    }
}

const CSRF_FAILED: &str =
    "<h1>403 Forbidden</h1><p>CSRF verification failed. Reload the sign-in page and try again.</p>";

/// The login form's fields.
struct LoginForm {
    email: String,
    password: String,
    next: String,
    csrf: String,
}

impl LoginForm {
    fn parse(body: &[u8]) -> Self {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        LoginForm {
            email: field("username").trim().to_lowercase(),
            password: field("password"),
            next: safe_next(Some(&field("next"))),
            csrf: field("csrfmiddlewaretoken"),
        }
    }

    /// Double-submit CSRF check: the signed cookie must carry the token the form carries. The
    /// attempt is noted for the audit record, and why it failed.
    fn noted_csrf_matches(&self, s: &AppState, slot: &Slot, headers: &HeaderMap) -> bool {
        let attempted = Some(self.email.clone());
        note(slot, |n| n.agent = Some(crate::domain::audit::Agent { attempted, ..Default::default() }));
        let ok = cookie(headers, CSRF_COOKIE)
            .and_then(|c| s.issuer.signer.verify(c))
            .and_then(|p| p.strip_prefix("csrf:"))
            .is_some_and(|raw| !raw.is_empty() && crate::auth::crypto::ct_eq(raw, &self.csrf));
        if !ok {
            note(slot, |n| n.reason = Some("CSRF check failed".into()));
        }
        ok
    }
}

/// The answer to a successful login: its audit note, the session cookie, and on to `next`.
fn signed_in(s: &AppState, slot: &Slot, user: &crate::model::User, session: &str, next: &str) -> Response {
    note(slot, |n| {
        n.agent = Some(crate::domain::audit::Agent { user_id: Some(user.id), ..Default::default() });
        n.patients.extend(user.patient_id);
    });
    let mut resp = Redirect::to(next).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_TTL}{}",
        secure(s)
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /accounts/logout/` asks (a GET changes nothing); `POST` ends the session: its record is
/// deleted, so the cookie is refused even if a copy of it survives.
pub(super) async fn logout_page(State(s): State<AppState>) -> Response {
    if pool(&s).is_some() {
        return logout(State(s), HeaderMap::new()).await;
    }
    Html(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out · JupyterHealth Exchange</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><h1>JupyterHealth Exchange</h1>
<form method="post" action="/accounts/logout/"><button type="submit">Sign out</button></form></body></html>"#,
    )
    .into_response()
}

pub(super) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(c) = pool(&s) {
        let to = with_query(
            &format!("{}/logout", c.domain),
            &[("client_id", &c.spa_client_id), ("logout_uri", &format!("{}/", s.settings.site_url))],
        );
        return Redirect::to(&to).into_response();
    }
    if let Some(raw) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = crate::auth::sessions::close(&s.repo, &s.issuer.signer, raw).await
    {
        return super::error::ApiError(e).into_response();
    }
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", secure(&s)))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The web UI's settings, as upstream's `client_settings.js` (`window.OIDCSettings.client_id`).
pub(super) async fn server_settings(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/javascript; charset=utf-8")], settings_js(&s)).into_response()
}

/// The settings script: the OIDC authority and client of the web UI, and the constants it shows.
fn settings_js(s: &AppState) -> String {
    let types: serde_json::Map<String, serde_json::Value> =
        crate::model::ORGANIZATION_TYPES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let ds_types: serde_json::Map<String, serde_json::Value> =
        crate::model::DATA_SOURCE_TYPES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let perms = serde_json::Value::Object(
        crate::access::UI_PERMISSIONS.iter().map(|(role, p)| (role.to_string(), json!(p))).collect(),
    );
    let (authority, client_id, seed) = match pool(s) {
        // Cognito's discovery document has no end_session_endpoint: the web UI gets its /logout.
        Some(c) => (
            serde_json::to_string(&c.issuer).unwrap_or_default(),
            serde_json::to_string(&c.spa_client_id).unwrap_or_default(),
            format!("\n  metadataSeed: {{ end_session_endpoint: {} }},", json!(format!("{}/logout", c.domain))),
        ),
        None => (
            r#"window.location.origin + "/o/""#.to_string(),
            serde_json::to_string(&s.settings.admin_client_id).unwrap_or_default(),
            String::new(),
        ),
    };
    let js = format!(
        r#"const redirectUri = window.location.origin + "/auth/callback";
const authority = {authority};

window.OIDCSettings = {{
  authority: authority,
  client_id: {client_id},
  redirect_uri: redirectUri,
  extraQueryParams: {{}},
  response_mode: "query",{seed}
}};

const CONSTANTS = {{
  JHE_VERSION: "{ver}",
  client_id: {client_id},
  ORGANIZATION_TOP_LEVEL_PART_OF_ID: 0,
  ORGANIZATION_TOP_LEVEL_PART_OF_LABEL: "None (Top Level Organization)",
  ORGANIZATION_TYPES: {types},
  DATA_SOURCE_TYPES: {ds_types},
  ROLE_PERMISSIONS: {perms}
}};
"#,
        ver = crate::config::VERSION,
        types = serde_json::Value::Object(types),
        ds_types = serde_json::Value::Object(ds_types),
    );
    js
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(super::safe_next(Some("/o/authorize/?x=1")), "/o/authorize/?x=1");
        assert_eq!(super::safe_next(Some("//evil.example")), "/");
        assert_eq!(super::safe_next(Some("https://evil.example")), "/");
        assert_eq!(super::safe_next(None), "/");
        for bad in ["/\r\nX", "/\t/evil.example", "/ /evil.example", "/\\evil.example", "/a\\b", "/\u{7f}", "/é"] {
            assert_eq!(super::safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(super::safe_next(Some("/organizations/20003?tab=studies#x")), "/organizations/20003?tab=studies#x");
    }
}
