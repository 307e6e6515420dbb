//! Structural validation of FHIR R5 resources stored as sent (the types of `stored::TYPES`):
//! every element known for its type, single or repeated as defined, of its datatype (primitives by
//! their JSON form and lexical rules, complex types element by element, contained resources by
//! their own type), required elements present, at most one of a choice (`value[x]`) and one when
//! required, codes of required bindings from their value set, and no empty strings, arrays or
//! objects and no nulls. The element table (`elements.txt`) is read from the R5 models the test
//! command validates with (`tests/harness/gen_r5_elements.py`). Invariants (FHIRPath constraints)
//! and terminology bindings other than required ones are not checked.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

struct Element {
    kind: &'static str,
    required: bool,
    many: bool,
    /// The choice group (`value` of `value[x]`) and whether one of it is required.
    choice: Option<(&'static str, bool)>,
    codes: Option<Vec<&'static str>>,
}

type Definitions = HashMap<&'static str, Vec<(&'static str, Element)>>;

fn definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(|| {
        let mut defs = Definitions::new();
        for line in include_str!("elements.txt").lines().filter(|l| !l.is_empty()) {
            let f: Vec<&'static str> = line.split(' ').collect();
            let choice = match f[5] {
                "-" => None,
                g => Some(g.strip_suffix('!').map_or((g, false), |g| (g, true))),
            };
            let element = Element {
                kind: f[2],
                required: f[3] == "1",
                many: f[4] == "*",
                choice,
                codes: f.get(6).map(|c| c.split('|').collect()),
            };
            defs.entry(f[0]).or_default().push((f[1], element));
        }
        defs
    })
}

/// Whether the table defines this resource or datatype.
pub fn defines(type_name: &str) -> bool {
    definitions().contains_key(type_name)
}

/// An element of a type: its datatype (a primitive in lower case, else a type of the table or
/// `Resource`) and whether it repeats.
pub fn element(owner: &str, name: &str) -> Option<(&'static str, bool)> {
    definitions().get(owner)?.iter().find(|(n, _)| *n == name).map(|(_, e)| (e.kind, e.many))
}

/// What a valid instance of a type must hold: each required element (name, datatype, repeats,
/// the codes of its required binding), and for each required choice its first option.
pub fn required(owner: &str) -> Vec<(&'static str, &'static str, bool, Option<Vec<&'static str>>)> {
    let Some(elements) = definitions().get(owner) else { return vec![] };
    let mut out = Vec::new();
    let mut groups = Vec::new();
    for (name, e) in elements {
        let needed = match e.choice {
            Some((g, true)) if !groups.contains(&g) => {
                groups.push(g);
                true
            }
            _ => e.required,
        };
        if needed {
            out.push((*name, e.kind, e.many, e.codes.clone()));
        }
    }
    out
}

/// The problems of a resource, each `path: what is wrong`; empty when it is valid.
pub fn validate(resource: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if defines(t) => check_resource(t, resource, t, &mut problems),
        Some(t) => problems.push(format!("resourceType: {t} is not a type stored here")),
        None => problems.push("resourceType: missing".into()),
    }
    problems
}

fn check_resource(t: &str, v: &Value, path: &str, out: &mut Vec<String>) {
    match v.as_object() {
        Some(o) => check_object(t, o, path, true, out),
        None => out.push(format!("{path}: must be an object")),
    }
}

fn check_object(t: &str, o: &Map<String, Value>, path: &str, resource: bool, out: &mut Vec<String>) {
    let Some(elements) = definitions().get(t) else {
        return;
    };
    let find = |name: &str| elements.iter().find(|(n, _)| *n == name).map(|(_, e)| e);
    if o.is_empty() {
        out.push(format!("{path}: must not be empty"));
    }
    let mut chosen: HashMap<&str, Vec<&str>> = HashMap::new();
    for (key, value) in o {
        let at = format!("{path}.{key}");
        if resource && key == "resourceType" {
            continue;
        }
        if let Some(base) = key.strip_prefix('_') {
            // A primitive's id and extensions.
            match find(base) {
                Some(e) if is_primitive(e.kind) => check_primitive_extra(value, &at, out),
                _ => out.push(format!("{at}: unknown element")),
            }
            continue;
        }
        let Some(e) = find(key) else {
            out.push(format!("{at}: unknown element"));
            continue;
        };
        if let Some((group, _)) = e.choice {
            chosen.entry(group).or_default().push(key);
        }
        match (value, e.many) {
            (Value::Array(items), true) => {
                if items.is_empty() {
                    out.push(format!("{at}: must not be an empty array"));
                }
                for (i, item) in items.iter().enumerate() {
                    check_value(e, item, &format!("{at}[{i}]"), out);
                }
            }
            (Value::Array(_), false) => out.push(format!("{at}: must be a single value, not an array")),
            (_, true) => out.push(format!("{at}: must be an array")),
            (item, false) => check_value(e, item, &at, out),
        }
    }
    for (name, e) in elements {
        if e.required && !o.contains_key(*name) && !o.contains_key(&format!("_{name}")) {
            out.push(format!("{path}.{name}: required"));
        }
    }
    let mut groups: Vec<(&str, bool)> = elements.iter().filter_map(|(_, e)| e.choice).collect();
    groups.dedup();
    for (group, required) in groups {
        match chosen.get(group).map_or(0, Vec::len) {
            0 if required => out.push(format!("{path}.{group}[x]: required")),
            n if n > 1 => out.push(format!("{path}.{group}[x]: only one of {:?} may be given", chosen[group])),
            _ => {}
        }
    }
}

