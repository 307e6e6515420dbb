//! Observation ingest: each uploaded FHIR Observation is checked (structure, subject, caller,
//! device, duplicates, code, consent, Open mHealth data point), then — before answering — the raw
//! upload is archived in the blob store and the accepted observations are indexed. `reindex`
//! rebuilds the index from the archive; indexing is idempotent, so a replay stores nothing twice.
//!
//! The checks run in upstream's order (`Observation.fhir_create`, then the model's schema
//! validation), so a request refused by upstream gets upstream's answer; the checks JHE adds come
//! after all of them: identifier lengths and characters (a store key), the device's data types,
//! the study that links device, scope and consent, the attachment's content type, and the
//! `header.uuid` duplicate guard. An entry names its refusal as a [`Refusal`]; `http::fhir` maps
//! it to a status.

mod checks;
mod replay;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Caller;
use super::facts::Facts;
use super::observation::{NaturalKey, Observation};
use crate::error::{Error, Result};
use crate::fhir::{self, MAX_BUNDLE_ENTRIES};
use crate::model::Id;
use crate::ports::BlobStore;
use crate::repo::Repo;
use crate::repo::observations::Indexed;
use checks::*;
pub use checks::{Refusal, subject};
pub use replay::{ReindexReport, reindex, seed_observations};

/// The outcome of one entry of an upload.
#[derive(Debug, Clone)]
pub enum EntryOutcome {
    /// Stored: the resource as read back, and what was accepted but worth telling.
    Created {
        resource: Value,
        warnings: Vec<String>,
    },
    Failed(Refusal),
}

/// The archived form of an upload: the raw body and what was accepted from it.
fn envelope(received: i64, user: Id, single: bool, raw: &str, accepted: &[(usize, &Observation)]) -> Value {
    json!({
        "version": 1,
        "receivedAt": fhir::ts_ms(received),
        "userId": user,
        "single": single,
        "accepted": accepted.iter().map(|(i, o)| json!({"entry": i, "id": o.id, "lastUpdated": o.last_updated})).collect::<Vec<_>>(),
        "body": raw,
    })
}

fn archive_key(now: OffsetDateTime, first_id: Id) -> String {
    let r = crate::auth::crypto::random_alnum(6);
    format!(
        "bundles/{:04}/{:02}/{:02}/{:013}-{first_id}-{r}.json",
        now.year(),
        u8::from(now.month()),
        now.day(),
        ms(now)
    )
}

/// The entries kept (slot, observation) and refused (slot, why).
type Settled = (Vec<(usize, Derived)>, Vec<(usize, Refusal)>);

/// Settles the duplicate checks in the entries' order, as upstream saves them one after another:
/// a key is taken when the store holds it or an earlier accepted entry of this upload claims it.
/// An entry's identifiers (upstream's fifth step) come before its later refusal; the data point's
/// uuid (JHE's own guard) after it.
fn settle(pending: Vec<Pending>, taken: &mut impl Iterator<Item = bool>) -> Settled {
    let mut claimed: BTreeSet<NaturalKey> = BTreeSet::new();
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for p in pending {
        let in_store: Vec<bool> = p.identifiers.iter().map(|_| taken.next().unwrap_or(false)).collect();
        let uuid_key = p.outcome.as_ref().ok().and_then(|d| d.obs.uuid_key());
        let uuid_in_store = uuid_key.as_ref().map(|_| taken.next().unwrap_or(false)).unwrap_or(false);
        let dup = p.identifiers.iter().zip(&in_store).find(|(k, stored)| **stored || claimed.contains(*k));
        let verdict = match (dup, p.outcome) {
            (Some((k, _)), _) => Err(Refusal::Duplicate(k.taken_message())),
            (None, Err(f)) => Err(f),
            (None, Ok(d)) => match &uuid_key {
                Some(k) if uuid_in_store || claimed.contains(k) => Err(Refusal::Duplicate(k.taken_message())),
                _ => Ok(d),
            },
        };
        match verdict {
            Ok(d) => {
                claimed.extend(p.identifiers);
                claimed.extend(uuid_key);
                kept.push((p.slot, d));
            }
            Err(f) => refused.push((p.slot, f)),
        }
    }
    (kept, refused)
}

