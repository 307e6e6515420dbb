//! FHIR R5 as the exchange serves it: resource renderings of the entities, Bundles,
//! OperationOutcome, the CapabilityStatement, and search-parameter parsing (`search`).
//!
//! Must not depend on: I/O, the web framework, SDKs.

mod observations;
pub mod r4;
pub mod r5;
pub mod search;
pub mod stored;

pub use observations::*;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::observation::Observation;
use crate::model::*;

pub const FHIR_VERSION: &str = "5.0.0";
pub const JHE_SOURCE: &str = "https://jupyterhealth.org/jhe";
pub const MODEL_SYSTEM: &str = "https://jupyterhealth.org/fhir/CodeSystem/model";
pub const USER_ID_SYSTEM: &str = "https://jupyterhealth.org/fhir/identifier/jhe-user-id";
pub const OMH_SYSTEM: &str = "https://w3id.org/openmhealth";
/// The most entries one batch Bundle may hold.
pub const MAX_BUNDLE_ENTRIES: usize = 1000;
/// The largest `_count`.
pub const MAX_COUNT: usize = 1000;
pub const DEFAULT_COUNT: usize = 20;

pub fn ts_ms(ms: i64) -> String {
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside what RFC 3339 writes: as the time crate has it (an empty string).
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        return crate::domain::views::ts(t);
    }
    let (h, mi, s) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    // `YYYY-MM-DDTHH:MM:SS.fffZ`, written digit by digit (no formatting machinery per entry).
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, h);
    put(14, 2, mi);
    put(17, 2, s);
    put(20, 3, frac);
    // RFC 3339 as the time crate writes it: the fraction without trailing zeros, none if zero.
    let kept = match frac {
        0 => 19,
        f if f % 100 == 0 => 21,
        f if f % 10 == 0 => 22,
        _ => 23,
    };
    let mut out = String::with_capacity(kept + 1);
    out.push_str(std::str::from_utf8(&b[..kept]).unwrap_or_default());
    out.push('Z');
    out
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (the days-to-civil
/// algorithm of H. Hinnant's date library): a page formats two times per entry.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An OperationOutcome with one error issue. `code` is a FHIR issue-type code.
pub fn outcome(code: &str, diagnostics: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]})
}

fn meta(last_updated: Option<String>) -> Value {
    match last_updated {
        Some(t) => json!({"lastUpdated": t, "source": JHE_SOURCE}),
        None => json!({"source": JHE_SOURCE}),
    }
}

fn model_type(code: &str) -> Value {
    json!({"coding": [{"system": MODEL_SYSTEM, "code": code}]})
}

/// Removes nulls, empty strings, empty arrays and empty objects (FHIR forbids empty values).
pub fn prune(v: Value) -> Value {
    fn keep(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        }
    }
    match v {
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, prune(v))).filter(|(_, v)| keep(v)).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).filter(keep).collect()),
        other => other,
    }
}

pub fn patient(p: &Patient, email: Option<&str>) -> Value {
    let mut telecom = Vec::new();
    if let Some(ph) = &p.telecom_phone {
        telecom.push(json!({"system": "phone", "value": ph, "use": "mobile"}));
    }
    if let Some(e) = email {
        telecom.push(json!({"system": "email", "value": e, "use": "home"}));
    }
    prune(json!({
        "resourceType": "Patient",
        "id": p.id.to_string(),
        "meta": meta(Some(crate::domain::views::ts(p.last_updated))),
        "identifier": p.identifiers.iter().map(|i| json!({"system": i.system, "value": i.value})).collect::<Vec<_>>(),
        "name": [{"family": p.name_family, "given": p.name_given.iter().collect::<Vec<_>>()}],
        "birthDate": p.birth_date,
        "telecom": telecom,
    }))
}

pub fn practitioner(p: &Practitioner) -> Value {
    prune(json!({
        "resourceType": "Practitioner",
        "id": p.id.to_string(),
        "meta": meta(None),
        "name": [{"family": p.name_family, "given": p.name_given.iter().collect::<Vec<_>>()}],
    }))
}

