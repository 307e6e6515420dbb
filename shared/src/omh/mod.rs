//! Open mHealth (IEEE 1752) data points: validation against the official JSON schemas, shipped with
//! the product (`shared/schemas/`, see [`schemas`]), and what the server derives from a valid one
//! (its `uuid` and effective time, [`time_frame`]).
//!
//! The verdict is upstream's: the header is checked against IEEE 1752 `header-1.0` and the body
//! against the schema of the FHIR code (`omh:<name>:<version>` -> `<name>-<version>.json`), with
//! `format` (date-time, iri, uuid, ...) as an annotation, as the Python `jsonschema` validator
//! upstream uses has it. A format miss does not refuse the data point: it comes back as a warning,
//! and so do a `schema_id` that names another schema than the code and a time frame that cannot be
//! read (the observation is then stored without an effective time). Adding a data type is adding
//! its schema file and its code.

mod examples;
mod schemas;
#[cfg(test)]
mod tests;
mod time_frame;

use std::fmt;

use jsonschema::error::{ValidationError, ValidationErrorKind};
use serde_json::Value;
use time::OffsetDateTime;

pub use schemas::urls as schema_urls;
pub use time_frame::{effective_time, is_uuid};

/// The `schema_id` of a data point header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaId {
    pub namespace: String,
    pub name: String,
    pub version: String,
}

impl fmt::Display for SchemaId {
    /// Formats as a code, `namespace:name:version`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.namespace, self.name, self.version)
    }
}

/// When a measurement applies: a point in time or a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    Instant(OffsetDateTime),
    Period { start: OffsetDateTime, end: OffsetDateTime },
}

/// What a valid data point tells about itself, and what was noticed but accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPoint {
    pub uuid: String,
    pub schema_id: Option<SchemaId>,
    pub effective: Option<Effective>,
    /// Format misses and oddities that do not refuse it, one sentence each.
    pub warnings: Vec<String>,
}

/// Why a data point is invalid; `path` locates the field, e.g. `body.blood_glucose.unit`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OmhError {
    pub path: String,
    pub message: String,
}

impl OmhError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// How many schema errors a refusal names.
const MAX_ERRORS: usize = 3;

/// `prefix` and a JSON pointer as a dotted path: `body` + `/a/0/b` -> `body.a[0].b`.
fn dotted(prefix: &str, pointer: &str) -> String {
    let mut out = prefix.to_string();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push('.');
            out.push_str(&seg);
        }
    }
    out
}

/// Checks `instance` (the part `prefix` of a data point) against the schema at `url`: the schema's
/// errors with `format` as an annotation, or its format misses as warnings.
fn check(url: &str, prefix: &str, instance: &Value, warnings: &mut Vec<String>) -> Result<(), OmhError> {
    let c = schemas::checker(url).map_err(|e| OmhError::new(prefix, e))?;
    let mut errors = c
        .lax
        .iter_errors(instance)
        .take(MAX_ERRORS)
        .map(|e| (dotted(prefix, e.instance_path().as_str()), e.to_string()));
    if let Some((path, first)) = errors.next() {
        let more: Vec<String> = errors.map(|(p, m)| format!("{p}: {m}")).collect();
        let message = if more.is_empty() { first } else { format!("{first}; {}", more.join("; ")) };
        return Err(OmhError::new(path, message));
    }
    for e in c.strict.iter_errors(instance) {
        let misses = format_misses(&e).unwrap_or_else(|| vec![(e.instance_path().as_str().to_string(), e.to_string())]);
        for (pointer, message) in misses {
            warnings.push(format!("{}: {message} (accepted: a format is not checked)", dotted(prefix, &pointer)));
        }
    }
    Ok(())
}

/// The `format` errors (JSON pointer, message) an error of the format-checking validator comes
/// down to: itself, or, for a `oneOf`/`anyOf` that no branch passed, those of a branch that failed
/// on formats alone (the one the lax validator took). `None` when it is not only formats.
fn format_misses(e: &ValidationError<'_>) -> Option<Vec<(String, String)>> {
    match e.kind() {
        ValidationErrorKind::Format { .. } => Some(vec![(e.instance_path().as_str().to_string(), e.to_string())]),
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            context.iter().find_map(|branch| {
                branch.iter().try_fold(Vec::new(), |mut all, e| {
                    all.extend(format_misses(e)?);
                    Some(all)
                })
            })
        }
        _ => None,
    }
}

/// Validates a whole data point `{header, body}` for the FHIR coding `code`, e.g.
/// `"omh:blood-glucose:4.0"`: the header against IEEE 1752 `header-1.0`, the body against the
/// code's schema. A code whose schema is not shipped is refused, as upstream refuses it.
pub fn validate_data_point(code: &str, dp: &Value) -> Result<DataPoint, OmhError> {
    let body_url = schemas::body_url(code)
        .ok_or_else(|| OmhError::new("code", format!("no Open mHealth or IEEE 1752 schema is known for \"{code}\"")))?;
    let Some(point) = dp.as_object() else {
        return Err(OmhError::new("data_point", "must be an object with a header and a body"));
    };
    let (header, body) = (point.get("header").unwrap_or(&Value::Null), point.get("body").unwrap_or(&Value::Null));
    let mut warnings = Vec::new();
    check(schemas::HEADER_URL, "header", header, &mut warnings)?;
    check(&body_url, "body", body, &mut warnings)?;
    // The header schema requires a string uuid; JHE keys its duplicate guard on it.
    let uuid = header["uuid"].as_str().unwrap_or_default().to_string();
    let id = &header["schema_id"];
    let schema_id = match (id["namespace"].as_str(), id["name"].as_str(), id["version"].as_str()) {
        (Some(namespace), Some(name), Some(version)) => {
            Some(SchemaId { namespace: namespace.into(), name: name.into(), version: version.into() })
        }
        _ => None,
    };
    if let Some(s) = schema_id.as_ref().filter(|s| s.to_string() != code) {
        warnings.push(format!(
            "header.schema_id: names {s}, but the observation's code is {code}; the body was checked against {code}"
        ));
    }
    let effective = effective_time(body);
    if effective.is_none() && body.get("effective_time_frame").is_some() {
        warnings.push(
            "body.effective_time_frame: cannot be read as a time; stored without an effective time (found by _lastUpdated)"
                .into(),
        );
    }
    Ok(DataPoint { uuid, schema_id, effective, warnings })
}

/// Whether a code has a shipped body schema (uploads of other codes are refused).
pub fn has_schema(code: &str) -> bool {
    schemas::body_url(code).is_some()
}

/// The codes [`example`] has a body for.
pub fn example_codes() -> impl Iterator<Item = &'static str> {
    examples::BODIES.iter().map(|(code, _)| *code)
}

/// A valid example data point for `code`, with the given header `uuid` and `effective` RFC 3339 date-time
/// (used as the instant, or as the start of the interval for schemas that need one).
/// `None` for a code without an example, or when the result is not a valid data point without warnings.
pub fn example(code: &str, uuid: &str, effective: &str) -> Option<Value> {
    let (_, body) = examples::BODIES.iter().find(|(c, _)| *c == code)?;
    let (namespace, rest) = code.split_once(':')?;
    let (name, version) = rest.split_once(':')?;
    let dp = serde_json::json!({
        "header": {
            "uuid": uuid,
            "schema_id": {"namespace": namespace, "name": name, "version": version},
            "source_creation_date_time": effective,
            "modality": "sensed",
        },
        "body": body(effective),
    });
    validate_data_point(code, &dp).ok().filter(|p| p.warnings.is_empty()).map(|_| dp)
}
