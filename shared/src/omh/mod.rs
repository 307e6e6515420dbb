//! Typed validators for Open mHealth (IEEE 1752) data points.
//!
//! Each supported schema (see [`supported_codes`]) has a hand-written validator that accepts exactly what the
//! official JSON schema accepts, with errors naming the offending field (`body.blood_glucose.unit: ...`).
//! No schema file is read at run time; `tests/schema_cross_check.rs` compares these validators with the
//! official schemas on the fixtures.

mod bodies;
mod check;
mod header;
#[cfg(test)]
mod tests;
mod time_frame;

use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;

use check::Obj;

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

/// What a valid data point tells about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPoint {
    pub uuid: String,
    pub schema_id: SchemaId,
    pub effective: Option<Effective>,
}

/// Why a data point or body is invalid; `path` locates the field, e.g. `body.blood_glucose.unit`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OmhError {
    pub path: String,
    pub message: String,
}

impl OmhError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// Validates a whole data point `{header, body}` for the FHIR coding `code`, e.g. `"omh:blood-glucose:4.0"`:
/// the IEEE 1752 header, its `schema_id` against `code`, then the body against the code's schema. The effective
/// time is that of [`effective_time`].
pub fn validate_data_point(code: &str, dp: &Value) -> Result<DataPoint, OmhError> {
    let schema = bodies::find(code)?;
    let root = Obj::new(dp, "")?;
    let (uuid, schema_id) = root.req("header", header::validate)?;
    let expected = bodies::schema_id(schema.code);
    if schema_id != expected {
        return Err(OmhError::new(
            "header.schema_id",
            format!("must be {} to match the code \"{code}\", found {}", describe(&expected), describe(&schema_id)),
        ));
    }
    let effective = root.req("body", |body, path| schema.validate(body, path))?;
    Ok(DataPoint { uuid, schema_id, effective })
}

fn describe(id: &SchemaId) -> String {
    format!("{{namespace: \"{}\", name: \"{}\", version: \"{}\"}}", id.namespace, id.name, id.version)
}

/// Validates only a body against the schema of `code`.
pub fn validate_body(code: &str, body: &Value) -> Result<(), OmhError> {
    bodies::find(code)?.validate(body, "body").map(drop)
}

/// The codes that have a validator.
pub fn supported_codes() -> &'static [&'static str] {
    &bodies::CODES
}

/// A valid example data point for `code`, with the given header `uuid` and `effective` RFC 3339 date-time
/// (used as the instant, or as the start of the interval for schemas that need one).
/// `None` for an unsupported code, or when `uuid` or `effective` would make the example invalid.
pub fn example(code: &str, uuid: &str, effective: &str) -> Option<Value> {
    let schema = bodies::find(code).ok()?;
    let id = bodies::schema_id(schema.code);
    let dp = serde_json::json!({
        "header": {
            "uuid": uuid,
            "schema_id": {"namespace": id.namespace, "name": id.name, "version": id.version},
            "source_creation_date_time": effective,
            "modality": "sensed",
        },
        "body": (schema.example)(effective),
    });
    validate_data_point(code, &dp).is_ok().then_some(dp)
}

/// The effective time of a body, from `body.effective_time_frame`: a `date_time` gives an instant; a
/// `time_interval` gives a period from its start and end, from a bound and a duration, or from a `date` and a
/// `part_of_day` (UTC: night 00-06, morning 06-12, afternoon 12-18, evening 18-24). `None` when absent or
/// malformed (per both the OMH and the IEEE 1752 time frame schemas).
pub fn effective_time(body: &Value) -> Option<Effective> {
    let frame = body.get("effective_time_frame")?;
    let flavors = [time_frame::Flavor::Omh, time_frame::Flavor::Ieee];
    flavors.into_iter().find_map(|flavor| time_frame::time_frame(frame, "", flavor).ok())?.effective()
}
