//! The protocol of the built-in issuer's endpoints, apart from HTTP: the authorization request's
//! checks (client, redirect URI, PKCE), the token request's form and Basic credentials, the token
//! grant behind the brake on repeated failures, and the password login. `http::oauth` extracts,
//! calls one of these, and answers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;

use super::issuer::{Issuer, OAuthError, TokenRequest, TokenResponse};
use super::{password, sessions};
use crate::error::Result;
use crate::model::{Id, User};
use crate::ports::Identity;
use crate::repo::{AuthCode, Repo};

/// `base` with the query parameters added (`?` or `&` as it needs).
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", serde_urlencoded::to_string(params).unwrap_or_default())
}

/// What an authorization request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// It cannot be sent back to the client (unknown client, unregistered redirect URI): shown.
    Refused(&'static str),
    /// Back to the client's redirect URI, with a code or an error (and the client's `state`).
    Redirect(String),
    /// No one is signed in: the login page first, then this request again.
    Login,
}

/// The authorization-code request (`GET /o/authorize/`) of `user` (signed in, or not): the
/// client and redirect URI are checked before anything is sent to the redirect URI; then the
/// response type and PKCE (S256 required); then a single-use code is stored.
pub async fn authorize(
    issuer: &Issuer,
    repo: &Repo,
    site_url: &str,
    q: &BTreeMap<String, String>,
    user: Option<Id>,
) -> Result<Authorized> {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let Some(client) = repo.client_by_client_id(get("client_id")).await? else {
        return Ok(Authorized::Refused("unknown client_id"));
    };
    let redirect_uri = get("redirect_uri");
    if !super::redirect_uri_registered(&client.redirect_uris, redirect_uri, super::is_loopback_site(site_url)) {
        return Ok(Authorized::Refused("redirect_uri is not registered for this client"));
    }
    let state = get("state");
    let fail = |error, desc| back_to(redirect_uri, state, vec![("error", error), ("error_description", desc)]);
    let challenge = get("code_challenge");
    if get("response_type") != "code" {
        return Ok(fail("unsupported_response_type", "only response_type=code is supported"));
    }
    if challenge.is_empty() {
        return Ok(fail("invalid_request", "PKCE is required: code_challenge is missing"));
    }
    if get("code_challenge_method") != "S256" {
        return Ok(fail("invalid_request", "code_challenge_method must be S256"));
    }
    if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Ok(fail("invalid_request", "code_challenge is not a base64url SHA-256 digest"));
    }
    let Some(user_id) = user else { return Ok(Authorized::Login) };
    let scope = match get("scope") {
        "" => "openid email".to_string(),
        sc => sc.split(' ').filter(|x| *x == "openid" || *x == "email").collect::<Vec<_>>().join(" "),
    };
    let grant = AuthCode {
        client_id: client.client_id.clone(),
        user_id,
        redirect_uri: redirect_uri.to_string(),
        code_challenge: challenge.to_string(),
        scope,
        nonce: q.get("nonce").cloned(),
        expires: issuer.code_expiry(),
    };
    let code = issuer.create_code(repo, &grant).await?;
    Ok(back_to(redirect_uri, state, vec![("code", code.as_str())]))
}

/// Back to the client's redirect URI with these parameters and its `state`.
fn back_to<'a>(redirect_uri: &str, state: &'a str, mut params: Vec<(&'a str, &'a str)>) -> Authorized {
    if !state.is_empty() {
        params.push(("state", state));
    }
    Authorized::Redirect(with_query(redirect_uri, &params))
}

impl TokenRequest {
    /// From the form body of `POST /o/token/` and its `Authorization` header: client credentials
    /// in HTTP Basic (percent-encoded, RFC 6749 2.3.1) win over those in the form.
    pub fn from_form(body: &[u8], authorization: Option<&str>) -> std::result::Result<Self, OAuthError> {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))?;
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut req = TokenRequest {
            grant_type: field("grant_type").unwrap_or_default(),
            code: field("code"),
            redirect_uri: field("redirect_uri"),
            client_id: field("client_id"),
            client_secret: field("client_secret"),
            code_verifier: field("code_verifier"),
            refresh_token: field("refresh_token"),
            scope: field("scope"),
        };
        if let Some((scheme, cred)) = authorization.and_then(|a| a.split_once(' '))
            && scheme.eq_ignore_ascii_case("basic")
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(cred.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(OAuthError::invalid_client("malformed Basic credentials"));
            };
            let dec = |x: &str| percent_encoding::percent_decode_str(x).decode_utf8_lossy().into_owned();
            req.client_id = Some(dec(id));
            req.client_secret = Some(dec(secret));
        }
        Ok(req)
    }
}

/// What a token request comes to.
pub enum Granted {
    /// The tokens, and whom they are for when known.
    Tokens {
        tokens: TokenResponse,
        user: Option<Id>,
    },
    Refused(OAuthError),
    /// Too many failures of this client or address lately: the seconds to wait.
    HeldBack(i64),
}

/// A token request behind the brake: failed grants and client authentications slow down the
/// client and the address (`sessions::keys`), a success clears them.
pub async fn grant(
    issuer: &Issuer,
    repo: &Repo,
    identity: &dyn Identity,
    req: TokenRequest,
    address: Option<IpAddr>,
) -> Result<Granted> {
    let throttle = sessions::keys(req.client_id.as_deref().unwrap_or(""), address);
    if let Some(wait) = sessions::held_back(repo, &throttle).await? {
        return Ok(Granted::HeldBack(wait));
    }
    match issuer.token(repo, req).await {
        Ok(tokens) => {
            sessions::succeeded(repo, &throttle).await?;
            // Only a refresh through the user pool does not say whom; its new access token does.
            let user = match tokens.user_id {
                Some(u) => Some(u),
                None => identity.verify(&tokens.access_token).await.ok().and_then(|v| v.subject.parse().ok()),
            };
            Ok(Granted::Tokens { tokens, user })
        }
        Err(e) => {
            if matches!(e.error, "invalid_client" | "invalid_grant") {
                sessions::failed(repo, &throttle).await?;
            }
            Ok(Granted::Refused(e))
        }
    }
}

/// What a password login comes to.
pub enum Login {
    /// Signed in: the user (last login recorded) and the new session's cookie value.
    SignedIn { user: Box<User>, session: String },
    /// Wrong email or password (counted against the account and the address).
    Refused,
    /// Too many failures lately: the seconds to wait.
    HeldBack(i64),
}

/// The built-in issuer's password login, behind the same brake as the token endpoint; a
/// session that lasts `ttl_secs` is opened for the user.
pub async fn password_login(
    issuer: &Issuer,
    repo: &Repo,
    email: &str,
    password: String,
    address: Option<IpAddr>,
    ttl_secs: i64,
) -> Result<Login> {
    let throttle = sessions::keys(email, address);
    if let Some(wait) = sessions::held_back(repo, &throttle).await? {
        return Ok(Login::HeldBack(wait));
    }
    let user = repo.user_by_email(email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, hash.as_deref())).await.unwrap_or(false);
    let Some(mut user) = user.filter(|_| ok) else {
        sessions::failed(repo, &throttle).await?;
        return Ok(Login::Refused);
    };
    sessions::succeeded(repo, &throttle).await?;
    let now = time::OffsetDateTime::now_utc();
    user.last_login = Some(now);
    repo.save_user(&user).await?;
    let session = sessions::open(repo, &issuer.signer, user.id, now.unix_timestamp() + ttl_secs).await?;
    Ok(Login::SignedIn { user: Box::new(user), session })
}
