//! Wiring shared by the Lambda functions (`functions/<group>/`): each function serves one route
//! group of `jhe::http` under `lambda_http`, on the deployment's DynamoDB table, S3 bucket and
//! Cognito user pool, all named by the environment the SAM template sets (`JHE_TABLE`,
//! `JHE_BUNDLE_BUCKET`, `JHE_USER_POOL_ID`, `JHE_TOKEN_ISSUER`, `JHE_JWKS_URL`, the app client ids,
//! `JHE_COGNITO_DOMAIN`, `JHE_SITE_URL`) plus the standard AWS environment. No behaviour lives here.

pub use lambda_http::Error;

/// Serves route group `group` until the Lambda runtime stops the process.
pub fn run(group: &str) -> Result<(), Error> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // CloudWatch stamps every line and shows no colours.
        .without_time()
        .with_ansi(false);
    // The template asks Lambda for JSON logs: each line a JSON object, searchable by field.
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
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
    let app = tower::ServiceBuilder::new().map_request(with_source_ip).service(jhe::http::serve_group(router, state));
    lambda_http::run(app).await
}

/// Hands API Gateway's `sourceIp` (the client as the gateway saw it) to the audit trail, which
/// believes no forwarding header a client sends.
fn with_source_ip(mut req: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let ip = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref().and_then(|s| s.parse().ok())
        }
        _ => None,
    };
    if let Some(ip) = ip {
        req.extensions_mut().insert(jhe::http::audit::PeerAddr(ip));
    }
    req
}
