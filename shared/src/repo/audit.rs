//! The audit log in the single table, in its own key range. Append-only: every write is a put
//! with an `Absent` condition; nothing here updates or deletes.
//!
//! | item | pk | sk | gsi1 |
//! |---|---|---|---|
//! | record | `AUDIT#{yyyy-mm-dd}` | `{id}` | `AUDITU#{user}` / `{id}` |
//! | record, per patient involved, as it concerns that patient (`AuditRecord::project`) | `AUDITP#{patient}` | `{id}` | |
//!
//! Ids begin with the 13-digit millisecond time, so sort keys are time order.

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
            // `query` bounds the page; the one or two more asked for here tell whether there is
            // a next page (and skip the record resumed after).
            limit: limit.max(1),
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
        let err = |e: crate::error::Error| format!("{e:?}");
        let mut main = item(format!("AUDIT#{}", day(r.recorded)), r.id.clone(), r).map_err(err)?;
        if let Some(u) = r.agent.user_id {
            main = main.with_gsi1(format!("AUDITU#{}", pad(u)), r.id.clone());
        }
        let mut tx = Tx::new();
        tx.put(main, Cond::Absent, None);
        for p in &r.patients {
            if tx.len() == self.repo.table.max_transact_items() {
                std::mem::take(&mut tx).commit(&self.repo).await.map_err(err)?;
            }
            // A patient's trail holds the record as it concerns them alone.
            tx.put(item(format!("AUDITP#{}", pad(*p)), r.id.clone(), &r.project(*p)).map_err(err)?, Cond::Absent, None);
        }
        tx.commit(&self.repo).await.map_err(err)
    }

    async fn query(&self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), String> {
        let limit = q.limit.clamp(1, 1000);
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
            let mut d = hi;
            while d >= lo - 86_400_000 && out.len() <= limit {
                let sub = AuditQuery { lo: Some(lo), hi: Some(hi), ..q.clone() };
                out.extend(self.scan(Index::Primary, format!("AUDIT#{}", day(d)), &sub, limit + 1 - out.len()).await?);
                d -= 86_400_000;
            }
            out
        };
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok((out, next))
    }
}
