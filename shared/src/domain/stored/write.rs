//! Writes of stored resources: create (an upsert on the source's own id), update (PUT replaces,
//! PATCH merges top-level elements), delete. A write names its FHIR source by the
//! `X-JHE-FHIR-Source-ID` header (authoritative) or the body's `meta.source`; the body is stamped
//! (`fhir::stored::stamp`) and then validated as R5 before anything is stored.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{MAX_ITEM_BODY, body_of};
use crate::access;
use crate::domain::Caller;
use crate::domain::facts::Facts;
use crate::domain::ingest::Refusal;
use crate::error::{Error, Result};
use crate::fhir::stored::{self as st, SOURCE_BASE};
use crate::model::{FhirSource, Id, StoredResource};
use crate::ports::BlobStore;
use crate::repo::Repo;

/// What a write stored: the resource as stored, and whose it is.
#[derive(Debug, Clone)]
pub struct Stored {
    pub resource: Value,
    pub patient: Id,
}

type Outcome = std::result::Result<Stored, Refusal>;

/// Whether the caller may write this patient's resources of a type (`access::may_write_stored`).
async fn may_write(repo: &Repo, c: &Caller, patient: Id, rtype: &str) -> Result<bool> {
    let Some(pf) = Facts::default().patient(repo, patient).await? else { return Ok(false) };
    let scope = super::type_scope(repo, rtype).await?;
    Ok(access::may_write_stored(c, patient, &pf.orgs, &pf.enrolled, &pf.consents, scope))
}

/// The FHIR source a write names (the header, else `meta.source`, else `fallback`): it exists.
async fn named_source(
    repo: &Repo,
    header: Option<&str>,
    body: &Value,
    fallback: Option<Id>,
) -> Result<std::result::Result<FhirSource, Refusal>> {
    let named = match header.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => Some(h.to_string()),
        None => match body["meta"]["source"].as_str() {
            Some(uri) => match st::parse_source_uri(uri) {
                Some(id) => Some(id.to_string()),
                None if fallback.is_some() => None,
                None => {
                    return Ok(Err(Refusal::invalid(
                        "required",
                        format!("meta.source {uri:?} is not a FHIR source of this server ({SOURCE_BASE}/<id>)."),
                    )));
                }
            },
            None => None,
        },
    };
    let id = match (named, fallback) {
        (Some(n), _) => match n.parse::<Id>() {
            Ok(id) => id,
            Err(_) => return Ok(Err(Refusal::invalid("value", format!("FHIR source {n:?} is not a FHIR source id.")))),
        },
        (None, Some(f)) => f,
        (None, None) => {
            return Ok(Err(Refusal::invalid(
                "required",
                format!(
                    "A FHIR source is required to store this resource: send the X-JHE-FHIR-Source-ID header or set \
                     meta.source to {SOURCE_BASE}/<id>."
                ),
            )));
        }
    };
    match repo.fhir_source(id).await? {
        Some(source) => Ok(Ok(source)),
        None => Ok(Err(Refusal::invalid("not-found", format!("FHIR source {id} does not exist.")))),
    }
}

/// Checks the body's type, stamps it for `id` under `source`, validates it; the stored record.
async fn prepare(
    repo: &Repo,
    rtype: &str,
    mut body: Value,
    id: &str,
    source: &FhirSource,
    upstream: Option<String>,
) -> Result<std::result::Result<StoredResource, Refusal>> {
    if body["resourceType"] != rtype {
        return Ok(Err(Refusal::invalid(
            "structure",
            format!("The body must be a {rtype} resource (resourceType {rtype})."),
        )));
    }
    let patient = repo.patient(source.patient_id).await?.ok_or_else(Error::not_found)?;
    let name: Vec<&str> =
        [&patient.name_given, &patient.name_family].into_iter().flatten().map(String::as_str).collect();
    let now = OffsetDateTime::now_utc();
    st::stamp(&mut body, id, source.id, patient.id, &name.join(" "), &crate::domain::views::ts(now));
    let problems = crate::fhir::r5::validate(&body);
    if !problems.is_empty() {
        let message = format!("The {rtype} is not valid FHIR R5: {}", problems.join("; "));
        return Ok(Err(Refusal::NotValid { message, problems }));
    }
    let size = super::json_len(&body);
    if size > super::MAX_RESOURCE_BYTES {
        return Ok(Err(Refusal::TooLarge(format!(
            "The {rtype} is {size} bytes; resources of at most {} bytes are stored.",
            super::MAX_RESOURCE_BYTES
        ))));
    }
    Ok(Ok(StoredResource {
        id: id.to_string(),
        resource_type: rtype.to_string(),
        source_id: source.id,
        patient_id: source.patient_id,
        upstream_id: upstream,
        last_updated: now,
        body,
        blob: None,
    }))
}

/// Moves a body too large for an item into the blob store.
async fn spill(blobs: &dyn BlobStore, r: &mut StoredResource) -> Result<()> {
    if super::json_len(&r.body) <= MAX_ITEM_BODY {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&r.body).map_err(|e| Error::Internal(e.to_string()))?;
    let key = format!("fhir-resources/{}/{}-{}.json", r.patient_id, r.id, crate::auth::crypto::random_alnum(8));
    blobs.put_new(&key, bytes).await.map_err(|e| Error::Unavailable(format!("storing the resource failed: {e}")))?;
    r.blob = Some(key);
    r.body = Value::Null;
    Ok(())
}

