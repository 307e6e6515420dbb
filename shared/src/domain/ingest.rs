//! Observation ingest: validation of each uploaded FHIR Observation (structure, caller, device,
//! study, consent, Open mHealth data point), duplicate detection, then — before answering —
//! the raw upload is archived in the blob store and the accepted observations are indexed.
//! `reindex` rebuilds the index from the archive; indexing is idempotent, so a replay stores
//! nothing twice.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Caller;
use super::facts::Facts;
use super::model::{Code, Id};
use super::observation::{NaturalKey, Observation};
use crate::access::{self, UploadRefusal};
use crate::error::{Error, Result};
use crate::fhir::{self, MAX_BUNDLE_ENTRIES, OMH_SYSTEM, outcome};
use crate::ports::BlobStore;
use crate::repo::Repo;
use crate::repo::observations::Indexed;

/// Statuses FHIR R5 allows for an Observation.
const STATUSES: &[&str] = &[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
];
/// Identifiers one observation may carry.
const MAX_IDENTIFIERS: usize = 3;

/// Why one entry was refused: an HTTP status and an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn fail(status: u16, code: &'static str, message: impl Into<String>) -> Fail {
    Fail { status, code, message: message.into() }
}

impl Fail {
    pub fn outcome(&self) -> Value {
        outcome(self.code, &self.message)
    }
}

pub fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{status} {reason}")
}

/// An observation derived from an uploaded resource (no id yet).
#[derive(Debug, Clone)]
pub struct Derived {
    pub obs: Observation,
    pub code: Code,
}

/// The id in `v[field].reference` when it reads `{ty}/{id}`.
fn reference_id(v: &Value, field: &str, ty: &str) -> Option<Id> {
    v.get(field)
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(ty))
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|id| id.parse().ok())
}

fn reference(v: &Value, field: &str, ty: &str, msg: &str) -> std::result::Result<Id, Fail> {
    reference_id(v, field, ty).ok_or_else(|| fail(400, "required", msg))
}

/// The patient an uploaded resource names as its subject, if it names one.
pub fn subject(r: &Value) -> Option<Id> {
    reference_id(r, "subject", "Patient")
}

/// The catalogue entries an upload needs, each read once per upload (not once per entry).
#[derive(Default)]
struct Lookups {
    /// (system, code) -> the code, if it exists.
    codes: HashMap<(String, String), Option<Code>>,
    /// device -> the scopes it supports, if it exists.
    devices: HashMap<Id, Option<Vec<Id>>>,
}

impl Lookups {
    async fn code(&mut self, repo: &Repo, system: &str, code: &str) -> Result<Option<Code>> {
        let key = (system.to_string(), code.to_string());
        if let Some(c) = self.codes.get(&key) {
            return Ok(c.clone());
        }
        let c = repo.code_by_key(system, code).await?;
        self.codes.insert(key, c.clone());
        Ok(c)
    }

    /// The scopes a device supports, or `None` if there is no such device.
    async fn device_scopes(&mut self, repo: &Repo, device: Id) -> Result<Option<&[Id]>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.devices.entry(device) {
            let scopes = match repo.data_source(device).await? {
                Some(_) => Some(repo.supported_scope_ids(device).await?),
                None => None,
            };
            e.insert(scopes);
        }
        Ok(self.devices.get(&device).and_then(|s| s.as_deref()))
    }
}

