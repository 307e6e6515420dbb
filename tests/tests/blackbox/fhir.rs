//! The FHIR API over HTTP: discovery, uploads (single, batch, bad input), the consent rule on
//! every read, and cursor paging.

use std::collections::BTreeSet;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const HR: &str = "omh:heart-rate:2.0";
const BP: &str = "omh:blood-pressure:4.0";
const BG: &str = "omh:blood-glucose:4.0";
const OMH: &str = "https://w3id.org/openmhealth";

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|a| a.iter().map(|e| e["resource"]["id"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// Follows `next` links from `first` to the end: every page's body, each answered 200.
async fn pages(app: &TestApp, token: &str, first: &str) -> Vec<Value> {
    let (mut next, mut out) = (Some(first.to_string()), Vec::new());
    while let Some(u) = next.take() {
        let (s, b) = app.get(&u, token).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        next = b["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().expect("url").trim_start_matches(&app.base).to_string());
        out.push(b);
    }
    out
}

#[tokio::test]
async fn discovery_documents_are_public_and_truthful() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/FHIR/R5/metadata"))
        .header("authorization", "Bearer junk")
        .send()
        .await
        .expect("metadata");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
    let cs: Value = resp.json().await.expect("json");
    dump("capability", &cs);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "5.0.0");
    let types: Vec<&str> =
        cs["rest"][0]["resource"].as_array().expect("resources").iter().filter_map(|r| r["type"].as_str()).collect();
    let mut expected: Vec<&str> = jhe::fhir::stored::TYPES.iter().copied().chain(["AuditEvent", "Consent"]).collect();
    expected.sort_unstable();
    assert_eq!(types, expected, "JHE's records (all of them also stored as sent), AuditEvent and Consent");
    let entry = |t: &str| {
        cs["rest"][0]["resource"].as_array().expect("r").iter().find(|r| r["type"] == t).cloned().expect("type")
    };
    let interactions = |t: &str| -> Vec<String> {
        entry(t)["interaction"]
            .as_array()
            .expect("i")
            .iter()
            .filter_map(|i| i["code"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(interactions("AuditEvent"), ["read", "search-type"]);
    assert_eq!(interactions("Consent"), ["read", "search-type"]);
    assert_eq!(interactions("Condition"), ["read", "search-type", "create", "update", "patch", "delete"]);
    let qr_params: Vec<String> = entry("QuestionnaireResponse")["searchParam"]
        .as_array()
        .expect("p")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    for p in ["questionnaire", "status", "authored", "patient", "_source", "_id", "_count"] {
        assert!(qr_params.iter().any(|x| x == p), "{p} in {qr_params:?}");
    }
    let obs = cs["rest"][0]["resource"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["type"] == "Observation")
        .expect("obs")
        .clone();
    let params: Vec<&str> =
        obs["searchParam"].as_array().expect("params").iter().filter_map(|p| p["name"].as_str()).collect();
    for p in ["patient", "code", "date", "_lastUpdated", "_count", "patient._has:Group:member:_id"] {
        assert!(params.contains(&p), "{p} advertised");
    }
    let smart: Value = app
        .http
        .get(app.url("/FHIR/R5/.well-known/smart-configuration"))
        .send()
        .await
        .expect("smart")
        .json()
        .await
        .expect("json");
    assert_eq!(smart["token_endpoint"], format!("{}/o/token/", app.base));
    assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
    let (s, oo) = app.call(reqwest::Method::GET, "/FHIR/R5/Observation", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(oo["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn an_upload_reads_back_byte_identical() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let obs = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    let (s, created, headers) =
        app.post_raw("/FHIR/R5/Observation", &peter, "application/fhir+json", obs.to_string().into_bytes(), &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    dump("observation-created", &created);
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{}/FHIR/R5/Observation/{id}", app.base).as_str())
    );
    for token in [&peter, &mary] {
        let (s, got) = app.get(&format!("/FHIR/R5/Observation/{id}"), token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            got["valueAttachment"]["data"], obs["valueAttachment"]["data"],
            "the stored base64 is the uploaded one"
        );
        assert_eq!(got["subject"]["reference"], "Patient/40001");
        assert_eq!(got["subject"]["identifier"]["value"], "10007");
        assert_eq!(got["code"]["coding"][0]["code"], HR);
        assert_eq!(got["effectiveDateTime"], "2025-03-01T08:00:00Z");
        assert_eq!(got["meta"]["source"], "https://jupyterhealth.org/jhe");
        dump("observation-read", &got);
    }
    // The same upload again is a duplicate; conditional create returns the stored one.
    let (s, oo, _) =
        app.post_raw("/FHIR/R5/Observation", &peter, "application/json", obs.to_string().into_bytes(), &[]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{oo}");
    dump("outcome-duplicate", &oo);
    let ident = format!(
        "identifier={}|{}",
        obs["identifier"][0]["system"].as_str().expect("s"),
        obs["identifier"][0]["value"].as_str().expect("v")
    );
    let (s, existing, _) = app
        .post_raw(
            "/FHIR/R5/Observation",
            &peter,
            "application/json",
            obs.to_string().into_bytes(),
            &[("if-none-exist", &ident)],
        )
        .await;
    assert_eq!((s, existing["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    // Only identifier=system|value is a supported condition; anything else is refused, not ignored.
    for cond in ["_id=1", "identifier=novalue", "identifier=|v"] {
        let (s, oo, _) = app
            .post_raw(
                "/FHIR/R5/Observation",
                &peter,
                "application/json",
                obs.to_string().into_bytes(),
                &[("if-none-exist", cond)],
            )
            .await;
        assert_eq!((s, oo["resourceType"].as_str()), (StatusCode::BAD_REQUEST, Some("OperationOutcome")), "{cond}");
    }
}

#[tokio::test]
async fn a_batch_judges_each_entry_on_its_own_and_stores_only_the_good_ones() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let count = |token: String| {
        let app = &app;
        async move {
            app.get("/FHIR/R5/Observation?patient=40001&_summary=count", &token).await.1["total"]
                .as_u64()
                .unwrap_or(999)
        }
    };
    let before = count(mary.clone()).await;
    let good = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    let mut dup = observation(40001, HR, 70001, "2025-03-01T08:05:00Z");
    dup["identifier"] = good["identifier"].clone();
    let mut unknown_code = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    unknown_code["code"]["coding"][0]["code"] = json!("omh:unknown:1.0");
    let mut unknown_device = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    unknown_device["device"]["reference"] = json!("Device/79999");
    let mut not_base64 = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    not_base64["valueAttachment"]["data"] = json!("!!! not base64 !!!");
    let mut not_json = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    not_json["valueAttachment"]["data"] = json!("bm90IGpzb24=");
    let mut no_status = observation(40001, HR, 70001, "2025-03-01T08:00:00Z");
    no_status.as_object_mut().expect("obj").remove("status");
    let mut b = batch(vec![
        good.clone(),
        observation(40001, BP, 70001, "2025-03-01T08:01:00Z"),
        unknown_code.clone(),
        unknown_device.clone(),
        observation(49999, HR, 70001, "2025-03-01T08:00:00Z"),
        observation(40002, HR, 70001, "2025-03-01T08:00:00Z"),
        not_base64,
        not_json,
        dup,
        observation(40001, HR, 70002, "2025-03-01T08:00:00Z"),
        no_status,
        observation(40001, BP, 70001, "2025-03-01T08:02:00Z"),
        // The same unknown code and device again: answered from the upload's lookups, the same way.
        unknown_code,
        unknown_device,
    ]);
    b["entry"][11]["request"]["method"] = json!("PUT");
    let (s, resp) = app.post("/FHIR/R5/", &peter, b).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    dump("batch-response", &resp);
    assert_eq!(resp["type"], "batch-response");
    let statuses: Vec<&str> = resp["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "201 Created",
            "400 Bad Request",
            "400 Bad Request",
            "400 Bad Request",
            "403 Forbidden",
            "400 Bad Request",
            "400 Bad Request",
            "409 Conflict",
            "422 Unprocessable Entity",
            "400 Bad Request",
            "400 Bad Request",
            "400 Bad Request",
            "400 Bad Request"
        ]
    );
    let diagnostics = |i: usize| resp["entry"][i]["response"]["outcome"]["issue"][0]["diagnostics"].clone();
    assert_eq!((diagnostics(12), diagnostics(13)), (diagnostics(2), diagnostics(3)), "a repeat gets the same answer");
    for e in resp["entry"].as_array().expect("entries").iter().skip(2) {
        assert_eq!(e["response"]["outcome"]["resourceType"], "OperationOutcome");
        assert!(e["response"]["outcome"]["issue"][0]["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert!(resp["entry"][0]["resource"]["id"].is_string());
    assert_eq!(count(mary).await, before + 2, "exactly the two good entries were stored");
}

#[tokio::test]
async fn bad_requests_get_an_operation_outcome_and_store_nothing() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let before = app.get("/FHIR/R5/Observation?patient=40001&_summary=count", &mary).await.1["total"].clone();
    let good = observation(40001, HR, 70001, "2025-03-01T08:00:00Z").to_string();
    let truncated = good[..good.len() / 2].to_string();
    let mut tx = batch(vec![observation(40001, HR, 70001, "2025-03-01T08:00:00Z")]);
    tx["type"] = json!("transaction");
    let huge = batch((0..1001).map(|_| json!({"resourceType": "Observation"})).collect());
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/FHIR/R5/Observation", truncated.clone().into_bytes(), 400),
        ("/FHIR/R5/Observation", b"not json at all".to_vec(), 400),
        ("/FHIR/R5/", truncated.into_bytes(), 400),
        ("/FHIR/R5/", tx.to_string().into_bytes(), 400),
        ("/FHIR/R5/", huge.to_string().into_bytes(), 413),
        ("/FHIR/R5/", good.clone().into_bytes(), 400),
        ("/FHIR/R5/Observation", json!({"resourceType": "Patient"}).to_string().into_bytes(), 400),
    ];
    for (path, body, status) in cases {
        let (s, oo, _) = app.post_raw(path, &peter, "application/json", body, &[]).await;
        assert_eq!(s.as_u16(), status, "{path}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{oo}");
        dump("outcome", &oo);
    }
    for q in [
        "foo=bar",
        "_count=100000",
        "_count=0",
        "date=yesterday",
        "code=|",
        "patient=abc",
        "_sort=value",
        "_cursor=xyz!",
        "_page=2",
    ] {
        let (s, oo) = app.get(&format!("/FHIR/R5/Observation?{q}"), &mary).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    let (s, _) = app.get("/FHIR/R5/Basic", &mary).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(reqwest::Method::DELETE, "/FHIR/R5/Observation/60001", Some(&mary), None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let after = app.get("/FHIR/R5/Observation?patient=40001&_summary=count", &mary).await.1["total"].clone();
    assert_eq!(before, after, "nothing was stored");
}

/// (who, expected to see the observation)
async fn visibility(app: &TestApp, tokens: &[(&str, String)], id: &str) -> Vec<(String, bool, bool, Option<bool>)> {
    let mut out = Vec::new();
    for (who, t) in tokens {
        let (_, found) = app.get(&format!("/FHIR/R5/Observation?code={OMH}|{HR}&_count=1000"), t).await;
        let in_search = ids(&found).iter().any(|x| x == id);
        let (s, _) = app.get(&format!("/FHIR/R5/Observation/{id}"), t).await;
        let (s2, list) = app.get("/api/v1/observations?pageSize=1000", t).await;
        let in_admin = (s2 == StatusCode::OK).then(|| {
            list["results"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r["id"].as_i64().map(|x| x.to_string()).as_deref() == Some(id)))
        });
        out.push((who.to_string(), in_search, s == StatusCode::OK, in_admin));
    }
    out
}

#[tokio::test]
async fn consent_decides_who_reads_an_observation_pending_consented_revoked_reconsented() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let pamela = app.patient_token(&mary, 40002, 2).await;
    let (s, created) =
        app.post("/FHIR/R5/Observation", &peter, observation(40001, HR, 70001, "2025-04-01T10:00:00Z")).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let tokens = vec![
        ("manager", mary.clone()),
        ("member", app.access("member_megan@example.com").await),
        ("viewer", app.access("viewer_victor@example.com").await),
        ("other-org practitioner", app.access("manager_mark@example.com").await),
        ("superuser", app.access("admin@example.com").await),
        ("the patient", peter.clone()),
        ("another patient", pamela.clone()),
    ];
    let hr = |v: bool| json!({"studyScopeConsents": [{"studyId": 30001, "scopeConsents": [{"codingSystem": OMH, "codingCode": HR, "consented": v}]}]});
    // (who, search, read, admin list); admin list is None where the caller has no admin list.
    let seen = |search: bool| -> Vec<(String, bool, bool, Option<bool>)> {
        vec![
            ("manager".into(), search, search, Some(search)),
            ("member".into(), search, search, Some(search)),
            ("viewer".into(), search, search, Some(search)),
            ("other-org practitioner".into(), false, false, Some(false)),
            ("superuser".into(), false, false, Some(false)),
            ("the patient".into(), true, true, None),
            ("another patient".into(), false, false, None),
        ]
    };
    assert_eq!(visibility(&app, &tokens, &id).await, seen(true), "consented");
    let (s, _) = app.patch("/api/v1/patients/40001/consents", &peter, hr(false)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(visibility(&app, &tokens, &id).await, seen(false), "revoked: hidden at once");
    let (s, oo) = app.post("/FHIR/R5/Observation", &peter, observation(40001, HR, 70001, "2025-04-01T11:00:00Z")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no uploads of a revoked scope: {oo}");
    let (s, _) = app.delete("/api/v1/patients/40001/consents", &peter, Some(hr(true))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(visibility(&app, &tokens, &id).await, seen(false), "pending");
    let (s, _) = app.post("/api/v1/patients/40001/consents", &peter, hr(true)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(visibility(&app, &tokens, &id).await, seen(true), "re-consented");

    // The study filter: study 30002 does not request heart rate.
    let (_, via_bp_study) = app
        .get(&format!("/FHIR/R5/Observation?patient=40001&patient._has:Group:member:_id=30002&code={OMH}|{HR}"), &mary)
        .await;
    assert_eq!(via_bp_study["total"], 0);
    let (_, via_hr_study) = app
        .get(&format!("/FHIR/R5/Observation?patient=40001&patient._has:Group:member:_id=30001&code={OMH}|{HR}"), &mary)
        .await;
    assert!(ids(&via_hr_study).contains(&id));
    // Peter's consent to BP is pending in study 30002, given in 30001.
    let (_, bp2) =
        app.get(&format!("/FHIR/R5/Observation?patient._has:Group:member:_id=30002&code={OMH}|{BP}"), &mary).await;
    assert!(
        bp2["entry"]
            .as_array()
            .is_none_or(|a| a.iter().all(|e| e["resource"]["subject"]["reference"] != "Patient/40001"))
    );
    // Filters out of the caller's reach are refused.
    let mark = &tokens[3].1;
    assert_eq!(app.get("/FHIR/R5/Observation?patient=40001", mark).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/FHIR/R5/Observation?patient._has:Group:member:_id=30001", mark).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("/FHIR/R5/Observation?patient=40001", &pamela).await.0, StatusCode::FORBIDDEN);
    // Patient search is narrowed the same way.
    let (_, pats) = app.get("/FHIR/R5/Patient", mark).await;
    assert!(!ids(&pats).contains(&"40001".to_string()));
    let (_, pats) = app.get("/FHIR/R5/Patient?_has:Group:member:_id=30001", &mary).await;
    let mut p = ids(&pats);
    p.sort();
    assert_eq!(p, ["40001", "40002"]);
    dump("patient-bundle", &pats);
    let (_, me) = app.get("/FHIR/R5/Patient", &peter).await;
    assert_eq!(ids(&me), ["40001"]);
}

#[tokio::test]
async fn other_resources_read_and_search() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    for (path, min) in [
        ("/FHIR/R5/Group", 2),
        ("/FHIR/R5/Organization", 9),
        ("/FHIR/R5/Device", 6),
        ("/FHIR/R5/Practitioner", 1),
        ("/FHIR/R5/Patient", 2),
    ] {
        let (s, b) = app.get(path, &mark).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(b["total"].as_u64().unwrap_or(0) >= min, "{path}: {b}");
        assert_eq!(b["type"], "searchset");
        dump("searchset", &b);
        let first = b["entry"][0]["resource"].clone();
        let (s, r) = app.get(&format!("{path}/{}", first["id"].as_str().expect("id")), &mark).await;
        assert_eq!((s, r["id"].clone()), (StatusCode::OK, first["id"].clone()));
        dump("resource", &r);
    }
    let (s, _) = app.get("/FHIR/R5/Group/30001", &mark).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a study of another organization is not found");
    let (_, one) = app
        .get("/FHIR/R5/Patient?identifier=urn:oid:1.2.3.4|E1234", &app.access("manager_mary@example.com").await)
        .await;
    assert_eq!(ids(&one), ["40001"]);
    let (s, b) = app.get("/FHIR/R5/Organization?_count=3", &mark).await;
    assert_eq!(s, StatusCode::OK);
    let next = b["link"].as_array().expect("links").iter().find(|l| l["relation"] == "next").expect("next")["url"]
        .as_str()
        .expect("url")
        .to_string();
    let (_, b2) = app.get(next.trim_start_matches(&app.base), &mark).await;
    assert_eq!(ids(&b2).len(), 3);
    assert!(ids(&b2).iter().all(|i| !ids(&b).contains(i)));
}

#[tokio::test]
async fn ten_thousand_observations_page_by_cursor_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    let n = 10_500usize;
    let start =
        time::OffsetDateTime::parse("2025-01-01T00:00:00Z", &time::format_description::well_known::Rfc3339).expect("t");
    let mut uploaded = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let resources: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let at = (start + time::Duration::minutes(5 * *i as i64))
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("fmt");
                observation(40005, BG, 70002, &at)
            })
            .collect();
        let (s, resp) = app.post("/FHIR/R5/", &mark, batch(resources)).await;
        assert_eq!(s, StatusCode::OK);
        uploaded += resp["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["response"]["status"] == "201 Created")
            .count();
    }
    assert_eq!(uploaded, n);
    let mut url = format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&_count=1000");
    let mut seen = std::collections::HashSet::new();
    let mut times = Vec::new();
    let mut pages = 0;
    loop {
        let (s, b) = app.get(&url, &mark).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["total"].as_u64(), Some(n as u64 + 1), "total counts the seeded one too");
        pages += 1;
        for e in b["entry"].as_array().expect("entries") {
            assert!(seen.insert(e["resource"]["id"].as_str().expect("id").to_string()), "no repeats");
            times.push(e["resource"]["effectiveDateTime"].as_str().unwrap_or("").to_string());
        }
        match b["link"].as_array().and_then(|l| l.iter().find(|l| l["relation"] == "next")) {
            Some(next) => {
                let u = next["url"].as_str().expect("url");
                assert!(u.starts_with(&app.base), "absolute next link");
                url = u.trim_start_matches(&app.base).to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), n + 1, "every observation once");
    assert_eq!(pages, 11);
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    // A date window with prefixes, ascending.
    let (_, w) = app.get(&format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&date=ge2025-01-02&date=lt2025-01-03&_sort=date&_count=1000"), &mark).await;
    assert_eq!(w["total"], 288, "one day of 5-minute readings");
    let first = w["entry"][0]["resource"]["effectiveDateTime"].as_str().expect("t");
    assert_eq!(first, "2025-01-02T00:00:00Z");
}

/// Sends the uploads at once; the number of entries created and refused as duplicates.
async fn upload_at_once(app: &std::sync::Arc<TestApp>, token: &str, bodies: Vec<Value>) -> (usize, usize) {
    let mut uploads = tokio::task::JoinSet::new();
    for body in bodies {
        let (app, token) = (app.clone(), token.to_string());
        uploads.spawn(async move { app.post("/FHIR/R5/", &token, body).await });
    }
    let (mut created, mut duplicates) = (0, 0);
    while let Some(done) = uploads.join_next().await {
        let (s, resp) = done.expect("upload task");
        assert_eq!(s, StatusCode::OK, "{resp}");
        for e in resp["entry"].as_array().expect("entries") {
            match e["response"]["status"].as_str() {
                Some("201 Created") => created += 1,
                Some(st) if st.starts_with("409") => duplicates += 1,
                other => panic!("unexpected entry status {other:?}: {e}"),
            }
        }
    }
    (created, duplicates)
}

/// `n` batches of 50 blood-glucose readings for patient 40005, 5 minutes apart from `from`.
fn readings(from: &str, n: i64) -> Vec<Value> {
    let start = time::OffsetDateTime::parse(from, &time::format_description::well_known::Rfc3339).expect("t");
    let at = |i: i64| {
        (start + time::Duration::minutes(5 * i)).format(&time::format_description::well_known::Rfc3339).expect("fmt")
    };
    (0..n).map(|b| batch((0..50).map(|i| observation(40005, BG, 70002, &at(b * 50 + i))).collect())).collect()
}

/// Patient 40005's blood-glucose total (`_summary=count`).
async fn bg_total(app: &TestApp, token: &str) -> u64 {
    let url = format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&_summary=count");
    let (s, b) = app.get(&url, token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["total"].as_u64().expect("total")
}

/// Uploads for one patient at the same time (several apps, a phone on two networks) are indexed
/// side by side: every one lands and is counted once.
#[tokio::test]
async fn concurrent_uploads_for_one_patient_all_land_and_are_counted_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mark = app.access("manager_mark@example.com").await;
    let before = bg_total(&app, &mark).await;
    assert_eq!(upload_at_once(&app, &mark, readings("2025-03-01T00:00:00Z", 8)).await, (400, 0));
    let after = bg_total(&app, &mark).await;
    assert_eq!(after, before + 400, "the total counts every stored observation once");
    let (ids, totals) =
        pull_ids(&app, &mark, &format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&_count=1000")).await;
    assert_eq!(ids.len() as u64, after, "the search returns as many as it counts");
    assert!(totals.iter().all(|t| *t == after));
}

/// The same upload sent twice at once (a phone retrying before the first answer) is stored once:
/// the other copy's entries are refused as duplicates, whichever is indexed first.
#[tokio::test]
async fn concurrent_uploads_for_one_patient_store_a_repeated_upload_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mark = app.access("manager_mark@example.com").await;
    let before = bg_total(&app, &mark).await;
    let mut bodies = readings("2025-03-01T00:00:00Z", 4);
    bodies.push(bodies[0].clone());
    assert_eq!(upload_at_once(&app, &mark, bodies).await, (200, 50), "stored once, the copy refused");
    assert_eq!(bg_total(&app, &mark).await, before + 200);
}

/// A store written before counts were kept per indexed chunk holds one running count per patient
/// and code; totals still include it (and add later uploads to it).
#[tokio::test]
async fn totals_include_the_running_count_of_an_older_store() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    let before = bg_total(&app, &mark).await;
    // The older layout: `OBSCOUNT#<patient>` / `<code id>` holding {"n": ...} (blood glucose is 50001).
    let old = jhe::ports::Item::new("OBSCOUNT#0000040005", "0000050001", json!({"n": 7}));
    app.state.repo.table.put(old, jhe::ports::Cond::None).await.expect("put");
    assert_eq!(bg_total(&app, &mark).await, before + 7);
    let (s, _) = app.post("/FHIR/R5/", &mark, batch(vec![observation(40005, BG, 70002, "2025-04-01T00:00:00Z")])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bg_total(&app, &mark).await, before + 8);
    // Each upload adds a count record; an upload that finds 32 or more folds them into one,
    // keeping the sum (totals read few records; reads never write).
    for i in 0..40 {
        let at = format!("2025-04-02T00:{i:02}:00Z");
        let (s, _) = app.post("/FHIR/R5/", &mark, batch(vec![observation(40005, BG, 70002, &at)])).await;
        assert_eq!(s, StatusCode::OK);
    }
    let records = || async {
        let q = jhe::ports::Query {
            range: jhe::ports::SkRange::Prefix("0000050001".into()),
            ..jhe::ports::Query::partition("OBSCOUNT#0000040005")
        };
        app.state.repo.table.query(&q).await.expect("count records").items.len()
    };
    let n = records().await;
    assert!((2..32).contains(&n), "folded by an upload, then one record per upload since: {n}");
    assert_eq!(bg_total(&app, &mark).await, before + 48, "the sum kept");
    assert_eq!(records().await, n, "a total does not write");
}

/// Follows `next` links from `url` to the end; the ids in order, and each page's `total`.
async fn pull_ids(app: &TestApp, token: &str, url: &str) -> (Vec<String>, Vec<u64>) {
    let pages = pages(app, token, url).await;
    (pages.iter().flat_map(ids).collect(), pages.iter().map(|b| b["total"].as_u64().expect("total")).collect())
}

#[tokio::test]
async fn last_updated_order_and_filters_page_with_the_other_time_filtered() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    // Three uploads, in this order, of readings on day 3, then day 1, then day 2: upload order
    // (lastUpdated) differs from date order.
    let mut batches: Vec<(Vec<String>, String)> = Vec::new();
    for day in [3, 1, 2] {
        let resources = (0..5).map(|i| observation(40005, BG, 70002, &format!("2030-01-0{day}T0{i}:00:00Z"))).collect();
        let (s, resp) = app.post("/FHIR/R5/", &mark, batch(resources)).await;
        assert_eq!(s, StatusCode::OK, "{resp}");
        let entries = resp["entry"].as_array().expect("entries");
        let ids: Vec<String> = entries.iter().map(|e| e["resource"]["id"].as_str().expect("id").to_string()).collect();
        let updated = entries[0]["resource"]["meta"]["lastUpdated"].as_str().expect("lastUpdated").to_string();
        assert_eq!(ids.len(), 5);
        batches.push((ids, updated));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (a, b, c) = (&batches[0], &batches[1], &batches[2]);
    assert!(a.1 < b.1 && b.1 < c.1, "the uploads have distinct lastUpdated times");
    let base = format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}");
    // lastUpdated order, a date window (the seeded reading is outside it), pages of 4.
    let (got, totals) =
        pull_ids(&app, &mark, &format!("{base}&date=ge2030-01-01&date=lt2030-01-04&_sort=_lastUpdated&_count=4")).await;
    let want: Vec<String> = [&a.0, &b.0, &c.0].into_iter().flatten().cloned().collect();
    assert_eq!(got, want, "oldest upload first, by id within an upload, across 4 pages");
    assert_eq!(totals, vec![15; 4]);
    // Newest first, with the date window narrowed to day 1: only the second upload.
    let (got, totals) =
        pull_ids(&app, &mark, &format!("{base}&date=ge2030-01-01&date=lt2030-01-02&_sort=-_lastUpdated&_count=2"))
            .await;
    let mut want = b.0.clone();
    want.reverse();
    assert_eq!(got, want);
    assert_eq!(totals, vec![5; 3]);
    // Date order, filtered by lastUpdated from the second upload on: day 1 then day 2.
    let (got, totals) = pull_ids(&app, &mark, &format!("{base}&_lastUpdated=ge{}&_sort=date&_count=3", b.1)).await;
    let want: Vec<String> = [&b.0, &c.0].into_iter().flatten().cloned().collect();
    assert_eq!(got, want, "the first upload (day 3) is filtered out by its lastUpdated");
    assert_eq!(totals, vec![10; 4]);
}

/// A store written by earlier builds (long field names, the payload as base64, a pre-rendered
/// head beside the fields) serves the same search pages as one written now: mixed in one page,
/// each entry is rendered from its fields.
#[tokio::test]
async fn observations_stored_by_earlier_builds_read_back_the_same() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    let resources = (0..7).map(|i| observation(40005, BG, 70002, &format!("2031-03-04T0{i}:00:00Z"))).collect();
    let (s, resp) = app.post("/FHIR/R5/", &mark, batch(resources)).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let url =
        format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&date=ge2031-03-04&date=lt2031-03-05&_count=3");
    // The entries, totals and link relations of every page (not the Bundle's own id or time).
    let summary = || async {
        let all = pages(&app, &mark, &url).await;
        let links = |b: &Value| b["link"].as_array().expect("links").iter().map(|l| l["relation"].clone()).collect();
        all.iter()
            .map(|b| json!({"total": b["total"], "entry": b["entry"], "links": Value::Array(links(b))}))
            .collect::<Vec<_>>()
    };
    let now = summary().await;
    assert_eq!(now.len(), 3, "7 observations in pages of 3");

    // Rewrite the odd ones as earlier builds stored them: long field names, the payload as
    // base64, a pre-rendered head (a wrong one here: it must not be sent).
    let q = jhe::ports::Query {
        range: jhe::ports::SkRange::Prefix("0000050001#".into()),
        limit: 10_000,
        ..jhe::ports::Query::partition("OBS#0000040005")
    };
    let items = app.state.repo.table.query(&q).await.expect("query").items;
    let mine: Vec<_> =
        items.into_iter().filter(|i| i.data["t0"].as_i64().is_some_and(|t| t >= 1_930_000_000_000)).collect();
    assert_eq!(mine.len(), 7);
    let long = [("pt", "patient_id"), ("cd", "code_id"), ("ds", "data_source_id"), ("st", "status")];
    let long = long.into_iter().chain([("ids", "identifiers"), ("t0", "effective_start"), ("lu", "last_updated")]);
    let long: Vec<_> = long.chain([("ar", "archive")]).collect();
    for mut it in mine.into_iter().skip(1).step_by(2) {
        let m = it.data.as_object_mut().expect("object");
        for (short, name) in &long {
            let v = m.remove(*short).unwrap_or_else(|| panic!("stored under {short}"));
            m.insert(name.to_string(), v);
        }
        let point = m.remove("dp").expect("stored as the data point's text");
        let b64 = base64::engine::general_purpose::STANDARD.encode(point.as_str().expect("text"));
        m.insert("data".into(), json!(b64));
        m.insert("~fhir2".into(), json!({"id": "not-this-one", "status": "amended"}));
        m.insert("~fhir2at".into(), json!([40, b64.len() + 2]));
        app.state.repo.table.put(it, jhe::ports::Cond::None).await.expect("put");
    }
    assert_eq!(summary().await, now, "the same pages from documents written now and by earlier builds");
}

/// The Open mHealth uuid guard: a data point uploaded again (same patient, time and uuid) is
/// refused whatever its identifier; the same uuid on another patient's data point, or on another
/// time, is not; a uuid that a store written before holds in its old (global) form still is.
#[tokio::test]
async fn a_data_point_uploaded_again_is_refused_by_its_uuid() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let pamela = app.patient_token(&mary, 40002, 2).await;
    let upload = async |token: &str, patient: i64, id: &str, at: &str| {
        let dp = jhe::omh::example(HR, id, at).expect("data point");
        // A new identifier on every upload: only the uuid can tell it is the same data point.
        let (s, r) = app.post("/FHIR/R5/", token, batch(vec![observation_with(patient, HR, 70001, &dp)])).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let e = &r["entry"][0]["response"];
        (e["status"].as_str().unwrap_or("").to_string(), e["outcome"]["issue"][0]["diagnostics"].clone())
    };
    let id = uuid();
    assert_eq!(upload(&peter, 40001, &id, "2032-01-01T08:00:00Z").await.0, "201 Created");
    let (status, why) = upload(&peter, 40001, &id, "2032-01-01T08:00:00Z").await;
    assert_eq!(status, "409 Conflict");
    assert_eq!(why, json!(format!("An observation with Open mHealth header.uuid {id} already exists.")));
    assert_eq!(upload(&pamela, 40002, &id, "2032-01-01T08:00:00Z").await.0, "201 Created", "another patient's");
    assert_eq!(upload(&peter, 40001, &id, "2032-01-01T09:00:00Z").await.0, "201 Created", "another time");

    // A store written before: the uuid's key in its old form, held by an observation.
    let old = uuid();
    let key = jhe::ports::Item::new(format!("OBSKEY#urn:omh:header.uuid|{old}"), "A", json!({"id": 60001}));
    app.state.repo.table.put(key, jhe::ports::Cond::Absent).await.expect("put");
    assert_eq!(upload(&peter, 40001, &old, "2032-01-02T08:00:00Z").await.0, "409 Conflict");

    // If-None-Exist matches identifiers, not the uuid guard: an app that names its identifiers
    // `urn:omh:header.uuid` gets its observation back, as with any identifier system; the uuid
    // of a data point stored without such an identifier matches nothing (and the create is
    // refused by the guard).
    let conditional = async |dp: &serde_json::Value, identifier: Option<&str>, cond: &str| {
        let mut obs = observation_with(40001, HR, 70001, dp);
        if let Some(v) = identifier {
            obs["identifier"] = json!([{"system": "urn:omh:header.uuid", "value": v}]);
        }
        let body = obs.to_string().into_bytes();
        let (s, r, _) =
            app.post_raw("/FHIR/R5/Observation", &peter, "application/json", body, &[("if-none-exist", cond)]).await;
        (s, r["id"].clone())
    };
    let named = uuid();
    let dp = jhe::omh::example(HR, &named, "2032-01-03T08:00:00Z").expect("data point");
    let cond = format!("identifier=urn:omh:header.uuid|{named}");
    let (s, first) = conditional(&dp, Some(&named), &cond).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(conditional(&dp, Some(&named), &cond).await, (StatusCode::OK, first), "the one stored");
    // Another data point with that identifier, without the condition: refused for the identifier.
    let mut again = observation(40001, HR, 70001, "2032-01-03T09:00:00Z");
    again["identifier"] = json!([{"system": "urn:omh:header.uuid", "value": named}]);
    let (s, r) = app.post("/FHIR/R5/", &peter, batch(vec![again])).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["entry"][0]["response"]["status"].as_str(),
            &r["entry"][0]["response"]["outcome"]["issue"][0]["diagnostics"]
        ),
        (Some("409 Conflict"), &json!(format!("Identifier already exists: system=urn:omh:header.uuid value={named}")))
    );
    let dp = jhe::omh::example(HR, &id, "2032-01-01T08:00:00Z").expect("data point");
    let (s, _) = conditional(&dp, None, &format!("identifier=urn:omh:header.uuid|{id}")).await;
    assert_eq!(s, StatusCode::CONFLICT, "not found by its uuid; refused by the guard");
}

/// `n` readings of `patient` on `day` (`YYYY-MM-DD`), one an hour from midnight: heart rate and
/// blood pressure in turn, or only heart rate.
fn hourly(patient: i64, n: usize, day: &str, in_turn: bool) -> Vec<Value> {
    let code = |h: usize| if in_turn && h % 2 == 1 { BP } else { HR };
    (0..n).map(|h| observation(patient, code(h), 70001, &format!("{day}T{h:02}:00:00Z"))).collect()
}

/// Uploads `resources` in one batch as `token`; every entry is created.
async fn upload_all(app: &TestApp, token: &str, resources: Vec<Value>) {
    let (s, resp) = app.post("/FHIR/R5/", token, batch(resources)).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let created = resp["entry"].as_array().expect("entries").iter().all(|e| e["response"]["status"] == "201 Created");
    assert!(created, "{resp}");
}

/// A patient's page merges their scopes by time: heart-rate and blood-pressure readings taken
/// in turn come newest first by default and oldest first with `_sort=date`, page after page,
/// each once.
#[tokio::test]
async fn a_page_merges_a_patients_scopes_in_time_order() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let at = |h: usize| format!("2031-05-06T{h:02}:00:00Z");
    upload_all(&app, &mary, hourly(40001, 12, "2031-05-06", true)).await;
    for (sort, newest_first) in [("", true), ("&_sort=date", false), ("&_sort=-date", true)] {
        let url = format!("/FHIR/R5/Observation?patient=40001&date=ge2031-05-06&date=lt2031-05-07&_count=5{sort}");
        let mut got = Vec::new();
        for b in pages(&app, &mary, &url).await {
            for e in b["entry"].as_array().into_iter().flatten() {
                let r = &e["resource"];
                got.push((
                    r["effectiveDateTime"].as_str().unwrap_or("").to_string(),
                    r["code"]["coding"][0]["code"].clone(),
                ));
            }
        }
        let mut want: Vec<(String, Value)> =
            (0..12).map(|h| (at(h), json!(if h % 2 == 0 { HR } else { BP }))).collect();
        if newest_first {
            want.reverse();
        }
        assert_eq!(got, want, "sort {sort:?}");
    }
}

/// `_source` names where data came from: everything here is JHE's, so JHE's source (or a prefix
/// of it with `:below`) finds the same as no `_source`, and any other finds nothing, whether the
/// page is written as read (one scope) or merged (several).
#[tokio::test]
async fn a_search_for_another_source_finds_nothing() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    upload_all(&app, &mary, hourly(40001, 4, "2031-05-08", true)).await;
    for scope in [format!("&code={OMH}|{HR}"), String::new()] {
        let base = format!("/FHIR/R5/Observation?patient=40001{scope}");
        let (_, plain) = app.get(&base, &mary).await;
        assert!(plain["total"].as_u64().is_some_and(|n| n >= 2), "{scope}: {plain}");
        for (source, finds) in [
            ("_source=https://jupyterhealth.org/jhe", true),
            ("_source:below=https://jupyterhealth.org", true),
            ("_source=https://other.example/app", false),
            ("_source:below=https://other.example", false),
        ] {
            let (s, b) = app.get(&format!("{base}&{source}"), &mary).await;
            assert_eq!(s, StatusCode::OK, "{scope} {source}: {b}");
            if finds {
                assert_eq!((&b["total"], ids(&b)), (&plain["total"], ids(&plain)), "{scope} {source}");
            } else {
                assert_eq!((&b["total"], b.get("entry")), (&json!(0), Some(&json!([]))), "{scope} {source}");
            }
        }
    }
}

/// The admin observation list pages by number: its pages in turn hold, in order, what one page of
/// all of them holds, each with the count and links to the pages either side; a page past the end
/// is not found.
#[tokio::test]
async fn the_admin_observation_list_pages_by_number() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mut resources = hourly(40001, 7, "2031-05-07", true);
    resources.extend(hourly(40002, 4, "2031-05-07", false));
    upload_all(&app, &mary, resources).await;
    // Study 30003 requests one scope (blood glucose): its pages are read from where the ones
    // before end in the store; the others merge several scopes.
    let mark = app.access("manager_mark@example.com").await;
    let blood_glucose = (0..7).map(|h| observation(40005, BG, 70002, &format!("2031-05-07T{h:02}:00:00Z"))).collect();
    upload_all(&app, &mark, blood_glucose).await;
    for (filter, token) in [("patientId=40001", &mary), ("studyId=30001", &mary), ("studyId=30003", &mark)] {
        let (s, all) = app.get(&format!("/api/v1/observations?{filter}&pageSize=1000"), token).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        let want = all["results"].as_array().expect("results").clone();
        let count = all["count"].as_u64().expect("count") as usize;
        assert_eq!(want.len(), count, "{filter}: one page holds them all");
        assert!(count >= 7, "{filter}: the uploads and the seed's");
        let pages = count.div_ceil(3);
        let mut got = Vec::new();
        for page in 1..=pages {
            let (s, b) = app.get(&format!("/api/v1/observations?{filter}&pageSize=3&page={page}"), token).await;
            assert_eq!(s, StatusCode::OK, "{filter} page {page}: {b}");
            assert_eq!(b["count"], json!(count), "{filter} page {page}");
            let next = b["next"].as_str().map(|u| u.contains(&format!("page={}", page + 1)));
            assert_eq!(next, (page < pages).then_some(true), "{filter} page {page}: next");
            let previous = b["previous"].as_str().map(|u| u.contains(&format!("page={}", page - 1)));
            assert_eq!(previous, (page > 1).then_some(true), "{filter} page {page}: previous");
            got.extend(b["results"].as_array().expect("results").iter().cloned());
        }
        assert_eq!(got, want, "{filter}: the pages in turn hold what one page of all holds");
        let (s, _) = app.get(&format!("/api/v1/observations?{filter}&pageSize=3&page={}", pages + 1), token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{filter}: past the last page");
    }
}

/// A search whose patients each have one readable scope (`code` given) writes each page as the
/// store reads it; one over several scopes merges them first. Both give the same entries, across
/// patients and pages, in every order.
#[tokio::test]
async fn a_page_written_as_read_holds_what_the_merged_page_holds() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mut resources = hourly(40001, 10, "2031-05-06", true);
    resources.extend(hourly(40002, 5, "2031-05-06", false));
    upload_all(&app, &mary, resources).await;
    // Every entry of a search followed to its end, each page's total, and how many pages.
    let pull = async |first: String| {
        let pages = pages(&app, &mary, &first).await;
        let entries: Vec<Value> =
            pages.iter().flat_map(|b| b["entry"].as_array().into_iter().flatten().cloned()).collect();
        (entries, pages.iter().map(|b| b["total"].clone()).collect::<Vec<_>>(), pages.len())
    };
    let study = "/FHIR/R5/Observation?patient._has:Group:member:_id=30001";
    let day = "&date=ge2031-05-06&date=lt2031-05-07";
    for (window, sort) in [
        (day, ""),
        (day, "&_sort=date"),
        (day, "&_sort=-date"),
        ("", "&_sort=_lastUpdated"),
        ("", "&_sort=-_lastUpdated"),
    ] {
        let (one, totals, pages) = pull(format!("{study}&code={OMH}|{HR}{window}&_count=3{sort}")).await;
        let (all, _, _) = pull(format!("{study}{window}&_count=1000{sort}")).await;
        let want: Vec<Value> = all.into_iter().filter(|e| e["resource"]["code"]["coding"][0]["code"] == HR).collect();
        assert!(want.len() >= 10, "{window}{sort}: the 10 heart rates uploaded, and the seed's without a window");
        assert_eq!(one, want, "{window}{sort}: the same entries in the same order");
        assert_eq!(pages, want.len().div_ceil(3), "{window}{sort}: pages of 3");
        assert!(totals.iter().all(|t| *t == json!(want.len())), "{window}{sort}: every page's total: {totals:?}");
        let patients: BTreeSet<&str> =
            one.iter().filter_map(|e| e["resource"]["subject"]["reference"].as_str()).collect();
        assert_eq!(patients.len(), 2, "{window}{sort}: both patients' pages");
    }
}

/// A search page ends before the configured byte limit (`JHE_MAX_PAGE_BYTES`, under Lambda's
/// response limit) and its `next` link goes on from there: every observation comes back once, in
/// order, with the same total, on a page written as the store reads it and on a merged one.
#[tokio::test]
async fn a_page_ends_before_its_byte_limit_and_the_next_page_goes_on() {
    // Room for the page's end and about two entries.
    let limit = jhe::fhir::PAGE_END_BYTES + 3_000;
    let app = spawn_custom(|s| s.max_page_bytes = limit, Default::default(), jhe::http::app).await;
    let mark = app.access("manager_mark@example.com").await;
    let resources = (0..7).map(|i| observation(40005, BG, 70002, &format!("2031-05-04T0{i}:00:00Z"))).collect();
    let (s, resp) = app.post("/FHIR/R5/", &mark, batch(resources)).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let ids = |pages: &[Value]| -> Vec<String> {
        let entries = pages.iter().flat_map(|p| p["entry"].as_array().expect("entries").iter());
        entries.map(|e| e["resource"]["id"].as_str().expect("id").to_string()).collect()
    };
    let window = "date=ge2031-05-04&date=lt2031-05-05";
    let written_as_read = format!("/FHIR/R5/Observation?patient=40005&code={OMH}|{BG}&{window}&_count=100");
    // A lastUpdated filter is applied after reading: the merging path.
    let merged = format!("{written_as_read}&_lastUpdated=ge2020-01-01");
    let mut seen = Vec::new();
    for url in [written_as_read, merged] {
        let all = pages(&app, &mark, &url).await;
        assert!(all.len() >= 3, "7 entries of ~1.2 kB in pages of at most {limit} bytes: {} pages", all.len());
        for p in &all {
            let n = p["entry"].as_array().expect("entries").len();
            let bytes = serde_json::to_vec(p).expect("json").len();
            assert!(n >= 1 && bytes <= limit, "{n} entries, {bytes} bytes");
            assert_eq!(p["total"], 7);
        }
        let got = ids(&all);
        assert_eq!(got.len(), 7, "each once: {got:?}");
        assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 7);
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "the same order either way");
    // Newest first (the default `-date`); ids were given in time order.
    let numbers: Vec<i64> = seen[0].iter().map(|i| i.parse().expect("numeric id")).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "{numbers:?}");
}
