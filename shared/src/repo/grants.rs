//! OAuth codes and refresh-token families, login sessions, failed attempts.

use serde_json::json;

use super::entities::*;
use super::keys::{self, A};
use super::{Repo, item, parse};
use crate::error::Result;
use crate::ports::{Cond, Item, Query};

impl Repo {
    // ---------------------------------------------------------------- OAuth grants

    pub async fn put_auth_code(&self, hash: &str, c: &AuthCode) -> Result<()> {
        self.table.put(expiring(item(keys::auth_code(hash), A, c)?, c.expires), Cond::Absent).await.map_err(Into::into)
    }

    /// Takes an authorization code: at most one caller ever gets it.
    pub async fn take_auth_code(&self, hash: &str) -> Result<Option<AuthCode>> {
        self.take(&keys::auth_code(hash)).await
    }

    /// Stores a refresh token and its place in its family.
    pub async fn put_refresh_in_family(&self, hash: &str, r: &RefreshToken) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(expiring(item(keys::refresh(hash), A, r)?, r.expires), Cond::Absent, None);
        let member = Item::new(format!("RFAM#{}", r.family), hash, json!({"expires": r.expires}));
        tx.put(expiring(member, r.expires), Cond::None, None);
        tx.commit(self).await
    }

    /// Takes a refresh token (at most one caller gets it) and leaves a tombstone under its hash,
    /// so that a second use can be told from an unknown token.
    pub async fn take_refresh(&self, hash: &str) -> Result<Option<RefreshToken>> {
        let taken: Option<RefreshToken> = self.take(&keys::refresh(hash)).await?;
        if let Some(t) = &taken {
            let family = if t.family.is_empty() { hash } else { t.family.as_str() };
            let tomb = json!({"family": family, "expires": t.expires});
            self.table.put(expiring(Item::new(format!("RUSED#{hash}"), A, tomb), t.expires), Cond::None).await?;
            self.table.delete(&crate::ports::Key::new(format!("RFAM#{family}"), hash), Cond::None).await?;
        }
        Ok(taken)
    }

    /// The family of a refresh token already used, if it is one.
    pub async fn used_refresh_family(&self, hash: &str) -> Result<Option<String>> {
        let Some(i) = self.table.get(&crate::ports::Key::new(format!("RUSED#{hash}"), A)).await? else {
            return Ok(None);
        };
        Ok(i.data["family"].as_str().map(str::to_string))
    }

    /// Deletes every live refresh token of a family; gives how many.
    pub async fn revoke_refresh_family(&self, family: &str) -> Result<usize> {
        let live = self.query_all(Query::prefix(format!("RFAM#{family}"), "")).await?;
        for i in &live {
            self.table.delete(&crate::ports::Key::new(keys::refresh(&i.sk), A), Cond::None).await?;
            self.table.delete(&crate::ports::Key::new(&i.pk, &i.sk), Cond::None).await?;
        }
        Ok(live.len())
    }

    // ---------------------------------------------------------------- login sessions

    pub async fn put_session(&self, hash: &str, s: &Session) -> Result<()> {
        self.table
            .put(expiring(item(format!("SESSION#{hash}"), A, s)?, s.expires), Cond::Absent)
            .await
            .map_err(Into::into)
    }

    pub async fn session(&self, hash: &str) -> Result<Option<Session>> {
        self.get(&format!("SESSION#{hash}"), A).await
    }

    pub async fn delete_session(&self, hash: &str) -> Result<()> {
        self.table.delete(&crate::ports::Key::new(format!("SESSION#{hash}"), A), Cond::None).await.map_err(Into::into)
    }

    // ---------------------------------------------------------------- failed attempts

    pub async fn failures(&self, key: &str) -> Result<Failures> {
        Ok(self.get(&format!("THROTTLE#{key}"), A).await?.unwrap_or_default())
    }

    /// Counts one more failure (a lost race between two failures counts one: enough to slow down).
    pub async fn add_failure(&self, key: &str, now: i64, forget_after: i64) -> Result<Failures> {
        let mut f = self.failures(key).await?;
        f.count = if now - f.last > forget_after { 1 } else { f.count.saturating_add(1) };
        f.last = now;
        self.table.put(expiring(item(format!("THROTTLE#{key}"), A, &f)?, now + forget_after), Cond::None).await?;
        Ok(f)
    }

    pub async fn clear_failures(&self, key: &str) -> Result<()> {
        self.table.delete(&crate::ports::Key::new(format!("THROTTLE#{key}"), A), Cond::None).await.map_err(Into::into)
    }

    /// Reads and deletes an item in one step: of concurrent takers, at most one gets it.
    pub(super) async fn take<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Option<T>> {
        let key = crate::ports::Key::new(pk, A);
        let Some(i) = self.table.get(&key).await? else { return Ok(None) };
        match self.table.delete(&key, Cond::Version(i.version)).await {
            Ok(()) => Ok(Some(parse(&i)?)),
            Err(crate::ports::StoreError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
