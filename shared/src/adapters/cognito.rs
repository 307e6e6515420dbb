//! Identity on a Cognito user pool (feature `aws`): the `Identity` port (access tokens verified
//! against the pool's JWKS) and the `Accounts` port (users created through the admin API exist in
//! the pool; invitation and API-key grants, once JHE has checked them, are signed in there).
//!
//! Users are pool users named by their JHE user id (`42`), with their email as a sign-in alias;
//! a practitioner API key is a pool user of its own, `apikey.<key client id>`, that only the API
//! app client may sign in. For a grant JHE has checked, the pool signs in with a fresh random
//! password set just before (AdminSetUserPassword, then ADMIN_USER_PASSWORD_AUTH): the password is
//! never stored or returned, and no signing secret exists outside Cognito. ARCHITECTURE.md says
//! why this is preferred over custom-auth triggers here.
//!
//! Must not depend on: the web framework.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};

use crate::auth::crypto::random_alnum;
use crate::auth::issuer::TokenResponse;
use crate::auth::jwt::{PoolVerifier, token_kid};
use crate::config::CognitoSettings;
use crate::model::{GoneAccount, User, UserType};
use crate::ports::{Accounts, Identity, SignInFor, VerifiedToken};

/// Pool usernames of API keys start with this.
pub const API_KEY_USER_PREFIX: &str = "apikey.";
/// The JWKS is fetched again for an unknown key id at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(60);

fn sdk_err<E, R>(op: &str, err: SdkError<E, R>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    format!("Cognito {op}: {}", DisplayErrorContext(&err))
}

/// The `Identity` port on a user pool's access tokens.
pub struct CognitoIdentity {
    settings: CognitoSettings,
    http: reqwest::Client,
    verifier: RwLock<Option<Arc<PoolVerifier>>>,
    fetched: Mutex<Option<Instant>>,
}

impl CognitoIdentity {
    pub fn new(settings: CognitoSettings) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self { settings, http, verifier: RwLock::new(None), fetched: Mutex::new(None) }
    }

    fn clients(&self) -> Vec<String> {
        let s = &self.settings;
        vec![s.spa_client_id.clone(), s.patient_client_id.clone(), s.api_client_id.clone()]
    }

    fn current(&self) -> Option<Arc<PoolVerifier>> {
        self.verifier.read().ok().and_then(|v| v.clone())
    }

    /// Fetches the pool's keys (first use, or an unknown key id after the refetch interval).
    async fn refresh_keys(&self) -> Result<Arc<PoolVerifier>, String> {
        {
            let mut last = self.fetched.lock().map_err(|_| "JWKS lock poisoned")?;
            if let (Some(at), Some(v)) = (*last, self.current())
                && at.elapsed() < JWKS_REFETCH
            {
                return Ok(v);
            }
            *last = Some(Instant::now());
        }
        let url = &self.settings.jwks_url;
        let body: serde_json::Value = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching the pool's keys from {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the pool's keys at {url}: {e}"))?;
        let v = Arc::new(PoolVerifier::from_jwks(&body, &self.settings.issuer, self.clients())?);
        if let Ok(mut slot) = self.verifier.write() {
            *slot = Some(v.clone());
        }
        Ok(v)
    }
}

#[async_trait]
impl Identity for CognitoIdentity {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, String> {
        let kid = token_kid(token).ok_or("malformed token or no key id")?;
        let v = match self.current() {
            Some(v) if v.knows(&kid) => v,
            _ => self.refresh_keys().await?,
        };
        let c = v.verify(token)?;
        let api_client = c.client_id == self.settings.api_client_id;
        match c.username.strip_prefix(API_KEY_USER_PREFIX) {
            Some(key) if api_client && !key.is_empty() => {
                Ok(VerifiedToken { subject: String::new(), client_id: c.client_id, api_key: Some(key.to_string()) })
            }
            Some(_) => Err("an API key's token from another app client".into()),
            None if api_client => Err("a user's token from the API-key app client".into()),
            None => Ok(VerifiedToken { subject: c.username, client_id: c.client_id, api_key: None }),
        }
    }
}

