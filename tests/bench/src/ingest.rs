//! Uploads continuous-glucose-monitor data as a phone app does: one blood-glucose reading every
//! five minutes (288 a day, like a Dexcom), sent as batch Bundles of `bundle` Observations by
//! `concurrency` uploaders, each Bundle timed; every entry must come back `201 Created`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use indicatif::ProgressBar;
use serde::Deserialize;

use crate::client::{Api, Res, Token, random_bytes};
use crate::setup::{BG_CODE, Env, OMH_SYSTEM};

/// Seconds between two readings.
pub const INTERVAL_S: i64 = 300;
/// Readings per day.
pub const PER_DAY: usize = 288;
/// Readings per patient-year.
pub const PER_YEAR: usize = PER_DAY * 365;
/// Error messages kept for the report.
const KEEP_ERRORS: usize = 5;

/// One patient's readings: `count` of them, from `start` (Unix seconds) on.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub patient: i64,
    pub start: i64,
    pub count: usize,
}

/// What an ingest run measured.
#[derive(Debug, Default)]
pub struct IngestResult {
    pub sent: usize,
    pub created: usize,
    /// Entries answered with anything but `201 Created`.
    pub rejected: usize,
    /// Bundles that failed as a whole (transport error, non-200).
    pub failed_bundles: usize,
    pub bundles: usize,
    pub wall_s: f64,
    pub bundle_ms: Vec<f64>,
    pub errors: Vec<String>,
}

impl IngestResult {
    pub fn obs_per_s(&self) -> f64 {
        if self.wall_s > 0.0 { self.created as f64 / self.wall_s } else { 0.0 }
    }
}

/// A small, fast generator (splitmix64) for readings and UUIDs.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let b = random_bytes(8);
        Rng(u64::from_le_bytes(b.try_into().unwrap_or([7; 8])))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uuid4(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// A plausible glucose value (mg/dL) at `t`: a daily wave plus noise.
fn glucose(t: i64, rng: &mut Rng) -> u64 {
    let phase = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
    let noise = (rng.next() % 21) as f64 - 10.0;
    (115.0 + 35.0 * phase.sin() + noise).clamp(40.0, 400.0) as u64
}

/// Appends one batch entry (an Observation and its request) to `out`.
fn entry(out: &mut String, system: &str, patient: i64, device: i64, t: i64, rng: &mut Rng) {
    let when = rfc3339(t);
    let dp = format!(
        r#"{{"header":{{"uuid":"{}","schema_id":{{"namespace":"omh","name":"blood-glucose","version":"4.0"}},"source_creation_date_time":"{when}","modality":"sensed"}},"body":{{"blood_glucose":{{"value":{},"unit":"mg/dL"}},"effective_time_frame":{{"date_time":"{when}"}}}}}}"#,
        rng.uuid4(),
        glucose(t, rng)
    );
    let _ = write!(
        out,
        r#"{{"resource":{{"resourceType":"Observation","identifier":[{{"system":"{system}","value":"{patient}-{t}"}}],"status":"final","code":{{"coding":[{{"system":"{OMH_SYSTEM}","code":"{BG_CODE}"}}]}},"subject":{{"reference":"Patient/{patient}"}},"device":{{"reference":"Device/{device}"}},"valueAttachment":{{"contentType":"application/json","data":"{}"}}}},"request":{{"method":"POST","url":"Observation"}}}}"#,
        STANDARD.encode(dp)
    );
}

/// The body of a batch Bundle with readings `from..from+len` of a series.
pub fn bundle_body(env: &Env, s: &Series, from: usize, len: usize, rng_seed: u64) -> String {
    let mut rng = Rng(rng_seed);
    let system = env.ident_system();
    let mut out = String::with_capacity(len * 900 + 64);
    out.push_str(r#"{"resourceType":"Bundle","type":"batch","entry":["#);
    for i in from..from + len {
        if i > from {
            out.push(',');
        }
        entry(&mut out, &system, s.patient, env.device_id, s.start + i as i64 * INTERVAL_S, &mut rng);
    }
    out.push_str("]}");
    out
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    entry: Vec<BatchEntry>,
}
#[derive(Deserialize)]
struct BatchEntry {
    #[serde(default)]
    response: Option<EntryResponse>,
}
#[derive(Deserialize)]
struct EntryResponse {
    #[serde(default)]
    status: String,
    #[serde(default)]
    outcome: Option<serde_json::Value>,
}

/// What one Bundle upload came to.
enum Outcome {
    Done { created: usize, rejected: usize, first_error: Option<String> },
    Failed(String),
}

async fn upload(api: &Api, token: &Token, body: String, len: usize) -> Outcome {
    let t = match token.get().await {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(e),
    };
    let resp = match api
        .http
        .post(api.url("/FHIR/R5/"))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("POST /FHIR/R5/: {e}")),
    };
    let status = resp.status();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("POST /FHIR/R5/: {e}")),
    };
    if !status.is_success() {
        return Outcome::Failed(format!(
            "POST /FHIR/R5/: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ));
    }
    let parsed: BatchResponse = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("POST /FHIR/R5/: unreadable batch-response: {e}")),
    };
    let mut created = 0;
    let mut first_error = None;
    for e in &parsed.entry {
        match &e.response {
            Some(r) if r.status.starts_with("201") => created += 1,
            Some(r) if first_error.is_none() => {
                let why = r.outcome.as_ref().and_then(|o| o["issue"][0]["diagnostics"].as_str()).unwrap_or("");
                first_error = Some(format!("entry {}: {why}", r.status));
            }
            _ => {}
        }
    }
    if parsed.entry.len() != len && first_error.is_none() {
        first_error = Some(format!("batch-response has {} entries for {len} sent", parsed.entry.len()));
    }
    Outcome::Done { created, rejected: len - created.min(len), first_error }
}

