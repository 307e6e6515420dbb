//! An attacker inside the system, over HTTP: what audit records show to whom, what they record of
//! refusals and of forged headers, how big a caller can make them, and sessions, refresh tokens,
//! login redirects and API-key scopes that cannot be bent.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// Posts the login form as a browser does (its CSRF cookie and field), with `next`.
async fn post_login(app: &TestApp, username: &str, password: &str, next: &str) -> reqwest::Response {
    let resp = app.http.get(app.url("/accounts/login/")).send().await.expect("login page");
    let csrf_cookie = set_cookie(&resp, "csrftoken").expect("csrf cookie");
    let csrf = html_input(&resp.text().await.expect("html"), "csrfmiddlewaretoken").expect("csrf field");
    app.http
        .post(app.url("/accounts/login/"))
        .header("cookie", format!("csrftoken={csrf_cookie}"))
        .form(&[("csrfmiddlewaretoken", csrf.as_str()), ("next", next), ("username", username), ("password", password)])
        .send()
        .await
        .expect("login")
}

const TOM: i64 = 10005;
const MARK: i64 = 10006;

/// The Patient and Group references an AuditEvent names.
fn references(e: &Value, kind: &str) -> Vec<i64> {
    e["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|en| en["what"]["reference"].as_str())
        .filter_map(|r| r.strip_prefix(&format!("{kind}/")).and_then(|id| id.parse().ok()))
        .collect()
}

fn events(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()).collect()
}

/// Tom (roles in Lifespan Lab, Neptunian Pulse Lab and Cosmic Cardio Lab) reads every observation
/// he may; Mark (manager in Neptune's organizations) reads Tom's records only as far as they
/// concern Mark's patients and studies; Pat sees only herself in her own trail.
#[tokio::test]
async fn audit_records_show_each_reader_only_what_they_may_see() {
    let app = spawn_app().await;
    let tom = app.access("three_org_tom@example.com").await;
    let (s, b) = app.get("/FHIR/R5/Observation?_count=1000", &tom).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Whole, the record names five patients and the three studies that allowed Tom to read.
    let su = app.access("admin@example.com").await;
    let (_, whole) = app.get(&format!("/FHIR/R5/AuditEvent?agent={TOM}"), &su).await;
    let read =
        events(&whole).into_iter().find(|e| e["code"]["text"] == "GET /FHIR/R5/Observation").expect("Tom's read");
    let mut all = references(&read, "Patient");
    all.sort();
    assert_eq!(all, [40001, 40002, 40003, 40004, 40005], "{read}");

    let mark = app.access("manager_mark@example.com").await;
    for q in [format!("agent={TOM}"), "patient=40005".to_string(), "patient=40003".to_string()] {
        let (s, b) = app.get(&format!("/FHIR/R5/AuditEvent?{q}"), &mark).await;
        assert_eq!(s, StatusCode::OK, "{q}: {b}");
        let tom_reads: Vec<Value> =
            events(&b).into_iter().filter(|e| e["code"]["text"] == "GET /FHIR/R5/Observation").collect();
        assert!(!tom_reads.is_empty(), "{q}: Mark sees that Tom read his patients' data");
        for e in tom_reads {
            for p in references(&e, "Patient") {
                assert!([40003, 40005].contains(&p), "{q}: Mark manages Percy and Pat, not Patient/{p}: {e}");
            }
            for g in references(&e, "Group") {
                assert!(
                    [30003, 30004].contains(&g),
                    "{q}: Group/{g} is a study of an organization Mark is not in: {e}"
                );
            }
            let text = e.to_string();
            assert!(!text.contains("manager@20008") && !text.contains("viewer@20003"), "Tom's other roles: {e}");
            assert!(
                e["entity"].as_array().into_iter().flatten().all(|en| en.get("query").is_none()),
                "the query describes others: {e}"
            );
        }
    }
    // Pat's own trail: only Pat, and only the studies she is in.
    let mary = app.access("manager_mary@example.com").await;
    let _ = mary;
    let pat = app.patient_token(&tom, 40005, 2).await;
    let (s, b) = app.get("/api/v1/patients/40005/audit", &pat).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rows = b["results"].as_array().expect("rows").clone();
    let tom_row =
        rows.iter().find(|r| r["agent"]["userId"] == TOM && r["path"] == "/FHIR/R5/Observation").expect("Tom's read");
    for st in tom_row["studies"].as_array().expect("studies") {
        assert!([json!(30003), json!(30005)].contains(st), "Pat is in 30003 and 30005 only: {tom_row}");
    }
    for c in tom_row["consents"].as_array().expect("consents") {
        let c = c.as_str().unwrap_or("");
        assert!(c.starts_with("30003/") || c.starts_with("30005/"), "{c}: {tom_row}");
    }
    assert!(tom_row["sourceAddress"].is_null(), "staff addresses are not shown to patients: {tom_row}");
    assert!(tom_row["count"].is_null(), "the count was of five patients' data: {tom_row}");
}

