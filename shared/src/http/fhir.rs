//! The FHIR R5 API at `/FHIR/R5/`: discovery, read and search (route group `fhir-read`, with the
//! admin observation list) and uploads (route group `fhir-ingest`). Errors are OperationOutcomes.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::extract::{ReqUrl, read_body, resolve_caller};
use crate::domain::Caller;
use crate::domain::ingest::{self, EntryOutcome, Refusal};
use crate::domain::reads;
use crate::error::Error;
use crate::fhir::search::{parse_observation_query, parse_other_query};
use crate::fhir::stored::{self, Target};
use crate::fhir::{self, RESOURCE_TYPES, outcome};

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub(super) fn fhir_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

/// A body written straight from typed values (no `Value` tree).
fn fhir_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

/// A domain error as an OperationOutcome.
pub struct FhirError(pub Error);

impl From<Error> for FhirError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let status = super::error::status_of(&self.0);
        let code = match status.as_u16() {
            401 => "login",
            403 => "forbidden",
            404 => "not-found",
            405 => "not-supported",
            409 => "duplicate",
            413 => "too-costly",
            422 => "business-rule",
            503 => "transient",
            500 => "exception",
            _ => "invalid",
        };
        let msg = super::error::message_of(&self.0);
        let mut r = fhir_response(status, outcome(code, &msg));
        r.extensions_mut().insert(super::audit::AuditReason(msg));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

pub(super) type FhirResult = Result<Response, FhirError>;

pub(super) async fn caller(s: &AppState, headers: &HeaderMap, slot: &Slot) -> Result<Caller, FhirError> {
    let c = resolve_caller(s, headers).await.map_err(|e| FhirError(e.0))?;
    if let Some(Extension(slot)) = slot {
        slot.caller(&c);
    }
    Ok(c)
}

use super::audit::{Slot, note};

/// Notes which patients a set of rendered resources concerns, and what allowed it.
pub(super) async fn note_results(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    rtype: &str,
    resources: &[Value],
    total: Option<usize>,
) -> Result<(), FhirError> {
    let mut patients = std::collections::BTreeSet::new();
    let mut pairs = std::collections::BTreeSet::new();
    for r in resources {
        if let Some(p) = crate::domain::stored::patient_of(r) {
            patients.insert(p);
            pairs.insert((p, rtype.to_string()));
            continue;
        }
        match rtype {
            "Observation" => {
                if let Some(p) = r["subject"]["reference"]
                    .as_str()
                    .and_then(|x| x.strip_prefix("Patient/"))
                    .and_then(|x| x.parse().ok())
                {
                    patients.insert(p);
                    pairs.insert((p, r["code"]["coding"][0]["code"].as_str().unwrap_or("").to_string()));
                }
            }
            "Patient" => {
                if let Some(p) = r["id"].as_str().and_then(|x| x.parse().ok()) {
                    patients.insert(p);
                }
            }
            _ => {}
        }
    }
    let grants = reads::grants(&s.repo, c, &pairs).await?;
    note(slot, |n| {
        n.resource_type = Some(rtype.to_string());
        n.count = total.or(Some(resources.len()));
        n.patients.extend(patients);
        n.grants.extend(grants);
    });
    Ok(())
}

fn query_pairs(url: &ReqUrl) -> Vec<(String, String)> {
    url.query.clone()
}

