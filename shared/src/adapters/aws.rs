//! AWS SDK wiring shared by the cloud adapters (feature `aws`): one `SdkConfig` from the standard
//! environment, and the per-service clients built from it. With feature `testkit` it also holds
//! [`faults`], an HTTP client that makes the real SDK clients fail on demand (for tests).
//!
//! Must not depend on: the web framework, the domain, the repository.

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK configuration from the standard environment: `AWS_REGION`, `AWS_ENDPOINT_URL` (and the
/// per-service `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`), and the default credentials
/// chain (environment, web identity, ECS/Lambda container, IMDS).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await
}

/// How long one call may take: a hung connection must not eat API Gateway's 29 s. An attempt
/// gets 5 s (a DynamoDB call takes milliseconds, an upload's archive put well under a second),
/// all retries of one operation 12 s together, a connection 3 s.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(12))
        .build()
}

/// The SDK configuration for a local AWS emulator (moto server) at `endpoint`: region `us-east-1`
/// and fixed dummy credentials (moto does not check signatures), whatever the environment says.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "jhe-local"))
        // An emulator copying a whole table per transaction can take seconds; still bounded.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .operation_attempt_timeout(std::time::Duration::from_secs(60))
                .operation_timeout(std::time::Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

/// The DynamoDB client.
pub fn dynamo_client(conf: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(conf)
}

/// The Cognito user pool client.
pub fn cognito_client(conf: &SdkConfig) -> aws_sdk_cognitoidentityprovider::Client {
    aws_sdk_cognitoidentityprovider::Client::new(conf)
}

/// The S3 client. Path-style addressing (`http://host/bucket/key`) when the endpoint is overridden,
/// because emulators such as moto serve one host name and cannot resolve `bucket.host`.
pub fn s3_client(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let overridden = conf.endpoint_url().is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(conf).force_path_style(overridden).build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// Fault injection for tests: an HTTP client that sits under the real SDK clients and, while a
/// fault is armed, answers every request itself (a canned AWS error response, or a network
/// failure) without sending it. The SDK then runs its real retry classification, deserializes the
/// real error type, and the adapters map it with their real code.
///
/// This is a client wrapper rather than an SDK interceptor because interceptors cannot stop a
/// request from being sent: a "throttled" `PutItem` would still land in the table.
#[cfg(feature = "testkit")]
pub mod faults {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use aws_config::{BehaviorVersion, SdkConfig};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;

    /// What the faulty client answers while armed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Fault {
        /// This HTTP response, as if the service had sent it.
        Respond { status: u16, content_type: &'static str, body: String },
        /// A connection failure (the SDK's `DispatchFailure`), as if the network were down.
        Unreachable,
    }

    impl Fault {
        /// A DynamoDB (JSON 1.0 protocol) error response.
        pub fn dynamo(status: u16, code: &str) -> Self {
            let body = serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": format!("injected {code}"),
            });
            Fault::Respond { status, content_type: "application/x-amz-json-1.0", body: body.to_string() }
        }

        /// DynamoDB's answer to a request over the account's or table's throughput.
        pub fn dynamo_throttling() -> Self {
            Self::dynamo(400, "ThrottlingException")
        }

        /// A `TransactionCanceledException` with one reason code per write (`"None"` for the
        /// writes that were fine), as DynamoDB sends it.
        pub fn transaction_cancelled(reasons: &[&str]) -> Self {
            let message = format!("Transaction cancelled, please refer cancellation reasons [{}]", reasons.join(", "));
            let body = serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": message,
                "CancellationReasons": reasons.iter().map(|c| serde_json::json!({"Code": c})).collect::<Vec<_>>(),
            });
            Fault::Respond { status: 400, content_type: "application/x-amz-json-1.0", body: body.to_string() }
        }

        /// An S3 (REST-XML protocol) error response, e.g. `(503, "SlowDown")`.
        pub fn s3(status: u16, code: &str) -> Self {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <Error><Code>{code}</Code><Message>injected {code}</Message><RequestId>fault</RequestId></Error>"
            );
            Fault::Respond { status, content_type: "application/xml", body }
        }

        fn answer(&self) -> Result<HttpResponse, ConnectorError> {
            match self {
                Fault::Unreachable => Err(ConnectorError::io(
                    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "injected: connection refused").into(),
                )),
                Fault::Respond { status, content_type, body } => {
                    let status = (*status).try_into().map_err(|e| ConnectorError::other(Box::new(e), None))?;
                    let mut resp = HttpResponse::new(status, body.clone().into());
                    resp.headers_mut().insert("content-type", *content_type);
                    resp.headers_mut().insert("x-amzn-requestid", "fault");
                    Ok(resp)
                }
            }
        }
    }

    /// `conf` with quick retries (3 attempts, 10 ms initial backoff): fault tests still go
    /// through the SDK's retries without waiting seconds for them.
    pub fn fast_retries(conf: &SdkConfig) -> SdkConfig {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(10));
        conf.to_builder().retry_config(retry).build()
    }

    #[derive(Debug, Default)]
    struct State {
        /// The armed fault, and how many more requests get it (`None`: until cleared).
        fault: Mutex<Option<(Fault, Option<usize>)>>,
        injected: AtomicUsize,
    }

    /// The switch shared by a test and the clients it wrapped. Cheap to clone.
    #[derive(Debug, Clone, Default)]
    pub struct FaultSwitch {
        state: Arc<State>,
    }

    impl FaultSwitch {
        pub fn new() -> Self {
            Self::default()
        }

        /// Every request from now on gets `fault`.
        pub fn set(&self, fault: Fault) {
            *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some((fault, None));
        }

        /// The next `n` requests get `fault`; later ones go to the service again.
        pub fn set_times(&self, fault: Fault, n: usize) {
            *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some((fault, Some(n)));
        }

        /// Requests go to the service again.
        pub fn clear(&self) {
            *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }

        /// How many requests (including the SDK's own retries) got a fault so far.
        pub fn injected(&self) -> usize {
            self.state.injected.load(Ordering::SeqCst)
        }

        /// The fault for one request, if any (and counts it).
        fn take(&self) -> Option<Fault> {
            let mut slot = self.state.fault.lock().unwrap_or_else(|p| p.into_inner());
            let fault = match slot.as_mut() {
                None | Some((_, Some(0))) => None,
                Some((f, Some(n))) => {
                    *n -= 1;
                    Some(f.clone())
                }
                Some((f, None)) => Some(f.clone()),
            };
            if fault.is_some() {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
            }
            fault
        }

        /// `conf` with its HTTP client placed under this switch. Build clients from the result.
        pub fn wrap(&self, conf: &SdkConfig) -> SdkConfig {
            let inner = conf.http_client().or_else(|| {
                let bv = conf.behavior_version().unwrap_or(BehaviorVersion::latest());
                aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(bv).and_then(|plugin| {
                    plugin.runtime_components(&RuntimeComponentsBuilder::new("jhe-faults")).http_client()
                })
            });
            conf.to_builder().http_client(FaultyClient { inner, switch: self.clone() }).build()
        }
    }

    #[derive(Debug)]
    struct FaultyClient {
        inner: Option<SharedHttpClient>,
        switch: FaultSwitch,
    }

    impl HttpClient for FaultyClient {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            let inner = self.inner.as_ref().map(|c| c.http_connector(settings, components));
            SharedHttpConnector::new(FaultyConnector { inner, switch: self.switch.clone() })
        }
    }

    #[derive(Debug)]
    struct FaultyConnector {
        inner: Option<SharedHttpConnector>,
        switch: FaultSwitch,
    }

    impl HttpConnector for FaultyConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            if let Some(fault) = self.switch.take() {
                return HttpConnectorFuture::ready(fault.answer());
            }
            match &self.inner {
                Some(c) => c.call(request),
                None => HttpConnectorFuture::ready(Err(ConnectorError::other("no default HTTP client".into(), None))),
            }
        }
    }
}
