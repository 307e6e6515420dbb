//! FHIR resources stored as sent ("auxiliary" upstream): the types held, how a body is stamped
//! with where it came from and whose it is, their search parameters and how each matches a body.

use serde_json::{Value, json};

use super::search::{TimeRange, parse_date, reference_id};
use crate::model::Id;

/// Where every stored resource's `meta.source` points: `{SOURCE_BASE}/{fhir source id}`.
pub const SOURCE_BASE: &str = "https://jupyterhealth.org/fhir/fhir-source";
/// The extensions naming the patient a stored resource belongs to.
pub const PATIENT_ID_EXT: &str = "https://jupyterhealth.org/fhir/StructureDefinition/patient-id";
pub const PATIENT_NAME_EXT: &str = "https://jupyterhealth.org/fhir/StructureDefinition/patient-full-name";
/// The catalogue system of the scope that covers a stored type (`{system}|{type}`).
pub const TYPE_SCOPE_SYSTEM: &str = "http://hl7.org/fhir/resource-types";

/// The types stored as sent (upstream's list). Observation, Patient, Group, Organization and
/// Device are also rendered from JHE's own records; for those the id's shape and `_source` choose.
pub const TYPES: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Group",
    "Immunization",
    "Location",
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
];

pub fn is_stored_type(t: &str) -> bool {
    TYPES.contains(&t)
}

/// The canonical `meta.source` of a FHIR source.
pub fn source_uri(source: Id) -> String {
    format!("{SOURCE_BASE}/{source}")
}

/// The FHIR source id a `meta.source` names, if it is one of ours.
pub fn parse_source_uri(uri: &str) -> Option<Id> {
    let tail = uri.strip_prefix(SOURCE_BASE)?.strip_prefix('/')?;
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tail.parse().ok()
}

/// Whether an id has the shape of a stored resource's id (a UUID) rather than a record's (digits).
pub fn is_stored_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Stamps a body as stored: its `id`, `meta.source` and `meta.lastUpdated`, and the patient
/// extensions (earlier copies of them replaced, other extensions kept).
pub fn stamp(body: &mut Value, id: &str, source: Id, patient: Id, full_name: &str, last_updated: &str) {
    body["id"] = json!(id);
    if !body["meta"].is_object() {
        body["meta"] = json!({});
    }
    body["meta"]["source"] = json!(source_uri(source));
    body["meta"]["lastUpdated"] = json!(last_updated);
    let mut ext: Vec<Value> = body["extension"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| !matches!(e["url"].as_str(), Some(PATIENT_ID_EXT) | Some(PATIENT_NAME_EXT)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    ext.push(json!({"url": PATIENT_ID_EXT, "valueInteger": patient}));
    if !full_name.is_empty() {
        ext.push(json!({"url": PATIENT_NAME_EXT, "valueString": full_name}));
    }
    body["extension"] = Value::Array(ext);
}

/// How a search parameter's value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[system]|code` against Codings.
    Token,
    /// A plain code.
    Code,
    /// Starts with, case-insensitively.
    Str,
    /// A reference (`Type/id` or its id).
    Reference,
    /// A date with prefixes.
    Date,
    /// `[system]|value` against Identifiers.
    Identifier,
}

/// A search parameter of a stored type: its name, kind and the paths it reads.
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub paths: &'static [&'static str],
}

/// A `Param` literal (a struct expression, so the tables below are constants).
macro_rules! p {
    ($name:expr, $kind:expr, $paths:expr) => {
        Param { name: $name, kind: $kind, paths: $paths }
    };
}

use Kind::*;
const NAME: &[&str] = &["name.family", "name.given", "name.text"];
const ADDRESS: &[&str] = &["address.text", "address.line", "address.city", "address.state", "address.postalCode"];

