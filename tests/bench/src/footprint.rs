//! The server's footprint when it runs on this machine: resident memory (`/proc/PID/status`),
//! CPU time (`/proc/PID/stat`), start-up time to the first answered `/health`, the store's size
//! on disk, and the zipped size of each Lambda `bootstrap` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Api, Res, random_id};

/// How long a started server may take to answer before the run gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Resident memory now, MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    status_kb(pid, "VmRSS:").map(|kb| kb as f64 / 1024.0)
}

/// Peak resident memory since the process started (`VmHWM`), MB.
pub fn hwm_mb(pid: u32) -> Option<f64> {
    status_kb(pid, "VmHWM:").map(|kb| kb as f64 / 1024.0)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user + system) a process has used, seconds. `None` if it is not readable.
pub fn cpu_s(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// CPU time this process (the load generator) has used, seconds.
pub fn own_cpu_s() -> Option<f64> {
    cpu_s(std::process::id())
}

/// Samples a process's resident memory in the background and keeps the peak since the last reset.
pub struct RssSampler {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                match status_kb(pid, "VmRSS:") {
                    Some(kb) => {
                        p.fetch_max(kb, Ordering::Relaxed);
                    }
                    None => break,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { peak_kb, stop }
    }

    /// The peak since the last call, MB; starts a new interval.
    pub fn take_peak_mb(&self) -> f64 {
        self.peak_kb.swap(0, Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `jhe serve` this tool started.
pub struct Started {
    pub child: Child,
    pub url: String,
    pub startup_ms: f64,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts `jhe serve` on `data_dir` (on `port`, or a free one, with `extra` arguments) and times it from spawn to the
/// first 200 on `/health`.
pub async fn start_server(bin: &Path, data_dir: &Path, port: Option<u16>, extra: &[String]) -> Res<Started> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let port = match port {
        Some(p) => p,
        None => free_port()?,
    };
    let url = format!("http://127.0.0.1:{port}");
    let log = data_dir.with_extension("log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let api = Api::new(&url)?;
    if api.healthy().await {
        return Err(format!("something already answers on {url}"));
    }
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    loop {
        if api.healthy().await {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited ({status}) before answering; see {}", bin.display(), log.display()));
        }
        if t0.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} did not answer /health within {START_TIMEOUT:?}", bin.display()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let startup_ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(Started { child, url, startup_ms, data_dir: data_dir.to_path_buf(), log })
}

/// Stops a server this tool started: SIGTERM (a clean shutdown), then SIGKILL after 15 s.
pub fn stop_server(s: &mut Started) {
    let pid = s.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = s.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = s.child.kill();
    let _ = s.child.wait();
}

/// Bytes of disk used under a folder (allocated blocks, as `du` counts them): redb grows its
/// file in large steps that stay sparse until written, so the files' lengths overstate it.
pub fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// A file's size once zipped (`zip -9`), as a Lambda deployment package is.
pub fn zipped_bytes(file: &Path) -> Option<u64> {
    let tmp = std::env::temp_dir().join(format!("jhe-bench-{}.zip", random_id(8)));
    let ok = Command::new("zip").arg("-q").arg("-9").arg("-j").arg(&tmp).arg(file).status().ok()?.success();
    let size = ok.then(|| std::fs::metadata(&tmp).ok().map(|m| m.len())).flatten();
    let _ = std::fs::remove_file(&tmp);
    size
}

/// One Lambda binary.
#[derive(Debug)]
pub struct LambdaBin {
    pub name: String,
    pub bytes: u64,
    pub zipped: Option<u64>,
}

/// Every `bootstrap` in `dir` (`dir/bootstrap` or `dir/<function>/bootstrap`, as `cargo lambda
/// build` lays them out), with its zipped size (`bootstrap.zip` when present, else zipped here).
pub fn lambda_bins(dir: &Path) -> Vec<LambdaBin> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subs.sort();
        dirs.extend(subs);
    }
    dirs.into_iter()
        .filter_map(|d| {
            let bin = d.join("bootstrap");
            let bytes = std::fs::metadata(&bin).ok()?.len();
            let zip = d.join("bootstrap.zip");
            let zipped = std::fs::metadata(&zip).ok().map(|m| m.len()).or_else(|| zipped_bytes(&bin));
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Some(LambdaBin { name, bytes, zipped })
        })
        .collect()
}

/// What the machine is: CPU model, cores, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("").trim();
    let mem_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    serde_json::json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_mb": mem_kb.map(|k| k / 1024),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_bytes_counts_the_disk_used_not_the_length() {
        let dir = std::env::temp_dir().join(format!("jhe-bench-dir-bytes-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        // 64 MiB long, nothing written: sparse.
        std::fs::File::create(dir.join("sparse")).and_then(|f| f.set_len(64 << 20)).expect("sparse");
        std::fs::write(dir.join("sub/written"), vec![7u8; 256 << 10]).expect("written");
        let used = dir_bytes(&dir);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!((256 << 10..4 << 20).contains(&used), "{used} bytes");
    }
}
