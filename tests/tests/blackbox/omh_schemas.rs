//! JHE's Open mHealth verdicts are upstream's: every case of a corpus (the fixtures under
//! `fixtures/omh/`, upstream's own example data points, the examples JHE builds, and mutations of
//! each: a field removed, a value of another type, a value outside its set) gets the same accept or
//! refuse from `jhe::omh::validate_data_point` as from upstream's validator, Python `jsonschema`
//! run as upstream runs it (`tests/harness/omh_verdicts.py`, in the test command's `.venv`). And the
//! schemas the product ships are the official ones.
//!
//! The fixtures' folders say what a format-checking validator says: a `valid/` one is accepted
//! without warnings; an `invalid/` one that upstream accepts must come with a warning.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jhe::omh::{example, example_codes, validate_data_point};
use serde_json::{Value, json};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> PathBuf {
    manifest().join("../shared/schemas")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files of a folder tree, sorted, as paths relative to it.
fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The reference copy of the official schemas (`$OMH_SCHEMAS_DIR`, default the team's
/// `../shared/omh-schemas`, taken from this crate's manifest directory unless absolute).
#[test]
fn the_shipped_schemas_are_the_official_ones() {
    let dir = std::env::var_os("OMH_SCHEMAS_DIR").unwrap_or_else(|| "../../shared/omh-schemas".into());
    let official = manifest().join(dir);
    let (ours, theirs) = (files(&shipped()), files(&official));
    assert!(ours.len() > 250, "{} files shipped", ours.len());
    assert_eq!(ours, theirs, "the same files");
    for rel in &ours {
        let (a, b) = (fs::read(shipped().join(rel)), fs::read(official.join(rel)));
        assert_eq!(a.ok(), b.ok(), "{} differs from the official copy", rel.display());
    }
}

/// One case of the corpus.
struct Case {
    name: String,
    code: String,
    data_point: Value,
    /// What the fixture's folder says (format-checking semantics), if it is a fixture.
    folder_valid: Option<bool>,
}

const UUID: &str = "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59";

fn wrap(code: &str, body: Value) -> Value {
    let parts: Vec<&str> = code.split(':').collect();
    json!({
        "header": {
            "uuid": UUID,
            "schema_id": {"namespace": parts[0], "name": parts[1], "version": parts[2]},
            "source_creation_date_time": "2024-05-01T08:30:00Z",
        },
        "body": body,
    })
}

fn fixture_cases() -> Vec<Case> {
    let root = manifest().join("fixtures/omh");
    let mut out = Vec::new();
    for rel in files(&root).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let v = read_json(&root.join(&rel));
        let parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let folder_valid = Some(parts[1] == "valid");
        let (code, data_point) = if parts[0] == "data-point" {
            (v["code"].as_str().unwrap_or_default().to_string(), v["data_point"].clone())
        } else {
            // `blood-glucose-4.0` -> `omh:blood-glucose:4.0`
            let (name, version) = parts[0].rsplit_once('-').expect("folder name-version");
            let code = format!("omh:{name}:{version}");
            (code.clone(), wrap(&code, v))
        };
        out.push(Case { name: format!("fixture {}", rel.display()), code, data_point, folder_valid });
    }
    out
}

/// Upstream's example data points (`../shared/upstream-examples/data-points`), coded as their header says.
fn upstream_examples() -> Vec<Case> {
    let dir = manifest().join("../../shared/upstream-examples/data-points");
    let mut out = Vec::new();
    for rel in files(&dir) {
        let dp = read_json(&dir.join(&rel));
        let id = &dp["header"]["schema_id"];
        let code = format!(
            "{}:{}:{}",
            id["namespace"].as_str().unwrap_or_default(),
            id["name"].as_str().unwrap_or_default(),
            id["version"].as_str().unwrap_or_default()
        );
        out.push(Case {
            name: format!("upstream example {}", rel.display()),
            code,
            data_point: dp,
            folder_valid: None,
        });
    }
    assert_eq!(out.len(), 7, "upstream ships seven example data points");
    out
}

/// Another value of another type, or outside a value set.
fn changed(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![json!(7), json!("not-in-any-value-set")],
        Value::Number(_) => vec![json!("7"), json!(null)],
        Value::Bool(_) => vec![json!("true")],
        Value::Array(_) => vec![json!({})],
        Value::Object(_) => vec![json!([]), json!("x")],
        Value::Null => vec![json!(0)],
    }
}

