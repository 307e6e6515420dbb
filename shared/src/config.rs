//! Typed configuration, read once at start-up from the environment (names as in the SAM template).

/// Settings the services read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public base URL, without a trailing slash (`JHE_SITE_URL`).
    pub site_url: String,
    /// Days an issued invitation stays redeemable (`JHE_INVITATION_EXPIRATION_DAYS`, default 7).
    pub invitation_expiration_days: i64,
    /// Hours a redeemed invitation may be redeemed again (`JHE_INVITATION_REDEMPTION_WINDOW_HOURS`, default 12).
    pub invitation_redemption_window_hours: i64,
    /// Largest accepted request body in bytes (`JHE_MAX_BODY_BYTES`, default 10 MiB).
    pub max_body_bytes: usize,
    /// Longest Observation search page in bytes (`JHE_MAX_PAGE_BYTES`, default 4,000,000, under
    /// Lambda's 6 MB response limit once escaped into its envelope): a page that would be longer
    /// ends early, with a `next` link to the rest.
    pub max_page_bytes: usize,
    /// The OAuth client id of the web UI (`JHE_ADMIN_CLIENT_ID`).
    pub admin_client_id: String,
    /// Access token lifetime in seconds (`JHE_ACCESS_TOKEN_TTL`, default 1 hour).
    pub access_token_ttl: i64,
    /// The Cognito user pool that signs users in, when there is one (`JHE_USER_POOL_ID` set);
    /// `None` means the built-in issuer.
    pub cognito: Option<CognitoSettings>,
    /// Proxies whose `X-Forwarded-For` is believed (`JHE_TRUSTED_PROXIES`, comma-separated IP
    /// addresses; none by default: the peer's own address is the source).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a client may take to send a request's body (`JHE_BODY_READ_TIMEOUT_SECS`,
    /// default 30); past it the request is answered 408.
    pub body_read_timeout: std::time::Duration,
    /// The secret the CDN adds to every request it forwards (`JHE_ORIGIN_SECRET`, header
    /// `x-jhe-origin-secret`); when set, a request without it (one sent straight to the API's own
    /// endpoint, around the CDN's firewall and logs) is refused. Unset locally.
    pub origin_secret: Option<String>,
}

/// A Cognito user pool as the identity provider (names as in the SAM template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoSettings {
    /// `JHE_USER_POOL_ID`.
    pub user_pool_id: String,
    /// `iss` of the pool's tokens (`JHE_TOKEN_ISSUER`): `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    pub issuer: String,
    /// Where the pool's public keys are (`JHE_JWKS_URL`, default `<issuer>/.well-known/jwks.json`).
    pub jwks_url: String,
    /// The web UI's app client (`JHE_SPA_CLIENT_ID`): authorization code + PKCE at the managed login.
    pub spa_client_id: String,
    /// The patient apps' app client (`JHE_PATIENT_CLIENT_ID`): tokens from redeemed invitations.
    pub patient_client_id: String,
    /// The app client of practitioner API keys (`JHE_API_CLIENT_ID`): client-credentials tokens.
    pub api_client_id: String,
    /// The managed login's base URL (`JHE_COGNITO_DOMAIN`), e.g. `https://x.auth.us-east-1.amazoncognito.com`.
    pub domain: String,
}

impl CognitoSettings {
    /// From the environment, if `JHE_USER_POOL_ID` is set; every other name is then required
    /// (except `JHE_JWKS_URL`, which defaults to the issuer's).
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(pool) = std::env::var("JHE_USER_POOL_ID").ok().filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let need = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} must be set when JHE_USER_POOL_ID is"))
        };
        let issuer = need("JHE_TOKEN_ISSUER")?.trim_end_matches('/').to_string();
        let jwks_url = std::env::var("JHE_JWKS_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        Ok(Some(Self {
            user_pool_id: pool,
            issuer,
            jwks_url,
            spa_client_id: need("JHE_SPA_CLIENT_ID")?,
            patient_client_id: need("JHE_PATIENT_CLIENT_ID")?,
            api_client_id: need("JHE_API_CLIENT_ID")?,
            domain: need("JHE_COGNITO_DOMAIN")?.trim_end_matches('/').to_string(),
        }))
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Settings {
    pub fn from_env(default_site_url: &str) -> Self {
        let site = std::env::var("JHE_SITE_URL").unwrap_or_else(|_| default_site_url.to_string());
        Self {
            site_url: site.trim_end_matches('/').to_string(),
            invitation_expiration_days: env_i64("JHE_INVITATION_EXPIRATION_DAYS", 7),
            invitation_redemption_window_hours: env_i64("JHE_INVITATION_REDEMPTION_WINDOW_HOURS", 12),
            max_body_bytes: env_i64("JHE_MAX_BODY_BYTES", 10 * 1024 * 1024) as usize,
            max_page_bytes: env_i64("JHE_MAX_PAGE_BYTES", 4_000_000).max(1) as usize,
            admin_client_id: std::env::var("JHE_ADMIN_CLIENT_ID").unwrap_or_else(|_| "jhe-admin-ui".into()),
            access_token_ttl: env_i64("JHE_ACCESS_TOKEN_TTL", 3600),
            cognito: None,
            trusted_proxies: std::env::var("JHE_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect(),
            body_read_timeout: std::time::Duration::from_secs(env_i64("JHE_BODY_READ_TIMEOUT_SECS", 30).max(1) as u64),
            origin_secret: std::env::var("JHE_ORIGIN_SECRET").ok().filter(|s| !s.is_empty()),
        }
    }
}