/// The search parameters of each stored type (upstream's configuration).
pub fn params(t: &str) -> &'static [Param] {
    match t {
        "AllergyIntolerance" => &[p!("clinical-status", Token, &["clinicalStatus.coding"])],
        "CarePlan" => &[
            p!("category", Token, &["category.coding"]),
            p!("status", Code, &["status"]),
            p!("date", Date, &["period.start"]),
        ],
        "CareTeam" => &[p!("role", Token, &["participant.role.coding"]), p!("status", Code, &["status"])],
        "Condition" => &[
            p!("abatement-date", Date, &["abatementDateTime", "abatementPeriod.start"]),
            p!("asserted-date", Date, &["assertedDate"]),
            p!("category", Token, &["category.coding"]),
            p!("clinical-status", Token, &["clinicalStatus.coding"]),
            p!("code", Token, &["code.coding"]),
            p!("encounter", Reference, &["encounter.reference"]),
            p!("onset-date", Date, &["onsetDateTime", "onsetPeriod.start"]),
            p!("recorded-date", Date, &["recordedDate"]),
        ],
        "Device" => &[p!("status", Code, &["status"]), p!("type", Token, &["type.coding"])],
        "DiagnosticReport" | "Observation" => &[
            p!("category", Token, &["category.coding"]),
            p!("code", Token, &["code.coding"]),
            p!("status", Code, &["status"]),
            p!("date", Date, &["effectiveDateTime", "effectivePeriod.start"]),
        ],
        "DocumentReference" => &[
            p!("category", Token, &["category.coding"]),
            p!("type", Token, &["type.coding"]),
            p!("status", Code, &["status"]),
            p!("date", Date, &["date"]),
            p!("period", Date, &["context.period.start", "context.period.end"]),
        ],
        "Encounter" => &[
            p!("class", Token, &["class.coding"]),
            p!("identifier", Identifier, &["identifier"]),
            p!("discharge-disposition", Token, &["admission.dischargeDisposition.coding"]),
            p!("location", Reference, &["location.location.reference"]),
            p!("status", Code, &["status"]),
            p!("type", Token, &["type.coding"]),
            p!("date", Date, &["period.start"]),
        ],
        "Goal" => &[
            p!("description", Str, &["description.text"]),
            p!("lifecycle-status", Code, &["lifecycleStatus"]),
            p!("target-date", Date, &["target.dueDate"]),
        ],
        "Immunization" => &[p!("status", Code, &["status"]), p!("date", Date, &["occurrenceDateTime"])],
        "Location" => &[
            p!("name", Str, &["name"]),
            p!("address", Str, ADDRESS),
            p!("address-city", Str, &["address.city"]),
            p!("address-state", Str, &["address.state"]),
            p!("address-postalcode", Str, &["address.postalCode"]),
        ],
        "MedicationDispense" => &[p!("status", Code, &["status"]), p!("type", Token, &["type.coding"])],
        "MedicationRequest" => &[
            p!("intent", Code, &["intent"]),
            p!("status", Code, &["status"]),
            p!("encounter", Reference, &["encounter.reference"]),
            p!("authoredon", Date, &["authoredOn"]),
        ],
        "Organization" => &[p!("name", Str, &["name"]), p!("address", Str, ADDRESS)],
        "Patient" => &[
            p!("birthdate", Date, &["birthDate"]),
            p!("death-date", Date, &["deceasedDateTime"]),
            p!("family", Str, &["name.family"]),
            p!("given", Str, &["name.given"]),
            p!("name", Str, NAME),
            p!("identifier", Identifier, &["identifier"]),
        ],
        "Practitioner" => &[p!("name", Str, NAME), p!("identifier", Identifier, &["identifier"])],
        "PractitionerRole" => {
            &[p!("practitioner", Reference, &["practitioner.reference"]), p!("specialty", Token, &["specialty.coding"])]
        }
        "Procedure" => &[
            p!("code", Token, &["code.coding"]),
            p!("status", Code, &["status"]),
            p!("date", Date, &["occurrenceDateTime", "occurrencePeriod.start"]),
        ],
        "QuestionnaireResponse" => &[
            p!("questionnaire", Reference, &["questionnaire"]),
            p!("status", Code, &["status"]),
            p!("authored", Date, &["authored"]),
        ],
        "RelatedPerson" => &[p!("name", Str, NAME)],
        "ServiceRequest" => &[
            p!("category", Token, &["category.coding"]),
            p!("code", Token, &["code.coding"]),
            p!("status", Code, &["status"]),
            p!("authored", Date, &["authoredOn"]),
        ],
        _ => &[],
    }
}

