//! Every Lambda function binary (`functions/<group>`, built as `jhe-<group>`) run the way Lambda
//! runs it: as a process that pulls events from the Lambda Runtime API, here an emulator on
//! loopback that hands it the API Gateway events of `events/<group>/` and collects its answers. The
//! functions get the environment the SAM template sets, pointing at DynamoDB, S3 and a Cognito user
//! pool on moto, with the demo data in the table.
//!
//! Checked: each event's status (`events/expected-status.json`, with the user-pool answers of
//! `events/expected-status-cloud.json`), and each event that needs a login answered again with a
//! real pool token: then it is not refused and does not fail. Every request's audit record is also
//! copied, write-once, to an Object-Lock bucket (`JHE_AUDIT_BUCKET`), as in the cloud. The time from process start to its
//! first pull of an event (ready) is printed for each function.
//!
//! The binaries are taken from the test binary's own target folder (`target/debug`), or from
//! `JHE_LAMBDA_BIN_DIR` (an absolute path, e.g. `$PWD/target/release`, to measure release
//! start-up times). They are whatever was built last: `cargo test -p jhe-tests` alone does not
//! rebuild them (the test command builds every target first; by hand, `cargo build --workspace`).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::aws::moto;
use crate::cognito::pool_app;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("JHE_LAMBDA_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/debug/deps/blackbox-<hash> -> target/debug
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(|d| d.parent()).expect("target folder").to_path_buf()
}

/// The Runtime API emulator's state: events to hand out, and where answers go.
#[derive(Clone)]
struct Runtime {
    queue: Arc<Mutex<VecDeque<(String, Value)>>>,
    /// Rung when an event is queued (a permit is kept if nobody waits yet).
    more: Arc<tokio::sync::Notify>,
    answers: mpsc::UnboundedSender<(String, Value)>,
    first_pull: Arc<Mutex<Option<Instant>>>,
}

async fn next(State(rt): State<Runtime>) -> axum::response::Response {
    use axum::response::IntoResponse;
    {
        let mut first = rt.first_pull.lock().expect("lock");
        first.get_or_insert_with(Instant::now);
    }
    // No event yet: the function waits, as it would for traffic.
    let (id, event) = loop {
        let item = rt.queue.lock().expect("lock").pop_front();
        match item {
            Some(item) => break item,
            None => rt.more.notified().await,
        }
    };
    let deadline = (time::OffsetDateTime::now_utc().unix_timestamp() + 30) * 1000;
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:jhe-test".into()),
            ("lambda-runtime-trace-id", "Root=1-6929f0a0-0123456789abcdef01234567".into()),
        ],
        axum::Json(event),
    )
        .into_response()
}

async fn response(State(rt): State<Runtime>, Path(id): Path<String>, body: axum::body::Bytes) -> &'static str {
    let v = serde_json::from_slice(&body).unwrap_or_else(|_| json!({"unparsed": String::from_utf8_lossy(&body)}));
    let _ = rt.answers.send((id, v));
    "{}"
}

async fn error(State(rt): State<Runtime>, Path(id): Path<String>, body: axum::body::Bytes) -> &'static str {
    let _ = rt.answers.send((id, json!({"function_error": String::from_utf8_lossy(&body)})));
    "{}"
}

async fn init_error(State(rt): State<Runtime>, body: axum::body::Bytes) -> &'static str {
    let _ = rt.answers.send(("init".into(), json!({"init_error": String::from_utf8_lossy(&body)})));
    "{}"
}

/// One function binary (`jhe-<group>`) running under the Runtime API emulator, answering the
/// events handed to it one at a time.
pub(crate) struct Function {
    group: String,
    rt: Runtime,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    sent: usize,
    started: Instant,
    _child: Stop,
    server: tokio::task::JoinHandle<()>,
}

