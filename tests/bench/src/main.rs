//! `jhe-bench`: load and benchmark tool for a JupyterHealth Exchange server (this one or any
//! implementation of the same API), over HTTP only.
//!
//! 1. Setup: a fresh namespace (organization, study, patients, enrolment, consent) through the API.
//! 2. Ingest: N patients x D days of CGM readings (288 a day) in batch Bundles, C uploaders.
//! 3. Read: one patient's window by `code` + `date` in pages of 1000 at several concurrencies; a
//!    study-wide pull; the admin lists.
//! 4. Scale (`--scale 1,10,100`): filler patients until the store holds that many patient-years,
//!    then the same read again.
//! 5. Footprint (local servers): resident memory idle and under load, CPU per observation,
//!    start-up time (`--start-server`), store size, Lambda binary sizes (`--lambda-dir`).
//!
//! Prints a table and writes every figure as JSON (`--json FILE`).

mod client;
mod footprint;
mod ingest;
mod read;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use client::{Api, Credentials, Res, Token};
use report::{Stats, Target, print_table, r2, targets};

#[derive(Parser, Debug)]
#[command(name = "jhe-bench", version, about = "Load and benchmark a JupyterHealth Exchange server (loopback only)")]
struct Args {
    /// Base URL of the server (loopback only). Not needed with --start-server.
    #[arg(long, env = "JHE_BENCH_URL")]
    url: Option<String>,
    /// An access token of a practitioner who manages an organization (instead of logging in).
    #[arg(long, env = "JHE_BENCH_TOKEN")]
    token: Option<String>,
    /// Log in as this user (browser flow with PKCE) when no --token is given.
    #[arg(long, default_value = "manager_mark@example.com")]
    user: String,
    /// Password for --user.
    #[arg(long, env = "JHE_BENCH_PASSWORD", default_value = "Jhe1234!")]
    password: String,
    /// Patients to ingest for (the reads measure the first).
    #[arg(long, default_value_t = 4)]
    patients: usize,
    /// Days of readings per patient (288 a day).
    #[arg(long, default_value_t = 90)]
    days: usize,
    /// Observations per batch Bundle.
    #[arg(long, default_value_t = 100)]
    bundle: usize,
    /// Concurrent uploaders.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Upload as each patient (token through an invitation) instead of as the manager.
    #[arg(long)]
    as_patient: bool,
    /// Namespace of the run's organization, study, patients and identifiers (default: fresh).
    #[arg(long)]
    namespace: Option<String>,
    /// Organization to create the run's organization under (default: the first one the caller manages).
    #[arg(long)]
    parent_org: Option<i64>,
    /// Concurrencies of the one-patient read.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    read_concurrency: Vec<usize>,
    /// Whole-window pulls per read concurrency (at least one per client).
    #[arg(long, default_value_t = 16)]
    read_pulls: usize,
    /// Page size (`_count`) of the FHIR reads.
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Pages read at most from each admin list.
    #[arg(long, default_value_t = 30)]
    admin_pages: usize,
    /// Skip the study-wide pull and the admin lists.
    #[arg(long)]
    skip_study_reads: bool,
    /// Patient-years stored at which to repeat the read (filler patients are ingested in between), e.g. 1,10,100.
    #[arg(long, value_delimiter = ',')]
    scale: Vec<f64>,
    /// Read concurrencies measured at each --scale level.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    scale_concurrency: Vec<usize>,
    /// PID of a local server, to read its memory and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Start this `jhe` binary (`jhe serve`) on a fresh data folder, time its start-up, and benchmark it.
    #[arg(long)]
    start_server: Option<PathBuf>,
    /// Data folder for --start-server, kept at the end (default: a fresh folder under the system
    /// temp dir, removed at the end unless --keep-server).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Port for --start-server (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Extra argument for `jhe serve` (repeatable), e.g. `--server-arg=--no-seed` with --startup-only.
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// With --start-server: only time the start-up (fresh and restarted) and memory, no load.
    #[arg(long)]
    startup_only: bool,
    /// Leave the started server running at the end (default: stop it, after timing a restart).
    #[arg(long)]
    keep_server: bool,
    /// Folder of the Lambda builds (`<function>/bootstrap[.zip]`), to report their zipped sizes.
    #[arg(long)]
    lambda_dir: Option<PathBuf>,
}