fn public_cors(mut r: Response) -> Response {
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub(super) async fn metadata(url: ReqUrl) -> Response {
    let started = STARTED.get_or_init(|| crate::domain::views::ts(time::OffsetDateTime::now_utc()));
    public_cors(fhir_response(StatusCode::OK, fhir::capability_statement(&url.origin, started)))
}

pub(super) async fn smart(url: ReqUrl) -> Response {
    public_cors(Json(fhir::smart_configuration(&url.origin)).into_response())
}

fn check_type(t: &str) -> Result<(), FhirError> {
    if RESOURCE_TYPES.contains(&t) || stored::is_stored_type(t) {
        Ok(())
    } else {
        Err(FhirError(Error::NotFound(format!("Unsupported FHIR resource type: {t}."))))
    }
}

async fn run_search(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    rtype: &str,
    url: &ReqUrl,
    params: Vec<(String, String)>,
) -> FhirResult {
    if rtype == "Consent" {
        return super::stored::consent_search(s, c, slot, url, &params).await;
    }
    check_type(rtype)?;
    let bad = |m: String| FhirError(Error::BadRequest(m));
    match stored::target(rtype, &params, RESOURCE_TYPES.contains(&rtype)) {
        Target::Records => {}
        t => return super::stored::search(s, c, slot, rtype, url, &params, t).await,
    }
    if rtype == "Observation" {
        return observation_search(s, c, slot, url, &params).await;
    }
    let (common, q) = parse_other_query(rtype, &params).map_err(bad)?;
    if rtype == "Patient" {
        note(slot, |n| n.patients.extend(common.ids.iter().flatten().copied()));
    }
    let found = reads::search_other(&s.repo, c, rtype, &common, &q).await?;
    note_results(s, c, slot, rtype, &found.resources, Some(found.total)).await?;
    let links = search_links(url, &found.next);
    Ok(fhir_response(
        StatusCode::OK,
        fhir::searchset(&format!("{}/FHIR/R5", url.origin), found.resources, Some(found.total), &links),
    ))
}

/// A searchset's links: itself, and the next page when there is one.
pub(super) fn search_links<'a>(url: &ReqUrl, next: &Option<String>) -> Vec<(&'a str, String)> {
    let mut links = vec![("self", url.full())];
    if let Some(n) = next {
        links.push(("next", url.with_param("_cursor", n)));
    }
    links
}

/// An Observation search page, written as bytes; its audit note names the patients asked for
/// (even when refused), those shown and the consents that allowed it.
async fn observation_search(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    url: &ReqUrl,
    params: &[(String, String)],
) -> FhirResult {
    let q = parse_observation_query(params).map_err(|m| FhirError(Error::BadRequest(m)))?;
    note(slot, |n| n.patients.extend(q.patient));
    let base = format!("{}/FHIR/R5", url.origin);
    let mut page = reads::observation_bundle(&s.repo, c, &q, &base, s.settings.max_page_bytes).await?;
    let pairs = page.shown();
    let grants = page.grants(&s.repo, c, &pairs).await?;
    note(slot, |n| {
        n.resource_type = Some("Observation".to_string());
        n.count = Some(page.total);
        n.patients.extend(pairs.iter().map(|(p, _)| *p));
        n.grants.extend(grants);
    });
    let links = search_links(url, &page.next);
    let body = page.into_bytes(&links)?;
    Ok(fhir_bytes(StatusCode::OK, body))
}

pub(super) async fn search(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path(rtype): Path<String>,
    url: ReqUrl,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let params = query_pairs(&url);
    if rtype == "AuditEvent" {
        return audit_search(&s, &c, &slot, &url, params).await;
    }
    run_search(&s, &c, &slot, &rtype, &url, params).await
}

pub(super) async fn search_observation(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    url: ReqUrl,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let params = query_pairs(&url);
    run_search(&s, &c, &slot, "Observation", &url, params).await
}

pub(super) async fn search_post(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path(rtype): Path<String>,
    url: ReqUrl,
    body: Body,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let body = match upload_body(&s, &headers, body).await {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let mut params = query_pairs(&url);
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| FhirError(Error::bad("The _search body must be form-encoded parameters.")))?;
    params.extend(form);
    let mut search_url = url.clone();
    search_url.path = search_url.path.trim_end_matches("/_search").to_string();
    search_url.query = params.clone();
    run_search(&s, &c, &slot, &rtype, &search_url, params).await
}

pub(super) async fn read(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    Path((rtype, id)): Path<(String, String)>,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    match rtype.as_str() {
        "AuditEvent" => audit_read(&s, &c, &id).await,
        "Consent" => super::stored::consent_read(&s, &c, &slot, &id).await,
        t if stored::is_stored_type(t) && stored::is_stored_id(&id) => super::stored::read(&s, &c, &slot, t, &id).await,
        t => record_read(&s, &c, &slot, t, &id).await,
    }
}

