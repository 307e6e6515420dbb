//! What upstream JupyterHealth Exchange accepts and answers, its clients get here too: upstream's
//! own example data points are stored (format misses come back as warnings, schema violations
//! still refused), refusals come in upstream's order, both JSON content types are taken, and an
//! empty search carries `"entry": []`.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const OMH: &str = "https://w3id.org/openmhealth";
const HR: &str = "omh:heart-rate:2.0";

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// Upstream's seven example data points, with the code each is for.
fn upstream_examples() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/upstream-examples/data-points");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| {
            let dp: Value = serde_json::from_slice(&std::fs::read(e.path()).expect("read")).expect("json");
            let id = &dp["header"]["schema_id"];
            let code = format!(
                "{}:{}:{}",
                id["namespace"].as_str().expect("ns"),
                id["name"].as_str().expect("name"),
                id["version"].as_str().expect("version")
            );
            (code, dp)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 7);
    out
}

/// Study 30001 requests the examples' seven scopes, CareX (70001) supports them, and Peter
/// consents to them with his own token. Gives Peter's token.
async fn peter_shares_every_example_scope(app: &TestApp) -> String {
    let admin = app.access("admin@example.com").await;
    let mary = app.access("manager_mary@example.com").await;
    let (_, scopes) = app.get("/api/v1/data_sources/all_scopes", &admin).await;
    let id_of = |code: &str| {
        scopes.as_array().expect("scopes").iter().find(|s| s["codingCode"] == code).map(|s| s["id"].clone())
    };
    let mut consents = Vec::new();
    for (code, _) in upstream_examples() {
        let scope = id_of(&code).unwrap_or_else(|| panic!("{code} is in the catalogue"));
        let (s, b) =
            app.post("/api/v1/data_sources/70001/supported_scopes", &admin, json!({"scopeCodeId": scope})).await;
        assert!(s.is_success(), "{code}: {b}");
        let (s, b) = app.post("/api/v1/studies/30001/scope_requests", &mary, json!({"scopeCodeId": scope})).await;
        assert!(s.is_success() || s == StatusCode::CONFLICT, "{code}: {s} {b}");
        consents.push(json!({"codingSystem": OMH, "codingCode": code, "consented": true}));
    }
    let peter = app.patient_token(&mary, 40001, 2).await;
    let body = json!({"studyScopeConsents": [{"studyId": 30001, "scopeConsents": consents}]});
    let (s, b) = app.post("/api/v1/patients/40001/consents", &peter, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    peter
}

fn upload_of(code: &str, dp: &Value) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": OMH, "code": code}]},
        "subject": {"reference": "Patient/40001"},
        "device": {"reference": "Device/70001"},
        "valueAttachment": {"contentType": "application/json", "data": b64(dp)},
    })
}

/// A fresh copy of a data point (a new uuid, so that it is not a re-upload).
fn fresh(dp: &Value) -> Value {
    let mut dp = dp.clone();
    dp["header"]["uuid"] = json!(uuid());
    dp
}

fn decoded(observation: &Value) -> Value {
    let data = observation["valueAttachment"]["data"].as_str().expect("data");
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(data).expect("base64")).expect("json")
}

#[tokio::test]
async fn upstreams_example_data_points_are_stored_and_read_back_unchanged() {
    let app = spawn_app().await;
    let peter = peter_shares_every_example_scope(&app).await;
    // One at a time.
    for (code, dp) in upstream_examples() {
        let dp = fresh(&dp);
        let (s, created) = app.post("/FHIR/R5/Observation", &peter, upload_of(&code, &dp)).await;
        assert_eq!(s, StatusCode::CREATED, "{code}: {created}");
        let (s, read) = app.get(&format!("/FHIR/R5/Observation/{}", created["id"].as_str().expect("id")), &peter).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(decoded(&read), dp, "{code}: the data point reads back as uploaded");
        assert!(read["effectiveDateTime"].is_string() || read["effectivePeriod"].is_object(), "{code}: {read}");
    }
    // In one batch: each entry created, with the format miss named in its outcome.
    let all = upstream_examples();
    let uploads: Vec<(String, Value)> = all.iter().map(|(c, dp)| (c.clone(), fresh(dp))).collect();
    let (s, resp) =
        app.post("/FHIR/R5/", &peter, batch(uploads.iter().map(|(c, dp)| upload_of(c, dp)).collect())).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    dump("batch-response-warnings", &resp);
    for ((code, dp), e) in uploads.iter().zip(resp["entry"].as_array().expect("entries")) {
        assert_eq!(e["response"]["status"], "201 Created", "{code}: {e}");
        assert_eq!(decoded(&e["resource"]), *dp, "{code}");
        let issue = &e["response"]["outcome"]["issue"][0];
        assert_eq!(issue["severity"], "warning", "{code}: {e}");
        let d = issue["diagnostics"].as_str().expect("diagnostics");
        assert!(d.starts_with("header.external_datasheets[0].datasheet_reference: "), "{code}: {d}");
    }
}

