//! Observations in the single table, keyed for their reads:
//!
//! | item | pk | sk | gsi2 |
//! |---|---|---|---|
//! | observation | `OBS#{patient}` | `{code}#{date}#{id}` | `OBSU#{patient}#{code}` / `{lastUpdated}#{id}` |
//! | id -> observation | `OBSID#{id}` | `A` | |
//! | identifier -> id | `OBSKEY#{system}|{value}` | `A` | |
//! | OMH uuid -> id (per patient and data-point time) | `OBSUUID#{patient}#{date}#{uuid}` | `A` | |
//! | count per patient and code (per upload chunk, folded) | `OBSCOUNT#{patient}` | `{code}#{first id}` | |
//!
//! So "this patient's blood glucose in this window, newest first, page by page" is one key-range
//! query on the primary index, strongly consistent, and a page costs the same anywhere.
//! Times are milliseconds shifted by `T_OFFSET` and zero-padded, so byte order is time order.
//!
//! The uuid's key begins with the patient and time so that an upload's keys are written next to
//! each other (keyed by the random uuid alone, each observation dirtied a page of its own: a third
//! of what ingest wrote). Stores written before keyed it `OBSKEY#urn:omh:header.uuid|{uuid}`:
//! that form is still checked, never written.
//!
//! An observation's item holds its fields only (short names: `domain::observation`), under 1 KB
//! for a typical data point; a page renders each from them (docs/adr/0003-observation-item.md).
//! Items written by earlier builds also hold a pre-rendered head (`~fhir2`, `fhir1`): ignored.
//!
//! A count record holds how many observations an upload chunk added and how many on each UTC day
//! of their date key (`d`), so a date window's total adds up whole days and walks only the keys of
//! the part days at its ends. (Stores written before hold one running count per code, at
//! `{code}`, and records without `d`: the prefix query reads them all; without `d`, windows walk.)

mod counts;
mod stored;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{A, pad};
use super::{Repo, Tx, item, parse};
use crate::domain::observation::{NaturalKey, Observation};
use crate::error::{Error, Result};
use crate::fhir::search::TimeRange;
use crate::model::Id;
use crate::ports::{Cond, Index, Item, Key, Query, SkRange, StoreError};
use counts::{ByDay, count_data, count_key, count_sk, day_of};
use stored::{Bytes, time_and_id};
pub use stored::{ScannedObs, StoredObs};

/// Shifts times before 1970 (down to year -1200) into non-negative key space.
pub const T_OFFSET: i64 = 100_000_000_000_000;
/// Observation ids a `Repo` takes from the counter at a time.
const OBS_ID_BLOCK: usize = 1000;
/// Writes one observation takes at most (item, id pointer, 3 identifiers, uuid) plus its counter.
const WRITES_PER_OBSERVATION: usize = 7;

fn time_key(ms: i64) -> String {
    format!("{:016}", (ms + T_OFFSET).clamp(0, 9_999_999_999_999_999))
}
fn padded_id(id: Id) -> String {
    format!("{:012}", id.max(0))
}
pub fn obs_pk(p: Id) -> String {
    format!("OBS#{}", pad(p))
}
pub fn obs_sk(o: &Observation) -> String {
    format!("{}#{}#{}", pad(o.code_id), time_key(o.date_key()), padded_id(o.id))
}
fn updated_pk(p: Id, code: Id) -> String {
    format!("OBSU#{}#{}", pad(p), pad(code))
}
fn updated_sk(o: &Observation) -> String {
    format!("{}#{}", time_key(o.last_updated), padded_id(o.id))
}
fn id_key(id: Id) -> String {
    format!("OBSID#{}", padded_id(id))
}
fn nat_key(system: &str, value: &str) -> String {
    format!("OBSKEY#{system}|{value}")
}
/// Where a natural key is stored and, for a uuid, where stores written before kept it.
fn nat_keys(k: &NaturalKey) -> (String, Option<String>) {
    match k.within {
        Some((patient, at)) => {
            (format!("OBSUUID#{}#{}#{}", pad(patient), time_key(at), k.value), Some(nat_key(&k.system, &k.value)))
        }
        None => (nat_key(&k.system, &k.value), None),
    }
}
fn stored_forms<'a>(keys: impl IntoIterator<Item = &'a NaturalKey>) -> Vec<(String, Option<String>)> {
    keys.into_iter().map(nat_keys).collect()
}
/// The store keys to read for `forms`, in order: each key's form now, then its earlier form.
fn form_keys(forms: &[(String, Option<String>)]) -> impl Iterator<Item = Key> + '_ {
    forms.iter().flat_map(|(now, before)| std::iter::once(now).chain(before)).map(|k| Key::new(k.clone(), A))
}
/// The observation holding each key of `forms`, from what `form_keys` read (in its order).
fn owners(forms: &[(String, Option<String>)], mut found: impl Iterator<Item = Option<Item>>) -> Vec<Option<Id>> {
    let mut owner = || found.next().flatten().and_then(|i| parse::<KeyPointer>(&i).ok()).map(|p| p.id);
    forms
        .iter()
        .map(|(_, before)| {
            let now = owner();
            let then = before.as_ref().and_then(|_| owner());
            now.or(then)
        })
        .collect()
}