/// A refused read that names a patient is in that patient's trail, for their managers and for them.
#[tokio::test]
async fn refused_reads_are_recorded_against_the_patient_named() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    let (s, _) = app.get("/FHIR/R5/Observation?patient=40001", &mark).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get("/api/v1/observations?patientId=40001", &mark).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mary = app.access("manager_mary@example.com").await;
    let (_, b) = app.get("/FHIR/R5/AuditEvent?patient=40001", &mary).await;
    let refused: Vec<String> = events(&b)
        .into_iter()
        .filter(|e| {
            e["agent"][0]["who"]["identifier"]["value"].as_str() == Some(MARK.to_string().as_str())
                && e["outcome"]["code"]["code"] == "4"
        })
        .map(|e| e["code"]["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(refused.contains(&"GET /FHIR/R5/Observation".to_string()), "{refused:?}");
    assert!(refused.contains(&"GET /api/v1/observations".to_string()), "{refused:?}");
    let peter = app.patient_token(&mary, 40001, 2).await;
    let (_, mine) = app.get("/api/v1/patients/40001/audit", &peter).await;
    let seen = mine["results"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["agent"]["userId"] == MARK && r["outcome"] == "refused")
        .count();
    assert_eq!(seen, 2, "Peter sees both attempts: {mine}");
}

/// Forwarding headers from a client are not believed, and links are built on the site URL.
#[tokio::test]
async fn forged_forwarding_and_host_headers_change_nothing() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let resp = app
        .http
        .get(app.url("/FHIR/R5/Observation?patient=40001&_count=1"))
        .bearer_auth(&mary)
        .header("x-forwarded-for", "203.0.113.77, 127.0.0.1")
        .header("x-forwarded-proto", "https")
        .header("host", "evil.example")
        .send()
        .await
        .expect("search");
    assert_eq!(resp.status(), StatusCode::OK);
    let b: Value = resp.json().await.expect("json");
    for l in b["link"].as_array().expect("links") {
        assert!(l["url"].as_str().unwrap_or("").starts_with(&app.base), "{l}");
    }
    for e in b["entry"].as_array().expect("entries") {
        assert!(e["fullUrl"].as_str().unwrap_or("").starts_with(&app.base), "{e}");
    }
    let smart: Value = app
        .http
        .get(app.url("/FHIR/R5/.well-known/smart-configuration"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("smart")
        .json()
        .await
        .expect("json");
    assert_eq!(smart["authorization_endpoint"], format!("{}/o/authorize/", app.base), "{smart}");
    let su = app.access("admin@example.com").await;
    let (_, audit) = app.get("/FHIR/R5/AuditEvent?agent=10002", &su).await;
    let search =
        events(&audit).into_iter().find(|e| e["code"]["text"] == "GET /FHIR/R5/Observation").expect("the search");
    assert_eq!(search["agent"][0]["networkString"], "127.0.0.1", "the peer, not the header: {search}");
}

/// Anonymous callers choose how long a username or client id is; the record keeps a bounded part.
#[tokio::test]
async fn anonymous_callers_cannot_write_huge_audit_records() {
    let app = spawn_app().await;
    // Far more than a record keeps, within the body limit (so that it is read and recorded).
    let huge = "x".repeat(app.state.settings.max_body_bytes / 4);
    let resp = post_login(&app, &huge, "x", "/").await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let (s, _) = app.token(&[("grant_type", "client_credentials"), ("client_id", &huge), ("client_secret", "x")]).await;
    assert!(s.is_client_error(), "{s}");
    let su = app.access("admin@example.com").await;
    let (_, b) = app.get("/FHIR/R5/AuditEvent?date=ge2000-01-01&_count=50", &su).await;
    let all = events(&b);
    let refused = |text: &str| {
        all.iter().find(|e| e["code"]["text"] == text && e["outcome"]["code"]["code"] == "4").cloned().expect(text)
    };
    let (login, token) = (refused("POST /accounts/login/"), refused("POST /o/token/"));
    for e in [&login, &token] {
        let size = e.to_string().len();
        assert!(size < 4096, "a bounded record, {size} bytes: {}", &e.to_string()[..300]);
        assert!(
            e.to_string().contains("bytes]"),
            "what was cut is marked: {}",
            &e.to_string()[..600.min(e.to_string().len())]
        );
    }
}

/// A refresh token used a second time revokes the whole login: the token that replaced it too.
#[tokio::test]
async fn a_refresh_token_used_twice_revokes_its_family() {
    let app = spawn_app().await;
    let tok = app.login("member_megan@example.com").await;
    let first = tok["refresh_token"].as_str().expect("refresh").to_string();
    let refresh = |t: String| {
        let app = &app;
        async move {
            app.token(&[("grant_type", "refresh_token"), ("refresh_token", &t), ("client_id", ADMIN_CLIENT)]).await
        }
    };
    let (s, second) = refresh(first.clone()).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let second = second["refresh_token"].as_str().expect("rotated").to_string();
    let (s, e) = refresh(first).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{e}");
    let (s, e) = refresh(second).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the replacement is revoked too: {e}"
    );
    // A refresh names its client.
    let tok = app.login("member_megan@example.com").await;
    let (s, e) = app
        .token(&[("grant_type", "refresh_token"), ("refresh_token", tok["refresh_token"].as_str().expect("r"))])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
}

/// Logging out ends the session on the server: the cookie is refused afterwards; a GET changes nothing.
#[tokio::test]
async fn logout_ends_the_session_and_cookies_are_flagged() {
    let app = spawn_app().await;
    let authorize = format!(
        "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        urlenc(&format!("{}/auth/callback", app.base)),
        "A".repeat(43)
    );
    let session = app.password_login(&authorize, "manager_mary@example.com", PASSWORD).await.expect("login");
    let code_from = |cookie: String| {
        let app = &app;
        let authorize = authorize.clone();
        async move {
            let resp = app.http.get(app.url(&authorize)).header("cookie", cookie).send().await.expect("authorize");
            location(&resp).is_some_and(|l| l.contains("code="))
        }
    };
    assert!(code_from(session.clone()).await, "the session works");
    let resp = app.http.get(app.url("/accounts/logout/")).header("cookie", session.clone()).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::OK, "a GET only asks");
    assert!(code_from(session.clone()).await, "and changes nothing");
    let resp =
        app.http.post(app.url("/accounts/logout/")).header("cookie", session.clone()).send().await.expect("post");
    assert!(resp.status().is_redirection());
    assert!(!code_from(session).await, "the same cookie is refused after logout");

    // On an https site, the cookies are Secure; always HttpOnly and SameSite=Lax.
    let https = spawn_state(async |mut s| {
        s.site_url = "https://jhe.example.org".into();
        open_server(tempfile::tempdir().expect("dir").keep().as_path(), s).await.state
    })
    .await;
    let resp = https.http.get(https.url("/accounts/login/")).send().await.expect("login page");
    let cookie = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
}

