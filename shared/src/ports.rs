//! The ports: small, DynamoDB-shaped interfaces that the domain and the repository talk to.
//!
//! `Table` is the storage port. Its semantics are those of one DynamoDB table with a partition key
//! (`pk`), a sort key (`sk`) and two optional global secondary indexes, so that the same
//! repository code runs unchanged on the embedded engine and on DynamoDB.
//!
//! Must not depend on: any SDK, the web framework, or `lambda_http`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The key of an item in the table, or of an item in a secondary index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

/// One record. `data` is an opaque JSON document owned by the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Key in the first global secondary index, if the item is indexed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1: Option<Key>,
    /// Key in the second global secondary index, if the item is indexed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2: Option<Key>,
    /// Optimistic-concurrency version, chosen by the writer (the repository bumps it).
    #[serde(default)]
    pub version: u64,
    pub data: serde_json::Value,
    /// When the store may delete the item on its own (Unix seconds; DynamoDB's `ttl`): grants,
    /// sessions and counters of failures, well after the app stops honouring them. `None`: kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: serde_json::Value) -> Self {
        Self { pk: pk.into(), sk: sk.into(), gsi1: None, gsi2: None, version: 1, data, expires: None }
    }
    pub fn expiring_at(mut self, unix_seconds: i64) -> Self {
        self.expires = Some(unix_seconds);
        self
    }
    pub fn key(&self) -> Key {
        Key::new(self.pk.clone(), self.sk.clone())
    }
    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some(Key::new(pk, sk));
        self
    }
    pub fn with_gsi2(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi2 = Some(Key::new(pk, sk));
        self
    }
}

/// A precondition on the current state of one item, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// No precondition.
    None,
    /// The item must not exist.
    Absent,
    /// The item must exist.
    Exists,
    /// The item must exist with exactly this version.
    Version(u64),
}

/// Which index a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

/// A sort-key condition within one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    /// Every sort key of the partition.
    All,
    /// Sort keys that start with this prefix.
    Prefix(String),
    /// Sort keys `lo <= sk <= hi` (inclusive, byte order).
    Between(String, String),
}

/// A query of one partition of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub range: SkRange,
    /// `true`: ascending sort key; `false`: descending.
    pub forward: bool,
    /// At most this many items in the page (1..=1000 is what adapters must support).
    pub limit: usize,
    /// Resume after the item this cursor came from (returned by a previous page of the same query).
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self { index: Index::Primary, pk: pk.into(), range: SkRange::All, forward: true, limit: 1000, cursor: None }
    }
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { range: SkRange::Prefix(prefix.into()), ..Self::partition(pk) }
    }
    pub fn on(mut self, index: Index) -> Self {
        self.index = index;
        self
    }
    pub fn reverse(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of a query. `next` is `Some` exactly when more items match.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// A page of a query with each item as its JSON form (an `Item` serialised: `pk`, `sk`, ...,
/// `data`), for hot reads that decode `data` straight into a typed record, and each item's sort
/// key in the index queried (what a reader can order by without decoding the item; the
/// partition key is the query's). All of them lie in one shared buffer: a page of 1000 items is
/// one allocation, not three per item.
#[derive(Debug, Clone, Default)]
pub struct RawPage {
    pub buf: std::sync::Arc<Vec<u8>>,
    pub items: Vec<RawItem>,
    pub next: Option<String>,
}

/// Where one item of a `RawPage` lies in its buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    pub doc: std::ops::Range<usize>,
    pub sk: std::ops::Range<usize>,
}

impl RawPage {
    /// The `i`th item's JSON bytes.
    pub fn doc(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].doc.clone()]
    }
    /// The `i`th item's sort key in the index queried.
    pub fn sk(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].sk.clone()]
    }
}

/// Builds a `RawPage`'s buffer item by item.
#[derive(Debug, Default)]
pub struct RawPageBuilder {
    buf: Vec<u8>,
    items: Vec<RawItem>,
    expected: usize,
}

impl RawPageBuilder {
    /// For a page of up to `expected` items: once the first is in, room is made for the rest
    /// like it (one allocation for a page).
    pub fn new(expected: usize) -> Self {
        Self { buf: Vec::new(), items: Vec::with_capacity(expected.min(1024)), expected }
    }
    /// Appends an item: its sort key and its JSON bytes.
    pub fn push(&mut self, sk: &[u8], doc: &[u8]) {
        let at = self.buf.len();
        self.buf.extend_from_slice(sk);
        let mid = self.buf.len();
        self.buf.extend_from_slice(doc);
        self.items.push(RawItem { sk: at..mid, doc: mid..self.buf.len() });
        if self.items.len() == 1 {
            self.buf.reserve(self.expected.saturating_sub(1) * self.buf.len());
        }
    }
    pub fn finish(self, next: Option<String>) -> RawPage {
        RawPage { buf: std::sync::Arc::new(self.buf), items: self.items, next }
    }
}

/// One write of an atomic multi-item write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        cond: Cond,
    },
    Delete {
        key: Key,
        cond: Cond,
    },
    /// Writes nothing; only checks the condition.
    Check {
        key: Key,
        cond: Cond,
    },
}