#[tokio::test]
async fn a_format_miss_is_a_warning_and_a_schema_violation_a_422() {
    let app = spawn_app().await;
    let peter = peter_shares_every_example_scope(&app).await;
    let (code, base) = upstream_examples().into_iter().find(|(c, _)| c == HR).expect("heart rate example");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut dp = fresh(&base);
        edit(&mut dp);
        upload_of(&code, &dp)
    };
    // Format misses: accepted; with Prefer: return=OperationOutcome the answer is the warnings.
    for (what, upload) in [
        ("a date-time that is not one", with(&|dp| dp["header"]["source_creation_date_time"] = json!("yesterday"))),
        ("a uuid that is not one", with(&|dp| dp["header"]["uuid"] = json!("hr-reading-1"))),
    ] {
        let (s, oo, headers) = app
            .post_raw(
                "/FHIR/R5/Observation",
                &peter,
                "application/fhir+json",
                upload.to_string().into_bytes(),
                &[("prefer", "return=OperationOutcome")],
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{what}: {oo}");
        assert!(headers.get("location").is_some(), "{what}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}: {oo}");
        dump("outcome-created-with-warnings", &oo);
        let issues = oo["issue"].as_array().expect("issues");
        assert!(issues.iter().all(|i| i["severity"] == "warning"), "{what}: {oo}");
        assert!(issues.len() >= 2, "{what}: the datasheet name and the miss: {oo}");
    }
    // An unreadable time frame: stored without an effective time, found by _lastUpdated.
    let (s, oo, headers) = app
        .post_raw(
            "/FHIR/R5/Observation",
            &peter,
            "application/json",
            with(&|dp| dp["body"]["effective_time_frame"] = json!({"date_time": "at breakfast"}))
                .to_string()
                .into_bytes(),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{oo}");
    let diagnostics: Vec<&str> =
        oo["issue"].as_array().expect("issues").iter().filter_map(|i| i["diagnostics"].as_str()).collect();
    assert!(diagnostics.iter().any(|d| d.starts_with("body.effective_time_frame: cannot be read")), "{diagnostics:?}");
    let location = headers.get("location").and_then(|v| v.to_str().ok()).expect("location").to_string();
    let id = location.rsplit('/').next().expect("id").to_string();
    let (s, read) = app.get(&format!("/FHIR/R5/Observation/{id}"), &peter).await;
    assert_eq!(s, StatusCode::OK);
    assert!(read.get("effectiveDateTime").is_none() && read.get("effectivePeriod").is_none(), "{read}");
    let (_, found) = app
        .get(
            &format!(
                "/FHIR/R5/Observation?patient=40001&_lastUpdated=ge{}",
                &read["meta"]["lastUpdated"].as_str().expect("lu")[..19]
            ),
            &peter,
        )
        .await;
    let ids: Vec<&str> =
        found["entry"].as_array().expect("entries").iter().filter_map(|e| e["resource"]["id"].as_str()).collect();
    assert!(ids.contains(&id.as_str()), "found by _lastUpdated: {ids:?}");
    // Real schema violations: refused with 422, nothing stored.
    for (what, upload) in [
        ("a value of the wrong type", with(&|dp| dp["body"]["heart_rate"]["value"] = json!("sixty"))),
        ("a required field missing", with(&|dp| drop(dp["body"].as_object_mut().map(|b| b.remove("heart_rate"))))),
        ("a unit outside its set", with(&|dp| dp["body"]["heart_rate"]["unit"] = json!("bpm"))),
        ("a header without its uuid", with(&|dp| drop(dp["header"].as_object_mut().map(|h| h.remove("uuid"))))),
    ] {
        let (s, oo) = app.post("/FHIR/R5/Observation", &peter, upload).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(oo["issue"][0]["severity"], "error", "{what}");
    }
}

/// One row per step of upstream's refusal order (spec 6.2, as upstream v0.0.13 answers): an upload
/// that fails at that step and at a later one gets that step's answer.
#[tokio::test]
async fn refusals_come_in_upstreams_order() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mark = app.access("manager_mark@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    // Peter consented to heart rate in study 30001 (device CareX, 70001); not to body temperature,
    // which CareX does not list either.
    let good = || observation(40001, HR, 70001, "2025-04-01T08:00:00Z");
    let taken = good();
    let (s, b) = app.post("/FHIR/R5/Observation", &peter, taken.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let bt = || observation(40001, "omh:body-temperature:4.0", 70001, "2025-04-01T08:00:00Z");
    let bad_b64 = |mut o: Value| {
        o["valueAttachment"]["data"] = json!("%%%not base64%%%");
        o
    };
    let bad_schema = |mut o: Value| {
        let mut dp = decoded(&o);
        dp["body"]["heart_rate"] = json!("sixty");
        o["valueAttachment"]["data"] = json!(b64(&dp));
        o
    };
    let no_device = |mut o: Value| {
        o.as_object_mut().expect("object").remove("device");
        o
    };
    let dup_id = |mut o: Value| {
        o["identifier"] = taken["identifier"].clone();
        o
    };
    let two_codes = |mut o: Value| {
        o["code"]["coding"] = json!([{"system": OMH, "code": HR}, {"system": OMH, "code": HR}]);
        o
    };
    type Row = (&'static str, Value, StatusCode, &'static str);
    let rows: Vec<(&str, Row)> = vec![
        (
            "peter",
            (
                "1. R5 structure (no status), also unconsented and not base64",
                {
                    let mut o = bad_b64(bt());
                    o.as_object_mut().expect("o").remove("status");
                    o
                },
                StatusCode::BAD_REQUEST,
                "Observation.status is required.",
            ),
        ),
        (
            "peter",
            (
                "2. subject, also no device",
                {
                    let mut o = no_device(good());
                    o["subject"] = json!({"reference": "Group/30001"});
                    o
                },
                StatusCode::BAD_REQUEST,
                "Subject is required and must be a reference to a Patient ID",
            ),
        ),
        (
            "peter",
            (
                "2. patient exists, also unconsented",
                {
                    let mut o = bt();
                    o["subject"] = json!({"reference": "Patient/49999"});
                    o
                },
                StatusCode::BAD_REQUEST,
                "Patient id=49999 can not be found.",
            ),
        ),
        (
            "peter",
            (
                "3. caller (another patient), also no device",
                {
                    let mut o = no_device(good());
                    o["subject"] = json!({"reference": "Patient/40002"});
                    o
                },
                StatusCode::FORBIDDEN,
                "The Subject Patient does not match the current user.",
            ),
        ),
        (
            "mark",
            (
                "3. caller (a practitioner without access), also no device",
                no_device(good()),
                StatusCode::FORBIDDEN,
                "Current user doesn't have access to the Patient.",
            ),
        ),
        (
            "peter",
            (
                "4. device missing, also a taken identifier and an unknown code",
                {
                    let mut o = dup_id(no_device(good()));
                    o["code"]["coding"][0]["code"] = json!("omh:no-such-thing:1.0");
                    o
                },
                StatusCode::BAD_REQUEST,
                "Device is required and must be a reference to a Data Source ID",
            ),
        ),
        (
            "peter",
            (
                "4. device unknown, also unconsented",
                {
                    let mut o = bt();
                    o["device"] = json!({"reference": "Device/79999"});
                    o
                },
                StatusCode::BAD_REQUEST,
                "Device Data Source id=79999 can not be found.",
            ),
        ),
        (
            "peter",
            (
                "5. a taken identifier, also two codings, unconsented, not base64",
                dup_id(bad_b64(two_codes(bt()))),
                StatusCode::CONFLICT,
                "Identifier already exists: system=",
            ),
        ),
        (
            "peter",
            (
                "6. two codings, also unconsented",
                two_codes(bt()),
                StatusCode::BAD_REQUEST,
                "Exactly one Code must be provided.",
            ),
        ),
        (
            "peter",
            (
                "6. an unknown code, also not base64",
                {
                    let mut o = bad_b64(good());
                    o["code"]["coding"][0]["code"] = json!("omh:no-such-thing:1.0");
                    o
                },
                StatusCode::BAD_REQUEST,
                "Code not found: system=https://w3id.org/openmhealth code=omh:no-such-thing:1.0",
            ),
        ),
        (
            "peter",
            (
                "7. consent, also a device that does not list the scope, and not base64",
                bad_b64(bt()),
                StatusCode::FORBIDDEN,
                "has not been consented for any studies by this Patient.",
            ),
        ),
        (
            "peter",
            (
                "8. base64, also a device that does not list the scope",
                {
                    let mut o = bad_b64(good());
                    o["device"] = json!({"reference": "Device/70002"});
                    o
                },
                StatusCode::BAD_REQUEST,
                "valueAttachment.data must be Base 64 Encoded Binary JSON.",
            ),
        ),
        (
            "peter",
            (
                "9. the schema, also a device that does not list the scope",
                {
                    let mut o = bad_schema(good());
                    o["device"] = json!({"reference": "Device/70002"});
                    o
                },
                StatusCode::UNPROCESSABLE_ENTITY,
                "The Open mHealth data point is not valid for omh:heart-rate:2.0",
            ),
        ),
        (
            "peter",
            (
                "JHE's own, after upstream's: the device does not list the scope",
                {
                    let mut o = good();
                    o["device"] = json!({"reference": "Device/70002"});
                    o
                },
                StatusCode::UNPROCESSABLE_ENTITY,
                "Device/70002 does not support omh:heart-rate:2.0.",
            ),
        ),
    ];
    let mut single = Vec::new();
    for (who, (step, upload, status, message)) in &rows {
        let token = if *who == "mark" { &mark } else { &peter };
        let (s, oo) = app.post("/FHIR/R5/Observation", token, upload.clone()).await;
        let d = oo["issue"][0]["diagnostics"].as_str().unwrap_or("").to_string();
        assert_eq!((s, d.contains(message)), (*status, true), "{step}: {s} {d}");
        single.push((s, d));
    }
    // The same refusals inside a batch, entry by entry (Peter's rows).
    let peters: Vec<&Row> = rows.iter().filter(|(w, _)| *w == "peter").map(|(_, r)| r).collect();
    let (s, resp) = app.post("/FHIR/R5/", &peter, batch(peters.iter().map(|r| r.1.clone()).collect())).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    for ((step, _, status, message), e) in peters.iter().zip(resp["entry"].as_array().expect("entries")) {
        let line = e["response"]["status"].as_str().unwrap_or("");
        let d = e["response"]["outcome"]["issue"][0]["diagnostics"].as_str().unwrap_or("");
        assert!(line.starts_with(&status.as_u16().to_string()) && d.contains(message), "batch, {step}: {line} {d}");
    }
}

#[tokio::test]
async fn both_json_content_types_are_taken_and_the_answer_is_fhir_json() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "application/fhir+json",
        "application/fhir+json;charset=UTF-8",
    ] {
        let upload = observation(40001, HR, 70001, "2025-04-02T08:00:00Z");
        let (s, b, h) = app.post_raw("/FHIR/R5/Observation", &peter, ct, upload.to_string().into_bytes(), &[]).await;
        assert_eq!(s, StatusCode::CREATED, "{ct}: {b}");
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/fhir+json; charset=utf-8"),
            "{ct}"
        );
        let body = batch(vec![observation(40001, HR, 70001, "2025-04-02T09:00:00Z")]);
        let (s, b, h) = app.post_raw("/FHIR/R5/", &peter, ct, body.to_string().into_bytes(), &[]).await;
        assert_eq!((s, &b["entry"][0]["response"]["status"]), (StatusCode::OK, &json!("201 Created")), "{ct}: {b}");
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/fhir+json; charset=utf-8"),
            "{ct}"
        );
    }
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
        let upload = observation(40001, HR, 70001, "2025-04-02T10:00:00Z");
        for path in ["/FHIR/R5/Observation", "/FHIR/R5/"] {
            let (s, oo, _) = app.post_raw(path, &peter, ct, upload.to_string().into_bytes(), &[]).await;
            assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct} {path}: {oo}");
            assert_eq!(oo["resourceType"], "OperationOutcome", "{ct} {path}");
        }
    }
}

/// `jupyterhealth-client` reads `r["entry"]` of every page: an empty search carries `[]`.
#[tokio::test]
async fn an_empty_search_carries_an_empty_entry_list() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    for path in [
        "/FHIR/R5/Observation?patient=40001&code=https://w3id.org/openmhealth|omh:rr-interval:1.0",
        "/FHIR/R5/Observation?patient._has:Group:member:_id=30001&code=omh:oxygen-saturation:2.0",
        "/FHIR/R5/Observation?patient=40001&_lastUpdated=ge2099-01-01",
        "/FHIR/R5/Patient?identifier=https://example.org/none|nobody",
        "/FHIR/R5/Group?name=no-such-study",
        "/FHIR/R5/Organization?name=no-such-organization",
        "/FHIR/R5/Device?_id=79999",
        "/FHIR/R5/AuditEvent?patient=40001&date=ge2099-01-01",
    ] {
        let (s, b) = app.get(path, &mary).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        assert_eq!((&b["type"], &b["entry"]), (&json!("searchset"), &json!([])), "{path}: {b}");
        assert!(b["total"] == json!(0) || (path.contains("AuditEvent") && b.get("total").is_none()), "{path}: {b}");
        dump("bundle-empty-searchset", &b);
    }
}