/// The `Accounts` port on a user pool (admin APIs; needs IAM permission on the pool).
pub struct CognitoAccounts {
    client: Client,
    settings: CognitoSettings,
}

impl CognitoAccounts {
    pub fn new(client: Client, settings: CognitoSettings) -> Self {
        Self { client, settings }
    }

    /// Creates the pool user `username` unless it exists (one round trip: the pool answers
    /// UsernameExists for one it holds). Practitioners get Cognito's invitation email (a temporary
    /// password for the managed login); patients and API keys get none.
    async fn ensure_user(&self, username: &str, email: Option<&str>, invite: bool) -> Result<(), String> {
        let pool = &self.settings.user_pool_id;
        let mut req = self.client.admin_create_user().user_pool_id(pool).username(username);
        if let Some(email) = email {
            let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build();
            req = req
                .user_attributes(attr("email", email).map_err(|e| e.to_string())?)
                .user_attributes(attr("email_verified", "true").map_err(|e| e.to_string())?);
        }
        if !invite {
            req = req.message_action(MessageActionType::Suppress);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_username_exists_exception()) => Ok(()),
            Err(e) => Err(sdk_err("AdminCreateUser", e)),
        }
    }

    /// Signs `username` in through `client_id` with a one-time random password, creating the
    /// pool user (with `email`, no invitation) if the pool does not hold it yet. Two round trips
    /// for a user the pool holds (set the password, sign in); the user is created only when the
    /// password cannot be set because it is missing.
    async fn sign_in_as(&self, username: &str, email: Option<&str>, client_id: &str) -> Result<TokenResponse, String> {
        let pool = &self.settings.user_pool_id;
        let mut last = String::new();
        let mut created = false;
        // A concurrent sign-in of the same user may replace the password in between: try again.
        for _ in 0..3 {
            // 40 random letters and digits plus one of each class the password policy asks for.
            let password = format!("{}aA1!", random_alnum(40));
            let set = self
                .client
                .admin_set_user_password()
                .user_pool_id(pool)
                .username(username)
                .password(&password)
                .permanent(true)
                .send()
                .await;
            match set {
                Ok(_) => {}
                Err(e) if !created && e.as_service_error().is_some_and(|s| s.is_user_not_found_exception()) => {
                    self.ensure_user(username, email, false).await?;
                    created = true;
                    last = sdk_err("AdminSetUserPassword", e);
                    continue;
                }
                Err(e) => return Err(sdk_err("AdminSetUserPassword", e)),
            }
            let out = self
                .client
                .admin_initiate_auth()
                .user_pool_id(pool)
                .client_id(client_id)
                .auth_flow(AuthFlowType::AdminUserPasswordAuth)
                .auth_parameters("USERNAME", username)
                .auth_parameters("PASSWORD", &password)
                .send()
                .await;
            match out {
                Ok(o) => {
                    let r = o.authentication_result.ok_or("Cognito answered with a challenge, not tokens")?;
                    return Ok(TokenResponse {
                        access_token: r.access_token.ok_or("Cognito returned no access token")?,
                        token_type: "Bearer",
                        expires_in: i64::from(r.expires_in),
                        scope: "openid email".into(),
                        refresh_token: r.refresh_token,
                        id_token: r.id_token,
                        user_id: None,
                    });
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_authorized_exception()) => {
                    last = sdk_err("AdminInitiateAuth", e);
                }
                Err(e) => return Err(sdk_err("AdminInitiateAuth", e)),
            }
        }
        Err(last)
    }
}

#[async_trait]
impl Accounts for CognitoAccounts {
    async fn provision(&self, user: &User) -> Result<(), String> {
        let practitioner = user.user_type == Some(UserType::Practitioner);
        self.ensure_user(&user.id.to_string(), Some(&user.email), practitioner).await
    }