/// Parses and validates one Observation resource on its own (no access checks): used for uploads
/// and for replays from the archive.
async fn derive_inner(repo: &Repo, lookups: &mut Lookups, r: &Value) -> std::result::Result<Derived, Fail> {
    let internal = |e: Error| fail(503, "transient", format!("store unavailable: {e}"));
    if !r.is_object() {
        return Err(fail(400, "structure", "The resource must be a JSON object."));
    }
    if r["resourceType"] != "Observation" {
        return Err(fail(400, "not-supported", "Only Observation resources are accepted here."));
    }
    let status = r["status"].as_str().ok_or_else(|| fail(400, "required", "Observation.status is required."))?;
    if !STATUSES.contains(&status) {
        return Err(fail(
            400,
            "code-invalid",
            format!("Observation.status {status:?} is not a FHIR observation status."),
        ));
    }
    let codings =
        r["code"]["coding"].as_array().ok_or_else(|| fail(400, "required", "Observation.code.coding is required."))?;
    if codings.len() != 1 {
        return Err(fail(400, "structure", "Exactly one Code must be provided."));
    }
    let (system, code_s) = (codings[0]["system"].as_str().unwrap_or(""), codings[0]["code"].as_str().unwrap_or(""));
    if system != OMH_SYSTEM {
        return Err(fail(
            400,
            "not-supported",
            format!("Only Open mHealth observations (code system {OMH_SYSTEM}) are accepted."),
        ));
    }
    let code = lookups
        .code(repo, system, code_s)
        .await
        .map_err(internal)?
        .ok_or_else(|| fail(400, "code-invalid", format!("Code not found: system={system} code={code_s}")))?;
    let patient = reference(
        r,
        "subject",
        "Patient",
        "Subject is required and must be a reference to a Patient ID and start with 'Patient/'",
    )?;
    let device = match r.get("device") {
        None | Some(Value::Null) => None,
        Some(_) => Some(reference(
            r,
            "device",
            "Device",
            "Device must be a reference to a Data Source ID and start with 'Device/'",
        )?),
    };
    let mut identifiers = Vec::new();
    if let Some(ids) = r.get("identifier") {
        let ids = ids.as_array().ok_or_else(|| fail(400, "structure", "Observation.identifier must be a list."))?;
        if ids.len() > MAX_IDENTIFIERS {
            return Err(fail(400, "too-long", format!("At most {MAX_IDENTIFIERS} identifiers are accepted.")));
        }
        for i in ids {
            match (i["system"].as_str(), i["value"].as_str()) {
                (Some(s), Some(v)) if !s.is_empty() && !v.is_empty() && s.len() + v.len() <= 512 => {
                    identifiers.push((s.to_string(), v.to_string()))
                }
                _ => return Err(fail(400, "structure", "Each identifier needs a non-empty system and value.")),
            }
        }
    }
    let att = &r["valueAttachment"];
    if !att.is_object() {
        return Err(fail(400, "required", "valueAttachment is required (application/json, base64 data)."));
    }
    if att["contentType"] != "application/json" {
        return Err(fail(400, "value", "valueAttachment.contentType must be application/json."));
    }
    let data = att["data"].as_str().ok_or_else(|| fail(400, "required", "valueAttachment.data must be not null."))?;
    let not_json = || fail(400, "value", "valueAttachment.data must be Base 64 Encoded Binary JSON.");
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|_| not_json())?;
    let dp: Value = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
    if !dp.is_object() {
        return Err(not_json());
    }
    let point = crate::omh::validate_data_point(code_s, &dp)
        .map_err(|e| fail(422, "invariant", format!("The Open mHealth data point is not valid for {code_s}: {e}")))?;
    let (effective_start, effective_end) = match point.effective {
        Some(crate::omh::Effective::Instant(t)) => (Some(ms(t)), None),
        Some(crate::omh::Effective::Period { start, end }) => (Some(ms(start)), Some(ms(end))),
        None => (None, None),
    };
    Ok(Derived {
        obs: Observation {
            id: 0,
            patient_id: patient,
            code_id: code.id,
            data_source_id: device,
            status: status.to_string(),
            identifiers,
            effective_start,
            effective_end,
            last_updated: 0,
            data: data.to_string(),
            uuid: point.uuid,
            archive: String::new(),
        },
        code,
    })
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Checks the caller may upload this observation (patient, device, study, consent).
async fn authorize(
    repo: &Repo,
    facts: &mut Facts,
    lookups: &mut Lookups,
    c: &Caller,
    d: &Derived,
) -> Result<std::result::Result<(), Fail>> {
    let o = &d.obs;
    let Some(pf) = facts.patient(repo, o.patient_id).await? else {
        return Ok(Err(fail(400, "not-found", format!("Patient id={} can not be found.", o.patient_id))));
    };
    if c.patient_id() != Some(o.patient_id) && !access::may_manage_patient(c, &pf.orgs) {
        return Ok(Err(fail(403, "forbidden", "The Subject Patient does not match the current user.")));
    }
    let Some(device) = o.data_source_id else {
        return Ok(Err(fail(
            400,
            "required",
            "Device is required and must be a reference to a Data Source ID and start with 'Device/'",
        )));
    };
    let Some(scopes) = lookups.device_scopes(repo, device).await? else {
        return Ok(Err(fail(400, "not-found", format!("Device Data Source id={device} can not be found."))));
    };
    if !scopes.contains(&o.code_id) {
        return Ok(Err(fail(
            422,
            "business-rule",
            format!("Device/{device} does not support {}.", d.code.coding_code),
        )));
    }
    Ok(match access::may_upload(c, o.patient_id, &pf.orgs, &pf.enrolled, &pf.consents, device, o.code_id) {
        Ok(()) => Ok(()),
        Err(UploadRefusal::NotYours) => {
            Err(fail(403, "forbidden", "The Subject Patient does not match the current user."))
        }
        Err(UploadRefusal::NoStudy) => Err(fail(
            403,
            "forbidden",
            format!(
                "Device/{device} is not a data source of any study of Patient/{} that requests {}.",
                o.patient_id, d.code.coding_code
            ),
        )),
        Err(UploadRefusal::NotConsented) => Err(fail(
            403,
            "forbidden",
            format!(
                "Observation data with coding_system={} coding_code={} has not been consented for any studies by this Patient.",
                d.code.coding_system, d.code.coding_code
            ),
        )),
    })
}

