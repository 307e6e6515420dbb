//! Nothing lost: an upload is archived before it is indexed; indexing killed half way is
//! repaired by replaying the archive, which stores every observation exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jhe::adapters::embedded::EmbeddedTable;
use jhe::domain::Caller;
use jhe::ports::{Cond, Item, Key, Page, Query, StoreError, StoreResult, Table, Write};
use jhe::repo::Repo;
use serde_json::Value;

use crate::common::*;

/// A table whose atomic writes start failing after a budget, as if the process died there.
struct Dying {
    inner: EmbeddedTable,
    transacts_left: AtomicUsize,
}

#[async_trait]
impl Table for Dying {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, q: &Query) -> StoreResult<Page> {
        self.inner.query(q).await
    }
    async fn add(&self, key: &Key, by: i64) -> StoreResult<i64> {
        self.inner.add(key, by).await
    }
    /// DynamoDB's limit, so that an upload is indexed in several atomic writes.
    fn max_transact_items(&self) -> usize {
        100
    }
    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        if self.transacts_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(StoreError::Backend("killed".into()));
        }
        self.inner.transact(writes).await
    }
}

async fn caller(repo: &Repo, user: i64) -> Caller {
    let u = repo.user(user).await.expect("get").expect("user");
    let roles = repo.user_roles(user).await.expect("roles").into_iter().collect();
    Caller { user: u, roles, client_id: "test".into() }
}

async fn count(repo: &Repo, mark: &Caller) -> (usize, usize) {
    let params = vec![("patient".to_string(), "40005".to_string()), ("_count".to_string(), "1000".to_string())];
    let q = jhe::fhir::search::parse_observation_query(&params).expect("q");
    let (obs, total, next) = jhe::domain::reads::search_observations(repo, mark, &q).await.expect("search");
    assert!(next.is_none());
    let unique: std::collections::HashSet<i64> = obs.iter().map(|o| o.id).collect();
    assert_eq!(unique.len(), obs.len(), "no observation twice");
    (obs.len(), total)
}

#[tokio::test]
async fn indexing_killed_half_way_is_repaired_by_replaying_the_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = jhe::local::open(dir.path(), settings("http://127.0.0.1:1")).expect("open");
    server.seed_if_empty().await.expect("seed");
    let healthy = server.state.repo.clone();
    let blobs = server.state.blobs.clone();
    let mark = caller(&healthy, 10006).await;
    let (before, _) = count(&healthy, &mark).await;

    // Index at most 3 chunks (42 observations) of a 100-observation upload, then die.
    let inner = server.table.clone().expect("embedded store");
    let dying = Repo::new(Arc::new(Dying { inner, transacts_left: AtomicUsize::new(3) }));
    let resources: Vec<Option<Value>> = (0..100)
        .map(|i| {
            Some(observation(
                40005,
                "omh:blood-glucose:4.0",
                70002,
                &format!("2025-02-01T00:{:02}:{:02}Z", i / 60, i % 60),
            ))
        })
        .collect();
    let raw = batch(resources.iter().flatten().cloned().collect()).to_string();
    let result = jhe::domain::ingest::ingest(&dying, &*blobs, &mark, &raw, resources, false).await;
    assert!(result.is_err(), "the upload fails when indexing dies");
    let (partial, _) = count(&healthy, &mark).await;
    assert!(partial > before && partial < before + 100, "indexing stopped half way ({} of 100)", partial - before);
    assert_eq!(blobs.list("bundles/").await.expect("list").len(), 2, "the upload was archived (with the seed's)");

    let report = jhe::domain::ingest::reindex(&healthy, &*blobs).await.expect("reindex");
    assert_eq!(report.inserted, 100 - (partial - before));
    let (after, total) = count(&healthy, &mark).await;
    assert_eq!(after, before + 100, "every observation is there after the replay");
    assert_eq!(total, after, "the counts agree with the data");

    let again = jhe::domain::ingest::reindex(&healthy, &*blobs).await.expect("reindex");
    assert_eq!(again.inserted, 0, "a second replay stores nothing");
    assert_eq!(again.already_present, report.observations);
    assert_eq!(count(&healthy, &mark).await.0, before + 100);
}

#[tokio::test]
async fn the_file_blob_store_passes_the_contract_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    jhe::testkit::blob_contract(Arc::new(jhe::adapters::files::FileBlobs::new(dir.path()))).await;
}

