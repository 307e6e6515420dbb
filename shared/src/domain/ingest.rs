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

use std::collections::BTreeSet;
use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Caller;
use super::facts::{Facts, PatientFacts};
use super::observation::{NaturalKey, Observation};
use crate::access::{self, UploadRefusal};
use crate::error::{Error, Result};
use crate::fhir::{self, MAX_BUNDLE_ENTRIES, OMH_SYSTEM};
use crate::model::{Code, Id, check_identifier};
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

/// Why one entry of an upload is refused. The FHIR issue type (`code`) says what is wrong; the
/// variant says how the server answers (`http::fhir` maps it to a status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an acceptable request: structure, a reference or code that does not resolve, data
    /// that is not base64 JSON (400).
    Invalid { code: &'static str, message: String },
    /// The caller may not upload this (403).
    Forbidden(String),
    /// A natural key is taken (409).
    Duplicate(String),
    /// Well-formed but against a rule: the data point's schema, the device's data types (422).
    Unprocessable { code: &'static str, message: String },
    /// Larger than the server takes at once (413).
    TooLarge(String),
}

impl Refusal {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }

    /// The FHIR issue type of the refusal.
    pub fn issue_code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } | Self::Unprocessable { code, .. } => code,
            Self::Forbidden(_) => "forbidden",
            Self::Duplicate(_) => "duplicate",
            Self::TooLarge(_) => "too-costly",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. } | Self::Unprocessable { message, .. } => message,
            Self::Forbidden(m) | Self::Duplicate(m) | Self::TooLarge(m) => m,
        }
    }

    /// The OperationOutcome of the refusal.
    pub fn outcome(&self) -> Value {
        fhir::outcome(self.issue_code(), self.message())
    }
}

type Checked<T> = std::result::Result<T, Refusal>;

/// An observation derived from an uploaded resource (no id yet).
#[derive(Debug, Clone)]
pub struct Derived {
    pub obs: Observation,
    pub code: Code,
    /// What was accepted but is worth telling the client (format misses, an unreadable time).
    pub warnings: Vec<String>,
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

/// What the structure of an uploaded Observation gives, before anything is looked up.
struct Shape<'a> {
    status: &'a str,
    system: &'a str,
    code: &'a str,
    identifiers: Vec<(String, String)>,
}

/// Upstream's first step, the R5 parse: an Observation object with a status and one code.
fn shape(r: &Value) -> Checked<Shape<'_>> {
    if !r.is_object() {
        return Err(Refusal::invalid("structure", "The resource must be a JSON object."));
    }
    if r["resourceType"] != "Observation" {
        return Err(Refusal::invalid("not-supported", "Only Observation resources are accepted here."));
    }
    let status = r["status"].as_str().ok_or_else(|| Refusal::invalid("required", "Observation.status is required."))?;
    if !STATUSES.contains(&status) {
        return Err(Refusal::invalid(
            "code-invalid",
            format!("Observation.status {status:?} is not a FHIR observation status."),
        ));
    }
    let codings = r["code"]["coding"]
        .as_array()
        .ok_or_else(|| Refusal::invalid("required", "Observation.code.coding is required."))?;
    let first = codings.first().unwrap_or(&Value::Null);
    let (system, code) = (first["system"].as_str().unwrap_or(""), first["code"].as_str().unwrap_or(""));
    if system != OMH_SYSTEM {
        return Err(Refusal::invalid(
            "not-supported",
            format!("Only Open mHealth observations (code system {OMH_SYSTEM}) are accepted."),
        ));
    }
    let mut identifiers = Vec::new();
    if let Some(ids) = r.get("identifier") {
        let ids =
            ids.as_array().ok_or_else(|| Refusal::invalid("structure", "Observation.identifier must be a list."))?;
        if ids.len() > MAX_IDENTIFIERS {
            return Err(Refusal::invalid("too-long", format!("At most {MAX_IDENTIFIERS} identifiers are accepted.")));
        }
        for i in ids {
            match (i["system"].as_str(), i["value"].as_str()) {
                (Some(s), Some(v)) if !s.is_empty() && !v.is_empty() => {
                    identifiers.push((s.to_string(), v.to_string()))
                }
                _ => return Err(Refusal::invalid("structure", "Each identifier needs a non-empty system and value.")),
            }
        }
    }
    // The number of codings is upstream's sixth step (`known_code`).
    Ok(Shape { status, system, code, identifiers })
}