pub fn organization(o: &Organization) -> Value {
    prune(json!({
        "resourceType": "Organization",
        "id": o.id.to_string(),
        "meta": meta(None),
        "name": o.name,
        "type": [model_type("organization")],
        "partOf": o.part_of.map(|p| json!({"reference": format!("Organization/{p}")})),
    }))
}

pub fn group(s: &Study, members: Option<usize>) -> Value {
    prune(json!({
        "resourceType": "Group",
        "id": s.id.to_string(),
        "meta": meta(None),
        "name": s.name,
        "description": s.description,
        "type": "person",
        "membership": "enumerated",
        "code": model_type("study"),
        "quantity": members,
        "managingEntity": {"reference": format!("Organization/{}", s.organization_id)},
    }))
}

pub fn device(d: &DataSource) -> Value {
    prune(json!({
        "resourceType": "Device",
        "id": d.id.to_string(),
        "meta": meta(None),
        "displayName": d.name,
        "name": [{"value": d.name, "type": "user-friendly-name"}],
        "type": [model_type("data-source")],
    }))
}

/// An Observation as stored, rendered. `valueAttachment.data` is the uploaded base64, verbatim.
pub fn observation(o: &Observation, code: &Code, user_id: Option<Id>) -> Value {
    serde_json::to_value(ObservationView { obs: &o.into(), code, user_id }).unwrap_or(Value::Null)
}

/// A searchset Bundle; `base` is the FHIR base URL (entries get absolute `fullUrl`s). It always
/// carries `entry`, `[]` when nothing matched: clients (`jupyterhealth-client`) read `r["entry"]`.
pub fn searchset(base: &str, entries: Vec<Value>, total: Option<usize>, links: &[(&str, String)]) -> Value {
    let mut bundle = prune(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links.iter().map(|(rel, url)| json!({"relation": rel, "url": url})).collect::<Vec<_>>(),
        "entry": entries.into_iter().map(|r| {
            let full = format!("{base}/{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            json!({"fullUrl": full, "resource": r, "search": {"mode": "match"}})
        }).collect::<Vec<_>>(),
    }));
    if let Some(b) = bundle.as_object_mut() {
        b.entry("entry").or_insert_with(|| json!([]));
    }
    bundle
}

/// The search parameters each resource type supports: (name, FHIR type, description).
pub fn search_params(resource: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match resource {
        "Observation" => &[
            ("patient", "reference", "The patient (Patient/{id} or {id})"),
            (
                "patient._has:Group:member:_id",
                "special",
                "Only patients enrolled in this study (Group id); also narrows to the study's scopes",
            ),
            ("patient.organization", "reference", "Only patients of this organization"),
            ("patient.identifier", "token", "Patients with this identifier ([system]|value)"),
            ("identifier", "token", "Same as patient.identifier (as upstream)"),
            ("code", "token", "system|code; comma-separated values are alternatives"),
            ("date", "date", "Effective time, with prefixes eq, ge, gt, le, lt; repeat for a range"),
            ("_id", "token", "Observation ids, comma-separated"),
            ("_lastUpdated", "date", "Time stored, with prefixes eq, ge, gt, le, lt"),
            ("_sort", "special", "date, -date (default), _lastUpdated, -_lastUpdated"),
            ("_count", "number", "Page size, 1 to 1000 (default 20)"),
            ("_summary", "special", "count: only the total"),
            (
                "_source",
                "uri",
                "https://jupyterhealth.org/jhe (JHE's own, the default), or a FHIR source's URI (see below)",
            ),
        ],
        "Patient" => &[
            ("_id", "token", "Patient ids, comma-separated"),
            ("identifier", "token", "[system]|value"),
            ("_has:Group:member:_id", "special", "Only patients enrolled in this study (Group id)"),
            ("organization", "reference", "Only patients of this organization"),
            ("name", "string", "Family or given name starts with (case-insensitive)"),
            ("family", "string", "Family name starts with"),
            ("given", "string", "Given name starts with"),
            ("birthdate", "date", "Birth date, with prefixes"),
            ("_lastUpdated", "date", "Time last changed, with prefixes"),
            ("_count", "number", "Page size, 1 to 1000 (default 20)"),
            ("_summary", "special", "count: only the total"),
        ],
        "Group" => &[
            ("_id", "token", "Study ids"),
            ("organization", "reference", "Studies of this organization"),
            ("name", "string", "Name starts with"),
            ("_count", "number", "Page size"),
            ("_summary", "special", "count"),
        ],
        "Organization" | "Practitioner" => &[
            ("_id", "token", "Ids"),
            ("name", "string", "Name starts with"),
            ("_count", "number", "Page size"),
            ("_summary", "special", "count"),
        ],
        "Device" => &[
            ("_id", "token", "Data source ids"),
            ("type", "token", "data-source"),
            ("_count", "number", "Page size"),
            ("_summary", "special", "count"),
        ],
        "AuditEvent" => &[
            ("patient", "reference", "Events concerning this patient"),
            ("agent", "reference", "Events by this user (jhe-user-id)"),
            ("date", "date", "When recorded, with prefixes"),
            ("action", "token", "C, R, U, D or E"),
            ("outcome", "token", "0 (success), 4 (refused), 8 (failed)"),
            ("_count", "number", "Page size, 1 to 1000 (default 20)"),
        ],
        _ => &[],
    }
}

