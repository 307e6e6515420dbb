//! FHIR resources stored as sent (create, read, update, delete, search), the Consent resource,
//! R4 import, and the patients' FHIR sources (`/api/v1/fhir_sources`). Each handler resolves the
//! caller, calls one domain function and shapes the answer.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::admin::{id, no_content};
use super::audit::{Slot, note};
use super::error::ApiResult;
use super::extract::{JsonBody, Query, ReqUrl};
use super::fhir::{
    FhirError, FhirResult, caller, fhir_response, note_results, refusal_response, refusal_status, search_links,
    status_line, upload,
};
use crate::domain::Caller;
use crate::domain::ingest::Refusal;
use crate::domain::stored::{self, Stored, consent, import, sources};
use crate::error::Error;
use crate::fhir;
use crate::fhir::stored::{Target, is_stored_id, is_stored_type, parse_query};

/// The header naming the FHIR source of a write.
pub const SOURCE_HEADER: &str = "x-jhe-fhir-source-id";

fn source_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(SOURCE_HEADER).and_then(|v| v.to_str().ok())
}

fn note_written(slot: &Slot, rtype: &str, w: &Stored) {
    note(slot, |n| {
        n.resource_type = Some(rtype.to_string());
        n.patients.insert(w.patient);
        n.ids.push(w.resource["id"].as_str().unwrap_or("").to_string());
    });
}