/// Each field of each object removed, and each value changed, one at a time.
fn mutations(base: &Case) -> Vec<Case> {
    fn walk(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(String, Value)>, root: &Value) {
        let set = |root: &Value, path: &[Value], new: Option<Value>| {
            let mut copy = root.clone();
            let (last, parents) = path.split_last().expect("a path");
            let mut at = &mut copy;
            for p in parents {
                at = match p {
                    Value::String(k) => &mut at[k.as_str()],
                    _ => &mut at[p.as_u64().unwrap_or(0) as usize],
                };
            }
            match (last, new, at) {
                (Value::String(k), None, Value::Object(m)) => drop(m.remove(k)),
                (Value::String(k), Some(n), at) => at[k.as_str()] = n,
                (i, None, Value::Array(a)) => drop(a.remove(i.as_u64().unwrap_or(0) as usize)),
                (i, Some(n), at) => at[i.as_u64().unwrap_or(0) as usize] = n,
                _ => {}
            }
            copy
        };
        let label = |path: &[Value]| {
            path.iter().map(|p| p.to_string().trim_matches('"').to_string()).collect::<Vec<_>>().join(".")
        };
        if !path.is_empty() {
            out.push((format!("{} removed", label(path)), set(root, path, None)));
            for n in changed(v) {
                out.push((format!("{} = {n}", label(path)), set(root, path, Some(n.clone()))));
            }
        }
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(json!(k));
                    walk(child, path, out, root);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(json!(i));
                    walk(child, path, out, root);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&base.data_point, &mut Vec::new(), &mut found, &base.data_point);
    found
        .into_iter()
        .map(|(what, dp)| Case {
            name: format!("{}, {what}", base.name),
            code: base.code.clone(),
            data_point: dp,
            folder_valid: None,
        })
        .collect()
}

fn corpus() -> Vec<Case> {
    let mut cases = fixture_cases();
    let mut seeds = upstream_examples();
    for code in example_codes() {
        let dp = example(code, UUID, "2024-05-01T08:30:00-07:00").unwrap_or_else(|| panic!("example {code}"));
        seeds.push(Case { name: format!("example {code}"), code: code.into(), data_point: dp, folder_valid: None });
    }
    let mutated: Vec<Case> = seeds.iter().flat_map(mutations).collect();
    cases.extend(seeds);
    cases.extend(mutated);
    cases.push(Case {
        name: "unknown code".into(),
        code: "omh:no-such-thing:1.0".into(),
        data_point: json!({}),
        folder_valid: None,
    });
    cases
}

/// Upstream's verdicts: `true`, or why it refuses.
fn upstream_verdicts(cases: &[Case]) -> Vec<Value> {
    let python = manifest().join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the test command (tests/run.sh) creates it with upstream's validator",
        python.display()
    );
    let input: Vec<Value> = cases.iter().map(|c| json!({"code": c.code, "data_point": c.data_point})).collect();
    let mut child = Command::new(python)
        .arg(manifest().join("harness/omh_verdicts.py"))
        .arg(shipped())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/harness/omh_verdicts.py");
    child.stdin.take().expect("stdin").write_all(Value::Array(input).to_string().as_bytes()).expect("write cases");
    let out = child.wait_with_output().expect("omh_verdicts.py");
    assert!(out.status.success(), "omh_verdicts.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let verdicts: Vec<Value> = serde_json::from_slice(&out.stdout).expect("verdicts JSON");
    assert_eq!(verdicts.len(), cases.len());
    verdicts
}

#[test]
fn our_verdicts_are_upstreams() {
    let cases = corpus();
    let verdicts = upstream_verdicts(&cases);
    let (mut accepted, mut refused, mut failures) = (0, 0, Vec::new());
    for (case, theirs) in cases.iter().zip(&verdicts) {
        let ours = validate_data_point(&case.code, &case.data_point);
        let upstream_accepts = theirs == &json!(true);
        if upstream_accepts {
            accepted += 1
        } else {
            refused += 1
        }
        match (&ours, upstream_accepts) {
            (Ok(_), true) | (Err(_), false) => {}
            (Ok(p), false) => {
                failures.push(format!("{}: we accept ({:?}), upstream refuses: {theirs}", case.name, p.warnings))
            }
            (Err(e), true) => failures.push(format!("{}: we refuse ({e}), upstream accepts", case.name)),
        }
        match (case.folder_valid, &ours) {
            (Some(true), Ok(p)) if p.warnings.iter().any(|w| w.contains("a format is not checked")) => {
                failures.push(format!("{}: a valid fixture with format warnings {:?}", case.name, p.warnings))
            }
            (Some(true), Err(e)) => failures.push(format!("{}: a valid fixture refused: {e}", case.name)),
            (Some(false), Ok(p)) if p.warnings.is_empty() => {
                failures.push(format!("{}: an invalid fixture accepted without a warning", case.name))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases disagree:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(accepted > 50 && refused > 200, "{accepted} accepted, {refused} refused: the corpus must hold both");
}

#[test]
fn upstreams_example_data_points_are_accepted_without_effective_time_loss() {
    for case in upstream_examples() {
        let p = validate_data_point(&case.code, &case.data_point).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert!(p.effective.is_some(), "{}: no effective time", case.name);
        assert_eq!(p.warnings.len(), 1, "{}: {:?}", case.name, p.warnings);
        assert!(
            p.warnings[0].starts_with("header.external_datasheets[0].datasheet_reference: "),
            "{}: the plain datasheet name is a format miss: {:?}",
            case.name,
            p.warnings
        );
    }
}
