//! The data point header, per IEEE 1752 `header-1.0` (with `schema-id-1.0` and `frequency-unit-value-1.0`).

use serde_json::Value;

use super::check::{Obj, Res, date_time, exactly_one, is_iri, is_uuid, number, one_of, string, unit_value};
use super::time_frame::DURATION_UNITS;
use super::{OmhError, SchemaId};

/// Checks a header; gives its `uuid` and `schema_id`.
pub(crate) fn validate(value: &Value, path: &str) -> Res<(String, SchemaId)> {
    let header = Obj::new(value, path)?;
    let uuid = header.req("uuid", |value, path| match value.as_str() {
        Some(uuid) if is_uuid(uuid) => Ok(uuid),
        _ => Err(OmhError::new(path, "must be a UUID, e.g. \"123e4567-e89b-12d3-a456-426614174000\"")),
    })?;
    let schema_id = header.req("schema_id", schema_id)?;
    header.req("source_creation_date_time", date_time)?;
    header.opt("modality", one_of(&["sensed", "self-reported"]))?;
    header.opt("acquisition_rate", frequency)?;
    header.opt("external_datasheets", datasheets)?;
    Ok((uuid.to_owned(), schema_id))
}

fn schema_id(value: &Value, path: &str) -> Res<SchemaId> {
    let id = Obj::new(value, path)?;
    let field = |key| id.req(key, string).map(str::to_owned);
    Ok(SchemaId { namespace: field("namespace")?, name: field("name")?, version: field("version")? })
}

/// A frequency in Hz, or a number of times per duration or duration range.
fn frequency(value: &Value, path: &str) -> Res<()> {
    let rate = Obj::new(value, path)?;
    exactly_one(
        path,
        "either value and unit (Hz), or number_of_times and time_window",
        [
            rate.has_all(&["value", "unit"]).then(|| unit_value(&["Hz"])(value, path).map(drop)),
            rate.has_all(&["number_of_times", "time_window"]).then(|| {
                rate.req("number_of_times", number)?;
                rate.req("time_window", time_window)
            }),
        ],
    )
}

/// A duration, or a duration range.
fn time_window(value: &Value, path: &str) -> Res<()> {
    let window = Obj::new(value, path)?;
    exactly_one(
        path,
        "either value and unit, or low_value, high_value and unit",
        [
            window.has_all(&["value", "unit"]).then(|| unit_value(DURATION_UNITS)(value, path).map(drop)),
            window.has_all(&["low_value", "high_value", "unit"]).then(|| {
                window.req("low_value", number)?;
                window.req("high_value", number)?;
                window.req("unit", one_of(DURATION_UNITS)).map(drop)
            }),
        ],
    )
}

fn datasheets(value: &Value, path: &str) -> Res<()> {
    let items = value.as_array().ok_or_else(|| OmhError::new(path, "must be an array"))?;
    items.iter().enumerate().try_for_each(|(i, item)| {
        let sheet = Obj::new(item, &format!("{path}[{i}]"))?;
        sheet.opt("datasheet_type", string)?;
        sheet.req("datasheet_reference", |value, path| match value.as_str() {
            Some(iri) if is_iri(iri) => Ok(()),
            _ => Err(OmhError::new(path, "must be an absolute IRI, e.g. \"https://example.org/datasheet\"")),
        })
    })
}
