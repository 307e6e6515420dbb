//! The checks of one uploaded entry, in upstream's order and then JHE's own; a refusal is a
//! [`Refusal`].

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;
use time::OffsetDateTime;

use crate::access::{self, UploadRefusal};
use crate::domain::Caller;
use crate::domain::facts::{Facts, PatientFacts};
use crate::domain::observation::{NaturalKey, Observation};
use crate::error::Result;
use crate::fhir::{self, OMH_SYSTEM};
use crate::model::{Code, Id, check_identifier};
use crate::repo::Repo;

/// Statuses FHIR R5 allows for an Observation.
pub(super) const STATUSES: &[&str] = &[
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
pub(super) const MAX_IDENTIFIERS: usize = 3;

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
    /// Not a valid resource of its type: each problem named (400).
    NotValid { message: String, problems: Vec<String> },
    /// What it names is not here (404).
    NotFound(String),
}

impl Refusal {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }

    /// The FHIR issue type of the refusal.
    pub fn issue_code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } | Self::Unprocessable { code, .. } => code,
            Self::Forbidden(_) => "forbidden",
            Self::Duplicate(_) => "duplicate",
            Self::TooLarge(_) => "too-costly",
            Self::NotValid { .. } => "structure",
            Self::NotFound(_) => "not-found",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. } | Self::Unprocessable { message, .. } | Self::NotValid { message, .. } => {
                message
            }
            Self::Forbidden(m) | Self::Duplicate(m) | Self::TooLarge(m) | Self::NotFound(m) => m,
        }
    }

    /// The OperationOutcome of the refusal.
    pub fn outcome(&self) -> Value {
        match self {
            Self::NotValid { problems, .. } => {
                let issues: Vec<Value> = problems
                    .iter()
                    .map(|p| {
                        let path = p.split(": ").next().unwrap_or("");
                        serde_json::json!({"severity": "error", "code": "structure", "diagnostics": p, "expression": [path]})
                    })
                    .collect();
                serde_json::json!({"resourceType": "OperationOutcome", "issue": issues})
            }
            _ => fhir::outcome(self.issue_code(), self.message()),
        }
    }
}

pub(super) type Checked<T> = std::result::Result<T, Refusal>;

/// An observation derived from an uploaded resource (no id yet).
#[derive(Debug, Clone)]
pub struct Derived {
    pub obs: Observation,
    pub code: Code,
    /// What was accepted but is worth telling the client (format misses, an unreadable time).
    pub warnings: Vec<String>,
}

/// The id in `v[field].reference` when it reads `{ty}/{id}`.
pub(super) fn reference_id(v: &Value, field: &str, ty: &str) -> Option<Id> {
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
pub(super) struct Lookups {
    /// (system, code) -> the code, if it exists.
    pub(super) codes: HashMap<(String, String), Option<Code>>,
    /// device -> the scopes it supports, if it exists.
    pub(super) devices: HashMap<Id, Option<Vec<Id>>>,
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
pub(super) struct Shape<'a> {
    pub(super) status: &'a str,
    pub(super) system: &'a str,
    pub(super) code: &'a str,
    pub(super) identifiers: Vec<(String, String)>,
}

/// Upstream's first step, the R5 parse: an Observation object with a status and one code.
pub(super) fn shape(r: &Value) -> Checked<Shape<'_>> {
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
pub(super) async fn known_code(repo: &Repo, lookups: &mut Lookups, r: &Value, s: &Shape<'_>) -> Result<Checked<Code>> {
    if r["code"]["coding"].as_array().map(Vec::len) != Some(1) {
        return Ok(Err(Refusal::invalid("structure", "Exactly one Code must be provided.")));
    }
    Ok(lookups.code(repo, s.system, s.code).await?.ok_or_else(|| {
        Refusal::invalid("code-invalid", format!("Code not found: system={} code={}", s.system, s.code))
    }))
}

/// Upstream's eighth and ninth steps: base64 JSON, then the Open mHealth schemas. Gives the
/// observation (no id yet) and the warnings.
pub(super) fn data_point(r: &Value, patient: Id, device: Option<Id>, code: &Code, s: &Shape<'_>) -> Checked<Derived> {
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
pub(super) fn own_shape_checks(r: &Value, s: &Shape<'_>) -> Checked<()> {
    for (system, value) in &s.identifiers {
        check_identifier(system, value).map_err(|m| Refusal::invalid("value", m))?;
    }
    if r["valueAttachment"]["contentType"] != "application/json" {
        return Err(Refusal::invalid("value", "valueAttachment.contentType must be application/json."));
    }
    Ok(())
}

pub(super) fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(super) fn device_of(r: &Value) -> Checked<Id> {
    reference_id(r, "device", "Device").ok_or_else(|| {
        Refusal::invalid(
            "required",
            "Device is required and must be a reference to a Data Source ID and start with 'Device/'",
        )
    })
}

pub(super) fn subject_of(r: &Value) -> Checked<Id> {
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
pub(super) async fn derive(repo: &Repo, lookups: &mut Lookups, r: &Value) -> Result<Checked<Derived>> {
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
pub(super) struct Pending {
    pub(super) slot: usize,
    pub(super) identifiers: Vec<NaturalKey>,
    pub(super) outcome: Checked<Derived>,
}

/// Runs upstream's steps one to four (answers now) and six to nine plus JHE's own (kept behind
/// the duplicate check) for one entry.
pub(super) async fn check_entry(
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
pub(super) async fn later_steps(
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