fn bar(prefix: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(0);
    let tpl = format!(
        "{{prefix:>12}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&tpl) {
        pb.set_style(style);
    }
    pb.set_prefix(prefix.to_string());
    pb
}

fn note(msg: impl AsRef<str>) {
    eprintln!("jhe-bench: {}", msg.as_ref());
}

/// Where the run's server lives, and how to read its footprint.
struct Server {
    pid: Option<u32>,
    started: Option<footprint::Started>,
}

impl Server {
    fn cpu(&self) -> Option<f64> {
        self.pid.and_then(footprint::cpu_s)
    }
    fn rss(&self) -> Option<f64> {
        self.pid.and_then(footprint::rss_mb)
    }
}

fn opt(x: Option<f64>) -> Value {
    x.map(r2).unwrap_or(Value::Null)
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// JSON of an ingest, with the server's and the client's CPU time over it.
fn ingest_json(r: &ingest::IngestResult, server_cpu: Option<f64>, client_cpu: Option<f64>) -> Value {
    json!({
        "observations_sent": r.sent,
        "observations_created": r.created,
        "entries_rejected": r.rejected,
        "bundles": r.bundles,
        "bundles_failed": r.failed_bundles,
        "wall_s": r2(r.wall_s),
        "obs_per_s": r2(r.obs_per_s()),
        "bundle_ms": Stats::of(&r.bundle_ms).json(),
        "server_cpu_s": opt(server_cpu),
        "server_cpu_us_per_obs": opt(server_cpu.map(|c| c * 1e6 / r.created.max(1) as f64)),
        "client_cpu_s": opt(client_cpu),
        "errors": r.errors,
    })
}

/// A read level; `client_cpu` is this process's CPU over it (the client shares the machine's
/// cores with a local server, so it is part of what a page's latency is made of).
fn level_json(l: &read::Level, server_cpu: Option<f64>, client_cpu: Option<f64>) -> Value {
    json!({
        "concurrency": l.concurrency,
        "pulls": l.pulls,
        "pages": l.pages,
        "observations": l.observations,
        "mb_read": r2(l.bytes as f64 / 1e6),
        "wall_s": r2(l.wall_s),
        "obs_per_s": r2(l.observations as f64 / l.wall_s.max(1e-9)),
        "page_ms": Stats::of(&l.page_ms).json(),
        "server_cpu_ms_per_page": opt(server_cpu.map(|c| c * 1e3 / l.pages.max(1) as f64)),
        "client_cpu_ms_per_page": opt(client_cpu.map(|c| c * 1e3 / l.pages.max(1) as f64)),
        "incomplete_pulls": l.incomplete,
        "errors": l.errors,
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("jhe-bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Res<()> {
    let mut out = Map::new();
    let ns = args.namespace.clone().unwrap_or_else(|| {
        let t = time::OffsetDateTime::now_utc();
        format!("{:02}{:02}{:02}{:02}-{}", t.month() as u8, t.day(), t.hour(), t.minute(), client::random_id(4))
    });
    out.insert("tool".into(), json!(format!("jhe-bench {}", env!("CARGO_PKG_VERSION"))));
    out.insert("namespace".into(), json!(ns));
    out.insert("machine".into(), footprint::machine());
    out.insert(
        "args".into(),
        json!({"patients": args.patients, "days": args.days, "bundle": args.bundle, "concurrency": args.concurrency,
               "as_patient": args.as_patient, "read_concurrency": args.read_concurrency, "read_pulls": args.read_pulls,
               "page_size": args.page_size, "scale": args.scale, "scale_concurrency": args.scale_concurrency}),
    );

    // The server: started here, or given.
    let mut server = Server { pid: args.server_pid, started: None };
    let url = match &args.start_server {
        Some(bin) => {
            let dir = args.data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("jhe-bench-{ns}")));
            if dir.join("jhe.redb").exists() || std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                note(format!("{} is not empty: the start-up time is that of an existing store", dir.display()));
            }
            let s = footprint::start_server(bin, &dir, args.port, &args.server_arg).await?;
            note(format!(
                "started {} on {} in {:.0} ms (data: {}, log: {})",
                bin.display(),
                s.url,
                s.startup_ms,
                dir.display(),
                s.log.display()
            ));
            out.insert("startup_ms".into(), r2(s.startup_ms));
            out.insert("server_binary".into(), json!(bin.display().to_string()));
            out.insert("server_binary_mb".into(), opt(std::fs::metadata(bin).ok().map(|m| m.len() as f64 / 1e6)));
            out.insert("server_binary_zipped_mb".into(), opt(footprint::zipped_bytes(bin).map(|b| b as f64 / 1e6)));
            server.pid = Some(s.child.id());
            let url = s.url.clone();
            server.started = Some(s);
            url
        }
        None => args.url.clone().ok_or("give --url (or --start-server PATH_TO_JHE)")?,
    };
    let result = if args.startup_only && server.started.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        out.insert("server_rss_idle_mb".into(), opt(server.rss()));
        Ok(())
    } else {
        bench(&args, &ns, &url, &mut server, &mut out).await
    };
    if let Err(e) = &result {
        out.insert("error".into(), json!(e));
    }

    // Restart on the loaded store (start-up time with data), then stop, unless asked to keep it.
    if let Some(mut s) = server.started.take() {
        let bin = args.start_server.clone().unwrap_or_default();
        let bytes = footprint::dir_bytes(&s.data_dir);
        out.insert("store_mb".into(), r2(bytes as f64 / 1e6));
        footprint::stop_server(&mut s);
        if result.is_ok() {
            let port = reqwest::Url::parse(&s.url).ok().and_then(|u| u.port());
            match footprint::start_server(&bin, &s.data_dir, port, &args.server_arg).await {
                Ok(mut r) => {
                    note(format!("restarted on the loaded store in {:.0} ms", r.startup_ms));
                    out.insert("startup_restart_ms".into(), r2(r.startup_ms));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    out.insert("server_rss_restart_idle_mb".into(), opt(footprint::rss_mb(r.child.id())));
                    if args.keep_server {
                        note(format!("server left running: pid {} on {}", r.child.id(), r.url));
                    } else {
                        footprint::stop_server(&mut r);
                    }
                }
                Err(e) => note(format!("restart failed: {e}")),
            }
        }
        // A data folder this run made up (no --data-dir) goes away with the server.
        if args.data_dir.is_none() && !args.keep_server && s.data_dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&s.data_dir);
            let _ = std::fs::remove_file(&s.log);
        }
    }
    if let Some(dir) = &args.lambda_dir {
        let bins = footprint::lambda_bins(dir);
        if bins.is_empty() {
            out.insert("lambda".into(), json!(format!("not built (no bootstrap under {})", dir.display())));
        } else {
            let v: Vec<Value> = bins
                .iter()
                .map(|b| json!({"function": b.name, "mb": r2(b.bytes as f64 / 1e6), "zipped_mb": opt(b.zipped.map(|z| z as f64 / 1e6))}))
                .collect();
            out.insert("lambda".into(), json!(v));
        }
    }

    let targets = targets(&out);
    out.insert("targets".into(), json!(targets.iter().map(Target::json).collect::<Vec<_>>()));
    print_table(&out, &targets);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&Value::Object(out)).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        note(format!("wrote {}", path.display()));
    }
    result
}