/// The first date a `_sort=date` of a stored type orders by.
pub fn sort_date_paths(t: &str) -> &'static [&'static str] {
    params(t).iter().find(|p| p.kind == Date).map_or(&[], |p| p.paths)
}

/// Every value at a dotted path, through arrays (each step's arrays are opened).
pub fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut here = vec![v];
    for step in path.split('.') {
        let mut next = Vec::new();
        for x in here {
            match &x[step] {
                Value::Array(a) => next.extend(a.iter()),
                Value::Null => {}
                y => next.push(y),
            }
        }
        here = next;
    }
    here
}

/// A parsed parameter condition: one of `alternatives` must hold (comma = OR).
pub struct Condition {
    pub param: &'static Param,
    pub alternatives: Vec<Alternative>,
}

pub enum Alternative {
    Text { system: Option<String>, value: String },
    Dates(TimeRange),
}

/// Parses a parameter of a stored type; `None` when the type has no such parameter.
pub fn condition(t: &str, name: &str, value: &str) -> Option<Result<Condition, String>> {
    let param = params(t).iter().find(|p| p.name == name)?;
    let mut alternatives = Vec::new();
    for v in value.split(',') {
        let alt = match param.kind {
            Date => match parse_date(v) {
                Ok(r) => Alternative::Dates(r),
                Err(e) => return Some(Err(format!("{name}: {e}"))),
            },
            Token | Identifier => match v.split_once('|') {
                Some((s, c)) => Alternative::Text { system: Some(s.to_string()), value: c.to_string() },
                None => Alternative::Text { system: None, value: v.to_string() },
            },
            _ => Alternative::Text { system: None, value: v.to_string() },
        };
        alternatives.push(alt);
    }
    Some(Ok(Condition { param, alternatives }))
}

impl Condition {
    pub fn matches(&self, body: &Value) -> bool {
        let found: Vec<&Value> = self.param.paths.iter().flat_map(|p| values_at(body, p)).collect();
        self.alternatives.iter().any(|alt| found.iter().any(|v| matches_one(self.param.kind, alt, v)))
    }
}

fn matches_one(kind: Kind, alt: &Alternative, v: &Value) -> bool {
    match (kind, alt) {
        (Date, Alternative::Dates(range)) => v.as_str().and_then(|s| parse_date(s).ok()).is_some_and(|r| {
            // The value's own extent overlaps the range asked for.
            r.lo.is_some_and(|lo| range.hi.is_none_or(|hi| lo < hi))
                && r.hi.is_some_and(|hi| range.lo.is_none_or(|lo| hi > lo))
        }),
        (Token, Alternative::Text { system, value }) => {
            v["code"].as_str() == Some(value.as_str())
                && system.as_ref().is_none_or(|s| s.is_empty() || v["system"].as_str() == Some(s.as_str()))
        }
        (Identifier, Alternative::Text { system, value }) => {
            v["value"].as_str() == Some(value.as_str())
                && system.as_ref().is_none_or(|s| s.is_empty() || v["system"].as_str() == Some(s.as_str()))
        }
        (Code, Alternative::Text { value, .. }) => v.as_str() == Some(value.as_str()),
        (Str, Alternative::Text { value, .. }) => {
            v.as_str().is_some_and(|s| s.to_lowercase().starts_with(&value.to_lowercase()))
        }
        (Reference, Alternative::Text { value, .. }) => v.as_str().is_some_and(|s| {
            s == value || s.rsplit_once('/').is_some_and(|(_, id)| id == value) || value.ends_with(&format!("/{s}"))
        }),
        _ => false,
    }
}

