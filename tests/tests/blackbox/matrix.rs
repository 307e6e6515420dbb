//! The authorization matrix: every admin route x every kind of caller -> the expected status,
//! in one table. Destructive rows get a fresh target per caller from a setup step.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[derive(Clone, Copy, Debug)]
enum Setup {
    None,
    /// `{x}` = the caller's own user id.
    SelfId,
    /// `{x}` = a new organization under Lifespan Lab.
    ChildOrg,
    /// `{x}` = a new practitioner's user id, `{p}` = their practitioner id.
    Practitioner,
    /// `{x}` = a new practitioner's user id, already a member of Lifespan Lab.
    Member,
    /// `{x}` = a new patient in this organization.
    PatientIn(i64),
    /// `{x}` = a new study of Lifespan Lab.
    Study,
    /// `{x}` = a new study of Lifespan Lab with patient 40002 enrolled.
    StudyWithPatient,
    DataSource,
    Client,
    /// `{x}` = an API key of the caller (the superuser's for a patient).
    OwnKey,
    /// `{x}` = an API key of the superuser.
    SuKey,
    /// `{x}` = a new FHIR source of patient 40001 (Peter, the patient caller).
    PeterSource,
}

struct Row {
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    setup: Setup,
    /// superuser, manager, member, viewer (all of Lifespan Lab), practitioner of another organization, patient.
    expect: [u16; 6],
    /// Public route: no token needed, so bad tokens do not matter.
    public: bool,
}

fn row(method: Method, path: &'static str, body: Option<&'static str>, setup: Setup, expect: [u16; 6]) -> Row {
    Row { method, path, body, setup, expect, public: false }
}

const ALL200: [u16; 6] = [200; 6];
const PRACT200: [u16; 6] = [200, 200, 200, 200, 200, 403];
const ORG_READ: [u16; 6] = [200, 200, 200, 200, 403, 403];
const SU_ONLY_200: [u16; 6] = [200, 403, 403, 403, 403, 403];
const SU_ONLY_201: [u16; 6] = [201, 403, 403, 403, 403, 403];
const SU_ONLY_204: [u16; 6] = [204, 403, 403, 403, 403, 403];
const MANAGE_201: [u16; 6] = [201, 201, 201, 403, 403, 403];
const MANAGE_200: [u16; 6] = [200, 200, 200, 403, 403, 403];
const MANAGE_204: [u16; 6] = [204, 204, 204, 403, 403, 403];
const MGR_201: [u16; 6] = [201, 201, 403, 403, 403, 403];
const MGR_200: [u16; 6] = [200, 200, 403, 403, 403, 403];
const MGR_204: [u16; 6] = [204, 204, 403, 403, 403, 403];
const PATIENT_ONLY_201: [u16; 6] = [403, 403, 403, 403, 403, 201];
const PATIENT_ONLY_200: [u16; 6] = [403, 403, 403, 403, 403, 200];
const PATIENT_ONLY_204: [u16; 6] = [403, 403, 403, 403, 403, 204];
const OWNER_ONLY_200: [u16; 6] = [404, 404, 404, 404, 404, 200];