/// Repeated failures slow down: 429 with Retry-After, for the account and the address, then a
/// real user gets in once the wait is over.
#[tokio::test]
async fn repeated_failed_logins_are_slowed_down_not_locked_out() {
    let app = spawn_app().await;
    for _ in 0..6 {
        let resp = post_login(&app, "viewer_victor@example.com", "wrong", "/").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = post_login(&app, "viewer_victor@example.com", PASSWORD, "/").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    let wait: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");
    // The token endpoint too: wrong API-key secrets.
    for _ in 0..6 {
        let (s, _) =
            app.token(&[("grant_type", "client_credentials"), ("client_id", "k1"), ("client_secret", "no")]).await;
        assert!(s.is_client_error());
    }
    let (s, e) = app.token(&[("grant_type", "client_credentials"), ("client_id", "k1"), ("client_secret", "no")]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 200)).await;
    assert!(app.login_with("viewer_victor@example.com", PASSWORD).await.is_ok(), "after the wait, a real user gets in");
}

/// `next` after login is a same-site path, or `/`.
#[tokio::test]
async fn login_redirects_only_to_same_site_paths() {
    let app = spawn_app().await;
    for (next, expected) in [
        ("/\r\nX", "/"),
        ("/\t/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("/organizations/20003", "/organizations/20003"),
    ] {
        let resp = post_login(&app, "member_megan@example.com", PASSWORD, next).await;
        assert!(resp.status().is_redirection(), "{next:?}: {}", resp.status());
        assert_eq!(location(&resp).as_deref(), Some(expected), "{next:?}");
    }
}

/// An API key's token carries only the scopes a key may have.
#[tokio::test]
async fn client_credentials_grant_only_the_scopes_a_key_may_have() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let (s, key) = app.post("/api/v1/practitioner_clients", &mary, json!({"label": "notebook"})).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key["key"].as_str().expect("key")).expect("b64");
    let decoded = String::from_utf8(decoded).expect("utf8");
    let (id, secret) = decoded.split_once(':').expect("client_id:client_secret");
    for (scope, status, granted) in [
        ("openid admin", StatusCode::BAD_REQUEST, None),
        ("patient/*.read", StatusCode::BAD_REQUEST, None),
        ("email", StatusCode::OK, Some("email")),
        ("", StatusCode::OK, Some("openid email")),
    ] {
        let form =
            [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret), ("scope", scope)];
        let (s, t) = app.token(&form).await;
        assert_eq!(s, status, "{scope:?}: {t}");
        match granted {
            Some(g) => assert_eq!(t["scope"], g, "{scope:?}"),
            None => assert_eq!(t["error"], "invalid_scope", "{scope:?}"),
        }
    }
}

