//! The single-table design: every entity mapped onto the `Table` port's items, written once for
//! every engine. Key layout (ids zero-padded to 10 digits so byte order = numeric order):
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | id counter: ids handed out above the kind's base (one number, only ever added to) | `COUNTER` | `{kind}#n` | |
//! | where a kind's ids start (fixed once) / the counter stores wrote before (read, never written) | `COUNTER` | `{kind}#base` / kind | |
//! | user | `USER#{u}` | `A` | `USERS` / `{u}` |
//! | email -> user (unique) | `EMAIL#{email}` | `A` | |
//! | practitioner | `PRACT#{p}` | `A` | `PRACTS` / `{p}` |
//! | organization | `ORG#{o}` | `A` | `ORGS` / `{name}#{o}` |
//! | child link | `ORG#{parent}` | `CH#{o}` | |
//! | membership (both directions) | `ORG#{o}` / `USER#{u}` | `M#{u}` / `R#{o}` | |
//! | patient | `PAT#{p}` | `A` | `PATIENTS` / `{p}` |
//! | patient identifier (unique) | `PATIDENT#{system}|{value}` | `A` | |
//! | patient in org (both directions; `{"added": true}` until the patient consents there) | `ORG#{o}` / `PAT#{p}` | `P#{p}` / `O#{o}` | |
//! | study | `STUDY#{s}` | `A` | |
//! | study of org | `ORG#{o}` | `S#{s}` | |
//! | enrolment (both directions) | `STUDY#{s}` / `PAT#{p}` | `P#{p}` / `S#{s}` | |
//! | scope request, data source, client of a study | `STUDY#{s}` | `C#{code}`, `D#{ds}`, `L#{client}` | |
//! | consent | `PAT#{p}` | `CONSENT#{s}#{code}` | |
//! | code | `CODE#{c}` | `A` | `CODES` / `{text}#{c}` |
//! | code key (unique) | `CODEKEY#{system}|{code}` | `A` | |
//! | data source (+ supported scope) | `DS#{d}` | `A` (`C#{code}`) | `DSS` / `{name}#{d}` |
//! | client (+ its data sources) | `CLIENT#{c}` | `A` (`D#{d}`) | `CLIENTS` / `{c}` |
//! | OAuth client id (unique) | `CLIENTID#{client_id}` | `A` | |
//! | API key | `USER#{u}` | `K#{k}` | |
//! | invitation | `PAT#{p}` | `I#{i}` | |
//! | invitation token (unique) | `INVTOKEN#{hash}` | `A` | |
//! | authorization code / refresh token | `AUTHCODE#{hash}` / `REFRESH#{hash}` | `A` | |
//! | refresh token family: a live member / a used token's tombstone | `RFAM#{family}` / `RUSED#{hash}` | `{hash}` / `A` | |
//! | login session of the built-in issuer | `SESSION#{hash}` | `A` | |
//! | failed attempts of an account or address | `THROTTLE#acct#{name}` / `THROTTLE#addr#{ip}` | `A` | |
//! | FHIR sources and the resources stored as sent under them | see `fhir_store` | | |
//!
//! Relationships whose reads decide access are stored in both directions in one transaction, so
//! they never depend on an eventually consistent index. Secondary indexes serve only global lists.
//!
//! Must not depend on: SDKs, the web framework.

pub mod audit;
mod catalog;
mod entities;
mod fhir_store;
mod grants;
pub mod keys;
pub mod observations;
mod patients;
mod people;
mod studies;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::ports::{Cond, Item, Key, Query, StoreError, Table, Write};

pub use entities::*;

/// Where each kind's ids start (upstream's ranges); other kinds start at 1.
const FIRST_IDS: &[(&str, i64)] = &[
    ("user", 10001),
    ("organization", 20001),
    ("study", 30001),
    ("patient", 40001),
    ("code", 50001),
    ("observation", 60001),
    ("data_source", 70001),
    ("practitioner", 80001),
    ("invitation", 101),
    ("fhir_source", 90001),
];