/// The answer to a write: the stored resource with its status and `Location`, or the refusal.
fn written(url: &ReqUrl, rtype: &str, status: StatusCode, w: Result<Stored, Refusal>) -> FhirResult {
    let w = match w {
        Ok(w) => w,
        Err(f) => return Ok(refusal_response(&f)),
    };
    let id = w.resource["id"].as_str().unwrap_or("").to_string();
    let mut r = fhir_response(status, w.resource);
    if let Ok(h) = HeaderValue::from_str(&format!("{}/FHIR/R5/{rtype}/{id}", url.origin)) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

/// Creates a resource stored as sent (any stored type; an Observation that is not Open mHealth).
pub(super) async fn create_stored(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    headers: &HeaderMap,
    url: &ReqUrl,
    rtype: &str,
    body: Value,
) -> FhirResult {
    let w = stored::create(&s.repo, &*s.blobs, c, rtype, body, source_header(headers)).await?;
    if let Ok(w) = &w {
        note_written(slot, rtype, w);
    }
    written(url, rtype, StatusCode::CREATED, w)
}

pub(super) async fn create(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path(rtype): Path<String>,
    url: ReqUrl,
    body: Body,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    if !is_stored_type(&rtype) {
        return Err(FhirError(Error::NotFound(format!("Unsupported FHIR resource type: {rtype}."))));
    }
    let (_, resource) = match upload(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    create_stored(&s, &c, &slot, &headers, &url, &rtype, resource).await
}

/// PUT (replaces) and PATCH (merges top-level elements) of a stored resource; a JHE record
/// (numeric id) is not changed here: 405.
pub(super) async fn change(
    State(s): State<AppState>,
    slot: Slot,
    method: Method,
    headers: HeaderMap,
    Path((rtype, id)): Path<(String, String)>,
    url: ReqUrl,
    body: Body,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    refuse_records(&rtype, &id)?;
    let (_, resource) = match upload(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let partial = method == Method::PATCH;
    let w = stored::update(&s.repo, &*s.blobs, &c, &rtype, &id, resource, source_header(&headers), partial).await?;
    if let Ok(w) = &w {
        note_written(&slot, &rtype, w);
    }
    written(&url, &rtype, StatusCode::OK, w)
}

fn refuse_records(rtype: &str, id: &str) -> Result<(), FhirError> {
    if is_stored_type(rtype) && is_stored_id(id) {
        return Ok(());
    }
    Err(FhirError(Error::MethodNotAllowed(format!(
        "{rtype} resources of JHE's own records cannot be updated or deleted here."
    ))))
}

pub(super) async fn delete(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path((rtype, id)): Path<(String, String)>,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    refuse_records(&rtype, &id)?;
    note(&slot, |n| (n.resource_type, n.ids) = (Some(rtype.clone()), vec![id.clone()]));
    let patient = stored::delete(&s.repo, &c, &rtype, &id).await?;
    note(&slot, |n| {
        n.patients.insert(patient);
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A search of stored resources, or of nothing (an empty searchset) when `_source` says so.
pub(super) async fn search(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    rtype: &str,
    url: &ReqUrl,
    params: &[(String, String)],
    target: Target,
) -> FhirResult {
    let q = parse_query(rtype, params).map_err(|m| FhirError(Error::BadRequest(m)))?;
    note(slot, |n| n.patients.extend(q.patient));
    let found = match target {
        Target::Stored(source) => {
            stored::search(&s.repo, &*s.blobs, c, rtype, source, &q, s.settings.max_page_bytes).await?
        }
        _ => crate::domain::reads::Found { resources: vec![], total: 0, next: None },
    };
    note_results(s, c, slot, rtype, &found.resources, Some(found.total)).await?;
    let links = search_links(url, &found.next);
    let base = format!("{}/FHIR/R5", url.origin);
    Ok(fhir_response(StatusCode::OK, fhir::searchset(&base, found.resources, Some(found.total), &links)))
}

/// A read of a stored resource; whose it is is recorded even when the answer is a refusal.
pub(super) async fn read(s: &AppState, c: &Caller, slot: &Slot, rtype: &str, id: &str) -> FhirResult {
    note(slot, |n| (n.resource_type, n.ids) = (Some(rtype.to_string()), vec![id.to_string()]));
    let noted = |p| {
        note(slot, |n| {
            n.patients.insert(p);
        })
    };
    let v = stored::read(&s.repo, &*s.blobs, c, rtype, id, noted).await?;
    note_results(s, c, slot, rtype, std::slice::from_ref(&v), None).await?;
    Ok(fhir_response(StatusCode::OK, v))
}

/// A Consent search: the patient's consents, one per study.
pub(super) async fn consent_search(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    url: &ReqUrl,
    params: &[(String, String)],
) -> FhirResult {
    let q = consent::parse_query(params).map_err(|m| FhirError(Error::BadRequest(m)))?;
    note(slot, |n| (n.resource_type, n.patients) = (Some("Consent".into()), q.patient.into_iter().collect()));
    let found = consent::search(&s.repo, c, &q).await?;
    note(slot, |n| {
        n.count = Some(found.len());
        n.patients.extend(
            found
                .iter()
                .filter_map(|r| r["subject"]["reference"].as_str()?.strip_prefix("Patient/")?.parse::<i64>().ok()),
        );
    });
    let (base, links) = (format!("{}/FHIR/R5", url.origin), search_links(url, &None));
    let total = found.len();
    Ok(fhir_response(StatusCode::OK, fhir::searchset(&base, found, Some(total), &links)))
}

pub(super) async fn consent_read(s: &AppState, c: &Caller, slot: &Slot, id: &str) -> FhirResult {
    note(slot, |n| (n.resource_type, n.ids) = (Some("Consent".into()), vec![id.to_string()]));
    let (patient, v) = consent::read(&s.repo, c, id).await?;
    note(slot, |n| {
        n.patients.insert(patient);
    });
    Ok(fhir_response(StatusCode::OK, v))
}

/// Takes the entries stored as sent out of a batch's resources: (the rest, for ingest; the
/// slots and resources taken).
pub(super) fn split_batch(mut resources: Vec<Option<Value>>) -> (Vec<Option<Value>>, Vec<(usize, Value)>) {
    let mut taken = Vec::new();
    for (i, slot) in resources.iter_mut().enumerate() {
        if slot.as_ref().is_some_and(crate::domain::ingest::is_stored_as_sent) {
            taken.extend(slot.take().map(|r| (i, r)));
        }
    }
    (resources, taken)
}

/// Stores a batch's entries stored as sent, each judged on its own, into their slots of
/// `outcomes`; gives the patients they were stored for.
pub(super) async fn store_batch(
    s: &AppState,
    c: &Caller,
    headers: &HeaderMap,
    entries: Vec<(usize, Value)>,
    outcomes: &mut [crate::domain::ingest::EntryOutcome],
) -> Result<Vec<i64>, FhirError> {
    use crate::domain::ingest::EntryOutcome;
    let mut patients = Vec::new();
    for (i, r) in entries {
        let rtype = r["resourceType"].as_str().unwrap_or("").to_string();
        outcomes[i] = match stored::create(&s.repo, &*s.blobs, c, &rtype, r, source_header(headers)).await? {
            Ok(w) => {
                patients.push(w.patient);
                EntryOutcome::Created { resource: w.resource, warnings: vec![] }
            }
            Err(f) => EntryOutcome::Failed(f),
        };
    }
    Ok(patients)
}

// ---------------------------------------------------------------- R4 import

/// `POST /fhir-import/R4` (a Bundle) and `/fhir-import/R4/{rtype}` (one resource): a
/// batch-response Bundle, one entry per resource with its OperationOutcome.
async fn import(s: AppState, slot: Slot, headers: HeaderMap, rtype: Option<String>, body: Body) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let (_, v) = match upload(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let resources: Vec<Value> = match (&rtype, v["resourceType"].as_str()) {
        (Some(_), _) => vec![v],
        (None, Some("Bundle")) => v["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()).collect(),
        (None, _) => return Err(FhirError(Error::bad("POST /fhir-import/R4 takes a Bundle of R4 resources."))),
    };
    if resources.len() > fhir::MAX_BUNDLE_ENTRIES {
        return Err(FhirError(Error::bad(format!(
            "At most {} entries are imported at once.",
            fhir::MAX_BUNDLE_ENTRIES
        ))));
    }
    let mut entries = Vec::new();
    for r in &resources {
        let i = import::import_one(&s.repo, &*s.blobs, &c, r, rtype.as_deref(), source_header(&headers)).await?;
        let (status, resource) = match i.stored {
            Ok(w) => {
                note_written(&slot, rtype.as_deref().unwrap_or("Bundle"), &w);
                (StatusCode::CREATED, Some(w.resource))
            }
            Err(f) => (refusal_status(&f), None),
        };
        let response = serde_json::json!({"status": status_line(status), "outcome": i.outcome});
        entries.push(serde_json::json!({"response": response, "resource": resource}));
    }
    note(&slot, |n| n.resource_type = Some(rtype.clone().unwrap_or_else(|| "Bundle".into())));
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries});
    Ok(fhir_response(StatusCode::OK, fhir::prune(bundle)))
}

pub(super) async fn import_bundle(State(s): State<AppState>, slot: Slot, headers: HeaderMap, body: Body) -> FhirResult {
    import(s, slot, headers, None, body).await
}

pub(super) async fn import_resource(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path(rtype): Path<String>,
    body: Body,
) -> FhirResult {
    if !is_stored_type(&rtype) {
        return Err(FhirError(Error::NotFound(format!("Unsupported FHIR resource type: {rtype}."))));
    }
    import(s, slot, headers, Some(rtype), body).await
}

// ---------------------------------------------------------------- /api/v1/fhir_sources

type JsonAnswer = ApiResult<Json<Value>>;

fn note_source(slot: &Slot, c: &Caller) {
    note(slot, |n| {
        n.resource_type = Some("FhirSource".into());
        n.patients.extend(c.patient_id());
    });
}

pub(super) async fn sources_list(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Query(q): Query,
    url: ReqUrl,
) -> JsonAnswer {
    note_source(&slot, &c);
    Ok(Json(super::wire::page(sources::list(&s.repo, &c).await?, &q, &url, Some(1000))?))
}

pub(super) async fn sources_create(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    note_source(&slot, &c);
    let (v, new) = sources::create(&s.repo, &c, &b).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(v)).into_response())
}

pub(super) async fn sources_get(State(s): State<AppState>, slot: Slot, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    note_source(&slot, &c);
    Ok(Json(sources::get(&s.repo, &c, id(&p)?).await?))
}

pub(super) async fn sources_update(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    note_source(&slot, &c);
    Ok(Json(sources::update(&s.repo, &c, id(&p)?, &b).await?))
}

pub(super) async fn sources_delete(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
) -> ApiResult<Response> {
    note_source(&slot, &c);
    sources::delete(&s.repo, &c, id(&p)?).await?;
    Ok(no_content())
}