/// Upstream's sixth step: exactly one coding, and a code the catalogue has.
async fn known_code(repo: &Repo, lookups: &mut Lookups, r: &Value, s: &Shape<'_>) -> Result<Checked<Code>> {
    if r["code"]["coding"].as_array().map(Vec::len) != Some(1) {
        return Ok(Err(Refusal::invalid("structure", "Exactly one Code must be provided.")));
    }
    Ok(lookups.code(repo, s.system, s.code).await?.ok_or_else(|| {
        Refusal::invalid("code-invalid", format!("Code not found: system={} code={}", s.system, s.code))
    }))
}

/// Upstream's eighth and ninth steps: base64 JSON, then the Open mHealth schemas. Gives the
/// observation (no id yet) and the warnings.
fn data_point(r: &Value, patient: Id, device: Option<Id>, code: &Code, s: &Shape<'_>) -> Checked<Derived> {
    let not_json = || Refusal::invalid("value", "valueAttachment.data must be Base 64 Encoded Binary JSON.");
    let data = r["valueAttachment"]["data"].as_str().ok_or_else(not_json)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|_| not_json())?;
    let dp: Value = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
    let point = crate::omh::validate_data_point(&code.coding_code, &dp).map_err(|e| Refusal::Unprocessable {
        code: "invariant",
        message: format!("The Open mHealth data point is not valid for {}: {e}", code.coding_code),
    })?;
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
            status: s.status.to_string(),
            identifiers: s.identifiers.clone(),
            effective_start,
            effective_end,
            last_updated: 0,
            data: data.to_string(),
            uuid: point.uuid,
            archive: String::new(),
        },
        code: code.clone(),
        warnings: point.warnings,
    })
}

