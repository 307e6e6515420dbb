//! Differential test of the R5 validator that guards stored resources (`jhe::fhir::r5`): a corpus
//! of valid resources of the stored types and of mutations of them (each kind of mistake), judged
//! by JHE and by fhir.resources' R5 models with the test command's JSON rules
//! (`tests/harness/r5_verdicts.py`, in the test command's `.venv`). They must agree on each.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seeds() -> Vec<Value> {
    let cc = |s: &str, c: &str| json!({"coding": [{"system": s, "code": c}]});
    let subject = json!({"reference": "Patient/ehr-1"});
    vec![
        json!({"resourceType": "Condition", "id": "c1", "subject": subject,
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "code": cc("http://snomed.info/sct", "38341003"), "onsetDateTime": "2021-04-05T10:00:00Z",
            "note": [{"text": "n"}], "stage": [{"summary": {"text": "II"}}]}),
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "Questionnaire/q",
            "authored": "2025-10-01", "item": [{"linkId": "a", "answer": [{"valueInteger": 3}], "item": [{"linkId": "b"}]}]}),
        json!({"resourceType": "Observation", "status": "final", "code": cc("http://loinc.org", "8867-4"),
            "effectivePeriod": {"start": "2025-01-02T10:00:00Z"}, "valueQuantity": {"value": 61.5, "unit": "/min"},
            "component": [{"code": cc("http://loinc.org", "8480-6"), "valueQuantity": {"value": 120}}]}),
        json!({"resourceType": "Procedure", "status": "completed", "subject": subject, "code": {"text": "x"},
            "occurrenceDateTime": "2020-01-02", "reason": [{"concept": {"text": "pain"}}]}),
        json!({"resourceType": "Encounter", "status": "completed", "class": [cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB")],
            "actualPeriod": {"start": "2020-01-02T09:00:00+01:00", "end": "2020-01-02T10:00:00+01:00"}}),
        json!({"resourceType": "Patient", "id": "p-1", "active": true, "gender": "female", "birthDate": "1990-05",
            "name": [{"family": "Jones", "given": ["Ann"]}], "telecom": [{"system": "phone", "value": "1"}],
            "contained": [{"resourceType": "Organization", "name": "Clinic"}]}),
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
            "medication": {"concept": {"text": "aspirin"}}, "dosageInstruction": [{"text": "daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]}),
        json!({"resourceType": "AllergyIntolerance", "patient": subject, "code": {"text": "peanut"},
            "reaction": [{"manifestation": [{"concept": {"text": "hives"}}], "severity": "mild"}]}),
        json!({"resourceType": "Immunization", "status": "completed", "patient": subject,
            "vaccineCode": {"text": "flu"}, "occurrenceDateTime": "2024-10-01"}),
        json!({"resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}]}),
    ]
}

/// Every seed, and each mistake made to each seed.
fn corpus() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for seed in seeds() {
        let t = seed["resourceType"].as_str().unwrap_or("").to_string();
        out.push((format!("{t}: valid"), seed.clone()));
        let obj = seed.as_object().cloned().unwrap_or_default();
        for (k, v) in &obj {
            if k == "resourceType" {
                continue;
            }
            let mut without = seed.clone();
            without.as_object_mut().expect("object").remove(k);
            out.push((format!("{t}: without {k}"), without));
            let mutations: Vec<(&str, Value)> = vec![
                ("null", Value::Null),
                ("empty string", json!("")),
                ("empty array", json!([])),
                ("empty object", json!({})),
                ("a number", json!(42)),
                ("wrapped in an array", json!([v.clone()])),
                ("unwrapped from its array", v.as_array().and_then(|a| a.first().cloned()).unwrap_or(json!(true))),
                (
                    "an unknown element inside",
                    match v {
                        Value::Object(_) => {
                            let mut x = v.clone();
                            x["colour"] = json!("blue");
                            x
                        }
                        Value::Array(a) if a.first().is_some_and(Value::is_object) => {
                            let mut x = v.clone();
                            x[0]["colour"] = json!("blue");
                            x
                        }
                        _ => json!("not a date 2025-13-45"),
                    },
                ),
            ];
            for (what, m) in mutations {
                let mut changed = seed.clone();
                changed[k.as_str()] = m;
                out.push((format!("{t}: {k} {what}"), changed));
            }
        }
        let mut unknown = seed.clone();
        unknown["colour"] = json!("blue");
        out.push((format!("{t}: unknown element"), unknown));
        let mut bad_status = seed.clone();
        if bad_status.get("status").is_some() {
            bad_status["status"] = json!("done-ish");
            out.push((format!("{t}: status outside its value set"), bad_status));
        }
        let mut two = seed.clone();
        two["extension"] = json!([{"url": "http://example.org/x", "valueString": "a", "valueInteger": 1}]);
        out.push((format!("{t}: an extension with two values"), two));
        let mut ext = seed.clone();
        ext["extension"] = json!([{"url": "http://example.org/x", "valueString": "a"}]);
        out.push((format!("{t}: an extension"), ext));
    }
    out
}

fn verdicts(resources: &[Value]) -> Vec<Value> {
    let python = manifest().join("../.venv/bin/python");
    assert!(python.exists(), "{} is missing: the test command (tests/run.sh) creates it", python.display());
    let mut child = Command::new(python)
        .arg(manifest().join("harness/r5_verdicts.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/harness/r5_verdicts.py");
    let input = Value::Array(resources.to_vec()).to_string();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write cases");
    let out = child.wait_with_output().expect("r5_verdicts.py");
    assert!(out.status.success(), "r5_verdicts.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("verdicts JSON")
}

#[test]
fn jhe_and_fhir_resources_agree_on_each_resource() {
    let cases = corpus();
    let resources: Vec<Value> = cases.iter().map(|(_, r)| r.clone()).collect();
    let theirs = verdicts(&resources);
    assert_eq!(theirs.len(), cases.len());
    let (mut valid, mut invalid, mut disagree) = (0, 0, Vec::new());
    for ((name, r), verdict) in cases.iter().zip(&theirs) {
        let ours = jhe::fhir::r5::validate(r);
        let they_accept = verdict == &json!(true);
        if they_accept {
            valid += 1
        } else {
            invalid += 1
        }
        if ours.is_empty() != they_accept {
            disagree.push(format!("{name}: JHE {ours:?}, fhir.resources {verdict}"));
        }
    }
    assert!(valid >= 10 && invalid >= 200, "{valid} valid, {invalid} invalid cases");
    assert!(
        disagree.is_empty(),
        "{} of {} cases judged differently:\n{}",
        disagree.len(),
        cases.len(),
        disagree.join("\n")
    );
}