/// The earliest instant of a body's sort date (ms), for `_sort=date`.
pub fn sort_date(t: &str, body: &Value) -> Option<i64> {
    sort_date_paths(t)
        .iter()
        .flat_map(|p| values_at(body, p))
        .filter_map(|v| v.as_str().and_then(|s| parse_date(s).ok()).and_then(|r| r.lo))
        .min()
}

/// Which store a search reads, from its `_source` parameters (upstream's rule): `_source:below`
/// the FHIR-source base -> every stored resource (any other `:below` -> nothing); no `_source` ->
/// JHE's records for the types rendered from them, else the stored ones; JHE's own source -> JHE's
/// records; a FHIR source's URI -> what is stored under it; anything else -> nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Records,
    Stored(Option<Id>),
    Nothing,
}

pub fn target(rtype: &str, params: &[(String, String)], has_records: bool) -> Target {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(below) = get("_source:below") {
        if below.trim_end_matches('/') == SOURCE_BASE {
            return if is_stored_type(rtype) { Target::Stored(None) } else { Target::Nothing };
        }
        return if has_records && super::JHE_SOURCE.starts_with(below) { Target::Records } else { Target::Nothing };
    }
    match get("_source") {
        None if has_records => Target::Records,
        None => Target::Stored(None),
        Some(super::JHE_SOURCE) if has_records => Target::Records,
        Some(s) => match parse_source_uri(s) {
            Some(id) if is_stored_type(rtype) => Target::Stored(Some(id)),
            _ => Target::Nothing,
        },
    }
}

/// A search of stored resources.
pub struct StoredQuery {
    pub count: usize,
    pub summary_count: bool,
    /// How many matches earlier pages showed, and the total counted on the first.
    pub offset: usize,
    pub total: Option<usize>,
    pub ids: Option<Vec<String>>,
    pub patient: Option<Id>,
    pub study: Option<Id>,
    pub organization: Option<Id>,
    pub last_updated: TimeRange,
    /// `date` or `_lastUpdated`, and descending.
    pub sort_by_date: bool,
    pub descending: bool,
    pub conditions: Vec<Condition>,
}

/// The opaque cursor of a stored search's next page.
pub fn page_cursor(offset: usize, total: usize) -> String {
    crate::auth::crypto::b64url(format!("s1.{offset}.{total}").as_bytes())
}

fn parse_cursor(v: &str) -> Result<(usize, usize), String> {
    let bad = || "_cursor is not a cursor this server issued".to_string();
    let raw = crate::auth::crypto::b64url_decode(v).ok_or_else(bad)?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    match text.split('.').collect::<Vec<_>>().as_slice() {
        ["s1", o, t] => Ok((o.parse().map_err(|_| bad())?, t.parse().map_err(|_| bad())?)),
        _ => Err(bad()),
    }
}