/// The most writes one atomic write may hold (DynamoDB's `TransactWriteItems` limit).
pub const MAX_TRANSACT_ITEMS: usize = 100;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A precondition failed; `index` is the position of the failing write in a multi-item write.
    #[error("condition failed (write {index})")]
    ConditionFailed { index: usize },
    /// The store refused for load or contention; the caller may retry.
    #[error("store busy, retry: {0}")]
    Busy(String),
    /// The request cannot be served as asked (too many writes, bad key, bad cursor).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Anything else from the engine.
    #[error("store failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What `Table::query_each` hands each item to: its sort key in the index queried and its JSON
/// bytes, borrowed for the call.
pub type EachItem<'a> = dyn FnMut(&[u8], &[u8]) -> StoreResult<()> + Send + 'a;

/// The storage port. Every method is atomic on its own; `transact` is atomic across items.
#[async_trait]
pub trait Table: Send + Sync + 'static {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>>;
    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()>;
    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()>;
    async fn query(&self, query: &Query) -> StoreResult<Page>;
    /// `query`, with each item as JSON bytes rather than parsed (its `data` would otherwise be
    /// parsed into a `Value` and then again into the caller's type). The default serialises
    /// `query`'s items; an engine that stores JSON hands its bytes over as they are.
    async fn query_raw(&self, query: &Query) -> StoreResult<RawPage> {
        let page = self.query(query).await?;
        let mut raw = RawPageBuilder::new(page.items.len());
        let mut doc = Vec::new();
        for i in &page.items {
            let sk = match query.index {
                Index::Primary => Some(&i.sk),
                Index::Gsi1 => i.gsi1.as_ref().map(|k| &k.sk),
                Index::Gsi2 => i.gsi2.as_ref().map(|k| &k.sk),
            }
            .ok_or_else(|| StoreError::Backend("index entry without its key".into()))?;
            doc.clear();
            serde_json::to_writer(&mut doc, i).map_err(|e| StoreError::Backend(e.to_string()))?;
            raw.push(sk.as_bytes(), &doc);
        }
        Ok(raw.finish(page.next))
    }
    /// `query_raw`, each item handed to `each` as the store reads it (its sort key in the index
    /// queried and its JSON bytes, borrowed: nothing is copied for the caller), in order; returns
    /// the cursor. For a reader that writes each item out at once. An error from `each` ends the
    /// query with that error. The default goes through `query_raw`.
    async fn query_each(&self, query: &Query, each: &mut EachItem<'_>) -> StoreResult<Option<String>> {
        let page = self.query_raw(query).await?;
        for i in 0..page.items.len() {
            each(page.sk(i), page.doc(i))?;
        }
        Ok(page.next)
    }
    /// All writes happen or none does. At most [`Table::max_transact_items`] writes, each to a
    /// distinct key.
    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()>;
    /// Adds `by` to the counter at `key` and gives its new value; a counter that does not exist
    /// starts at 0. One atomic write where the engine has one (DynamoDB: `UpdateItem ADD`, no
    /// read); the default reads and writes under a version condition, again while contended. A
    /// counter's item is read and written only through `add`, and its form is the engine's own:
    /// a wrapper of another `Table` forwards `add` to it.
    async fn add(&self, key: &Key, by: i64) -> StoreResult<i64> {
        for _ in 0..256 {
            let current = self.get(key).await?;
            let (n, cond, version) = match &current {
                Some(i) => (i.data["n"].as_i64().unwrap_or(0), Cond::Version(i.version), i.version + 1),
                None => (0, Cond::Absent, 1),
            };
            let mut it = Item::new(key.pk.clone(), key.sk.clone(), serde_json::json!({ "n": n + by }));
            it.version = version;
            match self.put(it, cond).await {
                Ok(()) => return Ok(n + by),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Busy(format!("counter {}/{} contended", key.pk, key.sk)))
    }
    /// A handle on the same store for loading many small records at once (the demo data on a
    /// fresh store): its writes are atomic and visible as usual, but an engine may make them
    /// durable only at the handle's `flush`, instead of one by one. `None`: no such mode, use
    /// the table itself. Nothing written through it may be acknowledged to anyone before the
    /// `flush` returns.
    fn deferred(&self) -> Option<std::sync::Arc<dyn Table>> {
        None
    }
    /// Makes everything written through this handle durable (a no-op where writes always are).
    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }
    /// The most writes one `transact` takes (DynamoDB: 100; an engine may allow more).
    fn max_transact_items(&self) -> usize {
        MAX_TRANSACT_ITEMS
    }
    /// Reads many items; the default reads them one by one, adapters may batch.
    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Option<Item>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }
    /// Put many items without preconditions, not atomically as a whole (each item is atomic).
    /// The default puts them one by one; adapters batch.
    async fn put_many(&self, items: Vec<Item>) -> StoreResult<()> {
        for item in items {
            self.put(item, Cond::None).await?;
        }
        Ok(())
    }
    /// How many items the query matches (its `limit` and `cursor` are ignored). The default pages
    /// through the items; adapters count without reading values where they can.
    async fn count(&self, query: &Query) -> StoreResult<usize> {
        let mut q = query.clone();
        q.limit = 1000;
        q.cursor = None;
        let mut n = 0;
        loop {
            let page = self.query(&q).await?;
            n += page.items.len();
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => return Ok(n),
            }
        }
    }
}

