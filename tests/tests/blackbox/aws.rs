//! The cloud adapters (feature `aws`) against a moto server: the DynamoDB `Table` and the S3
//! `BlobStore` pass the same contract suites as the local engines, and failures of the services
//! (throttling, outages, failed conditions) reach the port and the HTTP layer as they must.
//!
//! These tests start nothing: they read the server's URL from `JHE_TEST_MOTO_URL`
//! (`bash tests/harness/moto.sh start` writes it to `test-output/moto.url`). Without it they fail,
//! unless `JHE_SKIP_AWS_TESTS=1` says to skip them. Each test works in its own table and bucket.
//! Faults are injected under the real SDK clients (`jhe::adapters::aws::faults`), so the SDK's
//! retries, its error types and the adapters' mapping of them are the real ones.

use std::sync::Arc;

use jhe::adapters::aws::faults::{Fault, FaultSwitch, fast_retries};
use jhe::adapters::aws::{dynamo_client, local_sdk_config, s3_client};
use jhe::adapters::dynamo::DynamoTable;
use jhe::adapters::s3::S3Blobs;
use jhe::ports::{BlobError, BlobStore, Cond, Item, Key, Query, StoreError, Table, Write};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// The moto server's URL; `None` when the AWS tests are to be skipped. Panics when neither is set,
/// so that a run without moto can never pass these tests silently.
pub(crate) fn moto() -> Option<String> {
    match std::env::var("JHE_TEST_MOTO_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ if std::env::var("JHE_SKIP_AWS_TESTS").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED: AWS adapter test (JHE_SKIP_AWS_TESTS=1)");
            None
        }
        _ => panic!(
            "JHE_TEST_MOTO_URL is not set, so the AWS adapter tests cannot run. Start moto with \
             `bash tests/harness/moto.sh start` and run with JHE_TEST_MOTO_URL=$(cat test-output/moto.url), \
             or set JHE_SKIP_AWS_TESTS=1 to skip them."
        ),
    }
}

/// A name no other test uses (valid as a table and as a bucket name).
pub(crate) fn unique(kind: &str) -> String {
    format!("jhe-test-{kind}-{}", jhe::auth::crypto::random_alnum(12).to_ascii_lowercase())
}

/// A fresh table and bucket on moto, each client under its own fault switch.
struct Cloud {
    table: DynamoTable,
    blobs: S3Blobs,
    dynamo_faults: FaultSwitch,
    s3_faults: FaultSwitch,
}

async fn cloud(url: &str, prefix: &str) -> Cloud {
    let conf = fast_retries(&local_sdk_config(url).await);
    let dynamo_faults = FaultSwitch::new();
    let s3_faults = FaultSwitch::new();
    let dynamo = dynamo_client(&dynamo_faults.wrap(&conf));
    let s3 = s3_client(&s3_faults.wrap(&conf));
    let table = unique("table");
    DynamoTable::create_table(&dynamo, &table).await.expect("create table");
    let bucket = unique("bucket");
    S3Blobs::create_bucket(&s3, &bucket).await.expect("create bucket");
    Cloud { table: DynamoTable::new(dynamo, table), blobs: S3Blobs::new(s3, bucket, prefix), dynamo_faults, s3_faults }
}

#[tokio::test]
async fn dynamodb_table_passes_the_contract_suite() {
    let Some(url) = moto() else { return };
    let conf = local_sdk_config(&url).await;
    let client = dynamo_client(&conf);
    let name = unique("contract");
    DynamoTable::create_table(&client, &name).await.expect("create table");
    jhe::testkit::table_contract(Arc::new(DynamoTable::new(client.clone(), name.clone()))).await;
    // Creating an existing table again only waits for it (what `jhe` runs against moto rely on).
    DynamoTable::create_table(&client, &name).await.expect("create table again");
}

#[tokio::test]
async fn s3_blob_store_passes_the_contract_suite_at_the_root_and_under_a_prefix() {
    let Some(url) = moto() else { return };
    let c = cloud(&url, "").await;
    let root = c.blobs.clone();
    jhe::testkit::blob_contract(Arc::new(root.clone())).await;
    let prefixed = root.with_prefix("/archive/");
    jhe::testkit::blob_contract(Arc::new(prefixed.clone())).await;
    // The prefixed store lives under `archive/` and lists keys relative to it.
    assert_eq!(root.list("archive/").await.expect("list").len(), 2, "prefixed keys are stored under the prefix");
    assert_eq!(root.list("t/").await.expect("list").len(), 2, "the root store's own keys");
    assert!(prefixed.list("").await.expect("list").iter().all(|k| k.starts_with("t/")), "keys relative to the prefix");
}