/// Validates, archives and indexes the resources of one upload; one outcome per resource.
pub async fn ingest(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    raw: &str,
    resources: Vec<Option<Value>>,
    single: bool,
) -> Result<Vec<EntryOutcome>> {
    let mut facts = Facts::default();
    let mut lookups = Lookups::default();
    let mut outcomes: Vec<Option<EntryOutcome>> = vec![None; resources.len()];
    let mut pending = Vec::new();
    for (slot, r) in resources.iter().enumerate() {
        let Some(r) = r else { continue };
        match check_entry(repo, &mut facts, &mut lookups, c, r).await? {
            Ok((identifiers, outcome)) => pending.push(Pending { slot, identifiers, outcome }),
            Err(f) => outcomes[slot] = Some(EntryOutcome::Failed(f)),
        }
    }
    // Natural keys already held by stored observations (one batched read for the whole upload),
    // in the order `settle` takes them.
    let keys: Vec<NaturalKey> = pending
        .iter()
        .flat_map(|p| p.identifiers.iter().cloned().chain(p.outcome.as_ref().ok().and_then(|d| d.obs.uuid_key())))
        .collect();
    let mut taken = repo.observation_keys_taken(&keys).await?.into_iter();
    let (kept, refused) = settle(pending, &mut taken);
    for (slot, f) in refused {
        outcomes[slot] = Some(EntryOutcome::Failed(f));
    }
    if !kept.is_empty() {
        let (slots, derived): (Vec<usize>, Vec<Derived>) = kept.into_iter().unzip();
        let mut obs = Vec::with_capacity(derived.len());
        let mut rest = Vec::with_capacity(derived.len());
        for d in derived {
            obs.push(d.obs);
            rest.push((d.code, d.warnings));
        }
        let now = OffsetDateTime::now_utc();
        let first = repo.reserve_observation_ids(obs.len()).await?;
        let key = archive_key(now, first);
        for (n, o) in obs.iter_mut().enumerate() {
            o.id = first + n as Id;
            o.last_updated = ms(now);
            o.archive = key.clone();
        }
        let accepted: Vec<(usize, &Observation)> = slots.iter().copied().zip(&obs).collect();
        let env = envelope(ms(now), c.id(), single, raw, &accepted);
        // The upload is durable in the archive before anything is indexed or answered.
        blobs
            .put_new(&key, serde_json::to_vec(&env).map_err(|e| Error::Internal(e.to_string()))?)
            .await
            .map_err(|e| Error::Unavailable(format!("archiving the upload failed: {e}")))?;
        let verdicts = repo.index_observations(&obs).await?;
        for (((i, o), (code, warnings)), v) in slots.into_iter().zip(&obs).zip(rest).zip(verdicts) {
            outcomes[i] = Some(match v {
                Indexed::Inserted | Indexed::AlreadyPresent => {
                    let user = facts.patient(repo, o.patient_id).await?.and_then(|f| f.user_id);
                    if !warnings.is_empty() {
                        tracing::warn!(observation = o.id, patient = o.patient_id, ?warnings, "accepted with warnings");
                    }
                    EntryOutcome::Created { resource: fhir::observation(o, &code, user), warnings }
                }
                Indexed::Duplicate(m) => EntryOutcome::Failed(Refusal::Duplicate(m)),
            });
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| EntryOutcome::Failed(Refusal::invalid("structure", "Invalid entry."))))
        .collect())
}

