//! Latency statistics (exact percentiles over every sample), the targets of the issue, and the
//! printed table.

use serde_json::{Value, json};

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
