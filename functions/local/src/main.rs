//! `jhe`: the whole exchange in one local process: every route, the web UI and the built-in
//! OIDC issuer on the embedded store. Wiring only: the behaviour lives in the `jhe` library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use jhe::config::Settings;

#[derive(Parser)]
#[command(name = "jhe", version, about = "JupyterHealth Exchange, local mode")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every route, the web UI and the OIDC issuer.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "JHE_ADDR", default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
        /// Folder holding the store, the signing key and uploaded bundles.
        #[arg(long, env = "JHE_DATA_DIR", default_value = "jhe-data")]
        data_dir: PathBuf,
        /// Do not load the demo data into an empty store.
        #[arg(long)]
        no_seed: bool,
        /// Serve the web UI from this folder instead of the copy built into `jhe` (to see edits
        /// to `static-site/` without rebuilding).
        #[arg(long, env = "JHE_STATIC_DIR")]
        static_dir: Option<PathBuf>,
        /// Where records and uploads live: `local` (the embedded store and files in the data
        /// folder) or `aws` (DynamoDB table `JHE_TABLE` and S3 bucket `JHE_BUNDLE_BUCKET`, from the
        /// standard AWS environment: `AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
        #[arg(long, env = "JHE_BACKEND", default_value = "local")]
        backend: String,
    },
    /// Print the route table (route group, method, path) as JSON, for the SAM template check.
    Routes,
    /// Rebuild the observation index from the archived uploads (idempotent; safe to repeat).
    Reindex {
        /// The data folder of the store to repair.
        #[arg(long, env = "JHE_DATA_DIR", default_value = "jhe-data")]
        data_dir: PathBuf,
    },
}

fn main() {
    limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("jhe: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}

/// glibc's allocator gives each thread that allocates under contention an arena of its own (up to
/// 8 per core), and memory freed in one arena is not reused by another: under load (each page of
/// 1000 observations allocates about 2.5 MB, on whichever blocking thread read it) the peak
/// resident memory was 287-340 MB; with 4 arenas 225 MB at the same speed, with 2 arenas 151-164 MB
/// but uploads 10-15% slower (BENCHMARKS.md). The limit is read when the process starts, so `jhe`
/// re-executes itself once with `MALLOC_ARENA_MAX=4` (a value already set is kept, and if the
/// re-execution fails it goes on as it is).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && let Ok(exe) = std::env::current_exe()
    {
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("MALLOC_ARENA_MAX", "4").exec();
        eprintln!("jhe: could not restart with MALLOC_ARENA_MAX=4 ({err}); going on");
    }
}

async fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve { addr, data_dir, no_seed, static_dir, backend } => {
            serve(addr, data_dir, !no_seed, static_dir, &backend).await
        }
        Cmd::Reindex { data_dir } => reindex(data_dir).await,
        Cmd::Routes => {
            let rows: Vec<serde_json::Value> = jhe::http::routes::list()
                .into_iter()
                .map(|(g, m, p)| serde_json::json!({"group": g, "method": m, "path": p}))
                .collect();
            println!("{}", serde_json::Value::Array(rows));
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("jhe: {e}");
        std::process::exit(1);
    }
}

/// Opens the stores of the chosen backend and, when `seed`, loads the demo data into an empty
/// store; returns the server and whether it seeded.
async fn open(
    backend: &str,
    data_dir: &std::path::Path,
    settings: Settings,
    seed: bool,
) -> Result<(jhe::local::LocalServer, bool), String> {
    match backend {
        "local" => jhe::local::open_and_seed(data_dir, settings, seed).await.map_err(|e| format!("{e}: {e:?}")),
        #[cfg(feature = "aws")]
        "aws" => open_aws(data_dir, settings, seed).await,
        #[cfg(not(feature = "aws"))]
        "aws" => {
            Err("this jhe was built without AWS support: cargo run -p jhe-local --features aws -- serve --backend aws"
                .into())
        }
        other => Err(format!("unknown backend {other:?} (local or aws)")),
    }
}

