//! The local OAuth 2.0 / OIDC issuer's grant logic: authorization codes with PKCE (S256 only),
//! refresh-token rotation, client credentials for practitioner API keys, and the authorization
//! grants that patient invitations hand out. Tokens are RS256 JWTs (`jwt`).

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;

use super::crypto::{Signer, b64url, ct_eq, random_alnum, sha256_b64url};
use super::jwt::{AccessClaims, SigningKey, Verifier};
use crate::error::{Error, Result};
use crate::model::{GoneAccount, Id, User};
use crate::ports::{Accounts, SignInFor};
use crate::repo::{AuthCode, ClientRef, RefreshToken, Repo};

/// Lifetimes and names of the issuer.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// `iss` of every token, e.g. `http://127.0.0.1:8000/o`.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub code_ttl: i64,
    pub id_token_ttl: i64,
}

/// The grant logic of the token endpoint, and who mints the tokens once a grant is checked:
/// this issuer's own RS256 key (local mode), or an identity provider behind the accounts port
/// (a Cognito user pool in the cloud; there is then no signing key in this process at all).
pub struct Issuer {
    /// The local signing key and its verifier, once there is one; `None` when tokens come from
    /// `accounts`.
    key: Option<KeySlot>,
    pub settings: IssuerSettings,
    /// The provider that mints tokens and holds accounts, when it is not this issuer.
    accounts: Option<Arc<dyn Accounts>>,
    /// Signs cookies (login session, CSRF) of the login pages.
    pub signer: Signer,
}

/// The local signing key with the verifier of its tokens.
struct LocalKey {
    key: SigningKey,
    verifier: Verifier,
}

/// A local key, or why there is none (generation or storing it failed), once it is known.
type KeyState = Option<std::result::Result<Arc<LocalKey>, String>>;
type KeySlot = tokio::sync::watch::Receiver<KeyState>;

/// Hands a pending issuer (`Issuer::pending`) its signing key, once.
pub struct KeyReady {
    tx: tokio::sync::watch::Sender<KeyState>,
    issuer: String,
    audience: String,
}

impl KeyReady {
    /// The key is ready (token requests waiting for it go on), or could not be made (they fail).
    pub fn set(self, key: Result<SigningKey>) {
        let state = key.and_then(|k| local_key(k, &self.issuer, &self.audience)).map(Arc::new).map_err(Error::detail);
        if let Err(e) = &state {
            tracing::error!(error = %e, "no signing key: this issuer cannot issue tokens");
        }
        self.tx.send_replace(Some(state));
    }
}

fn local_key(key: SigningKey, issuer: &str, audience: &str) -> Result<LocalKey> {
    let verifier = Verifier::new(vec![(key.kid().to_string(), key.decoding_key()?)], issuer, audience);
    Ok(LocalKey { key, verifier })
}

/// An OAuth error as RFC 6749 section 5.2 words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn server(e: Error) -> Self {
        tracing::error!(error = ?e, "token endpoint failure");
        Self::new("server_error", "internal error")
    }
}

pub use crate::model::TokenResponse;

/// A `POST /o/token/` request, already parsed from its form and Basic credentials.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// PKCE S256: the challenge a verifier must hash to.
pub fn s256_challenge(verifier: &str) -> String {
    sha256_b64url(verifier.as_bytes())
}

impl Issuer {
    pub fn new(key: SigningKey, settings: IssuerSettings, cookie_secret: &[u8]) -> Result<Self> {
        let key = local_key(key, &settings.issuer, &settings.audience)?;
        let (_, slot) = tokio::sync::watch::channel(Some(Ok(Arc::new(key))));
        Ok(Self { key: Some(slot), settings, accounts: None, signer: Signer::new(cookie_secret) })
    }

    /// An issuer whose key is still being made (a first start generates it while the server
    /// already answers): token requests wait for `KeyReady::set`; tokens presented before it
    /// cannot be this key's and are refused.
    pub fn pending(settings: IssuerSettings, cookie_secret: &[u8]) -> (Self, KeyReady) {
        let (tx, slot) = tokio::sync::watch::channel(None);
        let ready = KeyReady { tx, issuer: settings.issuer.clone(), audience: settings.audience.clone() };
        (Self { key: Some(slot), settings, accounts: None, signer: Signer::new(cookie_secret) }, ready)
    }

