//! FHIR sources and the FHIR resources stored as sent under them.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | FHIR source | `FHIRSRC#{s}` | `A` |
//! | source of a patient | `PATSRC#{p}` | `{s}` |
//! | source by (patient, data source, base URL) (unique, URL given) | `FHIRSRCKEY#{p}|{d}|{url}` | `A` |
//! | stored resource, with its body (or the blob holding it) | `FHIRRES#{p}` | `{type}#{uuid}` |
//! | stored resource by id: its patient and type | `FHIRID#{uuid}` | `A` |
//! | stored resource by (source, type, upstream id) (unique) | `FHIRKEY#{s}|{type}|{upstream id}` | `A` |
//!
//! A patient's resources of a type are one query of their partition; a search over many patients
//! is one query per patient whose consent lets the caller see that type.

use serde_json::json;

use super::entities::*;
use super::keys::{A, pad};
use super::{Repo, del, item};
use crate::error::{Error, Result};
use crate::model::{FhirSource, Id, StoredResource};
use crate::ports::{Cond, Item, Key, Query};

fn source_pk(s: Id) -> String {
    format!("FHIRSRC#{}", pad(s))
}
fn patient_sources_pk(p: Id) -> String {
    format!("PATSRC#{}", pad(p))
}
fn source_key_pk(s: &FhirSource) -> String {
    format!("FHIRSRCKEY#{}|{}|{}", pad(s.patient_id), pad(s.data_source_id), s.fhir_base_url)
}
fn resources_pk(p: Id) -> String {
    format!("FHIRRES#{}", pad(p))
}
fn resource_sk(t: &str, id: &str) -> String {
    format!("{t}#{id}")
}
fn by_id_pk(id: &str) -> String {
    format!("FHIRID#{id}")
}
fn upstream_pk(source: Id, t: &str, upstream: &str) -> String {
    format!("FHIRKEY#{}|{t}|{upstream}", pad(source))
}

/// The longest upstream id kept as the upsert key (a store key holds at most 1,024 bytes; longer
/// ones are stored without one).
const MAX_UPSTREAM_ID: usize = crate::model::MAX_IDENTIFIER_PART;

/// The upsert key of a (source, type, upstream id), if the id can be one.
fn upstream_key(source: Id, t: &str, upstream: Option<&str>) -> Option<String> {
    upstream.filter(|u| !u.is_empty() && u.len() <= MAX_UPSTREAM_ID).map(|u| upstream_pk(source, t, u))
}

impl Repo {
    // ---------------------------------------------------------------- FHIR sources

    pub async fn fhir_source(&self, id: Id) -> Result<Option<FhirSource>> {
        self.get(&source_pk(id), A).await
    }

    /// The source of this (patient, data source, base URL), if the URL is given and one exists.
    pub async fn fhir_source_by_key(&self, s: &FhirSource) -> Result<Option<FhirSource>> {
        if s.fhir_base_url.is_empty() {
            return Ok(None);
        }
        let Some(i) = self.table.get(&Key::new(source_key_pk(s), A)).await? else { return Ok(None) };
        match i.data["id"].as_i64() {
            Some(id) => self.fhir_source(id).await,
            None => Ok(None),
        }
    }

