//! FHIR resources stored as sent: the seeded QuestionnaireResponses, FHIR sources, create / upsert /
//! read / update / delete, R5 validation, routing by id shape and `_source`, the consent rule on
//! reads (revocation hides them at once), Consent resources, and mixed batch Bundles.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const QR: &str = "QuestionnaireResponse";
const BELOW: &str = "_source:below=https://jupyterhealth.org/fhir/fhir-source/";
const TYPES: &str = "http://hl7.org/fhir/resource-types";

/// A request with an optional `X-JHE-FHIR-Source-ID`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    source: Option<&str>,
) -> (StatusCode, Value) {
    let mut rb = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(s) = source {
        rb = rb.header("X-JHE-FHIR-Source-ID", s);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

fn entries(b: &Value) -> Vec<Value> {
    b["entry"].as_array().map(|a| a.iter().map(|e| e["resource"].clone()).collect()).unwrap_or_default()
}

async fn search(app: &TestApp, token: &str, q: &str) -> Vec<Value> {
    let (s, b) = app.get(&format!("/FHIR/R5/{q}"), token).await;
    assert_eq!(s, StatusCode::OK, "{q}: {b}");
    assert_eq!(b["total"].as_u64(), Some(entries(&b).len() as u64), "{q}: one page");
    dump("stored-searchset", &b);
    entries(&b)
}

fn condition(upstream_id: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "id": upstream_id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
        "subject": {"reference": "Patient/ehr-1"},
        "onsetDateTime": "2021-04-05",
    })
}

