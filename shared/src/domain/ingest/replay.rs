//! `jhe reindex`: the index rebuilt from the archived uploads (what cannot be indexed is set
//! aside with its reason), and the demo seed's observations.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::observation::Observation;
use crate::error::{Error, Result};
use crate::model::Id;
use crate::ports::BlobStore;
use crate::repo::Repo;
use crate::repo::observations::Indexed;

use super::*;

/// What a replay of the archive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReindexReport {
    pub uploads: usize,
    pub observations: usize,
    pub inserted: usize,
    pub already_present: usize,
    pub duplicates: usize,
    /// Archived entries (or whole uploads) that could not be indexed, set aside under
    /// `quarantine/` with the reason; the replay went on without them.
    pub quarantined: usize,
    /// Why, for the first of them (`{archive key}[#entry]: reason`).
    pub reasons: Vec<String>,
}

impl ReindexReport {
    fn set_aside(&mut self, what: String, reason: String) {
        self.quarantined += 1;
        if self.reasons.len() < 100 {
            self.reasons.push(format!("{what}: {reason}"));
        }
    }
}

/// Sets an archived upload, or one entry of it, aside: `quarantine/` + the archive key's path,
/// with the reason and what could not be indexed (written once: a second replay finds it there).
async fn quarantine(blobs: &dyn BlobStore, key: &str, entry: Option<u64>, reason: &str, content: Value) -> Result<()> {
    let stem = key.strip_prefix("bundles/").unwrap_or(key).trim_end_matches(".json");
    let qkey = match entry {
        Some(i) => format!("quarantine/{stem}-e{i}.json"),
        None => format!("quarantine/{stem}.json"),
    };
    let record = json!({"archive": key, "entry": entry, "reason": reason, "content": content});
    match blobs.put_new(&qkey, serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?).await {
        Ok(()) | Err(crate::ports::BlobError::Exists(_)) => Ok(()),
        Err(e) => Err(Error::Unavailable(format!("setting aside {qkey}: {e}"))),
    }
}

/// Rebuilds the observation index from the archive: every accepted entry of every archived
/// upload is derived again from the raw body and indexed under its recorded id. One archived
/// upload or entry that cannot be read or indexed never stops the replay: it is set aside under
/// `quarantine/` with the reason, counted in the report, and the rest goes on.
pub async fn reindex(repo: &Repo, blobs: &dyn BlobStore) -> Result<ReindexReport> {
    let mut report = ReindexReport::default();
    let mut lookups = Lookups::default();
    let keys = blobs.list("bundles/").await.map_err(|e| Error::Unavailable(e.to_string()))?;
    for key in keys {
        report.uploads += 1;
        let Some(bytes) = blobs.get(&key).await.map_err(|e| Error::Unavailable(e.to_string()))? else { continue };
        let parsed = serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| format!("the archived upload is not JSON: {e}"))
            .and_then(|env| {
                let body = serde_json::from_str::<Value>(env["body"].as_str().unwrap_or(""))
                    .map_err(|e| format!("its body is not JSON: {e}"))?;
                Ok((env, body))
            });
        let (env, body) = match parsed {
            Ok(x) => x,
            Err(reason) => {
                let raw = Value::String(String::from_utf8_lossy(&bytes).chars().take(100_000).collect());
                quarantine(blobs, &key, None, &reason, raw).await?;
                report.set_aside(key.clone(), reason);
                continue;
            }
        };
        let single = env["single"].as_bool().unwrap_or(false);
        let mut obs = Vec::new();
        for a in env["accepted"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let (Some(i), Some(id), Some(lu)) = (a["entry"].as_u64(), a["id"].as_i64(), a["lastUpdated"].as_i64())
            else {
                quarantine(blobs, &key, None, "an accepted entry without entry, id or lastUpdated", a.clone()).await?;
                report.set_aside(key.clone(), "an accepted entry without entry, id or lastUpdated".into());
                continue;
            };
            let r = if single { &body } else { &body["entry"][i as usize]["resource"] };
            match derive(repo, &mut lookups, r).await? {
                Ok(mut d) => {
                    d.obs.id = id;
                    d.obs.last_updated = lu;
                    d.obs.archive = key.clone();
                    obs.push((i, d.obs));
                }
                Err(f) => {
                    quarantine(blobs, &key, Some(i), f.message(), r.clone()).await?;
                    report.set_aside(format!("{key}#{i}"), f.message().to_string());
                }
            }
        }
        report.observations += obs.len();
        let list: Vec<Observation> = obs.iter().map(|(_, o)| o.clone()).collect();
        let verdicts = match repo.index_observations(&list).await {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            // One observation the store refuses fails its chunk: index them one by one to find it.
            Err(Error::Unavailable(e)) => return Err(Error::Unavailable(e)),
            Err(_) => {
                let mut each = Vec::with_capacity(list.len());
                for o in &list {
                    each.push(match repo.index_observations(std::slice::from_ref(o)).await {
                        Ok(mut v) => Ok(v.pop().unwrap_or(Indexed::AlreadyPresent)),
                        Err(Error::Unavailable(e)) => return Err(Error::Unavailable(e)),
                        Err(e) => Err(e.to_string()),
                    });
                }
                each
            }
        };
        for ((i, o), v) in obs.iter().zip(verdicts) {
            match v {
                Ok(Indexed::Inserted) => report.inserted += 1,
                Ok(Indexed::AlreadyPresent) => report.already_present += 1,
                Ok(Indexed::Duplicate(_)) => report.duplicates += 1,
                Err(reason) => {
                    let r = if single { &body } else { &body["entry"][*i as usize]["resource"] };
                    quarantine(blobs, &key, Some(*i), &reason, r.clone()).await?;
                    report.set_aside(format!("{key}#{i} (Observation/{})", o.id), reason);
                }
            }
        }
    }
    Ok(report)
}

/// Archives and indexes observations the seed builds (bypassing upload checks, which the demo's
/// own devices would not all pass), so that `reindex` covers them too.
pub async fn seed_observations(repo: &Repo, blobs: &dyn BlobStore, resources: Vec<Value>, user: Id) -> Result<usize> {
    let now = OffsetDateTime::now_utc();
    let first = repo.reserve_observation_ids(resources.len()).await?;
    let key = archive_key(now, first);
    let body = json!({"resourceType": "Bundle", "type": "batch", "entry": resources.iter().map(|r| json!({
        "resource": r, "request": {"method": "POST", "url": "Observation"}})).collect::<Vec<_>>()});
    let raw = body.to_string();
    let mut obs = Vec::new();
    let mut lookups = Lookups::default();
    for (n, r) in resources.iter().enumerate() {
        match derive(repo, &mut lookups, r).await? {
            Ok(mut d) => {
                d.obs.id = first + n as Id;
                d.obs.last_updated = ms(now);
                d.obs.archive = key.clone();
                obs.push((n, d.obs));
            }
            Err(f) => return Err(Error::Internal(format!("seed observation {n}: {}", f.message()))),
        }
    }
    let accepted: Vec<(usize, &Observation)> = obs.iter().map(|(n, o)| (*n, o)).collect();
    let env = envelope(ms(now), user, false, &raw, &accepted);
    blobs
        .put_new(&key, serde_json::to_vec(&env).map_err(|e| Error::Internal(e.to_string()))?)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let list: Vec<Observation> = obs.into_iter().map(|(_, o)| o).collect();
    repo.index_observations(&list).await?;
    Ok(list.len())
}
