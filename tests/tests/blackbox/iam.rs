//! What each Lambda function asks of AWS on a working day, recorded for the policy check.
//!
//! Every function binary runs under the Runtime API emulator (`lambda::Function`) with its AWS
//! endpoint pointed at a recording proxy in front of moto (one proxy per function), and is handed
//! a day's requests as API Gateway events: a manager registers a patient and invites them, the
//! patient's app signs in, consents and uploads, researchers read, studies and organizations are
//! set up and torn down, API keys are made and used, accounts are deleted. Every call a function
//! makes (DynamoDB, S3, Cognito: the raw request, keys included) lands in
//! `<JHE_IAM_CALLS_DIR>/<group>.jsonl`. `tests/harness/iam_check.py` (run by the test command) then
//! evaluates each call against that function's IAM policy in `infra/template.yaml`: moto does not
//! evaluate IAM, so this is where a call the deployed policy would refuse is caught.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use base64::Engine;
use serde_json::{Value, json};

use crate::aws::moto;
use crate::cognito::pool_app;
use crate::common::observation;
use crate::lambda::{Function, cloud_env};

/// Where the calls are written: `JHE_IAM_CALLS_DIR`, or a folder under the system's temp folder.
fn calls_dir() -> PathBuf {
    std::env::var("JHE_IAM_CALLS_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir().join("jhe-iam-calls"))
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    log: Arc<Mutex<std::fs::File>>,
}

/// Forwards a request to moto unchanged and writes it down.
async fn forward(State(p): State<Proxy>, req: axum::extract::Request) -> axum::response::Response {
    use axum::http::header;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 256 << 20).await.expect("request body");
    let target = parts.uri.path_and_query().map_or("/", |x| x.as_str());
    let mut rb = p.http.request(parts.method.clone(), format!("{}{target}", p.upstream));
    for (k, v) in &parts.headers {
        if ![header::HOST, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION].contains(k) {
            rb = rb.header(k, v);
        }
    }
    let resp = rb.body(bytes.clone()).send().await.expect("moto answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let out = resp.bytes().await.expect("moto body");
    // JSON protocols (DynamoDB, Cognito) keep their body; object bodies only their size.
    let json_protocol = parts.headers.contains_key("x-amz-target");
    let kept: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k == "x-amz-target" || k == "content-type" || k.starts_with("x-amz-object-lock") || k == "x-amz-copy-source"
        })
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let line = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "headers": kept,
        "body": if json_protocol { String::from_utf8_lossy(&bytes).into_owned() } else { String::new() },
        "body_len": bytes.len(),
        "status": status.as_u16(),
    });
    {
        let mut f = p.log.lock().expect("log");
        writeln!(f, "{line}").expect("write call");
    }
    let mut r = axum::response::Response::new(axum::body::Body::from(out));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if ![header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION].contains(k) {
            r.headers_mut().append(k, v.clone());
        }
    }
    r
}

/// A recording proxy in front of `upstream`, writing to `log` (after a header line `header`).
async fn recording_proxy(upstream: &str, log: PathBuf, header: &Value) -> String {
    let mut f = std::fs::File::create(&log).expect("create call log");
    writeln!(f, "{header}").expect("write header");
    let p = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        http: reqwest::Client::new(),
        log: Arc::new(Mutex::new(f)),
    };
    let app = axum::Router::new().fallback(forward).with_state(p);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy") });
    format!("http://{addr}")
}