/// The outcome of one entry of an upload.
#[derive(Debug, Clone)]
pub enum EntryOutcome {
    Created(Value),
    Failed(Fail),
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
    // Entries that passed so far, with how many natural keys each has in `keys` (in order).
    let mut ready: Vec<(usize, Derived, usize)> = Vec::new();
    let mut keys: Vec<NaturalKey> = Vec::new();
    let mut seen_keys = BTreeSet::new();
    for (i, r) in resources.iter().enumerate() {
        let Some(r) = r else { continue };
        let d = match derive_inner(repo, &mut lookups, r).await {
            Ok(d) => d,
            Err(f) => {
                outcomes[i] = Some(EntryOutcome::Failed(f));
                continue;
            }
        };
        if let Err(f) = authorize(repo, &mut facts, &mut lookups, c, &d).await? {
            outcomes[i] = Some(EntryOutcome::Failed(f));
            continue;
        }
        let own = d.obs.natural_keys();
        let mut dup = None;
        for k in &own {
            if !seen_keys.insert(k.clone()) {
                dup = Some(fail(
                    409,
                    "duplicate",
                    format!("Identifier system={} value={} appears twice in this upload.", k.system, k.value),
                ));
            }
        }
        match dup {
            Some(f) => outcomes[i] = Some(EntryOutcome::Failed(f)),
            None => {
                ready.push((i, d, own.len()));
                keys.extend(own);
            }
        }
    }
    // Natural keys already held by stored observations (one batched read for the whole upload).
    let mut taken = repo.observation_keys_taken(&keys).await?.into_iter();
    let mut keys = keys.into_iter();
    let mut kept = Vec::with_capacity(ready.len());
    for (i, d, n) in ready {
        let mut dup = None;
        for k in keys.by_ref().take(n) {
            if taken.next().unwrap_or(false) && dup.is_none() {
                dup = Some(fail(409, "duplicate", k.taken_message()));
            }
        }
        match dup {
            Some(f) => outcomes[i] = Some(EntryOutcome::Failed(f)),
            None => kept.push((i, d)),
        }
    }
    if !kept.is_empty() {
        let (slots, derived): (Vec<usize>, Vec<Derived>) = kept.into_iter().unzip();
        let (mut obs, codes): (Vec<Observation>, Vec<Code>) = derived.into_iter().map(|d| (d.obs, d.code)).unzip();
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
        for (((i, o), code), v) in slots.into_iter().zip(&obs).zip(&codes).zip(verdicts) {
            outcomes[i] = Some(match v {
                Indexed::Inserted | Indexed::AlreadyPresent => {
                    let user = facts.patient(repo, o.patient_id).await?.and_then(|f| f.user_id);
                    EntryOutcome::Created(fhir::observation(o, code, user))
                }
                Indexed::Duplicate(m) => EntryOutcome::Failed(fail(409, "duplicate", m)),
            });
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| EntryOutcome::Failed(fail(400, "structure", "Invalid entry."))))
        .collect())
}

/// Parses a request body as JSON, or says why not.
pub fn parse_body(raw: &[u8]) -> std::result::Result<(String, Value), Fail> {
    let text = std::str::from_utf8(raw).map_err(|_| fail(400, "structure", "The body is not UTF-8 text."))?;
    let v: Value =
        serde_json::from_str(text).map_err(|e| fail(400, "structure", format!("The body is not valid JSON: {e}")))?;
    Ok((text.to_string(), v))
}

