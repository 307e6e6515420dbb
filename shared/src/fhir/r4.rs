//! R4 -> R5 for the types stored as sent (`POST /fhir-import/R4`): the elements R4 and R5 share
//! are kept, element by element down to the datatypes (the R5 element table decides what R5 has);
//! the R4 elements that moved are moved (listed in `MOVES`); what has no R5 place is dropped and
//! named; R5's required elements that R4 left optional are defaulted where R5's own value set has
//! an escape (`unknown`) and named. R5 validation of the result is the gate, as for any write.

use serde_json::{Map, Value, json};

use super::r5;

/// What became of an R4 resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub resource: Value,
    /// Paths of R4 elements with no R5 place (`Condition.asserter`, `Encounter.location[0].x`).
    pub dropped: Vec<String>,
    /// What was defaulted or changed on the way, one sentence each.
    pub notes: Vec<String>,
}

fn concept(v: Value) -> Value {
    json!({ "concept": v })
}

fn reference(v: Value) -> Value {
    json!({ "reference": v })
}

/// An R4 element renamed or reshaped in R5: (type, R4 name, R5 name, how a value changes).
type Move = (&'static str, &'static str, &'static str, fn(Value) -> Value);

fn same(v: Value) -> Value {
    v
}

fn coding_to_concepts(v: Value) -> Value {
    json!([{ "coding": [v] }])
}

fn to_list(v: Value) -> Value {
    if v.is_array() { v } else { json!([v]) }
}

fn allergy_type(v: Value) -> Value {
    json!({"coding": [{"system": "http://hl7.org/fhir/allergy-intolerance-type", "code": v}]})
}

fn device_names(v: Value) -> Value {
    let names: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let t = match n["type"].as_str() {
                Some("udi-label-name") | Some("user-friendly-name") => "user-friendly-name",
                Some("manufacturer-name") => "registered-name",
                _ => "user-friendly-name",
            };
            json!({"value": n["name"], "type": t})
        })
        .collect();
    Value::Array(names)
}

const MOVES: &[Move] = &[
    ("Procedure", "performedDateTime", "occurrenceDateTime", same),
    ("Procedure", "performedPeriod", "occurrencePeriod", same),
    ("Procedure", "performedString", "occurrenceString", same),
    ("Procedure", "performedAge", "occurrenceAge", same),
    ("Procedure", "performedRange", "occurrenceRange", same),
    ("MedicationRequest", "medicationCodeableConcept", "medication", concept),
    ("MedicationRequest", "medicationReference", "medication", reference),
    ("MedicationDispense", "medicationCodeableConcept", "medication", concept),
    ("MedicationDispense", "medicationReference", "medication", reference),
    ("Encounter", "class", "class", coding_to_concepts),
    ("Encounter", "period", "actualPeriod", same),
    ("Encounter", "hospitalization", "admission", same),
    ("AllergyIntolerance", "type", "type", allergy_type),
    ("Device", "deviceName", "name", device_names),
    ("Device", "type", "type", to_list),
    ("Medication", "form", "doseForm", same),
];

/// `reasonCode` / `reasonReference` of R4 are R5's `reason` (CodeableReference) on these types.
const REASONS: &[&str] = &["Procedure", "MedicationRequest", "Immunization", "ServiceRequest"];

/// Encounter.status of R4 in R5's value set.
fn encounter_status(s: &str) -> Option<&'static str> {
    Some(match s {
        "planned" => "planned",
        "arrived" | "triaged" | "in-progress" => "in-progress",
        "onleave" => "on-hold",
        "finished" => "completed",
        "cancelled" => "cancelled",
        "entered-in-error" => "entered-in-error",
        "unknown" => "unknown",
        _ => return None,
    })
}