/// An archived upload as ingest writes it: the raw body and its accepted entries with their ids.
fn envelope(resources: &[Value], first_id: i64) -> Vec<u8> {
    let body = batch(resources.to_vec()).to_string();
    let accepted: Vec<Value> = (0..resources.len())
        .map(|i| serde_json::json!({"entry": i, "id": first_id + i as i64, "lastUpdated": 1_735_689_600_000_i64}))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"version": 1, "userId": 10006, "single": false, "accepted": accepted, "body": body}),
    )
    .expect("json")
}

/// A table that refuses (as a store refuses a key it cannot hold) every write naming "poison".
struct Picky {
    inner: EmbeddedTable,
}

#[async_trait]
impl Table for Picky {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, q: &Query) -> StoreResult<Page> {
        self.inner.query(q).await
    }
    async fn add(&self, key: &Key, by: i64) -> StoreResult<i64> {
        self.inner.add(key, by).await
    }
    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        let poisoned = writes.iter().any(|w| match w {
            Write::Put { item, .. } => item.pk.contains("poison") || item.data.to_string().contains("poison"),
            _ => false,
        });
        if poisoned {
            return Err(StoreError::Invalid("bad key part".into()));
        }
        self.inner.transact(writes).await
    }
}

/// A poisoned archive (an upload that is not JSON, an entry a newer check refuses, an entry the
/// store refuses) never stops a replay: the good entries beside them are indexed, the bad ones
/// set aside under quarantine/ with their reasons, and a second replay agrees.
#[tokio::test]
async fn a_replay_sets_poisoned_entries_aside_and_indexes_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = jhe::local::open(dir.path(), settings("http://127.0.0.1:1")).expect("open");
    server.seed_if_empty().await.expect("seed");
    let blobs = server.state.blobs.clone();
    let repo = Repo::new(Arc::new(Picky { inner: server.table.clone().expect("embedded store") }));
    let mark = caller(&repo, 10006).await;
    let (before, _) = count(&repo, &mark).await;
    let good = |t: &str| observation(40005, "omh:blood-glucose:4.0", 70002, t);
    let mut nul = good("2026-01-01T00:00:02Z");
    nul["identifier"] = serde_json::json!([{"system": "https://example.org/x", "value": "a\u{0}b"}]);
    let mut refused_by_store = good("2026-01-01T00:00:03Z");
    refused_by_store["identifier"] = serde_json::json!([{"system": "https://example.org/x", "value": "poison"}]);
    let uploads = [good("2026-01-01T00:00:01Z"), nul, refused_by_store, good("2026-01-01T00:00:04Z")];
    blobs.put_new("bundles/2026/01/01/1767225600000-69001-aaaaaa.json", envelope(&uploads, 69001)).await.expect("put");
    blobs.put_new("bundles/2026/01/01/1767225600001-69101-bbbbbb.json", b"{not json".to_vec()).await.expect("put");

    let report = jhe::domain::ingest::reindex(&repo, &*blobs).await.expect("a replay never fails on a bad entry");
    assert_eq!(report.inserted, 2, "{report:?}");
    assert_eq!(report.quarantined, 3, "{report:?}");
    assert_eq!(count(&repo, &mark).await.0, before + 2, "the good entries are indexed");
    let reasons = report.reasons.join("\n");
    assert!(reasons.contains("#1: An identifier's value must not contain control characters"), "{reasons}");
    assert!(reasons.contains("#2 (Observation/69003)"), "{reasons}");
    assert!(reasons.contains("69101-bbbbbb.json: the archived upload is not JSON"), "{reasons}");
    let set_aside = blobs.list("quarantine/").await.expect("list");
    assert_eq!(set_aside.len(), 3, "{set_aside:?}");
    let one: Value =
        serde_json::from_slice(&blobs.get(&set_aside[0]).await.expect("get").expect("there")).expect("json");
    assert!(one["reason"].is_string() && one["archive"].is_string(), "{one}");

    let again = jhe::domain::ingest::reindex(&repo, &*blobs).await.expect("reindex");
    assert_eq!((again.inserted, again.quarantined), (0, 3), "{again:?}");
    assert_eq!(blobs.list("quarantine/").await.expect("list").len(), 3, "set aside once");
}
