//! FHIR resources stored as sent (clinical records from an EHR, QuestionnaireResponses, Observations
//! that are not Open mHealth, ...), each under the patient's FHIR source it came through; their
//! reads and searches under the consent rule (`access::may_read_stored`); the patients' FHIR sources
//! (`sources`); the patients' consents as FHIR Consent resources (`consent`).

pub mod consent;
pub mod import;
pub mod sources;
mod write;

use serde_json::Value;

use super::Caller;
use super::facts::Facts;
use super::reads::Found;
use crate::access;
use crate::error::{Error, Result};
use crate::fhir::stored::{StoredQuery, TYPE_SCOPE_SYSTEM, page_cursor, sort_date};
use crate::model::{Id, StoredResource};
use crate::ports::BlobStore;
use crate::repo::Repo;

pub use write::{Stored, create, delete, store_seeded, update};

/// The largest body kept inside its item; a larger one goes to the blob store (an item holds at
/// most 400 KB on DynamoDB, keys and fields included).
pub const MAX_ITEM_BODY: usize = 300_000;

/// The largest resource stored (its JSON once stamped): what one page and a Lambda function's
/// answer (6 MB, escaped into its envelope) can carry, as `JHE_MAX_PAGE_BYTES`' default.
pub const MAX_RESOURCE_BYTES: usize = 4_000_000;

/// The length of a value's JSON, counted as it is written (nothing is kept).
pub fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, v).map_or(0, |()| n.0)
}

/// The body of a stored resource (from its blob when it is kept as one).
pub async fn body_of(blobs: &dyn BlobStore, r: &StoredResource) -> Result<Value> {
    let Some(key) = &r.blob else { return Ok(r.body.clone()) };
    let bytes = blobs
        .get(key)
        .await
        .map_err(|e| Error::Unavailable(format!("reading a stored resource failed: {e}")))?
        .ok_or_else(|| Error::Internal(format!("the body of {}/{} is missing", r.resource_type, r.id)))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Internal(e.to_string()))
}

/// The catalogue's scope covering a stored type, if the catalogue has one.
pub async fn type_scope(repo: &Repo, rtype: &str) -> Result<Option<Id>> {
    Ok(repo.code_by_key(TYPE_SCOPE_SYSTEM, rtype).await?.map(|c| c.id))
}

/// Whether the caller may read this patient's stored resources of a type.
async fn readable(
    repo: &Repo,
    facts: &mut Facts,
    c: &Caller,
    patient: Id,
    scope: Option<Id>,
    study: Option<Id>,
) -> Result<bool> {
    let Some(pf) = facts.patient(repo, patient).await? else { return Ok(false) };
    Ok(access::may_read_stored(c, patient, &pf.enrolled, &pf.consents, scope, study))
}

/// Reads one stored resource (404 when absent, of another type, or not readable by the caller);
/// `noted` learns whose it is before the consent rule decides.
pub async fn read(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    rtype: &str,
    id: &str,
    noted: impl FnOnce(Id),
) -> Result<Value> {
    let not_found = || Error::NotFound(format!("{rtype}/{id} not found."));
    let r = repo.stored(id).await?.filter(|r| r.resource_type == rtype).ok_or_else(not_found)?;
    noted(r.patient_id);
    let scope = type_scope(repo, rtype).await?;
    if !readable(repo, &mut Facts::default(), c, r.patient_id, scope, None).await? {
        return Err(not_found());
    }
    body_of(blobs, &r).await
}

/// The patients a search covers: the patient themself, or those a practitioner reaches through
/// the search's filters (403 when a filter is out of reach).
async fn searched_patients(repo: &Repo, c: &Caller, q: &StoredQuery) -> Result<Vec<Id>> {
    match access::patient_self(c) {
        Some(me) if q.patient.is_some_and(|p| p != me) => {
            Err(Error::Forbidden(format!("You do not have access to Patient/{}.", q.patient.unwrap_or_default())))
        }
        Some(me) => Ok(vec![me]),
        None => super::reads::candidate_patients(repo, c, q.patient, q.study, q.organization).await,
    }
}

/// A search of stored resources of a type (under one FHIR source, or all): every match the caller
/// may read, newest first unless sorted otherwise; pages by offset, each at most `max_bytes` of
/// resources (one at least). Bodies kept as blobs are fetched only when a parameter or the sort
/// reads them, or for the page.
#[allow(clippy::too_many_arguments)]
pub async fn search(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    rtype: &str,
    source: Option<Id>,
    q: &StoredQuery,
    max_bytes: usize,
) -> Result<Found> {
    let patients = searched_patients(repo, c, q).await?;
    let scope = type_scope(repo, rtype).await?;
    let mut facts = Facts::default();
    facts.preload(repo, &patients).await?;
    let reads_body = q.sort_by_date || !q.conditions.is_empty();
    let mut hits: Vec<(Option<i64>, StoredResource)> = Vec::new();
    for p in patients {
        if !readable(repo, &mut facts, c, p, scope, q.study).await? {
            continue;
        }
        for mut r in repo.patient_resources(p, Some(rtype)).await? {
            let lu = (r.last_updated.unix_timestamp_nanos() / 1_000_000) as i64;
            if source.is_some_and(|s| s != r.source_id)
                || q.ids.as_ref().is_some_and(|ids| !ids.contains(&r.id))
                || !q.last_updated.contains(lu)
            {
                continue;
            }
            if reads_body && r.blob.is_some() {
                r.body = body_of(blobs, &r).await?;
                r.blob = None;
            }
            if q.conditions.iter().all(|cond| cond.matches(&r.body)) {
                hits.push((if q.sort_by_date { sort_date(rtype, &r.body) } else { Some(lu) }, r));
            }
        }
    }
    // Undated last whichever the direction; the id breaks ties.
    hits.sort_by(|a, b| {
        let by_key = match (a.0, b.0) {
            (Some(x), Some(y)) if q.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_key.then_with(|| a.1.id.cmp(&b.1.id))
    });
    let (found, total) = (hits.len(), q.total.unwrap_or(hits.len()));
    if q.summary_count {
        return Ok(Found { resources: vec![], total: found, next: None });
    }
    let (mut resources, mut bytes) = (Vec::new(), 0);
    for (_, r) in hits.into_iter().skip(q.offset).take(q.count) {
        let body = if r.blob.is_some() { body_of(blobs, &r).await? } else { r.body };
        let size = json_len(&body);
        if !resources.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        resources.push(body);
    }
    let end = q.offset + resources.len();
    let next = (found > end).then(|| page_cursor(end, total));
    Ok(Found { resources, total, next })
}

/// The patient a stored resource's body names in the JHE patient-id extension.
pub fn patient_of(body: &Value) -> Option<Id> {
    body["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == crate::fhir::stored::PATIENT_ID_EXT)
        .and_then(|e| e["valueInteger"].as_i64())
}