/// A read of a resource rendered from JHE's records (numeric ids).
async fn record_read(s: &AppState, c: &Caller, slot: &Slot, rtype: &str, id: &str) -> FhirResult {
    check_type(rtype)?;
    let not_found = || FhirError(Error::NotFound(format!("{rtype}/{id} not found.")));
    // A type only stored as sent has no records: a numeric id names nothing.
    if !RESOURCE_TYPES.contains(&rtype) {
        return Err(not_found());
    }
    let id: i64 = id.parse().map_err(|_| not_found())?;
    note(slot, |n| {
        n.resource_type = Some(rtype.to_string());
        n.ids.push(id.to_string());
    });
    let v = if rtype == "Observation" {
        observation_read(s, c, slot, id).await?
    } else {
        note(slot, |n| n.patients.extend(Some(id).filter(|_| rtype == "Patient")));
        reads::read_other(&s.repo, c, rtype, id).await?
    };
    note_results(s, c, slot, rtype, std::slice::from_ref(&v), None).await?;
    Ok(fhir_response(StatusCode::OK, v))
}

/// An Observation read; whose data was asked for is recorded even when the answer is a refusal.
async fn observation_read(s: &AppState, c: &Caller, slot: &Slot, id: i64) -> Result<Value, FhirError> {
    let noted = |p| {
        note(slot, |n| {
            n.patients.insert(p);
        })
    };
    Ok(reads::read_observation_noting(&s.repo, c, id, noted).await?)
}

async fn audit_search(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    url: &ReqUrl,
    params: Vec<(String, String)>,
) -> FhirResult {
    let q = crate::domain::audit::parse_audit_search(&params).map_err(|m| FhirError(Error::BadRequest(m)))?;
    note(slot, |n| n.patients.extend(q.patient));
    let (recs, next) = crate::domain::audit::search(&s.repo, &*s.audit, c, &q).await?;
    let mut links = vec![("self", url.full())];
    if let Some(n) = &next {
        links.push(("next", url.with_param("_cursor", n)));
    }
    let entries = recs.iter().map(|r| r.to_fhir()).collect();
    Ok(fhir_response(StatusCode::OK, fhir::searchset(&format!("{}/FHIR/R5", url.origin), entries, None, &links)))
}

async fn audit_read(s: &AppState, c: &Caller, id: &str) -> FhirResult {
    if id.len() < 13 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FhirError(Error::not_found()));
    }
    // Find it through the caller's visible records of that millisecond.
    let ms: i64 = id[..13].parse().map_err(|_| FhirError(Error::not_found()))?;
    let q = crate::domain::audit::AuditSearch {
        date: fhir::search::TimeRange { lo: Some(ms), hi: Some(ms + 1) },
        count: 1000,
        ..Default::default()
    };
    let found = if crate::access::may_read_audit_event_by_id(c) {
        crate::domain::audit::search(&s.repo, &*s.audit, c, &q).await?.0
    } else {
        Vec::new()
    };
    match found.into_iter().find(|r| r.id == id) {
        Some(r) => Ok(fhir_response(StatusCode::OK, r.to_fhir())),
        None => Err(FhirError(Error::NotFound(format!("AuditEvent/{id} not found.")))),
    }
}

/// The status of an upload's refusal.
pub(super) fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Invalid { .. } => StatusCode::BAD_REQUEST,
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::Duplicate(_) => StatusCode::CONFLICT,
        Refusal::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::NotValid { .. } => StatusCode::BAD_REQUEST,
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
    }
}

/// A batch entry's `response.status`: `"201 Created"`.
pub(super) fn status_line(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"))
}

pub(super) fn refusal_response(r: &Refusal) -> Response {
    let mut resp = fhir_response(refusal_status(r), r.outcome());
    resp.extensions_mut().insert(super::audit::AuditReason(r.message().to_string()));
    resp
}

/// An OperationOutcome of warnings (what was accepted but is worth telling), or of one
/// informational issue when there are none.
fn warnings_outcome(warnings: &[String], created: &str) -> Value {
    let issues: Vec<Value> = if warnings.is_empty() {
        vec![json!({"severity": "information", "code": "informational", "diagnostics": format!("Created {created}.")})]
    } else {
        warnings.iter().map(|w| json!({"severity": "warning", "code": "informational", "diagnostics": w})).collect()
    };
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// FHIR uploads take JSON: `application/fhir+json` or `application/json`, with any parameters
/// (`charset=utf-8`); a request without a content type is read as JSON too.
/// `None` when the request's content type is one of those; else the 415 answer.
fn unsupported_content_type(headers: &HeaderMap) -> Option<Response> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/fhir+json" || essence == "application/json" {
        return None;
    }
    let msg = format!(
        "Unsupported media type {:?}: send application/fhir+json or application/json.",
        ct.to_str().unwrap_or("")
    );
    let mut resp = fhir_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, outcome("not-supported", &msg));
    resp.extensions_mut().insert(super::audit::AuditReason(msg));
    Some(resp)
}