/// Converts one R4 resource of a stored type to R5.
pub fn to_r5(r4: &Value) -> Result<Converted, String> {
    let t = r4["resourceType"].as_str().ok_or("resourceType is missing")?.to_string();
    if !super::stored::is_stored_type(&t) {
        return Err(format!("{t} is not a type stored here"));
    }
    let mut body = r4.as_object().cloned().ok_or("the resource must be a JSON object")?;
    let mut notes = Vec::new();
    for (ty, from, to, how) in MOVES {
        if *ty == t
            && let Some(v) = body.remove(*from)
        {
            body.insert((*to).to_string(), how(v));
        }
    }
    if REASONS.contains(&t.as_str()) {
        let mut reasons: Vec<Value> = Vec::new();
        for v in body.remove("reasonCode").into_iter().flat_map(|v| v.as_array().cloned().unwrap_or_default()) {
            reasons.push(concept(v));
        }
        for v in body.remove("reasonReference").into_iter().flat_map(|v| v.as_array().cloned().unwrap_or_default()) {
            reasons.push(reference(v));
        }
        if !reasons.is_empty() {
            body.insert("reason".into(), Value::Array(reasons));
        }
    }
    if t == "Encounter"
        && let Some(s) = body.get("status").and_then(Value::as_str).map(str::to_string)
        && let Some(r5) = encounter_status(&s)
        && r5 != s
    {
        body.insert("status".into(), json!(r5));
        notes.push(format!("Encounter.status {s:?} is {r5:?} in R5."));
    }
    let mut dropped = Vec::new();
    let resource = project(&t, body, &t, &mut dropped);
    let mut resource = Value::Object(resource);
    if t == "Condition" && resource.get("clinicalStatus").is_none() {
        resource["clinicalStatus"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "unknown"}]});
        notes.push("Condition.clinicalStatus was absent (optional in R4, required in R5): set to 'unknown'.".into());
    }
    Ok(Converted { resource, dropped, notes })
}

/// Keeps the elements of `obj` that R5's `owner` has, recursively; names the others.
fn project(owner: &str, obj: Map<String, Value>, path: &str, dropped: &mut Vec<String>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if k == "resourceType" {
            out.insert(k, v);
            continue;
        }
        let base = k.strip_prefix('_').unwrap_or(&k);
        let Some((kind, many)) = r5::element(owner, base) else {
            dropped.push(format!("{path}.{k}"));
            continue;
        };
        let here = format!("{path}.{k}");
        let v = if many && !v.is_array() && !k.starts_with('_') { json!([v]) } else { v };
        let v = match v {
            _ if k.starts_with('_') || !kind.starts_with(|c: char| c.is_ascii_uppercase()) || kind == "Resource" => v,
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| match x {
                        Value::Object(o) => Value::Object(project(kind, o, &format!("{here}[{i}]"), dropped)),
                        other => other,
                    })
                    .collect(),
            ),
            Value::Object(o) => Value::Object(project(kind, o, &here, dropped)),
            other => other,
        };
        out.insert(k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_elements_are_kept_moved_ones_moved_and_the_rest_named() {
        let r4 = json!({"resourceType": "Procedure", "id": "p1", "status": "completed",
            "code": {"text": "Appendectomy"}, "subject": {"reference": "Patient/x"},
            "performedDateTime": "2020-01-02", "reasonCode": [{"text": "pain"}],
            "asserter": {"reference": "Practitioner/1"}, "performer": [{"actor": {"reference": "Practitioner/2"}, "onBehalfOf": {"reference": "Organization/3"}, "fancy": 1}]});
        let c = to_r5(&r4).expect("converted");
        assert_eq!(c.resource["occurrenceDateTime"], "2020-01-02");
        assert_eq!(c.resource["reason"], json!([{"concept": {"text": "pain"}}]));
        assert_eq!(c.dropped, ["Procedure.asserter", "Procedure.performer[0].fancy"]);
        assert!(r5::validate(&c.resource).is_empty(), "{:?}", r5::validate(&c.resource));
    }

    #[test]
    fn r5_requirements_r4_left_optional_are_defaulted_and_said() {
        let c =
            to_r5(&json!({"resourceType": "Condition", "subject": {"reference": "Patient/x"}, "code": {"text": "x"}}))
                .expect("converted");
        assert_eq!(c.resource["clinicalStatus"]["coding"][0]["code"], "unknown");
        assert_eq!(c.notes.len(), 1);
        let e = to_r5(&json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "period": {"start": "2020-01-01"}}))
        .expect("converted");
        assert_eq!(
            (e.resource["status"].as_str(), e.resource["actualPeriod"]["start"].as_str()),
            (Some("completed"), Some("2020-01-01"))
        );
        assert_eq!(e.resource["class"][0]["coding"][0]["code"], "AMB");
        assert!(r5::validate(&e.resource).is_empty(), "{:?}", r5::validate(&e.resource));
        assert!(to_r5(&json!({"resourceType": "Basic"})).is_err());
    }
}
