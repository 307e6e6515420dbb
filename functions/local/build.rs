//! Embeds the web UI (`static-site/`) in the `jhe` binary, so that `jhe serve` serves it from any
//! folder with no npm step: writes `$OUT_DIR/site_files.rs`, the files the page loads (the shell,
//! styles, scripts, the precompiled templates and the vendored libraries), each with a gzip copy
//! when that is smaller and a strong ETag. Development sources (templates/*.hbs, tests, scripts,
//! node_modules) stay out.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const SHIPPED: &[&str] = &["index.html", "favicon.svg", "css", "js", "vendor"];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../static-site");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let mut files = Vec::new();
    for top in SHIPPED {
        let p = site.join(top);
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_dir() {
            collect(&p, &mut files)
        } else if p.is_file() {
            files.push(p)
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for (n, path) in files.iter().enumerate() {
        let rel = path.strip_prefix(&site).map(|r| r.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        if rel.ends_with(".lock-hash") {
            continue;
        }
        let body = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let gz = gz.write_all(&body).and_then(|()| gz.finish()).unwrap_or_default();
        let gz_expr = if !gz.is_empty() && gz.len() + 64 < body.len() {
            let gz_path = out_dir.join(format!("site-{n}.gz"));
            fs::write(&gz_path, &gz).unwrap_or_else(|e| panic!("{}: {e}", gz_path.display()));
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_string()
        };
        // FNV-1a of the bytes: the ETag changes with the content.
        let hash =
            body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
        code.push_str(&format!(
            "    jhe::http::site::SiteFile {{ path: {:?}, body: include_bytes!({:?}), gzip: {gz_expr}, etag: \"\\\"{hash:016x}\\\"\" }},\n",
            format!("/{rel}"),
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out = out_dir.join("site_files.rs");
    fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