/// Uploads every series in Bundles of `bundle` readings with `concurrency` uploaders.
pub async fn run(
    api: &Api,
    env: &Env,
    tokens: &HashMap<i64, Arc<Token>>,
    series: &[Series],
    bundle: usize,
    concurrency: usize,
    pb: &ProgressBar,
) -> Res<IngestResult> {
    let bundle = bundle.max(1);
    // Work units: (series, first reading, readings), each series in time order.
    let units: Vec<(usize, usize, usize)> = series
        .iter()
        .enumerate()
        .flat_map(|(si, s)| (0..s.count).step_by(bundle).map(move |from| (si, from, bundle.min(s.count - from))))
        .collect();
    let total: usize = series.iter().map(|s| s.count).sum();
    pb.set_length(total as u64);
    let next = Arc::new(AtomicUsize::new(0));
    let result = Arc::new(Mutex::new(IngestResult::default()));
    let units = Arc::new(units);
    let series = Arc::new(series.to_vec());
    let env = Arc::new(env.clone());
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (api, next, result, units, series, pb) =
            (api.clone(), next.clone(), result.clone(), units.clone(), series.clone(), pb.clone());
        let (tokens, env) = (tokens.clone(), env.clone());
        set.spawn(async move {
            let mut rng = Rng::seeded();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(si, from, len)) = units.get(i) else { break };
                let s = series[si];
                let Some(token) = tokens.get(&s.patient) else { break };
                let body = bundle_body(&env, &s, from, len, rng.next());
                let t = Instant::now();
                let outcome = upload(&api, token, body, len).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let mut r = result.lock().unwrap_or_else(|p| p.into_inner());
                r.bundles += 1;
                r.sent += len;
                match outcome {
                    Outcome::Done { created, rejected, first_error } => {
                        r.bundle_ms.push(ms);
                        r.created += created;
                        r.rejected += rejected;
                        if let Some(e) = first_error.filter(|_| r.errors.len() < KEEP_ERRORS) {
                            r.errors.push(e);
                        }
                    }
                    Outcome::Failed(e) => {
                        r.failed_bundles += 1;
                        if r.errors.len() < KEEP_ERRORS {
                            r.errors.push(e);
                        }
                    }
                }
                drop(r);
                pb.inc(len as u64);
            }
        });
    }
    while let Some(j) = set.join_next().await {
        j.map_err(|e| format!("uploader: {e}"))?;
    }
    let wall = started.elapsed().as_secs_f64();
    let mut r = std::mem::take(&mut *result.lock().unwrap_or_else(|p| p.into_inner()));
    r.wall_s = wall;
    Ok(r)
}

/// `days` days of readings for each patient, ending at the last midnight (UTC) before now.
pub fn recent_series(patients: &[i64], days: usize, end: i64) -> Vec<Series> {
    let start = end - days as i64 * 86_400;
    patients.iter().map(|&p| Series { patient: p, start, count: days * PER_DAY }).collect()
}

/// The last midnight (UTC) before now, in Unix seconds.
pub fn last_midnight() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    now - now.rem_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_is_valid_json_with_unique_keys() {
        let env = Env {
            ns: "t".into(),
            org_id: 1,
            study_id: 2,
            device_id: 70002,
            client_id: 2,
            as_patient: false,
            patients: vec![],
        };
        let s = Series { patient: 40001, start: 1_700_000_000 - 1_700_000_000 % 86_400, count: 288 };
        let b: serde_json::Value = serde_json::from_str(&bundle_body(&env, &s, 0, 100, 1)).expect("json");
        let entries = b["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), 100);
        let data = entries[1]["resource"]["valueAttachment"]["data"].as_str().expect("data");
        let dp: serde_json::Value = serde_json::from_slice(&STANDARD.decode(data).expect("b64")).expect("dp");
        assert_eq!(dp["body"]["effective_time_frame"]["date_time"], rfc3339(s.start + 300));
        assert_eq!(entries[1]["resource"]["identifier"][0]["value"], format!("40001-{}", s.start + 300));
        let mut uuids: Vec<String> = (0..1000).map(|_| Rng(5).uuid4()).collect();
        uuids.dedup();
        assert_eq!(uuids.len(), 1, "same seed, same uuid");
        let mut r = Rng(5);
        let mut many: Vec<String> = (0..1000).map(|_| r.uuid4()).collect();
        many.sort();
        many.dedup();
        assert_eq!(many.len(), 1000);
        assert_eq!(many[0].len(), 36);
        assert_eq!(&many[0][14..15], "4");
    }
}
