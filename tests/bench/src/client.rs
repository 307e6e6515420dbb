//! HTTP plumbing: the client, JSON calls with bounded timeouts, the loopback guard, and access
//! tokens (a given one, the browser login flow with PKCE, or a patient's invitation), refreshed
//! before they expire so long runs keep going.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

pub type Res<T> = Result<T, String>;

/// The OAuth client of the web UI, used by the browser login flow.
pub const ADMIN_CLIENT: &str = "jhe-admin-ui";
/// A token older than this is replaced before use (the server's default lifetime is one hour).
const TOKEN_REFRESH_AFTER: Duration = Duration::from_secs(40 * 60);
/// No single request may take longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Refuses anything but a loopback host: this tool generates heavy load and is only meant to be
/// pointed at a server on the same machine.
pub fn check_loopback(base: &str) -> Res<()> {
    let url = reqwest::Url::parse(base).map_err(|e| format!("--url {base:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("--url {base:?}: only http:// loopback URLs are supported"));
    }
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let ok =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(format!("--url {base:?}: jhe-bench only targets loopback servers (127.0.0.0/8, ::1, localhost)"))
    }
}

/// The server's base URL and an HTTP client that does not follow redirects (the login flow reads them).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Res<Self> {
        let http = reqwest::Client::builder()
            .user_agent("jhe-bench")
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), http })
    }

    /// An absolute URL for a path (absolute URLs, e.g. `next` links, pass through).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get_json(&self, path: &str, token: &str) -> Res<Value> {
        let resp =
            self.http.get(self.url(path)).bearer_auth(token).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        answer("GET", path, resp).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Res<Value> {
        let mut rb = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.map_err(|e| format!("POST {path}: {e}"))?;
        answer("POST", path, resp).await
    }

    /// Every item of a paginated admin list (`{count, next, results}`), following `next`
    /// (at most `max_pages` pages).
    pub async fn list_all(&self, path: &str, token: &str, max_pages: usize) -> Res<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(self.url(path));
        let mut pages = 0;
        while let Some(url) = next.take() {
            let v = self.get_json(&url, token).await?;
            if let Some(items) = v["results"].as_array() {
                out.extend(items.iter().cloned());
            } else if let Some(items) = v.as_array() {
                out.extend(items.iter().cloned());
            }
            next = v["next"].as_str().map(String::from);
            pages += 1;
            if pages >= max_pages {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /health` answered 200.
    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(self.url("/health")).timeout(Duration::from_secs(2)).send().await, Ok(r) if r.status().is_success())
    }
}

async fn answer(method: &str, path: &str, resp: reqwest::Response) -> Res<Value> {
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
    if !status.is_success() {
        let mut t = text;
        t.truncate(400);
        return Err(format!("{method} {path}: {status}: {t}"));
    }
    if text.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}"))
    }
}

/// `n` random bytes from the system generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    // The system random source does not fail in practice; fall back to the clock if it does.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8);
        }
    }
    b
}

/// `n` random characters of `[a-z0-9]`.
pub fn random_id(n: usize) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes(n).iter().map(|b| A[*b as usize % A.len()] as char).collect()
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from)
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    u.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The web UI's OAuth client id, as the server's `/common/server-settings.js` names it
/// (`client_id: "..."`; upstream's seed makes a random one); `jhe-admin-ui` if it names none.
pub async fn admin_client_id(api: &Api) -> Res<String> {
    let resp = api.http.get(api.url("/common/server-settings.js")).send().await.map_err(|e| e.to_string())?;
    let js = resp.text().await.map_err(|e| e.to_string())?;
    Ok(js_string_field(&js, "client_id").unwrap_or_else(|| ADMIN_CLIENT.to_string()))
}

/// The string after the first `{key}:` in a script (`client_id: "abc"` -> `abc`).
fn js_string_field(js: &str, key: &str) -> Option<String> {
    let at = js.find(&format!("{key}:"))? + key.len() + 1;
    let rest = js[at..].trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    Some(body[..body.find(quote)?].to_string())
}

/// The cookies a browser would hold: each `Set-Cookie` replaces the one of its name.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let Some((k, v)) = c.split(';').next().and_then(|kv| kv.trim().split_once('=')) else { continue };
            self.0.retain(|(name, _)| name != k);
            self.0.push((k.to_string(), v.to_string()));
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// The login form of a page: where it posts (its `action`, else the page itself) and its hidden
/// fields, whatever the server names them.
fn login_form(html: &str, page_url: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &html[html.find("<form")?..];
    let tag = &form[..form.find('>')?];
    let action = attr(tag, "action").map(|a| html_unescape(&a)).filter(|a| !a.is_empty());
    let url = reqwest::Url::parse(page_url).ok()?;
    let target = match action {
        Some(a) => url.join(&a).ok()?.to_string(),
        None => page_url.to_string(),
    };
    let body = &form[..form.find("</form>").unwrap_or(form.len())];
    let hidden = body
        .split("<input")
        .skip(1)
        .filter_map(|t| {
            let t = &t[..t.find('>')?];
            (attr(t, "type")?.eq_ignore_ascii_case("hidden"))
                .then(|| Some((attr(t, "name")?, html_unescape(&attr(t, "value").unwrap_or_default()))))?
        })
        .collect();
    Some((target, hidden))
}

/// The value of `name="..."` in a tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let at = tag.find(&needle)? + needle.len();
    Some(tag[at..][..tag[at..].find('"')?].to_string())
}

/// Logs in through the browser flow (authorize -> login form -> authorize -> code -> token, with
/// PKCE S256) and returns the access token. Works with any server of the API: the client id comes
/// from `/common/server-settings.js`, the form is posted to its action with its hidden fields and
/// the cookies the server set, as a browser does.
pub async fn login(api: &Api, email: &str, password: &str) -> Res<String> {
    let err = |step: &str, e: String| format!("login as {email}: {step}: {e}");
    let client_id = admin_client_id(api).await.map_err(|e| err("server settings", e))?;
    let verifier = random_id(64);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    let redirect = format!("{}/auth/callback", api.base);
    let state = random_id(12);
    let authorize = format!(
        "{}/o/authorize/?response_type=code&client_id={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&scope=openid%20email&state={state}",
        api.base,
        enc(&client_id),
        enc(&redirect)
    );
    let mut jar = Jar::default();
    let resp = api.http.get(&authorize).send().await.map_err(|e| err("authorize", e.to_string()))?;
    jar.take(&resp);
    let login_url =
        api.url(&location(&resp).ok_or_else(|| err("authorize", format!("{} without a redirect", resp.status())))?);
    let resp = api
        .http
        .get(&login_url)
        .header("cookie", jar.header())
        .send()
        .await
        .map_err(|e| err("login page", e.to_string()))?;
    jar.take(&resp);
    let html = resp.text().await.map_err(|e| err("login page", e.to_string()))?;
    let (target, mut fields) = login_form(&html, &login_url).ok_or_else(|| err("login page", "no form".into()))?;
    fields.push(("username".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let resp = api
        .http
        .post(&target)
        .header("cookie", jar.header())
        .form(&fields)
        .send()
        .await
        .map_err(|e| err("login form", e.to_string()))?;
    if !resp.status().is_redirection() {
        return Err(err("login form", format!("refused ({})", resp.status())));
    }
    jar.take(&resp);
    let resp = api
        .http
        .get(&authorize)
        .header("cookie", jar.header())
        .send()
        .await
        .map_err(|e| err("authorize", e.to_string()))?;
    let loc = location(&resp).ok_or_else(|| err("authorize", format!("{} without a redirect", resp.status())))?;
    let code = query_param(&loc, "code").ok_or_else(|| err("authorize", format!("no code in {loc}")))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    token_request(api, &form).await.map_err(|e| err("token", e))
}

async fn token_request(api: &Api, form: &[(&str, &str)]) -> Res<String> {
    let resp = api.http.post(api.url("/o/token/")).form(form).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("{status}: {e}"))?;
    v["access_token"].as_str().map(String::from).ok_or_else(|| format!("{status}: {v}"))
}

/// A patient's token through an invitation: the manager invites (`POST /api/v1/invitation`), the
/// link is redeemed unauthenticated, and the grant exchanged with `code_verifier` = base64url(token).
pub async fn patient_token(api: &Api, manager: &str, patient_id: i64, client_id: i64) -> Res<String> {
    let inv = api
        .post_json("/api/v1/invitation", Some(manager), &json!({"patient_id": patient_id, "client_id": client_id}))
        .await?;
    let tok = inv["token"].as_str().ok_or_else(|| format!("invitation without a token: {inv}"))?;
    let g = api.post_json(&format!("/api/v1/invitation/{tok}"), None, &json!({})).await?;
    let grant = &g["grant"];
    let field = |k: &str| grant[k].as_str().map(String::from).ok_or_else(|| format!("grant without {k}: {g}"));
    let verifier = URL_SAFE_NO_PAD.encode(tok.as_bytes());
    let (gt, code, redirect, cid) = (field("grant_type")?, field("code")?, field("redirect_uri")?, field("client_id")?);
    let form = [
        ("grant_type", gt.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", cid.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    token_request(api, &form).await.map_err(|e| format!("patient {patient_id} token: {e}"))
}

/// How a token is (re)obtained.
pub enum Credentials {
    /// Given on the command line: used as is.
    Fixed,
    /// The browser login flow.
    Password { email: String, password: String },
    /// A patient's invitation, issued by the manager's token.
    Invitation { manager: Arc<Token>, patient_id: i64, client_id: i64 },
}

/// An access token that renews itself before it expires.
pub struct Token {
    api: Api,
    creds: Credentials,
    current: tokio::sync::Mutex<(String, Instant)>,
}

impl Token {
    pub fn fixed(api: &Api, token: String) -> Arc<Self> {
        Arc::new(Self {
            api: api.clone(),
            creds: Credentials::Fixed,
            current: tokio::sync::Mutex::new((token, Instant::now())),
        })
    }

    pub async fn obtain(api: &Api, creds: Credentials) -> Res<Arc<Self>> {
        let t = fetch(api, &creds).await?;
        Ok(Arc::new(Self { api: api.clone(), creds, current: tokio::sync::Mutex::new((t, Instant::now())) }))
    }

    /// The current token, renewed first if it is old.
    pub async fn get(&self) -> Res<String> {
        let mut cur = self.current.lock().await;
        if !matches!(self.creds, Credentials::Fixed) && cur.1.elapsed() > TOKEN_REFRESH_AFTER {
            *cur = (fetch(&self.api, &self.creds).await?, Instant::now());
        }
        Ok(cur.0.clone())
    }
}

async fn fetch(api: &Api, creds: &Credentials) -> Res<String> {
    match creds {
        Credentials::Fixed => Err("a fixed token cannot be renewed".into()),
        Credentials::Password { email, password } => login(api, email, password).await,
        Credentials::Invitation { manager, patient_id, client_id } => {
            let m = Box::pin(manager.get()).await?;
            patient_token(api, &m, *patient_id, *client_id).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(check_loopback("http://127.0.0.1:8000").is_ok());
        assert!(check_loopback("http://localhost:8000/").is_ok());
        assert!(check_loopback("http://[::1]:8000").is_ok());
        assert!(check_loopback("http://10.0.0.1:8000").is_err());
        assert!(check_loopback("http://example.com").is_err());
        assert!(check_loopback("https://127.0.0.1").is_err());
    }

    #[test]
    fn login_forms_of_either_server() {
        // Upstream (Django): no action, the page posts to itself; a CSRF field.
        let django = r#"<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="abc"><input type="email" name="username"></form>"#;
        let page = "http://127.0.0.1:8100/accounts/login/?next=/o/authorize/%3Fa%3D1";
        assert_eq!(
            login_form(django, page),
            Some((page.to_string(), vec![("csrfmiddlewaretoken".into(), "abc".into())]))
        );
        // JHE: an action and a hidden next.
        let jhe = r#"<form method="post" action="/accounts/login/"><input type="hidden" name="next" value="/o/authorize/?a=1&amp;b=2"><input name="password" type="password"></form>"#;
        assert_eq!(
            login_form(jhe, "http://127.0.0.1:8000/accounts/login/?next=x"),
            Some((
                "http://127.0.0.1:8000/accounts/login/".into(),
                vec![("next".into(), "/o/authorize/?a=1&b=2".into())]
            ))
        );
        assert_eq!(
            js_string_field(r#"const C = { client_id: "Xy12", other: 1 };"#, "client_id").as_deref(),
            Some("Xy12")
        );
        assert_eq!(js_string_field("client_id: window.x", "client_id"), None);
    }
}