pub const RESOURCE_TYPES: &[&str] = &["Device", "Group", "Observation", "Organization", "Patient", "Practitioner"];

/// The parameters of stored resources common to every stored type.
const STORED_COMMON: &[(&str, &str, &str)] = &[
    ("patient", "reference", "The patient (Patient/{id} or {id})"),
    (
        "patient._has:Group:member:_id",
        "special",
        "Only patients enrolled in this study (Group id), and only if the study requests the type's scope",
    ),
    ("patient.organization", "reference", "Only patients of this organization"),
    ("_id", "token", "Resource ids (uuid), comma-separated"),
    ("_lastUpdated", "date", "Time stored, with prefixes eq, ge, gt, le, lt"),
    ("_sort", "special", "date, -date, _lastUpdated, -_lastUpdated (default)"),
    ("_count", "number", "Page size, 1 to 1000 (default 20)"),
    ("_summary", "special", "count: only the total"),
    (
        "_source",
        "uri",
        "https://jupyterhealth.org/fhir/fhir-source/{id}: what that FHIR source sent; with :below=https://jupyterhealth.org/fhir/fhir-source/ every source",
    ),
];

const CONSENT_PARAMS: &[(&str, &str, &str)] = &[
    ("patient", "reference", "The patient (required for practitioners)"),
    ("_id", "token", "{patient}-{study}"),
    ("status", "token", "active, inactive or draft"),
    ("_lastUpdated", "date", "Time of the last decision"),
    ("_count", "number", "Taken and not needed: a patient's consents are one page"),
];

fn kind_name(k: stored::Kind) -> &'static str {
    match k {
        stored::Kind::Token | stored::Kind::Code | stored::Kind::Identifier => "token",
        stored::Kind::Str => "string",
        stored::Kind::Reference => "reference",
        stored::Kind::Date => "date",
    }
}

