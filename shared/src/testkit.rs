//! Contract test suites for the ports, run against every adapter (feature `testkit`).
//!
//! Each check works in its own key namespace, so one physical table can serve many runs.
//! A check panics with a message saying which rule the adapter broke.

use std::sync::Arc;

use serde_json::json;

use crate::ports::{Cond, Index, Item, Key, Query, SkRange, StoreError, Table, Write};

fn ns() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).expect("rng");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs every `Table` check against the adapter.
pub async fn table_contract(t: Arc<dyn Table>) {
    get_missing_is_none(&*t).await;
    put_then_get_round_trips(&*t).await;
    conditions_are_enforced(&*t).await;
    delete_respects_conditions(&*t).await;
    query_orders_and_pages_without_gaps(&*t).await;
    query_ranges_stay_inside_partition(&*t).await;
    secondary_indexes_follow_writes(&*t).await;
    transact_is_all_or_nothing(&*t).await;
    transact_rejects_bad_shapes(&*t).await;
    put_many_stores_everything(&*t).await;
    bad_cursor_is_refused(&*t).await;
    count_matches_query(&*t).await;
    query_raw_matches_query(&*t).await;
    counters_add_atomically(t.clone()).await;
}

/// A counter starts at 0, `add` gives the new value (`add(0)` reads it), and concurrent adds each
/// get a value of their own: no two callers are handed the same id.
pub async fn counters_add_atomically(t: Arc<dyn Table>) {
    let key = Key::new(format!("{}#COUNTER", ns()), "ids#n");
    assert_eq!(t.add(&key, 0).await.expect("read"), 0, "a new counter is 0");
    assert_eq!(t.add(&key, 5).await.expect("add"), 5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (t, key) = (t.clone(), key.clone());
        tasks.spawn(async move { t.add(&key, 1).await });
    }
    let mut got = Vec::new();
    while let Some(r) = tasks.join_next().await {
        got.push(r.expect("task").expect("add"));
    }
    got.sort();
    assert_eq!(got, (6..=21).collect::<Vec<i64>>(), "each add its own value");
    assert_eq!(t.add(&key, 0).await.expect("read"), 21);
}