    /// An issuer whose tokens come from an identity provider (no signing key here). The cookie
    /// secret is per process: the login pages are the provider's, not this issuer's.
    pub fn delegating(settings: IssuerSettings, accounts: Arc<dyn Accounts>) -> Self {
        let secret = super::crypto::random_bytes::<32>();
        Self { key: None, settings, accounts: Some(accounts), signer: Signer::new(&secret) }
    }

    /// Whether tokens come from an identity provider rather than this issuer's key.
    pub fn is_delegating(&self) -> bool {
        self.accounts.is_some()
    }

    /// The signing key, waiting for it while it is being made.
    async fn key(&self) -> Result<Arc<LocalKey>> {
        let mut slot = self.key.clone().ok_or_else(|| Error::Internal("this issuer has no signing key".into()))?;
        let state = slot
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Internal("the signing key was never made".into()))?
            .clone();
        match state {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(Error::Internal(format!("no signing key: {e}"))),
            None => Err(Error::Internal("the signing key was never made".into())),
        }
    }

    /// Signs claims with this issuer's own key (waiting for it while it is being made); an error
    /// when it delegates. For tokens made outside a grant (tests, benchmarks).
    pub async fn sign(&self, claims: &serde_json::Value) -> Result<String> {
        self.key().await?.key.sign(claims)
    }

    /// The public keys of this issuer's tokens (none when it delegates, or its key failed).
    pub async fn jwks(&self) -> serde_json::Value {
        let key = self.key().await.ok();
        json!({ "keys": key.iter().map(|k| k.key.jwk()).collect::<Vec<_>>() })
    }

    /// Signature, algorithm, issuer, audience and expiry of an access token of this issuer.
    pub fn verify(&self, token: &str) -> std::result::Result<AccessClaims, String> {
        let slot = self.key.as_ref().ok_or("this issuer signs no tokens")?;
        let state = slot.borrow().clone();
        match state {
            Some(Ok(k)) => k.verifier.verify(token),
            // No key yet: no token can have been signed with it.
            _ => Err("unknown signing key".into()),
        }
    }

    /// Makes a user created through the admin API known to the identity provider (nothing to do
    /// when the accounts are this issuer's own).
    pub async fn provision(&self, user: &User) -> Result<()> {
        match &self.accounts {
            Some(a) => a.provision(user).await.map_err(Error::Unavailable),
            None => Ok(()),
        }
    }

    /// Removes accounts JHE has deleted from the identity provider (nothing to do when the
    /// accounts are this issuer's own: they lived only in the deleted records). Each is tried;
    /// the first failure is returned.
    pub async fn remove(&self, gone: &[GoneAccount]) -> std::result::Result<(), String> {
        let Some(a) = &self.accounts else { return Ok(()) };
        let mut first = Ok(());
        for g in gone {
            if let Err(e) = a.remove(g).await
                && first.is_ok()
            {
                first = Err(format!("{g:?}: {e}"));
            }
        }
        first
    }

    /// Mints an access token (and, for user logins, a refresh and an ID token).
    pub async fn issue(
        &self,
        repo: &Repo,
        user: &User,
        client_id: &str,
        scope: &str,
        grant: &str,
        nonce: Option<&str>,
    ) -> Result<TokenResponse> {
        self.issue_in(repo, user, client_id, scope, grant, nonce, None).await
    }

    /// `issue`, the refresh token in `family` (a refresh's), or in a new one (a login's).
    #[allow(clippy::too_many_arguments)]
    async fn issue_in(
        &self,
        repo: &Repo,
        user: &User,
        client_id: &str,
        scope: &str,
        grant: &str,
        nonce: Option<&str>,
        family: Option<String>,
    ) -> Result<TokenResponse> {
        if let Some(a) = &self.accounts {
            let purpose =
                if grant == "client_credentials" { SignInFor::ApiKey(client_id) } else { SignInFor::PatientApp };
            let mut t = a.sign_in(user, purpose).await.map_err(Error::Unavailable)?;
            t.user_id = Some(user.id);
            return Ok(t);
        }
        let key = self.key().await?;
        let key = &key.key;
        let t = now();
        let claims = json!({
            "iss": self.settings.issuer, "sub": user.id.to_string(), "aud": self.settings.audience,
            "exp": t + self.settings.access_ttl, "iat": t, "jti": random_alnum(24),
            "client_id": client_id, "scope": scope, "token_use": "access", "grant": grant,
        });
        let access_token = key.sign(&claims)?;
        let user_login = grant != "client_credentials";
        let (refresh_token, id_token) = if user_login {
            let refresh = random_alnum(40);
            repo.put_refresh_in_family(
                &sha256_b64url(refresh.as_bytes()),
                &RefreshToken {
                    client_id: client_id.into(),
                    user_id: user.id,
                    scope: scope.into(),
                    expires: t + self.settings.refresh_ttl,
                    family: family.unwrap_or_else(|| random_alnum(24)),
                },
            )
            .await?;
            let mut id = json!({
                "iss": self.settings.issuer, "sub": user.id.to_string(), "aud": client_id,
                "exp": t + self.settings.id_token_ttl, "iat": t, "auth_time": t, "token_use": "id",
            });
            if scope.split(' ').any(|s| s == "email") {
                id["email"] = json!(user.email);
            }
            if let Some(n) = nonce {
                id["nonce"] = json!(n);
            }
            // A refresh authenticates no one anew: no new ID token (its auth_time would not be the
            // login's, which clients such as oidc-client-ts check).
            let id_token = if grant == "refresh_token" { None } else { Some(key.sign(&id)?) };
            (Some(refresh), id_token)
        } else {
            (None, None)
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_ttl,
            scope: scope.into(),
            refresh_token,
            id_token,
            user_id: Some(user.id),
        })
    }

    /// Stores an authorization code for a logged-in user; returns the code.
    pub async fn create_code(&self, repo: &Repo, grant: &AuthCode) -> Result<String> {
        let code = random_alnum(30);
        repo.put_auth_code(&sha256_b64url(code.as_bytes()), grant).await?;
        Ok(code)
    }

    /// The expiry time of an authorization code issued now.
    pub fn code_expiry(&self) -> i64 {
        now() + self.settings.code_ttl
    }

    /// The authorization grant a redeemed invitation hands out: the invitation token itself is the
    /// PKCE secret (`code_verifier = base64url(token)`), as upstream.
    pub async fn invitation_grant(
        &self,
        repo: &Repo,
        user_id: Id,
        client_id: &str,
        redirect_uri: &str,
        token: &str,
    ) -> Result<(String, i64)> {
        let verifier = b64url(token.as_bytes());
        let grant = AuthCode {
            client_id: client_id.into(),
            user_id,
            redirect_uri: redirect_uri.into(),
            code_challenge: s256_challenge(&verifier),
            scope: "openid email".into(),
            nonce: None,
            expires: self.code_expiry(),
        };
        let code = self.create_code(repo, &grant).await?;
        Ok((code, grant.expires))
    }

    /// Serves `POST /o/token/`.
    pub async fn token(&self, repo: &Repo, req: TokenRequest) -> std::result::Result<TokenResponse, OAuthError> {
        match req.grant_type.as_str() {
            "authorization_code" => self.exchange_code(repo, req).await,
            "refresh_token" => self.refresh(repo, req).await,
            "client_credentials" => self.client_credentials(repo, req).await,
            "" => Err(OAuthError::invalid_request("grant_type is required")),
            _ => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {} is not supported", req.grant_type),
            )),
        }
    }

    async fn exchange_code(&self, repo: &Repo, req: TokenRequest) -> std::result::Result<TokenResponse, OAuthError> {
        let code = req.code.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let client_id = req.client_id.ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
        let verifier = req
            .code_verifier
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
        // Taking the code first makes it single use even when the rest of the request is wrong.
        let grant = repo
            .take_auth_code(&sha256_b64url(code.as_bytes()))
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| OAuthError::invalid_grant("authorization code is invalid, expired or already used"))?;
        if grant.expires < now() {
            return Err(OAuthError::invalid_grant("authorization code has expired"));
        }
        if grant.client_id != client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        if !ct_eq(&s256_challenge(&verifier), &grant.code_challenge) {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code challenge"));
        }
        let user = repo
            .user(grant.user_id)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| OAuthError::invalid_grant("user no longer exists"))?;
        self.issue(repo, &user, &client_id, &grant.scope, "authorization_code", grant.nonce.as_deref())
            .await
            .map_err(OAuthError::server)
    }

    async fn refresh(&self, repo: &Repo, req: TokenRequest) -> std::result::Result<TokenResponse, OAuthError> {
        let token = req.refresh_token.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        if let Some(a) = &self.accounts {
            return match a.refresh(&token).await {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Err(OAuthError::invalid_grant("refresh token is invalid, expired or revoked")),
                Err(e) => Err(OAuthError::server(Error::Unavailable(e))),
            };
        }
        let hash = sha256_b64url(token.as_bytes());
        let Some(stored) = repo.take_refresh(&hash).await.map_err(OAuthError::server)? else {
            // Used before: someone holds a copy (RFC 9700 4.14.2): the whole login's tokens go.
            if let Some(family) = repo.used_refresh_family(&hash).await.map_err(OAuthError::server)? {
                let n = repo.revoke_refresh_family(&family).await.map_err(OAuthError::server)?;
                tracing::warn!(revoked = n, "a refresh token was used twice; its family is revoked");
                return Err(OAuthError::invalid_grant(
                    "refresh token was already used; every token of this login is revoked: sign in again",
                ));
            }
            return Err(OAuthError::invalid_grant("refresh token is invalid or already used"));
        };
        if stored.expires < now() {
            return Err(OAuthError::invalid_grant("refresh token has expired"));
        }
        if req.client_id.as_deref() != Some(stored.client_id.as_str()) {
            return Err(OAuthError::invalid_grant(
                "client_id is required and must be the client the token was issued to",
            ));
        }
        let family = if stored.family.is_empty() { hash.clone() } else { stored.family.clone() };
        let user = repo
            .user(stored.user_id)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| OAuthError::invalid_grant("user no longer exists"))?;
        self.issue_in(repo, &user, &stored.client_id, &stored.scope, "refresh_token", None, Some(family))
            .await
            .map_err(OAuthError::server)
    }

    async fn client_credentials(
        &self,
        repo: &Repo,
        req: TokenRequest,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let (Some(client_id), Some(secret)) = (req.client_id, req.client_secret) else {
            return Err(OAuthError::invalid_client("client authentication is required (HTTP Basic)"));
        };
        let bad = || OAuthError::invalid_client("client authentication failed");
        let Some(ClientRef::ApiKey { user_id, id }) = repo.client_ref(&client_id).await.map_err(OAuthError::server)?
        else {
            // Spend the same work as a real check.
            let _ = ct_eq(&sha256_b64url(secret.as_bytes()), &sha256_b64url(b""));
            return Err(bad());
        };
        let key = repo.api_key(user_id, id).await.map_err(OAuthError::server)?.ok_or_else(bad)?;
        if !ct_eq(&sha256_b64url(secret.as_bytes()), &key.secret_sha256) {
            return Err(bad());
        }
        let user = repo.user(user_id).await.map_err(OAuthError::server)?.ok_or_else(bad)?;
        let scope = key_scope(req.scope.as_deref())?;
        self.issue(repo, &user, &client_id, &scope, "client_credentials", None).await.map_err(OAuthError::server)
    }
}

