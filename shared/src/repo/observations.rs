//! Observations in the single table, keyed for their reads:
//!
//! | item | pk | sk | gsi2 |
//! |---|---|---|---|
//! | observation | `OBS#{patient}` | `{code}#{date}#{id}` | `OBSU#{patient}#{code}` / `{lastUpdated}#{id}` |
//! | id -> observation | `OBSID#{id}` | `A` | |
//! | identifier -> id | `OBSKEY#{system}|{value}` | `A` | |
//! | OMH uuid -> id (per patient and data-point time) | `OBSUUID#{patient}#{date}#{uuid}` | `A` | |
//! | count per patient and code | `OBSCOUNT#{patient}` | `{code}` | |
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
//! An observation's item holds its fields and, under `RENDERED`, the part of its FHIR rendering
//! that depends on it alone (`fhir::ObservationHead`): a page copies that and the payload
//! literal, adding the code and subject, instead of rendering each entry from its fields.
//! Items stored without it (before it existed) are rendered from their fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::keys::{A, pad};
use super::{Repo, Tx, item, parse};
use crate::domain::model::Id;
use crate::domain::observation::{NaturalKey, Observation, ObservationRef, Payload};
use crate::error::{Error, Result};
use crate::fhir::search::TimeRange;
use crate::fhir::{ObservationEntry, ObservationHead};
use crate::ports::{Cond, Index, Item, Key, Query, SkRange, Write};

/// Shifts times before 1970 (down to year -1200) into non-negative key space.
pub const T_OFFSET: i64 = 100_000_000_000_000;
/// Observation ids a `Repo` takes from the counter at a time.
const OBS_ID_BLOCK: usize = 1000;
/// Writes one observation takes at most (item, id pointer, 3 identifiers, uuid) plus its counter.
const WRITES_PER_OBSERVATION: usize = 7;