/// `query_raw` gives the same items, pages and cursors as `query`, as JSON; `query_each` hands
/// over the same, item by item.
pub async fn query_raw_matches_query(t: &dyn Table) {
    let n = ns();
    let items: Vec<Item> = (0..7)
        .map(|i| {
            Item::new(format!("{n}#R"), format!("x{i:03}"), json!({"i": i, "s": "q\"u"}))
                .with_gsi1(format!("{n}#RG"), format!("{i}"))
                .with_gsi2(format!("{n}#RH"), format!("t{:03}", 10 - i))
        })
        .collect();
    t.put_many(items).await.expect("put_many");
    let between = |lo: &str, hi: &str| SkRange::Between(lo.into(), hi.into());
    for mut q in [
        Query::partition(format!("{n}#R")).limit(3),
        Query::partition(format!("{n}#R")).limit(3).reverse(),
        Query::partition(format!("{n}#RG")).on(Index::Gsi1).limit(4),
        // As observation pages read: the second index, a sort-key window, both directions.
        Query { range: between("t005", "t009"), ..Query::partition(format!("{n}#RH")).on(Index::Gsi2).limit(2) },
        Query { range: between("t005", "t009"), ..Query::partition(format!("{n}#RH")).on(Index::Gsi2).limit(2) }
            .reverse(),
    ] {
        let mut seen = 0;
        loop {
            let page = t.query(&q).await.expect("query");
            let raw = t.query_raw(&q).await.expect("query_raw");
            seen += raw.items.len();
            let parsed: Vec<Item> =
                (0..raw.items.len()).map(|i| serde_json::from_slice(raw.doc(i)).expect("an Item as JSON")).collect();
            assert_eq!(parsed, page.items, "query_raw holds the items query returns");
            let sks: Vec<String> = page
                .items
                .iter()
                .map(|i| match q.index {
                    Index::Primary => i.sk.clone(),
                    Index::Gsi1 => i.gsi1.clone().expect("gsi1").sk,
                    Index::Gsi2 => i.gsi2.clone().expect("gsi2").sk,
                })
                .collect();
            let raw_sks: Vec<String> =
                (0..raw.items.len()).map(|i| String::from_utf8(raw.sk(i).to_vec()).expect("utf-8")).collect();
            assert_eq!(raw_sks, sks, "with each item's sort key in the index queried");
            assert_eq!(raw.next, page.next, "and the same cursor");
            let mut each: Vec<(String, Vec<u8>)> = Vec::new();
            let next = t
                .query_each(&q, &mut |sk, doc| {
                    each.push((String::from_utf8(sk.to_vec()).expect("utf-8"), doc.to_vec()));
                    Ok(())
                })
                .await
                .expect("query_each");
            let raw_pairs: Vec<(String, Vec<u8>)> =
                (0..raw.items.len()).map(|i| (raw_sks[i].clone(), raw.doc(i).to_vec())).collect();
            assert_eq!(each, raw_pairs, "query_each hands over what query_raw holds, in order");
            assert_eq!(next, page.next, "and gives the same cursor");
            if !page.items.is_empty() {
                let mut calls = 0;
                let stopped = t
                    .query_each(&q, &mut |_, _| {
                        calls += 1;
                        Err(StoreError::Invalid("the reader stops".into()))
                    })
                    .await;
                assert_eq!(stopped, Err(StoreError::Invalid("the reader stops".into())), "the reader's error ends it");
                assert_eq!(calls, 1, "at the item that failed");
            }
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let want = if q.index == Index::Gsi2 { 5 } else { 7 };
        assert_eq!(seen, want, "every item of the query, once");
    }
}

pub async fn count_matches_query(t: &dyn Table) {
    let n = ns();
    let items: Vec<Item> = (0..37).map(|i| Item::new(format!("{n}#N"), format!("x{i:03}"), json!({}))).collect();
    t.put_many(items).await.expect("put_many");
    t.put(Item::new(format!("{n}#N"), "y", json!({})), Cond::None).await.expect("put");
    assert_eq!(t.count(&Query::prefix(format!("{n}#N"), "x")).await.expect("count"), 37);
    let q = Query { range: SkRange::Between("x010".into(), "x019".into()), ..Query::partition(format!("{n}#N")) };
    assert_eq!(t.count(&q).await.expect("count"), 10, "count honours the range");
    assert_eq!(t.count(&Query::partition(format!("{n}#none"))).await.expect("count"), 0);
}

/// Runs every `BlobStore` check against the adapter.
pub async fn blob_contract(b: Arc<dyn crate::ports::BlobStore>) {
    use crate::ports::BlobError;
    let n = ns();
    let k1 = format!("t/{n}/2026/01/a.json");
    let k2 = format!("t/{n}/2026/02/b.json");
    assert_eq!(b.get(&k1).await.expect("get"), None, "missing blob reads as None");
    b.put_new(&k2, b"second".to_vec()).await.expect("put");
    b.put_new(&k1, b"first".to_vec()).await.expect("put");
    assert_eq!(b.get(&k1).await.expect("get").as_deref(), Some(&b"first"[..]));
    assert!(matches!(b.put_new(&k1, b"other".to_vec()).await, Err(BlobError::Exists(_))), "blobs are write-once");
    assert_eq!(b.get(&k1).await.expect("get").as_deref(), Some(&b"first"[..]), "a refused overwrite changes nothing");
    assert_eq!(b.list(&format!("t/{n}/")).await.expect("list"), vec![k1.clone(), k2.clone()], "listed in key order");
    assert_eq!(b.list(&format!("t/{n}/2026/02")).await.expect("list"), vec![k2]);
    for bad in ["", "../x", "a//b", "a/./b", "sp ace"] {
        assert!(matches!(b.put_new(bad, vec![]).await, Err(BlobError::BadKey(_))), "key {bad:?} refused");
    }
}

pub async fn get_missing_is_none(t: &dyn Table) {
    let n = ns();
    assert_eq!(t.get(&Key::new(format!("{n}#X"), "A")).await.expect("get"), None, "missing item must read as None");
}

pub async fn put_then_get_round_trips(t: &dyn Table) {
    let n = ns();
    let mut item =
        Item::new(format!("{n}#U"), "A", json!({"name": "Zoë", "n": 1.5, "list": [1, 2], "nested": {"a": null}}))
            .with_gsi1(format!("{n}#G"), "k1")
            .with_gsi2(format!("{n}#H"), "k2");
    item.version = 7;
    t.put(item.clone(), Cond::None).await.expect("put");
    let got = t.get(&item.key()).await.expect("get").expect("item present after put");
    assert_eq!(got, item, "an item must read back exactly as written");
    // An expiry (the store's own clean-up time) is kept with the item.
    let expiring = Item::new(format!("{n}#U"), "E", json!({"code": 1})).expiring_at(1_900_000_000);
    t.put(expiring.clone(), Cond::Absent).await.expect("put expiring");
    assert_eq!(t.get(&expiring.key()).await.expect("get"), Some(expiring), "the expiry reads back");
    // Overwrite replaces the whole item.
    let item2 = Item::new(format!("{n}#U"), "A", json!({"other": true}));
    t.put(item2.clone(), Cond::None).await.expect("overwrite");
    assert_eq!(t.get(&item.key()).await.expect("get"), Some(item2), "put must replace the whole item");
}

pub async fn conditions_are_enforced(t: &dyn Table) {
    let n = ns();
    let item = Item::new(format!("{n}#C"), "A", json!({"v": 1}));
    t.put(item.clone(), Cond::Absent).await.expect("first Absent put succeeds");
    assert_eq!(
        t.put(item.clone(), Cond::Absent).await,
        Err(StoreError::ConditionFailed { index: 0 }),
        "second Absent put must fail"
    );
    let missing = Item::new(format!("{n}#C"), "B", json!({}));
    assert!(
        matches!(t.put(missing.clone(), Cond::Exists).await, Err(StoreError::ConditionFailed { .. })),
        "Exists on a missing item must fail"
    );
    assert!(
        matches!(t.put(missing, Cond::Version(1)).await, Err(StoreError::ConditionFailed { .. })),
        "Version on a missing item must fail"
    );
    let mut v2 = item.clone();
    v2.version = 2;
    assert!(
        matches!(t.put(v2.clone(), Cond::Version(5)).await, Err(StoreError::ConditionFailed { .. })),
        "wrong version must fail"
    );
    t.put(v2.clone(), Cond::Version(1)).await.expect("matching version succeeds");
    assert_eq!(t.get(&item.key()).await.expect("get").map(|i| i.version), Some(2));
    t.put(v2, Cond::Exists).await.expect("Exists on present item succeeds");
}

pub async fn delete_respects_conditions(t: &dyn Table) {
    let n = ns();
    let item = Item::new(format!("{n}#D"), "A", json!({}));
    t.delete(&item.key(), Cond::None).await.expect("deleting a missing item without condition is fine");
    assert!(matches!(t.delete(&item.key(), Cond::Exists).await, Err(StoreError::ConditionFailed { .. })));
    t.put(item.clone(), Cond::None).await.expect("put");
    assert!(matches!(t.delete(&item.key(), Cond::Version(9)).await, Err(StoreError::ConditionFailed { .. })));
    assert!(t.get(&item.key()).await.expect("get").is_some(), "failed delete must keep the item");
    t.delete(&item.key(), Cond::Version(1)).await.expect("delete");
    assert_eq!(t.get(&item.key()).await.expect("get"), None);
}

pub async fn query_orders_and_pages_without_gaps(t: &dyn Table) {
    let n = ns();
    let pk = format!("{n}#Q");
    let items: Vec<Item> = (0..25).map(|i| Item::new(pk.clone(), format!("S#{i:03}"), json!({"i": i}))).collect();
    // Insert in a scrambled order.
    for i in [7, 3, 24, 0, 12, 18, 1, 2, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23] {
        t.put(items[i].clone(), Cond::None).await.expect("put");
    }
    t.put(Item::new(pk.clone(), "T#other", json!({})), Cond::None).await.expect("put other prefix");
    for forward in [true, false] {
        let mut q = Query::prefix(pk.clone(), "S#").limit(10);
        q.forward = forward;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = t.query(&q).await.expect("query");
            assert!(page.items.len() <= 10, "a page must respect the limit");
            pages += 1;
            seen.extend(page.items.iter().map(|i| i.sk.clone()));
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..25).map(|i| format!("S#{i:03}")).collect();
        if !forward {
            expected.reverse();
        }
        assert_eq!(seen, expected, "paging (forward={forward}) must return every item once, in sort-key order");
        assert_eq!(pages, 3);
    }
    // `next` is None exactly when nothing is left, also at an exact multiple of the limit.
    let page = t.query(&Query::prefix(pk.clone(), "S#").limit(25)).await.expect("query");
    assert_eq!(page.items.len(), 25);
    assert_eq!(page.next, None, "no cursor when the page holds the last item");
    let page = t.query(&Query::partition(pk.clone())).await.expect("query");
    assert_eq!(page.items.len(), 26, "partition query sees every sort key");
}