/// Whether an uploaded resource is stored as sent rather than ingested as an Open mHealth
/// observation (upstream's routing): a resource of another stored type, or an Observation whose
/// code has no Open mHealth coding. An Observation without any code goes to ingest, whose checks
/// say what is missing.
pub fn is_stored_as_sent(r: &Value) -> bool {
    match r["resourceType"].as_str() {
        Some("Observation") => {
            let omh = |c: &Value| c["system"] == fhir::OMH_SYSTEM;
            r["code"].is_object() && !r["code"]["coding"].as_array().is_some_and(|c| c.iter().any(omh))
        }
        Some(t) => crate::fhir::stored::is_stored_type(t),
        None => false,
    }
}

/// Parses a request body as JSON, or says why not.
pub fn parse_body(raw: &[u8]) -> std::result::Result<(String, Value), Refusal> {
    let text = std::str::from_utf8(raw).map_err(|_| Refusal::invalid("structure", "The body is not UTF-8 text."))?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Refusal::invalid("structure", format!("The body is not valid JSON: {e}")))?;
    Ok((text.to_string(), v))
}

/// The resources of a batch, and the entries refused before validation.
pub type BatchEntries = (Vec<Option<Value>>, Vec<Option<Refusal>>);

/// Takes the resources out of the Bundle (they are not copied; the Bundle is left without them).
pub fn batch_entries(bundle: &mut Value) -> std::result::Result<BatchEntries, Refusal> {
    if bundle["resourceType"] != "Bundle" {
        return Err(Refusal::invalid("not-supported", "POST /FHIR/R5/ takes a Bundle."));
    }
    match bundle["type"].as_str() {
        Some("batch") => {}
        Some(t) => {
            return Err(Refusal::invalid(
                "not-supported",
                format!("Bundle type {t:?} is not supported; send a batch Bundle."),
            ));
        }
        None => return Err(Refusal::invalid("required", "Bundle.type is required (batch).")),
    }
    let entries = match &mut bundle["entry"] {
        Value::Array(a) => a.as_mut_slice(),
        Value::Null => &mut [],
        _ => return Err(Refusal::invalid("structure", "Bundle.entry must be a list.")),
    };
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(Refusal::TooLarge(format!(
            "The Bundle has {} entries; at most {MAX_BUNDLE_ENTRIES} are accepted per request.",
            entries.len()
        )));
    }
    let mut resources = Vec::with_capacity(entries.len());
    let mut fails = Vec::with_capacity(entries.len());
    for e in entries.iter_mut() {
        let method = e["request"]["method"].as_str().unwrap_or("");
        let url = e["request"]["url"].as_str().unwrap_or("").trim_end_matches('/');
        if method != "POST" || !(url == "Observation" || crate::fhir::stored::is_stored_type(url)) {
            resources.push(None);
            fails.push(Some(Refusal::invalid(
                "not-supported",
                "Each entry must be request {method: POST, url: <type>}: Observation or a type stored as sent.",
            )));
        } else {
            resources.push(Some(e["resource"].take()));
            fails.push(None);
        }
    }
    Ok((resources, fails))
}

/// A conditional create's `If-None-Exist` (only `identifier=system|value`, percent-encoded): the
/// observation already holding that identifier, rendered, when the caller may read it; a
/// conflict when it exists and the caller may not read it; `None` when there is none.
pub async fn if_none_exist(repo: &Repo, c: &Caller, condition: &str) -> Result<Option<Value>> {
    let (system, value) = condition
        .strip_prefix("identifier=")
        .and_then(|t| t.split_once('|'))
        .filter(|(sys, val)| !sys.is_empty() && !val.is_empty() && !val.contains('&'))
        .ok_or_else(|| Error::bad("If-None-Exist supports only identifier=system|value."))?;
    let decode = |x: &str| percent_encoding::percent_decode_str(x).decode_utf8_lossy().into_owned();
    let (system, value) = (decode(system), decode(value));
    crate::model::check_identifier(&system, &value).map_err(Error::BadRequest)?;
    let Some(id) = repo.observation_by_key(&system, &value).await? else { return Ok(None) };
    match super::reads::read_observation(repo, c, id).await {
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(Error::Conflict(format!("Identifier already exists: system={system} value={value}"))),
    }
}
