//! The test harness: the real server on a loopback port with a fresh seeded store, an HTTP
//! client that does not follow redirects, and logins through the real OAuth flows.

use jhe::auth::crypto::{random_alnum, sha256_b64url};
use jhe::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "Jhe1234!";
pub const ADMIN_CLIENT: &str = "jhe-admin-ui";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: jhe::http::AppState,
    pub dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

pub fn settings(site: &str) -> Settings {
    Settings {
        site_url: site.to_string(),
        invitation_expiration_days: 7,
        invitation_redemption_window_hours: 12,
        max_body_bytes: 1024 * 1024,
        max_page_bytes: 4_000_000,
        admin_client_id: ADMIN_CLIENT.into(),
        access_token_ttl: 3600,
        cognito: None,
        trusted_proxies: Vec::new(),
        body_read_timeout: std::time::Duration::from_secs(30),
        origin_secret: None,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("jhe-tests")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Starts the server on a fresh seeded store.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    spawn_on(dir, "127.0.0.1:0", true).await
}

/// Opens the stores the tests run on: the embedded engine, or, with `JHE_TEST_BACKEND=aws`,
/// DynamoDB and S3 on the moto server at `JHE_TEST_MOTO_URL` (one fresh table and bucket per
/// data folder, so a restart finds the same ones).
pub async fn open_server(dir: &std::path::Path, s: Settings) -> jhe::local::LocalServer {
    if std::env::var("JHE_TEST_BACKEND").as_deref() != Ok("aws") {
        return jhe::local::open(dir, s).expect("open store");
    }
    use jhe::adapters::aws::{dynamo_client, local_sdk_config, s3_client};
    let url = std::env::var("JHE_TEST_MOTO_URL").expect("JHE_TEST_BACKEND=aws needs JHE_TEST_MOTO_URL");
    let marker = dir.join("aws-names");
    let name = match std::fs::read_to_string(&marker) {
        Ok(n) => n,
        Err(_) => {
            let n = format!("jhe-{}", random_alnum(10).to_lowercase());
            std::fs::write(&marker, &n).expect("write marker");
            n
        }
    };
    let conf = local_sdk_config(&url).await;
    let dynamo = dynamo_client(&conf);
    jhe::adapters::dynamo::DynamoTable::create_table(&dynamo, &name).await.expect("create table");
    let s3 = s3_client(&conf);
    jhe::adapters::s3::S3Blobs::create_bucket(&s3, &name).await.expect("create bucket");
    let table = std::sync::Arc::new(jhe::adapters::dynamo::DynamoTable::new(dynamo, name.clone()));
    let blobs = std::sync::Arc::new(jhe::adapters::s3::S3Blobs::new(s3, name, ""));
    jhe::local::open_with(dir, s, table, blobs).expect("open stores")
}

/// Starts the server on an existing data folder and a given address.
pub async fn spawn_on(dir: tempfile::TempDir, addr: &str, seed: bool) -> TestApp {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = open_server(dir.path(), settings(&base)).await;
    if seed {
        server.seed_if_empty().await.expect("seed");
    }
    serve(listener, base, server.state.clone(), dir)
}

impl TestApp {
    /// Stops the server and releases the store (to reopen the same folder).
    pub async fn stop(self) -> tempfile::TempDir {
        self.server.abort();
        let _ = self.server.await;
        drop(self.state);
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(&body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(&body)).await
    }
    pub async fn delete(&self, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), body.as_ref()).await
    }

    /// Logs in through the real authorization-code + PKCE flow and returns the token response.
    pub async fn login(&self, email: &str) -> Value {
        self.login_with(email, PASSWORD).await.expect("login")
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Result<Value, String> {
        let verifier = random_alnum(64);
        let redirect = format!("{}/auth/callback", self.base);
        let state = random_alnum(8);
        let authorize = format!(
            "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&scope=openid%20email&state={state}",
            urlenc(&redirect),
            sha256_b64url(verifier.as_bytes())
        );
        let session = self.password_login(&authorize, email, password).await?;
        let resp =
            self.http.get(self.url(&authorize)).header("cookie", session).send().await.map_err(|e| e.to_string())?;
        let loc = location(&resp).ok_or("authorize did not redirect")?;
        let code = query_param(&loc, "code").ok_or_else(|| format!("no code in {loc}"))?;
        if query_param(&loc, "state").as_deref() != Some(state.as_str()) {
            return Err("state not returned".into());
        }
        let (status, tok) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("client_id", ADMIN_CLIENT),
                ("code_verifier", &verifier),
            ])
            .await;
        if status != StatusCode::OK {
            return Err(format!("token endpoint: {status} {tok}"));
        }
        Ok(tok)
    }

    /// Goes through the login form for an authorize URL; returns the session cookie.
    pub async fn password_login(&self, authorize: &str, email: &str, password: &str) -> Result<String, String> {
        let resp = self.http.get(self.url(authorize)).send().await.map_err(|e| e.to_string())?;
        let login_url = location(&resp).ok_or("authorize did not redirect to login")?;
        let resp = self.http.get(self.url(&login_url)).send().await.map_err(|e| e.to_string())?;
        let csrf_cookie = set_cookie(&resp, "csrftoken").ok_or("no csrf cookie")?;
        let html = resp.text().await.map_err(|e| e.to_string())?;
        let csrf = html_input(&html, "csrfmiddlewaretoken").ok_or("no csrf field")?;
        let next = html_input(&html, "next").ok_or("no next field")?.replace("&amp;", "&");
        let resp = self
            .http
            .post(self.url("/accounts/login/"))
            .header("cookie", format!("csrftoken={csrf_cookie}"))
            .form(&[
                ("csrfmiddlewaretoken", csrf.as_str()),
                ("next", next.as_str()),
                ("username", email),
                ("password", password),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_redirection() {
            return Err(format!("login refused: {}", resp.status()));
        }
        let session = set_cookie(&resp, "jhe_session").ok_or("no session cookie")?;
        Ok(format!("jhe_session={session}"))
    }

    /// `POST /o/token/` with `grant_type=client_credentials` and an API key as HTTP Basic.
    pub async fn client_credentials(&self, basic: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/o/token/"))
            .header("authorization", format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
        let status = r.status();
        (status, r.json().await.expect("json"))
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self.http.post(self.url("/o/token/")).form(form).send().await.expect("token request");
        let s = resp.status();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn access(&self, email: &str) -> String {
        self.login(email).await["access_token"].as_str().expect("access_token").to_string()
    }

    /// A token for `sub` signed by the server's own key, with chosen expiry (for expiry tests).
    pub async fn mint(&self, sub: i64, exp_offset: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let s = &self.state.issuer.settings;
        self.state
            .issuer
            .sign(&json!({"iss": s.issuer, "sub": sub.to_string(), "aud": s.audience, "exp": now + exp_offset, "iat": now - 10,
                          "jti": "t", "client_id": ADMIN_CLIENT, "scope": "openid", "token_use": "access", "grant": "authorization_code"}))
            .await
            .expect("sign")
    }

    /// A well-formed token naming the server's key id but signed by another key.
    pub async fn forged(&self, sub: i64) -> String {
        let other = jhe::auth::jwt::SigningKey::generate().expect("key");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let s = &self.state.issuer.settings;
        let good = self.mint(sub, 3600).await;
        let forged = other
            .sign(&json!({"iss": s.issuer, "sub": sub.to_string(), "aud": s.audience, "exp": now + 3600, "iat": now,
                          "jti": "t", "client_id": ADMIN_CLIENT, "scope": "openid", "token_use": "access", "grant": "authorization_code"}))
            .expect("sign");
        // Keep the real header (kid), swap in the foreign payload and signature.
        let h = good.split('.').next().expect("header");
        let mut parts = forged.splitn(3, '.');
        parts.next();
        format!("{h}.{}.{}", parts.next().expect("payload"), parts.next().expect("sig"))
    }

    pub fn repo(&self) -> &jhe::repo::Repo {
        &self.state.repo
    }
}

pub fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from)
}

pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| {
        let bytes = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 3 <= bytes.len()
                && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

pub fn html_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Writes a FHIR resource the server emitted to `$JHE_FHIR_DUMP_DIR` (if set), for the
/// fhir.resources validation step of the test command.
pub fn dump(name: &str, v: &Value) {
    if let Ok(dir) = std::env::var("JHE_FHIR_DUMP_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let n = random_alnum(6);
        let _ = std::fs::write(format!("{dir}/{name}-{n}.json"), serde_json::to_vec_pretty(v).unwrap_or_default());
    }
}

impl TestApp {
    /// A patient's access token through the real invitation flow (issued by `practitioner`).
    pub async fn patient_token(&self, practitioner: &str, patient: i64, client: i64) -> String {
        let (s, inv) =
            self.post("/api/v1/invitation", practitioner, json!({"patient_id": patient, "client_id": client})).await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        let token = inv["token"].as_str().expect("token").to_string();
        let (s, grant) = self.redeem(&token).await;
        assert_eq!(s, StatusCode::OK, "{grant}");
        let (s, tok) = self.exchange(&grant["grant"], &jhe::auth::crypto::b64url(token.as_bytes())).await;
        assert_eq!(s, StatusCode::OK, "{tok}");
        tok["access_token"].as_str().expect("access").to_string()
    }

    /// `POST /api/v1/invitation/{token}`: what the app gets for an invitation link.
    pub async fn redeem(&self, token: &str) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/api/v1/invitation/{token}"), None, None).await
    }

    /// The app's token request for an invitation's grant (`redeem`'s `grant`), with a PKCE verifier.
    pub async fn exchange(&self, grant: &Value, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", grant["code"].as_str().expect("code")),
            ("redirect_uri", grant["redirect_uri"].as_str().expect("redirect")),
            ("client_id", grant["client_id"].as_str().expect("client")),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// POSTs a raw body with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut rb = self.http.post(self.url(path)).bearer_auth(token).header("content-type", content_type).body(body);
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
    }
}

/// A random RFC 4122 version-4 uuid.
pub fn uuid() -> String {
    let h = random_alnum(32).bytes().map(|b| format!("{:x}", b % 16)).collect::<String>();
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// An Observation upload as a phone app sends it, with a valid Open mHealth data point.
pub fn observation(patient: i64, code: &str, device: i64, at: &str) -> Value {
    let dp = jhe::omh::example(code, &uuid(), at).expect("example data point");
    observation_with(patient, code, device, &dp)
}

pub fn observation_with(patient: i64, code: &str, device: i64, dp: &Value) -> Value {
    use base64::Engine;
    json!({
        "resourceType": "Observation",
        "identifier": [{"system": "https://example.org/app", "value": uuid()}],
        "status": "final",
        "code": {"coding": [{"system": "https://w3id.org/openmhealth", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "device": {"reference": format!("Device/{device}")},
        "valueAttachment": {"contentType": "application/json", "data": base64::engine::general_purpose::STANDARD.encode(dp.to_string())},
    })
}

pub fn batch(resources: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "batch", "entry": resources.into_iter().map(|r| json!({
        "resource": r, "request": {"method": "POST", "url": "Observation"}})).collect::<Vec<_>>()})
}

/// Starts the server with a changed state (e.g. a failing port), on a fresh seeded store.
pub async fn spawn_with(change: impl FnOnce(&mut jhe::http::AppState)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = open_server(dir.path(), settings(&base)).await;
    server.seed_if_empty().await.expect("seed");
    let mut state = server.state.clone();
    change(&mut state);
    serve(listener, base, state, dir)
}

/// Serves `state` on `listener` (whose address `base` is), the data folder kept with the app.
fn serve(
    listener: tokio::net::TcpListener,
    base: String,
    state: jhe::http::AppState,
    dir: tempfile::TempDir,
) -> TestApp {
    let app = jhe::http::app(state.clone());
    serve_app(listener, base, state, dir, app, jhe::http::serve::Limits::default())
}

/// Serves `app` with the local server's own accept loop, as `jhe serve` runs it.
fn serve_app(
    listener: tokio::net::TcpListener,
    base: String,
    state: jhe::http::AppState,
    dir: tempfile::TempDir,
    app: axum::Router,
    limits: jhe::http::serve::Limits,
) -> TestApp {
    let handle = tokio::spawn(async move {
        jhe::http::serve::serve(listener, app, limits, std::future::pending()).await.expect("serve");
    });
    TestApp { base, http: client(), state, dir, server: handle }
}

/// Starts a server on a fresh seeded store with the app `build` makes of its state (with the
/// settings `change` changed), under `limits`.
pub async fn spawn_custom(
    change: impl FnOnce(&mut Settings),
    limits: jhe::http::serve::Limits,
    build: impl FnOnce(jhe::http::AppState) -> axum::Router,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut s = settings(&base);
    change(&mut s);
    let server = open_server(dir.path(), s).await;
    server.seed_if_empty().await.expect("seed");
    let state = server.state.clone();
    let app = build(state.clone());
    serve_app(listener, base, state, dir, app, limits)
}

/// Serves the state `build` makes (for the site URL it is given) on a fresh loopback port.
pub async fn spawn_state(build: impl AsyncFnOnce(Settings) -> jhe::http::AppState) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = build(settings(&base)).await;
    serve(listener, base, state, dir)
}