fn t(ms: i64) -> String {
    format!("{:016}", (ms + T_OFFSET).clamp(0, 9_999_999_999_999_999))
}
fn id12(id: Id) -> String {
    format!("{:012}", id.max(0))
}
pub fn obs_pk(p: Id) -> String {
    format!("OBS#{}", pad(p))
}
pub fn obs_sk(o: &Observation) -> String {
    format!("{}#{}#{}", pad(o.code_id), t(o.date_key()), id12(o.id))
}
fn lu_pk(p: Id, code: Id) -> String {
    format!("OBSU#{}#{}", pad(p), pad(code))
}
fn lu_sk(o: &Observation) -> String {
    format!("{}#{}", t(o.last_updated), id12(o.id))
}
fn id_key(id: Id) -> String {
    format!("OBSID#{}", id12(id))
}
fn nat_key(system: &str, value: &str) -> String {
    format!("OBSKEY#{system}|{value}")
}
/// Where a natural key is stored and, for a uuid, where stores written before kept it.
fn nat_keys(k: &NaturalKey) -> (String, Option<String>) {
    match k.within {
        Some((patient, at)) => {
            (format!("OBSUUID#{}#{}#{}", pad(patient), t(at), k.value), Some(nat_key(&k.system, &k.value)))
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
fn count_key(p: Id) -> String {
    format!("OBSCOUNT#{}", pad(p))
}
/// One indexed chunk's count of a code, named by the chunk's first observation id of that code.
/// (Stores written before these records hold one running count per code, at `pad(code)`; the
/// prefix query in `observations_count` reads both.)
fn count_sk(code: Id, first: Id) -> String {
    format!("{}#{}", pad(code), id12(first))
}
fn count_of(record: &Item) -> u64 {
    record.data["n"].as_u64().unwrap_or(0)
}
/// How many count records of one patient and code an upload lets gather before it folds them.
const COUNT_FOLD_AT: usize = 32;
/// The count records of one patient and code.
fn count_query(patient: Id, code: Id) -> Query {
    Query { range: SkRange::Prefix(pad(code)), ..Query::partition(count_key(patient)) }
}

/// The field of a stored observation that holds its rendered head (`fhir::ObservationHead`).
/// A new name whenever that rendering changes: heads stored under another name are not used.
pub const RENDERED: &str = "fhir1";

/// An observation's item as stored: its fields, and its rendered head under `RENDERED`.
pub fn observation_item(o: &Observation) -> Result<Item> {
    let mut it = item(obs_pk(o.patient_id), obs_sk(o), o)?.with_gsi2(lu_pk(o.patient_id, o.code_id), lu_sk(o));
    let head = serde_json::to_value(ObservationHead(&o.into())).map_err(|e| Error::Internal(e.to_string()))?;
    match &mut it.data {
        serde_json::Value::Object(m) => {
            m.insert(RENDERED.into(), head);
        }
        _ => return Err(Error::Internal("an observation serialised to something other than an object".into())),
    }
    Ok(it)
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

/// A stored observation as a search reads it: its stored JSON document (the `Item`, as
/// `Table::query_raw` gives it) and what the search orders and pages by, taken from the index
/// key it was found under, so that a page decodes nothing before it is written out. The rest is
/// decoded when needed: a time the key does not hold (`time`), the fields borrowed for rendering
/// (`view`), or the whole observation (`decode`).
#[derive(Debug, Clone)]
pub struct StoredObs {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    /// `date_key()` and `last_updated`, when known without decoding the document.
    date: Option<i64>,
    last_updated: Option<i64>,
    doc: Vec<u8>,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("corrupt observation: {e}"))
}

/// The times of a stored document.
#[derive(Deserialize)]
struct Times {
    #[serde(default)]
    effective_start: Option<i64>,
    last_updated: i64,
}

impl Times {
    /// The time an order reads by (the date key as `Observation::date_key` has it).
    fn at(&self, order: ObsOrder) -> i64 {
        match order {
            ObsOrder::Date => self.effective_start.unwrap_or(0),
            ObsOrder::LastUpdated => self.last_updated,
        }
    }
}

/// The time and id at the end of an observation's sort key (`...{time}#{id}`).
fn time_and_id(sk: &str) -> Result<(i64, Id)> {
    let mut parts = sk.rsplitn(3, '#');
    let id = parts.next().and_then(|p| p.parse::<Id>().ok());
    let at = parts.next().and_then(|p| p.parse::<i64>().ok());
    match (at, id) {
        (Some(at), Some(id)) => Ok((at - T_OFFSET, id)),
        _ => Err(corrupt(format!("sort key {sk}"))),
    }
}

impl StoredObs {
    /// A document found by a scan of one patient and code, under `key` in the scan's index.
    fn scanned(patient: Id, code: Id, order: ObsOrder, key: &Key, doc: Vec<u8>) -> Result<Self> {
        let (at, id) = time_and_id(&key.sk)?;
        let (date, last_updated) = match order {
            ObsOrder::Date => (Some(at), None),
            ObsOrder::LastUpdated => (None, Some(at)),
        };
        Ok(Self { id, patient_id: patient, code_id: code, date, last_updated, doc })
    }
    /// From an observation's item as the table holds it (a read by id; benchmarks).
    pub fn from_item(item: &Item) -> Result<Self> {
        #[derive(Deserialize)]
        struct Doc {
            data: Meta,
        }
        #[derive(Deserialize)]
        struct Meta {
            id: Id,
            patient_id: Id,
            code_id: Id,
            #[serde(flatten)]
            times: Times,
        }
        let doc = serde_json::to_vec(item).map_err(|e| Error::Internal(e.to_string()))?;
        let m = serde_json::from_slice::<Doc>(&doc).map_err(corrupt)?.data;
        Ok(Self {
            id: m.id,
            patient_id: m.patient_id,
            code_id: m.code_id,
            date: Some(m.times.at(ObsOrder::Date)),
            last_updated: Some(m.times.at(ObsOrder::LastUpdated)),
            doc,
        })
    }
    /// Its time in this order (the date key, as `Observation::date_key`, or its last update).
    pub fn time(&self, order: ObsOrder) -> Result<i64> {
        let known = match order {
            ObsOrder::Date => self.date,
            ObsOrder::LastUpdated => self.last_updated,
        };
        if let Some(t) = known {
            return Ok(t);
        }
        #[derive(Deserialize)]
        struct Doc {
            data: Times,
        }
        Ok(serde_json::from_slice::<Doc>(&self.doc).map_err(corrupt)?.data.at(order))
    }
    /// The observation borrowed from the stored document.
    pub fn view(&self) -> Result<ObservationRef<'_>> {
        #[derive(Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            data: ObservationRef<'a>,
        }
        Ok(serde_json::from_slice::<Doc>(&self.doc).map_err(corrupt)?.data)
    }
    /// The whole observation.
    pub fn decode(&self) -> Result<Observation> {
        #[derive(Deserialize)]
        struct Doc {
            data: Observation,
        }
        Ok(serde_json::from_slice::<Doc>(&self.doc).map_err(corrupt)?.data)
    }
}

/// The value of one key, an object or a string as its pattern says (`"name":{` or `"name":"`),
/// in the JSON document `doc`, found by its bytes instead of by parsing the whole document (a
/// page reads two values out of each of 1000 documents of about 1.7 kB). `{"name":{` or
/// `,"name":"` can only be that key with such a value, at some depth: a quote inside a string
/// is escaped, so neither can occur within one. `None` (parse the document instead) unless the
/// pattern occurs exactly once, right after `{` or `,` (serde_json writes no spaces), and the
/// value behind it parses.
fn key_value<'a>(doc: &'a [u8], key: &KeyPattern) -> Option<&'a RawValue> {
    let mut found = key.0.find_iter(doc);
    let at = found.next()?;
    if found.next().is_some() || at == 0 || !matches!(doc[at - 1], b'{' | b',') {
        return None;
    }
    // The pattern ends with the value's first byte.
    let value = at + key.0.needle().len() - 1;
    let mut de = serde_json::Deserializer::from_slice(&doc[value..]);
    <&RawValue>::deserialize(&mut de).ok()
}

