//! The embedded `Table` engine: one ACID `redb` file holding the primary table and both
//! secondary indexes, all maintained in the same transaction (so, unlike DynamoDB, the indexes
//! here are strongly consistent; the repository must not rely on that).
//!
//! Keys are stored as bytes `pk 0x00 sk` (and `gpk 0x00 gsk 0x00 pk 0x00 sk` in an index), which
//! sort exactly as DynamoDB sorts string keys (byte order), partition by partition.
//!
//! Writes go through one writer thread that commits in groups: the writes waiting when it starts a
//! transaction (each caller's batch, up to `GROUP_MAX_JOBS` of them) are applied one batch after
//! the other in the same redb transaction and made durable by one commit (one fsync). Each batch
//! stays atomic on its own: a batch whose condition fails is undone (every value it replaced is
//! put back) and fails alone; the others commit. A caller is answered only after the commit.

mod writer;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::ports::{
    Cond, EachItem, Index, Item, Key, Page, Query, RawPage, RawPageBuilder, SkRange, StoreError, StoreResult, Table,
    Write, check_item_keys, check_key_part, check_transact_limit,
};
use writer::*;

/// One redb transaction can hold far more than DynamoDB's 100 writes; larger atomic writes mean
/// fewer fsyncs (a whole upload indexed in one commit).
pub const EMBEDDED_MAX_TRANSACT: usize = 2000;

const MAIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("main");
const GSI1: TableDefinition<&[u8], &[u8]> = TableDefinition::new("gsi1");
const GSI2: TableDefinition<&[u8], &[u8]> = TableDefinition::new("gsi2");

/// The embedded engine. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedTable {
    db: Arc<Database>,
    writer: Arc<Writer>,
    /// Commits of this handle are not made durable one by one, but together by `flush` (see
    /// `Table::deferred`).
    deferred: bool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn main_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pk.len() + sk.len() + 1);
    k.extend_from_slice(pk.as_bytes());
    k.push(0);
    k.extend_from_slice(sk.as_bytes());
    k
}

fn index_key(g: &Key, mk: &[u8]) -> Vec<u8> {
    let mut k = main_key(&g.pk, &g.sk);
    k.push(0);
    k.extend_from_slice(mk);
    k
}

fn index_table(i: Index) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match i {
        Index::Primary => MAIN,
        Index::Gsi1 => GSI1,
        Index::Gsi2 => GSI2,
    }
}

fn decode(bytes: &[u8]) -> StoreResult<Item> {
    serde_json::from_slice(bytes).map_err(backend)
}

fn cond_holds(current: Option<&Head>, cond: Cond) -> bool {
    match cond {
        Cond::None => true,
        Cond::Absent => current.is_none(),
        Cond::Exists => current.is_some(),
        Cond::Version(v) => current.is_some_and(|c| c.version == v),
    }
}

/// The largest `limit` of one query.
const MAX_QUERY_LIMIT: usize = 10_000;

/// redb's page cache, in MiB, unless `JHE_STORE_CACHE_MB` says otherwise. redb's own default
/// (1 GiB) let resident memory grow with the store (1.4 GB with 10 patient-years stored).
pub const DEFAULT_CACHE_MB: usize = 64;

/// The cache size from `JHE_STORE_CACHE_MB` (MiB), or `DEFAULT_CACHE_MB`.
pub fn cache_bytes_from_env() -> usize {
    std::env::var("JHE_STORE_CACHE_MB").ok().and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(DEFAULT_CACHE_MB)
        * 1024
        * 1024
}

