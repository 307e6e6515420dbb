//! Latency statistics (exact percentiles over every sample), the targets of the issue, and the
//! printed table.

use serde_json::{Map, Value, json};

/// Summary of a set of samples (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Stats {
    pub fn of(samples: &[f64]) -> Self {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stats {
                min: f64::NAN,
                mean: f64::NAN,
                p50: f64::NAN,
                p95: f64::NAN,
                p99: f64::NAN,
                max: f64::NAN,
                n: 0,
            };
        }
        v.sort_by(|a, b| a.total_cmp(b));
        Stats {
            n: v.len(),
            min: v[0],
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: percentile(&v, 50.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            max: v[v.len() - 1],
        }
    }

    pub fn json(&self) -> Value {
        json!({"n": self.n, "min": r2(self.min), "mean": r2(self.mean), "p50": r2(self.p50), "p95": r2(self.p95),
               "p99": r2(self.p99), "max": r2(self.max)})
    }

    /// `p50 / p95 / p99` in ms.
    pub fn short(&self) -> String {
        format!("{:.1} / {:.1} / {:.1} ms", self.p50, self.p95, self.p99)
    }
}

/// Rounded to 2 decimals (NaN becomes null in JSON).
pub fn r2(x: f64) -> Value {
    if x.is_finite() { json!((x * 100.0).round() / 100.0) } else { Value::Null }
}

/// A target of the issue and whether the run met it.
pub struct Target {
    pub name: &'static str,
    pub goal: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub met: Option<bool>,
}

impl Target {
    pub fn at_least(name: &'static str, goal: f64, unit: &'static str, value: Option<f64>) -> Self {
        let value = value.filter(|v| v.is_finite());
        Target { name, goal: format!(">= {goal} {unit}"), value, unit, met: value.map(|v| v >= goal) }
    }
    pub fn below(name: &'static str, goal: f64, unit: &'static str, value: Option<f64>) -> Self {
        let value = value.filter(|v| v.is_finite());
        Target { name, goal: format!("< {goal} {unit}"), value, unit, met: value.map(|v| v < goal) }
    }
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        }
    }
    pub fn json(&self) -> Value {
        json!({"target": self.name, "goal": self.goal, "value": self.value.map(r2), "unit": self.unit, "met": self.met})
    }
}

/// A plain text table: a header row and rows of cells, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(header.to_vec()));
    out.push('\n');
    out.push_str(&line(w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().iter().map(|s| s.as_str()).collect()));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
        out.push('\n');
    }
    out
}

/// A figure of the run, by its key.
fn figure(out: &Map<String, Value>, k: &str) -> Option<f64> {
    out.get(k).and_then(Value::as_f64)
}

/// The targets, judged on this run's figures.
pub fn targets(out: &Map<String, Value>) -> Vec<Target> {
    let lambda_max = out.get("lambda").and_then(Value::as_array).and_then(|bins| {
        bins.iter()
            .filter_map(|b| b["zipped_mb"].as_f64())
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    });
    let c = out.get("read_page_concurrency").and_then(Value::as_u64).unwrap_or(0);
    let page = |k: &str| figure(out, k).filter(|_| c == 8);
    vec![
        Target::at_least("ingest rate (Bundles of 100)", 10_000.0, "obs/s", figure(out, "ingest_obs_per_s")),
        Target::below("1000-obs page p50 at c=8", 15.0, "ms", page("read_page_p50_ms")),
        Target::below("1000-obs page p99 at c=8", 50.0, "ms", page("read_page_p99_ms")),
        Target::below("page p50 growth, smallest to largest store", 2.0, "x", figure(out, "scale_page_p50_growth")),
        Target::below("resident memory idle", 100.0, "MB", figure(out, "server_rss_idle_mb")),
        Target::below("resident memory under load", 300.0, "MB", figure(out, "server_rss_mb")),
        Target::below("start-up to first answer", 200.0, "ms", figure(out, "startup_ms")),
        Target::below("largest Lambda binary, zipped", 10.0, "MB", lambda_max),
    ]
}

