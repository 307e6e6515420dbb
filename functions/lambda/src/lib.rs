//! Wiring shared by the Lambda functions (`functions/<group>/`): each function serves one route
//! group of `jhe::http` under `lambda_http`, on the deployment's DynamoDB table, S3 bucket and
//! Cognito user pool, all named by the environment the SAM template sets (`JHE_TABLE`,
//! `JHE_BUNDLE_BUCKET`, `JHE_USER_POOL_ID`, `JHE_TOKEN_ISSUER`, `JHE_JWKS_URL`, the app client ids,
//! `JHE_COGNITO_DOMAIN`, `JHE_SITE_URL`) plus the standard AWS environment. No behaviour lives here.

pub use lambda_http::Error;

/// Serves route group `group` until the Lambda runtime stops the process.
pub fn run(group: &str) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // CloudWatch stamps every line and shows no colours.
        .without_time()
        .with_ansi(false)
        .init();
    // One request at a time per execution environment: a single-threaded runtime starts faster.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(serve(group))
}

async fn serve(group: &str) -> Result<(), Error> {
    let router = jhe::http::route_groups()
        .into_iter()
        .find_map(|(name, r)| (name == group).then_some(r))
        .ok_or_else(|| format!("no route group {group:?}"))?;
    let conf = jhe::adapters::aws::sdk_config().await;
    let mut settings = jhe::config::Settings::from_env("");
    settings.cognito = jhe::config::CognitoSettings::from_env()?;
    let state = jhe::cloud::state(settings, &conf)?;
    tracing::info!(group, "ready");
    lambda_http::run(jhe::http::serve_group(router, state)).await
}
