//! Bad input never gets a 5xx and never loses data: what a store key can hold, one body limit on
//! every route in the route's own format, slow clients, a handler's panic, and requests that would
//! make the server walk without end.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const HR: &str = "omh:heart-rate:2.0";

fn with_identifier(mut obs: Value, system: &str, value: &str) -> Value {
    obs["identifier"] = json!([{"system": system, "value": value}]);
    obs
}

#[tokio::test]
async fn identifiers_a_store_key_cannot_hold_are_refused_and_nothing_is_lost() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let long = "x".repeat(512);
    let bad = [
        with_identifier(observation(40001, HR, 70001, "2025-04-01T08:00:00Z"), "https://example.org/x", "a\u{0}b"),
        with_identifier(observation(40001, HR, 70001, "2025-04-01T08:01:00Z"), &long, &long),
    ];
    for obs in &bad {
        let (s, oo) = app.post("/FHIR/R5/Observation", &peter, obs.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{oo}");
        assert!(oo["issue"][0]["diagnostics"].as_str().unwrap_or("").contains("identifier"), "{oo}");
    }
    // In a batch the bad entry is refused and the good one beside it is stored.
    let good = observation(40001, HR, 70001, "2025-04-01T08:02:00Z");
    let (s, resp) = app.post("/FHIR/R5/", &peter, batch(vec![bad[0].clone(), good, bad[1].clone()])).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let statuses: Vec<&str> = resp["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["400 Bad Request", "201 Created", "400 Bad Request"], "{resp}");
    // Patients' identifiers too, on create and on change.
    for ident in
        [json!({"system": "https://example.org/x", "value": "a\u{0}b"}), json!({"system": long, "value": long})]
    {
        let (s, b) = app
            .post(
                "/api/v1/patients",
                &mary,
                json!({"organizationId": 20003, "telecomEmail": "nul@example.com", "identifiers": [ident]}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["detail"].as_str().unwrap_or("").contains("identifier"), "{b}");
        let (s, b) =
            app.patch("/api/v1/patients/40001?organizationId=20003", &mary, json!({"identifiers": [ident]})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    }
    // The archive replays whole: nothing to set aside.
    let report = jhe::domain::ingest::reindex(&app.state.repo, &*app.state.blobs).await.expect("reindex");
    assert_eq!(report.quarantined, 0, "{:?}", report.reasons);
    assert!(report.already_present >= 1, "{report:?}");
}

/// Sends `body` to `path` as `content_type`, with a `Content-Length` or (`chunked`) without one.
async fn post_bytes(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
    chunked: bool,
) -> (u16, Value) {
    if chunked {
        return post_chunked(app, path, token, content_type, &body).await;
    }
    let mut req = app.http.post(app.url(path)).header("content-type", content_type);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let resp = req.body(body).send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The same over a raw connection in chunked transfer encoding: the server learns the size only
/// by reading. Writing stops when the server answers (and stops reading).
async fn post_chunked(app: &TestApp, path: &str, token: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let addr = app.base.trim_start_matches("http://");
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.expect("write head");
    let (mut rd, mut wr) = c.into_split();
    let chunks: Vec<Vec<u8>> = body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let writer = tokio::spawn(async move {
        for chunk in chunks {
            let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
            if wr.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let answer = loop {
        let n = match tokio::time::timeout(Duration::from_secs(20), rd.read(&mut buf)).await.expect("answered") {
            Ok(n) => n,
            Err(e) => panic!("read: {e} after {} bytes", got.len()),
        };
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok());
            if n == 0 || len.is_some_and(|l| body.len() >= l) {
                break (head.to_string(), body.to_string());
            }
        } else if n == 0 {
            panic!("{path}: closed without an answer: {text}");
        }
    };
    writer.abort();
    let status = answer.0.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    (status, serde_json::from_str(&answer.1).unwrap_or(Value::String(answer.1)))
}

#[tokio::test]
async fn one_body_limit_on_every_route_answered_in_its_format() {
    let default_limit = jhe::config::Settings::from_env("http://x").max_body_bytes;
    assert_eq!(default_limit, 10 * 1024 * 1024, "the documented default");
    let app = spawn_custom(|s| s.max_body_bytes = default_limit, Default::default(), jhe::http::app).await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    // A batch of 1,000 observations (more than the framework's 2 MiB default) fits.
    let many: Vec<Value> = (0..1000)
        .map(|i| {
            let at = format!("2025-05-01T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60);
            let mut o = observation(40001, HR, 70001, &at);
            o["note"] = json!([{"text": "x".repeat(2500)}]);
            o
        })
        .collect();
    let bundle = batch(many).to_string().into_bytes();
    assert!(bundle.len() > 2 * 1024 * 1024, "{} bytes", bundle.len());
    let (s, resp) = post_bytes(&app, "/FHIR/R5/", &peter, "application/fhir+json", bundle, false).await;
    assert_eq!(s, 200, "{resp}");
    let created =
        resp["entry"].as_array().expect("entries").iter().filter(|e| e["response"]["status"] == "201 Created");
    assert_eq!(created.count(), 1000);
    // Past the limit, declared or not: 413 in each route's own format.
    let over = vec![b' '; default_limit + 1];
    for chunked in [false, true] {
        for path in ["/FHIR/R5/", "/FHIR/R5/Observation", "/FHIR/R5/Observation/_search"] {
            let (s, oo) = post_bytes(&app, path, &peter, "application/fhir+json", over.clone(), chunked).await;
            assert_eq!(s, 413, "{path} chunked={chunked}: {oo}");
            assert_eq!(oo["resourceType"], "OperationOutcome", "{path}: {oo}");
        }
        let (s, b) = post_bytes(&app, "/api/v1/studies", &mary, "application/json", over.clone(), chunked).await;
        assert_eq!((s, b["detail"].is_string()), (413, true), "{b}");
        let (s, b) =
            post_bytes(&app, "/o/token/", "", "application/x-www-form-urlencoded", over.clone(), chunked).await;
        assert_eq!((s, b["error"].as_str()), (413, Some("invalid_request")), "{b}");
    }
}

/// Opens a connection and sends `head` (and nothing more).
async fn half_sent(addr: &str, head: &str) -> tokio::net::TcpStream {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(head.as_bytes()).await.expect("write");
    c
}

/// What the server sends on `c` until it closes it (or `within` passes: then `None`).
async fn until_closed(mut c: tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    match tokio::time::timeout(within, c.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_clients_cannot_hold_the_server() {
    let limits = jhe::http::serve::Limits { max_connections: 4, header_read_timeout: Duration::from_millis(500) };
    let app = spawn_custom(|s| s.body_read_timeout = Duration::from_millis(500), limits, jhe::http::app).await;
    let mary = app.access("manager_mary@example.com").await;
    let peter = app.patient_token(&mary, 40001, 2).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Every slot taken by clients that never finish their headers.
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(half_sent(&addr, "GET /health HTTP/1.1\r\nHost: x\r\n").await);
    }
    // Another client is still answered: the slow ones are closed at the header deadline.
    let resp = tokio::time::timeout(Duration::from_secs(10), app.http.get(app.url("/health")).send())
        .await
        .expect("answered while slow clients are connected")
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    for c in slow {
        assert!(until_closed(c, Duration::from_secs(10)).await.is_some(), "a slow client's connection was closed");
    }
    // A body that stops half-way is answered 408, in the route's format.
    let c = half_sent(
        &addr,
        &format!(
            "POST /FHIR/R5/Observation HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {peter}\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{{\"resourceType\""
        ),
    )
    .await;
    let answer = until_closed(c, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("OperationOutcome"), "{answer}");
    let c = half_sent(
        &addr,
        "POST /o/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await;
    let answer = until_closed(c, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
}

#[tokio::test]
async fn a_panicking_handler_is_answered_500_and_recorded() {
    async fn boom() -> &'static str {
        panic!("a handler bug")
    }
    let routes = axum::Router::new()
        .route("/api/v1/observations", axum::routing::get(boom))
        .route("/FHIR/R5/Observation", axum::routing::get(boom));
    let app = spawn_custom(|_| {}, Default::default(), move |state| jhe::http::serve_group(routes, state)).await;
    let (s, b) = app.get("/api/v1/observations", "").await;
    assert_eq!((s, b["detail"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("A server error occurred.")), "{b}");
    let (s, oo) = app.get("/FHIR/R5/Observation?patient=40001", "").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{oo}");
    assert_eq!(
        (oo["resourceType"].as_str(), oo["issue"][0]["code"].as_str()),
        (Some("OperationOutcome"), Some("exception"))
    );
    assert!(!oo.to_string().contains("a handler bug"), "the cause is not sent: {oo}");
    // Both are in the audit trail, as failures.
    let (recs, _) =
        app.state.audit.query(&jhe::ports::AuditQuery { limit: 100, ..Default::default() }).await.expect("audit");
    let failed: Vec<(&str, u16)> = recs.iter().filter(|r| !r.allowed).map(|r| (r.path.as_str(), r.status)).collect();
    assert!(failed.contains(&("/api/v1/observations", 500)), "{failed:?}");
    assert!(failed.contains(&("/FHIR/R5/Observation", 500)), "{failed:?}");
    // The server goes on serving.
    let (s, _) = app.get("/api/v1/observations", "").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_page_past_the_end_is_refused_without_overflow() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    for page in ["100000000000000000", "18446744073709551615", "99999999999999999999999", "0", "abc", "-1", "3"] {
        let (s, b) = app.get(&format!("/api/v1/observations?page={page}&pageSize=1000"), &mary).await;
        assert_eq!((s, b["detail"].as_str()), (StatusCode::NOT_FOUND, Some("Invalid page.")), "page={page}: {b}");
    }
    let (s, b) = app.get("/api/v1/observations?page=1&pageSize=1000", &mary).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// An audit log that counts the records it reads.
struct Counting(std::sync::Arc<dyn jhe::ports::AuditLog>, std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl jhe::ports::AuditLog for Counting {
    async fn append(&self, r: &jhe::domain::audit::AuditRecord) -> Result<(), String> {
        self.0.append(r).await
    }
    async fn query(
        &self,
        q: &jhe::ports::AuditQuery,
    ) -> Result<(Vec<jhe::domain::audit::AuditRecord>, Option<String>), String> {
        let out = self.0.query(q).await?;
        self.1.fetch_add(out.0.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(out)
    }
}

#[tokio::test]
async fn an_audit_search_reads_a_bounded_number_of_records_and_pages_on() {
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = read.clone();
    let app = spawn_custom(
        |_| {},
        Default::default(),
        move |mut state| {
            state.audit = std::sync::Arc::new(Counting(state.audit.clone(), counter));
            jhe::http::app(state)
        },
    )
    .await;
    let admin = app.access("admin@example.com").await;
    // Many reads of Patient/40001 and, oldest of all, three deletions.
    let base = 1_700_000_000_000i64;
    let n = jhe::domain::audit::AUDIT_SCAN_BUDGET + 1500;
    for i in 0..n + 3 {
        let recorded = base + (n + 3 - i) as i64;
        let rec = jhe::domain::audit::AuditRecord {
            id: format!("{recorded:013}{i:08}"),
            recorded,
            action: "patient.read".into(),
            fhir_action: if i >= n { "D".into() } else { "R".into() },
            allowed: true,
            status: 200,
            method: "GET".into(),
            path: "/api/v1/patients/40001".into(),
            patients: vec![40001],
            ..Default::default()
        };
        app.state.audit.append(&rec).await.expect("append");
    }
    let mut url = app.url("/FHIR/R5/AuditEvent?patient=40001&action=D&_count=1000");
    let (mut found, mut requests) = (0, 0);
    loop {
        read.store(0, std::sync::atomic::Ordering::SeqCst);
        let resp = app.http.get(&url).bearer_auth(&admin).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::OK);
        let b: Value = resp.json().await.expect("json");
        let scanned = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(scanned <= jhe::domain::audit::AUDIT_SCAN_BUDGET, "one search read {scanned} records");
        found += b["entry"].as_array().map_or(0, Vec::len);
        requests += 1;
        assert!(requests < 10, "paging ends");
        match b["link"].as_array().and_then(|l| l.iter().find(|l| l["relation"] == "next")) {
            Some(next) => url = next["url"].as_str().expect("url").to_string(),
            None => break,
        }
    }
    assert_eq!(found, 3, "every matching record is reached by paging on");
    assert!(requests >= 2, "the scan was cut and resumed ({requests} requests)");
}

#[tokio::test]
async fn unknown_fhir_paths_answer_an_operation_outcome() {
    // Found by the FHIR fuzz: `/FHIR/R5/..` (a client normalizes it to `/FHIR/`) answered `{"detail"}`.
    let app = spawn_app().await;
    // And the R4 import's: an OperationOutcome, as its routes answer (found by Schemathesis: its
    // errors were FHIR while its schema said JSON), not the web UI.
    for path in
        ["/FHIR/", "/FHIR/R4/Observation", "/FHIR/R5/Observation/1/_history", "/fhir-import/R5", "/fhir-import/"]
    {
        let (s, oo) = app.get(path, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{path}: {oo}");
    }
    let (s, b) = app.get("/api/v2/nothing", "").await;
    assert_eq!((s, b["detail"].as_str()), (StatusCode::NOT_FOUND, Some("Not found.")));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/api/schema/")).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/vnd.oai.openapi+json");
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.base.as_str());
    let mut described: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            described.push((method.to_uppercase(), path.clone()));
        }
    }
    described.sort();
    let mut routes: Vec<(String, String)> =
        jhe::http::routes::list().into_iter().map(|(_, m, p)| (m, p.to_string())).collect();
    routes.sort();
    assert_eq!(described, routes);
    // Each answers at least its success and, where a token is needed, 401.
    let token = &doc["paths"]["/api/v1/studies"]["get"];
    assert!(token["responses"]["200"].is_object() && token["responses"]["401"].is_object(), "{token}");
}
