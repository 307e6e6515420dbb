//! R4 import (`POST /fhir-import/R4[/{type}]`): each R4 resource converted to R5
//! (`fhir::r4::to_r5`) and stored as any write (source, R5 validation, upsert); each answered with
//! an OperationOutcome that names what the conversion dropped or defaulted.

use serde_json::{Value, json};

use super::write::{Stored, create};
use crate::domain::Caller;
use crate::domain::ingest::Refusal;
use crate::error::Result;
use crate::fhir::r4;
use crate::ports::BlobStore;
use crate::repo::Repo;

/// What became of one imported resource: stored or refused, and its OperationOutcome (what the
/// conversion dropped or defaulted, after the refusal's own issues).
#[derive(Debug, Clone)]
pub struct Imported {
    pub stored: std::result::Result<Stored, Refusal>,
    pub outcome: Value,
}

fn warnings(t: &str, c: &r4::Converted) -> Vec<Value> {
    let notes = c.notes.iter().map(|n| json!({"severity": "warning", "code": "informational", "diagnostics": n}));
    let dropped = c.dropped.iter().map(|p| {
        json!({"severity": "warning", "code": "not-supported", "expression": [p],
               "diagnostics": format!("R4 element {p} has no place in R5 {t} and was dropped.")})
    });
    notes.chain(dropped).collect()
}

fn refused(f: Refusal, converted: Option<&r4::Converted>, t: &str) -> Imported {
    let mut outcome = f.outcome();
    if let (Some(c), Some(issues)) = (converted, outcome["issue"].as_array_mut()) {
        issues.extend(warnings(t, c));
    }
    Imported { stored: Err(f), outcome }
}

/// Imports one R4 resource (`expected`: the type the path names, if any).
pub async fn import_one(
    repo: &Repo,
    blobs: &dyn BlobStore,
    c: &Caller,
    r4_body: &Value,
    expected: Option<&str>,
    header: Option<&str>,
) -> Result<Imported> {
    let t = r4_body["resourceType"].as_str().unwrap_or("").to_string();
    if let Some(e) = expected.filter(|e| *e != t) {
        let f = Refusal::invalid("structure", format!("The body must be a {e} resource (resourceType {e})."));
        return Ok(refused(f, None, &t));
    }
    let converted = match r4::to_r5(r4_body) {
        Ok(c) => c,
        Err(m) => return Ok(refused(Refusal::invalid("not-supported", m), None, &t)),
    };
    match create(repo, blobs, c, &t, converted.resource.clone(), header).await? {
        Ok(w) => {
            let mut issues = warnings(&t, &converted);
            if issues.is_empty() {
                issues.push(json!({"severity": "information", "code": "informational", "diagnostics": "Converted from R4 to R5 with nothing dropped."}));
            }
            Ok(Imported { stored: Ok(w), outcome: json!({"resourceType": "OperationOutcome", "issue": issues}) })
        }
        Err(f) => Ok(refused(f, Some(&converted), &t)),
    }
}