#[tokio::test]
async fn dynamodb_throttling_and_overload_are_busy_after_the_sdks_own_retries() {
    let Some(url) = moto() else { return };
    let c = cloud(&url, "").await;
    let t = &c.table;
    let item = Item::new("P#1", "A", json!({"x": 1}));
    t.put(item.clone(), Cond::Absent).await.expect("healthy put");

    // Every kind of DynamoDB refusal for load, and a network outage, is Busy (503 upstream).
    let refusals = [
        Fault::dynamo_throttling(),
        Fault::dynamo(400, "ProvisionedThroughputExceededException"),
        Fault::dynamo(400, "RequestLimitExceeded"),
        Fault::dynamo(400, "TransactionConflictException"),
        Fault::dynamo(500, "InternalServerError"),
        Fault::dynamo(503, "ServiceUnavailable"),
        Fault::Unreachable,
    ];
    for fault in refusals {
        c.dynamo_faults.set(fault.clone());
        let before = c.dynamo_faults.injected();
        let got = t.get(&item.key()).await;
        assert!(matches!(got, Err(StoreError::Busy(_))), "{fault:?} must be Busy, got {got:?}");
        assert!(c.dynamo_faults.injected() > before, "{fault:?} was injected");
    }

    // Throttling reaches every operation as Busy; the SDK retried before giving up.
    c.dynamo_faults.set(Fault::dynamo_throttling());
    let before = c.dynamo_faults.injected();
    let other = Item::new("P#1", "B", json!({}));
    let results = [
        ("put", t.put(other.clone(), Cond::None).await.err()),
        ("delete", t.delete(&item.key(), Cond::None).await.err()),
        ("query", t.query(&Query::partition("P#1")).await.err()),
        ("count", t.count(&Query::partition("P#1")).await.err()),
        ("put_many", t.put_many(vec![other.clone()]).await.err()),
        ("transact", t.transact(vec![Write::Put { item: other.clone(), cond: Cond::Absent }]).await.err()),
    ];
    for (op, err) in results {
        assert!(matches!(err, Some(StoreError::Busy(_))), "throttled {op} must be Busy, got {err:?}");
    }
    assert!(
        c.dynamo_faults.injected() >= before + 2 * 6,
        "the SDK retried each throttled call ({} attempts for 6 calls)",
        c.dynamo_faults.injected() - before
    );

    // A cancelled transaction: a conflict is Busy; a failed condition names its write.
    c.dynamo_faults.set(Fault::transaction_cancelled(&["None", "TransactionConflict"]));
    let two = vec![
        Write::Put { item: other.clone(), cond: Cond::None },
        Write::Check { key: item.key(), cond: Cond::Exists },
    ];
    let got = t.transact(two.clone()).await;
    assert!(matches!(got, Err(StoreError::Busy(_))), "a transaction conflict is Busy, got {got:?}");
    c.dynamo_faults.set(Fault::transaction_cancelled(&["None", "ConditionalCheckFailed"]));
    assert_eq!(t.transact(two).await, Err(StoreError::ConditionFailed { index: 1 }));

    // Nothing a refused request carried was written.
    c.dynamo_faults.clear();
    assert_eq!(t.get(&item.key()).await.expect("get"), Some(item), "the throttled delete deleted nothing");
    assert_eq!(t.get(&other.key()).await.expect("get"), None, "no throttled write landed");
}

/// A `BatchWriteItem` answer that hands every item back as unprocessed (what DynamoDB does to a
/// batch over the table's throughput), in the adapter's item layout.
fn all_unprocessed(table: &str, items: &[Item]) -> Fault {
    let requests: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({"PutRequest": {"Item": {
                "pk": {"S": i.pk}, "sk": {"S": i.sk}, "v": {"N": i.version.to_string()}, "d": {"S": i.data.to_string()},
            }}})
        })
        .collect();
    let body = json!({"UnprocessedItems": {table: requests}}).to_string();
    Fault::Respond { status: 200, content_type: "application/x-amz-json-1.0", body }
}

