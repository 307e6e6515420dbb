//! Architecture invariants checked on the source (ARCHITECTURE.md, "Invariants").

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_domain_never_imports_the_web_framework_sdks_or_engines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src");
    let mut files = Vec::new();
    for part in ["domain", "repo", "auth"] {
        rust_files(&src.join(part), &mut files);
    }
    for f in ["access.rs", "ports.rs", "model.rs", "error.rs", "seed.rs", "config.rs"] {
        files.push(src.join(f));
    }
    assert!(files.len() > 15, "found the domain sources");
    let forbidden = ["axum", "lambda_http", "aws_sdk", "aws_config", "redb", "tower"];
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for word in forbidden {
                if code.contains(&format!("{word}::")) || code.contains(&format!("use {word}")) {
                    bad.push(format!("{}: {}", f.display(), line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "domain code imports infrastructure:\n{}", bad.join("\n"));
}

/// The ports speak the vocabulary below them (`model.rs`): nothing from the domain or identity
/// code that uses them.
#[test]
fn the_ports_take_nothing_from_the_domain_or_auth() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/ports.rs");
    let text = std::fs::read_to_string(src).expect("read");
    for word in ["domain::", "auth::", "repo::", "http::"] {
        assert!(!text.contains(word), "ports.rs names {word}");
    }
}

#[test]
fn access_rules_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/access.rs");
    let text = std::fs::read_to_string(src).expect("read");
    for word in ["async fn", ".await", "Repo", "std::fs", "tokio"] {
        assert!(!text.contains(word), "access.rs must stay pure: found {word}");
    }
}

/// Who may see or do what is decided in `access.rs` alone: nowhere else does the code look at a
/// caller's superuser flag, type or roles (`Caller`'s own accessors live in `domain/mod.rs`).
/// Callers are named `c` throughout; the check also catches other receivers of the role map.
#[test]
fn access_decisions_are_made_in_access_rs_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = [src.join("access.rs"), src.join("domain/mod.rs")];
    let patterns =
        ["c.is_superuser()", "c.is_practitioner()", "c.role_in(", "c.roles", ".roles.keys()", ".roles.iter()"];
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| !allowed.contains(f)) {
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if patterns.iter().any(|p| line.contains(p)) {
                bad.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "access decided outside access.rs:\n{}", bad.join("\n"));
}

/// Rooms stay small: no source file of the product (the library, the binaries, the load tool)
/// is over 700 lines.
#[test]
fn no_product_source_file_is_over_700_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["shared/src", "functions", "tests/bench/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found the sources");
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).expect("read").lines().count()))
        .filter(|(_, n)| *n > 700)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

/// Handlers extract, call one function and answer: every handler the route table names is at
/// most 25 lines, its signature included.
#[test]
fn no_route_handler_is_over_25_lines() {
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/http");
    let table = std::fs::read_to_string(http.join("routes.rs")).expect("routes.rs");
    let handlers: std::collections::BTreeSet<&str> = table
        .split("on(m, ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter_map(|path| path.rsplit("::").next())
        .collect();
    assert!(handlers.len() > 80, "found the handlers: {handlers:?}");
    let mut files = Vec::new();
    rust_files(&http, &mut files);
    let mut long = Vec::new();
    let mut found: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ")
                .trim_start_matches("async ")
                .strip_prefix("fn ")
                .and_then(|r| r.split(['(', '<']).next())
            else {
                continue;
            };
            if !handlers.contains(name) || line.starts_with(' ') {
                continue;
            }
            found.insert(name.to_string());
            let n = lines[i..].iter().position(|l| *l == "}").map_or(lines.len() - i, |e| e + 1);
            if n > 25 {
                long.push(format!("{}: {name}, {n} lines", f.display()));
            }
        }
    }
    let missing: Vec<&&str> = handlers.iter().filter(|h| !found.contains(**h)).collect();
    assert!(missing.is_empty(), "every handler found: {missing:?}");
    assert!(long.is_empty(), "move their logic out:\n{}", long.join("\n"));
}
