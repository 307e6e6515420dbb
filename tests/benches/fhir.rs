//! Benchmark (not a test): ingest through batch Bundles of 100, and reading one patient's page
//! of 1000 blood-glucose observations with 100,000 stored, newest first, at the start and deep
//! into the cursor chain. Run: `cargo bench -p jhe-tests --bench fhir` (env BENCH_N to change
//! the number stored; BENCH_AUDIT=off replaces the audit trail with a no-op, to measure what
//! auditing costs). Prints the figures and writes `target/bench-fhir[-noaudit].json`.

use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};

fn at(i: usize) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::minutes(5 * i as i64);
    t.format(&time::format_description::well_known::Rfc3339).expect("fmt")
}

fn obs(i: usize) -> Value {
    let uuid = format!("00000000-0000-4000-8000-{i:012}");
    let dp = jhe::omh::example("omh:blood-glucose:4.0", &uuid, &at(i)).expect("example");
    json!({
        "resourceType": "Observation",
        "identifier": [{"system": "https://bench.example", "value": format!("bg-{i}")}],
        "status": "final",
        "code": {"coding": [{"system": "https://w3id.org/openmhealth", "code": "omh:blood-glucose:4.0"}]},
        "subject": {"reference": "Patient/40005"},
        "device": {"reference": "Device/70002"},
        "valueAttachment": {"contentType": "application/json", "data": base64::engine::general_purpose::STANDARD.encode(dp.to_string())},
    })
}

/// An audit trail that records nothing (only to measure the cost of the real one).
struct NoAudit;

#[async_trait::async_trait]
impl jhe::ports::AuditLog for NoAudit {
    async fn append(&self, _: &jhe::domain::audit::AuditRecord) -> Result<(), String> {
        Ok(())
    }
    async fn query(
        &self,
        _: &jhe::ports::AuditQuery,
    ) -> Result<(Vec<jhe::domain::audit::AuditRecord>, Option<String>), String> {
        Ok((vec![], None))
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let settings = jhe::config::Settings {
        site_url: base.clone(),
        invitation_expiration_days: 7,
        invitation_redemption_window_hours: 12,
        max_body_bytes: 10 << 20,
        max_page_bytes: 4_000_000,
        admin_client_id: "jhe-admin-ui".into(),
        access_token_ttl: 36_000,
        cognito: None,
        trusted_proxies: Vec::new(),
        body_read_timeout: std::time::Duration::from_secs(30),
        origin_secret: None,
    };
    let server = jhe::local::open(dir.path(), settings).expect("open");
    server.seed_if_empty().await.expect("seed");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let s = &server.state.issuer.settings;
    let token = server
        .state
        .issuer
        .sign(&json!({"iss": s.issuer, "sub": "10006", "aud": s.audience, "exp": now + 36_000, "iat": now, "jti": "b",
                      "client_id": "bench", "scope": "openid", "token_use": "access", "grant": "authorization_code"}))
        .await
        .expect("token");
    let audit_on = std::env::var("BENCH_AUDIT").map_or(true, |v| v != "off");
    let mut state = server.state.clone();
    if !audit_on {
        state.audit = std::sync::Arc::new(NoAudit);
    }
    let app = jhe::http::app(state);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let http = reqwest::Client::new();

    // Ingest.
    let t0 = Instant::now();
    let mut lat = Vec::new();
    for start in (0..n).step_by(100) {
        let entries: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| json!({"resource": obs(i), "request": {"method": "POST", "url": "Observation"}}))
            .collect();
        let body = json!({"resourceType": "Bundle", "type": "batch", "entry": entries}).to_string();
        let t = Instant::now();
        let resp = http
            .post(format!("{base}/FHIR/R5/"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
            .await
            .expect("post");
        assert!(resp.status().is_success());
        let _ = resp.bytes().await;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    let ingest_rate = n as f64 / ingest_s;
    let bundle_p50 = pct(&mut lat, 0.5);
    let bundle_p99 = pct(&mut lat, 0.99);

    // Reads: the first page, and a page 90% of the way down the cursor chain.
    let first = format!(
        "{base}/FHIR/R5/Observation?patient=40005&code=https://w3id.org/openmhealth|omh:blood-glucose:4.0&_count=1000"
    );
    let mut url = first.clone();
    let mut deep = first.clone();
    let mut pages = 0;
    loop {
        let b: Value = http.get(&url).bearer_auth(&token).send().await.expect("get").json().await.expect("json");
        pages += 1;
        if pages == (n / 1000) * 9 / 10 {
            deep = url.clone();
        }
        match b["link"].as_array().and_then(|l| l.iter().find(|l| l["relation"] == "next")) {
            Some(l) => url = l["url"].as_str().expect("url").to_string(),
            None => break,
        }
    }
    let measure = |u: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let mut v = Vec::new();
            for _ in 0..60 {
                let t = Instant::now();
                let b = http.get(&u).bearer_auth(&token).send().await.expect("get").bytes().await.expect("body");
                assert!(b.len() > 1000);
                v.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            v
        }
    };
    let mut first_ms = measure(first).await;
    let mut deep_ms = measure(deep).await;
    let report = json!({
        "observations_stored": n + 1,
        "ingest_obs_per_s": ingest_rate.round(),
        "bundle_of_100_p50_ms": bundle_p50,
        "bundle_of_100_p99_ms": bundle_p99,
        "read_page_first_p50_ms": pct(&mut first_ms, 0.5),
        "read_page_first_p99_ms": pct(&mut first_ms, 0.99),
        "read_page_deep_p50_ms": pct(&mut deep_ms, 0.5),
        "read_page_deep_p99_ms": pct(&mut deep_ms, 0.99),
        "pages": pages,
        "audit": audit_on,
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    let name = if audit_on { "bench-fhir.json" } else { "bench-fhir-noaudit.json" };
    let _ = std::fs::write(format!("{}/../target/{name}", env!("CARGO_MANIFEST_DIR")), report.to_string());
}