    async fn sign_in(&self, user: &User, purpose: SignInFor<'_>) -> Result<TokenResponse, String> {
        match purpose {
            SignInFor::PatientApp => {
                let name = user.id.to_string();
                self.sign_in_as(&name, Some(&user.email), &self.settings.patient_client_id).await
            }
            SignInFor::ApiKey(key) => {
                let name = format!("{API_KEY_USER_PREFIX}{key}");
                let mut t = self.sign_in_as(&name, None, &self.settings.api_client_id).await?;
                // Client credentials get no refresh or ID token (RFC 6749 section 4.4.3).
                t.refresh_token = None;
                t.id_token = None;
                Ok(t)
            }
        }
    }

    async fn remove(&self, account: &GoneAccount) -> Result<(), String> {
        let username = match account {
            GoneAccount::User(id) => id.to_string(),
            GoneAccount::ApiKey(key) => format!("{API_KEY_USER_PREFIX}{key}"),
        };
        match self.client.admin_delete_user().user_pool_id(&self.settings.user_pool_id).username(&username).send().await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_user_not_found_exception()) => Ok(()),
            Err(e) => Err(sdk_err("AdminDeleteUser", e)),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Option<TokenResponse>, String> {
        // Only patient apps refresh here (API keys have no refresh tokens; the web UI refreshes at
        // the pool's own token endpoint). The client id a patient app sends is its JHE client's,
        // not a pool app client's, so it is not passed on: the pool tells whether the token is one
        // of its patient client.
        let client = &self.settings.patient_client_id;
        let out = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.settings.user_pool_id)
            .client_id(client)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token)
            .send()
            .await;
        match out {
            Ok(o) => {
                let Some(r) = o.authentication_result else { return Ok(None) };
                let Some(access_token) = r.access_token else { return Ok(None) };
                Ok(Some(TokenResponse {
                    access_token,
                    token_type: "Bearer",
                    expires_in: i64::from(r.expires_in),
                    scope: "openid email".into(),
                    refresh_token: Some(r.refresh_token.unwrap_or_else(|| refresh_token.to_string())),
                    id_token: r.id_token,
                    user_id: None,
                }))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_authorized_exception()) => Ok(None),
            Err(e) => Err(sdk_err("AdminInitiateAuth", e)),
        }
    }
}

/// The pool and app clients a deployment has, created on a local AWS emulator (the tests use it;
/// `JHE_CREATE_RESOURCES=1` creates only the table and bucket); the SAM template creates them in
/// the cloud.
pub async fn create_pool(client: &Client, name: &str, endpoint: &str) -> Result<CognitoSettings, String> {
    use aws_sdk_cognitoidentityprovider::types::{AliasAttributeType, ExplicitAuthFlowsType as F};
    let pool = client
        .create_user_pool()
        .pool_name(name)
        .alias_attributes(AliasAttributeType::Email)
        .send()
        .await
        .map_err(|e| sdk_err("CreateUserPool", e))?
        .user_pool
        .and_then(|p| p.id)
        .ok_or("CreateUserPool returned no id")?;
    let mut ids = Vec::new();
    for (n, flows) in [
        ("spa", vec![F::AllowRefreshTokenAuth]),
        ("patient-app", vec![F::AllowAdminUserPasswordAuth, F::AllowRefreshTokenAuth]),
        ("api-keys", vec![F::AllowAdminUserPasswordAuth]),
    ] {
        let c = client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name(n)
            .set_explicit_auth_flows(Some(flows))
            .send()
            .await
            .map_err(|e| sdk_err("CreateUserPoolClient", e))?;
        ids.push(c.user_pool_client.and_then(|c| c.client_id).ok_or("CreateUserPoolClient returned no id")?);
    }
    let region = client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let endpoint = endpoint.trim_end_matches('/');
    Ok(CognitoSettings {
        issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool}"),
        jwks_url: format!("{endpoint}/{pool}/.well-known/jwks.json"),
        domain: format!("{endpoint}/{pool}"),
        user_pool_id: pool,
        spa_client_id: ids[0].clone(),
        patient_client_id: ids[1].clone(),
        api_client_id: ids[2].clone(),
    })
}