/// What the client asked for in the answer to a create (`Prefer: return=...`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Return {
    Representation,
    Minimal,
    OperationOutcome,
}

fn prefer_return(headers: &HeaderMap) -> Return {
    let prefer = headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split([',', ';']));
    for p in prefer {
        match p.trim().to_ascii_lowercase().as_str() {
            "return=operationoutcome" => return Return::OperationOutcome,
            "return=minimal" => return Return::Minimal,
            "return=representation" => return Return::Representation,
            _ => {}
        }
    }
    Return::Representation
}

/// The patients an upload's resources name as their subject.
fn upload_subjects(resources: &[Option<Value>]) -> Vec<i64> {
    resources.iter().flatten().filter_map(ingest::subject).collect()
}

/// Notes the subjects, created ids and refusals of an upload.
fn note_upload(slot: &Slot, subjects: Vec<i64>, outcomes: &[EntryOutcome]) {
    note(slot, |n| {
        n.resource_type = Some("Observation".into());
        n.patients.extend(subjects);
        let mut refused: std::collections::BTreeMap<u16, usize> = Default::default();
        for o in outcomes {
            match o {
                EntryOutcome::Created { resource, .. } => n.ids.push(resource["id"].as_str().unwrap_or("").to_string()),
                EntryOutcome::Failed(f) => *refused.entry(refusal_status(f).as_u16()).or_default() += 1,
            }
        }
        n.count = Some(n.ids.len());
        if !refused.is_empty() {
            let total: usize = refused.values().sum();
            let by: Vec<String> = refused.iter().map(|(st, k)| format!("{k} x {st}")).collect();
            n.reason = Some(format!("{total} of {} entries refused ({})", outcomes.len(), by.join(", ")));
        }
    });
}

/// The body of an upload, or the OperationOutcome that says why it was not read.
/// An upload's body, read (one limit and deadline) and parsed: its text and its JSON, or the
/// answer refusing it (media type, size, time, not JSON).
pub(super) async fn upload(s: &AppState, headers: &HeaderMap, body: Body) -> Result<(String, Value), Response> {
    if let Some(r) = unsupported_content_type(headers) {
        return Err(r);
    }
    let body = upload_body(s, headers, body).await?;
    ingest::parse_body(&body).map_err(|f| refusal_response(&f))
}

async fn upload_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    read_body(headers, body, &s.settings).await.map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "too-costly" } else { "incomplete" };
        let mut r = fhir_response(e.status(), outcome(code, &e.message()));
        r.extensions_mut().insert(super::audit::AuditReason(e.message()));
        r
    })
}

