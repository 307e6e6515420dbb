//! Cross-checks the typed validators against the official Open mHealth / IEEE 1752 JSON schemas: for every
//! fixture under `fixtures/`, both must give the verdict of the folder it is in (`valid/` or `invalid/`).
//!
//! The schemas are read from `$OMH_SCHEMAS_DIR` (default `/work/shared/omh-schemas`; a relative path is taken
//! from the manifest directory), with every `$ref` resolved to a local file, so the test needs no network.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use jhe::omh::{supported_codes, validate_body, validate_data_point};
use jsonschema::{Retrieve, Uri, Validator};
use serde_json::{Value, json};

const OMH_BASE: &str = "https://w3id.org/openmhealth/schemas/omh/";
const IEEE_BASE: &str = "https://w3id.org/ieee/ieee-1752-schema/";

type BoxError = Box<dyn Error + Send + Sync>;

/// `$OMH_SCHEMAS_DIR`, relative to this crate's manifest directory unless absolute.
fn schemas_dir() -> PathBuf {
    let dir = std::env::var_os("OMH_SCHEMAS_DIR").unwrap_or_else(|| "../../shared/omh-schemas".into());
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/omh")
}

fn read_json(path: &Path) -> Result<Value, BoxError> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// Reads a schema file; the OMH `*-1.x.json` aliases hold only the name of the file they stand for.
fn load(path: &Path) -> Result<Value, BoxError> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match text.trim() {
        alias if !alias.starts_with('{') => load(&path.with_file_name(alias)),
        _ => read_json(path),
    }
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let path = entry.path();
        if path.is_dir() { find_file(&path, name) } else { (path.file_name()? == name).then_some(path) }
    })
}

/// Resolves `https://w3id.org/openmhealth/schemas/omh/<file>` and `https://w3id.org/ieee/ieee-1752-schema/<file>`
/// (what relative `$ref`s resolve to as well) to the local copies.
struct LocalSchemas(PathBuf);

impl Retrieve for LocalSchemas {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, BoxError> {
        let uri = uri.as_str();
        let path = if let Some(file) = uri.strip_prefix(OMH_BASE) {
            Some(self.0.join("omh").join(file))
        } else if let Some(file) = uri.strip_prefix(IEEE_BASE) {
            find_file(&self.0.join("ieee"), file)
        } else {
            None
        };
        load(&path.ok_or_else(|| format!("no local copy of {uri}"))?)
    }
}

fn build(schema: &Value, base_uri: String) -> Validator {
    // Draft 7 does not define the `uuid` format the IEEE header uses; check it with the crate's own 2019-09 one.
    let uuid = jsonschema::draft201909::options()
        .should_validate_formats(true)
        .build(&json!({"format": "uuid"}))
        .expect("uuid format schema");
    jsonschema::options()
        .with_base_uri(base_uri)
        .with_retriever(LocalSchemas(schemas_dir()))
        .with_format("uuid", move |s: &str| uuid.is_valid(&json!(s)))
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("cannot build the JSON schema validator: {e}"))
}

/// `omh:blood-glucose:4.0` -> `blood-glucose-4.0`
fn dir_name(code: &str) -> String {
    let parts: Vec<_> = code.split(':').collect();
    format!("{}-{}", parts[1], parts[2])
}

fn body_schema(code: &str) -> Validator {
    let file = format!("{}.json", dir_name(code));
    let schema = load(&schemas_dir().join("omh").join(&file)).unwrap_or_else(|e| panic!("{e}"));
    build(&schema, format!("{OMH_BASE}{file}"))
}

fn data_point_schema() -> Validator {
    let file = "data-point-1.0.json";
    let ieee = schemas_dir().join("ieee");
    let path = find_file(&ieee, file).unwrap_or_else(|| panic!("no {file} under {}", ieee.display()));
    let schema = load(&path).unwrap_or_else(|e| panic!("{e}"));
    build(&schema, format!("{IEEE_BASE}{file}"))
}

fn verdict(result: Result<(), String>) -> String {
    match result {
        Ok(()) => "accepted".into(),
        Err(e) => format!("rejected ({e})"),
    }
}