/// `"name":` and the first byte of the value wanted, as a searcher built once.
struct KeyPattern(memchr::memmem::Finder<'static>);

impl KeyPattern {
    fn new(name: &str, opens: char) -> Self {
        Self(memchr::memmem::Finder::new(format!("\"{name}\":{opens}").as_bytes()).into_owned())
    }
}

/// The stored head (an object) and the payload (a string) of an observation's document.
static HEAD_KEY: std::sync::LazyLock<KeyPattern> = std::sync::LazyLock::new(|| KeyPattern::new(RENDERED, '{'));
static PAYLOAD_KEY: std::sync::LazyLock<KeyPattern> = std::sync::LazyLock::new(|| KeyPattern::new("data", '"'));

impl crate::fhir::ObservationSource for StoredObs {
    /// Its stored head and payload when the document has them (stored since `RENDERED`), else its
    /// fields (a document stored before, or under an older head's name).
    fn entry(&self) -> std::result::Result<ObservationEntry<'_>, String> {
        let (id, patient_id, code_id) = (self.id, self.patient_id, self.code_id);
        if let (Some(head), Some(data)) = (key_value(&self.doc, &HEAD_KEY), key_value(&self.doc, &PAYLOAD_KEY)) {
            return Ok(ObservationEntry::Stored { id, patient_id, code_id, head, data: Payload::Literal(data) });
        }
        // The bytes did not settle it: parse the document's fields, looked up by the same names.
        #[derive(Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            data: BTreeMap<&'a str, &'a RawValue>,
        }
        let fields = serde_json::from_slice::<Doc>(&self.doc).map_err(|e| corrupt(e).detail())?.data;
        match (fields.get(RENDERED), fields.get("data")) {
            (Some(head), Some(data)) => {
                Ok(ObservationEntry::Stored { id, patient_id, code_id, head, data: Payload::Literal(data) })
            }
            _ => Ok(ObservationEntry::Fields(self.view().map_err(Error::detail)?)),
        }
    }
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
        Some(l) => format!("{prefix}{}#", t(l)),
        None => prefix.to_string(),
    };
    let mut hi = match range.hi {
        Some(h) => format!("{prefix}{}#~", t(h - 1)),
        None => format!("{prefix}~"),
    };
    if let Some((at, id)) = seek {
        if desc {
            let s = format!("{prefix}{}#{}", t(at), id12(id - 1));
            if s < hi {
                hi = s;
            }
        } else {
            let s = format!("{prefix}{}#{}", t(at), id12(id + 1));
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

    /// Up to `limit` observations of one patient and code in the window, in scan order, after
    /// `seek`; `cursor` continues a previous page of the same scan.
    pub async fn observations_page(
        &self,
        s: &ObsScan,
        cursor: Option<String>,
    ) -> Result<(Vec<StoredObs>, Option<String>)> {
        let (patient, code, order, range, seek, desc, limit) =
            (s.patient, s.code, s.order, s.range, s.seek, s.descending, s.limit);
        let (index, pk, prefix) = match order {
            ObsOrder::Date => (Index::Primary, obs_pk(patient), format!("{}#", pad(code))),
            ObsOrder::LastUpdated => (Index::Gsi2, lu_pk(patient, code), String::new()),
        };
        let (lo, hi) = bounds(&prefix, range, seek, desc);
        if lo > hi {
            return Ok((vec![], None));
        }
        let q =
            Query { index, pk, range: SkRange::Between(lo, hi), forward: !desc, limit: limit.clamp(1, 1000), cursor };
        // Kept as the stored bytes: what the search orders by comes from the keys.
        let page = self.table.query_raw(&q).await?;
        let obs = page
            .items
            .into_iter()
            .zip(&page.keys)
            .map(|(doc, key)| StoredObs::scanned(patient, code, order, key, doc))
            .collect::<Result<Vec<_>>>()?;
        Ok((obs, page.next))
    }

    /// How many observations of one patient and code lie in the window.
    pub async fn observations_count(&self, patient: Id, code: Id, order: ObsOrder, range: TimeRange) -> Result<usize> {
        if range.is_all() {
            let records = self.query_all(count_query(patient, code)).await?;
            return Ok(records.iter().map(count_of).sum::<u64>() as usize);
        }
        let (index, pk, prefix) = match order {
            ObsOrder::Date => (Index::Primary, obs_pk(patient), format!("{}#", pad(code))),
            ObsOrder::LastUpdated => (Index::Gsi2, lu_pk(patient, code), String::new()),
        };
        let (lo, hi) = bounds(&prefix, range, None, true);
        Ok(self.table.count(&Query { index, pk, range: SkRange::Between(lo, hi), ..Query::partition("x") }).await?)
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
        let key = Key::new("COUNTER", "observation");
        for _ in 0..64 {
            let cur = self.table.get(&key).await?;
            let (first, cond, version) = match &cur {
                Some(i) => (i.data["next"].as_i64().unwrap_or(60001), Cond::Version(i.version), i.version + 1),
                None => (60001, Cond::Absent, 1),
            };
            let mut it = Item::new("COUNTER", "observation", json!({"next": first + n as i64}));
            it.version = version;
            match self.table.put(it, cond).await {
                Ok(()) => return Ok(first),
                Err(crate::ports::StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("observation id counter contended".into()))
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

    /// When a patient's code has `COUNT_FOLD_AT` count records or more, folds them into the first
    /// of each group, atomically (the sum is kept, the others deleted, each write conditional on
    /// the version read): a concurrent fold makes it fail, and a failed fold changes nothing.
    /// Done by the upload that added a record (which may write them), so that a total reads few.
    async fn fold_counts(&self, patient: Id, code: Id) -> Result<()> {
        // Every upload asks; a key-only count answers without reading the records.
        if self.table.count(&count_query(patient, code)).await? < COUNT_FOLD_AT {
            return Ok(());
        }
        let records = self.query_all(count_query(patient, code)).await?;
        let per_transaction = self.table.max_transact_items().max(2);
        for group in records.chunks(per_transaction).filter(|g| g.len() > 1) {
            let first = &group[0];
            let mut folded =
                Item::new(first.pk.clone(), first.sk.clone(), json!({ "n": group.iter().map(count_of).sum::<u64>() }));
            folded.version = first.version + 1;
            let mut writes = vec![Write::Put { item: folded, cond: Cond::Version(first.version) }];
            writes.extend(group[1..].iter().map(|i| Write::Delete { key: i.key(), cond: Cond::Version(i.version) }));
            match self.table.transact(writes).await {
                Ok(()) | Err(crate::ports::StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
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
            // Per patient and code: how many, and the first id (which names the count record).
            let mut added: BTreeMap<(Id, Id), (u64, Id)> = BTreeMap::new();
            for &(o, own) in &fresh {
                tx.put(observation_item(o)?, Cond::Absent, None);
                tx.put(item(id_key(o.id), A, &IdPointer { patient: o.patient_id, sk: obs_sk(o) })?, Cond::Absent, None);
                for k in own {
                    tx.put(item(nat_keys(k).0, A, &KeyPointer { id: o.id })?, Cond::Absent, None);
                }
                let a = added.entry((o.patient_id, o.code_id)).or_insert((0, o.id));
                a.0 += 1;
                a.1 = a.1.min(o.id);
            }
            // Counts are recorded as one record per chunk (no read, no shared record to fight
            // over); `observations_count` adds them up, `fold_counts` keeps them few.
            for ((p, c), (n, first)) in &added {
                tx.put(Item::new(count_key(*p), count_sk(*c, *first), json!({ "n": n })), Cond::Absent, None);
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
    use crate::fhir::ObservationSource;

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

    /// The stored document as a page reads it, and its head and payload as a full parse finds them.
    fn doc_and_parts(o: &Observation) -> (Vec<u8>, String, String) {
        let item = observation_item(o).expect("item");
        let doc = serde_json::to_vec(&item).expect("doc");
        (doc, item.data[RENDERED].to_string(), item.data["data"].to_string())
    }

    /// An identifier is keyed by itself; a uuid by patient, time and uuid (so an upload's keys sort
    /// together, in time order), with the form stores written before used as well.
    #[test]
    fn natural_keys_are_stored_where_reads_look_for_them() {
        let mut o = obs(&[("s", "v")]);
        o.uuid = "AbC-1".into();
        let keys: Vec<_> = o.natural_keys().iter().map(nat_keys).collect();
        assert_eq!(
            keys,
            vec![
                ("OBSKEY#s|v".to_string(), None),
                (
                    "OBSUUID#0000040001#0101728000000000#abc-1".to_string(),
                    Some("OBSKEY#urn:omh:header.uuid|abc-1".to_string())
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
    }

    #[test]
    fn key_value_finds_the_head_and_payload_a_parse_finds() {
        // Identifiers holding the very bytes it looks for, which JSON escapes inside strings.
        for ids in [
            vec![],
            vec![("s", "v")],
            vec![("x\",\"data\":\"evil", "{\"fhir1\":{\"id\":\"1\"}}"), (",\"data\":\"", "\\\"fhir1\\\":{")],
        ] {
            let (doc, head, data) = doc_and_parts(&obs(&ids));
            assert_eq!(key_value(&doc, &HEAD_KEY).map(RawValue::get), Some(head.as_str()), "{ids:?}");
            assert_eq!(key_value(&doc, &PAYLOAD_KEY).map(RawValue::get), Some(data.as_str()), "{ids:?}");
        }
    }

    #[test]
    fn key_value_declines_what_it_cannot_be_sure_of() {
        // Twice (at another depth), with spaces, or a value that does not parse: parse instead.
        let twice = br#"{"data":{"fhir1":{"id":"1"},"x":{"fhir1":{"id":"2"}}}}"#;
        assert!(key_value(twice, &HEAD_KEY).is_none());
        let spaced = br#"{"data": {"fhir1": {"id":"1"}, "data": "eyJ9"}}"#;
        assert!(key_value(spaced, &HEAD_KEY).is_none() && key_value(spaced, &PAYLOAD_KEY).is_none());
        let cut = br#"{"data":{"fhir1":{"id":"1""#;
        assert!(key_value(cut, &HEAD_KEY).is_none());
        // The end of another key (`a"data`), not the key itself.
        assert!(key_value(br#"{"a\"data":"x"}"#, &PAYLOAD_KEY).is_none());
        // The item's own `data` is an object: only the payload's key has a string value.
        let once = br#"{"data":{"data":"eyJ9","fhir1":{"id":"1"}}}"#;
        assert_eq!(key_value(once, &PAYLOAD_KEY).map(RawValue::get), Some("\"eyJ9\""));
        assert_eq!(key_value(once, &HEAD_KEY).map(RawValue::get), Some(r#"{"id":"1"}"#));
    }

    #[test]
    fn a_page_entry_is_the_same_found_by_bytes_or_by_parsing() {
        let tricky = obs(&[("x\",\"data\":\"evil", "{\"fhir1\":{}}")]);
        let (doc, head, data) = doc_and_parts(&tricky);
        let stored = StoredObs { id: 60_001, patient_id: 40_001, code_id: 50_001, date: None, last_updated: None, doc };
        match stored.entry().expect("entry") {
            ObservationEntry::Stored { head: h, data: Payload::Literal(d), .. } => {
                assert_eq!((h.get(), d.get()), (head.as_str(), data.as_str()));
            }
            _ => panic!("rendered from its fields"),
        }
        // A document the bytes do not settle (spaces) is parsed, to the same parts.
        let spaced = serde_json::to_vec_pretty(&observation_item(&tricky).expect("item")).expect("doc");
        let stored = StoredObs { doc: spaced, ..stored };
        match stored.entry().expect("entry") {
            ObservationEntry::Stored { head: h, data: Payload::Literal(d), .. } => {
                let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("json");
                assert_eq!((v(h.get()), v(d.get())), (v(&head), v(&data)));
            }
            _ => panic!("rendered from its fields"),
        }
    }
}