pub async fn query_ranges_stay_inside_partition(t: &dyn Table) {
    let n = ns();
    let a = format!("{n}#P");
    let ab = format!("{n}#PB");
    for sk in ["a", "b", "c", "d"] {
        t.put(Item::new(a.clone(), sk, json!({})), Cond::None).await.expect("put");
        t.put(Item::new(ab.clone(), sk, json!({})), Cond::None).await.expect("put");
    }
    let page = t.query(&Query::partition(a.clone())).await.expect("query");
    assert_eq!(page.items.len(), 4, "a partition must not include a partition whose key extends it");
    let q = Query { range: SkRange::Between("b".into(), "c".into()), ..Query::partition(a.clone()) };
    let page = t.query(&q).await.expect("query");
    let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["b", "c"], "Between is inclusive at both ends");
    let page = t.query(&q.clone().reverse()).await.expect("query");
    let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["c", "b"]);
    let page = t.query(&Query::partition(format!("{n}#none"))).await.expect("query");
    assert!(page.items.is_empty() && page.next.is_none(), "an empty partition gives an empty last page");
}

pub async fn secondary_indexes_follow_writes(t: &dyn Table) {
    let n = ns();
    let g = format!("{n}#G");
    for i in 0..5 {
        t.put(
            Item::new(format!("{n}#E{i}"), "A", json!({"i": i})).with_gsi1(g.clone(), format!("name{}", 4 - i)),
            Cond::None,
        )
        .await
        .expect("put");
    }
    let q = Query::partition(g.clone()).on(Index::Gsi1);
    let page = t.query(&q).await.expect("gsi query");
    let ids: Vec<i64> = page.items.iter().map(|i| i.data["i"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(ids, [4, 3, 2, 1, 0], "index query is ordered by the index sort key");
    // Paging over an index.
    let mut q2 = q.clone().limit(2);
    let mut n_seen = 0;
    loop {
        let p = t.query(&q2).await.expect("gsi page");
        n_seen += p.items.len();
        match p.next {
            Some(c) => q2.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(n_seen, 5, "paging over an index sees each item once");
    // Moving an item in the index, and removing it from the index.
    t.put(Item::new(format!("{n}#E0"), "A", json!({"i": 0})).with_gsi1(g.clone(), "aaa"), Cond::None)
        .await
        .expect("put");
    t.put(Item::new(format!("{n}#E1"), "A", json!({"i": 1})), Cond::None).await.expect("put");
    t.delete(&Key::new(format!("{n}#E2"), "A"), Cond::None).await.expect("delete");
    let page = t.query(&q).await.expect("gsi query");
    let ids: Vec<i64> = page.items.iter().map(|i| i.data["i"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(ids, [0, 4, 3], "the index must follow updates and deletes");
    let q3 = Query { range: SkRange::Prefix("name".into()), ..q.clone() };
    assert_eq!(t.query(&q3).await.expect("q").items.len(), 2);
    let q4 = Query { range: SkRange::Between("name0".into(), "name1".into()), ..q };
    let ids: Vec<i64> =
        t.query(&q4).await.expect("q").items.iter().map(|i| i.data["i"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(ids, [4, 3], "Between on an index is inclusive");
    // GSI2 works the same way.
    t.put(Item::new(format!("{n}#F"), "A", json!({})).with_gsi2(format!("{n}#G2"), "x"), Cond::None)
        .await
        .expect("put");
    let p = t.query(&Query::partition(format!("{n}#G2")).on(Index::Gsi2)).await.expect("gsi2");
    assert_eq!(p.items.len(), 1);
}

pub async fn transact_is_all_or_nothing(t: &dyn Table) {
    let n = ns();
    let existing = Item::new(format!("{n}#T"), "exists", json!({"v": 1}));
    t.put(existing.clone(), Cond::None).await.expect("put");
    let writes = vec![
        Write::Put { item: Item::new(format!("{n}#T"), "new1", json!({})), cond: Cond::Absent },
        Write::Delete { key: existing.key(), cond: Cond::None },
        Write::Put { item: Item::new(format!("{n}#T"), "new2", json!({})), cond: Cond::Exists },
    ];
    assert_eq!(t.transact(writes).await, Err(StoreError::ConditionFailed { index: 2 }), "the failing write is named");
    assert_eq!(
        t.get(&Key::new(format!("{n}#T"), "new1")).await.expect("get"),
        None,
        "no write of a failed transaction lands"
    );
    assert!(t.get(&existing.key()).await.expect("get").is_some(), "a failed transaction deletes nothing");
    let writes = vec![
        Write::Put { item: Item::new(format!("{n}#T"), "new1", json!({})), cond: Cond::Absent },
        Write::Delete { key: existing.key(), cond: Cond::Version(1) },
        Write::Check { key: Key::new(format!("{n}#T"), "ghost"), cond: Cond::Absent },
    ];
    t.transact(writes).await.expect("transaction");
    assert!(t.get(&Key::new(format!("{n}#T"), "new1")).await.expect("get").is_some());
    assert_eq!(t.get(&existing.key()).await.expect("get"), None);
    let check_fails = vec![
        Write::Put { item: Item::new(format!("{n}#T"), "new3", json!({})), cond: Cond::None },
        Write::Check { key: Key::new(format!("{n}#T"), "new1"), cond: Cond::Absent },
    ];
    assert_eq!(t.transact(check_fails).await, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(t.get(&Key::new(format!("{n}#T"), "new3")).await.expect("get"), None);
}

/// Transactions running at once (which an engine may commit together) each land whole or not at
/// all: one whose condition fails leaves no trace, even of the index moves it made before failing,
/// and does not take the others down with it.
///
/// Not part of `table_contract`: DynamoDB isolates transactions, but moto (the AWS-API server the
/// DynamoDB adapter is tested on) does not: it copies the whole table as a transaction starts
/// (a 500 when another request writes meanwhile) and puts that copy back when the transaction
/// fails, undoing the writes of every transaction that ran in between. So this runs on the
/// embedded engine only.
pub async fn concurrent_transactions_stay_apart(t: Arc<dyn Table>) {
    let n = ns();
    let g = format!("{n}#G");
    let shared =
        |i: usize| Item::new(format!("{n}#S{i}"), "A", json!({"i": i})).with_gsi1(g.clone(), format!("old{i:02}"));
    for i in 0..12 {
        t.put(shared(i), Cond::None).await.expect("put");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24usize {
        let t = t.clone();
        let (n, g) = (n.clone(), g.clone());
        tasks.spawn(async move {
            let fails = i % 2 == 1;
            let mut writes = vec![
                Write::Put {
                    item: Item::new(format!("{n}#N{i}"), "A", json!({"i": i}))
                        .with_gsi2(format!("{n}#G2"), format!("{i:02}")),
                    cond: Cond::Absent,
                },
                Write::Put {
                    item: Item::new(format!("{n}#S{}", i / 2), "A", json!({"moved": i}))
                        .with_gsi1(g, format!("new{i:02}")),
                    cond: Cond::None,
                },
            ];
            if fails {
                writes.push(Write::Check { key: Key::new(format!("{n}#S{}", i / 2), "missing"), cond: Cond::Exists });
            }
            (i, fails, t.transact(writes).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, fails, r) = done.expect("task");
        if fails {
            assert_eq!(r, Err(StoreError::ConditionFailed { index: 2 }), "transaction {i} fails on its own check");
        } else {
            r.unwrap_or_else(|e| panic!("transaction {i} should land: {e}"));
        }
    }
    for i in 0..24usize {
        let got = t.get(&Key::new(format!("{n}#N{i}"), "A")).await.expect("get");
        assert_eq!(got.is_some(), i % 2 == 0, "item of transaction {i} is there only if it succeeded");
    }
    // Every shared item was rewritten by exactly one successful transaction (2k) and one failed
    // one (2k + 1): it and its index entry must be the successful one's.
    let page = t.query(&Query::partition(g.clone()).on(Index::Gsi1)).await.expect("gsi1");
    let moved: Vec<(String, i64)> = page
        .items
        .iter()
        .map(|i| (i.gsi1.as_ref().map(|k| k.sk.clone()).unwrap_or_default(), i.data["moved"].as_i64().unwrap_or(-1)))
        .collect();
    let want: Vec<(String, i64)> = (0..12).map(|k| (format!("new{:02}", 2 * k), 2 * k as i64)).collect();
    assert_eq!(moved, want, "the index holds each shared item once, where the successful write put it");
    let p2 = t.query(&Query::partition(format!("{n}#G2")).on(Index::Gsi2)).await.expect("gsi2");
    let in_index: Vec<String> = p2.items.iter().map(|i| i.pk.clone()).collect();
    let want: Vec<String> = (0..24).step_by(2).map(|i| format!("{n}#N{i}")).collect();
    assert_eq!(in_index, want, "a failed transaction leaves no index entry");
}

pub async fn transact_rejects_bad_shapes(t: &dyn Table) {
    let n = ns();
    let max = t.max_transact_items();
    let too_many: Vec<Write> = (0..max + 1)
        .map(|i| Write::Put { item: Item::new(format!("{n}#B"), format!("{i}"), json!({})), cond: Cond::None })
        .collect();
    assert!(matches!(t.transact(too_many).await, Err(StoreError::Invalid(_))), "more than the limit is refused");
    assert!(max >= 100, "an engine takes at least DynamoDB's 100 writes at once");
    assert_eq!(t.query(&Query::partition(format!("{n}#B"))).await.expect("q").items.len(), 0);
    let dup = vec![
        Write::Put { item: Item::new(format!("{n}#B"), "x", json!({})), cond: Cond::None },
        Write::Delete { key: Key::new(format!("{n}#B"), "x"), cond: Cond::None },
    ];
    assert!(matches!(t.transact(dup).await, Err(StoreError::Invalid(_))), "two writes to one key is refused");
    let exactly_max: Vec<Write> = (0..max)
        .map(|i| Write::Put { item: Item::new(format!("{n}#B"), format!("{i:05}"), json!({})), cond: Cond::Absent })
        .collect();
    t.transact(exactly_max).await.expect("the limit is allowed");
    assert_eq!(t.count(&Query::partition(format!("{n}#B"))).await.expect("count"), max);
    let keys: Vec<Key> = (0..3)
        .map(|i| Key::new(format!("{n}#B"), format!("{i:05}")))
        .chain([Key::new(format!("{n}#B"), "none")])
        .collect();
    let got = t.get_many(&keys).await.expect("get_many");
    assert_eq!(
        got.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, true, true, false],
        "get_many reads each key"
    );
}

pub async fn put_many_stores_everything(t: &dyn Table) {
    let n = ns();
    let items: Vec<Item> = (0..60).map(|i| Item::new(format!("{n}#M"), format!("{i:03}"), json!({"i": i}))).collect();
    t.put_many(items).await.expect("put_many");
    assert_eq!(t.query(&Query::partition(format!("{n}#M"))).await.expect("q").items.len(), 60);
}

pub async fn bad_cursor_is_refused(t: &dyn Table) {
    let n = ns();
    let q = Query::partition(format!("{n}#K")).after(Some("%%%not-a-cursor".into()));
    assert!(
        matches!(t.query(&q).await, Err(StoreError::Invalid(_))),
        "a malformed cursor is an Invalid error, not a scan"
    );
}