/// The longest id FHIR allows.
const FHIR_ID_MAX: usize = 64;

/// The upstream id of a new body, and the body with an id too long for FHIR moved into an
/// identifier (system: the source's base URL, or its URI).
fn take_upstream_id(body: &mut Value, source: &FhirSource) -> Option<String> {
    let id = body.get("id")?.as_str()?.to_string();
    if id.len() > FHIR_ID_MAX {
        let system =
            if source.fhir_base_url.is_empty() { st::source_uri(source.id) } else { source.fhir_base_url.clone() };
        let mut ids = body["identifier"].as_array().cloned().unwrap_or_default();
        ids.push(json!({"system": system, "value": id}));
        body["identifier"] = Value::Array(ids);
    }
    Some(id).filter(|i| !i.is_empty())
}

/// Creates a resource, or refreshes the one stored earlier from the same source with the same id.
pub async fn create(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    rtype: &str,
    mut body: Value,
    header: Option<&str>,
) -> Result<Outcome> {
    let source = match named_source(repo, header, &body, None).await? {
        Ok(s) => s,
        Err(f) => return Ok(Err(f)),
    };
    if !may_write(repo, c, source.patient_id, rtype).await? {
        return Ok(Err(Refusal::Forbidden(format!(
            "You may not store {rtype} resources under FHIR source {}: only its patient, or a practitioner who \
             manages them in a study to which they consented to share {rtype}.",
            source.id
        ))));
    }
    let upstream = take_upstream_id(&mut body, &source);
    for _ in 0..2 {
        let existing = match &upstream {
            Some(u) => match repo.stored_by_upstream(source.id, rtype, u).await? {
                Some(id) => repo.stored(&id).await?,
                None => None,
            },
            None => None,
        };
        let id = existing.as_ref().map_or_else(crate::auth::crypto::uuid4, |e| e.id.clone());
        let mut r = match prepare(repo, rtype, body.clone(), &id, &source, upstream.clone()).await? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        let resource = r.body.clone();
        spill(blobs, &mut r).await?;
        match repo.put_stored(&r, existing.as_ref()).await {
            Ok(()) => {
                tracing::info!(resource = %format!("{rtype}/{id}"), patient = r.patient_id, source = source.id, "fhir resource stored");
                return Ok(Ok(Stored { resource, patient: r.patient_id }));
            }
            // Another request stored the same upstream record first: refresh that one.
            Err(Error::Conflict(_)) if existing.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict("The resource was changed by another request; try again.".into()))
}

/// Updates a stored resource: `partial` merges the body's top-level elements into it (PATCH),
/// else the body replaces it (PUT). The source defaults to the resource's own.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    rtype: &str,
    id: &str,
    body: Value,
    header: Option<&str>,
    partial: bool,
) -> Result<Outcome> {
    let not_found = || Refusal::NotFound(format!("{rtype}/{id} not found."));
    let Some(old) = repo.stored(id).await?.filter(|r| r.resource_type == rtype) else { return Ok(Err(not_found())) };
    if !may_write(repo, c, old.patient_id, rtype).await? {
        return Ok(Err(not_found()));
    }
    let source = match named_source(repo, header, &body, Some(old.source_id)).await? {
        Ok(s) if s.patient_id == old.patient_id => s,
        Ok(s) => {
            return Ok(Err(Refusal::invalid(
                "business-rule",
                format!("FHIR source {} belongs to another patient than {rtype}/{id}.", s.id),
            )));
        }
        Err(f) => return Ok(Err(f)),
    };
    let mut merged = if partial { body_of(blobs, &old).await? } else { json!({"resourceType": rtype}) };
    for (k, v) in body.as_object().into_iter().flatten() {
        merged[k] = v.clone();
    }
    let mut r = match prepare(repo, rtype, merged, id, &source, old.upstream_id.clone()).await? {
        Ok(r) => r,
        Err(f) => return Ok(Err(f)),
    };
    let resource = r.body.clone();
    spill(blobs, &mut r).await?;
    repo.put_stored(&r, Some(&old)).await?;
    Ok(Ok(Stored { resource, patient: r.patient_id }))
}

/// Deletes a stored resource (404 when absent or not the caller's to delete); gives its patient.
pub async fn delete(repo: &Repo, c: &Caller, rtype: &str, id: &str) -> Result<Id> {
    let not_found = || Error::NotFound(format!("{rtype}/{id} not found."));
    let r = repo.stored(id).await?.filter(|r| r.resource_type == rtype).ok_or_else(not_found)?;
    if !may_write(repo, c, r.patient_id, rtype).await? {
        return Err(not_found());
    }
    repo.delete_stored(&r).await?;
    Ok(r.patient_id)
}

/// Stores a resource under a source without a caller (the demo data): stamped and validated as
/// any other.
pub async fn store_seeded(repo: &Repo, source: &FhirSource, rtype: &str, upstream: &str, body: Value) -> Result<()> {
    let id = crate::auth::crypto::uuid4();
    let r = prepare(repo, rtype, body, &id, source, Some(upstream.to_string()))
        .await?
        .map_err(|f| Error::Internal(format!("seeded {rtype} {upstream} is not valid: {}", f.message())))?;
    repo.put_stored(&r, None).await
}
