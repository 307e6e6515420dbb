//! The audit log in the single table, in its own key range. Append-only: every write is a put
//! with an `Absent` condition; nothing here updates or deletes.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | record | `AUDIT#{yyyy-mm-dd}#{shard}` (`AUDIT#{yyyy-mm-dd}` before shards) | `{id}` | `AUDITU#{user}` / `{id}` |
//! | record, per patient involved, as it concerns that patient (`AuditRecord::project`) | `AUDITP#{patient}` | `{id}` | |
//!
//! Ids begin with the 13-digit millisecond time, so sort keys are time order. A day's records are
//! spread over `AUDIT_SHARDS` partitions by a hash of the id (one partition takes about 1,000
//! writes a second), and read back by querying each and merging. A record naming many patients
//! writes its per-patient items in several transactions at once, not one after another.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::keys::pad;
use super::{Repo, Tx, item, parse};
use crate::domain::audit::AuditRecord;
use crate::ports::{AuditLog, AuditQuery, Cond, Index, Query, SkRange};

/// The `AuditLog` port on a `Table`.
#[derive(Clone)]
pub struct TableAudit {
    pub repo: Repo,
}

fn day(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Partitions a day's records are spread over.
pub const AUDIT_SHARDS: u64 = 8;

const DAY: i64 = 86_400_000;

/// Days one query of every record (by day, not by patient or agent) looks at: each day is
/// `AUDIT_SHARDS` + 1 partitions; past it the answer says where to go on from.
const DAYS_PER_QUERY: usize = 7;

/// Transactions of one record's items in flight at once.
const CONCURRENT_COMMITS: usize = 8;

/// The shard of a record: the high half of FNV-1a of its id (its low bits mix poorly).
fn shard(id: &str) -> u64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h >> 32) % AUDIT_SHARDS
}

/// The partitions holding a day's records: each shard, and the one of records written before shards.
fn day_partitions(day: &str) -> Vec<String> {
    (0..AUDIT_SHARDS).map(|n| format!("AUDIT#{day}#{n}")).chain([format!("AUDIT#{day}")]).collect()
}

fn bound(ms: i64) -> String {
    format!("{:013}", ms.max(0))
}

impl TableAudit {
    async fn scan(&self, index: Index, pk: String, q: &AuditQuery, limit: usize) -> Result<Vec<AuditRecord>, String> {
        let lo = q.lo.map(bound).unwrap_or_else(|| "0".into());
        let mut hi = q.hi.map(|h| bound(h - 1) + "~").unwrap_or_else(|| "~".into());
        let mut limit = limit;
        if let Some(a) = &q.after
            && a.as_str() < hi.as_str()
        {
            // Resume at the last record returned (inclusive bound; it is dropped below).
            hi = a.clone();
            limit += 1;
        }
        if lo > hi {
            return Ok(vec![]);
        }
        let query = Query {
            index,
            pk,
            range: SkRange::Between(lo, hi),
            forward: false,
            limit: limit.clamp(1, 1000),
            cursor: None,
        };
        let page = self.repo.table.query(&query).await.map_err(|e| e.to_string())?;
        let mut out: Vec<AuditRecord> = page.items.iter().filter_map(|i| parse(i).ok()).collect();
        if let Some(a) = &q.after {
            out.retain(|r| r.id < *a);
        }
        Ok(out)
    }
}

#[async_trait]
impl AuditLog for TableAudit {
    async fn append(&self, r: &AuditRecord) -> Result<(), String> {
        use futures_util::stream::{StreamExt, TryStreamExt};
        let err = |e: crate::error::Error| format!("{e:?}");
        let mut main = item(format!("AUDIT#{}#{}", day(r.recorded), shard(&r.id)), r.id.clone(), r).map_err(err)?;
        if let Some(u) = r.agent.user_id {
            main = main.with_gsi1(format!("AUDITU#{}", pad(u)), r.id.clone());
        }
        let mut txs = vec![Tx::new()];
        txs[0].put(main, Cond::Absent, None);
        for p in &r.patients {
            if txs.last().is_some_and(|t| t.len() == self.repo.table.max_transact_items()) {
                txs.push(Tx::new());
            }
            // A patient's trail holds the record as it concerns them alone.
            let trail = item(format!("AUDITP#{}", pad(*p)), r.id.clone(), &r.project(*p)).map_err(err)?;
            if let Some(t) = txs.last_mut() {
                t.put(trail, Cond::Absent, None);
            }
        }
        futures_util::stream::iter(txs.into_iter().map(|tx| tx.commit(&self.repo)))
            .buffer_unordered(CONCURRENT_COMMITS)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn query(&self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), String> {
        // At most 998: the page, one more to tell whether there is a next page, and the record
        // resumed after stay within the 1,000 items a store query returns.
        let limit = q.limit.clamp(1, 998);
        let mut boundary = None;
        let mut out = if let Some(p) = q.patient {
            self.scan(Index::Primary, format!("AUDITP#{}", pad(p)), q, limit + 1).await?
        } else if let Some(a) = q.agent {
            self.scan(Index::Gsi1, format!("AUDITU#{}", pad(a)), q, limit + 1).await?
        } else {
            // By day, newest first, over the window (default: the last 30 days).
            let now = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            let hi = q.hi.unwrap_or(now + 1);
            let lo = q.lo.unwrap_or(hi - 30 * 86_400_000).max(hi - 366 * 86_400_000);
            let mut out = Vec::new();
            // Resume on the day of the record resumed after, not at the window's end.
            let resumed = q.after.as_deref().and_then(|a| a.get(..13)).and_then(|ms| ms.parse::<i64>().ok());
            let mut d = resumed.map_or(hi, |a| a.min(hi));
            let mut days = 0;
            while d >= lo - DAY && out.len() <= limit {
                if days == DAYS_PER_QUERY {
                    // Enough partitions for one query: the caller goes on from the start of the
                    // last day looked at (every id of an older day sorts below it).
                    boundary = Some(format!("{:013}", d - d.rem_euclid(DAY) + DAY));
                    break;
                }
                days += 1;
                let sub = AuditQuery { lo: Some(lo), hi: Some(hi), ..q.clone() };
                let want = limit + 1 - out.len();
                // Every partition of the day at once, merged newest first.
                let parts = futures_util::future::join_all(
                    day_partitions(&day(d)).into_iter().map(|pk| self.scan(Index::Primary, pk, &sub, want)),
                )
                .await;
                let mut of_day = Vec::new();
                for part in parts {
                    of_day.extend(part?);
                }
                of_day.sort_by(|a, b| b.id.cmp(&a.id));
                of_day.truncate(want);
                out.extend(of_day);
                d -= DAY;
            }
            out
        };
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|r| r.id.clone())
        } else {
            boundary
        };
        Ok((out, next))
    }
}