/// Mark (Neptune) looks up Peter (Lifespan Lab) and adds him to Neptunian Pulse Lab: the lookup
/// says only that Peter exists, and the organization gets nothing of him (record, consents,
/// invitations, uploads, data) until Peter consents in one of its studies, with his own token.
#[tokio::test]
async fn adding_another_organizations_patient_gives_it_nothing_until_they_consent() {
    let app = spawn_app().await;
    let mark = app.access("manager_mark@example.com").await;
    let mary = app.access("manager_mary@example.com").await;
    let email = "ll_patient_peter@example.com";
    let (s, found) = app.get(&format!("/api/v1/patients/global_lookup?email={email}"), &mark).await;
    assert_eq!((s, found.clone()), (StatusCode::OK, json!([{"id": 40001}])), "only that he exists");
    let (_, full) = app.get(&format!("/api/v1/patients/global_lookup?email={email}"), &mary).await;
    assert!(full[0]["nameFamily"].is_string(), "his own organization reads him whole: {full}");
    let (s, added) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/patients/40001/global_add_organization?organizationId=20007",
            Some(&mark),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{added}");
    assert!(added.get("birthDate").is_none() && added.get("telecomPhone").is_none(), "{added}");
    // Nothing yet: the record, the consents, an invitation (a patient token), an upload, a grant.
    for path in
        ["/api/v1/patients/40001", "/api/v1/patients/40001/consents", "/api/v1/patients/40001/consolidated_clients"]
    {
        assert_eq!(app.get(path, &mark).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    let (s, _) = app.post("/api/v1/invitation", &mark, json!({"patient_id": 40001, "client_id": 2})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an invitation would hand Mark Peter's own token");
    let (s, oo) = app
        .post("/FHIR/R5/Observation", &mark, observation(40001, "omh:heart-rate:2.0", 70001, "2025-05-01T08:00:00Z"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{oo}");
    // Enrolling him is how Neptunian Pulse's study asks; Mark sees that he is enrolled, no more.
    let (s, b) = app.post("/api/v1/studies/30004/scope_requests", &mark, json!({"scopeCodeId": 50002})).await;
    assert!(s.is_success(), "{b}");
    let (s, b) = app.post("/api/v1/studies/30004/patients", &mark, json!({"patientIds": [40001]})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, enrolled) = app.get("/api/v1/studies/30004/patients", &mark).await;
    let peter =
        enrolled["results"].as_array().expect("rows").iter().find(|p| p["id"] == 40001).cloned().expect("Peter");
    assert_eq!(peter, json!({"id": 40001, "pendingConsent": true}));
    let bp = json!({"studyScopeConsents": [{"studyId": 30004, "scopeConsents": [
        {"codingSystem": "https://w3id.org/openmhealth", "codingCode": "omh:blood-pressure:4.0", "consented": true}]}]});
    assert_eq!(app.post("/api/v1/patients/40001/consents", &mark, bp.clone()).await.0, StatusCode::FORBIDDEN);
    let (_, data) = app.get("/FHIR/R5/Observation?patient=40001", &mark).await;
    assert!(data.get("total").is_none_or(|t| t == 0), "{data}");
    // Peter consents, with his own token: Neptunian Pulse Lab is one of his organizations now,
    // and reads his blood pressure through its study.
    let own = app.patient_token(&mary, 40001, 2).await;
    let (s, b) = app.post("/api/v1/patients/40001/consents", &own, bp).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(app.get("/api/v1/patients/40001", &mark).await.0, StatusCode::OK);
    let (_, data) = app.get("/FHIR/R5/Observation?patient=40001&patient._has:Group:member:_id=30004", &mark).await;
    assert!(data["total"].as_u64().is_some_and(|n| n > 0), "{data}");
    for e in data["entry"].as_array().expect("entries") {
        assert_eq!(e["resource"]["code"]["coding"][0]["code"], "omh:blood-pressure:4.0", "only the consented scope");
    }
}

/// An email that has an account (a practitioner's, the superuser's) never becomes a patient that a
/// practitioner could then invite, taking over the account.
#[tokio::test]
async fn a_patient_cannot_be_created_on_someone_elses_account() {
    let app = spawn_app().await;
    let megan = app.access("member_megan@example.com").await;
    for email in ["admin@example.com", "manager_mark@example.com", "ll_patient_peter@example.com"] {
        let (s, b) =
            app.post("/api/v1/patients", &megan, json!({"organizationId": 20003, "telecomEmail": email})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{email}: {b}");
    }
}

/// Behind the CDN: with an origin secret set, a request that did not come through the CDN (sent
/// to the API's own endpoint, past its firewall and logs) is refused, whatever the route.
#[tokio::test]
async fn requests_around_the_cdn_are_refused() {
    const SECRET: &str = "edge-secret-1";
    let mut app = spawn_custom(|s| s.origin_secret = Some(SECRET.into()), Default::default(), jhe::http::app).await;
    // The CDN adds the header to everything it forwards: the login flow goes through it too.
    let mut edge = reqwest::header::HeaderMap::new();
    edge.insert(jhe::http::ORIGIN_SECRET_HEADER, SECRET.parse().expect("header"));
    app.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(edge)
        .build()
        .expect("client");
    let mary = app.access("manager_mary@example.com").await;
    let around = client();
    for (path, token) in [("/health", None), ("/api/v1/studies", Some(mary.as_str())), ("/FHIR/R5/metadata", None)] {
        for (http, extra, want) in [
            (&app.http, None, StatusCode::OK),
            (&around, None, StatusCode::FORBIDDEN),
            (&around, Some("wrong"), StatusCode::FORBIDDEN),
            (&around, Some(&SECRET[..SECRET.len() - 1]), StatusCode::FORBIDDEN),
        ] {
            let mut rb = http.get(app.url(path));
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            if let Some(s) = extra {
                rb = rb.header(jhe::http::ORIGIN_SECRET_HEADER, s);
            }
            let status = rb.send().await.expect("send").status();
            assert_eq!(status, want, "{path} with {extra:?}");
        }
    }
}