impl Function {
    /// Starts `jhe-<group>` with `env` (and the Lambda runtime's own variables).
    pub(crate) async fn start(group: &str, env: &[(String, String)]) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rt = Runtime {
            queue: Arc::default(),
            more: Arc::new(tokio::sync::Notify::new()),
            answers: tx,
            first_pull: Arc::new(Mutex::new(None)),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(rt.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        let bin = bin_dir().join(format!("jhe-{group}"));
        assert!(bin.exists(), "{} is not built (cargo build --workspace)", bin.display());
        let started = Instant::now();
        let child = std::process::Command::new(&bin)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("jhe-test-{group}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/jhe-test-{group}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Self { group: group.to_string(), rt, rx, sent: 0, started, _child: Stop(child), server }
    }

    /// Hands the function one event and waits for its answer.
    pub(crate) async fn call(&mut self, event: Value) -> Value {
        let id = format!("req-{}", self.sent);
        self.sent += 1;
        self.rt.queue.lock().expect("lock").push_back((id.clone(), event));
        self.rt.more.notify_one();
        let got = tokio::time::timeout(Duration::from_secs(60), self.rx.recv()).await;
        let (got_id, answer) = got
            .unwrap_or_else(|_| panic!("{}: no answer to {id} in time", self.group))
            .unwrap_or_else(|| panic!("{}: the emulator stopped", self.group));
        assert_ne!(got_id, "init", "{} failed to start: {answer}", self.group);
        assert_eq!(got_id, id, "{}: answers come in order", self.group);
        answer
    }

    /// How long the process took from start to its first pull of an event.
    fn ready(&self) -> Duration {
        self.rt.first_pull.lock().expect("lock").map(|t| t - self.started).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs `jhe-<group>` on `events` (id -> event); returns the answers by id and the ready time.
async fn run_function(
    group: &str,
    env: &[(String, String)],
    events: Vec<(String, Value)>,
) -> (BTreeMap<String, Value>, Duration) {
    let mut f = Function::start(group, env).await;
    let mut answers = BTreeMap::new();
    for (name, event) in events {
        answers.insert(name, f.call(event).await);
    }
    (answers, f.ready())
}

/// Stops the function process when dropped (also when a check fails).
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the SAM template gives the functions, pointing at moto and `p`'s table, bucket and pool,
/// and the audit-copy bucket made as the template makes it (Object Lock with a default retention).
pub(crate) async fn cloud_env(
    url: &str,
    p: &crate::cognito::PoolApp,
) -> (Vec<(String, String)>, aws_sdk_s3::Client, String) {
    let pool = &p.pool;
    // The audit-copy bucket as the template makes it: Object Lock with a default retention.
    let s3 = jhe::adapters::aws::s3_client(&jhe::adapters::aws::local_sdk_config(url).await);
    let audit_bucket = format!("{}-audit", p.name);
    s3.create_bucket().bucket(&audit_bucket).object_lock_enabled_for_bucket(true).send().await.expect("audit bucket");
    {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
        };
        let rule = ObjectLockRule::builder()
            .default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build())
            .build();
        let conf =
            ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build();
        s3.put_object_lock_configuration()
            .bucket(&audit_bucket)
            .object_lock_configuration(conf)
            .send()
            .await
            .expect("default retention");
    }
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", url),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("JHE_STAGE", "test"),
        ("JHE_TABLE", &p.name),
        ("JHE_BUNDLE_BUCKET", &p.name),
        ("JHE_AUDIT_BUCKET", &audit_bucket),
        ("JHE_USER_POOL_ID", &pool.user_pool_id),
        ("JHE_TOKEN_ISSUER", &pool.issuer),
        ("JHE_JWKS_URL", &pool.jwks_url),
        ("JHE_SPA_CLIENT_ID", &pool.spa_client_id),
        ("JHE_ADMIN_CLIENT_ID", &pool.spa_client_id),
        ("JHE_PATIENT_CLIENT_ID", &pool.patient_client_id),
        ("JHE_API_CLIENT_ID", &pool.api_client_id),
        ("JHE_COGNITO_DOMAIN", &pool.domain),
        ("JHE_SITE_URL", "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
        ("RUST_LOG", "warn"),
        // As the template sets it (LoggingConfig.LogFormat: JSON): the functions log JSON lines.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    (env, s3, audit_bucket)
}

fn status(answer: &Value) -> u16 {
    answer["statusCode"].as_u64().unwrap_or_else(|| panic!("not an API Gateway answer: {answer}")) as u16
}

#[tokio::test]
async fn every_function_binary_answers_its_events_under_the_lambda_runtime_api() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let admin = p.practitioner("admin@example.com").await;
    let (env, s3, audit_bucket) = cloud_env(&url, &p).await;

    let events_dir = repo_root().join("events");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(events_dir.join(name)).expect("read")).expect("json")
    };
    let expected = read("expected-status.json");
    let cloud = read("expected-status-cloud.json");
    let mut report = Vec::new();
    let mut checked = 0;
    // Every function group the router has (each is one Lambda function).
    for (group, _) in jhe::http::route_groups() {
        let mut files: Vec<_> = std::fs::read_dir(events_dir.join(group))
            .expect("events folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "events/{group}/ has events");
        let (mut events, mut wants) = (Vec::new(), BTreeMap::new());
        for f in &files {
            let rel = format!("{group}/{f}");
            let ev = read(&rel);
            let want = cloud.get(&rel).or_else(|| expected.get(&rel)).and_then(Value::as_u64).expect("expected status");
            wants.insert(format!("{rel}#anonymous"), want as u16);
            events.push((format!("{rel}#anonymous"), ev.clone()));
            // Refused for want of a login (the token endpoint's 401 is about client credentials).
            if want == 401 && ev["routeKey"] != json!("POST /o/token") {
                // The same request with a real pool token.
                let mut authed = ev;
                authed["headers"]["authorization"] = json!(format!("Bearer {admin}"));
                wants.insert(format!("{rel}#admin"), want as u16);
                events.push((format!("{rel}#admin"), authed));
            }
        }
        let n = events.len();
        let (answers, ready) = run_function(group, &env, events).await;
        report.push(format!("jhe-{group}: ready in {} ms, {n} events", ready.as_millis()));
        for (id, want) in &wants {
            let answer = &answers[id];
            let got = status(answer);
            let want = *want;
            if id.ends_with("#anonymous") {
                assert_eq!(got, want, "{id}: {answer}");
            } else {
                assert!(got != 401 && got < 500, "{id} with a pool token: {answer}");
            }
            checked += 1;
        }
        if group == "admin-orgs" {
            let a = &answers["admin-orgs/organizations-list.json#admin"];
            let body: Value = serde_json::from_str(a["body"].as_str().expect("body")).expect("json body");
            assert_eq!(status(a), 200, "{a}");
            assert!(
                body["results"].as_array().is_some_and(|r| r.iter().any(|o| o["id"] == json!(20001))),
                "the superuser sees the demo organizations from DynamoDB: {body}"
            );
        }
    }
    for line in &report {
        println!("{line}");
    }
    assert!(checked >= 40, "{checked} answers checked");

    // The audit copies: one object per record, the record itself, locked.
    let listed = s3.list_objects_v2().bucket(&audit_bucket).prefix("audit/").send().await.expect("list");
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(String::from)).collect();
    assert!(keys.len() >= 10, "audit copies written: {keys:?}");
    let mut actions = Vec::new();
    for k in &keys {
        let o = s3.get_object().bucket(&audit_bucket).key(k).send().await.expect("get copy");
        assert!(o.object_lock_retain_until_date().is_some(), "{k} is under retention");
        let body = o.body.collect().await.expect("body").into_bytes();
        let r: Value = serde_json::from_slice(&body).expect("record json");
        assert!(k.ends_with(&format!("/{}.json", r["id"].as_str().expect("id"))), "{k} holds record {}", r["id"]);
        actions.push(r["action"].as_str().unwrap_or("").to_string());
    }
    assert!(actions.iter().any(|a| a.starts_with("observation")), "FHIR reads and uploads are audited: {actions:?}");
}