#[tokio::test]
async fn dynamodb_put_many_resends_unprocessed_items_and_gives_up_busy() {
    let Some(url) = moto() else { return };
    let c = cloud(&url, "").await;
    let t = &c.table;
    let items: Vec<Item> = (0..3).map(|i| Item::new("U#1", format!("{i}"), json!({"i": i}))).collect();
    // Twice "all unprocessed", then DynamoDB takes them: every item lands.
    c.dynamo_faults.set_times(all_unprocessed(t.table_name(), &items), 2);
    t.put_many(items.clone()).await.expect("put_many after unprocessed rounds");
    assert_eq!(c.dynamo_faults.injected(), 2);
    assert_eq!(t.query(&Query::partition("U#1")).await.expect("query").items, items, "every item landed");
    // Unprocessed for good: Busy, not a silent loss and not an endless loop.
    let more: Vec<Item> = (0..3).map(|i| Item::new("U#2", format!("{i}"), json!({}))).collect();
    c.dynamo_faults.set(all_unprocessed(t.table_name(), &more));
    assert!(matches!(t.put_many(more).await, Err(StoreError::Busy(_))));
}

#[tokio::test]
async fn dynamodb_get_many_answers_in_key_order_across_batches_and_resends_unprocessed_keys() {
    let Some(url) = moto() else { return };
    let c = cloud(&url, "").await;
    let t = &c.table;
    let items: Vec<Item> = (0..250).map(|i| Item::new("R#1", format!("{i:03}"), json!({"i": i}))).collect();
    t.put_many(items.clone()).await.expect("put_many");
    // More keys than one BatchGetItem takes, a key twice, a missing key, a key no item can have.
    let mut keys: Vec<Key> = items.iter().rev().map(Item::key).collect();
    keys.extend([Key::new("R#1", "007"), Key::new("R#1", "missing"), Key::new("R#1", "")]);
    let got = t.get_many(&keys).await.expect("get_many");
    assert_eq!(got.len(), keys.len(), "one answer per key");
    for (k, g) in keys.iter().zip(&got) {
        assert_eq!(g.as_ref().map(Item::key).as_ref(), items.iter().any(|i| i.key() == *k).then_some(k), "{k:?}");
    }
    assert_eq!(got[0].as_ref(), items.last(), "answers follow the order of the keys");
    // DynamoDB hands keys back unprocessed under load: they are asked again.
    let unprocessed = json!({"Responses": {}, "UnprocessedKeys": {t.table_name(): {"ConsistentRead": true, "Keys":
        items[..3].iter().map(|i| json!({"pk": {"S": i.pk}, "sk": {"S": i.sk}})).collect::<Vec<_>>()}}});
    let fault =
        Fault::Respond { status: 200, content_type: "application/x-amz-json-1.0", body: unprocessed.to_string() };
    c.dynamo_faults.set_times(fault, 1);
    let three: Vec<Key> = items[..3].iter().map(Item::key).collect();
    let got = t.get_many(&three).await.expect("get_many after an unprocessed round");
    assert_eq!(got, items[..3].iter().cloned().map(Some).collect::<Vec<_>>());
    assert_eq!(c.dynamo_faults.injected(), 1);
}

#[tokio::test]
async fn dynamodb_conditional_check_failures_are_condition_failed() {
    let Some(url) = moto() else { return };
    let t = cloud(&url, "").await.table;
    let item = Item::new("C#1", "A", json!({}));
    t.put(item.clone(), Cond::Absent).await.expect("put");
    assert_eq!(t.put(item.clone(), Cond::Absent).await, Err(StoreError::ConditionFailed { index: 0 }));
    assert_eq!(t.put(item.clone(), Cond::Version(2)).await, Err(StoreError::ConditionFailed { index: 0 }));
    assert_eq!(t.delete(&Key::new("C#1", "B"), Cond::Exists).await, Err(StoreError::ConditionFailed { index: 0 }));
    let writes = vec![
        Write::Put { item: Item::new("C#1", "B", json!({})), cond: Cond::Absent },
        Write::Check { key: item.key(), cond: Cond::Version(1) },
        Write::Delete { key: Key::new("C#1", "ghost"), cond: Cond::Exists },
        Write::Put { item: Item::new("C#1", "D", json!({})), cond: Cond::Exists },
    ];
    assert_eq!(
        t.transact(writes).await,
        Err(StoreError::ConditionFailed { index: 2 }),
        "the first failing write of a transaction is named, from DynamoDB's cancellation reasons"
    );
    assert_eq!(t.get(&Key::new("C#1", "B")).await.expect("get"), None, "the cancelled transaction wrote nothing");
}

