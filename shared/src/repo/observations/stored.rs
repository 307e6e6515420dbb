//! A stored observation as a page reads it: its document's bytes, borrowed or shared, decoded
//! only as far as needed.

use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;

use super::{ObsOrder, T_OFFSET};
use crate::domain::observation::{Observation, ObservationRef};
use crate::error::{Error, Result};
use crate::model::Id;
use crate::ports::Item;

/// A stored observation as a search reads it: its stored JSON document (the `Item`, as
/// `Table::query_raw` gives it) and what the search orders and pages by, taken from the index
/// key it was found under, so that a page decodes nothing before it is written out. The rest is
/// decoded when needed: a time the key does not hold (`time`), the fields borrowed for rendering
/// (`view`), or the whole observation (`decode`).
#[derive(Debug, Clone)]
pub struct StoredObs {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    /// `date_key()` and `last_updated`, when known without decoding the document.
    date: Option<i64>,
    last_updated: Option<i64>,
    doc: Bytes,
}

/// A stored document's bytes: its own, or its part of a page's shared buffer.
#[derive(Debug, Clone)]
pub(super) struct Bytes {
    pub(super) buf: Arc<Vec<u8>>,
    pub(super) at: Range<usize>,
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self { at: 0..v.len(), buf: Arc::new(v) }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.at.clone()]
    }
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("corrupt observation: {e}"))
}

/// The times of a stored document.
#[derive(Deserialize)]
struct Times {
    #[serde(rename = "t0", alias = "effective_start", default)]
    effective_start: Option<i64>,
    #[serde(rename = "lu", alias = "last_updated")]
    last_updated: i64,
}

impl Times {
    /// The time an order reads by (the date key as `Observation::date_key` has it).
    fn at(&self, order: ObsOrder) -> i64 {
        match order {
            ObsOrder::Date => self.effective_start.unwrap_or(0),
            ObsOrder::LastUpdated => self.last_updated,
        }
    }
}

/// Decimal digits, possibly zero-padded, as a number (what `str::parse` takes for a
/// non-negative number without a sign, without its UTF-8 check); `None` for anything else.
fn decimal(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0i64, |n, d| {
        d.is_ascii_digit().then_some(())?;
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

/// The time and id at the end of an observation's sort key (`...{time}#{id}`).
pub(super) fn time_and_id(sk: &[u8]) -> Result<(i64, Id)> {
    let mut parts = sk.rsplitn(3, |b| *b == b'#');
    let id = parts.next().and_then(decimal);
    let at = parts.next().and_then(decimal);
    match (at, id) {
        (Some(at), Some(id)) => Ok((at - T_OFFSET, id)),
        _ => Err(corrupt(format!("sort key {}", String::from_utf8_lossy(sk)))),
    }
}

impl StoredObs {
    /// A document found by a scan of one patient and code, under sort key `sk` in the scan's index.
    pub(super) fn scanned(patient: Id, code: Id, order: ObsOrder, sk: &[u8], doc: Bytes) -> Result<Self> {
        let (at, id) = time_and_id(sk)?;
        let (date, last_updated) = match order {
            ObsOrder::Date => (Some(at), None),
            ObsOrder::LastUpdated => (None, Some(at)),
        };
        Ok(Self { id, patient_id: patient, code_id: code, date, last_updated, doc })
    }
    /// From an observation's item as the table holds it (a read by id; benchmarks).
    pub fn from_item(item: &Item) -> Result<Self> {
        #[derive(Deserialize)]
        struct Doc {
            data: Meta,
        }
        #[derive(Deserialize)]
        struct Meta {
            id: Id,
            #[serde(rename = "pt", alias = "patient_id")]
            patient_id: Id,
            #[serde(rename = "cd", alias = "code_id")]
            code_id: Id,
            #[serde(flatten)]
            times: Times,
        }
        let doc = serde_json::to_vec(item).map_err(|e| Error::Internal(e.to_string()))?;
        let m = serde_json::from_slice::<Doc>(&doc).map_err(corrupt)?.data;
        Ok(Self {
            id: m.id,
            patient_id: m.patient_id,
            code_id: m.code_id,
            date: Some(m.times.at(ObsOrder::Date)),
            last_updated: Some(m.times.at(ObsOrder::LastUpdated)),
            doc: doc.into(),
        })
    }
    /// Its time in this order (the date key, as `Observation::date_key`, or its last update).
    pub fn time(&self, order: ObsOrder) -> Result<i64> {
        let known = match order {
            ObsOrder::Date => self.date,
            ObsOrder::LastUpdated => self.last_updated,
        };
        if let Some(t) = known {
            return Ok(t);
        }
        #[derive(Deserialize)]
        struct Doc {
            data: Times,
        }
        Ok(serde_json::from_slice::<Doc>(&self.doc).map_err(corrupt)?.data.at(order))
    }
    /// The observation borrowed from the stored document.
    pub fn view(&self) -> Result<ObservationRef<'_>> {
        view_of(&self.doc)
    }
    /// The whole observation.
    pub fn decode(&self) -> Result<Observation> {
        #[derive(Deserialize)]
        struct Doc {
            data: Observation,
        }
        Ok(serde_json::from_slice::<Doc>(&self.doc).map_err(corrupt)?.data)
    }
}

impl crate::fhir::ObservationSource for StoredObs {
    fn borrowed(&self) -> std::result::Result<ObservationRef<'_>, String> {
        view_of(&self.doc).map_err(Error::detail)
    }
}

/// The observation borrowed from a stored document.
fn view_of(doc: &[u8]) -> Result<ObservationRef<'_>> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        data: ObservationRef<'a>,
    }
    Ok(serde_json::from_slice::<Doc>(doc).map_err(corrupt)?.data)
}

/// An observation as `Repo::observations_each` hands it over: what `StoredObs` holds, its
/// document borrowed from the store for the time of the call.
#[derive(Debug, Clone, Copy)]
pub struct ScannedObs<'a> {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    /// Its time in the scan's order (from the sort key).
    pub at: i64,
    pub(super) doc: &'a [u8],
}

impl crate::fhir::ObservationSource for ScannedObs<'_> {
    fn borrowed(&self) -> std::result::Result<ObservationRef<'_>, String> {
        view_of(self.doc).map_err(Error::detail)
    }
}