    pub async fn patient_fhir_sources(&self, p: Id) -> Result<Vec<FhirSource>> {
        let ids = self.query_all(Query::partition(patient_sources_pk(p))).await?;
        let mut out = Vec::new();
        for i in ids {
            if let Some(s) = self.fhir_source(i.sk.parse().unwrap_or(0)).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Writes a source (new, or changed from `old`); its (patient, data source, URL) key is unique.
    pub async fn save_fhir_source(&self, s: &FhirSource, old: Option<&FhirSource>) -> Result<()> {
        let mut tx = Tx::new();
        let cond = if old.is_some() { Cond::Exists } else { Cond::Absent };
        tx.put(item(source_pk(s.id), A, s)?, cond, Some("The FHIR source was changed by another request.".into()));
        tx.put(Item::new(patient_sources_pk(s.patient_id), pad(s.id), json!({})), Cond::None, None);
        let old_key = old.filter(|o| !o.fhir_base_url.is_empty()).map(source_key_pk);
        let new_key = (!s.fhir_base_url.is_empty()).then(|| source_key_pk(s));
        if old_key != new_key {
            if let Some(k) = old_key {
                tx.push(del(k, A), None);
            }
            if let Some(k) = new_key {
                let taken = "This patient already has a FHIR source with this data source and base URL.";
                tx.put(Item::new(k, A, json!({"id": s.id})), Cond::Absent, Some(taken.into()));
            }
        }
        tx.commit(self).await
    }

    /// Deletes a source and every resource stored under it.
    pub async fn delete_fhir_source(&self, s: &FhirSource) -> Result<()> {
        for r in self.patient_resources(s.patient_id, None).await? {
            if r.source_id == s.id {
                self.delete_stored(&r).await?;
            }
        }
        let mut tx = Tx::new();
        tx.push(del(source_pk(s.id), A), None);
        tx.push(del(patient_sources_pk(s.patient_id), pad(s.id)), None);
        if !s.fhir_base_url.is_empty() {
            tx.push(del(source_key_pk(s), A), None);
        }
        tx.commit(self).await
    }

    // ---------------------------------------------------------------- stored resources

    /// A stored resource by its id.
    pub async fn stored(&self, id: &str) -> Result<Option<StoredResource>> {
        let Some(p) = self.table.get(&Key::new(by_id_pk(id), A)).await? else { return Ok(None) };
        let (Some(patient), Some(t)) = (p.data["patient"].as_i64(), p.data["type"].as_str()) else {
            return Err(Error::Internal(format!("corrupt item {}", p.pk)));
        };
        self.get(&resources_pk(patient), &resource_sk(t, id)).await
    }

    /// The id of the resource stored from (source, type, upstream id), if any.
    pub async fn stored_by_upstream(&self, source: Id, t: &str, upstream: &str) -> Result<Option<String>> {
        let Some(key) = upstream_key(source, t, Some(upstream)) else { return Ok(None) };
        let i = self.table.get(&Key::new(key, A)).await?;
        Ok(i.and_then(|i| i.data["id"].as_str().map(str::to_string)))
    }

    /// A patient's stored resources, of one type or all.
    pub async fn patient_resources(&self, p: Id, t: Option<&str>) -> Result<Vec<StoredResource>> {
        let q = match t {
            Some(t) => Query::prefix(resources_pk(p), format!("{t}#")),
            None => Query::partition(resources_pk(p)),
        };
        self.query_parsed(q).await
    }

    /// Writes a stored resource: new (`old` none; its id and upstream key must be free), or a new
    /// version of `old` (same id, patient and type).
    pub async fn put_stored(&self, r: &StoredResource, old: Option<&StoredResource>) -> Result<()> {
        let mut tx = Tx::new();
        let key_of = |x: &StoredResource| upstream_key(x.source_id, &x.resource_type, x.upstream_id.as_deref());
        let changed = "The resource was changed by another request; try again.";
        match old {
            None => {
                let pointer = json!({"patient": r.patient_id, "type": r.resource_type});
                tx.put(Item::new(by_id_pk(&r.id), A, pointer), Cond::Absent, Some(changed.into()));
            }
            Some(_) => tx.push(
                crate::ports::Write::Check { key: Key::new(by_id_pk(&r.id), A), cond: Cond::Exists },
                Some("Not found.".into()),
            ),
        }
        tx.put(item(resources_pk(r.patient_id), resource_sk(&r.resource_type, &r.id), r)?, Cond::None, None);
        let (old_key, new_key) = (old.and_then(key_of), key_of(r));
        if old_key != new_key {
            if let Some(k) = old_key {
                tx.push(del(k, A), None);
            }
            if let Some(k) = new_key {
                tx.put(Item::new(k, A, json!({"id": r.id})), Cond::Absent, Some(changed.into()));
            }
        }
        tx.commit(self).await
    }

    pub async fn delete_stored(&self, r: &StoredResource) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(del(by_id_pk(&r.id), A), None);
        tx.push(del(resources_pk(r.patient_id), resource_sk(&r.resource_type, &r.id)), None);
        if let Some(k) = upstream_key(r.source_id, &r.resource_type, r.upstream_id.as_deref()) {
            tx.push(del(k, A), None);
        }
        tx.commit(self).await
    }
}