/// The blob port: write-once objects by key (uploaded bundles). Keys are `/`-separated paths.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the object durably before returning; an existing key is an error.
    async fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
    /// Every key under the prefix, in byte order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError>;
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BlobError {
    #[error("blob {0} already exists")]
    Exists(String),
    #[error("bad blob key {0:?}")]
    BadKey(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

/// Checks the shape rules every adapter enforces the same way.
pub fn check_transact(writes: &[Write]) -> StoreResult<()> {
    check_transact_limit(writes, MAX_TRANSACT_ITEMS)
}

/// As [`check_transact`], with an engine's own limit.
pub fn check_transact_limit(writes: &[Write], max: usize) -> StoreResult<()> {
    if writes.is_empty() {
        return Err(StoreError::Invalid("empty transaction".into()));
    }
    if writes.len() > max {
        return Err(StoreError::Invalid(format!("{} writes in one transaction (at most {max})", writes.len())));
    }
    let mut seen = std::collections::HashSet::new();
    for w in writes {
        let k = match w {
            Write::Put { item, .. } => item.key(),
            Write::Delete { key, .. } | Write::Check { key, .. } => key.clone(),
        };
        if !seen.insert(k.clone()) {
            return Err(StoreError::Invalid(format!("key {}/{} written twice in one transaction", k.pk, k.sk)));
        }
    }
    Ok(())
}

/// Checks every key of an item (primary and index keys) with [`check_key_part`].
pub fn check_item_keys(item: &Item) -> StoreResult<()> {
    check_key_part(&item.pk)?;
    check_key_part(&item.sk)?;
    for g in [&item.gsi1, &item.gsi2].into_iter().flatten() {
        check_key_part(&g.pk)?;
        check_key_part(&g.sk)?;
    }
    Ok(())
}

/// The key rules of the blob port, the same for every adapter: `/`-separated non-empty segments
/// of `[A-Za-z0-9-_.]`, no `.` or `..` segment, at most 512 bytes.
pub fn check_blob_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok { Ok(()) } else { Err(BlobError::BadKey(key.into())) }
}

/// Checks that a key part is one the engines can store (non-empty, no NUL, bounded length).
pub fn check_key_part(part: &str) -> StoreResult<()> {
    if part.is_empty() || part.len() > 1024 || part.contains('\0') {
        return Err(StoreError::Invalid(format!("bad key part {part:?}")));
    }
    Ok(())
}

/// What a verified bearer token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user the token acts for (the user id, as a string). Empty when `api_key` is set and
    /// the token names only the key (the key's owner is then the user).
    pub subject: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// For tokens of a practitioner API key: the key's client id. The key is checked to still
    /// exist on every request, so deleting it stops its tokens at once.
    pub api_key: Option<String>,
}

/// The identity port: checks bearer tokens (signature, `alg`, issuer, audience or client, expiry).
#[async_trait]
pub trait Identity: Send + Sync + 'static {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, String>;
}

/// Whom tokens are minted for once JHE has checked a grant itself (a redeemed invitation's code,
/// a practitioner API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFor<'a> {
    /// A patient's app, after an invitation.
    PatientApp,
    /// A practitioner API key (its client id).
    ApiKey(&'a str),
}

/// The accounts port: the identity provider that holds user accounts and signs them in for
/// grants JHE has checked. Locally that is the built-in issuer itself (no implementation of this
/// port is used); in the cloud a Cognito user pool.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Makes a user created through the admin API known to the provider (idempotent).
    async fn provision(&self, user: &crate::model::User) -> Result<(), String>;
    /// Tokens for `user`, whose grant JHE has checked.
    async fn sign_in(
        &self,
        user: &crate::model::User,
        purpose: SignInFor<'_>,
    ) -> Result<crate::model::TokenResponse, String>;
    /// A refresh-token grant; `Ok(None)` when the provider does not know the token.
    async fn refresh(&self, refresh_token: &str) -> Result<Option<crate::model::TokenResponse>, String>;
    /// Removes an account JHE has deleted (idempotent: one the provider does not hold is fine).
    async fn remove(&self, account: &crate::model::GoneAccount) -> Result<(), String>;
}

/// The audit port: append-only. There is deliberately no update or delete.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Stores a record durably, or fails (and then the request it records fails too).
    async fn append(&self, record: &crate::model::AuditRecord) -> Result<(), String>;
    /// Records newest first, within `[lo, hi)` ms, resuming after the record id `after`.
    async fn query(&self, q: &AuditQuery) -> Result<(Vec<crate::model::AuditRecord>, Option<String>), String>;
}

/// Which records to read: by patient, by agent (user id), or all (by day).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub patient: Option<i64>,
    pub agent: Option<i64>,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    pub limit: usize,
    pub after: Option<String>,
}