/// One type's entry of the CapabilityStatement.
fn capability_of(t: &str) -> Value {
    let (records, as_sent) = (RESOURCE_TYPES.contains(&t), stored::is_stored_type(t));
    let mut codes = vec!["read", "search-type"];
    if t == "Observation" || as_sent {
        codes.push("create");
    }
    if as_sent {
        codes.extend(["update", "patch", "delete"]);
    }
    let mut params: Vec<(String, String, String)> = Vec::new();
    let mut add = |n: &str, ty: &str, d: &str| {
        if !params.iter().any(|(x, _, _)| x == n) {
            params.push((n.into(), ty.into(), d.into()));
        }
    };
    let listed: &[(&str, &str, &str)] = if t == "Consent" { CONSENT_PARAMS } else { search_params(t) };
    listed.iter().for_each(|(n, ty, d)| add(n, ty, d));
    if as_sent {
        // On a type also rendered from JHE's records, these apply to the resources stored as sent.
        let only = if records { "With _source naming a FHIR source: " } else { "" };
        STORED_COMMON.iter().for_each(|(n, ty, d)| add(n, ty, &format!("{only}{d}")));
        for p in stored::params(t) {
            add(p.name, kind_name(p.kind), &format!("{only}Over {} of resources stored as sent", p.paths.join(", ")));
        }
    }
    let doc = match t {
        "AuditEvent" => "The audit trail: superusers, and managers of the organizations of the patients involved (by patient or agent). Newest first.".to_string(),
        "Consent" => "A patient's consents, one per study (id {patient}-{study}): status active, inactive or draft; decision deny with the consented scopes as a permit provision and the refused ones nested in it. Readable by the patient and by practitioners of the study's organization.".to_string(),
        _ => {
            let mut d = String::new();
            if t == "Observation" {
                d.push_str(&format!("Open mHealth data points: code.coding is one {OMH_SYSTEM} code, valueAttachment is application/json with the base64 data point. Create needs subject Patient/{{id}}, device Device/{{id}} and the patient's consent. Conditional create with If-None-Exist: identifier=system|value. Pages follow link next (opaque cursor). "));
            }
            if records && as_sent {
                d.push_str("Read and search give JHE's own records (numeric ids); with _source=https://jupyterhealth.org/fhir/fhir-source/{id} (or :below) the resources stored as sent (uuid ids), which alone are updated and deleted. ");
            }
            if as_sent {
                d.push_str("Stored as sent under a patient's FHIR source (X-JHE-FHIR-Source-ID header or meta.source), validated as R5, upserted on the source's own id. Practitioners read them through a study of their organization that requests the scope http://hl7.org/fhir/resource-types|{type} and to which the patient consented.");
            }
            d.trim().to_string()
        }
    };
    prune(json!({
        "type": t,
        "documentation": doc,
        "interaction": codes.iter().map(|c| json!({"code": c})).collect::<Vec<_>>(),
        "conditionalCreate": t == "Observation",
        "searchParam": params.iter().map(|(n, ty, d)| json!({"name": n, "type": ty, "documentation": d})).collect::<Vec<_>>(),
    }))
}

/// Every type served: JHE's records, the types stored as sent, AuditEvent and Consent (sorted).
pub fn served_types() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ["AuditEvent", "Consent"]
        .into_iter()
        .chain(RESOURCE_TYPES.iter().copied())
        .chain(stored::TYPES.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The CapabilityStatement: exactly the resources, interactions and parameters served here.
pub fn capability_statement(base: &str, started: &str) -> Value {
    let resources: Vec<Value> = served_types().into_iter().map(capability_of).collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": started,
        "kind": "instance",
        "software": {"name": "JupyterHealth Exchange", "version": crate::config::VERSION},
        "implementation": {"description": "JupyterHealth Exchange", "url": format!("{base}/FHIR/R5")},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": format!("Batch Bundles (type batch) of at most {MAX_BUNDLE_ENTRIES} entries are accepted at POST {base}/FHIR/R5/ (Open mHealth Observations, and resources stored as sent under the FHIR source of the X-JHE-FHIR-Source-ID header or their meta.source); each entry is judged on its own."),
            "security": {
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
                "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris", "extension": [
                    {"url": "authorize", "valueUri": format!("{base}/o/authorize/")},
                    {"url": "token", "valueUri": format!("{base}/o/token/")},
                ]}],
            },
            "resource": resources,
            "interaction": [{"code": "batch"}],
        }],
    })
}

pub fn smart_configuration(base: &str) -> Value {
    json!({
        "issuer": format!("{base}/o"),
        "jwks_uri": format!("{base}/o/.well-known/jwks.json"),
        "authorization_endpoint": format!("{base}/o/authorize/"),
        "token_endpoint": format!("{base}/o/token/"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "email"],
        "capabilities": ["launch-standalone", "client-public", "client-confidential-symmetric"],
    })
}