/// An API Gateway (HTTP API, payload 2.0) event for a request.
fn event(method: &str, target: &str, token: Option<&str>, body: Option<(&str, String)>) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = json!({
        "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "user-agent": "jhe-iam-scenario",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "accept": "application/json",
    });
    if let Some(t) = token {
        headers["authorization"] = json!(format!("Bearer {t}"));
    }
    let mut params = serde_json::Map::new();
    for (k, v) in url_pairs(query) {
        params.insert(k, json!(v));
    }
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "jhe-iam-scenario"},
            "requestId": format!("iam-{}", jhe::auth::crypto::random_alnum(8)),
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1_796_385_600_000u64,
        },
        "isBase64Encoded": false,
    });
    if !params.is_empty() {
        e["queryStringParameters"] = Value::Object(params);
    }
    if let Some((ctype, b)) = body {
        e["headers"]["content-type"] = json!(ctype);
        e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
        e["isBase64Encoded"] = json!(true);
    }
    e
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// An answer's status and JSON body.
fn answer(a: &Value) -> (u16, Value) {
    let status = a["statusCode"].as_u64().unwrap_or_else(|| panic!("not an API Gateway answer: {a}")) as u16;
    let text = match (a["body"].as_str(), a["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => {
            String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(b).expect("base64")).into_owned()
        }
        (Some(b), _) => b.to_string(),
        (None, _) => String::new(),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The functions of one deployment, each behind its own recording proxy.
struct Deployment {
    functions: std::collections::BTreeMap<String, Function>,
    log: Vec<String>,
}

impl Deployment {
    /// Sends a request to the function of `group`; checks the status is `want`.
    async fn call(
        &mut self,
        group: &str,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.send(group, event(method, target, token, body), want).await
    }

    async fn send(&mut self, group: &str, e: Value, want: u16) -> Value {
        let what = format!("{group}: {} {}", e["requestContext"]["http"]["method"], e["rawPath"]);
        let f = self.functions.get_mut(group).unwrap_or_else(|| panic!("no function {group}"));
        let (status, body) = answer(&f.call(e).await);
        assert_eq!(status, want, "{what}: {body}");
        self.log.push(format!("{what} -> {status}"));
        body
    }
}

#[tokio::test]
async fn each_functions_aws_calls_are_recorded_over_a_working_day() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let (env, _s3, audit_bucket) = cloud_env(&url, &p).await;
    let dir = calls_dir();
    std::fs::create_dir_all(&dir).expect("calls folder");
    let header = json!({"env": {
        "JHE_TABLE": p.name, "JHE_BUNDLE_BUCKET": p.name, "JHE_AUDIT_BUCKET": audit_bucket,
        "JHE_USER_POOL_ID": p.pool.user_pool_id,
    }});
    let mut functions = std::collections::BTreeMap::new();
    for (group, _) in jhe::http::route_groups() {
        let proxy = recording_proxy(&url, dir.join(format!("{group}.jsonl")), &header).await;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| if k == "AWS_ENDPOINT_URL" { (k.clone(), proxy.clone()) } else { (k.clone(), v.clone()) })
            .collect();
        functions.insert(group.to_string(), Function::start(group, &env).await);
    }
    let mut d = Deployment { functions, log: Vec::new() };
    let admin = p.practitioner("admin@example.com").await;
    let mary = p.practitioner("manager_mary@example.com").await;
    let u = jhe::auth::crypto::random_alnum(6).to_lowercase();

    d.call("discovery", "GET", "/health", None, None, 200).await;
    d.call("discovery", "GET", "/api/schema/", None, None, 200).await;
    // With a user pool, discovery is the pool's.
    d.call("auth", "GET", "/o/.well-known/openid-configuration", None, None, 307).await;
    d.call("auth", "GET", "/o/userinfo/", Some(&mary), None, 200).await;

    // A manager registers a patient, changes them, invites an existing one.
    let new_patient = d
        .call(
            "admin-patients",
            "POST",
            "/api/v1/patients",
            Some(&mary),
            Some(json!({"organizationId": 20003, "telecomEmail": format!("iam-{u}@example.com"), "nameFamily": "Iam",
                "nameGiven": "Pat", "birthDate": "1990-01-01", "identifiers": [{"system": "https://example.org/mrn", "value": format!("iam-{u}")}]})),
            201,
        )
        .await;
    let np = new_patient["id"].as_i64().expect("patient id");
    d.call(
        "admin-patients",
        "PATCH",
        &format!("/api/v1/patients/{np}?organizationId=20003"),
        Some(&mary),
        Some(json!({"nameGiven": "Pam"})),
        200,
    )
    .await;
    d.call("admin-patients", "GET", "/api/v1/patients?organizationId=20003", Some(&mary), None, 200).await;
    let inv = d
        .call(
            "admin-patients",
            "POST",
            "/api/v1/invitation",
            Some(&mary),
            Some(json!({"patientId": 40001, "clientId": 2})),
            201,
        )
        .await;
    let invitation = inv["token"].as_str().expect("invitation token").to_string();
    d.call("admin-patients", "GET", "/api/v1/invitation", Some(&mary), None, 200).await;

    // The patient's app redeems it and signs in; the patient looks at and changes their consents.
    let grant = d.call("admin-patients", "POST", &format!("/api/v1/invitation/{invitation}"), None, None, 200).await;
    let g = &grant["grant"];
    let form = [
        ("grant_type", g["grant_type"].as_str().expect("grant_type")),
        ("code", g["code"].as_str().expect("code")),
        ("redirect_uri", g["redirect_uri"].as_str().expect("redirect_uri")),
        ("client_id", g["client_id"].as_str().expect("client_id")),
        ("code_verifier", &jhe::auth::crypto::b64url(invitation.as_bytes())),
    ];
    let form = serde_urlencoded::to_string(form).expect("form");
    let tok =
        d.send("auth", event("POST", "/o/token/", None, Some(("application/x-www-form-urlencoded", form))), 200).await;
    let peter = tok["access_token"].as_str().expect("patient token").to_string();
    let refresh = tok["refresh_token"].as_str().expect("refresh token").to_string();
    let form = serde_urlencoded::to_string([("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .expect("form");
    d.send("auth", event("POST", "/o/token/", None, Some(("application/x-www-form-urlencoded", form))), 200).await;
    d.call("admin-patients", "GET", "/api/v1/patients/me", Some(&peter), None, 200).await;
    let consents = d.call("admin-patients", "GET", "/api/v1/patients/40001/consents", Some(&peter), None, 200).await;
    let study = &consents["studies"][0];
    let (sid, code) = (study["id"].as_i64().expect("study"), &study["scopeConsents"][0]["code"]);
    let decision = |consented: bool| {
        json!({"studyScopeConsents": [{"studyId": sid, "scopeConsents": [{
            "codingSystem": code["codingSystem"], "codingCode": code["codingCode"], "consented": consented}]}]})
    };
    d.call("admin-patients", "PATCH", "/api/v1/patients/40001/consents", Some(&peter), Some(decision(true)), 200).await;
    d.call("admin-patients", "GET", "/api/v1/patients/40001/audit", Some(&peter), None, 200).await;

    // The app uploads: one observation, then a batch.
    let hr = "omh:heart-rate:2.0";
    let one = observation(40001, hr, 70001, "2026-12-01T08:00:00Z");
    d.send(
        "fhir-ingest",
        event("POST", "/FHIR/R5/Observation", Some(&peter), Some(("application/fhir+json", one.to_string()))),
        201,
    )
    .await;
    let bundle = crate::common::batch(vec![
        observation(40001, hr, 70001, "2026-12-01T09:00:00Z"),
        observation(40001, hr, 70001, "2026-12-01T10:00:00Z"),
    ]);
    let b = d
        .send(
            "fhir-ingest",
            event("POST", "/FHIR/R5/", Some(&peter), Some(("application/fhir+json", bundle.to_string()))),
            200,
        )
        .await;
    assert!(b["entry"].as_array().is_some_and(|e| e.iter().all(|x| x["response"]["status"] == "201 Created")), "{b}");

    // Researchers read.
    d.call("fhir-read", "GET", "/FHIR/R5/Observation?patient=40001&_count=10", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/Patient?_count=10", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/Patient/40001", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/api/v1/observations?patientId=40001", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/AuditEvent?patient=40001", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/AuditEvent?date=ge2026-01-01", Some(&admin), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/metadata", None, None, 200).await;

    // Peter's FHIR source and what it sends: a QuestionnaireResponse (sent twice: refreshed), a
    // large one (its body in S3), changed, read under the study's scope, deleted; then the source.
    let src_body = json!({"label": format!("IAM {u}"), "fhirBaseUrl": format!("https://iam{u}.example/fhir"), "dataSource": 70005});
    let src = d.call("admin-patients", "POST", "/api/v1/fhir_sources", Some(&peter), Some(src_body), 201).await;
    let sid = src["id"].as_i64().expect("source id");
    d.call("admin-patients", "GET", "/api/v1/fhir_sources", Some(&peter), None, 200).await;
    let qr = |id: &str, text_len: usize| {
        json!({"resourceType": "QuestionnaireResponse", "id": id, "status": "completed", "questionnaire": "Questionnaire/q",
               "meta": {"source": format!("https://jupyterhealth.org/fhir/fhir-source/{sid}")}, "authored": "2026-12-01",
               "item": [{"linkId": "n", "text": "x".repeat(text_len)}]})
    };
    let mut stored_ids = Vec::new();
    for (id, len) in [("iam-1", 10), ("iam-1", 20), ("iam-2", 350_000)] {
        let body = Some(("application/fhir+json", qr(id, len).to_string()));
        let r = d.send("fhir-ingest", event("POST", "/FHIR/R5/QuestionnaireResponse", Some(&peter), body), 201).await;
        stored_ids.push(r["id"].as_str().expect("id").to_string());
    }
    assert_eq!(stored_ids[0], stored_ids[1], "the same upstream record");
    let big = format!("/FHIR/R5/QuestionnaireResponse/{}", stored_ids[2]);
    d.call("fhir-ingest", "PATCH", &big, Some(&peter), Some(json!({"status": "amended"})), 200).await;
    let read = d.call("fhir-read", "GET", &big, Some(&mary), None, 200).await;
    assert_eq!(
        (read["status"].as_str(), read["item"][0]["text"].as_str().map(str::len)),
        (Some("amended"), Some(350_000))
    );
    d.call("fhir-read", "GET", "/FHIR/R5/QuestionnaireResponse?patient=40001", Some(&mary), None, 200).await;
    d.call("fhir-read", "GET", "/FHIR/R5/Consent?patient=40001", Some(&mary), None, 200).await;
    let small = format!("/FHIR/R5/QuestionnaireResponse/{}", stored_ids[0]);
    d.call("fhir-ingest", "DELETE", &small, Some(&peter), None, 204).await;
    d.call("admin-patients", "DELETE", &format!("/api/v1/fhir_sources/{sid}"), Some(&peter), None, 204).await;
    d.call("fhir-read", "GET", &big, Some(&mary), None, 404).await;

    // A study set up, given a scope, an app, a data source and a patient, then taken down.
    let st = d
        .call(
            "admin-studies",
            "POST",
            "/api/v1/studies",
            Some(&mary),
            Some(json!({"organization": 20003, "name": format!("IAM {u}"), "description": "d"})),
            201,
        )
        .await;
    let st = st["id"].as_i64().expect("study id");
    let scopes = d.call("admin-catalog", "GET", "/api/v1/data_sources/all_scopes", Some(&mary), None, 200).await;
    let scope =
        scopes.as_array().and_then(|a| a.iter().find(|c| c["codingCode"] == hr)).expect("heart rate scope")["id"]
            .clone();
    let sub = |what: &str| format!("/api/v1/studies/{st}/{what}");
    d.call("admin-studies", "POST", &sub("scope_requests"), Some(&mary), Some(json!({"scopeCodeId": scope})), 201)
        .await;
    d.call("admin-studies", "POST", &sub("data_sources"), Some(&mary), Some(json!({"dataSourceId": 70001})), 201).await;
    d.call("admin-studies", "POST", &sub("clients"), Some(&mary), Some(json!({"clientId": 2})), 201).await;
    d.call("admin-studies", "POST", &sub("patients"), Some(&mary), Some(json!({"patientIds": [40001]})), 201).await;
    d.call("admin-studies", "GET", &sub("patients"), Some(&mary), None, 200).await;
    d.call(
        "admin-studies",
        "PATCH",
        &format!("/api/v1/studies/{st}"),
        Some(&mary),
        Some(json!({"description": "changed"})),
        200,
    )
    .await;
    d.call("admin-studies", "DELETE", &sub("patients"), Some(&mary), Some(json!({"patientIds": [40001]})), 204).await;
    d.call("admin-studies", "DELETE", &sub("clients"), Some(&mary), Some(json!({"clientId": 2})), 204).await;
    d.call("admin-studies", "DELETE", &sub("data_sources"), Some(&mary), Some(json!({"dataSourceId": 70001})), 204)
        .await;
    d.call("admin-studies", "DELETE", &sub("scope_requests"), Some(&mary), Some(json!({"scopeCodeId": scope})), 204)
        .await;
    d.call("admin-studies", "DELETE", &format!("/api/v1/studies/{st}"), Some(&mary), None, 204).await;

    // An organization with a new practitioner in it, then both removed.
    let org = d
        .call(
            "admin-orgs",
            "POST",
            "/api/v1/organizations",
            Some(&admin),
            Some(json!({"name": format!("IAM lab {u}"), "type": "laboratory", "partOf": 20003})),
            201,
        )
        .await;
    let org = org["id"].as_i64().expect("org id");
    let pr = d
        .call("admin-orgs", "POST", "/api/v1/practitioners", Some(&admin), Some(json!({"telecomEmail": format!("iam-dr-{u}@example.com"), "organizationId": 20003, "nameFamily": "Doc"})), 201)
        .await;
    let (pid, puser) = (pr["id"].as_i64().expect("practitioner id"), pr["jheUserId"].as_i64().expect("user id"));
    d.call(
        "admin-orgs",
        "POST",
        &format!("/api/v1/organizations/{org}/user"),
        Some(&admin),
        Some(json!({"jheUserId": puser, "organizationPartitionerRole": "member"})),
        201,
    )
    .await;
    d.call("admin-orgs", "GET", &format!("/api/v1/organizations/{org}/users"), Some(&admin), None, 200).await;
    d.call(
        "admin-orgs",
        "DELETE",
        &format!("/api/v1/organizations/{org}/remove_user"),
        Some(&admin),
        Some(json!({"jheUserId": puser})),
        204,
    )
    .await;
    d.call(
        "admin-orgs",
        "PATCH",
        &format!("/api/v1/practitioners/{pid}"),
        Some(&admin),
        Some(json!({"nameGiven": "Dee"})),
        200,
    )
    .await;
    d.call("admin-orgs", "DELETE", &format!("/api/v1/practitioners/{pid}"), Some(&admin), None, 204).await;
    d.call("admin-orgs", "DELETE", &format!("/api/v1/organizations/{org}"), Some(&admin), None, 204).await;
    d.call("admin-orgs", "GET", "/api/v1/users/profile", Some(&mary), None, 200).await;

    // The catalogue: a data source with a scope, an app, an API key used and revoked.
    let ds = d
        .call(
            "admin-catalog",
            "POST",
            "/api/v1/data_sources",
            Some(&admin),
            Some(json!({"name": format!("IAM cuff {u}"), "type": "personal_device"})),
            201,
        )
        .await;
    let ds = ds["id"].as_i64().expect("data source id");
    d.call(
        "admin-catalog",
        "POST",
        &format!("/api/v1/data_sources/{ds}/supported_scopes"),
        Some(&admin),
        Some(json!({"scopeCodeId": scope})),
        201,
    )
    .await;
    d.call(
        "admin-catalog",
        "DELETE",
        &format!("/api/v1/data_sources/{ds}/supported_scopes"),
        Some(&admin),
        Some(json!({"scopeCodeId": scope})),
        204,
    )
    .await;
    d.call("admin-catalog", "DELETE", &format!("/api/v1/data_sources/{ds}"), Some(&admin), None, 204).await;
    let app = d
        .call("admin-catalog", "POST", "/api/v1/clients", Some(&admin), Some(json!({"name": format!("IAM app {u}"), "clientId": format!("iam-app-{u}"), "invitationUrl": "https://app.example.org/invite?code=CODE"})), 201)
        .await;
    let app = app["id"].as_i64().expect("client id");
    d.call(
        "admin-catalog",
        "POST",
        &format!("/api/v1/clients/{app}/data_sources"),
        Some(&admin),
        Some(json!({"dataSourceId": 70001})),
        201,
    )
    .await;
    d.call("admin-catalog", "DELETE", &format!("/api/v1/clients/{app}"), Some(&admin), None, 204).await;
    let key = d
        .call(
            "admin-catalog",
            "POST",
            "/api/v1/practitioner_clients",
            Some(&mary),
            Some(json!({"label": "notebook"})),
            201,
        )
        .await;
    let (kid, basic) = (key["id"].as_i64().expect("key id"), key["key"].as_str().expect("key").to_string());
    let mut cc = event(
        "POST",
        "/o/token/",
        None,
        Some(("application/x-www-form-urlencoded", "grant_type=client_credentials".into())),
    );
    cc["headers"]["authorization"] = json!(format!("Basic {basic}"));
    let kt = d.send("auth", cc.clone(), 200).await;
    // A wrong secret: refused, and counted against the key.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{}:wrong-secret", kid));
    cc["headers"]["authorization"] = json!(format!("Basic {wrong}"));
    d.send("auth", cc, 401).await;
    d.call(
        "fhir-read",
        "GET",
        "/FHIR/R5/Observation?patient=40001",
        Some(kt["access_token"].as_str().expect("key token")),
        None,
        200,
    )
    .await;
    d.call("admin-catalog", "DELETE", &format!("/api/v1/practitioner_clients/{kid}"), Some(&mary), None, 204).await;

    // The new patient is deleted with their account; the patient withdraws the consent given.
    d.call("admin-patients", "DELETE", &format!("/api/v1/patients/{np}?organizationId=20003"), Some(&mary), None, 204)
        .await;
    d.call("admin-patients", "PATCH", "/api/v1/patients/40001/consents", Some(&peter), Some(decision(false)), 200)
        .await;

    println!("{} requests; calls recorded in {}", d.log.len(), dir.display());
    for (group, _) in jhe::http::route_groups() {
        let lines = std::fs::read_to_string(dir.join(format!("{group}.jsonl"))).expect("call log").lines().count() - 1;
        println!("  {group}: {lines} AWS calls");
        if group != "discovery" {
            assert!(lines > 0, "{group} made no AWS call: is its endpoint the proxy?");
        }
    }
}
