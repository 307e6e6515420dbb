//! Behaviour of the admin API beyond authorization: wire format, validation, consents,
//! atomicity and persistence.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn lists_are_camel_case_drf_pages_with_absolute_links() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let (s, page) = app.get("/api/v1/organizations?pageSize=4", &mary).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["count"], 9, "every organization, ROOT included");
    assert_eq!(page["results"].as_array().map(Vec::len), Some(4));
    assert_eq!(page["previous"], Value::Null);
    let next = page["next"].as_str().expect("next link");
    assert!(next.starts_with(&app.base) && next.contains("page=2"), "{next}");
    let (s, p2) = app.get(next.trim_start_matches(&app.base), &mary).await;
    assert_eq!(s, StatusCode::OK);
    assert!(p2["previous"].is_string());
    let (s, body) = app.get("/api/v1/organizations?page=99", &mary).await;
    assert_eq!((s, body["detail"].as_str()), (StatusCode::NOT_FOUND, Some("Invalid page.")));
    let (_, lifespan) = app.get("/api/v1/organizations/20003", &mary).await;
    assert_eq!(
        lifespan,
        json!({"id": 20003, "name": "Lifespan Lab", "type": "laboratory", "partOf": 20002, "currentUserRole": "manager", "children": []})
    );
    let (_, root) = app.get("/api/v1/organizations/0", &mary).await;
    assert_eq!(root["partOf"], Value::Null);
    let (_, tree) = app.get("/api/v1/organizations/20004/tree", &mary).await;
    assert_eq!(tree["children"][0]["children"][0]["name"], "Cardiology Division");
    assert_eq!(tree["children"][0]["children"][0]["children"].as_array().map(Vec::len), Some(2));
    let (_, p) = app.get("/api/v1/patients/40001", &mary).await;
    for k in [
        "id",
        "jheUserId",
        "identifiers",
        "nameFamily",
        "nameGiven",
        "birthDate",
        "telecomEmail",
        "telecomPhone",
        "organizations",
    ] {
        assert!(p.get(k).is_some(), "patient has {k}: {p}");
    }
    assert_eq!(p["telecomEmail"], "ll_patient_peter@example.com");
    let (_, ds) = app.get("/api/v1/data_sources/70001", &mary).await;
    assert_eq!(ds["supportedScopes"].as_array().map(Vec::len), Some(2), "detail lists supported scopes too");
}