/// Parses the parameters of a search of stored resources of a type (400 for an unknown one).
pub fn parse_query(rtype: &str, params: &[(String, String)]) -> Result<StoredQuery, String> {
    let mut q = StoredQuery {
        count: super::DEFAULT_COUNT,
        summary_count: false,
        offset: 0,
        total: None,
        ids: None,
        patient: None,
        study: None,
        organization: None,
        last_updated: TimeRange::default(),
        sort_by_date: false,
        descending: true,
        conditions: Vec::new(),
    };
    for (k, v) in params {
        match k.as_str() {
            "_source" | "_source:below" | "_format" => {}
            "_count" => {
                q.count = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=super::MAX_COUNT).contains(n))
                    .ok_or_else(|| format!("_count must be between 1 and {}", super::MAX_COUNT))?
            }
            "_summary" if v == "count" => q.summary_count = true,
            "_summary" if v == "false" => {}
            "_cursor" => (q.offset, q.total) = parse_cursor(v).map(|(o, t)| (o, Some(t)))?,
            "_id" => q.ids = Some(v.split(',').map(|x| x.trim().to_string()).collect()),
            "patient" => q.patient = Some(reference_id(v, "Patient", k)?),
            "patient._has:Group:member:_id" | "_has:Group:member:_id" => q.study = Some(reference_id(v, "Group", k)?),
            "patient.organization" => q.organization = Some(reference_id(v, "Organization", k)?),
            "_lastUpdated" => q.last_updated = q.last_updated.intersect(parse_date(v)?),
            "_sort" => {
                (q.sort_by_date, q.descending) = match v.as_str() {
                    "date" => (true, false),
                    "-date" => (true, true),
                    "_lastUpdated" => (false, false),
                    "-_lastUpdated" => (false, true),
                    _ => {
                        return Err(format!("_sort={v:?} is not supported (date, -date, _lastUpdated, -_lastUpdated)"));
                    }
                }
            }
            _ => match condition(rtype, k, v) {
                Some(c) => q.conditions.push(c?),
                None => return Err(format!("Unknown or unsupported search parameter {k:?} for {rtype}")),
            },
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_uris_and_id_shapes() {
        assert_eq!(parse_source_uri(&source_uri(90001)), Some(90001));
        for bad in ["https://jupyterhealth.org/jhe", "https://jupyterhealth.org/fhir/fhir-source/", "x/90001"] {
            assert_eq!(parse_source_uri(bad), None, "{bad}");
        }
        assert_eq!(parse_source_uri("https://jupyterhealth.org/fhir/fhir-source/9x"), None);
        assert!(is_stored_id("0b5e6f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!is_stored_id("60001") && !is_stored_id("0b5e6f3a1c2d4e5f8a9b0c1d2e3f4a5b"));
    }

    #[test]
    fn stamping_replaces_earlier_patient_extensions_and_keeps_others() {
        let mut b = json!({"resourceType": "Condition", "id": "up-1", "meta": {"source": "x"},
            "extension": [{"url": "other", "valueString": "kept"}, {"url": PATIENT_ID_EXT, "valueInteger": 1}]});
        stamp(&mut b, "u", 90001, 40001, "Peter Jones", "2025-01-01T00:00:00Z");
        assert_eq!(b["id"], "u");
        assert_eq!(b["meta"]["source"], "https://jupyterhealth.org/fhir/fhir-source/90001");
        let urls: Vec<&str> = b["extension"]
            .as_array()
            .expect("test value")
            .iter()
            .map(|e| e["url"].as_str().expect("test value"))
            .collect();
        assert_eq!(urls, ["other", PATIENT_ID_EXT, PATIENT_NAME_EXT]);
        assert_eq!(b["extension"][1]["valueInteger"], 40001);
    }

    #[test]
    fn parameters_match_over_the_body() {
        let c = json!({"resourceType": "Condition", "onsetDateTime": "2024-03-05",
            "clinicalStatus": {"coding": [{"system": "s", "code": "active"}]}});
        let hit = |n: &str, v: &str| condition("Condition", n, v).expect("param").expect("valid").matches(&c);
        assert!(
            hit("clinical-status", "active")
                && hit("clinical-status", "s|active")
                && hit("clinical-status", "x,active")
        );
        assert!(!hit("clinical-status", "t|active") && !hit("clinical-status", "resolved"));
        assert!(hit("onset-date", "2024-03") && hit("onset-date", "ge2024-03-05") && hit("onset-date", "lt2024-03-06"));
        assert!(!hit("onset-date", "gt2024-03-05") && !hit("onset-date", "2024-04"));
        assert!(condition("Condition", "colour", "x").is_none());
        assert!(condition("Condition", "onset-date", "soon").expect("test value").is_err());
        let qr = json!({"questionnaire": "Questionnaire/weekly", "authored": "2025-10-01"});
        let q =
            |n: &str, v: &str| condition("QuestionnaireResponse", n, v).expect("param").expect("valid").matches(&qr);
        assert!(
            q("questionnaire", "Questionnaire/weekly") && q("questionnaire", "weekly") && !q("questionnaire", "daily")
        );
        assert_eq!(sort_date("QuestionnaireResponse", &qr), Some(1_759_276_800_000));
    }
}