/// A batch Bundle's entries as resources (`None` for an entry that is not a POST of an
/// Observation, with its failure).
/// The resources of a batch, and the entries refused before validation.
pub type BatchEntries = (Vec<Option<Value>>, Vec<Option<Fail>>);

/// Takes the resources out of the Bundle (they are not copied; the Bundle is left without them).
pub fn batch_entries(bundle: &mut Value) -> std::result::Result<BatchEntries, Fail> {
    if bundle["resourceType"] != "Bundle" {
        return Err(fail(400, "not-supported", "POST /FHIR/R5/ takes a Bundle."));
    }
    match bundle["type"].as_str() {
        Some("batch") => {}
        Some(t) => {
            return Err(fail(
                400,
                "not-supported",
                format!("Bundle type {t:?} is not supported; send a batch Bundle."),
            ));
        }
        None => return Err(fail(400, "required", "Bundle.type is required (batch).")),
    }
    let entries = match &mut bundle["entry"] {
        Value::Array(a) => a.as_mut_slice(),
        Value::Null => &mut [],
        _ => return Err(fail(400, "structure", "Bundle.entry must be a list.")),
    };
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(fail(
            413,
            "too-costly",
            format!("The Bundle has {} entries; at most {MAX_BUNDLE_ENTRIES} are accepted per request.", entries.len()),
        ));
    }
    let mut resources = Vec::with_capacity(entries.len());
    let mut fails = Vec::with_capacity(entries.len());
    for e in entries.iter_mut() {
        let method = e["request"]["method"].as_str().unwrap_or("");
        let url = e["request"]["url"].as_str().unwrap_or("").trim_end_matches('/');
        if method != "POST" || url != "Observation" {
            resources.push(None);
            fails.push(Some(fail(
                400,
                "not-supported",
                "Each entry must be request {method: POST, url: Observation}.",
            )));
        } else {
            resources.push(Some(e["resource"].take()));
            fails.push(None);
        }
    }
    Ok((resources, fails))
}

/// What a replay of the archive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReindexReport {
    pub uploads: usize,
    pub observations: usize,
    pub inserted: usize,
    pub already_present: usize,
    pub duplicates: usize,
    pub unreadable: usize,
}

/// Rebuilds the observation index from the archive: every accepted entry of every archived
/// upload is derived again from the raw body and indexed under its recorded id.
pub async fn reindex(repo: &Repo, blobs: &dyn BlobStore) -> Result<ReindexReport> {
    let mut report = ReindexReport::default();
    let mut lookups = Lookups::default();
    let keys = blobs.list("bundles/").await.map_err(|e| Error::Unavailable(e.to_string()))?;
    for key in keys {
        report.uploads += 1;
        let Some(bytes) = blobs.get(&key).await.map_err(|e| Error::Unavailable(e.to_string()))? else { continue };
        let Ok(env) = serde_json::from_slice::<Value>(&bytes) else {
            report.unreadable += 1;
            continue;
        };
        let Ok(body) = serde_json::from_str::<Value>(env["body"].as_str().unwrap_or("")) else {
            report.unreadable += 1;
            continue;
        };
        let single = env["single"].as_bool().unwrap_or(false);
        let mut obs = Vec::new();
        for a in env["accepted"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let (Some(i), Some(id), Some(lu)) = (a["entry"].as_u64(), a["id"].as_i64(), a["lastUpdated"].as_i64())
            else {
                report.unreadable += 1;
                continue;
            };
            let r = if single { &body } else { &body["entry"][i as usize]["resource"] };
            match derive_inner(repo, &mut lookups, r).await {
                Ok(mut d) => {
                    d.obs.id = id;
                    d.obs.last_updated = lu;
                    d.obs.archive = key.clone();
                    obs.push(d.obs);
                }
                Err(_) => report.unreadable += 1,
            }
        }
        report.observations += obs.len();
        for v in repo.index_observations(&obs).await? {
            match v {
                Indexed::Inserted => report.inserted += 1,
                Indexed::AlreadyPresent => report.already_present += 1,
                Indexed::Duplicate(_) => report.duplicates += 1,
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
        match derive_inner(repo, &mut lookups, r).await {
            Ok(mut d) => {
                d.obs.id = first + n as Id;
                d.obs.last_updated = ms(now);
                d.obs.archive = key.clone();
                obs.push((n, d.obs));
            }
            Err(f) => return Err(Error::Internal(format!("seed observation {n}: {}", f.message))),
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
