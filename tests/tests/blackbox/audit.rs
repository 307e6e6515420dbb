//! The audit trail: a record for every access to patient data, consent and access grants,
//! with the right actor, patient, study and outcome; refusals recorded too; a failing audit
//! write fails the request; audit events readable only by those entitled; no values or tokens.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use jhe::domain::audit::AuditRecord;
use jhe::ports::{AuditLog, AuditQuery};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

const OMH: &str = "https://w3id.org/openmhealth";
const HR: &str = "omh:heart-rate:2.0";

async fn records(app: &TestApp, q: AuditQuery) -> Vec<AuditRecord> {
    app.state.audit.query(&AuditQuery { limit: 1000, ..q }).await.expect("audit query").0
}

fn last<'a>(recs: &'a [AuditRecord], action: &str) -> &'a AuditRecord {
    recs.iter()
        .find(|r| r.action == action)
        .unwrap_or_else(|| panic!("no {action} record in {:#?}", recs.iter().map(|r| &r.action).collect::<Vec<_>>()))
}

#[tokio::test]
async fn each_kind_of_access_is_recorded_with_actor_patient_study_and_outcome() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let mark = app.access("manager_mark@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;

    // (a request) -> (expected record)
    let (s, created) =
        app.post("/FHIR/R5/Observation", &peter, observation(40001, HR, 70001, "2025-05-01T10:00:00Z")).await;
    assert_eq!(s, StatusCode::CREATED);
    let obs_id = created["id"].as_str().expect("id").to_string();
    let (s, _) = app.post("/FHIR/R5/Observation", &peter, observation(40002, HR, 70001, "2025-05-01T10:00:00Z")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get(&format!("/FHIR/R5/Observation?patient=40001&code={OMH}|{HR}"), &mary).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get(&format!("/FHIR/R5/Observation/{obs_id}"), &mark).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let hr = |v: bool| json!({"studyScopeConsents": [{"studyId": 30001, "scopeConsents": [{"codingSystem": OMH, "codingCode": HR, "consented": v}]}]});
    assert_eq!(app.patch("/api/v1/patients/40001/consents", &peter, hr(false)).await.0, StatusCode::OK);
    assert_eq!(app.patch("/api/v1/patients/40001/consents", &peter, hr(true)).await.0, StatusCode::OK);
    let (s, study) = app.post("/api/v1/studies", &mary, json!({"organization": 20003, "name": "Audit study"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let sid = study["id"].as_i64().expect("id");
    assert_eq!(
        app.post(&format!("/api/v1/studies/{sid}/patients"), &mary, json!({"patientIds": [40002]})).await.0,
        StatusCode::CREATED
    );
    let (_, key) = app.post("/api/v1/practitioner_clients", &mary, json!({"label": "audit"})).await;
    assert_eq!(
        app.delete(&format!("/api/v1/practitioner_clients/{}", key["id"]), &mary, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(app.login_with("manager_mary@example.com", "wrong password").await.is_err());

    let by_peter = records(&app, AuditQuery { agent: Some(10007), ..Default::default() }).await;
    let up = last(&by_peter, "observation.upload");
    assert_eq!(
        (up.allowed, up.patients.clone(), up.ids.clone()),
        (false, vec![40002], vec![]),
        "the refused upload (newest first)"
    );
    let ok_up = by_peter.iter().find(|r| r.action == "observation.upload" && r.allowed).expect("accepted upload");
    assert_eq!((ok_up.patients.clone(), ok_up.ids.clone(), ok_up.status), (vec![40001], vec![obs_id.clone()], 201));
    assert_eq!(ok_up.agent.role.as_deref(), Some("patient"));
    let consent = last(&by_peter, "consent.write");
    assert_eq!((consent.patients.clone(), consent.studies.clone(), consent.allowed), (vec![40001], vec![30001], true));
    assert!(consent.consents.iter().any(|c| c.starts_with("30001/omh:heart-rate:2.0")));

    let by_mary = records(&app, AuditQuery { agent: Some(10002), ..Default::default() }).await;
    let search = last(&by_mary, "fhir.search");
    assert_eq!((search.patients.clone(), search.studies.clone(), search.allowed), (vec![40001], vec![30001], true));
    assert_eq!(search.consents, vec!["30001/omh:heart-rate:2.0".to_string()], "the consent that allowed it");
    assert!(search.count.unwrap_or(0) >= 2);
    assert_eq!(search.agent.role.as_deref(), Some("manager@20001,manager@20002,manager@20003"));
    assert!(search.query.as_deref().unwrap_or("").contains("patient=40001"));
    assert_eq!(search.source_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(search.user_agent.as_deref(), Some("jhe-tests"));
    let enrol = last(&by_mary, "enrolment.write");
    assert_eq!((enrol.patients.clone(), enrol.studies.clone()), (vec![40002], vec![sid]));
    let inv = last(&by_mary, "invitation.issue");
    assert_eq!(inv.patients, vec![40001]);
    assert_eq!(last(&by_mary, "apikey.create").ids, vec![key["id"].to_string()]);
    assert_eq!(last(&by_mary, "apikey.revoke").ids, vec![key["id"].to_string()]);
    assert!(by_mary.iter().any(|r| r.action == "token.authorization_code" && r.allowed), "token grants");

    let by_mark = records(&app, AuditQuery { agent: Some(10006), ..Default::default() }).await;
    let refused = last(&by_mark, "fhir.read");
    assert_eq!(
        (refused.allowed, refused.status, refused.patients.clone()),
        (false, 404, vec![40001]),
        "a refused read is recorded, with whose data"
    );

    let for_peter = records(&app, AuditQuery { patient: Some(40001), ..Default::default() }).await;
    assert!(
        for_peter.iter().any(|r| r.action == "invitation.redeem" && r.agent.user_id.is_none()),
        "the unauthenticated redemption"
    );
    let all = app.state.audit.query(&AuditQuery { limit: 1000, ..Default::default() }).await.expect("all").0;
    let failed_login = all.iter().find(|r| r.action == "login" && !r.allowed).expect("failed login recorded");
    assert_eq!(failed_login.agent.attempted.as_deref(), Some("manager_mary@example.com"));
    assert!(all.iter().any(|r| r.action == "login" && r.allowed && r.agent.user_id == Some(10002)));
}

#[tokio::test]
async fn no_audit_record_holds_an_observation_value_or_a_token() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let mut dp = jhe::omh::example(HR, &uuid(), "2025-05-01T10:00:00Z").expect("example");
    dp["body"]["heart_rate"]["value"] = json!(87.654321);
    let obs = observation_with(40001, HR, 70001, &dp);
    assert_eq!(app.post("/FHIR/R5/Observation", &peter, obs.clone()).await.0, StatusCode::CREATED);
    let (_, found) = app.get(&format!("/FHIR/R5/Observation?patient=40001&code={OMH}|{HR}"), &mary).await;
    let (_, key) = app.post("/api/v1/practitioner_clients", &mary, json!({"label": "secret"})).await;
    let basic = key["key"].as_str().expect("key").to_string();
    let secret =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&basic).expect("b64")).expect("utf8");
    let (_, inv) = app.post("/api/v1/invitation", &mary, json!({"patient_id": 40002, "client_id": 2})).await;
    let all = app.state.audit.query(&AuditQuery { limit: 1000, ..Default::default() }).await.expect("all").0;
    assert!(all.len() > 8);
    let text = serde_json::to_string(&all).expect("json");
    let data = obs["valueAttachment"]["data"].as_str().expect("data");
    for (what, needle) in [
        ("observation value", "87.654321".to_string()),
        ("observation data", data[..40].to_string()),
        ("access token", mary.clone()),
        ("patient token", peter.clone()),
        ("API key", basic.clone()),
        ("API secret", secret.split(':').nth(1).expect("secret").to_string()),
        ("invitation token", inv["token"].as_str().expect("token").to_string()),
    ] {
        assert!(!text.contains(&needle), "an audit record holds the {what}");
    }
    assert!(found["total"].as_u64().unwrap_or(0) > 0);
    // The FHIR rendering is a valid R5 AuditEvent (checked by fhir.resources in the test command).
    for r in all.iter().take(30) {
        dump("auditevent", &r.to_fhir());
    }
}

struct Broken;

#[async_trait]
impl AuditLog for Broken {
    async fn append(&self, _: &AuditRecord) -> Result<(), String> {
        Err("disk full".into())
    }
    async fn query(&self, _: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), String> {
        Err("disk full".into())
    }
}

#[tokio::test]
async fn a_failing_audit_write_fails_the_request() {
    let app = spawn_with(|s| s.audit = Arc::new(Broken)).await;
    let token = app.mint(10002, 3600).await;
    let (s, body) = app.get("/FHIR/R5/Observation?patient=40001", &token).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.get("entry").is_none(), "no data leaves unaudited: {body}");
    let (s, _) = app.get("/api/v1/patients/40001", &token).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = app.get("/api/v1/organizations", &token).await;
    assert_eq!(s, StatusCode::OK, "requests that touch no patient data are not audited");
}

#[tokio::test]
async fn audit_events_are_readable_only_by_superusers_and_the_patients_managers() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    assert_eq!(app.get("/api/v1/patients/40001", &mary).await.0, StatusCode::OK);
    let peter = app.patient_token(&mary, 40001, 2).await;
    for (who, token, status) in [
        ("superuser", app.access("admin@example.com").await, 200),
        ("manager of the patient's organization", mary.clone(), 200),
        ("member", app.access("member_megan@example.com").await, 403),
        ("manager of another organization", app.access("manager_mark@example.com").await, 403),
        ("the patient", peter.clone(), 403),
    ] {
        let (s, b) = app.get("/FHIR/R5/AuditEvent?patient=40001&_count=50", &token).await;
        assert_eq!(s.as_u16(), status, "{who}: {b}");
        if status == 200 {
            assert!(b["entry"].as_array().is_some_and(|a| !a.is_empty()), "{who} sees events");
            for e in b["entry"].as_array().expect("entries") {
                assert_eq!(e["resource"]["resourceType"], "AuditEvent");
            }
            dump("auditevent-bundle", &b);
        }
    }
    let (s, _) = app.get("/FHIR/R5/AuditEvent?action=E", &mary).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a manager must name a patient or agent");
    let (s, b) = app.get("/FHIR/R5/AuditEvent?agent=10002&_count=2", &app.access("admin@example.com").await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(2));
    assert!(b["link"].as_array().is_some_and(|l| l.iter().any(|l| l["relation"] == "next")), "paged by cursor");
    let (s, _) = app.get("/FHIR/R5/AuditEvent?bogus=1", &mary).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The patient's own view: who accessed my data.
    let (s, mine) = app.get("/api/v1/patients/40001/audit", &peter).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let rows = mine["results"].as_array().expect("rows");
    assert!(
        rows.iter().any(|r| r["agent"]["email"] == "manager_mary@example.com" && r["action"] == "patient.read"),
        "{mine}"
    );
    let pamela = app.patient_token(&mary, 40002, 2).await;
    assert_eq!(app.get("/api/v1/patients/40001/audit", &pamela).await.0, StatusCode::FORBIDDEN);
}

/// Deleting a practitioner's account is recorded (who, which practitioner, the outcome), as a
/// refused attempt is.
#[tokio::test]
async fn deleting_a_practitioner_is_recorded() {
    let app = spawn_app().await;
    let admin = app.access("admin@example.com").await;
    let mary = app.access("manager_mary@example.com").await;
    let (s, doc) = app.post("/api/v1/practitioners", &admin, json!({"telecom_email": "audited.doc@example.com"})).await;
    assert_eq!(s, StatusCode::CREATED, "{doc}");
    let id = doc["id"].to_string();
    let path = format!("/api/v1/practitioners/{id}");
    assert_eq!(app.delete(&path, &mary, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &admin, None).await.0, StatusCode::NO_CONTENT);
    let by_mary = records(&app, AuditQuery { agent: Some(10002), ..Default::default() }).await;
    let refused = last(&by_mary, "practitioner.delete");
    assert_eq!((refused.allowed, refused.status, refused.ids.clone()), (false, 403, vec![id.clone()]));
    let by_admin = records(&app, AuditQuery { agent: Some(10001), ..Default::default() }).await;
    let done = last(&by_admin, "practitioner.delete");
    assert_eq!((done.allowed, done.status, done.ids.clone(), done.fhir_action.as_str()), (true, 204, vec![id], "D"));
    assert_eq!(done.reason, None);
}

/// A day's records are spread over shards and read back merged, newest first, paged without gaps
/// or repeats; records written before shards (one partition per day) are still read; a record
/// naming hundreds of patients reaches every patient's trail.
#[tokio::test]
async fn a_days_records_are_sharded_and_read_back_in_order() {
    let app = spawn_app().await;
    let base = 1_790_000_000_000i64;
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = format!("{:013}{:08}", base + i, i);
        let rec = AuditRecord {
            id: id.clone(),
            recorded: base + i,
            action: "patient.read".into(),
            fhir_action: "R".into(),
            allowed: true,
            status: 200,
            method: "GET".into(),
            path: "/api/v1/patients".into(),
            patients: if i == 59 { (40001..40251).collect() } else { vec![40001] },
            ..Default::default()
        };
        app.state.audit.append(&rec).await.expect("append");
        ids.push(id);
    }
    // One written before shards, straight into the day's single partition.
    let legacy = format!("{:013}{:08}", base + 30, 999);
    let day = time::OffsetDateTime::from_unix_timestamp(base / 1000).expect("time").date();
    let old =
        AuditRecord { id: legacy.clone(), recorded: base + 30, action: "patient.read".into(), ..Default::default() };
    let item = jhe::ports::Item::new(format!("AUDIT#{day}"), legacy.clone(), serde_json::to_value(&old).expect("json"));
    app.state.repo.table.put(item, jhe::ports::Cond::Absent).await.expect("legacy put");
    ids.push(legacy);
    ids.sort_by(|a, b| b.cmp(a));
    // The records are in more than one partition of the day.
    let mut used = 0;
    for n in 0..8 {
        let page =
            app.state.repo.table.query(&jhe::ports::Query::partition(format!("AUDIT#{day}#{n}"))).await.expect("q");
        used += usize::from(!page.items.is_empty());
    }
    assert!(used >= 4, "records spread over {used} of 8 shards");
    // Read back by day, 7 at a time.
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let q =
            AuditQuery { lo: Some(base), hi: Some(base + 100), limit: 7, after: after.clone(), ..Default::default() };
        let (recs, next) = app.state.audit.query(&q).await.expect("query");
        seen.extend(recs.into_iter().map(|r| r.id));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every record once, newest first");
    // The record naming 250 patients is in each one's trail.
    for p in [40001, 40100, 40250] {
        let recs = records(&app, AuditQuery { patient: Some(p), ..Default::default() }).await;
        assert!(recs.iter().any(|r| r.id == ids[0]), "patient {p}'s trail");
    }
}

/// A search of every record looks at a week of days per store query and says where to go on
/// from, so a wide window costs bounded work per request and is read whole by following `next`.
#[tokio::test]
async fn a_wide_window_is_read_a_week_at_a_time() {
    let app = spawn_app().await;
    let day = 86_400_000i64;
    let base = 1_790_000_000_000i64;
    let mut ids = Vec::new();
    for (i, back) in [0, 9, 20, 33].iter().enumerate() {
        let at = base - back * day;
        let rec = AuditRecord {
            id: format!("{at:013}{i:08}"),
            recorded: at,
            action: "patient.read".into(),
            fhir_action: "R".into(),
            allowed: true,
            status: 200,
            ..Default::default()
        };
        app.state.audit.append(&rec).await.expect("append");
        ids.push(rec.id);
    }
    let (mut seen, mut after, mut queries) = (Vec::new(), None, 0);
    loop {
        let q = AuditQuery {
            lo: Some(base - 40 * day),
            hi: Some(base + 1),
            limit: 10,
            after: after.clone(),
            ..Default::default()
        };
        let (recs, next) = app.state.audit.query(&q).await.expect("query");
        queries += 1;
        seen.extend(recs.into_iter().map(|r| r.id));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(queries < 20, "the scan moves on");
    }
    assert_eq!(seen, ids, "every record, newest first");
    assert!(queries >= 6, "41 days at 7 a query: {queries} queries");
    // Over HTTP: the superuser's search follows the same boundaries through `next` links.
    let su = app.access("admin@example.com").await;
    let mut url = app.url(&format!(
        "/FHIR/R5/AuditEvent?date=ge{}&date=lt{}&_count=50",
        time::OffsetDateTime::from_unix_timestamp((base - 40 * day) / 1000).expect("t").date(),
        time::OffsetDateTime::from_unix_timestamp(base / 1000 + 86_400).expect("t").date(),
    ));
    let mut found = 0;
    for _ in 0..10 {
        let b: serde_json::Value =
            app.http.get(&url).bearer_auth(&su).send().await.expect("send").json().await.expect("json");
        found += b["entry"].as_array().map_or(0, |e| {
            e.iter().filter(|x| ids.contains(&x["resource"]["id"].as_str().unwrap_or("").to_string())).count()
        });
        match b["link"].as_array().and_then(|l| l.iter().find(|l| l["relation"] == "next")) {
            Some(n) => url = n["url"].as_str().expect("url").to_string(),
            None => break,
        }
    }
    assert_eq!(found, ids.len(), "all four through next links");
}
