//! The single-table design: every entity mapped onto the `Table` port's items, written once for
//! every engine. Key layout (ids zero-padded to 10 digits so byte order = numeric order):
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | id counter | `COUNTER` | kind | |
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
//!
//! Relationships whose reads decide access are stored in both directions in one transaction, so
//! they never depend on an eventually consistent index. Secondary indexes serve only global lists.
//!
//! Must not depend on: SDKs, the web framework.

pub mod audit;
mod catalog;
mod entities;
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

/// The repository: typed access to every entity over one `Table`.
#[derive(Clone)]
pub struct Repo {
    pub table: Arc<dyn Table>,
    /// Observation ids reserved from the counter and not handed out yet (`next`, `end`).
    obs_ids: Arc<tokio::sync::Mutex<(i64, i64)>>,
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
        Self { table, obs_ids: Arc::default() }
    }

    /// The same repository over `Table::deferred` (writes made durable together at
    /// `self.table.flush()`), sharing the id blocks; itself where the engine
    /// has no such mode.
    pub fn deferred(&self) -> Repo {
        match self.table.deferred() {
            Some(table) => Repo { table, obs_ids: self.obs_ids.clone() },
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

    /// Allocates the next id of a kind (ids start at `first`).
    pub async fn next_id(&self, kind: &str, first: i64) -> Result<i64> {
        let key = Key::new("COUNTER", kind);
        for _ in 0..64 {
            let current = self.table.get(&key).await?;
            let (next, cond, version) = match &current {
                Some(i) => (i.data["next"].as_i64().unwrap_or(first), Cond::Version(i.version), i.version + 1),
                None => (first, Cond::Absent, 1),
            };
            let mut it = Item::new("COUNTER", kind, serde_json::json!({ "next": next + 1 }));
            it.version = version;
            match self.table.put(it, cond).await {
                Ok(()) => return Ok(next),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(format!("id counter {kind} contended")))
    }

    /// Makes sure the counter hands out ids above `id` (used by the seed, which picks its ids).
    pub async fn bump_counter(&self, kind: &str, id: i64) -> Result<()> {
        let key = Key::new("COUNTER", kind);
        let current = self.table.get(&key).await?;
        let next = current.as_ref().and_then(|i| i.data["next"].as_i64()).unwrap_or(0);
        if next <= id {
            let mut it = Item::new("COUNTER", kind, serde_json::json!({ "next": id + 1 }));
            it.version = current.as_ref().map_or(1, |c| c.version + 1);
            let cond = current.map_or(Cond::Absent, |c| Cond::Version(c.version));
            self.table.put(it, cond).await?;
        }
        Ok(())
    }
}