#[tokio::test]
async fn s3_outages_are_unavailable_and_a_refused_put_stores_nothing() {
    let Some(url) = moto() else { return };
    let c = cloud(&url, "jhe").await;
    let b = &c.blobs;
    b.put_new("bundles/a.json", b"a".to_vec()).await.expect("healthy put");
    for fault in [Fault::s3(503, "SlowDown"), Fault::s3(500, "InternalError"), Fault::Unreachable] {
        c.s3_faults.set(fault.clone());
        let put = b.put_new("bundles/b.json", b"b".to_vec()).await;
        assert!(matches!(put, Err(BlobError::Unavailable(_))), "put under {fault:?}: {put:?}");
        let get = b.get("bundles/a.json").await;
        assert!(matches!(get, Err(BlobError::Unavailable(_))), "get under {fault:?}: {get:?}");
        let list = b.list("bundles/").await;
        assert!(matches!(list, Err(BlobError::Unavailable(_))), "list under {fault:?}: {list:?}");
    }
    c.s3_faults.clear();
    assert_eq!(b.list("bundles/").await.expect("list"), ["bundles/a.json"], "the refused put stored nothing");
    assert!(matches!(b.put_new("bundles/a.json", vec![]).await, Err(BlobError::Exists(_))));
}

/// The whole server on DynamoDB and S3 (moto), with the issuer of a local data folder.
struct CloudApp {
    base: String,
    http: reqwest::Client,
    state: jhe::http::AppState,
    cloud: Cloud,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for CloudApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn spawn_cloud_app(url: &str) -> CloudApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let local = jhe::local::open(dir.path(), settings(&base)).expect("open");
    let cloud = cloud(url, "jhe").await;
    let mut state = local.state.clone();
    state.repo = jhe::repo::Repo::new(Arc::new(cloud.table.clone()));
    state.blobs = Arc::new(cloud.blobs.clone());
    jhe::seed::seed(&state.repo, &state.settings, &*state.blobs).await.expect("seed on DynamoDB and S3");
    let app = jhe::http::app(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    CloudApp { base, http: client(), state, cloud, server, _dir: dir }
}

impl CloudApp {
    /// An access token for a seeded user, minted by the server's issuer.
    async fn token(&self, user: i64) -> String {
        let u = self.state.repo.user(user).await.expect("user").expect("seeded user");
        let t = self.state.issuer.issue(&self.state.repo, &u, ADMIN_CLIENT, "openid", "authorization_code", None);
        t.await.expect("issue").access_token
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let resp = rb.send().await.expect("request");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    async fn upload(&self, token: &str, obs: &Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let rb = self
            .http
            .post(format!("{}/FHIR/R5/Observation", self.base))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(obs.to_string());
        self.send(rb).await
    }

    async fn observation_count(&self, token: &str) -> u64 {
        let (s, v, _) = self.get("/FHIR/R5/Observation?patient=40001&_summary=count", token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["total"].as_u64().expect("total")
    }
}

const HR: &str = "omh:heart-rate:2.0";
const MARY: i64 = 10002;
const PETER: i64 = 10007;

#[tokio::test]
async fn on_aws_an_s3_outage_refuses_the_upload_and_indexes_nothing() {
    let Some(url) = moto() else { return };
    let app = spawn_cloud_app(&url).await;
    let (mary, peter) = (app.token(MARY).await, app.token(PETER).await);

    // Healthy: the upload is archived in S3, indexed in DynamoDB, and reads back.
    let first = observation(40001, HR, 70001, "2025-05-01T08:00:00Z");
    let (s, created, _) = app.upload(&peter, &first).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    let (s, read, _) = app.get(&format!("/FHIR/R5/Observation/{id}"), &mary).await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["valueAttachment"]["data"], first["valueAttachment"]["data"]);
    let count = app.observation_count(&mary).await;
    let archived = app.cloud.blobs.list("bundles/").await.expect("list");

    // S3 down: the upload is refused as transient, and nothing of it is indexed.
    let second = observation(40001, HR, 70001, "2025-05-01T09:00:00Z");
    for fault in [Fault::s3(503, "ServiceUnavailable"), Fault::Unreachable] {
        app.cloud.s3_faults.set(fault.clone());
        let (s, oo, _) = app.upload(&peter, &second).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{fault:?}: {oo}");
        assert_eq!(oo["issue"][0]["code"], "transient", "{oo}");
    }
    assert!(app.cloud.s3_faults.injected() >= 2);
    app.cloud.s3_faults.clear();
    assert_eq!(app.observation_count(&mary).await, count, "a refused upload indexes nothing");
    assert_eq!(app.cloud.blobs.list("bundles/").await.expect("list"), archived, "and archives nothing");
    let ident = &second["identifier"][0];
    let by_key = app
        .state
        .repo
        .observation_by_key(ident["system"].as_str().expect("system"), ident["value"].as_str().expect("value"));
    assert_eq!(by_key.await.expect("lookup"), None, "its identifier is not claimed");

    // S3 back: the same upload now succeeds.
    let (s, created, _) = app.upload(&peter, &second).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(app.observation_count(&mary).await, count + 1);
}

#[tokio::test]
async fn on_aws_dynamodb_throttling_answers_503_with_retry_after() {
    let Some(url) = moto() else { return };
    let app = spawn_cloud_app(&url).await;
    let mary = app.token(MARY).await;
    let (s, profile, _) = app.get("/api/v1/users/profile", &mary).await;
    assert_eq!(s, StatusCode::OK, "{profile}");

    app.cloud.dynamo_faults.set(Fault::dynamo_throttling());
    let (s, body, headers) = app.get("/api/v1/users/profile", &mary).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(body, json!({"detail": "The service is busy; try again."}), "no internals leak");
    let (s, oo, _) = app.get("/FHIR/R5/Observation?patient=40001", &mary).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "transient");

