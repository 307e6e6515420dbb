//! Counts of a patient's observations of one code: one record per indexed chunk (how many, and
//! how many on each UTC day of their date key), folded when they gather, summed for totals.

use std::collections::BTreeMap;

use serde_json::json;

use super::{ObsOrder, bounds, obs_pk, padded_id, updated_pk};
use crate::error::Result;
use crate::fhir::search::TimeRange;
use crate::model::Id;
use crate::ports::{Cond, Index, Item, Query, SkRange, Write};
use crate::repo::Repo;
use crate::repo::keys::pad;

pub(super) fn count_key(p: Id) -> String {
    format!("OBSCOUNT#{}", pad(p))
}
/// One indexed chunk's count of a code, named by the chunk's first observation id of that code.
/// (Stores written before these records hold one running count per code, at `pad(code)`; the
/// prefix query in `observations_count` reads both.)
pub(super) fn count_sk(code: Id, first: Id) -> String {
    format!("{}#{}", pad(code), padded_id(first))
}
pub(super) fn count_of(record: &Item) -> u64 {
    record.data["n"].as_u64().unwrap_or(0)
}
/// Milliseconds in a day: the counts by day are of UTC days of the date key.
pub(super) const DAY_MS: i64 = 86_400_000;
pub(super) fn day_of(date_key: i64) -> i64 {
    date_key.div_euclid(DAY_MS)
}
/// Observations by day (`day_of` their date key).
pub(super) type ByDay = BTreeMap<i64, u64>;
/// A count record's counts by day of the date key (`d`: `[[day, n], ...]`), or `None` for a
/// record written without them (stores written before): then only a key walk can count a window.
pub(super) fn days_of(record: &Item) -> Option<ByDay> {
    record.data.get("d")?.as_array()?.iter().map(|p| Some((p.get(0)?.as_i64()?, p.get(1)?.as_u64()?))).collect()
}
/// A count record's data: how many, and how many on each day.
pub(super) fn count_data(n: u64, days: Option<&ByDay>) -> serde_json::Value {
    match days {
        Some(d) => json!({ "n": n, "d": d.iter().collect::<Vec<_>>() }),
        None => json!({ "n": n }),
    }
}
/// How many count records of one patient and code an upload lets gather before it folds them.
pub(super) const COUNT_FOLD_AT: usize = 32;
/// The count records of one patient and code.
pub(super) fn count_query(patient: Id, code: Id) -> Query {
    Query { range: SkRange::Prefix(pad(code)), ..Query::partition(count_key(patient)) }
}

impl Repo {
    /// How many observations of one patient and code lie in the window. By date, the days the
    /// window holds whole are added up from the count records' counts by day, and only the part
    /// days at its ends are counted key by key (a 90-day window walked 25,920 keys: a first page
    /// cost about three others); a store whose records lack them is counted key by key.
    pub async fn observations_count(&self, patient: Id, code: Id, order: ObsOrder, range: TimeRange) -> Result<usize> {
        if range.is_all() {
            let records = self.query_all(count_query(patient, code)).await?;
            return Ok(records.iter().map(count_of).sum::<u64>() as usize);
        }
        // The whole days within the window: [first, end). A window without one (under two days)
        // is walked: the records would not help.
        let first = range.lo.map(|l| day_of(l.saturating_add(DAY_MS - 1)));
        let end = range.hi.map(day_of);
        if order == ObsOrder::Date && first.zip(end).is_none_or(|(f, e)| f < e) {
            let whole = |d: i64| first.is_none_or(|f| d >= f) && end.is_none_or(|e| d < e);
            let records = self.query_all(count_query(patient, code)).await?;
            if let Some(by_day) = records.iter().map(days_of).collect::<Option<Vec<_>>>() {
                let mut n: u64 = by_day.iter().flatten().filter(|(d, _)| whole(**d)).map(|(_, n)| n).sum();
                if let Some(lo) = range.lo.filter(|l| first.is_some_and(|f| *l < f * DAY_MS)) {
                    let head = TimeRange { lo: Some(lo), hi: first.map(|f| f * DAY_MS) };
                    n += self.count_keys(patient, code, order, head).await? as u64;
                }
                if let Some(hi) = range.hi.filter(|h| end.is_some_and(|e| *h > e * DAY_MS)) {
                    let tail = TimeRange { lo: end.map(|e| e * DAY_MS), hi: Some(hi) };
                    n += self.count_keys(patient, code, order, tail).await? as u64;
                }
                return Ok(n as usize);
            }
        }
        self.count_keys(patient, code, order, range).await
    }

    /// `observations_count` by walking the keys in the window.
    pub(super) async fn count_keys(&self, patient: Id, code: Id, order: ObsOrder, range: TimeRange) -> Result<usize> {
        if range.is_empty() {
            return Ok(0);
        }
        let (index, pk, prefix) = match order {
            ObsOrder::Date => (Index::Primary, obs_pk(patient), format!("{}#", pad(code))),
            ObsOrder::LastUpdated => (Index::Gsi2, updated_pk(patient, code), String::new()),
        };
        let (lo, hi) = bounds(&prefix, range, None, true);
        Ok(self.table.count(&Query { index, pk, range: SkRange::Between(lo, hi), ..Query::partition("x") }).await?)
    }

    /// When a patient's code has `COUNT_FOLD_AT` count records or more, folds them into the first
    /// of each group, atomically (the sum is kept, the others deleted, each write conditional on
    /// the version read): a concurrent fold makes it fail, and a failed fold changes nothing.
    /// Done by the upload that added a record (which may write them), so that a total reads few.
    pub(super) async fn fold_counts(&self, patient: Id, code: Id) -> Result<()> {
        // Every upload asks; a key-only count answers without reading the records.
        if self.table.count(&count_query(patient, code)).await? < COUNT_FOLD_AT {
            return Ok(());
        }
        let records = self.query_all(count_query(patient, code)).await?;
        let per_transaction = self.table.max_transact_items().max(2);
        for group in records.chunks(per_transaction).filter(|g| g.len() > 1) {
            let first = &group[0];
            // Counts by day survive a fold only if every record folded has them.
            let days = group.iter().map(days_of).try_fold(BTreeMap::new(), |mut all, d| {
                for (day, n) in d? {
                    *all.entry(day).or_insert(0) += n;
                }
                Some(all)
            });
            let n = group.iter().map(count_of).sum::<u64>();
            let mut folded = Item::new(first.pk.clone(), first.sk.clone(), count_data(n, days.as_ref()));
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
}
