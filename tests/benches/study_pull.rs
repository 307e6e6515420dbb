//! A study-wide pull: a researcher pages through the observations of a study of 1,000 patients
//! (`GET /FHIR/R5/Observation?patient._has:Group:member:_id=<study>`), counting the store calls
//! each page makes. On DynamoDB each call is a network round trip (a few milliseconds), so the
//! calls, and how many of them wait on each other, decide whether a page fits in API Gateway's
//! 29 s. The store here is the embedded one behind a wrapper that counts calls and, with
//! `JHE_BENCH_CALL_MS`, waits that long in each (default 5: DynamoDB in-region).
//!
//!     cargo bench -p jhe-tests --bench study_pull [-- PATIENTS]
//!
//! A benchmark, not a test: it prints, it asserts only that every observation was reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jhe::adapters::embedded::EmbeddedTable;
use jhe::domain::Caller;
use jhe::ports::{Cond, EachItem, Item, Key, Page, Query, RawPage, StoreResult, Table, Write};
use jhe::repo::Repo;

/// The embedded store, counting calls and waiting `delay` in each (as a network round trip).
struct Remote {
    inner: EmbeddedTable,
    calls: AtomicUsize,
    delay: Duration,
}

impl Remote {
    async fn call(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

#[async_trait]
impl Table for Remote {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        self.call().await;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()> {
        self.call().await;
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()> {
        self.call().await;
        self.inner.delete(key, cond).await
    }
    async fn query(&self, q: &Query) -> StoreResult<Page> {
        self.call().await;
        self.inner.query(q).await
    }
    async fn query_raw(&self, q: &Query) -> StoreResult<RawPage> {
        self.call().await;
        self.inner.query_raw(q).await
    }
    async fn query_each(&self, q: &Query, each: &mut EachItem<'_>) -> StoreResult<Option<String>> {
        self.call().await;
        self.inner.query_each(q, each).await
    }
    fn max_transact_items(&self) -> usize {
        100
    }
    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        self.call().await;
        self.inner.transact(writes).await
    }
    /// One UpdateItem ADD.
    async fn add(&self, key: &Key, by: i64) -> StoreResult<i64> {
        self.call().await;
        self.inner.add(key, by).await
    }
    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Option<Item>>> {
        // One BatchGetItem per 100 keys.
        for _ in keys.chunks(100) {
            self.call().await;
        }
        self.inner.get_many(keys).await
    }
    async fn put_many(&self, items: Vec<Item>) -> StoreResult<()> {
        for _ in items.chunks(25) {
            self.call().await;
        }
        self.inner.put_many(items).await
    }
    async fn count(&self, q: &Query) -> StoreResult<usize> {
        self.call().await;
        self.inner.count(q).await
    }
}

const OMH: &str = "https://w3id.org/openmhealth";
const HR: &str = "omh:heart-rate:2.0";

fn settings() -> jhe::config::Settings {
    let mut s = jhe::config::Settings::from_env("http://127.0.0.1:1");
    s.origin_secret = None;
    s
}

async fn caller(repo: &Repo, email: &str) -> Caller {
    let u = repo.user_by_email(email).await.expect("read").expect("user");
    let roles = repo.user_roles(u.id).await.expect("roles").into_iter().collect();
    Caller { user: u, roles, client_id: "bench".into() }
}

#[tokio::main]
async fn main() {
    let patients: i64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(1000);
    let per_patient = 2;
    let delay_ms: u64 = std::env::var("JHE_BENCH_CALL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = jhe::local::open(dir.path(), settings()).expect("open");
    server.seed_if_empty().await.expect("seed");
    let repo = server.state.repo.clone();
    let blobs = server.state.blobs.clone();

    // A study of Lifespan Lab asking for heart rate from device 70001, with `patients` patients,
    // each consenting and holding `per_patient` observations.
    let codes = repo.list_codes().await.expect("codes");
    let hr = codes.iter().find(|c| c.coding_code == HR).expect("heart rate code").id;
    let sid = repo.next_id("study").await.expect("id");
    let study = jhe::model::Study {
        id: sid,
        name: "Bench study".into(),
        description: String::new(),
        organization_id: 20003,
        icon_url: None,
    };
    repo.create_study(&study).await.expect("study");
    let skey = jhe::repo::keys::study(sid);
    repo.set_link(&skey, "C#", hr, true).await.expect("scope");
    repo.set_link(&skey, "D#", 70001, true).await.expect("device");
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..patients {
        let p = repo
            .create_patient(jhe::repo::NewPatient {
                email: format!("bench-{i}@example.com"),
                name_family: Some(format!("Bench{i}")),
                name_given: Some("Pat".into()),
                birth_date: None,
                telecom_phone: None,
                identifiers: vec![],
                organization_id: 20003,
            })
            .await
            .expect("patient");
        ids.push(p.id);
    }
    for chunk in ids.chunks(40) {
        repo.enrol(sid, chunk).await.expect("enrol");
    }
    let now = time::OffsetDateTime::now_utc();
    for chunk in ids.chunks(100) {
        let consents: Vec<jhe::model::Consent> = chunk
            .iter()
            .map(|p| jhe::model::Consent {
                patient_id: *p,
                study_id: sid,
                code_id: hr,
                consented: true,
                consented_time: now,
            })
            .collect();
        repo.write_consents(&consents, &[]).await.expect("consents");
        let mut resources = Vec::new();
        for p in chunk {
            for k in 0..per_patient {
                let at = jhe::domain::views::ts(now - time::Duration::minutes(k + 1));
                let uuid = format!("00000000-0000-4000-a000-{:012}", p * 10 + k);
                let dp = jhe::omh::example(HR, &uuid, &at).expect("example");
                use base64::Engine;
                resources.push(serde_json::json!({
                    "resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": OMH, "code": HR}]},
                    "subject": {"reference": format!("Patient/{p}")},
                    "device": {"reference": "Device/70001"},
                    "valueAttachment": {"contentType": "application/json",
                        "data": base64::engine::general_purpose::STANDARD.encode(dp.to_string())},
                }));
            }
        }
        jhe::domain::ingest::seed_observations(&repo, &*blobs, resources, 10001).await.expect("observations");
    }
    println!("set up {patients} patients x {per_patient} observations in {:.1} s", started.elapsed().as_secs_f64());