fn check_value(e: &Element, v: &Value, at: &str, out: &mut Vec<String>) {
    if v.is_null() {
        out.push(format!("{at}: must not be null"));
    } else if is_primitive(e.kind) {
        if let Some(problem) = primitive_problem(e.kind, v) {
            out.push(format!("{at}: {problem}"));
        } else if let (Some(codes), Some(s)) = (&e.codes, v.as_str())
            && !codes.contains(&s)
        {
            out.push(format!("{at}: {s:?} is not one of {}", codes.join(", ")));
        }
    } else if e.kind == "Resource" {
        match v.get("resourceType").and_then(Value::as_str) {
            Some(t) if defines(t) => check_resource(t, v, at, out),
            Some(_) if v.is_object() => {}
            _ => out.push(format!("{at}: a contained resource needs its resourceType")),
        }
    } else {
        match v.as_object() {
            Some(o) => check_object(e.kind, o, at, false, out),
            None => out.push(format!("{at}: must be an object ({})", e.kind)),
        }
    }
}

fn check_primitive_extra(v: &Value, at: &str, out: &mut Vec<String>) {
    let ok = |x: &Value| x.is_object() || x.is_null();
    match v {
        Value::Array(items) if items.iter().all(ok) => {}
        Value::Object(_) => {}
        _ => out.push(format!("{at}: must be an object of id and extensions")),
    }
}

fn is_primitive(kind: &str) -> bool {
    kind.starts_with(|c: char| c.is_ascii_lowercase())
}

/// What is wrong with a primitive value of this datatype, if anything.
fn primitive_problem(kind: &str, v: &Value) -> Option<String> {
    let text = || v.as_str().ok_or_else(|| format!("must be a string ({kind})"));
    let check = |ok: bool, what: &str| (!ok).then(|| format!("{v} is not a valid {kind} ({what})"));
    match kind {
        "boolean" => check(v.is_boolean(), "true or false"),
        "decimal" => check(v.is_number(), "a JSON number"),
        "integer" => check(v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()), "a 32-bit integer"),
        "positiveInt" => check(v.as_i64().is_some_and(|n| n >= 1 && n <= i32::MAX as i64), "an integer >= 1"),
        "unsignedInt" => check(v.as_i64().is_some_and(|n| n >= 0 && n <= i32::MAX as i64), "an integer >= 0"),
        _ => {
            let s = match text() {
                Ok(s) => s,
                Err(e) => return Some(e),
            };
            if s.trim().is_empty() {
                return Some("must not be empty".into());
            }
            match kind {
                "integer64" => check(s.parse::<i64>().is_ok(), "a 64-bit integer as a string"),
                "id" => check(
                    s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                    "up to 64 letters, digits, '-' and '.'",
                ),
                "code" => check(s.trim() == s && !s.contains("  "), "no leading, trailing or double spaces"),
                "uri" | "url" | "canonical" | "oid" | "uuid" => check(!s.contains(char::is_whitespace), "no spaces"),
                "base64Binary" => check(
                    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b) || b.is_ascii_whitespace()),
                    "base64",
                ),
                "date" => check(is_date(s), "YYYY, YYYY-MM or YYYY-MM-DD"),
                "dateTime" => check(is_date(s) || is_date_time(s), "a date, or a date and time with a zone"),
                "instant" => check(is_date_time(s), "a date and time to the second with a zone"),
                "time" => check(is_time(s), "hh:mm:ss"),
                _ => None,
            }
        }
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn in_range(s: &str, lo: u32, hi: u32) -> bool {
    s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    match p.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && digits(m, 2) && in_range(m, 1, 12),
        [y, m, d] => digits(y, 4) && digits(m, 2) && in_range(m, 1, 12) && digits(d, 2) && in_range(d, 1, 31),
        _ => false,
    }
}