fn rows() -> Vec<Row> {
    use Method as M;
    use Setup as S;
    let mut r = vec![
        // users
        row(M::GET, "/api/v1/users/profile", None, S::None, ALL200),
        row(M::GET, "/api/v1/users", None, S::None, SU_ONLY_200),
        row(M::GET, "/api/v1/users/{x}", None, S::SelfId, ALL200),
        row(M::GET, "/api/v1/users/10002", None, S::None, [200, 200, 403, 403, 403, 403]),
        row(M::PATCH, "/api/v1/users/10002", Some(r#"{"firstName": "Mary"}"#), S::None, [403, 200, 403, 403, 403, 403]),
        row(M::PATCH, "/api/v1/users/{x}", Some(r#"{"isSuperuser": true}"#), S::SelfId, [400; 6]),
        row(M::PATCH, "/api/v1/users/{x}", Some(r#"{"email": "x@example.com"}"#), S::SelfId, [400; 6]),
        row(M::GET, "/api/v1/users/organizations", None, S::None, ALL200),
        row(M::GET, "/api/v1/users/search_by_email?email=member_megan@example.com", None, S::None, PRACT200),
        // organizations
        row(M::GET, "/api/v1/organizations", None, S::None, ALL200),
        row(M::GET, "/api/v1/organizations/types", None, S::None, ALL200),
        row(M::GET, "/api/v1/organizations/20003", None, S::None, ALL200),
        row(M::GET, "/api/v1/organizations/20001/tree", None, S::None, ALL200),
        row(M::GET, "/api/v1/organizations/20003/users", None, S::None, PRACT200),
        row(M::GET, "/api/v1/organizations/20003/studies", None, S::None, ORG_READ),
        row(
            M::POST,
            "/api/v1/organizations",
            Some(r#"{"name": "Sub {u}", "type": "laboratory", "partOf": 20003}"#),
            S::None,
            MGR_201,
        ),
        row(
            M::POST,
            "/api/v1/organizations",
            Some(r#"{"name": "Top {u}", "type": "edu", "partOf": 0}"#),
            S::None,
            SU_ONLY_201,
        ),
        row(M::PATCH, "/api/v1/organizations/{x}", Some(r#"{"name": "Renamed {u}"}"#), S::ChildOrg, MGR_200),
        row(
            M::PUT,
            "/api/v1/organizations/{x}",
            Some(r#"{"name": "Renamed {u}", "type": "laboratory"}"#),
            S::ChildOrg,
            MGR_200,
        ),
        row(M::DELETE, "/api/v1/organizations/{x}", None, S::ChildOrg, MGR_204),
        row(
            M::POST,
            "/api/v1/organizations/20003/user",
            Some(r#"{"jheUserId": {x}, "organizationPartitionerRole": "viewer"}"#),
            S::Practitioner,
            MGR_201,
        ),
        row(
            M::POST,
            "/api/v1/organizations/20003/user",
            Some(r#"{"jheUserId": {x}, "organizationPartitionerRole": "manager"}"#),
            S::Member,
            MGR_200,
        ),
        row(M::DELETE, "/api/v1/organizations/20003/remove_user", Some(r#"{"jheUserId": {x}}"#), S::Member, MGR_204),
        // practitioners
        row(M::GET, "/api/v1/practitioners", None, S::None, SU_ONLY_200),
        row(M::GET, "/api/v1/practitioners/80002", None, S::None, SU_ONLY_200),
        row(
            M::POST,
            "/api/v1/practitioners",
            Some(r#"{"telecomEmail": "pract{u}@example.com", "nameFamily": "P"}"#),
            S::None,
            SU_ONLY_201,
        ),
        row(M::PATCH, "/api/v1/practitioners/{p}", Some(r#"{"nameFamily": "Q"}"#), S::Practitioner, SU_ONLY_200),
        row(M::DELETE, "/api/v1/practitioners/{p}", None, S::Practitioner, SU_ONLY_204),
        // patients
        row(M::GET, "/api/v1/patients", None, S::None, ALL200),
        row(M::GET, "/api/v1/patients?organizationId=20003", None, S::None, [200, 200, 200, 200, 403, 200]),
        row(M::GET, "/api/v1/patients/40001", None, S::None, [200, 200, 200, 200, 403, 200]),
        row(M::GET, "/api/v1/patients/40003", None, S::None, [200, 403, 403, 403, 200, 403]),
        row(M::GET, "/api/v1/patients/me", None, S::None, [403, 403, 403, 403, 403, 200]),
        row(
            M::POST,
            "/api/v1/patients",
            Some(r#"{"organizationId": 20003, "telecomEmail": "new{u}@example.com"}"#),
            S::None,
            MANAGE_201,
        ),
        row(
            M::PATCH,
            "/api/v1/patients/{x}?organizationId=20003",
            Some(r#"{"nameFamily": "Doe"}"#),
            S::PatientIn(20003),
            MANAGE_200,
        ),
        row(M::PATCH, "/api/v1/patients/{x}", Some(r#"{"nameFamily": "Doe"}"#), S::PatientIn(20003), MANAGE_200),
        row(
            M::PATCH,
            "/api/v1/patients/{x}?organizationId=20003",
            Some(r#"{"nameFamily": "Doe"}"#),
            S::PatientIn(20007),
            [400, 403, 403, 403, 400, 403],
        ),
        row(M::DELETE, "/api/v1/patients/{x}?organizationId=20003", None, S::PatientIn(20003), MANAGE_204),
        row(
            M::GET,
            "/api/v1/patients/global_lookup?email=ll_patient_peter@example.com",
            None,
            S::None,
            [200, 200, 200, 403, 200, 403],
        ),
        row(
            M::PATCH,
            "/api/v1/patients/{x}/global_add_organization?organizationId=20003",
            None,
            S::PatientIn(20007),
            MANAGE_200,
        ),
        row(M::GET, "/api/v1/patients/40001/consolidated_clients", None, S::None, [200, 200, 200, 200, 403, 200]),
        row(M::GET, "/api/v1/patients/40001/consents", None, S::None, [200, 200, 200, 200, 403, 200]),
        // Granting consent is the patient's act; a practitioner may record a refusal or a withdrawal.
        row(M::POST, "/api/v1/patients/40001/consents", Some(CONSENT), S::None, PATIENT_ONLY_201),
        row(M::PATCH, "/api/v1/patients/40001/consents", Some(CONSENT), S::None, PATIENT_ONLY_200),
        row(M::POST, "/api/v1/patients/40001/consents", Some(REFUSAL), S::None, [201, 201, 201, 403, 403, 201]),
        row(M::PATCH, "/api/v1/patients/40001/consents", Some(REFUSAL), S::None, [200, 200, 200, 403, 403, 200]),
        // Taking a decision back (to pending) is the patient's too; so is forgetting them all.
        row(M::DELETE, "/api/v1/patients/40001/consents", Some(CONSENT), S::None, PATIENT_ONLY_204),
        row(M::DELETE, "/api/v1/patients/40001/consents", None, S::None, PATIENT_ONLY_204),
        // A GET changes nothing (upstream's ?reset=true deleted every decision).
        row(M::GET, "/api/v1/patients/40001/consents?reset=true", None, S::None, [400; 6]),
        // invitations
        row(
            M::POST,
            "/api/v1/invitation",
            Some(r#"{"patient_id": 40001, "client_id": 2, "send_email": false}"#),
            S::None,
            MANAGE_201,
        ),
        row(M::GET, "/api/v1/invitation", None, S::None, PRACT200),
        // studies
        row(M::GET, "/api/v1/studies", None, S::None, PRACT200),
        row(M::GET, "/api/v1/studies?organizationId=20003", None, S::None, ORG_READ),
        row(M::GET, "/api/v1/studies/30001", None, S::None, ORG_READ),
        row(
            M::POST,
            "/api/v1/studies",
            Some(r#"{"organization": 20003, "name": "S {u}", "description": "d"}"#),
            S::None,
            MANAGE_201,
        ),
        row(M::PATCH, "/api/v1/studies/{x}", Some(r#"{"name": "T {u}"}"#), S::Study, MANAGE_200),
        row(M::DELETE, "/api/v1/studies/{x}", None, S::Study, MANAGE_204),
        row(M::GET, "/api/v1/studies/30001/patients", None, S::None, ORG_READ),
        row(M::POST, "/api/v1/studies/{x}/patients", Some(r#"{"patientIds": [40002]}"#), S::Study, MANAGE_201),
        row(
            M::DELETE,
            "/api/v1/studies/{x}/patients",
            Some(r#"{"patientIds": [40002]}"#),
            S::StudyWithPatient,
            MANAGE_204,
        ),
        row(M::GET, "/api/v1/studies/30001/scope_requests", None, S::None, ORG_READ),
        row(M::POST, "/api/v1/studies/{x}/scope_requests", Some(r#"{"scopeCodeId": 50002}"#), S::Study, MANAGE_201),
        row(M::DELETE, "/api/v1/studies/{x}/scope_requests", Some(r#"{"scopeCodeId": 50002}"#), S::Study, MANAGE_204),
        row(M::GET, "/api/v1/studies/30001/clients", None, S::None, ORG_READ),
        row(M::POST, "/api/v1/studies/{x}/clients", Some(r#"{"clientId": 2}"#), S::Study, MANAGE_201),
        row(M::DELETE, "/api/v1/studies/{x}/clients", Some(r#"{"clientId": 2}"#), S::Study, MANAGE_204),
        row(M::GET, "/api/v1/studies/30001/data_sources", None, S::None, ORG_READ),
        row(M::POST, "/api/v1/studies/{x}/data_sources", Some(r#"{"dataSourceId": 70001}"#), S::Study, MANAGE_201),
        row(M::DELETE, "/api/v1/studies/{x}/data_sources", Some(r#"{"dataSourceId": 70001}"#), S::Study, MANAGE_204),
        // data sources
        row(M::GET, "/api/v1/data_sources", None, S::None, ALL200),
        row(M::GET, "/api/v1/data_sources/all_scopes", None, S::None, ALL200),
        row(M::GET, "/api/v1/data_sources/70001", None, S::None, ALL200),
        row(M::GET, "/api/v1/data_sources/70001/supported_scopes", None, S::None, ALL200),
        row(M::POST, "/api/v1/data_sources", Some(r#"{"name": "DS {u}"}"#), S::None, SU_ONLY_201),
        row(M::PATCH, "/api/v1/data_sources/{x}", Some(r#"{"name": "DS2 {u}"}"#), S::DataSource, SU_ONLY_200),
        row(M::DELETE, "/api/v1/data_sources/{x}", None, S::DataSource, SU_ONLY_204),
        row(
            M::POST,
            "/api/v1/data_sources/{x}/supported_scopes",
            Some(r#"{"scopeCodeId": 50002}"#),
            S::DataSource,
            SU_ONLY_201,
        ),
        row(
            M::DELETE,
            "/api/v1/data_sources/{x}/supported_scopes",
            Some(r#"{"scopeCodeId": 50002}"#),
            S::DataSource,
            SU_ONLY_204,
        ),
        // clients
        row(M::GET, "/api/v1/clients", None, S::None, ALL200),
        row(M::GET, "/api/v1/clients/2", None, S::None, ALL200),
        row(M::GET, "/api/v1/clients/2/data_sources", None, S::None, ALL200),
        row(
            M::POST,
            "/api/v1/clients",
            Some(
                r#"{"name": "App {u}", "clientId": "app-{u}", "invitationUrl": "https://app.example.org/invite/CODE"}"#,
            ),
            S::None,
            SU_ONLY_201,
        ),
        row(M::PATCH, "/api/v1/clients/{x}", Some(r#"{"name": "App2 {u}"}"#), S::Client, SU_ONLY_200),
        row(M::DELETE, "/api/v1/clients/{x}", None, S::Client, SU_ONLY_204),
        row(M::POST, "/api/v1/clients/{x}/data_sources", Some(r#"{"dataSourceId": 70001}"#), S::Client, SU_ONLY_201),
        row(M::DELETE, "/api/v1/clients/{x}/data_sources", Some(r#"{"dataSourceId": 70001}"#), S::Client, SU_ONLY_204),
        // API keys
        row(M::GET, "/api/v1/practitioner_clients", None, S::None, PRACT200),
        row(
            M::POST,
            "/api/v1/practitioner_clients",
            Some(r#"{"label": "k{u}"}"#),
            S::None,
            [201, 201, 201, 201, 201, 403],
        ),
        row(M::GET, "/api/v1/practitioner_clients/{x}", None, S::OwnKey, PRACT200),
        row(M::PATCH, "/api/v1/practitioner_clients/{x}", Some(r#"{"label": "l{u}"}"#), S::OwnKey, PRACT200),
        row(M::PUT, "/api/v1/practitioner_clients/{x}", Some(r#"{"label": "l{u}"}"#), S::OwnKey, [405; 6]),
        row(M::DELETE, "/api/v1/practitioner_clients/{x}", None, S::OwnKey, [204, 204, 204, 204, 204, 403]),
        row(M::GET, "/api/v1/practitioner_clients/{x}", None, S::SuKey, [200, 404, 404, 404, 404, 403]),
    ];
    // A patient's FHIR sources: theirs alone (practitioners list none and reach none).
    let source = r#"{"label": "L{u}", "fhirBaseUrl": "https://s{u}.example/fhir", "dataSource": 70005}"#;
    r.extend([
        row(M::GET, "/api/v1/fhir_sources", None, S::None, ALL200),
        row(M::POST, "/api/v1/fhir_sources", Some(source), S::None, PATIENT_ONLY_201),
        row(M::GET, "/api/v1/fhir_sources/90001", None, S::None, OWNER_ONLY_200),
        row(M::PATCH, "/api/v1/fhir_sources/90001", Some(r#"{"label": "Halo {u}"}"#), S::None, OWNER_ONLY_200),
        row(M::PUT, "/api/v1/fhir_sources/90001", Some(r#"{"label": "Halo {u}"}"#), S::None, OWNER_ONLY_200),
        row(M::DELETE, "/api/v1/fhir_sources/{x}", None, S::PeterSource, [404, 404, 404, 404, 404, 204]),
    ]);
    r.push(Row {
        method: M::POST,
        path: "/api/v1/invitation/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        body: None,
        setup: S::None,
        expect: [404; 6],
        public: true,
    });
    // Public, no data: liveness and the OpenAPI document, to anyone.
    for path in ["/health", "/api/schema/"] {
        r.push(Row { method: M::GET, path, body: None, setup: S::None, expect: [200; 6], public: true });
    }
    r
}

const CONSENT: &str = r#"{"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [{"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": true}]}]}"#;
const REFUSAL: &str = r#"{"studyScopeConsents": [{"studyId": 30002, "scopeConsents": [{"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": false}]}]}"#;

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

struct Principal {
    name: &'static str,
    token: Option<String>,
    user_id: i64,
    practitioner: bool,
}

async fn created_id(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let (s, v) = app.post(path, token, body).await;
    assert!(s.is_success(), "setup POST {path}: {s} {v}");
    v
}

/// Prepares a target for a row; returns the placeholder values.
async fn setup(app: &TestApp, su: &str, p: &Principal, s: Setup) -> (String, String) {
    let u = UNIQUE.fetch_add(1, Ordering::SeqCst);
    match s {
        Setup::None => (String::new(), String::new()),
        Setup::SelfId => (p.user_id.to_string(), String::new()),
        Setup::ChildOrg => {
            let v = created_id(
                app,
                "/api/v1/organizations",
                su,
                json!({"name": format!("child {u}"), "type": "laboratory", "partOf": 20003}),
            )
            .await;
            (v["id"].to_string(), String::new())
        }
        Setup::Practitioner | Setup::Member => {
            let v =
                created_id(app, "/api/v1/practitioners", su, json!({"telecomEmail": format!("setup{u}@example.com")}))
                    .await;
            let uid = v["jheUserId"].to_string();
            if matches!(s, Setup::Member) {
                created_id(
                    app,
                    "/api/v1/organizations/20003/user",
                    su,
                    json!({"jheUserId": v["jheUserId"], "organizationPartitionerRole": "member"}),
                )
                .await;
            }
            (uid, v["id"].to_string())
        }
        Setup::PatientIn(org) => {
            let v = created_id(
                app,
                "/api/v1/patients",
                su,
                json!({"organizationId": org, "telecomEmail": format!("sp{u}@example.com")}),
            )
            .await;
            (v["id"].to_string(), String::new())
        }
        Setup::Study | Setup::StudyWithPatient => {
            let v = created_id(
                app,
                "/api/v1/studies",
                su,
                json!({"organization": 20003, "name": format!("setup study {u}")}),
            )
            .await;
            if matches!(s, Setup::StudyWithPatient) {
                created_id(app, &format!("/api/v1/studies/{}/patients", v["id"]), su, json!({"patientIds": [40002]}))
                    .await;
            }
            (v["id"].to_string(), String::new())
        }
        Setup::DataSource => {
            let v = created_id(app, "/api/v1/data_sources", su, json!({"name": format!("setup ds {u}")})).await;
            (v["id"].to_string(), String::new())
        }
        Setup::Client => {
            let v = created_id(
                app,
                "/api/v1/clients",
                su,
                json!({"name": format!("setup app {u}"), "clientId": format!("setup-{u}"), "invitationUrl": "https://a.example/CODE"}),
            )
            .await;
            (v["id"].to_string(), String::new())
        }
        Setup::PeterSource => {
            let peter = app.access("ll_patient_peter@example.com").await;
            let body =
                json!({"label": "setup", "fhirBaseUrl": format!("https://setup{u}.example/fhir"), "dataSource": 70005});
            let v = created_id(app, "/api/v1/fhir_sources", &peter, body).await;
            (v["id"].to_string(), String::new())
        }
        Setup::OwnKey | Setup::SuKey => {
            let owner = match (s, &p.token) {
                (Setup::OwnKey, Some(t)) if p.practitioner => t.as_str(),
                _ => su,
            };
            let v = created_id(app, "/api/v1/practitioner_clients", owner, json!({"label": "setup"})).await;
            (v["id"].to_string(), String::new())
        }
    }
}

#[tokio::test]
async fn every_admin_route_answers_each_kind_of_caller_as_the_role_table_says() {
    let app = spawn_app().await;
    let su = app.access("admin@example.com").await;
    let mut principals = Vec::new();
    for (name, email, uid, practitioner) in [
        ("superuser", "admin@example.com", 10001, true),
        ("manager", "manager_mary@example.com", 10002, true),
        ("member", "member_megan@example.com", 10003, true),
        ("viewer", "viewer_victor@example.com", 10004, true),
        ("other-org practitioner", "manager_mark@example.com", 10006, true),
        ("patient", "ll_patient_peter@example.com", 10007, false),
    ] {
        principals.push(Principal { name, token: Some(app.access(email).await), user_id: uid, practitioner });
    }
    principals.push(Principal { name: "anonymous", token: None, user_id: 10002, practitioner: false });
    principals.push(Principal {
        name: "expired token",
        token: Some(app.mint(10002, -120).await),
        user_id: 10002,
        practitioner: false,
    });
    principals.push(Principal {
        name: "token signed by another key",
        token: Some(app.forged(10002).await),
        user_id: 10002,
        practitioner: false,
    });

    let mut failures = Vec::new();
    let mut checked = 0;
    for r in rows() {
        for (i, p) in principals.iter().enumerate() {
            // A method the route does not have is 405 before any authentication.
            let expected = if i < 6 || r.public || r.expect[0] == 405 { r.expect[i.min(5)] } else { 401 };
            let (x, pid) = setup(&app, &su, p, r.setup).await;
            let u = UNIQUE.fetch_add(1, Ordering::SeqCst).to_string();
            let path = r.path.replace("{x}", &x).replace("{p}", &pid);
            let body: Option<Value> = r
                .body
                .map(|b| serde_json::from_str(&b.replace("{x}", &x).replace("{u}", &u)).expect("row body is JSON"));
            let (status, resp) = app.call(r.method.clone(), &path, p.token.as_deref(), body.as_ref()).await;
            checked += 1;
            if status.as_u16() != expected {
                failures.push(format!("{} {path} as {}: expected {expected}, got {status} {resp}", r.method, p.name));
            } else if status.is_client_error()
                && status != StatusCode::METHOD_NOT_ALLOWED
                && !resp["detail"].is_string()
            {
                failures.push(format!("{} {path} as {}: {status} without a detail: {resp}", r.method, p.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 700, "the matrix covers every route ({checked} cases)");
    // Every route that touched a patient's data is classed as audited in the route table: none
    // of these requests was recorded as unclassified.
    let (mut after, mut unclassified, mut records) = (None, Vec::new(), 0);
    loop {
        let q = jhe::ports::AuditQuery { limit: 998, after: after.clone(), ..Default::default() };
        let (page, next) = app.state.audit.query(&q).await.expect("audit");
        records += page.len();
        unclassified.extend(
            page.iter()
                .filter(|r| r.action == jhe::http::audit::UNCLASSIFIED)
                .map(|r| format!("{} {}", r.method, r.path)),
        );
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(records > 300, "{records} records");
    assert!(unclassified.is_empty(), "routes classed as not audited touched patient data: {unclassified:?}");
}