    app.cloud.dynamo_faults.clear();
    assert_eq!(app.get("/api/v1/users/profile", &mary).await.0, StatusCode::OK, "served again once DynamoDB is");
}

#[tokio::test]
async fn audit_records_are_copied_write_once_and_a_failed_copy_fails_the_append() {
    use jhe::cloud::CopiedAudit;
    use jhe::domain::audit::AuditRecord;
    use jhe::ports::{AuditLog, AuditQuery};
    let Some(url) = moto() else { return };
    let c = cloud(&url, "audit").await;
    let repo = jhe::repo::Repo::new(Arc::new(c.table.clone()));
    let copies: Arc<S3Blobs> = Arc::new(c.blobs.clone());
    let audit = CopiedAudit { log: Arc::new(jhe::repo::audit::TableAudit { repo }), copies: copies.clone() };
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let rec = |id: &str| AuditRecord {
        id: format!("{now:013}{id}"),
        recorded: now,
        action: "observation.search".into(),
        status: 200,
        allowed: true,
        patients: vec![40001],
        ..Default::default()
    };
    let r = rec("aaaaaaaa");
    audit.append(&r).await.expect("append");
    let copy = copies.get(&CopiedAudit::key(&r)).await.expect("get").expect("the copy exists");
    assert_eq!(serde_json::from_slice::<AuditRecord>(&copy).expect("json"), r, "the copy is the record");
    audit.append(&r).await.expect_err("the table refuses the same record twice (append-only)");
    assert_eq!(
        copies.put_new(&CopiedAudit::key(&r), b"{}".to_vec()).await,
        Err(BlobError::Exists(CopiedAudit::key(&r)))
    );

    // S3 down: the append fails (so the request it records fails), though the table took it.
    c.s3_faults.set(Fault::Unreachable);
    let r2 = rec("bbbbbbbb");
    assert!(audit.append(&r2).await.is_err(), "a failed copy fails the append");
    c.s3_faults.clear();
    let q = AuditQuery { patient: Some(40001), limit: 10, ..Default::default() };
    let (found, _) = audit.query(&q).await.expect("query");
    assert!(found.iter().any(|x| x.id == r.id), "reads come from the table");
    assert!(found.iter().any(|x| x.id == r2.id), "the table took the record whose copy failed");
}