/// `open` on DynamoDB and S3 (and the Cognito user pool when `JHE_USER_POOL_ID` is set).
#[cfg(feature = "aws")]
async fn open_aws(
    data_dir: &std::path::Path,
    settings: Settings,
    seed: bool,
) -> Result<(jhe::local::LocalServer, bool), String> {
    use jhe::adapters::{aws, dynamo::DynamoTable, s3::S3Blobs};
    let conf = aws::sdk_config().await;
    let (table, bucket) = jhe::cloud::resource_names();
    // Creating missing resources is for development against a local AWS-API server; a
    // deployment gets them from the SAM template.
    if std::env::var("JHE_CREATE_RESOURCES").is_ok_and(|v| v == "1") {
        DynamoTable::create_table(&aws::dynamo_client(&conf), &table)
            .await
            .map_err(|e| format!("creating table {table}: {e}"))?;
        S3Blobs::create_bucket(&aws::s3_client(&conf), &bucket)
            .await
            .map_err(|e| format!("creating bucket {bucket}: {e}"))?;
    }
    let mut settings = settings;
    settings.cognito = jhe::config::CognitoSettings::from_env()?;
    let server = if settings.cognito.is_some() {
        // Users signed in by the Cognito user pool, as in the Lambda functions.
        let state = jhe::cloud::state(settings, &conf)?;
        jhe::local::LocalServer { state, table: None, data_dir: data_dir.to_path_buf() }
    } else {
        let t = std::sync::Arc::new(DynamoTable::new(aws::dynamo_client(&conf), table));
        let b = std::sync::Arc::new(S3Blobs::new(aws::s3_client(&conf), bucket, ""));
        jhe::local::open_with(data_dir, settings, t, b).map_err(|e| format!("{e}: {e:?}"))?
    };
    let seeded = if seed { server.seed_if_empty().await.map_err(|e| format!("seeding: {e:?}"))? } else { false };
    Ok((server, seeded))
}

async fn serve(
    addr: SocketAddr,
    data_dir: PathBuf,
    seed: bool,
    static_dir: Option<PathBuf>,
    backend: &str,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let settings = Settings::from_env(&format!("http://{local}"));
    let site = settings.site_url.clone();
    let (server, seeded) = open(backend, &data_dir, settings, seed).await?;
    let source = match static_dir {
        Some(dir) if dir.join("index.html").is_file() => jhe::http::site::SiteSource::Dir(dir),
        Some(dir) => return Err(format!("--static-dir {}: no index.html there", dir.display())),
        None => jhe::http::site::SiteSource::Embedded(SITE),
    };
    let state = server.state.clone();
    let app = jhe::http::app(server.state.clone()).fallback(move |req: axum::extract::Request| {
        let (state, source) = (state.clone(), source.clone());
        async move { jhe::http::site::serve(&state, &source, req.method(), req.uri().path(), req.headers()).await }
    });
    println!("JupyterHealth Exchange listening on {site}  (backend: {backend}, data: {})", data_dir.display());
    println!("Web UI: {site}/");
    if seeded {
        println!("Loaded the demo data. Log in with any of these (password {}):", jhe::seed::DEMO_PASSWORD);
        for (email, what) in jhe::seed::DEMO_LOGINS {
            println!("  {email:<32} {what}");
        }
    }
    jhe::http::serve::serve(listener, app, jhe::http::serve::Limits::from_env(), shutdown())
        .await
        .map_err(|e| e.to_string())?;
    println!("jhe: stopped");
    Ok(())
}

/// The web UI, built into the binary (`build.rs`).
static SITE: &[jhe::http::site::SiteFile] = include!(concat!(env!("OUT_DIR"), "/site_files.rs"));

async fn reindex(data_dir: PathBuf) -> Result<(), String> {
    if !data_dir.join(jhe::local::STORE_FILE).exists() {
        return Err(format!("no store in {}", data_dir.display()));
    }
    let server =
        jhe::local::open(&data_dir, Settings::from_env("http://127.0.0.1:8000")).map_err(|e| format!("{e}: {e:?}"))?;
    let report =
        jhe::domain::ingest::reindex(&server.state.repo, &*server.state.blobs).await.map_err(|e| format!("{e:?}"))?;
    println!(
        "reindex: {} archived uploads, {} observations: {} indexed now, {} already indexed, {} duplicates skipped, {} set aside",
        report.uploads,
        report.observations,
        report.inserted,
        report.already_present,
        report.duplicates,
        report.quarantined
    );
    if report.quarantined > 0 {
        for r in &report.reasons {
            println!("  set aside: {r}");
        }
        println!(
            "reindex: the entries set aside are under {}/blobs/quarantine/, with their reasons",
            data_dir.display()
        );
        // Done, but not all of it: the exit status says so.
        std::process::exit(3);
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
