//! Observations as stored: an Open mHealth data point uploaded as a FHIR Observation, kept with
//! the uploaded base64 verbatim, plus what reads are keyed and filtered by.

use serde::{Deserialize, Serialize};

use super::model::Id;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    #[serde(default)]
    pub data_source_id: Option<Id>,
    pub status: String,
    /// (system, value) pairs as uploaded.
    #[serde(default)]
    pub identifiers: Vec<(String, String)>,
    /// Effective time (ms since the epoch): an instant, or a period when `effective_end` is set.
    #[serde(default)]
    pub effective_start: Option<i64>,
    #[serde(default)]
    pub effective_end: Option<i64>,
    /// When it was stored (ms since the epoch).
    pub last_updated: i64,
    /// `valueAttachment.data` exactly as uploaded (base64 of the Open mHealth data point).
    pub data: String,
    /// The data point's `header.uuid` (its natural key, with the identifiers).
    pub uuid: String,
    /// The archived upload it came from.
    #[serde(default)]
    pub archive: String,
}

impl Observation {
    /// The time reads sort by "date": the effective start (undated observations sort as time 0).
    pub fn date_key(&self) -> i64 {
        self.effective_start.unwrap_or(0)
    }
    /// Natural keys: every identifier, and the data point's uuid.
    pub fn natural_keys(&self) -> Vec<(String, String)> {
        let mut k = self.identifiers.clone();
        k.push(("urn:omh:header.uuid".into(), self.uuid.to_lowercase()));
        k
    }
}