/// The checks JHE adds, after all of upstream's: store-key limits of the identifiers, the
/// attachment's content type.
fn own_shape_checks(r: &Value, s: &Shape<'_>) -> Checked<()> {
    for (system, value) in &s.identifiers {
        check_identifier(system, value).map_err(|m| Refusal::invalid("value", m))?;
    }
    if r["valueAttachment"]["contentType"] != "application/json" {
        return Err(Refusal::invalid("value", "valueAttachment.contentType must be application/json."));
    }
    Ok(())
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn device_of(r: &Value) -> Checked<Id> {
    reference_id(r, "device", "Device").ok_or_else(|| {
        Refusal::invalid(
            "required",
            "Device is required and must be a reference to a Data Source ID and start with 'Device/'",
        )
    })
}

fn subject_of(r: &Value) -> Checked<Id> {
    subject(r).ok_or_else(|| {
        Refusal::invalid(
            "required",
            "Subject is required and must be a reference to a Patient ID and start with 'Patient/'",
        )
    })
}

/// Derives one resource without access checks (replays of the archive, the seed): the checks an
/// accepted upload passed that depend on the resource and the catalogue alone (the device is
/// taken as named, if it is).
async fn derive(repo: &Repo, lookups: &mut Lookups, r: &Value) -> Result<Checked<Derived>> {
    let s = match shape(r) {
        Ok(s) => s,
        Err(f) => return Ok(Err(f)),
    };
    let patient = match subject_of(r) {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    // Uploads name a device; the seed's observations of a study without data sources do not.
    let device = reference_id(r, "device", "Device");
    let code = match known_code(repo, lookups, r, &s).await? {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    Ok(own_shape_checks(r, &s).and_then(|()| data_point(r, patient, device, &code, &s)))
}

/// An entry that passed upstream's first four steps: its identifiers' keys wait for the batched
/// duplicate check (step five), and the first later refusal, if any, waits behind it.
struct Pending {
    slot: usize,
    identifiers: Vec<NaturalKey>,
    outcome: Checked<Derived>,
}

/// Runs upstream's steps one to four (answers now) and six to nine plus JHE's own (kept behind
/// the duplicate check) for one entry.
async fn check_entry(
    repo: &Repo,
    facts: &mut Facts,
    lookups: &mut Lookups,
    c: &Caller,
    r: &Value,
) -> Result<Checked<(Vec<NaturalKey>, Checked<Derived>)>> {
    // 1. The R5 parse.
    let s = match shape(r) {
        Ok(s) => s,
        Err(f) => return Ok(Err(f)),
    };
    // 2. The subject and the patient.
    let patient = match subject_of(r) {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    let Some(pf) = facts.patient(repo, patient).await? else {
        return Ok(Err(Refusal::invalid("not-found", format!("Patient id={patient} can not be found."))));
    };
    // 3. The caller.
    if !access::may_upload_for(c, patient, &pf.orgs) {
        let m = if c.patient_id().is_some() {
            "The Subject Patient does not match the current user."
        } else {
            "Current user doesn't have access to the Patient."
        };
        return Ok(Err(Refusal::Forbidden(m.into())));
    }
    // 4. The device.
    let device = match device_of(r) {
        Ok(d) => d,
        Err(f) => return Ok(Err(f)),
    };
    let Some(supported) = lookups.device_scopes(repo, device).await?.map(<[Id]>::to_vec) else {
        return Ok(Err(Refusal::invalid("not-found", format!("Device Data Source id={device} can not be found."))));
    };
    // 5. Identifiers (checked against the store for all entries at once; malformed ones cannot
    // be stored, so they are refused below, not looked up).
    let identifiers = s
        .identifiers
        .iter()
        .filter(|(sys, val)| check_identifier(sys, val).is_ok())
        .map(|(system, value)| NaturalKey { system: system.clone(), value: value.clone(), within: None })
        .collect();
    let rest = later_steps(repo, lookups, c, r, &s, patient, &pf, device, &supported).await?;
    Ok(Ok((identifiers, rest)))
}

/// Upstream's steps six to nine, then JHE's own checks.
#[allow(clippy::too_many_arguments)]
async fn later_steps(
    repo: &Repo,
    lookups: &mut Lookups,
    c: &Caller,
    r: &Value,
    s: &Shape<'_>,
    patient: Id,
    pf: &PatientFacts,
    device: Id,
    supported: &[Id],
) -> Result<Checked<Derived>> {
    // 6. The code.
    let code = match known_code(repo, lookups, r, s).await? {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    // 7. Consent; 8-9. the data point.
    let consent = access::upload_consent(c, patient, &pf.enrolled, &pf.consents, device, code.id);
    if consent == Err(UploadRefusal::NotConsented) {
        return Ok(Err(Refusal::Forbidden(format!(
            "Observation data with coding_system={} coding_code={} has not been consented for any studies by this Patient.",
            code.coding_system, code.coding_code
        ))));
    }
    let derived = match data_point(r, patient, Some(device), &code, s) {
        Ok(d) => d,
        Err(f) => return Ok(Err(f)),
    };
    // JHE's own checks.
    if let Err(f) = own_shape_checks(r, s) {
        return Ok(Err(f));
    }
    if !supported.contains(&code.id) {
        return Ok(Err(Refusal::Unprocessable {
            code: "business-rule",
            message: format!("Device/{device} does not support {}.", code.coding_code),
        }));
    }
    if consent == Err(UploadRefusal::NoStudy) {
        return Ok(Err(Refusal::Forbidden(format!(
            "Device/{device} is not a data source of any study of Patient/{patient} that requests {} with the patient's consent.",
            code.coding_code
        ))));
    }
    Ok(Ok(derived))
}

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
        if method != "POST" || url != "Observation" {
            resources.push(None);
            fails.push(Some(Refusal::invalid(
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
