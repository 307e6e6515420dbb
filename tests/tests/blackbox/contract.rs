//! The `Table` contract suite on the embedded engine, and persistence across a restart.

use std::sync::Arc;

use jhe::adapters::embedded::EmbeddedTable;
use jhe::ports::{Cond, Item, Key, Table};
use serde_json::json;

#[tokio::test]
async fn embedded_table_passes_the_contract_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Arc::new(EmbeddedTable::open(&dir.path().join("t.redb")).expect("open"));
    jhe::testkit::table_contract(t.clone()).await;
    jhe::testkit::concurrent_transactions_stay_apart(t).await;
}

#[tokio::test]
async fn embedded_table_keeps_items_and_indexes_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    {
        let t = EmbeddedTable::open(&path).expect("open");
        t.put(Item::new("P#1", "A", json!({"x": 1})).with_gsi1("IDX", "k"), Cond::Absent).await.expect("put");
    }
    let t = EmbeddedTable::open(&path).expect("reopen");
    let got = t.get(&Key::new("P#1", "A")).await.expect("get").expect("item survives restart");
    assert_eq!(got.data["x"], 1);
    let page = t.query(&jhe::ports::Query::partition("IDX").on(jhe::ports::Index::Gsi1)).await.expect("query");
    assert_eq!(page.items.len(), 1, "the index survives a restart too");
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    let _first = EmbeddedTable::open(&path).expect("open");
    assert!(EmbeddedTable::open(&path).is_err(), "the store file is locked by its owner");
}

#[tokio::test]
async fn deferred_writes_are_visible_at_once_and_durable_after_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    {
        let t = EmbeddedTable::open(&path).expect("open");
        let bulk = t.deferred().expect("the embedded engine has a deferred mode");
        for i in 0..20 {
            bulk.put(Item::new("B#1", format!("{i:02}"), json!({"i": i})), Cond::Absent).await.expect("put");
        }
        assert!(bulk.put(Item::new("B#1", "00", json!({})), Cond::Absent).await.is_err(), "conditions hold as usual");
        assert_eq!(t.count(&jhe::ports::Query::partition("B#1")).await.expect("count"), 20, "visible at once");
        // What is durable is what a copy of the file holds while the store is still open (closing
        // it cleanly would make everything durable, flushed or not).
        let on_disk = |name: &str| {
            let copy = dir.path().join(name);
            std::fs::copy(&path, &copy).expect("copy");
            copy
        };
        let before = EmbeddedTable::open(&on_disk("before.redb")).expect("open the copy");
        assert_eq!(before.count(&jhe::ports::Query::partition("B#1")).await.expect("count"), 0, "not durable yet");
        bulk.flush().await.expect("flush");
        let after = EmbeddedTable::open(&on_disk("after.redb")).expect("open the copy");
        assert_eq!(after.count(&jhe::ports::Query::partition("B#1")).await.expect("count"), 20, "durable after flush");
    }
    let t = EmbeddedTable::open(&path).expect("reopen");
    assert_eq!(t.count(&jhe::ports::Query::partition("B#1")).await.expect("count"), 20, "and after a restart");
}

/// The signing key's id, once the issuer has its key (a first start makes it in the background).
async fn kid(s: &jhe::local::LocalServer) -> String {
    s.state.issuer.jwks().await["keys"][0]["kid"].as_str().expect("kid").to_string()
}

/// The start `jhe serve` makes: the first one seeds and makes a signing key (in the background:
/// the server answers before it is ready, and token requests wait for it); later ones find both
/// and keep them.
#[tokio::test]
async fn the_first_start_seeds_and_writes_the_key_and_later_starts_keep_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = || crate::common::settings("http://127.0.0.1:8000");
    let (first, seeded) = jhe::local::open_and_seed(dir.path(), settings(), true).await.expect("first start");
    assert!(seeded, "a fresh folder is seeded");
    let org = first.state.repo.org(jhe::model::ROOT_ORG_ID).await.expect("read");
    assert!(org.is_some(), "the demo data is there");
    let key = kid(&first).await;
    assert!(dir.path().join(jhe::local::KEY_FILE).exists(), "and gets its signing key, written before it is used");
    drop(first);
    let (again, seeded) = jhe::local::open_and_seed(dir.path(), settings(), true).await.expect("restart");
    assert!(!seeded, "an existing store is not seeded again");
    assert_eq!(kid(&again).await, key, "the same signing key");
    drop(again);
    // Without the seed, on a fresh folder: a key, no data.
    let bare = tempfile::tempdir().expect("tempdir");
    let (s, seeded) = jhe::local::open_and_seed(bare.path(), settings(), false).await.expect("no seed");
    assert!(!seeded);
    assert!(!kid(&s).await.is_empty() && bare.path().join(jhe::local::KEY_FILE).exists());
    assert!(s.state.repo.org(jhe::model::ROOT_ORG_ID).await.expect("read").is_none());
}