pub fn print_table(out: &Map<String, Value>, targets: &[Target]) {
    let g = |k: &str| out.get(k).cloned().unwrap_or(Value::Null);
    let num = |v: &Value, unit: &str| match v.as_f64() {
        Some(x) => format!("{x:.1} {unit}").trim_end().to_string(),
        None => "-".into(),
    };
    let stats = |v: &Value| {
        if v.is_null() {
            "-".to_string()
        } else {
            format!("{} / {} / {} ms", num(&v["p50"], ""), num(&v["p95"], ""), num(&v["p99"], ""))
        }
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |a: &str, b: String, c: String| rows.push(vec![a.to_string(), b, c]);
    let ing = g("ingest");
    if !ing.is_null() {
        row(
            "ingest",
            format!("{} obs, {} Bundles", ing["observations_created"], ing["bundles"]),
            format!(
                "{} ({} rejected, {} Bundles failed)",
                num(&ing["obs_per_s"], "obs/s"),
                ing["entries_rejected"],
                ing["bundles_failed"]
            ),
        );
        row("ingest", "Bundle latency p50/p95/p99".into(), stats(&ing["bundle_ms"]));
        row("ingest", "server CPU per observation".into(), num(&ing["server_cpu_us_per_obs"], "us"));
    }
    for l in g("read")["levels"].as_array().into_iter().flatten() {
        row(
            "read",
            format!("page of {} obs, c={}", g("args")["page_size"], l["concurrency"]),
            format!(
                "{}  ({}, {} pages; CPU per page: server {}, client {})",
                stats(&l["page_ms"]),
                num(&l["obs_per_s"], "obs/s"),
                l["pages"],
                num(&l["server_cpu_ms_per_page"], "ms"),
                num(&l["client_cpu_ms_per_page"], "ms")
            ),
        );
    }
    let sp = g("study_pull");
    if !sp.is_null() {
        row(
            "read",
            format!("study-wide pull, {} obs", sp["observations"]),
            format!("{} s ({})", num(&sp["wall_s"], ""), num(&sp["obs_per_s"], "obs/s")),
        );
    }
    for l in g("admin_lists").as_array().into_iter().flatten() {
        row(
            "read",
            format!("admin {}", l["path"].as_str().unwrap_or("")),
            format!("{} ({} pages)", stats(&l["page_ms"]), l["pages_read"]),
        );
    }
    for s in g("scale").as_array().into_iter().flatten() {
        for l in s["reads"].as_array().into_iter().flatten() {
            row(
                "scale",
                format!(
                    "{} patient-years ({} obs), c={}",
                    s["patient_years"], s["observations_stored"], l["concurrency"]
                ),
                stats(&l["page_ms"]),
            );
        }
        if !s["fill"].is_null() {
            row(
                "scale",
                format!("fill to {} patient-years", s["patient_years"]),
                num(&s["fill"]["obs_per_s"], "obs/s"),
            );
        }
    }
    for (k, label, unit) in [
        ("server_rss_idle_mb", "RSS idle", "MB"),
        ("server_rss_mb", "RSS peak under load", "MB"),
        ("server_rss_after_load_mb", "RSS after load", "MB"),
        ("startup_ms", "start-up (fresh store)", "ms"),
        ("startup_restart_ms", "start-up (loaded store)", "ms"),
        ("store_bytes_per_obs", "store bytes per observation", "B"),
        ("server_binary_zipped_mb", "jhe binary, zipped", "MB"),
    ] {
        if out.contains_key(k) {
            row("footprint", label.into(), num(&g(k), unit));
        }
    }
    if let Some(l) = out.get("lambda") {
        match l.as_array() {
            Some(bins) => {
                for b in bins {
                    row(
                        "footprint",
                        format!("Lambda {}", b["function"].as_str().unwrap_or("")),
                        num(&b["zipped_mb"], "MB zipped"),
                    );
                }
            }
            None => row("footprint", "Lambda binaries".into(), l.as_str().unwrap_or("").into()),
        }
    }
    println!("\n{}", table(&["phase", "measure", "value"], &rows));
    let trows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            let v = t.value.map(|v| format!("{v:.1} {}", t.unit)).unwrap_or_else(|| "-".into());
            vec![t.name.to_string(), t.goal.clone(), v, t.verdict().to_string()]
        })
        .collect();
    println!("{}", table(&["target", "goal", "measured", "verdict"], &trows));
    if let Some(e) = out.get("error") {
        println!("run stopped early: {}", e.as_str().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&v);
        assert_eq!((s.p50, s.p95, s.p99, s.min, s.max, s.n), (50.0, 95.0, 99.0, 1.0, 100.0, 100));
        assert_eq!(Stats::of(&[3.0]).p99, 3.0);
        assert!(Stats::of(&[]).p50.is_nan());
    }

    #[test]
    fn targets_and_table() {
        assert_eq!(Target::below("x", 15.0, "ms", Some(14.0)).verdict(), "met");
        assert_eq!(Target::at_least("y", 10.0, "obs/s", Some(9.0)).verdict(), "MISSED");
        assert_eq!(Target::at_least("z", 1.0, "", None).verdict(), "not measured");
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxxx  y\n");
    }
}
