//! The `Table` contract suite on the embedded engine, and persistence across a restart.

use std::sync::Arc;

use jhe::adapters::embedded::EmbeddedTable;
use jhe::ports::{Cond, Item, Key, Table};
use serde_json::json;

#[tokio::test]
async fn embedded_table_passes_the_contract_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = EmbeddedTable::open(&dir.path().join("t.redb")).expect("open");
    jhe::testkit::table_contract(Arc::new(t)).await;
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