impl EmbeddedTable {
    /// Opens (or creates) the store file, with the cache size of `cache_bytes_from_env`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_cache(path, cache_bytes_from_env())
    }

    /// Opens (or creates) the store file with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> StoreResult<Self> {
        let db = Database::builder().set_cache_size(cache_bytes).create(path).map_err(backend)?;
        let tx = db.begin_write().map_err(backend)?;
        {
            tx.open_table(MAIN).map_err(backend)?;
            tx.open_table(GSI1).map_err(backend)?;
            tx.open_table(GSI2).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        let db = Arc::new(db);
        let writer = Arc::new(Writer::start(db.clone())?);
        Ok(Self { db, writer, deferred: false })
    }

    /// Encodes the writes (here, before they queue for the one writer) and waits for the commit
    /// of the group they are applied in.
    async fn submit(&self, writes: Vec<Write>) -> StoreResult<()> {
        let writes = writes.into_iter().map(Encoded::new).collect::<StoreResult<Vec<_>>>()?;
        self.writer.run(writes, !self.deferred).await
    }

    /// Runs a read of at most `items` items (at most `MAX_QUERY_LIMIT`) on the calling task, and
    /// a larger one, or one whose size is not known before (`usize::MAX`: a count walks the whole
    /// key range), on the blocking pool. Handing a read to a pool thread and back (wake-ups and
    /// context switches on two cores) cost more than most reads: measured at 8 clients reading
    /// pages of 1000, 7.85 ms of server CPU per page with every read on the pool, 7.02 with
    /// bounded reads here (3 runs each, alternating). A bounded read holds the runtime's worker
    /// for about a millisecond at most on a warm cache (a page of 1000 documents).
    async fn read<T: Send + 'static>(
        &self,
        items: usize,
        f: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if items <= MAX_QUERY_LIMIT {
            return f(&self.db);
        }
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(backend)?
    }

    /// One page of a query, each item (its key in the index queried and its stored bytes,
    /// borrowed from the engine) handed to `each`, in order; returns the cursor. A page is at
    /// most `MAX_QUERY_LIMIT` items, so it runs on the calling task, as `read` runs bounded reads.
    fn scan(&self, q: &Query, each: &mut EachItem<'_>) -> StoreResult<Option<String>> {
        if q.limit == 0 || q.limit > MAX_QUERY_LIMIT {
            return Err(StoreError::Invalid(format!("limit {} out of range", q.limit)));
        }
        check_key_part(&q.pk)?;
        let (lo, hi, hi_inclusive) = partition_bounds(q);
        let cursor = match &q.cursor {
            None => None,
            Some(c) => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| StoreError::Invalid("malformed cursor".into()))?;
                if raw < lo || raw > hi {
                    return Err(StoreError::Invalid("cursor does not belong to this query".into()));
                }
                Some(raw)
            }
        };
        let (lower, upper): (Bound<&[u8]>, Bound<&[u8]>) = {
            let upper_default =
                if hi_inclusive { Bound::Included(hi.as_slice()) } else { Bound::Excluded(hi.as_slice()) };
            match (&cursor, q.forward) {
                (Some(c), true) => (Bound::Excluded(c.as_slice()), upper_default),
                (Some(c), false) => (Bound::Included(lo.as_slice()), Bound::Excluded(c.as_slice())),
                (None, _) => (Bound::Included(lo.as_slice()), upper_default),
            }
        };
        let tx = self.db.begin_read().map_err(backend)?;
        let table = tx.open_table(index_table(q.index)).map_err(backend)?;
        let main = tx.open_table(MAIN).map_err(backend)?;
        let range = table.range::<&[u8]>((lower, upper)).map_err(backend)?;
        let mut iter: Box<dyn Iterator<Item = _>> = if q.forward { Box::new(range) } else { Box::new(range.rev()) };
        let mut n = 0;
        let mut last_key = None;
        let mut more = false;
        for entry in iter.by_ref() {
            let (k, v) = entry.map_err(backend)?;
            if n == q.limit {
                more = true;
                break;
            }
            if q.index == Index::Primary {
                each(k.value(), v.value())?
            } else {
                let got = main.get(v.value()).map_err(backend)?;
                match got {
                    Some(m) => each(k.value(), m.value())?,
                    None => return Err(StoreError::Backend("index entry without item".into())),
                }
            };
            n += 1;
            if n == q.limit {
                // The cursor, should another item follow.
                last_key = Some(k.value().to_vec());
            }
        }
        Ok(if more { last_key.map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)) } else { None })
    }
}

/// What a write needs of the item it replaces: its version and index keys (not its data).
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    gsi1: Option<Key>,
    #[serde(default)]
    gsi2: Option<Key>,
    #[serde(default)]
    version: u64,
}

fn head(bytes: &[u8]) -> StoreResult<Head> {
    serde_json::from_slice(bytes).map_err(backend)
}

/// The sort key within an index's own key of an entry (`pk 0x00 sk`, followed in a secondary
/// index by `0x00` and the main key).
fn index_entry_sk(k: &[u8]) -> StoreResult<&[u8]> {
    k.split(|b| *b == 0).nth(1).ok_or_else(|| StoreError::Backend("malformed index key".into()))
}

