//! The built-in issuer's login sessions, and the brake on repeated failures.
//!
//! A session lives in the store (`SESSION#{hash of its id}`); the browser holds its id in a signed
//! cookie. Logging out deletes it, so a copied cookie is refused afterwards.
//!
//! Failures (a wrong password, a wrong API-key secret or grant) are counted per account and per
//! address (`THROTTLE#...`). After `FREE_FAILURES` of them, each further attempt waits twice as long
//! as the last (capped at `MAX_LOCKOUT_S`): the caller is answered 429 with `Retry-After` until then,
//! and a success clears the account's count. A real user is slowed, never locked out for good:
//! counts are forgotten a day after the last failure.
//!
//! Must not depend on: the web framework, SDKs.

use super::crypto::{Signer, random_alnum, sha256_b64url};
use crate::error::Result;
use crate::repo::Repo;
use crate::repo::{Failures, Session};

/// Failures that cost nothing.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait, in seconds.
pub const MAX_LOCKOUT_S: i64 = 15 * 60;
/// A count is forgotten this long after its last failure, in seconds.
const FORGET_AFTER_S: i64 = 24 * 3600;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Opens a session for `user` until `expires` (s since the epoch); gives the cookie's value.
pub async fn open(repo: &Repo, signer: &Signer, user: crate::model::Id, expires: i64) -> Result<String> {
    let sid = random_alnum(32);
    repo.put_session(&sha256_b64url(sid.as_bytes()), &Session { user_id: user, expires }).await?;
    Ok(signer.sign(&format!("sid:{sid}")))
}

/// The session's id in a cookie value, if the signature is this server's.
fn sid<'a>(signer: &Signer, cookie: &'a str) -> Option<&'a str> {
    signer.verify(cookie)?.strip_prefix("sid:").filter(|s| !s.is_empty())
}

/// The user of a live session.
pub async fn user(repo: &Repo, signer: &Signer, cookie: &str) -> Result<Option<crate::model::Id>> {
    let Some(sid) = sid(signer, cookie) else { return Ok(None) };
    Ok(repo.session(&sha256_b64url(sid.as_bytes())).await?.filter(|s| s.expires >= now()).map(|s| s.user_id))
}

/// Ends the session a cookie names (nothing to do if it names none).
pub async fn close(repo: &Repo, signer: &Signer, cookie: &str) -> Result<()> {
    match sid(signer, cookie) {
        Some(sid) => repo.delete_session(&sha256_b64url(sid.as_bytes())).await,
        None => Ok(()),
    }
}

/// How long to wait, in seconds, after `failures` failures in a row (0: no wait).
pub fn lockout_secs(failures: u32) -> i64 {
    match failures.checked_sub(FREE_FAILURES) {
        None | Some(0) => 0,
        Some(n) => 1_i64.checked_shl(n.min(30)).unwrap_or(MAX_LOCKOUT_S).min(MAX_LOCKOUT_S),
    }
}

/// The seconds left to wait before `f`'s holder may try again.
fn wait_left(f: &Failures, at: i64) -> i64 {
    if at - f.last > FORGET_AFTER_S { 0 } else { (f.last + lockout_secs(f.count) - at).max(0) }
}

/// The counting keys of an attempt: the account (an email, an API key's client id) and the
/// address it came from.
pub fn keys(account: &str, address: Option<std::net::IpAddr>) -> Vec<String> {
    let account: String = account.trim().to_lowercase().chars().take(256).collect();
    let mut k = vec![format!("acct#{account}")];
    k.extend(address.map(|a| format!("addr#{a}")));
    k
}

/// Seconds to wait before trying again, if any key is still held back.
pub async fn held_back(repo: &Repo, keys: &[String]) -> Result<Option<i64>> {
    let at = now();
    let mut wait = 0;
    for k in keys {
        wait = wait.max(wait_left(&repo.failures(k).await?, at));
    }
    Ok((wait > 0).then_some(wait))
}

/// Counts a failed attempt against every key.
pub async fn failed(repo: &Repo, keys: &[String]) -> Result<()> {
    let at = now();
    for k in keys {
        repo.add_failure(k, at, FORGET_AFTER_S).await?;
    }
    Ok(())
}

/// A success clears the account's count (the address keeps its own).
pub async fn succeeded(repo: &Repo, keys: &[String]) -> Result<()> {
    match keys.first() {
        Some(account) => repo.clear_failures(account).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_stop_growing() {
        let waits: Vec<i64> = (0..=16).map(lockout_secs).collect();
        assert_eq!(&waits[..=5], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(&waits[6..=10], &[2, 4, 8, 16, 32]);
        assert_eq!(waits[15], 900, "capped at 15 minutes");
        assert_eq!(lockout_secs(u32::MAX), MAX_LOCKOUT_S);
        let f = Failures { count: 7, last: 1_000 };
        assert_eq!(wait_left(&f, 1_001), 3);
        assert_eq!(wait_left(&f, 1_010), 0);
        assert_eq!(wait_left(&Failures { count: 40, last: 1_000 }, 1_000 + FORGET_AFTER_S + 1), 0, "forgotten");
    }

    #[test]
    fn attempts_count_against_the_account_and_the_address() {
        let ip = "203.0.113.9".parse().ok();
        assert_eq!(keys(" Mary@Example.com ", ip), ["acct#mary@example.com", "addr#203.0.113.9"]);
        assert_eq!(keys("k", None), ["acct#k"]);
        assert_eq!(keys(&"x".repeat(10_000), None)[0].len(), 5 + 256, "a key is bounded");
    }
}