/// An observation's item as stored: its fields, keyed by date, and by last update in gsi2.
pub fn observation_item(o: &Observation) -> Result<Item> {
    Ok(item(obs_pk(o.patient_id), obs_sk(o), o)?.with_gsi2(updated_pk(o.patient_id, o.code_id), updated_sk(o)))
}

#[derive(Serialize, Deserialize)]
struct IdPointer {
    patient: Id,
    sk: String,
}

#[derive(Serialize, Deserialize)]
struct KeyPointer {
    id: Id,
}

/// Which order a scan reads in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsOrder {
    Date,
    LastUpdated,
}

/// One scan of a patient's observations of one code.
#[derive(Debug, Clone, Copy)]
pub struct ObsScan {
    pub patient: Id,
    pub code: Id,
    pub order: ObsOrder,
    pub range: TimeRange,
    /// Resume strictly after this (sort value, id).
    pub seek: Option<(i64, Id)>,
    pub descending: bool,
    pub limit: usize,
}

/// What indexing did with one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    Inserted,
    /// Already indexed under this id (a replay).
    AlreadyPresent,
    /// A natural key belongs to another observation.
    Duplicate(String),
}

/// The inclusive sort-key bounds of `{prefix}{time}#{id}` keys for a time window, resuming
/// strictly after `seek` in the scan direction.
fn bounds(prefix: &str, range: TimeRange, seek: Option<(i64, Id)>, desc: bool) -> (String, String) {
    let mut lo = match range.lo {
        Some(l) => format!("{prefix}{}#", time_key(l)),
        None => prefix.to_string(),
    };
    let mut hi = match range.hi {
        Some(h) => format!("{prefix}{}#~", time_key(h - 1)),
        None => format!("{prefix}~"),
    };
    if let Some((at, id)) = seek {
        if desc {
            let s = format!("{prefix}{}#{}", time_key(at), padded_id(id - 1));
            if s < hi {
                hi = s;
            }
        } else {
            let s = format!("{prefix}{}#{}", time_key(at), padded_id(id + 1));
            if s > lo {
                lo = s;
            }
        }
    }
    (lo, hi)
}

impl Repo {
    pub async fn observation(&self, id: Id) -> Result<Option<Observation>> {
        self.stored_observation(id).await?.map(|s| s.decode()).transpose()
    }

