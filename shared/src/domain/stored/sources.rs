//! A patient's FHIR sources (`/api/v1/fhir_sources`): registered by the patient, listed and
//! changed only by them (practitioners see none), idempotent per (data source, base URL);
//! deleting one deletes what was stored under it.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::access;
use crate::domain::Caller;
use crate::domain::admin::input::{Body, text};
use crate::error::{Error, Result};
use crate::model::{FhirSource, Id};
use crate::repo::Repo;

fn view(s: &FhirSource) -> Value {
    json!({
        "id": s.id,
        "patient": s.patient_id,
        "dataSource": s.data_source_id,
        "label": s.label,
        "fhirBaseUrl": s.fhir_base_url,
        "lastUpdated": crate::domain::views::ts(s.last_updated),
    })
}

/// The caller's own sources, most recently changed first (none for a practitioner).
pub async fn list(repo: &Repo, c: &Caller) -> Result<Vec<Value>> {
    let Some(me) = access::patient_self(c) else { return Ok(vec![]) };
    let mut all = repo.patient_fhir_sources(me).await?;
    all.sort_by(|a, b| b.last_updated.cmp(&a.last_updated).then(b.id.cmp(&a.id)));
    Ok(all.iter().map(view).collect())
}

async fn own(repo: &Repo, c: &Caller, id: Id) -> Result<FhirSource> {
    match repo.fhir_source(id).await? {
        Some(s) if access::may_manage_fhir_source(c, s.patient_id) => Ok(s),
        _ => Err(Error::not_found()),
    }
}

pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    Ok(view(&own(repo, c, id).await?))
}

fn base_url(u: Option<String>) -> Result<String> {
    let u = text(u.unwrap_or_default(), "fhir_base_url", 2000)?;
    if !(u.is_empty() || u.starts_with("https://") || u.starts_with("http://")) {
        return Err(Error::bad("fhirBaseUrl must be an http(s) URL."));
    }
    Ok(u)
}

async fn data_source(repo: &Repo, id: Id) -> Result<Id> {
    repo.data_source(id).await?.map(|d| d.id).ok_or_else(|| Error::bad(format!("Data source {id} does not exist.")))
}

/// Registers a source for the calling patient; the same (data source, base URL) gives the one
/// registered before, its label updated. `(view, created)`.
pub async fn create(repo: &Repo, c: &Caller, body: &Body) -> Result<(Value, bool)> {
    let me = access::patient_self(c)
        .filter(|me| access::may_manage_fhir_source(c, *me))
        .ok_or_else(|| Error::Forbidden("Only patient users can register a FHIR source.".into()))?;
    body.only(&["label", "fhir_base_url", "data_source"])?;
    let mut s = FhirSource {
        id: 0,
        patient_id: me,
        data_source_id: data_source(repo, body.req_id("data_source")?).await?,
        label: text(body.opt_str("label")?.unwrap_or_default(), "label", 200)?,
        fhir_base_url: base_url(body.opt_str("fhir_base_url")?)?,
        last_updated: OffsetDateTime::now_utc(),
    };
    if let Some(old) = repo.fhir_source_by_key(&s).await? {
        s.id = old.id;
        repo.save_fhir_source(&s, Some(&old)).await?;
        return Ok((view(&s), false));
    }
    s.id = repo.next_id("fhir_source").await?;
    repo.save_fhir_source(&s, None).await?;
    Ok((view(&s), true))
}

pub async fn update(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    let old = own(repo, c, id).await?;
    body.only(&["label", "fhir_base_url", "data_source", "id", "patient", "last_updated"])?;
    let mut s = old.clone();
    if let Some(l) = body.opt_str("label")? {
        s.label = text(l, "label", 200)?;
    }
    if body.has("fhir_base_url") {
        s.fhir_base_url = base_url(body.opt_str("fhir_base_url")?)?;
    }
    if let Some(d) = body.opt_id("data_source")? {
        s.data_source_id = data_source(repo, d).await?;
    }
    s.last_updated = OffsetDateTime::now_utc();
    repo.save_fhir_source(&s, Some(&old)).await?;
    Ok(view(&s))
}

pub async fn delete(repo: &Repo, c: &Caller, id: Id) -> Result<()> {
    let s = own(repo, c, id).await?;
    repo.delete_fhir_source(&s).await
}