fn is_time(s: &str) -> bool {
    let (hms, frac) = s.split_once('.').map_or((s, None), |(a, b)| (a, Some(b)));
    let p: Vec<&str> = hms.split(':').collect();
    let whole = matches!(p.as_slice(), [h, m, sec] if digits(h, 2) && in_range(h, 0, 23) && digits(m, 2)
        && in_range(m, 0, 59) && digits(sec, 2) && in_range(sec, 0, 60));
    whole && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// `YYYY-MM-DDThh:mm:ss[.f](Z|+hh:mm|-hh:mm)`; FHIR requires the zone whenever a time is given.
fn is_date_time(s: &str) -> bool {
    let Some((date, rest)) = s.split_once('T') else {
        return false;
    };
    let (time, zone) = if let Some(t) = rest.strip_suffix('Z') {
        (t, "Z")
    } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        rest.split_at(rest.len() - 6)
    } else {
        return false;
    };
    let zone_ok = zone == "Z"
        || matches!(zone[1..].split_once(':'), Some((h, m)) if digits(h, 2) && in_range(h, 0, 14) && digits(m, 2) && in_range(m, 0, 59));
    date.len() == 10 && is_date(date) && is_time(time) && zone_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qr() -> Value {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "Questionnaire/q",
               "authored": "2025-10-01", "item": [{"linkId": "a", "answer": [{"valueInteger": 3}]}]})
    }

    #[test]
    fn a_valid_resource_has_no_problems() {
        assert_eq!(validate(&qr()), Vec::<String>::new());
        let cond = json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "onsetDateTime": "2024-02-03T10:00:00+01:00", "_onsetDateTime": {"extension": [{"url": "x", "valueString": "y"}]}});
        assert_eq!(validate(&cond), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_problem_is_named_with_its_path() {
        let cases = [
            (json!({"status": "done"}), "QuestionnaireResponse.status: \"done\" is not one of"),
            (json!({"questionnaire": null}), "QuestionnaireResponse.questionnaire: must not be null"),
            (json!({"colour": "blue"}), "QuestionnaireResponse.colour: unknown element"),
            (json!({"item": {"linkId": "a"}}), "QuestionnaireResponse.item: must be an array"),
            (json!({"item": []}), "QuestionnaireResponse.item: must not be an empty array"),
            (
                json!({"authored": "2025-13-01"}),
                "QuestionnaireResponse.authored: \"2025-13-01\" is not a valid dateTime",
            ),
            (json!({"authored": "2025-10-01T10:00:00"}), "is not a valid dateTime"),
            (json!({"item": [{"linkId": "a", "answer": [{"valueInteger": 1, "valueString": "x"}]}]}), "only one of"),
            (json!({"item": [{"linkId": "a", "answer": [{}]}]}), "item[0].answer[0]: must not be empty"),
            (json!({"item": [{"answer": [{"valueInteger": 1.5}]}]}), "item[0].linkId: required"),
            (json!({"subject": "Patient/1"}), "QuestionnaireResponse.subject: must be an object (Reference)"),
        ];
        for (change, expected) in cases {
            let mut r = qr();
            for (k, v) in change.as_object().expect("test value") {
                r[k] = v.clone();
            }
            let problems = validate(&r);
            assert!(problems.iter().any(|p| p.contains(expected)), "{change}: {problems:?}");
        }
        let mut r = qr();
        r.as_object_mut().expect("test value").remove("status");
        assert_eq!(validate(&r), vec!["QuestionnaireResponse.status: required".to_string()]);
        assert_eq!(validate(&json!({"resourceType": "Basic"})), vec!["resourceType: Basic is not a type stored here"]);
    }

    #[test]
    fn contained_resources_are_checked_as_their_own_type() {
        let mut r = qr();
        r["contained"] = json!([{"resourceType": "Patient", "id": "p", "gender": "robot"}]);
        assert!(
            validate(&r).iter().any(|p| p.starts_with("QuestionnaireResponse.contained[0].gender")),
            "{:?}",
            validate(&r)
        );
    }
}