    // The pull, as a manager of Lifespan Lab, through the counting store.
    let remote = Arc::new(Remote {
        inner: server.table.clone().expect("embedded"),
        calls: AtomicUsize::new(0),
        delay: Duration::from_millis(delay_ms),
    });
    let counted = Repo::new(remote.clone());
    let mary = caller(&repo, "manager_mary@example.com").await;
    let mut cursor: Option<String> = None;
    let (mut pages, mut seen) = (0, 0);
    let whole = Instant::now();
    println!("page  entries  store calls  time (with {delay_ms} ms a call)");
    loop {
        let mut params = vec![
            ("patient._has:Group:member:_id".to_string(), sid.to_string()),
            ("_count".to_string(), "1000".to_string()),
        ];
        if let Some(c) = &cursor {
            params.push(("_cursor".to_string(), c.clone()));
        }
        let q = jhe::fhir::search::parse_observation_query(&params).expect("query");
        let before = remote.calls.load(Ordering::SeqCst);
        let t = Instant::now();
        let mut page = jhe::domain::reads::observation_bundle(&counted, &mary, &q, "http://x/FHIR/R5", 4_000_000)
            .await
            .expect("page");
        // What the handler does next: the grants behind the page, for its audit record.
        let shown = page.shown();
        page.grants(&counted, &mary, &shown).await.expect("grants");
        let entries = page.len();
        pages += 1;
        seen += entries;
        println!(
            "{pages:>4}  {entries:>7}  {:>11}  {:>6.2} s",
            remote.calls.load(Ordering::SeqCst) - before,
            t.elapsed().as_secs_f64()
        );
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    println!(
        "{seen} observations in {pages} pages, {} store calls, {:.2} s",
        remote.calls.load(Ordering::SeqCst),
        whole.elapsed().as_secs_f64()
    );
    assert_eq!(seen as i64, patients * per_patient, "every observation reached");
}