/// The scopes an API key's token may carry: those asked for, of `openid` and `email` (all of
/// them when none is asked for); anything else is refused, not copied into the token.
fn key_scope(asked: Option<&str>) -> std::result::Result<String, OAuthError> {
    const KEY_SCOPES: [&str; 2] = ["openid", "email"];
    let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty()) else { return Ok(KEY_SCOPES.join(" ")) };
    let mut granted: Vec<&str> = Vec::new();
    for sc in asked.split(' ').filter(|s| !s.is_empty()) {
        if !KEY_SCOPES.contains(&sc) {
            let shown: String = sc.chars().take(64).collect();
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope {shown:?} is not one an API key may have (openid, email)"),
            ));
        }
        if !granted.contains(&sc) {
            granted.push(sc);
        }
    }
    Ok(granted.join(" "))
}

#[async_trait::async_trait]
impl crate::ports::Identity for Issuer {
    async fn verify(&self, token: &str) -> std::result::Result<crate::ports::VerifiedToken, String> {
        let c = Issuer::verify(self, token)?;
        let api_key = (c.grant == "client_credentials").then(|| c.client_id.clone());
        Ok(crate::ports::VerifiedToken { subject: c.sub, client_id: c.client_id, api_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IssuerSettings {
        IssuerSettings {
            issuer: "http://127.0.0.1:8000/o".into(),
            audience: "jhe-api".into(),
            access_ttl: 3600,
            refresh_ttl: 3600,
            code_ttl: 60,
            id_token_ttl: 3600,
        }
    }

    /// A pending issuer refuses tokens and holds its JWKS back until its key is set; then it
    /// verifies what the key signs.
    #[tokio::test]
    async fn a_pending_issuer_waits_for_its_key() {
        let (issuer, ready) = Issuer::pending(settings(), &[7; 32]);
        let issuer = Arc::new(issuer);
        let key = SigningKey::generate().expect("key");
        let token = key
            .sign(&json!({"iss": "http://127.0.0.1:8000/o", "sub": "10001", "aud": "jhe-api", "exp": now() + 60, "jti": "j",
                "iat": now(), "client_id": "c", "scope": "openid", "token_use": "access", "grant": "authorization_code"}))
            .expect("sign");
        assert!(issuer.verify(&token).is_err(), "no key yet: no token is this issuer's");
        let waiting = tokio::spawn({
            let issuer = issuer.clone();
            async move { issuer.jwks().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the JWKS waits for the key");
        let kid = key.kid().to_string();
        ready.set(Ok(key));
        let jwks = waiting.await.expect("jwks");
        assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
        assert_eq!(issuer.verify(&token).expect("verified").sub, "10001");
    }

    /// A key that could not be made fails token requests with an error instead of hanging.
    #[tokio::test]
    async fn a_failed_key_fails_token_requests() {
        let (issuer, ready) = Issuer::pending(settings(), &[7; 32]);
        ready.set(Err(Error::Internal("disk full".into())));
        let got = issuer.key().await.err().map(|e| format!("{e:?}"));
        assert!(got.as_deref().is_some_and(|m| m.contains("disk full")), "{got:?}");
        assert_eq!(issuer.jwks().await["keys"], json!([]));
    }

    /// The identity provider's accounts as a list; removing the one named `fails` fails.
    struct Pool {
        removed: std::sync::Mutex<Vec<GoneAccount>>,
        fails: GoneAccount,
    }

    #[async_trait::async_trait]
    impl Accounts for Pool {
        async fn provision(&self, _: &User) -> std::result::Result<(), String> {
            Ok(())
        }
        async fn sign_in(
            &self,
            _: &User,
            _: crate::ports::SignInFor<'_>,
        ) -> std::result::Result<TokenResponse, String> {
            Err("not in this test".into())
        }
        async fn refresh(&self, _: &str) -> std::result::Result<Option<TokenResponse>, String> {
            Ok(None)
        }
        async fn remove(&self, a: &GoneAccount) -> std::result::Result<(), String> {
            if *a == self.fails {
                return Err("pool unavailable".into());
            }
            self.removed.lock().expect("lock").push(a.clone());
            Ok(())
        }
    }

    /// Removing several accounts tries every one, even after one fails, and reports that one.
    #[tokio::test]
    async fn removing_accounts_tries_each_and_reports_the_failure() {
        let gone = vec![
            GoneAccount::User(10001),
            GoneAccount::ApiKey("k1".into()),
            GoneAccount::User(10002),
            GoneAccount::ApiKey("k2".into()),
        ];
        let pool = Arc::new(Pool { removed: Default::default(), fails: GoneAccount::ApiKey("k1".into()) });
        let issuer = Issuer::delegating(settings(), pool.clone());
        let err = issuer.remove(&gone).await.expect_err("one failed");
        assert!(err.contains("k1") && err.contains("pool unavailable"), "{err}");
        let removed = pool.removed.lock().expect("lock").clone();
        assert_eq!(removed, vec![gone[0].clone(), gone[2].clone(), gone[3].clone()]);
        assert_eq!(issuer.remove(&[GoneAccount::User(10003)]).await, Ok(()));
        // An issuer with keys of its own has no provider to ask.
        let own = Issuer::new(SigningKey::generate().expect("key"), settings(), &[1; 32]).expect("issuer");
        assert_eq!(own.remove(&gone).await, Ok(()));
    }
}