pub(super) async fn create(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    url: ReqUrl,
    body: Body,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let (raw, resource) = match upload(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if ingest::is_stored_as_sent(&resource) {
        return super::stored::create_stored(&s, &c, &slot, &headers, &url, "Observation", resource).await;
    }
    omh_create(&s, &c, &slot, &headers, &url, &raw, resource).await
}

/// An Open mHealth Observation's create. A conditional create (`If-None-Exist`) of an observation
/// already stored with that identifier answers it as is.
async fn omh_create(
    s: &AppState,
    c: &Caller,
    slot: &Slot,
    headers: &HeaderMap,
    url: &ReqUrl,
    raw: &str,
    resource: Value,
) -> FhirResult {
    if let Some(cond) = headers.get("if-none-exist").and_then(|v| v.to_str().ok())
        && let Some(existing) = ingest::if_none_exist(&s.repo, c, cond).await?
    {
        return Ok(fhir_response(StatusCode::OK, existing));
    }
    let resources = vec![Some(resource)];
    let subjects = upload_subjects(&resources);
    let outcome = ingest::ingest(&s.repo, &*s.blobs, c, raw, resources, true).await?;
    note_upload(slot, subjects, &outcome);
    created(headers, url, outcome.into_iter().next())
}

/// The answer to a create: 201 as `Prefer: return` asks, with its `Location`; or the refusal.
fn created(headers: &HeaderMap, url: &ReqUrl, outcome: Option<EntryOutcome>) -> FhirResult {
    match outcome {
        Some(EntryOutcome::Created { resource, warnings }) => {
            let id = resource["id"].as_str().unwrap_or("").to_string();
            let mut r = match prefer_return(headers) {
                Return::Representation => fhir_response(StatusCode::CREATED, resource),
                Return::OperationOutcome => {
                    fhir_response(StatusCode::CREATED, warnings_outcome(&warnings, &format!("Observation/{id}")))
                }
                Return::Minimal => StatusCode::CREATED.into_response(),
            };
            let loc = format!("{}/FHIR/R5/Observation/{id}", url.origin);
            if let Ok(h) = HeaderValue::from_str(&loc) {
                r.headers_mut().insert(header::LOCATION, h);
            }
            Ok(r)
        }
        Some(EntryOutcome::Failed(f)) => Ok(refusal_response(&f)),
        None => Err(FhirError(Error::Internal("no outcome".into()))),
    }
}

pub(super) async fn batch(
    State(s): State<AppState>,
    slot: Slot,
    headers: HeaderMap,
    url: ReqUrl,
    body: Body,
) -> FhirResult {
    let c = caller(&s, &headers, &slot).await?;
    let (raw, mut bundle) = match upload(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (resources, pre) = match ingest::batch_entries(&mut bundle) {
        Ok(x) => x,
        Err(f) => return Ok(refusal_response(&f)),
    };
    let (resources, as_sent) = super::stored::split_batch(resources);
    let subjects = upload_subjects(&resources);
    let mut outcomes = ingest::ingest(&s.repo, &*s.blobs, &c, &raw, resources, false).await?;
    let stored = super::stored::store_batch(&s, &c, &headers, as_sent, &mut outcomes).await?;
    note_upload(&slot, subjects.into_iter().chain(stored).collect(), &outcomes);
    Ok(fhir_response(StatusCode::OK, batch_response(&url.origin, outcomes, pre)))
}

/// The batch-response Bundle: per entry, its refusal (found before or by ingest), or what was
/// created, where, and any warnings.
fn batch_response(origin: &str, outcomes: Vec<EntryOutcome>, pre: Vec<Option<Refusal>>) -> Value {
    let entries: Vec<Value> = outcomes
        .into_iter()
        .zip(pre)
        .map(|(o, pre)| match (pre, o) {
            (Some(f), _) | (None, EntryOutcome::Failed(f)) => {
                json!({"response": {"status": status_line(refusal_status(&f)), "outcome": f.outcome()}})
            }
            (None, EntryOutcome::Created { resource, warnings }) => {
                let id = resource["id"].as_str().unwrap_or("").to_string();
                let rtype = resource["resourceType"].as_str().unwrap_or("Observation").to_string();
                let mut response = json!({"status": status_line(StatusCode::CREATED), "location": format!("{rtype}/{id}"),
                                          "lastModified": resource["meta"]["lastUpdated"].clone()});
                if !warnings.is_empty() {
                    response["outcome"] = warnings_outcome(&warnings, &format!("{rtype}/{id}"));
                }
                json!({"fullUrl": format!("{origin}/FHIR/R5/{rtype}/{id}"), "response": response, "resource": resource})
            }
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries})
}

pub(super) async fn admin_observations(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    url: ReqUrl,
) -> Result<Json<Value>, super::error::ApiError> {
    let q: std::collections::BTreeMap<String, String> =
        url.query.iter().map(|(k, v)| (super::wire::snake(k), v.clone())).collect();
    let oq = reads::admin_query(&q)?;
    // Whose data was asked for is recorded even when the answer is a refusal.
    note(&slot, |n| n.patients.extend(oq.patient));
    let (size, page) = (super::wire::page_size(&q)?, super::wire::page_number(&q)?);
    let (rows, total) = reads::admin_observations(&s.repo, &c, &oq, page, size).await?;
    note(&slot, |n| {
        n.resource_type = Some("Observation".into());
        n.count = Some(total);
        n.patients.extend(rows.iter().filter_map(|r| r["subjectPatientId"].as_i64()));
    });
    Ok(Json(super::wire::drf_page(rows, total, page, size, &url)?))
}
