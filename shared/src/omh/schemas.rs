//! The official Open mHealth and IEEE 1752 JSON schemas (`shared/schemas/`, embedded at build time)
//! in one registry, and the validators compiled from them, one pair per code on first use.
//!
//! Every file is registered under the URL its `$ref`s resolve to, as upstream's registry has them:
//! `https://w3id.org/openmhealth/schemas/omh/<file>` and `https://w3id.org/ieee/ieee-1752-schema/<file>`
//! (the IEEE tree is flat by URL). The OMH `*-1.x.json` files hold only the name of the file they stand
//! for, and are registered with its contents. Nothing is fetched: a `$ref` outside the registry fails
//! the schema's compilation.
//!
//! A code `omh:<name>:<version>` (or `ieee:...`) names the body schema `<name>-<version>.json` of
//! that tree. Each schema gets two validators: one where `format` is an annotation (as upstream's
//! Python `jsonschema` validates: it decides acceptance) and one that checks formats (its misses
//! become warnings).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use jsonschema::{Registry, Validator};
use serde_json::Value;

pub(crate) const OMH_BASE: &str = "https://w3id.org/openmhealth/schemas/omh/";
pub(crate) const IEEE_BASE: &str = "https://w3id.org/ieee/ieee-1752-schema/";
/// The IEEE 1752 header every data point carries.
pub(crate) const HEADER_URL: &str = "https://w3id.org/ieee/ieee-1752-schema/header-1.0.json";

/// (path under `schemas/`, contents), written by `build.rs`.
static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// The schema documents by URL, and the registry that resolves `$ref`s between them.
struct Store {
    documents: HashMap<String, Value>,
    registry: Result<Registry<'static>, String>,
}

static STORE: LazyLock<Store> = LazyLock::new(load);

/// The URL a file under `schemas/` is registered at.
fn url_of(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    match path.split('/').next()? {
        "omh" => Some(format!("{OMH_BASE}{file}")),
        "ieee" => Some(format!("{IEEE_BASE}{file}")),
        _ => None,
    }
}

fn load() -> Store {
    let by_path: HashMap<&str, &str> = FILES.iter().copied().collect();
    let mut documents = HashMap::new();
    for (path, text) in FILES {
        let Some(url) = url_of(path) else { continue };
        let text = text.trim();
        // An alias holds the name of a file beside it.
        let text = if text.starts_with('{') {
            text
        } else {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            match by_path.get(format!("{dir}/{text}").as_str()) {
                Some(target) => target.trim(),
                None => continue,
            }
        };
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            documents.insert(url, v);
        }
    }
    let registry = documents
        .iter()
        .try_fold(Registry::new(), |r, (url, doc)| r.add(url, doc.clone()))
        .and_then(|r| r.prepare())
        .map_err(|e| format!("the embedded JSON schemas do not form a registry: {e}"));
    Store { documents, registry }
}

/// The body schema URL of a code (`omh:blood-glucose:4.0` -> `.../omh/blood-glucose-4.0.json`), if
/// the code has that form and the schema is shipped.
pub(crate) fn body_url(code: &str) -> Option<String> {
    let mut parts = code.split(':');
    let (ns, name, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() || version.is_empty() {
        return None;
    }
    let base = match ns {
        "omh" => OMH_BASE,
        "ieee" => IEEE_BASE,
        _ => return None,
    };
    let url = format!("{base}{name}-{version}.json");
    STORE.documents.contains_key(&url).then_some(url)
}

/// The two validators of one schema.
pub(crate) struct Checker {
    /// `format` as an annotation: what upstream accepts.
    pub lax: Validator,
    /// `format` checked: its extra errors are warnings.
    pub strict: Validator,
}

static CHECKERS: LazyLock<RwLock<HashMap<String, Arc<Checker>>>> = LazyLock::new(Default::default);

/// The validators of the schema at `url`, compiled on first use.
pub(crate) fn checker(url: &str) -> Result<Arc<Checker>, String> {
    if let Some(c) = CHECKERS.read().ok().and_then(|m| m.get(url).cloned()) {
        return Ok(c);
    }
    let store = &*STORE;
    let registry = store.registry.as_ref().map_err(Clone::clone)?;
    let schema = store.documents.get(url).ok_or_else(|| format!("no schema is shipped at {url}"))?;
    let build = |formats: bool| {
        jsonschema::options()
            .with_registry(registry)
            .with_base_uri(url)
            .should_validate_formats(formats)
            .with_format("uuid", super::time_frame::is_uuid)
            .build(schema)
            .map_err(|e| format!("the schema {url} does not compile: {e}"))
    };
    let c = Arc::new(Checker { lax: build(false)?, strict: build(true)? });
    if let Ok(mut m) = CHECKERS.write() {
        m.insert(url.to_string(), c.clone());
    }
    Ok(c)
}

/// Every shipped schema URL (for tests: each must compile).
pub fn urls() -> Vec<String> {
    let mut v: Vec<String> = STORE.documents.keys().cloned().collect();
    v.sort();
    v
}
