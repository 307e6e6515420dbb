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
    /// The OAuth client id of the web UI (`JHE_ADMIN_CLIENT_ID`).
    pub admin_client_id: String,
    /// Access token lifetime in seconds (`JHE_ACCESS_TOKEN_TTL`, default 1 hour).
    pub access_token_ttl: i64,
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
            admin_client_id: std::env::var("JHE_ADMIN_CLIENT_ID").unwrap_or_else(|_| "jhe-admin-ui".into()),
            access_token_ttl: env_i64("JHE_ACCESS_TOKEN_TTL", 3600),
        }
    }
}