/// The byte range of one partition of an index, narrowed by the sort-key condition.
fn partition_bounds(q: &Query) -> (Vec<u8>, Vec<u8>, bool) {
    let mut base = q.pk.as_bytes().to_vec();
    base.push(0);
    let secondary = q.index != Index::Primary;
    let with = |s: &str| {
        let mut k = base.clone();
        k.extend_from_slice(s.as_bytes());
        k
    };
    match &q.range {
        SkRange::All => {
            let mut hi = base.clone();
            hi.push(0xFF);
            (base.clone(), hi, false)
        }
        SkRange::Prefix(p) => {
            let lo = with(p);
            let mut hi = lo.clone();
            hi.push(0xFF);
            (lo, hi, false)
        }
        SkRange::Between(lo, hi) => {
            let lo_k = with(lo);
            let mut hi_k = with(hi);
            if secondary {
                // Index keys continue after the sort key with 0x00 + main key: include them.
                hi_k.push(0);
                hi_k.push(0xFF);
                (lo_k, hi_k, false)
            } else {
                (lo_k, hi_k, true)
            }
        }
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let mk = main_key(&key.pk, &key.sk);
        self.read(1, move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let t = tx.open_table(MAIN).map_err(backend)?;
            match t.get(mk.as_slice()).map_err(backend)? {
                Some(v) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()> {
        check_item_keys(&item)?;
        self.submit(vec![Write::Put { item, cond }]).await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()> {
        self.submit(vec![Write::Delete { key: key.clone(), cond }]).await
    }

    fn max_transact_items(&self) -> usize {
        EMBEDDED_MAX_TRANSACT
    }

    fn deferred(&self) -> Option<Arc<dyn Table>> {
        Some(Arc::new(Self { db: self.db.clone(), writer: self.writer.clone(), deferred: true }))
    }

    async fn flush(&self) -> StoreResult<()> {
        // A durable commit makes every commit before it durable too.
        self.writer.run(Vec::new(), true).await
    }

    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Option<Item>>> {
        let mks: Vec<Vec<u8>> = keys.iter().map(|k| main_key(&k.pk, &k.sk)).collect();
        self.read(mks.len(), move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let t = tx.open_table(MAIN).map_err(backend)?;
            mks.iter()
                .map(|mk| match t.get(mk.as_slice()).map_err(backend)? {
                    Some(v) => Ok(Some(decode(v.value())?)),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        check_transact_limit(&writes, EMBEDDED_MAX_TRANSACT)?;
        for w in &writes {
            if let Write::Put { item, .. } = w {
                check_item_keys(item)?;
            }
        }
        self.submit(writes).await
    }

    async fn put_many(&self, items: Vec<Item>) -> StoreResult<()> {
        for item in &items {
            check_item_keys(item)?;
        }
        // One transaction: one fsync for the whole batch.
        self.submit(items.into_iter().map(|item| Write::Put { item, cond: Cond::None }).collect()).await
    }

    async fn count(&self, q: &Query) -> StoreResult<usize> {
        check_key_part(&q.pk)?;
        let q = q.clone();
        // How many keys it walks is not known before: on the pool.
        self.read(usize::MAX, move |db| {
            let (lo, hi, hi_inclusive) = partition_bounds(&q);
            let upper = if hi_inclusive { Bound::Included(hi.as_slice()) } else { Bound::Excluded(hi.as_slice()) };
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(index_table(q.index)).map_err(backend)?;
            let range = table.range::<&[u8]>((Bound::Included(lo.as_slice()), upper)).map_err(backend)?;
            let mut n = 0;
            for e in range {
                e.map_err(backend)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn query(&self, q: &Query) -> StoreResult<Page> {
        let mut items = Vec::new();
        let next = self.scan(q, &mut |_, v| {
            items.push(decode(v)?);
            Ok(())
        })?;
        Ok(Page { items, next })
    }

    async fn query_raw(&self, q: &Query) -> StoreResult<RawPage> {
        let mut raw = RawPageBuilder::new(q.limit);
        let next = self.scan(q, &mut |k, v| {
            raw.push(index_entry_sk(k)?, v);
            Ok(())
        })?;
        Ok(raw.finish(next))
    }

    async fn query_each(&self, q: &Query, each: &mut EachItem<'_>) -> StoreResult<Option<String>> {
        self.scan(q, &mut |k, v| each(index_entry_sk(k)?, v))
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableTable;
    use serde_json::json;

    use super::*;

    fn put(pk: &str, g1: Option<&str>, v: i64, cond: Cond) -> Encoded {
        let mut item = Item::new(pk, "A", json!({ "v": v }));
        if let Some(g) = g1 {
            item = item.with_gsi1("G", g);
        }
        Encoded::new(Write::Put { item, cond }).expect("encode")
    }

    /// A writer whose thread is gone answers each caller with an error instead of leaving it
    /// waiting: whether the thread ended before the batch was queued or dropped it unanswered.
    #[tokio::test]
    async fn a_stopped_writer_fails_its_callers_instead_of_hanging() {
        let stopped = Err(StoreError::Backend("the store's writer has stopped".into()));
        // Ended before: the queue is closed.
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        drop(jobs);
        let gone = Writer { queue: Some(queue), thread: None };
        assert_eq!(gone.run(vec![put("a", None, 1, Cond::None)], true).await, stopped);
        // Ended with the batch taken and not answered (as a panic inside a commit would).
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || drop(jobs.recv()));
        let dropped = Writer { queue: Some(queue), thread: Some(thread) };
        assert_eq!(dropped.run(vec![put("a", None, 1, Cond::None)], true).await, stopped);
    }

    /// The sort key of an index entry is what lies between its first and second 0 byte (all of
    /// the rest in the primary index); a key without a 0 byte is not one this engine wrote.
    #[test]
    fn an_index_entry_gives_its_sort_key_or_an_error() {
        assert_eq!(index_entry_sk(b"OBS#1\0code#t#id").expect("primary"), b"code#t#id");
        assert_eq!(index_entry_sk(b"OBSU#1#2\0t#id\0OBS#1\0code#t#id").expect("secondary"), b"t#id");
        assert_eq!(index_entry_sk(b"pk\0").expect("empty sort key"), b"");
        assert_eq!(index_entry_sk(b"no zero byte"), Err(StoreError::Backend("malformed index key".into())));
    }

    /// One group, three batches: the middle one rewrites an item another batch wrote, moves it in
    /// the index, adds an item, then fails. Only its own writes are undone, whatever their order.
    #[test]
    fn a_failed_batch_in_a_group_is_undone_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let table = EmbeddedTable::open_with_cache(&dir.path().join("s.redb"), 1 << 20).expect("open");
        let db = table.db.clone();
        let results = apply_group(
            &db,
            vec![
                vec![put("a", Some("a1"), 1, Cond::Absent), put("b", Some("b1"), 1, Cond::Absent)],
                vec![
                    put("a", Some("a2"), 2, Cond::Exists),
                    put("c", Some("c1"), 2, Cond::Absent),
                    Encoded::new(Write::Delete { key: Key::new("b", "A"), cond: Cond::None }).expect("encode"),
                    put("a", None, 3, Cond::Absent),
                ],
                vec![put("d", Some("d1"), 4, Cond::Absent)],
            ],
            true,
        )
        .expect("group");
        assert_eq!(results, vec![Ok(()), Err(StoreError::ConditionFailed { index: 3 }), Ok(())]);
        let tx = db.begin_read().expect("read");
        let main = tx.open_table(MAIN).expect("main");
        let keys: Vec<Vec<u8>> = main.iter().expect("iter").map(|e| e.expect("entry").0.value().to_vec()).collect();
        assert_eq!(keys, vec![main_key("a", "A"), main_key("b", "A"), main_key("d", "A")]);
        let a = decode(main.get(main_key("a", "A").as_slice()).expect("get").expect("a").value()).expect("item");
        assert_eq!(a.data, json!({ "v": 1 }), "the failed batch's rewrite of a is undone");
        let g1 = tx.open_table(GSI1).expect("gsi1");
        let index: Vec<Vec<u8>> = g1.iter().expect("iter").map(|e| e.expect("entry").0.value().to_vec()).collect();
        let entry = |g: &str, pk: &str| index_key(&Key::new("G", g), &main_key(pk, "A"));
        assert_eq!(
            index,
            vec![entry("a1", "a"), entry("b1", "b"), entry("d1", "d")],
            "index entries as before the batch"
        );
    }
}