fn first_id(kind: &str) -> i64 {
    FIRST_IDS.iter().find(|(k, _)| *k == kind).map_or(1, |(_, f)| *f)
}

/// The repository: typed access to every entity over one `Table`.
#[derive(Clone)]
pub struct Repo {
    pub table: Arc<dyn Table>,
    /// Observation ids reserved from the counter and not handed out yet (`next`, `end`).
    obs_ids: Arc<tokio::sync::Mutex<(i64, i64)>>,
    /// Each kind's id base (`counter_base`), read once.
    counter_bases: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

pub(crate) fn item<T: Serialize>(pk: impl Into<String>, sk: impl Into<String>, v: &T) -> Result<Item> {
    let data = serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Item::new(pk, sk, data))
}

pub(crate) fn parse<T: DeserializeOwned>(item: &Item) -> Result<T> {
    serde_json::from_value(item.data.clone())
        .map_err(|e| Error::Internal(format!("corrupt item {}/{}: {e}", item.pk, item.sk)))
}

pub(crate) fn put(item: Item, cond: Cond) -> Write {
    Write::Put { item, cond }
}

pub(crate) fn del(pk: impl Into<String>, sk: impl Into<String>) -> Write {
    Write::Delete { key: Key::new(pk, sk), cond: Cond::None }
}

