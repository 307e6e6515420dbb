//! R4 import (`POST /fhir-import/R4[/{type}]`): each R4 resource converted to R5
//! (`fhir::r4::to_r5`) and stored as any write (source, R5 validation, upsert); each answered with
//! an OperationOutcome that names what the conversion dropped or defaulted.

use serde_json::{Value, json};

use super::write::create;
use crate::domain::Caller;
use crate::error::Result;
use crate::fhir::r4;
use crate::model::Id;
use crate::ports::BlobStore;
use crate::repo::Repo;

/// What became of one imported resource.
#[derive(Debug, Clone)]
pub struct Imported {
    /// 201, or the refusal's status.
    pub status: u16,
    pub outcome: Value,
    pub resource: Option<Value>,
    pub patient: Option<Id>,
}

fn issues(t: &str, c: Option<&r4::Converted>) -> Vec<Value> {
    let Some(c) = c else { return vec![] };
    let notes = c.notes.iter().map(|n| json!({"severity": "warning", "code": "informational", "diagnostics": n}));
    let dropped = c.dropped.iter().map(|p| {
        json!({"severity": "warning", "code": "not-supported", "expression": [p],
               "diagnostics": format!("R4 element {p} has no place in R5 {t} and was dropped.")})
    });
    notes.chain(dropped).collect()
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
    let refused = |status: u16, msg: String, c: Option<&r4::Converted>| {
        let mut all = vec![json!({"severity": "error", "code": "processing", "diagnostics": msg})];
        all.extend(issues(&t, c));
        Imported {
            status,
            outcome: json!({"resourceType": "OperationOutcome", "issue": all}),
            resource: None,
            patient: None,
        }
    };
    if let Some(e) = expected.filter(|e| *e != t) {
        return Ok(refused(400, format!("The body must be a {e} resource (resourceType {e})."), None));
    }
    let converted = match r4::to_r5(r4_body) {
        Ok(c) => c,
        Err(m) => return Ok(refused(400, m, None)),
    };
    match create(repo, blobs, c, &t, converted.resource.clone(), header).await? {
        Ok(w) => {
            let mut all = issues(&t, Some(&converted));
            if all.is_empty() {
                all.push(json!({"severity": "information", "code": "informational", "diagnostics": "Converted from R4 to R5 with nothing dropped."}));
            }
            let outcome = json!({"resourceType": "OperationOutcome", "issue": all});
            Ok(Imported { status: 201, outcome, resource: Some(w.resource), patient: Some(w.patient) })
        }
        Err(f) => {
            let status = match f {
                crate::domain::ingest::Refusal::Forbidden(_) => 403,
                crate::domain::ingest::Refusal::NotFound(_) => 404,
                _ => 400,
            };
            let mut imported = refused(status, f.message().to_string(), Some(&converted));
            if let crate::domain::ingest::Refusal::NotValid { problems, .. } = &f {
                let extra =
                    problems.iter().map(|p| json!({"severity": "error", "code": "structure", "diagnostics": p}));
                if let Some(list) = imported.outcome["issue"].as_array_mut() {
                    list.splice(1..1, extra);
                }
            }
            Ok(imported)
        }
    }
}