/// Study 30001 requests the Condition scope and Peter consents to it.
async fn peter_shares_conditions(app: &TestApp, mary: &str, peter: &str) {
    let (_, scopes) = app.get("/api/v1/data_sources/all_scopes", mary).await;
    let scope =
        scopes.as_array().and_then(|a| a.iter().find(|c| c["codingCode"] == "Condition")).expect("scope")["id"].clone();
    let (s, b) = app.post("/api/v1/studies/30001/scope_requests", mary, json!({"scopeCodeId": scope})).await;
    assert!(s.is_success(), "{b}");
    let (s, b) = app
        .post(
            "/api/v1/patients/40001/consents",
            peter,
            json!({"studyScopeConsents": [{"studyId": 30001,
            "scopeConsents": [{"codingSystem": TYPES, "codingCode": "Condition", "consented": true}]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

fn patient_of(r: &Value) -> Option<i64> {
    r["extension"].as_array()?.iter().find(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/patient-id")))?["valueInteger"].as_i64()
}

#[tokio::test]
async fn the_seeded_questionnaire_responses_read_as_upstream_under_the_consent_rule() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let victor = app.access("viewer_victor@example.com").await;
    let mark = app.access("manager_mark@example.com").await;
    let all = search(&app, &mary, &format!("{QR}?_count=100")).await;
    assert_eq!(all.len(), 7, "Peter's 3 and Pamela's 4");
    for r in &all {
        assert!(jhe::fhir::stored::is_stored_id(r["id"].as_str().unwrap_or("")), "{r}");
        let p = patient_of(r).expect("patient extension");
        let src = if p == 40001 { 90001 } else { 90002 };
        assert_eq!(r["meta"]["source"], format!("https://jupyterhealth.org/fhir/fhir-source/{src}"));
        assert_eq!(r["item"].as_array().map(Vec::len), Some(3));
    }
    assert_eq!(search(&app, &mary, &format!("{QR}?patient=40001")).await.len(), 3);
    assert_eq!(search(&app, &mary, &format!("{QR}?patient=40002")).await.len(), 4);
    assert_eq!(
        search(&app, &mary, &format!("{QR}?_source=https://jupyterhealth.org/fhir/fhir-source/90001")).await.len(),
        3
    );
    assert_eq!(search(&app, &mary, &format!("{QR}?{BELOW}")).await.len(), 7);
    assert_eq!(search(&app, &victor, QR).await.len(), 7, "a viewer of the lab reads them too");
    assert_eq!(search(&app, &mark, QR).await.len(), 0, "another organization's manager reads none");
    let (s, _) = app.get(&format!("/FHIR/R5/{QR}?patient=40001"), &mark).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "naming a patient out of reach");
    // Newest first; _sort=authored-date ascending.
    let authored: Vec<String> = search(&app, &mary, &format!("{QR}?_sort=date&patient=40002"))
        .await
        .iter()
        .map(|r| r["authored"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(authored, ["2025-10-03", "2025-10-10", "2025-10-17", "2025-10-24"]);
    let hits = search(&app, &mary, &format!("{QR}?authored=ge2025-10-10&authored=lt2025-10-24&status=completed")).await;
    assert_eq!(hits.len(), 3, "10-10, 10-15, 10-17");
    // Only the study's patients who consented to its QuestionnaireResponse scope: Peter's is pending in 30002.
    let in_30002 = search(&app, &mary, &format!("{QR}?patient._has:Group:member:_id=30002")).await;
    assert!(in_30002.len() == 4 && in_30002.iter().all(|r| patient_of(r) == Some(40002)));
    // Read by id, as a page of one.
    let id = all[0]["id"].as_str().unwrap_or_default();
    let (s, one) = app.get(&format!("/FHIR/R5/{QR}/{id}"), &mary).await;
    assert_eq!((s, &one), (StatusCode::OK, &all[0]));
    let (s, _) = app.get(&format!("/FHIR/R5/{QR}/{id}"), &mark).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get(&format!("/FHIR/R5/Condition/{id}"), &mary).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an id of another type");
    // The patient reads their own, and only their own.
    let peter = app.patient_token(&mary, 40001, 2).await;
    assert_eq!(search(&app, &peter, QR).await.len(), 3);
    let (s, _) = app.get(&format!("/FHIR/R5/{QR}?patient=40002"), &peter).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_source_parameter_picks_one_store() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let ids = |v: Vec<Value>| v.len();
    // A type stored as sent and never rendered from JHE's records: JHE's own source holds none of it.
    assert_eq!(ids(search(&app, &mary, &format!("{QR}?_source=https://jupyterhealth.org/jhe")).await), 0);
    assert_eq!(ids(search(&app, &mary, &format!("{QR}?_source=https://example.org/fhir")).await), 0);
    assert_eq!(ids(search(&app, &mary, &format!("{QR}?_source:below=https://example.org/")).await), 0);
    // Observation: JHE's own by default; what sources sent only when asked for.
    let own = search(&app, &mary, "Observation?_count=100").await;
    assert!(!own.is_empty() && own.iter().all(|r| r["meta"]["source"] == "https://jupyterhealth.org/jhe"));
    assert_eq!(ids(search(&app, &mary, &format!("Observation?{BELOW}")).await), 0);
    // An unknown parameter of a stored type is refused, as elsewhere.
    let (s, b) = app.get(&format!("/FHIR/R5/{QR}?colour=blue"), &mary).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Records (numeric ids) are not changed through the FHIR API.
    let (s, _) =
        send(&app, Method::PUT, "/FHIR/R5/Patient/40001", &mary, Some(json!({"resourceType": "Patient"})), None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = send(&app, Method::DELETE, "/FHIR/R5/Observation/60001", &mary, None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = app.get("/FHIR/R5/Basic", &mary).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an unsupported type");
    // A type only stored as sent has no record ids: a numeric one names nothing (not "unsupported").
    let (s, b) = app.get("/FHIR/R5/Condition/123", &mary).await;
    assert_eq!((s, b["issue"][0]["diagnostics"].as_str()), (StatusCode::NOT_FOUND, Some("Condition/123 not found.")));
}

#[tokio::test]
async fn fhir_sources_belong_to_their_patient() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let pamela = app.patient_token(&mary, 40002, 2).await;
    let (s, list) = app.get("/api/v1/fhir_sources", &peter).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["id"], 90001);
    assert_eq!(list["results"][0]["fhirBaseUrl"], "https://fhir.halo.org/api/FHIR/R4");
    let (_, mine) = app.get("/api/v1/fhir_sources", &mary).await;
    assert_eq!(mine["count"], 0, "a practitioner has none");
    let body = json!({"label": "Momentum App", "fhirBaseUrl": "https://momentum.example/app", "dataSource": 70005});
    let (s, b) = app.post("/api/v1/fhir_sources", &mary, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, created) = app.post("/api/v1/fhir_sources", &peter, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!((created["patient"].clone(), created["label"].clone()), (json!(40001), json!("Momentum App")));
    let (s, again) = app
        .post(
            "/api/v1/fhir_sources",
            &peter,
            json!({"label": "Momentum", "fhirBaseUrl": "https://momentum.example/app", "dataSource": 70005}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the same endpoint again: {again}");
    assert_eq!((again["id"].clone(), again["label"].clone()), (created["id"].clone(), json!("Momentum")));
    let sid = created["id"].as_i64().expect("id");
    for (path, token) in
        [(format!("/api/v1/fhir_sources/{sid}"), &pamela), (format!("/api/v1/fhir_sources/{sid}"), &mary)]
    {
        let (s, _) = app.get(&path, token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "someone else's source");
    }
    let (s, b) = app.post("/api/v1/fhir_sources", &peter, json!({"label": "x", "dataSource": 99999})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) =
        app.post("/api/v1/fhir_sources", &peter, json!({"label": "x", "dataSource": 70005, "patient": 40002})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the patient is not the caller's to choose: {b}");
    // Deleting a source deletes what was stored under it.
    let (s, c) =
        send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(condition("c-1")), Some(&sid.to_string())).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, _) = app.delete(&format!("/api/v1/fhir_sources/{sid}"), &peter, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/FHIR/R5/Condition/{}", c["id"].as_str().unwrap_or("")), &peter).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stored_resources_are_created_upserted_read_updated_and_deleted() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    peter_shares_conditions(&app, &mary, &peter).await;

    // Create under the source named by meta.source; the same upstream id again refreshes it.
    let mut body = condition("ehr-cond-1");
    body["meta"] = json!({"source": "https://jupyterhealth.org/fhir/fhir-source/90001"});
    let (s, first) = app.post("/FHIR/R5/Condition", &peter, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    dump("condition-created", &first);
    let id = first["id"].as_str().expect("id").to_string();
    assert!(jhe::fhir::stored::is_stored_id(&id));
    assert_eq!(patient_of(&first), Some(40001));
    body["clinicalStatus"]["coding"][0]["code"] = json!("resolved");
    let (s, second) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(body), Some("90001")).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    assert_eq!(second["id"], json!(id), "the same record, refreshed");
    let found = search(&app, &mary, "Condition?patient=40001").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["clinicalStatus"]["coding"][0]["code"], "resolved");
    assert_eq!(search(&app, &mary, "Condition?clinical-status=resolved&onset-date=2021-04").await.len(), 1);
    assert_eq!(search(&app, &mary, "Condition?clinical-status=active").await.len(), 0);
    assert_eq!(search(&app, &mary, &format!("Condition?_id={id}")).await.len(), 1);
    assert_eq!(search(&app, &mary, "Condition?_id=60001").await.len(), 0, "a record's id shape matches nothing");

    // PUT replaces, PATCH merges; a practitioner of the patient's organization may write too.
    let mut replaced = condition("ignored");
    replaced["note"] = json!([{"text": "from the visit"}]);
    let (s, put) = send(&app, Method::PUT, &format!("/FHIR/R5/Condition/{id}"), &peter, Some(replaced), None).await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!((put["id"].clone(), put["note"][0]["text"].clone()), (json!(id), json!("from the visit")));
    let patch = json!({"verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]}});
    let (s, patched) = send(&app, Method::PATCH, &format!("/FHIR/R5/Condition/{id}"), &mary, Some(patch), None).await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["note"][0]["text"], "from the visit", "kept by the merge");
    assert_eq!(patched["verificationStatus"]["coding"][0]["code"], "confirmed");
    let (s, read) = app.get(&format!("/FHIR/R5/Condition/{id}"), &mary).await;
    assert_eq!((s, &read), (StatusCode::OK, &patched));
    dump("condition-read", &read);
    let viewer = app.access("viewer_victor@example.com").await;
    let (s, _) = send(&app, Method::DELETE, &format!("/FHIR/R5/Condition/{id}"), &viewer, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a viewer may read but not delete");
    let (s, _) = send(&app, Method::DELETE, &format!("/FHIR/R5/Condition/{id}"), &peter, None, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/FHIR/R5/Condition/{id}"), &peter).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An Observation that is not Open mHealth is stored as sent (and needs a source).
    let loinc = json!({"resourceType": "Observation", "id": "bp-77", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "effectiveDateTime": "2025-01-02T10:00:00Z", "valueQuantity": {"value": 61, "unit": "/min"}});
    let (s, b) = app.post("/FHIR/R5/Observation", &peter, loinc.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no source named: {b}");
    assert!(b["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains("X-JHE-FHIR-Source-ID")), "{b}");
    let (s, obs) = send(&app, Method::POST, "/FHIR/R5/Observation", &peter, Some(loinc), Some("90001")).await;
    assert_eq!(s, StatusCode::CREATED, "{obs}");
    dump("observation-stored", &obs);
    let mine = search(&app, &peter, &format!("Observation?{BELOW}&code=http://loinc.org|8867-4")).await;
    assert_eq!(mine.len(), 1);
    let default = search(&app, &peter, "Observation?_count=1000").await;
    assert!(default.iter().all(|r| r["id"] != obs["id"]), "JHE's own observations only, by default");
    assert_eq!(search(&app, &mary, &format!("Observation?{BELOW}")).await.len(), 0, "no study requests that scope");
}

#[tokio::test]
async fn writes_name_a_source_the_caller_may_use_and_a_valid_body() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mark = app.access("manager_mark@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let pamela = app.patient_token(&mary, 40002, 2).await;
    let cases: Vec<(&str, Option<&str>, StatusCode, &str)> = vec![
        (&peter, None, StatusCode::BAD_REQUEST, "A FHIR source is required"),
        (&peter, Some("99999"), StatusCode::BAD_REQUEST, "does not exist"),
        (&peter, Some("abc"), StatusCode::BAD_REQUEST, "is not a FHIR source id"),
        (&pamela, Some("90001"), StatusCode::FORBIDDEN, "may not store"),
        (&mark, Some("90001"), StatusCode::FORBIDDEN, "may not store"),
        (&mary, Some("90001"), StatusCode::FORBIDDEN, "consented to share Condition"),
    ];
    for (token, source, status, says) in cases {
        let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", token, Some(condition("x")), source).await;
        assert_eq!(s, status, "{source:?}: {b}");
        assert!(b["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains(says)), "{b}");
    }
    // Each problem of an invalid body is its own issue, with its path.
    let mut bad = condition("x");
    bad["clinicalStatus"] = json!("active");
    bad["onsetDateTime"] = json!("5 April 2021");
    bad["colour"] = json!("blue");
    bad.as_object_mut().expect("test value").remove("subject");
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(bad), Some("90001")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let paths: Vec<&str> =
        b["issue"].as_array().expect("issues").iter().filter_map(|i| i["expression"][0].as_str()).collect();
    for p in ["Condition.clinicalStatus", "Condition.onsetDateTime", "Condition.colour", "Condition.subject"] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    let qr = json!({"resourceType": QR, "status": "done", "questionnaire": "Questionnaire/q"});
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/QuestionnaireResponse", &peter, Some(qr), Some("90001")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains("\"done\" is not one of")), "{b}");
    let (s, b) =
        send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(json!({"resourceType": "Goal"})), Some("90001"))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // An upstream id longer than FHIR allows becomes an identifier, and still keys the upsert.
    let long = "x".repeat(80);
    let (s, a) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(condition(&long)), Some("90001")).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["identifier"][0], json!({"system": "https://fhir.halo.org/api/FHIR/R4", "value": long}));
    let (_, again) =
        send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(condition(&long)), Some("90001")).await;
    assert_eq!(again["id"], a["id"]);
    // A large body is kept whole (in the blob store, past what an item holds).
    let mut big = condition("big-1");
    big["note"] = json!([{"text": "n".repeat(400_000)}]);
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(big), Some("90001")).await;
    assert_eq!(s, StatusCode::CREATED, "{}", b["issue"]);
    let (_, read) = app.get(&format!("/FHIR/R5/Condition/{}", b["id"].as_str().unwrap_or("")), &peter).await;
    assert_eq!(read["note"][0]["text"].as_str().map(str::len), Some(400_000));
}

#[tokio::test]
async fn revoking_the_scope_hides_stored_resources_at_once() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    assert_eq!(search(&app, &mary, &format!("{QR}?patient=40001")).await.len(), 3);
    let revoke = json!({"studyScopeConsents": [{"studyId": 30001, "scopeConsents": [{"codingSystem": TYPES, "codingCode": QR, "consented": false}]}]});
    let (s, b) = app.patch("/api/v1/patients/40001/consents", &peter, revoke).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(search(&app, &mary, &format!("{QR}?patient=40001")).await.len(), 0);
    assert_eq!(search(&app, &mary, QR).await.len(), 4, "Pamela's still");
    assert_eq!(search(&app, &peter, QR).await.len(), 3, "the patient still reads their own");
    let (_, consent) = app.get("/FHIR/R5/Consent/40001-30001", &peter).await;
    let refused = &consent["provision"][0]["provision"][0]["code"];
    assert!(refused.as_array().is_some_and(|a| a.iter().any(|c| c["coding"][0]["code"] == QR)), "{consent}");
}

#[tokio::test]
async fn consents_read_as_fhir_consent_resources() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mark = app.access("manager_mark@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let by_id = |all: &[Value], id: &str| all.iter().find(|r| r["id"] == id).cloned().unwrap_or(Value::Null);
    let all = search(&app, &mary, "Consent?patient=40001").await;
    assert_eq!(all.len(), 2, "one per study Peter is enrolled in");
    let active = by_id(&all, "40001-30001");
    assert_eq!(active["status"], "active");
    assert_eq!(active["decision"], "deny");
    assert_eq!(active["provision"][0]["actor"][0]["reference"]["reference"], "Group/30001");
    let permitted: Vec<&str> = active["provision"][0]["code"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(permitted.len(), 3);
    assert!(permitted.contains(&QR) && permitted.contains(&"omh:heart-rate:2.0"));
    assert_eq!(by_id(&all, "40001-30002")["status"], "draft", "nothing decided yet");
    // Withdraw everything in 30001: inactive, nothing permitted.
    let off: Vec<Value> = [
        ("https://w3id.org/openmhealth", "omh:blood-pressure:4.0"),
        ("https://w3id.org/openmhealth", "omh:heart-rate:2.0"),
        (TYPES, QR),
    ]
    .iter()
    .map(|(s, c)| json!({"codingSystem": s, "codingCode": c, "consented": false}))
    .collect();
    let (s, b) = app
        .patch(
            "/api/v1/patients/40001/consents",
            &peter,
            json!({"studyScopeConsents": [{"studyId": 30001, "scopeConsents": off}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, inactive) = app.get("/FHIR/R5/Consent/40001-30001", &mary).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inactive["status"], "inactive");
    assert!(inactive.get("provision").is_none(), "{inactive}");
    dump("consent-inactive", &inactive);
    dump("consent-active", &active);
    assert_eq!(search(&app, &peter, "Consent?status=inactive").await.len(), 1, "the patient's own");
    assert_eq!(search(&app, &mark, "Consent?patient=40001").await.len(), 0, "another organization's manager sees none");
    let (s, _) = app.get("/FHIR/R5/Consent/40001-30001", &mark).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/FHIR/R5/Consent?patient=40002", &peter).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get("/FHIR/R5/Consent", &mary).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a practitioner names the patient");
}

#[tokio::test]
async fn a_batch_mixes_open_mhealth_observations_and_resources_stored_as_sent() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let omh = observation(40001, "omh:heart-rate:2.0", 70001, "2025-02-01T10:00:00Z");
    let qr = json!({"resourceType": QR, "status": "completed", "questionnaire": "Questionnaire/weekly-symptom-severity-vas", "authored": "2025-11-01"});
    let mut bundle = batch(vec![omh]);
    bundle["entry"]
        .as_array_mut()
        .expect("test value")
        .push(json!({"resource": qr, "request": {"method": "POST", "url": QR}}));
    bundle["entry"]
        .as_array_mut()
        .expect("test value")
        .push(json!({"resource": {"resourceType": QR, "status": "nope"}, "request": {"method": "POST", "url": QR}}));
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/", &peter, Some(bundle), Some("90001")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let statuses: Vec<&str> =
        b["entry"].as_array().expect("entries").iter().filter_map(|e| e["response"]["status"].as_str()).collect();
    assert_eq!(statuses, ["201 Created", "201 Created", "400 Bad Request"]);
    assert!(b["entry"][1]["response"]["location"].as_str().is_some_and(|l| l.starts_with("QuestionnaireResponse/")));
    assert_eq!(search(&app, &mary, &format!("{QR}?patient=40001")).await.len(), 4);
}

/// The FHIR routes of stored resources and Consents x each kind of caller: superuser, manager,
/// member, viewer (of Lifespan Lab), another organization's manager, the patient (Peter).
#[tokio::test]
async fn each_kind_of_caller_reaches_stored_resources_as_the_consent_rule_says() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mut callers = Vec::new();
    for email in [
        "admin@example.com",
        "manager_mary@example.com",
        "member_megan@example.com",
        "viewer_victor@example.com",
        "manager_mark@example.com",
    ] {
        callers.push(app.access(email).await);
    }
    let peter = app.patient_token(&mary, 40001, 2).await;
    callers.push(peter.clone());
    peter_shares_conditions(&app, &mary, &peter).await;
    let peters = search(&app, &peter, QR).await;
    let qr_id = peters[0]["id"].as_str().expect("id").to_string();
    let mut failures = Vec::new();
    let mut check = |what: &str, i: usize, got: u16, want: u16| {
        if got != want {
            failures.push(format!("{what} as caller {i}: expected {want}, got {got}"));
        }
    };
    for (i, t) in callers.iter().enumerate() {
        let (_, b) = app.get(&format!("/FHIR/R5/{QR}?_count=100"), t).await;
        check("QR search total", i, b["total"].as_u64().unwrap_or(999) as u16, [0, 7, 7, 7, 0, 3][i]);
        let (s, _) = app.get(&format!("/FHIR/R5/{QR}/{qr_id}"), t).await;
        check("QR read", i, s.as_u16(), [404, 200, 200, 200, 404, 200][i]);
        let (s, created) =
            send(&app, Method::POST, "/FHIR/R5/Condition", t, Some(condition(&format!("m-{i}"))), Some("90001")).await;
        check("Condition create under Peter's source", i, s.as_u16(), [201, 201, 201, 403, 403, 201][i]);
        let (_, own) =
            send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(condition(&format!("d-{i}"))), Some("90001"))
                .await;
        let target = format!("/FHIR/R5/Condition/{}", own["id"].as_str().unwrap_or(""));
        let change = Some(json!({"note": [{"text": "n"}]}));
        let (s, _) = send(&app, Method::PATCH, &target, t, change, None).await;
        check("Condition patch", i, s.as_u16(), [200, 200, 200, 404, 404, 200][i]);
        let (s, _) = send(&app, Method::DELETE, &target, t, None, None).await;
        check("Condition delete", i, s.as_u16(), [204, 204, 204, 404, 404, 204][i]);
        let (s, _) = app.get("/FHIR/R5/Consent/40001-30001", t).await;
        check("Consent read", i, s.as_u16(), [200, 200, 200, 200, 404, 200][i]);
        if created["id"].is_string() {
            dump("condition-matrix", &created);
        }
    }
    for (path, method) in [
        (format!("/FHIR/R5/{QR}"), Method::GET),
        ("/FHIR/R5/Condition".to_string(), Method::POST),
        ("/FHIR/R5/Consent/40001-30001".to_string(), Method::GET),
    ] {
        let (s, b) = app.call(method, &path, None, Some(&condition("anon"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} anonymous: {b}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every search parameter the CapabilityStatement advertises is taken by a search of its type,
/// and one it does not advertise is refused: the statement says exactly what is served.
#[tokio::test]
async fn the_capability_statement_advertises_exactly_the_search_parameters_taken() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let (_, cs) = app.get("/FHIR/R5/metadata", &mary).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for r in cs["rest"][0]["resource"].as_array().expect("resources") {
        let t = r["type"].as_str().expect("type");
        let base = if t == "Consent" { "patient=40001&".to_string() } else { String::new() };
        for p in r["searchParam"].as_array().expect("params") {
            let (name, kind) = (p["name"].as_str().expect("name"), p["type"].as_str().expect("type"));
            let value = match (name, kind) {
                ("_sort", _) => "-_lastUpdated",
                ("_summary", _) => "count",
                ("action", _) => "C",
                ("outcome", _) => "0",
                ("_source", _) => "https://jupyterhealth.org/fhir/fhir-source/90001",
                (n, _) if n.contains("_has") => "30001",
                ("patient" | "agent" | "organization" | "patient.organization", _) => "40001",
                (_, "token") => "http://example.org|x",
                (_, "date") => "ge2025-01-01",
                (_, "number") => "5",
                (_, "reference") => "Patient/40001",
                _ => "a",
            };
            let value = if name == "patient.organization" || name == "organization" { "20003" } else { value };
            let only_stored =
                p["documentation"].as_str().is_some_and(|d| d.starts_with("With _source naming a FHIR source"));
            let base = if only_stored && name != "_source" { format!("{base}{BELOW}&") } else { base.clone() };
            let q = format!("/FHIR/R5/{t}?{base}{name}={}", urlenc(value));
            let (s, b) = app.get(&q, &mary).await;
            checked += 1;
            if s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND {
                failures.push(format!("{q}: {s} {}", b["issue"][0]["diagnostics"]));
            }
        }
        let (s, _) = app.get(&format!("/FHIR/R5/{t}?{base}not-a-parameter=1"), &mary).await;
        if s != StatusCode::BAD_REQUEST {
            failures.push(format!("{t}: an unadvertised parameter answered {s}"));
        }
    }
    assert!(checked > 150, "{checked} parameters");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_r4_bundle_is_imported_with_what_it_lost_reported() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let entry = |r: Value| json!({"resource": r});
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        entry(json!({"resourceType": "Procedure", "id": "r4-proc", "status": "completed", "code": {"text": "Appendectomy"},
            "subject": {"reference": "Patient/ehr-1"}, "performedDateTime": "2020-01-02", "reasonCode": [{"text": "pain"}],
            "asserter": {"reference": "Practitioner/9"}})),
        entry(json!({"resourceType": "Condition", "id": "r4-cond", "code": {"text": "Asthma"}, "subject": {"reference": "Patient/ehr-1"}})),
        entry(json!({"resourceType": "Encounter", "id": "r4-enc", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "period": {"start": "2020-01-02T09:00:00Z"}})),
        entry(json!({"resourceType": "QuestionnaireResponse", "id": "r4-qr", "status": "completed", "author": {"reference": "Patient/ehr-1"}})),
        entry(json!({"resourceType": "Basic", "id": "b"})),
    ]});
    let (s, b) = send(&app, Method::POST, "/fhir-import/R4", &peter, Some(bundle), Some("90001")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    dump("r4-import-response", &b);
    let e = b["entry"].as_array().expect("entries");
    let statuses: Vec<&str> = e.iter().filter_map(|x| x["response"]["status"].as_str()).collect();
    assert_eq!(statuses, ["201 Created", "201 Created", "201 Created", "400 Bad Request", "400 Bad Request"]);
    let issues = |i: usize| -> Vec<String> {
        e[i]["response"]["outcome"]["issue"]
            .as_array()
            .expect("issues")
            .iter()
            .map(|x| x["diagnostics"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(issues(0).iter().any(|d| d.contains("Procedure.asserter has no place in R5")), "{:?}", issues(0));
    assert_eq!(e[0]["resource"]["occurrenceDateTime"], "2020-01-02");
    assert_eq!(e[0]["resource"]["reason"][0]["concept"]["text"], "pain");
    assert!(issues(1).iter().any(|d| d.contains("clinicalStatus was absent")), "{:?}", issues(1));
    assert_eq!(e[2]["resource"]["status"], "completed");
    assert!(issues(3).iter().any(|d| d.contains("QuestionnaireResponse.questionnaire: required")), "{:?}", issues(3));
    assert!(issues(4)[0].contains("Basic is not a type stored here"), "{:?}", issues(4));
    for x in &e[..3] {
        let (t, id) =
            (x["resource"]["resourceType"].as_str().expect("type"), x["resource"]["id"].as_str().expect("id"));
        let (s, read) = app.get(&format!("/FHIR/R5/{t}/{id}"), &peter).await;
        assert_eq!(s, StatusCode::OK, "{read}");
        dump("r4-imported", &read);
    }
    // One resource at its type's path; the same upstream id again refreshes the same record.
    let cond = json!({"resourceType": "Condition", "id": "r4-cond", "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]},
        "code": {"text": "Asthma"}, "subject": {"reference": "Patient/ehr-1"}});
    let (s, one) =
        send(&app, Method::POST, "/fhir-import/R4/Condition", &peter, Some(cond.clone()), Some("90001")).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["entry"][0]["resource"]["id"], e[1]["resource"]["id"]);
    assert_eq!(one["entry"][0]["response"]["outcome"]["issue"][0]["severity"], "information", "nothing lost");
    let (_, wrong) =
        send(&app, Method::POST, "/fhir-import/R4/Procedure", &peter, Some(cond.clone()), Some("90001")).await;
    assert_eq!(wrong["entry"][0]["response"]["status"], "400 Bad Request");
    let (s, theirs) =
        send(&app, Method::POST, "/fhir-import/R4/Condition", &mary, Some(cond.clone()), Some("90002")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(theirs["entry"][0]["response"]["status"], "403 Forbidden", "Pamela shares no Conditions: {theirs}");
    let issue = &theirs["entry"][0]["response"]["outcome"]["issue"][0];
    assert!(issue["diagnostics"].as_str().is_some_and(|d| d.contains("may not store Condition")), "{issue}");
    let (s, b) = send(&app, Method::POST, "/fhir-import/R4", &peter, Some(cond), Some("90001")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a Bundle: {b}");
    let (s, _) = app.call(Method::POST, "/fhir-import/R4", None, Some(&json!({"resourceType": "Bundle"}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// The smallest valid instance of an R5 type: its required elements, each the smallest value of
/// its datatype (a code from its value set; references to a Patient).
fn minimal(owner: &str, depth: usize) -> Value {
    let mut v = json!({});
    for (name, kind, many, codes) in jhe::fhir::r5::required(owner) {
        let one = match kind {
            "boolean" => json!(true),
            "integer" | "positiveInt" | "unsignedInt" | "decimal" => json!(1),
            "date" | "dateTime" => json!("2025-01-02"),
            "instant" => json!("2025-01-02T03:04:05Z"),
            "uri" | "url" | "canonical" => json!("https://example.org/x"),
            "Reference" => json!({"reference": "Patient/ehr-1"}),
            "CodeableReference" => json!({"concept": {"text": "x"}}),
            k if k.starts_with(|c: char| c.is_ascii_lowercase()) => {
                json!(codes.and_then(|c| c.first().map(|x| x.to_string())).unwrap_or("x".into()))
            }
            k if depth < 4 => {
                let inner = minimal(k, depth + 1);
                let any = json!({"extension": [{"url": "https://example.org/x", "valueString": "x"}]});
                if inner.as_object().is_some_and(|o| o.is_empty()) { any } else { inner }
            }
            _ => json!({"id": "x"}),
        };
        v[name] = if many { json!([one]) } else { one };
    }
    v
}

#[tokio::test]
async fn every_stored_type_is_created_read_searched_and_deleted() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let mut failures = Vec::new();
    for t in jhe::fhir::stored::TYPES {
        let mut body = minimal(t, 0);
        body["resourceType"] = json!(t);
        body["id"] = json!(format!("up-{t}"));
        let path = format!("/FHIR/R5/{t}");
        let (s, created) = send(&app, Method::POST, &path, &peter, Some(body.clone()), Some("90001")).await;
        if s != StatusCode::CREATED {
            failures.push(format!("{t} create: {s} {body} -> {created}"));
            continue;
        }
        dump("stored-every-type", &created);
        let id = created["id"].as_str().unwrap_or("");
        let (s, read) = app.get(&format!("{path}/{id}"), &peter).await;
        let found = search(&app, &peter, &format!("{t}?_id={id}&{BELOW}")).await;
        let (d, _) = send(&app, Method::DELETE, &format!("{path}/{id}"), &peter, None, None).await;
        let (gone, _) = app.get(&format!("{path}/{id}"), &peter).await;
        if (s, found.len(), d, gone) != (StatusCode::OK, 1, StatusCode::NO_CONTENT, StatusCode::NOT_FOUND)
            || read != created
        {
            failures.push(format!("{t}: read {s}, found {}, delete {d}, then {gone}", found.len()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn stored_pages_end_before_their_byte_limit_and_resources_have_a_size_limit() {
    let app = spawn_custom(|s| s.max_page_bytes = 6_000, Default::default(), jhe::http::app).await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut c = condition(&format!("sized-{i}"));
        c["note"] = json!([{"text": "n".repeat(1_500)}]);
        let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(c), Some("90001")).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_str().expect("id").to_string());
    }
    let (mut next, mut seen, mut pages) = (Some("/FHIR/R5/Condition?_count=10".to_string()), Vec::new(), 0);
    while let Some(u) = next.take() {
        let (s, b) = app.get(&u, &peter).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["total"], 5, "the total on every page");
        let sizes: Vec<usize> = entries(&b).iter().map(|r| r.to_string().len()).collect();
        assert!(sizes.len() == 1 || sizes.iter().sum::<usize>() <= 6_000, "a page over its limit: {sizes:?}");
        assert!(sizes.len() < 5, "the limit ends pages early");
        seen.extend(entries(&b).iter().map(|r| r["id"].as_str().unwrap_or("").to_string()));
        next = b["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().expect("url").trim_start_matches(&app.base).to_string());
        pages += 1;
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "each once");
    assert!(pages >= 3, "{pages} pages");
    let mut huge = condition("huge");
    huge["note"] = json!([{"text": "n".repeat(4_100_000)}]);
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(huge), Some("90001")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", b["issue"][0]["diagnostics"]);
}

/// A blob store that refuses every write (an S3 outage) and reads nothing.
struct NoBlobs;

#[async_trait::async_trait]
impl jhe::ports::BlobStore for NoBlobs {
    async fn put_new(&self, _: &str, _: Vec<u8>) -> Result<(), jhe::ports::BlobError> {
        Err(jhe::ports::BlobError::Unavailable("down".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, jhe::ports::BlobError> {
        Err(jhe::ports::BlobError::Unavailable("down".into()))
    }
    async fn list(&self, _: &str) -> Result<Vec<String>, jhe::ports::BlobError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn writes_that_cannot_land_store_nothing_and_say_why() {
    let app = spawn_with(|s| s.blobs = std::sync::Arc::new(NoBlobs)).await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let pamela = app.patient_token(&mary, 40002, 2).await;
    // A body that goes to the blob store while the store is down: 503, nothing stored.
    let mut big = condition("big-down");
    big["note"] = json!([{"text": "n".repeat(400_000)}]);
    let (s, b) = send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(big), Some("90001")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(search(&app, &peter, "Condition").await.len(), 0, "nothing stored");
    // A small one lands; changing a resource that is not there, or moving it to another patient's
    // source, is refused.
    let (s, small) =
        send(&app, Method::POST, "/FHIR/R5/Condition", &peter, Some(condition("small")), Some("90001")).await;
    assert_eq!(s, StatusCode::CREATED, "{small}");
    let missing = "/FHIR/R5/Condition/0b5e6f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    let (s, _) = send(&app, Method::PUT, missing, &peter, Some(condition("x")), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let path = format!("/FHIR/R5/Condition/{}", small["id"].as_str().expect("id"));
    let (s, b) = send(&app, Method::PUT, &path, &peter, Some(condition("x")), Some("90002")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["issue"][0]["diagnostics"].as_str().is_some_and(|d| d.contains("belongs to another patient")), "{b}");
    let (s, _) = send(&app, Method::PUT, &path, &pamela, Some(condition("x")), Some("90002")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not Pamela's to change");
    let (_, read) = app.get(&path, &peter).await;
    assert_eq!(read, small, "unchanged");
}

/// A table on which the first two lookups of an upsert key wait for each other: two writes of the
/// same upstream record both find it absent, and then race to store it.
struct Racing {
    inner: jhe::adapters::embedded::EmbeddedTable,
    gate: tokio::sync::Barrier,
    waiting: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl jhe::ports::Table for Racing {
    async fn get(&self, key: &jhe::ports::Key) -> jhe::ports::StoreResult<Option<jhe::ports::Item>> {
        let first_two = || self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2;
        if key.pk.starts_with("FHIRKEY#") && first_two() {
            self.gate.wait().await;
        }
        self.inner.get(key).await
    }
    async fn put(&self, item: jhe::ports::Item, cond: jhe::ports::Cond) -> jhe::ports::StoreResult<()> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &jhe::ports::Key, cond: jhe::ports::Cond) -> jhe::ports::StoreResult<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, q: &jhe::ports::Query) -> jhe::ports::StoreResult<jhe::ports::Page> {
        self.inner.query(q).await
    }
    async fn add(&self, key: &jhe::ports::Key, by: i64) -> jhe::ports::StoreResult<i64> {
        self.inner.add(key, by).await
    }
    async fn transact(&self, writes: Vec<jhe::ports::Write>) -> jhe::ports::StoreResult<()> {
        self.inner.transact(writes).await
    }
}

#[tokio::test]
async fn two_writes_of_one_upstream_record_that_race_store_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = jhe::local::open(dir.path(), settings("http://127.0.0.1:1")).expect("open");
    server.seed_if_empty().await.expect("seed");
    let inner = server.table.clone().expect("embedded store");
    let racing = Racing { inner, gate: tokio::sync::Barrier::new(2), waiting: Default::default() };
    let repo = jhe::repo::Repo::new(std::sync::Arc::new(racing));
    let user = repo.user(10007).await.expect("get").expect("Peter");
    let peter = jhe::domain::Caller { user, roles: Default::default(), client_id: "test".into() };
    let blobs = server.state.blobs.clone();
    let write = |note: &'static str| {
        let mut body = condition("raced-1");
        body["note"] = json!([{"text": note}]);
        jhe::domain::stored::create(&repo, &*blobs, &peter, "Condition", body, Some("90001"))
    };
    let (a, b) = tokio::join!(write("first"), write("second"));
    let (a, b) = (a.expect("stored").expect("accepted"), b.expect("stored").expect("accepted"));
    assert_eq!(a.resource["id"], b.resource["id"], "the second refreshed what the first stored");
    assert_eq!(repo.patient_resources(40001, Some("Condition")).await.expect("read").len(), 1);
}