#[tokio::test]
async fn patient_creation_validates_and_leaves_nothing_behind_on_failure() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let cases = [
        (json!({"organizationId": 20003}), "Email is required to create a patient."),
        (json!({"organizationId": 20003, "telecomEmail": "not-an-email"}), "Enter a valid email address."),
        (
            json!({"organizationId": 20003, "telecomEmail": "a1@example.com", "birthDate": "15/05/1990"}),
            "Enter a valid birth date (YYYY-MM-DD).",
        ),
        (json!({"organizationId": "abc", "telecomEmail": "a2@example.com"}), "organizationId must be an integer id."),
        (
            json!({"organizationId": 20003, "telecomEmail": "a3@example.com", "identifiers": [{"system": "s", "value": "fresh"}, {"system": "urn:oid:1.2.3.4", "value": "E1234"}]}),
            "The external identifier urn:oid:1.2.3.4|E1234 is already in use by another patient.",
        ),
    ];
    let (_, before) = app.get("/api/v1/patients?organizationId=20003", &mary).await;
    for (body, msg) in cases {
        let (s, resp) = app.post("/api/v1/patients", &mary, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["detail"], msg);
    }
    let (_, after) = app.get("/api/v1/patients?organizationId=20003", &mary).await;
    assert_eq!(before["count"], after["count"], "no patient was created");
    assert!(app.repo().user_by_email("a3@example.com").await.expect("lookup").is_none(), "no orphan user");
    // The identifier that was free is still free.
    let (s, p) = app
        .post(
            "/api/v1/patients",
            &mary,
            json!({"organization_id": 20003, "telecom_email": "A4@Example.com", "name_given": "Ann", "birth_date": "1985-01-31",
                   "identifiers": [{"system": "s", "value": "fresh"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "snake_case input is accepted: {p}");
    assert_eq!(p["telecomEmail"], "a4@example.com");
    assert_eq!(p["nameGiven"], "Ann");
    assert_eq!(p["organizations"][0]["id"], 20003);
    // Identifiers are replaced as a whole on update.
    let (s, p2) = app
        .patch(
            &format!("/api/v1/patients/{}", p["id"]),
            &mary,
            json!({"identifiers": [{"system": "t", "value": "v2"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p2["identifiers"].as_array().map(Vec::len), Some(1));
    assert_eq!(p2["identifiers"][0]["value"], "v2");
    let (s, _) = app.post("/api/v1/patients", &mary, json!({"organizationId": 20003, "telecomEmail": "a5@example.com", "identifiers": [{"system": "s", "value": "fresh"}]})).await;
    assert_eq!(s, StatusCode::CREATED, "the replaced identifier was released");
}

#[tokio::test]
async fn bad_bodies_get_clear_4xx_answers() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let resp = app
        .http
        .post(app.url("/api/v1/studies"))
        .bearer_auth(&mary)
        .header("content-type", "application/json")
        .body("{\"organization\": 20003, \"name\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert!(body["detail"].as_str().unwrap_or("").starts_with("JSON parse error"), "{body}");
    let big = "x".repeat(2 * 1024 * 1024);
    let resp = app
        .http
        .post(app.url("/api/v1/studies"))
        .bearer_auth(&mary)
        .header("content-type", "application/json")
        .body(format!("{{\"organization\": 20003, \"name\": \"{big}\"}}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (s, b) = app.post("/api/v1/studies", &mary, json!([1, 2])).await;
    assert_eq!((s, b["detail"].as_str()), (StatusCode::BAD_REQUEST, Some("The request body must be a JSON object.")));
    let (s, b) = app.post("/api/v1/studies", &mary, json!({"organization": 20003, "name": 5})).await;
    assert_eq!((s, b["detail"].as_str()), (StatusCode::BAD_REQUEST, Some("name must be a string.")));
    let (s, _) = app.get("/api/v1/studies/abc", &mary).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/api/v1/studies/39999", &mary).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app
        .post(
            "/api/v1/organizations",
            &app.access("admin@example.com").await,
            json!({"name": "X", "type": "bogus", "partOf": 0}),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (StatusCode::BAD_REQUEST, Some("\"bogus\" is not a valid organization type."))
    );
    let (s, _) = app.call(Method::GET, "/api/v1/nope", Some(&mary), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A malformed partOf is refused, not read as "top level" (which would make a superuser's
    // typo a new institution).
    let su = app.access("admin@example.com").await;
    let (_, before) = app.get("/api/v1/organizations?pageSize=1000", &su).await;
    for part_of in [json!("abc"), json!(1.5), json!({"id": 20003}), json!(true)] {
        let (s, b) =
            app.post("/api/v1/organizations", &su, json!({"name": "Typo", "type": "edu", "partOf": part_of})).await;
        assert_eq!(
            (s, b["detail"].as_str()),
            (StatusCode::BAD_REQUEST, Some("partOf must be an integer id.")),
            "partOf {part_of}"
        );
    }
    let (_, after) = app.get("/api/v1/organizations?pageSize=1000", &su).await;
    assert_eq!(before["count"], after["count"], "nothing created");
}

async fn consents(app: &TestApp, token: &str, patient: i64) -> Value {
    let (s, c) = app.get(&format!("/api/v1/patients/{patient}/consents"), token).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c
}

fn decision(c: &Value, study: i64, code: &str) -> Option<Value> {
    c["studies"].as_array()?.iter().find(|s| s["id"] == study)?["scopeConsents"]
        .as_array()?
        .iter()
        .find(|sc| sc["code"]["codingCode"] == code)
        .map(|sc| sc["consented"].clone())
}

fn pending(c: &Value, study: i64) -> Vec<String> {
    c["studiesPendingConsent"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == study))
        .and_then(|s| s["pendingScopeConsents"].as_array())
        .map(|a| a.iter().map(|sc| sc["code"]["codingCode"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn consent_moves_from_pending_to_decided_to_revoked_and_back() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(
        pending(&c, 30002),
        ["omh:blood-pressure:4.0", "QuestionnaireResponse"],
        "Peter has not decided on study 30002"
    );
    assert_eq!(decision(&c, 30001, "omh:heart-rate:2.0"), Some(json!(true)));
    assert_eq!(c["consolidatedConsentedScopes"].as_array().map(Vec::len), Some(3));
    assert_eq!(c["patient"]["id"], 40001);

    let body = |v: bool| {
        json!({"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [
            {"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": v}]}]})
    };
    // The manager cannot grant it: that is the patient's act.
    let (s, r) = app.post("/api/v1/patients/40001/consents", &mary, body(true)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{r}");
    assert!(r["detail"].as_str().is_some_and(|d| d.starts_with("Only the patient can grant consent")), "{r}");
    assert_eq!(pending(&consents(&app, &mary, 40001).await, 30002).len(), 2, "nothing written");
    let peter = app.patient_token(&mary, 40001, 2).await;
    let (s, r) = app.post("/api/v1/patients/40001/consents", &peter, body(true)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["studyScopeConsents"][0]["consented"], true);
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(decision(&c, 30002, "omh:blood-pressure:4.0"), Some(json!(true)));
    assert_eq!(pending(&c, 30002), ["QuestionnaireResponse"]);

    // The manager may record a withdrawal.
    let (s, _) = app.patch("/api/v1/patients/40001/consents", &mary, body(false)).await;
    assert_eq!(s, StatusCode::OK);
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(decision(&c, 30002, "omh:blood-pressure:4.0"), Some(json!(false)), "revoked");

    // Taking a decision back to pending is the patient's, not the manager's.
    let (s, _) = app.delete("/api/v1/patients/40001/consents", &mary, Some(body(true))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.delete("/api/v1/patients/40001/consents", &peter, Some(body(true))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(decision(&c, 30002, "omh:blood-pressure:4.0"), None);
    assert_eq!(pending(&c, 30002).len(), 2, "back to pending");

    // A GET changes nothing; DELETE without a body forgets every decision, the patient's only.
    let (s, _) = app.get("/api/v1/patients/40001/consents?reset=true", &peter).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(decision(&consents(&app, &mary, 40001).await, 30001, "omh:heart-rate:2.0").is_some(), "kept");
    let (s, _) = app.delete("/api/v1/patients/40001/consents", &mary, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.delete("/api/v1/patients/40001/consents", &peter, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(c["studies"], json!([]), "every decision forgotten: {c}");
}

/// A patient withdrawn from a study, or a scope the study stops requesting, takes the decisions
/// with it: enrolled or requested again, nothing is readable until the patient decides again.
#[tokio::test]
async fn withdrawal_from_a_study_does_not_come_back_as_consent() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let hr = "omh:heart-rate:2.0";
    assert_eq!(decision(&consents(&app, &mary, 40001).await, 30001, hr), Some(json!(true)), "seeded");
    let (s, _) = app.delete("/api/v1/studies/30001/patients", &mary, Some(json!({"patientIds": [40001]}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.post("/api/v1/studies/30001/patients", &mary, json!({"patientIds": [40001]})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let c = consents(&app, &mary, 40001).await;
    assert_eq!(decision(&c, 30001, hr), None, "no consent came back: {c}");
    assert!(pending(&c, 30001).contains(&hr.to_string()), "pending again: {c}");
    let (_, obs) = app.get("/FHIR/R5/Observation?patient=40001&patient._has:Group:member:_id=30001", &mary).await;
    assert_eq!(obs["total"], 0, "nothing readable: {obs}");

    // Pamela consented to blood pressure in 30001; the study stops requesting it, then asks again.
    let bp = "omh:blood-pressure:4.0";
    assert_eq!(decision(&consents(&app, &mary, 40002).await, 30001, bp), Some(json!(true)), "seeded");
    for method in [Method::DELETE, Method::POST] {
        let (s, b) = app
            .call(method, "/api/v1/studies/30001/scope_requests", Some(&mary), Some(&json!({"scopeCodeId": 50002})))
            .await;
        assert!(s.is_success(), "{s} {b}");
    }
    let c = consents(&app, &mary, 40002).await;
    assert_eq!(decision(&c, 30001, bp), None, "requested again, undecided: {c}");
}

#[tokio::test]
async fn consent_writes_are_validated_whole_before_anything_is_written() {
    let app = spawn_app().await;
    // As the patient, who may make every change, so that every case reaches validation.
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let before = consents(&app, &mary, 40001).await;
    let bp = json!({"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": true});
    for (body, why) in [
        (
            json!({"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [bp.clone()]}, {"studyId": 30002, "scopeConsents": [
            {"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-glucose:4.0", "consented": true}]}]}),
            "scope not requested by the study",
        ),
        (
            json!({"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [bp.clone()]}, {"studyId": 30003, "scopeConsents": [bp.clone()]}]}),
            "patient not enrolled",
        ),
        (
            json!({"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [{"codingSystem": "x", "codingCode": "y", "consented": true}]}]}),
            "unknown code",
        ),
        (
            json!({"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [{"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": "yes"}]}]}),
            "consented not a boolean",
        ),
        (json!({}), "empty body"),
    ] {
        let (s, r) = app.post("/api/v1/patients/40001/consents", &peter, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {r}");
        assert!(r["detail"].is_string());
    }
    assert_eq!(consents(&app, &mary, 40001).await, before, "no partial write");
}

#[tokio::test]
async fn nobody_changes_their_own_role_and_orgs_in_use_are_not_deleted() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let megan = app.access("member_megan@example.com").await;
    let (s, _) = app
        .post(
            "/api/v1/organizations/20003/user",
            &mary,
            json!({"jheUserId": 10002, "organizationPartitionerRole": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post(
            "/api/v1/organizations/20003/user",
            &megan,
            json!({"jheUserId": 10003, "organizationPartitionerRole": "manager"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, users) = app.get("/api/v1/organizations/20003/users", &mary).await;
    let megan_row = users.as_array().expect("list").iter().find(|u| u["id"] == 10003).expect("megan").clone();
    assert_eq!(megan_row["role"], "member");
    let (s, _) = app
        .post(
            "/api/v1/organizations/20003/user",
            &mary,
            json!({"jheUserId": 10007, "organizationPartitionerRole": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a patient is not a practitioner");
    let (s, _) =
        app.post("/api/v1/organizations/20003/user", &mary, json!({"organizationPartitionerRole": "viewer"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let su = app.access("admin@example.com").await;
    let (s, b) = app.delete("/api/v1/organizations/20003", &su, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _) = app.get("/api/v1/organizations/20003", &su).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.delete("/api/v1/studies/30001", &mary, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "a study with enrolled patients is not deleted");
}

#[tokio::test]
async fn records_tokens_and_the_signing_key_survive_a_restart() {
    let app = spawn_app().await;
    let su = app.access("admin@example.com").await;
    let (s, org) = app.post("/api/v1/organizations", &su, json!({"name": "Durable", "type": "edu", "partOf": 0})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, before) = app.get("/api/v1/organizations", &su).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let dir = app.stop().await;
    let app = spawn_on(dir, &addr, true).await;
    let (s, again) = app.get(&format!("/api/v1/organizations/{}", org["id"]), &su).await;
    assert_eq!(s, StatusCode::OK, "a token from before the restart still verifies (same key)");
    assert_eq!(again["name"], "Durable");
    let (_, after) = app.get("/api/v1/organizations", &su).await;
    assert_eq!(before["count"], after["count"], "the seed does not run twice");
    let (s, next) = app.post("/api/v1/organizations", &su, json!({"name": "Next", "type": "edu", "partOf": 0})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(next["id"].as_i64() > org["id"].as_i64(), "ids keep counting after a restart");
}

#[tokio::test]
async fn profiles_describe_practitioners_and_patients() {
    let app = spawn_app().await;
    let su = app.access("admin@example.com").await;
    let (_, me) = app.get("/api/v1/users/profile", &su).await;
    assert_eq!(me["isSuperuser"], true);
    let (_, orgs) = app.get("/api/v1/users/organizations", &app.access("three_org_tom@example.com").await).await;
    let mut roles: Vec<(i64, String)> = orgs
        .as_array()
        .expect("list")
        .iter()
        .map(|o| (o["id"].as_i64().unwrap_or(0), o["currentUserRole"].as_str().unwrap_or("").to_string()))
        .collect();
    roles.sort();
    assert_eq!(roles, [(20003, "viewer".into()), (20007, "member".into()), (20008, "manager".into())]);
    let (s, me) = app
        .patch("/api/v1/users/10003", &app.access("member_megan@example.com").await, json!({"firstName": "Meg"}))
        .await;
    assert_eq!((s, me["firstName"].as_str()), (StatusCode::OK, Some("Meg")));
}