/// Setup, ingest, reads, scale; figures go into `out` as they come.
async fn bench(args: &Args, ns: &str, url: &str, server: &mut Server, out: &mut Map<String, Value>) -> Res<()> {
    client::check_loopback(url)?;
    let api = Api::new(url)?;
    out.insert("url".into(), json!(api.base));
    if !api.healthy().await {
        return Err(format!("{url}/health does not answer 200"));
    }

    // Setup.
    let t0 = Instant::now();
    let manager = match &args.token {
        Some(t) => Token::fixed(&api, t.clone()),
        None => {
            Token::obtain(&api, Credentials::Password { email: args.user.clone(), password: args.password.clone() })
                .await?
        }
    };
    let (env, own) = setup::setup(&api, &manager, ns, args.patients.max(1), args.parent_org, args.as_patient).await?;
    let mut tokens = setup::upload_tokens(&manager, &env, &own);
    let setup_s = t0.elapsed().as_secs_f64();
    note(format!(
        "namespace {ns}: organization {}, study {}, device {}, patients {:?}{} ({setup_s:.1} s)",
        env.org_id,
        env.study_id,
        env.device_id,
        env.patients,
        if args.as_patient { " (uploading as the patients)" } else { "" }
    ));
    out.insert(
        "setup".into(),
        json!({"organization": env.org_id, "study": env.study_id, "device": env.device_id, "patients": env.patients,
               "upload_as": if args.as_patient { "patient" } else { "manager" }, "wall_s": r2(setup_s)}),
    );

    // Idle memory, before any load.
    if server.pid.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        out.insert("server_pid".into(), json!(server.pid));
        out.insert("server_rss_idle_mb".into(), opt(server.rss()));
    }
    let sampler = server.pid.map(footprint::RssSampler::start);
    let mut load_peak: f64 = 0.0;

    // Ingest.
    let end = ingest::last_midnight();
    let series = ingest::recent_series(&env.patients, args.days, end);
    let pb = bar("ingest", "obs");
    let (c0, s0) = (footprint::own_cpu_s(), server.cpu());
    let ing = ingest::run(&api, &env, &tokens, &series, args.bundle, args.concurrency, &pb).await?;
    pb.finish_and_clear();
    let (c1, s1) = (footprint::own_cpu_s(), server.cpu());
    let bstats = Stats::of(&ing.bundle_ms);
    note(format!(
        "ingest: {} of {} observations created in {:.1} s: {:.0} obs/s; Bundle of {} p50/p95/p99 {}",
        ing.created,
        ing.sent,
        ing.wall_s,
        ing.obs_per_s(),
        args.bundle,
        bstats.short()
    ));
    for e in &ing.errors {
        note(format!("ingest error: {e}"));
    }
    out.insert("ingest".into(), ingest_json(&ing, diff(s0, s1), diff(c0, c1)));
    out.insert("ingest_obs_per_s".into(), r2(ing.obs_per_s()));
    out.insert("ingest_bundle_p50_ms".into(), r2(bstats.p50));
    out.insert("ingest_bundle_p95_ms".into(), r2(bstats.p95));
    out.insert("ingest_bundle_p99_ms".into(), r2(bstats.p99));
    if let Some(s) = &sampler {
        let p = s.take_peak_mb();
        load_peak = load_peak.max(p);
        out.insert("server_rss_ingest_peak_mb".into(), r2(p));
    }
    let mut stored = ing.created;

    // Read: the first patient's window.
    let (start, stop) = read::window(end, args.days);
    let target = env.patients[0];
    let first = read::observation_search(&api, &format!("patient={target}"), start, stop, args.page_size);
    let expected = read::expected(args.days);
    let warm = read::pull(&api, &manager, &first, None).await?;
    if warm.observations != expected {
        note(format!("read: the window holds {} observations, expected {expected}", warm.observations));
    }
    let mut levels = Vec::new();
    for &c in &args.read_concurrency {
        let c = c.max(1);
        let pb = bar(&format!("read c={c}"), "obs");
        let (c0, s0) = (footprint::own_cpu_s(), server.cpu());
        let l =
            read::level(&api, &manager, &first, c, args.read_pulls.div_ceil(c).max(1), warm.observations, &pb).await;
        pb.finish_and_clear();
        let st = Stats::of(&l.page_ms);
        note(format!(
            "read c={c}: {} pages, page p50/p95/p99 {}, {:.0} obs/s",
            l.pages,
            st.short(),
            l.observations as f64 / l.wall_s
        ));
        for e in &l.errors {
            note(format!("read error: {e}"));
        }
        levels.push((c, st, level_json(&l, diff(s0, server.cpu()), diff(c0, footprint::own_cpu_s()))));
    }
    let reference = levels.iter().find(|(c, ..)| *c == 8).or(levels.first());
    if let Some((c, st, _)) = reference {
        out.insert("read_page_concurrency".into(), json!(c));
        out.insert("read_page_p50_ms".into(), r2(st.p50));
        out.insert("read_page_p95_ms".into(), r2(st.p95));
        out.insert("read_page_p99_ms".into(), r2(st.p99));
    }
    out.insert(
        "read".into(),
        json!({"patient": target, "window_days": args.days, "observations": warm.observations, "pages_per_pull": warm.pages,
               "levels": levels.iter().map(|(_, _, v)| v.clone()).collect::<Vec<_>>()}),
    );

    // Study-wide pull and the admin lists.
    if !args.skip_study_reads {
        let sel = format!("patient._has:Group:member:_id={}", env.study_id);
        let url = read::observation_search(&api, &sel, start, stop, args.page_size);
        let pb = bar("study pull", "obs");
        pb.set_length(stored as u64);
        let s0 = server.cpu();
        let p = read::pull(&api, &manager, &url, Some(&pb)).await?;
        pb.finish_and_clear();
        let st = Stats::of(&p.page_ms);
        note(format!(
            "study-wide pull: {} observations in {} pages, {:.1} s ({:.0} obs/s), page p50/p95/p99 {}",
            p.observations,
            p.pages,
            p.wall_s,
            p.observations as f64 / p.wall_s,
            st.short()
        ));
        out.insert(
            "study_pull".into(),
            json!({"observations": p.observations, "expected": stored, "pages": p.pages, "wall_s": r2(p.wall_s),
                   "obs_per_s": r2(p.observations as f64 / p.wall_s.max(1e-9)), "page_ms": st.json(),
                   "server_cpu_s": opt(diff(s0, server.cpu()))}),
        );
        let mut lists = Vec::new();
        for path in [
            format!("/api/v1/patients?organizationId={}", env.org_id),
            format!("/api/v1/observations?studyId={}&pageSize=1000", env.study_id),
        ] {
            match read::admin_list(&api, &manager, &path, args.admin_pages).await {
                Ok(l) => {
                    let st = Stats::of(&l.page_ms);
                    note(format!(
                        "{}: {} items in {} pages, page p50/p95/p99 {}",
                        l.path,
                        l.items,
                        l.pages,
                        st.short()
                    ));
                    let (first_ms, last_ms) = (l.page_ms.first().copied(), l.page_ms.last().copied());
                    lists.push(json!({"path": l.path, "count": l.count, "pages_read": l.pages, "items_read": l.items,
                                      "complete": l.complete, "wall_s": r2(l.wall_s), "page_ms": st.json(),
                                      "first_page_ms": opt(first_ms), "last_page_ms": opt(last_ms)}));
                }
                Err(e) => {
                    note(format!("admin list {path}: {e}"));
                    lists.push(json!({"path": path, "error": e}));
                }
            }
        }
        out.insert("admin_lists".into(), json!(lists));
    }
    if let Some(s) = &sampler {
        let p = s.take_peak_mb();
        load_peak = load_peak.max(p);
        out.insert("server_rss_read_peak_mb".into(), r2(p));
    }

    // Scale: the same read with more patient-years stored.
    let mut levels_sorted = args.scale.clone();
    levels_sorted.retain(|x| x.is_finite() && *x > 0.0);
    levels_sorted.sort_by(|a, b| a.total_cmp(b));
    let mut scale = Vec::new();
    let mut filler_no = 0usize;
    for py in levels_sorted {
        let goal = (py * ingest::PER_YEAR as f64).round() as usize;
        let mut fill = Value::Null;
        if stored < goal {
            let need = goal - stored;
            let n = need.div_ceil(ingest::PER_YEAR);
            let label = format!("f{filler_no}-");
            filler_no += 1;
            let added = setup::add_patients(&api, &manager, &env, &label, n).await?;
            let ids: Vec<i64> = added.iter().map(|(p, _)| *p).collect();
            tokens.extend(setup::upload_tokens(&manager, &env, &added.into_iter().collect()));
            let year_start = end - 365 * 86_400;
            let series: Vec<ingest::Series> = ids
                .iter()
                .enumerate()
                .map(|(i, &p)| ingest::Series {
                    patient: p,
                    start: year_start,
                    count: if i + 1 < n { ingest::PER_YEAR } else { need - ingest::PER_YEAR * (n - 1) },
                })
                .collect();
            let pb = bar(&format!("fill {py} py"), "obs");
            let (c0, s0) = (footprint::own_cpu_s(), server.cpu());
            let r = ingest::run(&api, &env, &tokens, &series, args.bundle, args.concurrency, &pb).await?;
            pb.finish_and_clear();
            note(format!(
                "scale {py} patient-years: filled {} observations for {n} patients at {:.0} obs/s (Bundle p50/p99 {:.1}/{:.1} ms)",
                r.created,
                r.obs_per_s(),
                Stats::of(&r.bundle_ms).p50,
                Stats::of(&r.bundle_ms).p99
            ));
            for e in &r.errors {
                note(format!("fill error: {e}"));
            }
            stored += r.created;
            fill = ingest_json(&r, diff(s0, server.cpu()), diff(c0, footprint::own_cpu_s()));
        }
        let mut lv = Vec::new();
        for &c in &args.scale_concurrency {
            let c = c.max(1);
            let pb = bar(&format!("{py}py c={c}"), "obs");
            let (c0, s0) = (footprint::own_cpu_s(), server.cpu());
            let l = read::level(&api, &manager, &first, c, args.read_pulls.div_ceil(c).max(1), warm.observations, &pb)
                .await;
            pb.finish_and_clear();
            let st = Stats::of(&l.page_ms);
            note(format!("scale {py} patient-years, read c={c}: page p50/p95/p99 {}", st.short()));
            lv.push(level_json(&l, diff(s0, server.cpu()), diff(c0, footprint::own_cpu_s())));
        }
        let rss = sampler.as_ref().map(|s| s.take_peak_mb());
        if let Some(p) = rss {
            load_peak = load_peak.max(p);
        }
        scale.push(json!({"patient_years": py, "observations_stored": stored, "fill": fill, "reads": lv, "server_rss_peak_mb": opt(rss)}));
    }
    if !scale.is_empty() {
        // Growth of the page time (p50, at the highest concurrency measured at every level) from the smallest to the largest store.
        let p50 = |s: &Value| s["reads"].as_array().and_then(|r| r.last()).and_then(|l| l["page_ms"]["p50"].as_f64());
        if let (Some(a), Some(b)) = (scale.first().and_then(p50), scale.last().and_then(p50)) {
            out.insert("scale_page_p50_growth".into(), r2(b / a));
        }
        out.insert("scale".into(), json!(scale));
    }
    out.insert("observations_stored_by_run".into(), json!(stored));

    // Memory after the load, once idle again.
    if let Some(pid) = server.pid {
        out.insert("server_rss_mb".into(), r2(load_peak));
        tokio::time::sleep(Duration::from_secs(2)).await;
        out.insert("server_rss_after_load_mb".into(), opt(footprint::rss_mb(pid)));
        out.insert("server_rss_hwm_mb".into(), opt(footprint::hwm_mb(pid)));
        if let Some(s) = &server.started {
            let bytes = footprint::dir_bytes(&s.data_dir);
            out.insert("store_bytes_per_obs".into(), r2(bytes as f64 / stored.max(1) as f64));
        }
    }
    drop(sampler);
    Ok(())
}