/// The fixtures of a folder, as (path, JSON, whether they should be valid).
fn fixtures(dir: &Path) -> Vec<(PathBuf, Value, bool)> {
    let mut found = Vec::new();
    for (kind, valid) in [("valid", true), ("invalid", false)] {
        let Ok(entries) = fs::read_dir(dir.join(kind)) else { continue };
        for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let json = read_json(&path).unwrap_or_else(|e| panic!("{e}"));
            found.push((path, json, valid));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn compare(path: &Path, valid: bool, typed: Result<(), String>, schema: Result<(), String>) -> Option<String> {
    (typed.is_ok() != valid || schema.is_ok() != valid).then(|| {
        let name = path.strip_prefix(fixtures_dir()).unwrap_or(path).display();
        let expected = if valid { "valid" } else { "invalid" };
        format!("{name}: expected {expected}; typed validator {}; JSON schema {}", verdict(typed), verdict(schema))
    })
}

#[test]
fn bodies_agree_with_the_json_schemas() {
    let mut failures = Vec::new();
    for code in supported_codes() {
        let schema = body_schema(code);
        let all = fixtures(&fixtures_dir().join(dir_name(code)));
        let count = |valid| all.iter().filter(|f| f.2 == valid).count();
        if count(true) < 3 || count(false) < 5 {
            failures.push(format!("{code}: needs at least 3 valid and 5 invalid fixtures"));
        }
        for (path, body, valid) in &all {
            let typed = validate_body(code, body).map_err(|e| e.to_string());
            let reference = schema.validate(body).map_err(|e| e.to_string());
            failures.extend(compare(path, *valid, typed, reference));
        }
    }
    assert!(failures.is_empty(), "{} disagreement(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn data_points_agree_with_the_json_schemas() {
    let data_point = data_point_schema();
    let all = fixtures(&fixtures_dir().join("data-point"));
    assert!(all.iter().any(|f| f.2) && all.iter().any(|f| !f.2), "data point fixtures missing");
    let mut failures = Vec::new();
    for (path, fixture, valid) in &all {
        let (code, dp) = (fixture["code"].as_str().expect("fixture code"), &fixture["data_point"]);
        let typed = validate_data_point(code, dp).map(drop).map_err(|e| e.to_string());
        // The data point schema, the body schema, and the one rule no schema states: schema_id matches the code.
        let id = &dp["header"]["schema_id"];
        let reference = data_point.validate(dp).map_err(|e| e.to_string()).and_then(|()| {
            body_schema(code).validate(&dp["body"]).map_err(|e| format!("body: {e}"))?;
            let expected = code.split(':').collect::<Vec<_>>();
            let found = ["namespace", "name", "version"].map(|k| id[k].as_str().unwrap_or_default());
            if found == expected[..] { Ok(()) } else { Err(format!("schema_id {id} is not {code}")) }
        });
        failures.extend(compare(path, *valid, typed, reference));
    }
    assert!(failures.is_empty(), "{} disagreement(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn examples_satisfy_the_json_schemas() {
    let data_point = data_point_schema();
    for code in supported_codes() {
        let dp = jhe::omh::example(code, "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59", "2024-05-01T08:30:00-07:00")
            .unwrap_or_else(|| panic!("no example for {code}"));
        assert!(data_point.validate(&dp).is_ok(), "{code}: example header rejected by the JSON schema");
        if let Err(e) = body_schema(code).validate(&dp["body"]) {
            panic!("{code}: example body rejected by the JSON schema: {e}");
        }
    }
}

/// Format edge cases, through a heart rate body (date-time) and a data point header (UUID, IRI).
#[test]
fn formats_agree_with_the_json_schemas() {
    let (code, schema, data_point) = ("omh:heart-rate:2.0", body_schema("omh:heart-rate:2.0"), data_point_schema());
    let mut failures = Vec::new();
    for date_time in [
        "2024-05-01T08:30:00Z",
        "2024-05-01t08:30:00z",
        "2024-05-01T08:30:00.123456789012+05:30",
        "2024-05-01T08:30:00-00:00",
        "0000-01-01T00:00:00Z",
        "2024-02-29T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2016-12-31T18:59:60-05:00",
        "2016-12-31T23:59:60+01:00",
        "2024-05-01T08:30:60Z",
        "2024-05-01T08:30:00",
        "2024-05-01T08:30:00.Z",
        "2024-05-01T08:30Z",
        "2024-05-01T08:30:00+05",
        "2024-05-01T08:30:00+05:60",
        "2024-05-01T24:00:00Z",
        "2024-05-01 08:30:00Z",
        "2024-05-01T08:30:00Z ",
        "20240501T083000Z",
    ] {
        let body =
            json!({"heart_rate": {"value": 60, "unit": "beats/min"}, "effective_time_frame": {"date_time": date_time}});
        let (typed, reference) = (validate_body(code, &body).is_ok(), schema.is_valid(&body));
        if typed != reference {
            failures.push(format!("date-time {date_time:?}: typed {typed}, JSON schema {reference}"));
        }
    }
    let header = |uuid: &str, iri: &str| {
        json!({
            "header": {
                "uuid": uuid,
                "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
                "source_creation_date_time": "2024-05-01T08:30:00Z",
                "external_datasheets": [{"datasheet_reference": iri}],
            },
            "body": {"heart_rate": {"value": 60, "unit": "beats/min"}, "effective_time_frame": {"date_time": "2024-05-01T08:30:00Z"}},
        })
    };
    let good_uuid = "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59";
    for uuid in [
        good_uuid,
        "0B7E4C1E-6C2A-4C1B-9A3E-6F1D2C3B4A59",
        "0b7e4c1e6c2a4c1b9a3e6f1d2c3b4a59",
        "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a5",
        "urn:uuid:0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59",
        "{0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59}",
    ] {
        let dp = header(uuid, "https://example.org/x");
        let (typed, reference) = (validate_data_point(code, &dp).is_ok(), data_point.is_valid(&dp));
        if typed != reference {
            failures.push(format!("uuid {uuid:?}: typed {typed}, JSON schema {reference}"));
        }
    }
    for iri in [
        "https://example.org/datasheets/meter-1?v=2#page=3",
        "urn:isbn:0451450523",
        "mailto:someone@example.org",
        "https://user:pw@example.org:8443/",
        "https://[2001:db8::1]/a",
        "https://[v1.fe80::a+en1]/a",
        "http://例え.jp/パス?q=値",
        "https://example.org/%E2%82%AC",
        "https://example.org:/",
        "file:///etc/hosts",
        "example.org/datasheet",
        "/datasheet",
        "https://exa mple.org",
        "https://example.org/%zz",
        "https://example.org/a#b#c",
        "https://[2001:db8::1/a",
        "https://a@b@example.org/",
        "1https://example.org",
        "https://example.org:80a/",
        "https://example.org/<a>",
    ] {
        let dp = header(good_uuid, iri);
        let (typed, reference) = (validate_data_point(code, &dp).is_ok(), data_point.is_valid(&dp));
        if typed != reference {
            failures.push(format!("IRI {iri:?}: typed {typed}, JSON schema {reference}"));
        }
    }
    assert!(failures.is_empty(), "{} disagreement(s):\n{}", failures.len(), failures.join("\n"));
}