impl Repo {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table, obs_ids: Arc::default(), counter_bases: Arc::default() }
    }

    /// The same repository over `Table::deferred` (writes made durable together at
    /// `self.table.flush()`), sharing the id blocks; itself where the engine
    /// has no such mode.
    pub fn deferred(&self) -> Repo {
        match self.table.deferred() {
            Some(table) => Repo { table, obs_ids: self.obs_ids.clone(), counter_bases: self.counter_bases.clone() },
            None => self.clone(),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>> {
        match self.table.get(&Key::new(pk, sk)).await? {
            Some(i) => Ok(Some(parse(&i)?)),
            None => Ok(None),
        }
    }

    pub async fn exists(&self, pk: &str, sk: &str) -> Result<bool> {
        Ok(self.table.get(&Key::new(pk, sk)).await?.is_some())
    }

    /// Every item of a query, following cursors to the end (for small, bounded sets).
    pub async fn query_all(&self, mut q: Query) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        loop {
            let page = self.table.query(&q).await?;
            out.extend(page.items);
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    pub async fn query_parsed<T: DeserializeOwned>(&self, q: Query) -> Result<Vec<T>> {
        self.query_all(q).await?.iter().map(parse).collect()
    }

    /// The ids named by the sort keys `{prefix}{id}` of a partition.
    pub async fn linked_ids(&self, pk: &str, prefix: &str) -> Result<Vec<i64>> {
        let items = self.query_all(Query::prefix(pk, prefix)).await?;
        Ok(items.iter().filter_map(|i| i.sk.strip_prefix(prefix).and_then(|s| s.parse().ok())).collect())
    }

    /// Links with what their items hold.
    pub async fn links(&self, pk: &str, prefix: &str) -> Result<Vec<(i64, serde_json::Value)>> {
        let items = self.query_all(Query::prefix(pk, prefix)).await?;
        Ok(items.into_iter().filter_map(|i| Some((i.sk.strip_prefix(prefix)?.parse().ok()?, i.data))).collect())
    }

    /// Runs an atomic write; a failed precondition becomes `on_conflict(index)`.
    pub async fn transact(&self, writes: Vec<Write>, on_conflict: impl FnOnce(usize) -> Error) -> Result<()> {
        match self.table.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { index }) => Err(on_conflict(index)),
            Err(e) => Err(e.into()),
        }
    }

    /// Allocates the next id of a kind (ids start at the kind's `first_id`).
    pub async fn next_id(&self, kind: &str) -> Result<i64> {
        self.next_ids(kind, 1).await
    }

    /// Reserves `n` consecutive ids of a kind and gives the first: one atomic add on the kind's
    /// counter (`COUNTER` / `{kind}#n`), which counts the ids handed out above the kind's base.
    pub async fn next_ids(&self, kind: &str, n: usize) -> Result<i64> {
        let base = self.counter_base(kind).await?;
        let by = n as i64;
        let counted = self.table.add(&Key::new("COUNTER", format!("{kind}#n")), by).await?;
        Ok(base + counted - by)
    }

    /// Makes sure the counter hands out ids above `id` (used by the seed, which picks its ids).
    pub async fn bump_counter(&self, kind: &str, id: i64) -> Result<()> {
        let base = self.counter_base(kind).await?;
        let key = Key::new("COUNTER", format!("{kind}#n"));
        let next = base + self.table.add(&key, 0).await?;
        if next <= id {
            self.table.add(&key, id + 1 - next).await?;
        }
        Ok(())
    }

    /// Where a kind's ids start: fixed once per store in `COUNTER` / `{kind}#base` by whoever
    /// needs it first (a put under `Absent`: every process reads the same), from the next id of
    /// the counter stores written before kept (`COUNTER` / `{kind}`, `{"next": ...}`, read, never
    /// written), or the kind's `first_id`. Read once per process.
    async fn counter_base(&self, kind: &str) -> Result<i64> {
        if let Some(b) = self.counter_bases.lock().ok().and_then(|m| m.get(kind).copied()) {
            return Ok(b);
        }
        let key = Key::new("COUNTER", format!("{kind}#base"));
        let stored = |i: &Item| i.data["base"].as_i64();
        let base = match self.table.get(&key).await?.as_ref().and_then(stored) {
            Some(b) => b,
            None => {
                let before = self.table.get(&Key::new("COUNTER", kind)).await?;
                let first = first_id(kind);
                let base = before.and_then(|i| i.data["next"].as_i64()).unwrap_or(first).max(first);
                let fixed = Item::new(key.pk.clone(), key.sk.clone(), serde_json::json!({ "base": base }));
                match self.table.put(fixed, Cond::Absent).await {
                    Ok(()) => base,
                    Err(StoreError::ConditionFailed { .. }) => {
                        let again = self.table.get(&key).await?;
                        again.as_ref().and_then(stored).ok_or_else(|| Error::Internal(format!("id base of {kind}")))?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if let Ok(mut m) = self.counter_bases.lock() {
            m.insert(kind.to_string(), base);
        }
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<dyn Table>) {
        let dir = tempfile::tempdir().expect("dir");
        let t = crate::adapters::embedded::EmbeddedTable::open_with_cache(&dir.path().join("s.redb"), 1 << 20)
            .expect("open");
        (dir, Arc::new(t))
    }

    /// Ids go on from where a store written before left its counter, every process counts from
    /// the same base even if an old process moves that counter afterwards, and the seed's bump
    /// keeps ids above the ones it chose.
    #[tokio::test]
    async fn ids_count_on_from_the_counter_stores_kept_before() {
        let (_dir, t) = store();
        let old = |next: i64| Item::new("COUNTER", "organization", serde_json::json!({ "next": next }));
        t.put(old(20050), Cond::Absent).await.expect("old counter");
        let (a, b) = (Repo::new(t.clone()), Repo::new(t.clone()));
        assert_eq!(a.next_id("organization").await.expect("id"), 20050);
        // An old process still running moves the old counter: nothing changes for anyone.
        t.put(old(20060), Cond::None).await.expect("old process");
        assert_eq!(b.next_id("organization").await.expect("id"), 20051);
        assert_eq!(Repo::new(t.clone()).next_ids("organization", 3).await.expect("ids"), 20052);
        assert_eq!(a.next_id("organization").await.expect("id"), 20055);
        // A fresh kind starts at its first id; the seed's bump lifts it past what it chose.
        assert_eq!(a.next_id("study").await.expect("id"), 30001);
        a.bump_counter("study", 30005).await.expect("bump");
        a.bump_counter("study", 30002).await.expect("no-op");
        assert_eq!(b.next_id("study").await.expect("id"), 30006);
        assert_eq!(a.next_id("client").await.expect("id"), 1);
    }
}