    /// `observation`, as its stored document.
    pub async fn stored_observation(&self, id: Id) -> Result<Option<StoredObs>> {
        let p: Option<IdPointer> = self.get(&id_key(id), A).await?;
        let Some(p) = p else { return Ok(None) };
        match self.table.get(&Key::new(obs_pk(p.patient), p.sk)).await? {
            Some(item) => StoredObs::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The id of the observation holding an identifier, if any. (A uuid is found this way only
    /// in the form stores written before kept it: it is now unique per patient and time.)
    pub async fn observation_by_key(&self, system: &str, value: &str) -> Result<Option<Id>> {
        let p: Option<KeyPointer> = self.get(&nat_key(system, value), A).await?;
        Ok(p.map(|p| p.id))
    }

    /// The query of a scan: `None` when its window is empty.
    fn scan_query(s: &ObsScan, cursor: Option<String>) -> Option<Query> {
        let (index, pk, prefix) = match s.order {
            ObsOrder::Date => (Index::Primary, obs_pk(s.patient), format!("{}#", pad(s.code))),
            ObsOrder::LastUpdated => (Index::Gsi2, updated_pk(s.patient, s.code), String::new()),
        };
        let (lo, hi) = bounds(&prefix, s.range, s.seek, s.descending);
        (lo <= hi).then(|| Query {
            index,
            pk,
            range: SkRange::Between(lo, hi),
            forward: !s.descending,
            limit: s.limit.clamp(1, 1000),
            cursor,
        })
    }

    /// Up to `limit` observations of one patient and code in the window, in scan order, after
    /// `seek`; `cursor` continues a previous page of the same scan.
    pub async fn observations_page(
        &self,
        s: &ObsScan,
        cursor: Option<String>,
    ) -> Result<(Vec<StoredObs>, Option<String>)> {
        let Some(q) = Self::scan_query(s, cursor) else { return Ok((vec![], None)) };
        // Kept as the stored bytes: what the search orders by comes from the keys.
        let page = self.table.query_raw(&q).await?;
        let obs = (0..page.items.len())
            .map(|i| {
                let doc = Bytes { buf: page.buf.clone(), at: page.items[i].doc.clone() };
                StoredObs::scanned(s.patient, s.code, s.order, page.sk(i), doc)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((obs, page.next))
    }

    /// `observations_page`, each observation handed to `each` as the store reads it, its
    /// document borrowed (nothing copied out of the store for it): for a page written out as it
    /// is read. An error from `each` ends the scan with that error.
    pub async fn observations_each(
        &self,
        s: &ObsScan,
        cursor: Option<String>,
        each: &mut (dyn FnMut(ScannedObs<'_>) -> Result<()> + Send),
    ) -> Result<Option<String>> {
        let Some(q) = Self::scan_query(s, cursor) else { return Ok(None) };
        // `each`'s own error, kept while the store is told to stop.
        let mut failed = None;
        let scanned = self
            .table
            .query_each(&q, &mut |sk, doc| {
                let r = time_and_id(sk)
                    .and_then(|(at, id)| each(ScannedObs { id, patient_id: s.patient, code_id: s.code, at, doc }));
                r.map_err(|e| {
                    failed = Some(e);
                    StoreError::Invalid("stopped by the reader".into())
                })
            })
            .await;
        match (scanned, failed) {
            (_, Some(e)) => Err(e),
            (r, None) => Ok(r?),
        }
    }

    /// Reserves `n` consecutive observation ids; returns the first. Ids come from a block this
    /// `Repo` took from the counter (`OBS_ID_BLOCK` at a time, one counter write per block
    /// instead of one per upload); the ids left in a block when the process ends are never used.
    pub async fn reserve_observation_ids(&self, n: usize) -> Result<Id> {
        let mut block = self.obs_ids.lock().await;
        let (next, end) = *block;
        if end - next >= n as i64 {
            block.0 += n as i64;
            return Ok(next);
        }
        let take = n.max(OBS_ID_BLOCK);
        let first = self.reserve_observation_id_block(take).await?;
        *block = (first + n as i64, first + take as i64);
        Ok(first)
    }

    /// Takes `n` consecutive ids from the counter item; returns the first.
    async fn reserve_observation_id_block(&self, n: usize) -> Result<Id> {
        self.next_ids("observation", n).await
    }

    /// Indexes observations idempotently: an id already present is skipped, a natural key held by
    /// another observation is a duplicate. Each chunk is one atomic write with its counters.
    pub async fn index_observations(&self, obs: &[Observation]) -> Result<Vec<Indexed>> {
        let mut out = Vec::with_capacity(obs.len());
        let chunk_len = (self.table.max_transact_items() / WRITES_PER_OBSERVATION).max(1);
        for chunk in obs.chunks(chunk_len) {
            out.extend(self.index_chunk(chunk).await?);
        }
        let touched: std::collections::BTreeSet<(Id, Id)> = obs
            .iter()
            .zip(&out)
            .filter(|(_, v)| **v == Indexed::Inserted)
            .map(|(o, _)| (o.patient_id, o.code_id))
            .collect();
        for (patient, code) in touched {
            // The upload is indexed and durable: a fold that fails only leaves more records.
            if let Err(e) = self.fold_counts(patient, code).await {
                tracing::warn!(error = %e, patient, code, "folding observation counts failed; they stay as they are");
            }
        }
        Ok(out)
    }

    /// For each observation (with its natural keys): already indexed, a duplicate of another, or
    /// new (`None`).
    async fn classify(&self, obs: &[Observation], keys: &[Vec<NaturalKey>]) -> Result<Vec<Option<Indexed>>> {
        let forms = stored_forms(keys.iter().flatten());
        let ids = obs.iter().map(|o| Key::new(id_key(o.id), A));
        let mut found = self.table.get_many(&ids.chain(form_keys(&forms)).collect::<Vec<_>>()).await?.into_iter();
        let present: Vec<bool> = obs.iter().map(|_| found.next().flatten().is_some()).collect();
        let mut owners = owners(&forms, found).into_iter();
        let mut out = Vec::with_capacity(obs.len());
        for ((o, present), keys) in obs.iter().zip(present).zip(keys) {
            let mut verdict = present.then_some(Indexed::AlreadyPresent);
            for k in keys {
                let owner = owners.next().flatten();
                if verdict.is_none() && owner.is_some_and(|owner| owner != o.id) {
                    verdict = Some(Indexed::Duplicate(k.taken_message()));
                }
            }
            out.push(verdict);
        }
        Ok(out)
    }

    /// Which natural keys are already held (one batched read).
    pub async fn observation_keys_taken(&self, keys: &[NaturalKey]) -> Result<Vec<bool>> {
        let forms = stored_forms(keys);
        let found = self.table.get_many(&form_keys(&forms).collect::<Vec<_>>()).await?;
        Ok(owners(&forms, found.into_iter()).into_iter().map(|o| o.is_some()).collect())
    }

    async fn index_chunk(&self, chunk: &[Observation]) -> Result<Vec<Indexed>> {
        // Uploads run at once, for the same patient too: every write is a new key under a
        // condition (a race, with another process or a reindex, fails one and it looks again).
        let keys: Vec<Vec<NaturalKey>> = chunk.iter().map(Observation::natural_keys).collect();
        for _attempt in 0..8 {
            let mut verdicts = Vec::with_capacity(chunk.len());
            let mut fresh: Vec<(&Observation, &[NaturalKey])> = Vec::new();
            let mut keys_in_chunk = std::collections::BTreeSet::new();
            let classified = self.classify(chunk, &keys).await?;
            for ((o, own), v) in chunk.iter().zip(&keys).zip(classified) {
                let mut v = v;
                if v.is_none() && own.iter().any(|k| !keys_in_chunk.insert(k)) {
                    v = Some(Indexed::Duplicate("The same identifier appears twice in this upload.".into()));
                }
                if v.is_none() {
                    fresh.push((o, own));
                }
                verdicts.push(v.unwrap_or(Indexed::Inserted));
            }
            if fresh.is_empty() {
                return Ok(verdicts);
            }
            let mut tx = Tx::new();
            // Per patient and code: how many, the first id (which names the count record), and
            // how many on each day.
            let mut added: BTreeMap<(Id, Id), (u64, Id, ByDay)> = BTreeMap::new();
            for &(o, own) in &fresh {
                tx.put(observation_item(o)?, Cond::Absent, None);
                tx.put(item(id_key(o.id), A, &IdPointer { patient: o.patient_id, sk: obs_sk(o) })?, Cond::Absent, None);
                for k in own {
                    tx.put(item(nat_keys(k).0, A, &KeyPointer { id: o.id })?, Cond::Absent, None);
                }
                let a = added.entry((o.patient_id, o.code_id)).or_insert((0, o.id, BTreeMap::new()));
                a.0 += 1;
                a.1 = a.1.min(o.id);
                *a.2.entry(day_of(o.date_key())).or_insert(0) += 1;
            }
            // Counts are recorded as one record per chunk (no read, no shared record to fight
            // over); `observations_count` adds them up, `fold_counts` keeps them few.
            for ((p, c), (n, first, days)) in &added {
                tx.put(Item::new(count_key(*p), count_sk(*c, *first), count_data(*n, Some(days))), Cond::Absent, None);
            }
            match tx.commit(self).await {
                Ok(()) => return Ok(verdicts),
                // A concurrent writer got there first: look again.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable("observation index contended".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use serde_json::json;

    use super::counts::{COUNT_FOLD_AT, DAY_MS, count_query, days_of};
    use crate::ports::Table;

    fn obs(identifiers: &[(&str, &str)]) -> Observation {
        Observation {
            id: 60_001,
            patient_id: 40_001,
            code_id: 50_001,
            data_source_id: Some(70_001),
            status: "final".into(),
            identifiers: identifiers.iter().map(|(s, v)| (s.to_string(), v.to_string())).collect(),
            effective_start: Some(1_728_000_000_000),
            effective_end: None,
            last_updated: 1_728_000_000_123,
            data: "eyJhIjoxfQ==".into(),
            uuid: "u-1".into(),
            archive: "a/b.json".into(),
        }
    }

    /// An identifier is keyed by itself; a uuid by patient, time and uuid (so an upload's keys sort
    /// together, in time order), with the form stores written before used as well.
    #[test]
    fn natural_keys_are_stored_where_reads_look_for_them() {
        let mut o = obs(&[("s", "v")]);
        o.uuid = "0B7E4C1E-6C2A-4C1B-9A3E-6F1D2C3B4A59".into();
        let keys: Vec<_> = o.natural_keys().iter().map(nat_keys).collect();
        assert_eq!(
            keys,
            vec![
                ("OBSKEY#s|v".to_string(), None),
                (
                    "OBSUUID#0000040001#0101728000000000#0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59".to_string(),
                    Some("OBSKEY#urn:omh:header.uuid|0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59".to_string())
                ),
            ]
        );
        let mut later = o.clone();
        later.effective_start = Some(1_728_000_000_001);
        let uuid_key = |o: &Observation| nat_keys(&o.natural_keys()[1]).0;
        assert!(uuid_key(&o) < uuid_key(&later), "time order");
        let found =
            vec![None, Some(Item::new("k", "A", json!({"id": 7}))), Some(Item::new("k", "A", json!({"id": 8})))];
        let forms = stored_forms(&o.natural_keys());
        assert_eq!(form_keys(&forms).count(), 3);
        assert_eq!(owners(&forms, found.into_iter()), vec![None, Some(7)], "the form now wins over the earlier one");
        o.uuid = "abc-1".into();
        assert_eq!(
            o.natural_keys().len(),
            1,
            "a uuid that is not a UUID guards nothing (upstream guards nothing by it)"
        );
    }

    /// A window's count from the counts by day (whole days) and key walks (part days) is what a
    /// walk of the whole window counts: both bounds, one, on and off day boundaries, an undated
    /// observation, before and after the records are folded; a store with a record written
    /// without counts by day is counted by walking.
    /// `observations_each` hands over each observation with its time and id from the sort key, in
    /// order; the reader's own error ends the scan and is what it returns (not the store's
    /// "stopped" it is carried by), and a sort key without a time and id is an error too.
    #[tokio::test]
    async fn observations_each_ends_with_the_readers_error_or_a_bad_key() {
        let dir = tempfile::tempdir().expect("dir");
        let table = crate::adapters::embedded::EmbeddedTable::open_with_cache(&dir.path().join("s.redb"), 1 << 20)
            .expect("open");
        let repo = Repo::new(Arc::new(table.clone()));
        let t0 = 1_728_000_000_000;
        let batch: Vec<Observation> = (0..3)
            .map(|i| Observation {
                id: 60_001 + i,
                effective_start: Some(t0 + i),
                uuid: format!("u-{i}"),
                ..obs(&[("s", &format!("{i}"))])
            })
            .collect();
        assert!(repo.index_observations(&batch).await.expect("index").iter().all(|v| *v == Indexed::Inserted));
        let scan = ObsScan {
            patient: 40_001,
            code: 50_001,
            order: ObsOrder::Date,
            range: TimeRange { lo: None, hi: None },
            seek: None,
            descending: false,
            limit: 10,
        };
        let mut seen = Vec::new();
        let next = repo
            .observations_each(&scan, None, &mut |o| {
                seen.push((o.id, o.at));
                Ok(())
            })
            .await
            .expect("each");
        assert_eq!((seen, next), (vec![(60_001, t0), (60_002, t0 + 1), (60_003, t0 + 2)], None));

        let mut calls = 0;
        let stopped = repo
            .observations_each(&scan, None, &mut |o| {
                calls += 1;
                if o.id == 60_002 { Err(Error::Internal("the reader's own".into())) } else { Ok(()) }
            })
            .await;
        assert_eq!(format!("{stopped:?}"), format!("{:?}", Err::<(), _>(Error::Internal("the reader's own".into()))));
        assert_eq!(calls, 2, "it ends at the item that failed");

        // An item in the scan's range whose sort key holds no time and id.
        let bad = Item::new(obs_pk(40_001), format!("{}#not-a-time", pad(50_001)), json!({}));
        table.put(bad, Cond::None).await.expect("put");
        let mut calls = 0;
        let corrupt = repo
            .observations_each(&scan, None, &mut |_| {
                calls += 1;
                Ok(())
            })
            .await
            .expect_err("a bad sort key");
        assert!(format!("{corrupt:?}").contains("corrupt observation: sort key 0000050001#not-a-time"), "{corrupt:?}");
        assert_eq!(calls, 3, "the good ones before it were handed over");
    }

    #[tokio::test]
    async fn a_window_count_by_day_is_what_a_key_walk_counts() {
        let dir = tempfile::tempdir().expect("dir");
        let table = crate::adapters::embedded::EmbeddedTable::open_with_cache(&dir.path().join("s.redb"), 1 << 20)
            .expect("open");
        let repo = Repo::new(Arc::new(table));
        let day0 = 20_000 * DAY_MS;
        // 41 uploads of one or more observations: 5 days, uneven times, one undated.
        let mut times: Vec<Option<i64>> = (0..60).map(|i| Some(day0 + i * 7_919_000 + (i % 3))).collect();
        // On a day's last millisecond, and on a day's first.
        times.extend([None, Some(day0 + DAY_MS - 1), Some(day0 + 2 * DAY_MS)]);
        let mut id = 60_000;
        let mut upload = async |ts: &[Option<i64>]| {
            let batch: Vec<Observation> = ts
                .iter()
                .map(|t| {
                    id += 1;
                    Observation { id, effective_start: *t, uuid: format!("u-{id}"), ..obs(&[("s", &format!("{id}"))]) }
                })
                .collect();
            assert!(repo.index_observations(&batch).await.expect("index").iter().all(|v| *v == Indexed::Inserted));
        };
        for chunk in times.chunks(20) {
            upload(chunk).await;
        }
        let edges: Vec<Option<i64>> = [None, Some(0), Some(day0 - 1), Some(day0), Some(day0 + 1)]
            .into_iter()
            .chain(
                (1..6)
                    .flat_map(|d| [Some(day0 + d * DAY_MS - 1), Some(day0 + d * DAY_MS), Some(day0 + d * DAY_MS + 5)]),
            )
            .collect();
        let check = async |repo: &Repo, times: &[Option<i64>], by_walk_only: bool| {
            for lo in &edges {
                for hi in &edges {
                    let r = TimeRange { lo: *lo, hi: *hi };
                    let truth = times.iter().filter(|t| r.contains(t.unwrap_or(0))).count();
                    let got = repo.observations_count(40_001, 50_001, ObsOrder::Date, r).await.expect("count");
                    assert_eq!(got, truth, "{r:?}");
                    assert_eq!(repo.count_keys(40_001, 50_001, ObsOrder::Date, r).await.expect("walk"), truth, "{r:?}");
                }
            }
            let records = repo.query_all(count_query(40_001, 50_001)).await.expect("records");
            assert_eq!(records.iter().any(|r| days_of(r).is_none()), by_walk_only);
            records.len()
        };
        assert_eq!(check(&repo, &times, false).await, 4, "one record per upload");
        // More uploads than COUNT_FOLD_AT records: folded, the counts by day kept.
        for i in 0..COUNT_FOLD_AT as i64 {
            let t = Some(day0 + 2 * DAY_MS + i * 1_000);
            times.push(t);
            upload(&[t]).await;
        }
        assert!(check(&repo, &times, false).await < 4 + COUNT_FOLD_AT, "folded");
        // A record from a store written before (no counts by day): the fold drops them, walks count.
        repo.table
            .put(Item::new(count_key(40_001), pad(50_001), json!({ "n": 0 })), Cond::Absent)
            .await
            .expect("old record");
        for i in 0..COUNT_FOLD_AT as i64 {
            let t = Some(day0 + 3 * DAY_MS + i * 1_000);
            times.push(t);
            upload(&[t]).await;
        }
        check(&repo, &times, true).await;
    }

    #[test]
    fn a_sort_key_gives_its_time_and_id() {
        let o = obs(&[]);
        assert_eq!(time_and_id(obs_sk(&o).as_bytes()).expect("key"), (o.date_key(), o.id));
        let max = format!("x#{}#{}", i64::MAX, i64::MAX);
        assert_eq!(time_and_id(max.as_bytes()).expect("key"), (i64::MAX - T_OFFSET, i64::MAX));
        for bad in ["x#1#", "x##2", "x#1#2a", "x#1#+2", "x#1#-2", "12", "x#1#99999999999999999999"] {
            assert!(time_and_id(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// DynamoDB's size of an item as the cloud adapter writes it: attribute names and values
    /// (`pk`, `sk`, `gsi2pk`, `gsi2sk`, `v`, the document `d`; a number of n digits takes
    /// n/2 + 1 bytes).
    fn dynamo_size(it: &Item) -> usize {
        let keys = [("pk", &it.pk), ("sk", &it.sk)]
            .into_iter()
            .chain(it.gsi2.iter().flat_map(|g| [("gsi2pk", &g.pk), ("gsi2sk", &g.sk)]));
        let doc = serde_json::to_string(&it.data).expect("json");
        keys.map(|(n, v)| n.len() + v.len()).sum::<usize>()
            + "v".len()
            + it.version.to_string().len().div_ceil(2)
            + 1
            + "d".len()
            + doc.len()
    }

    /// An observation's item is under DynamoDB's 1 KB write unit for every example data type, as
    /// an app uploads it (a header with a uuid, an identifier of the app, a device, an instant or
    /// an interval), so a transactional put costs 2 write units and its gsi2 entry 1, not 4 and 2.
    #[test]
    fn an_observation_item_is_under_one_write_unit() {
        use base64::Engine;
        for code in crate::omh::example_codes() {
            let uuid = "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59";
            let dp = crate::omh::example(code, uuid, "2026-12-04T08:15:00.123-08:00").expect("example");
            let mut o = obs(&[("https://example.org/app", uuid)]);
            o.id = 1_234_567_890;
            o.patient_id = 40_123;
            o.data = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&dp).expect("json"));
            o.uuid = uuid.into();
            o.effective_end = Some(1_764_900_000_000);
            o.archive = "bundles/2026/12/04/1764864900123-1234567800-a1b2c3.json".into();
            let size = dynamo_size(&observation_item(&o).expect("item"));
            assert!(size < 1024, "{code}: {size} bytes");
        }
    }
}
