//! Observations as stored: an Open mHealth data point uploaded as a FHIR Observation, kept with
//! the uploaded base64 verbatim, plus what reads are keyed and filtered by.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
    /// Natural keys: every identifier, and the data point's uuid (`uuid_key`).
    pub fn natural_keys(&self) -> Vec<NaturalKey> {
        let mut k: Vec<NaturalKey> = self
            .identifiers
            .iter()
            .map(|(system, value)| NaturalKey { system: system.clone(), value: value.clone(), within: None })
            .collect();
        k.extend(self.uuid_key());
        k
    }

    /// The data point's `header.uuid` as a natural key, when it is a UUID. The schemas take any
    /// string there (its format is not checked, as upstream has it); one that is not a UUID
    /// guards nothing, as upstream guards nothing by it.
    pub fn uuid_key(&self) -> Option<NaturalKey> {
        crate::omh::is_uuid(&self.uuid).then(|| NaturalKey {
            system: OMH_UUID_SYSTEM.into(),
            value: self.uuid.to_lowercase(),
            within: Some((self.patient_id, self.date_key())),
        })
    }
}

/// The natural-key system of an Open mHealth data point's `header.uuid`.
pub const OMH_UUID_SYSTEM: &str = "urn:omh:header.uuid";

/// A key no two stored observations share: an identifier (system, value), unique across the
/// exchange as upstream has it; or the data point's `header.uuid`, unique per patient and
/// data-point time (`within`). A re-upload of the same data point has all three and is refused;
/// a uuid that another patient's data point also carries is not (nor can one patient's app
/// block another's uploads by claiming their uuids first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NaturalKey {
    pub system: String,
    pub value: String,
    /// For the uuid: the patient and the data point's time (`date_key`) it is unique within.
    pub within: Option<(Id, i64)>,
}

impl NaturalKey {
    /// Why an observation holding this key cannot be stored again. (The uuid's key is the one
    /// unique `within` a patient and time; an identifier an app names with the same system is
    /// still an identifier.)
    pub fn taken_message(&self) -> String {
        if self.within.is_some() {
            format!("An observation with Open mHealth header.uuid {} already exists.", self.value)
        } else {
            format!("Identifier already exists: system={} value={}", self.system, self.value)
        }
    }
}

/// A string read from JSON: borrowed from the JSON text when it holds no escapes (the usual
/// case), unescaped into its own buffer otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'a>(pub Cow<'a, str>);

impl std::ops::Deref for JsonStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = JsonStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The uploaded base64 (`valueAttachment.data`): as its JSON string literal in a stored document,
/// written out unchanged (no escaping pass over the largest field), or as a plain string.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Literal(&'a RawValue),
    Text(&'a str),
}

impl Payload<'_> {
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Literal(r) => r.get() == "\"\"",
            Payload::Text(t) => t.is_empty(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(Payload::Literal)
    }
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Literal(r) => r.serialize(s),
            Payload::Text(t) => s.serialize_str(t),
        }
    }
}

/// An Observation as rendering needs it, borrowed: from a stored JSON document (strings point
/// into it, the payload stays its JSON literal) or from an `Observation`.
#[derive(Debug, Deserialize)]
pub struct ObservationRef<'a> {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    #[serde(default)]
    pub data_source_id: Option<Id>,
    #[serde(borrow)]
    pub status: JsonStr<'a>,
    #[serde(default, borrow)]
    pub identifiers: Vec<(JsonStr<'a>, JsonStr<'a>)>,
    #[serde(default)]
    pub effective_start: Option<i64>,
    #[serde(default)]
    pub effective_end: Option<i64>,
    pub last_updated: i64,
    #[serde(borrow)]
    pub data: Payload<'a>,
}

impl<'a> From<&'a Observation> for ObservationRef<'a> {
    fn from(o: &'a Observation) -> Self {
        let s = |v: &'a String| JsonStr(Cow::Borrowed(v.as_str()));
        ObservationRef {
            id: o.id,
            patient_id: o.patient_id,
            code_id: o.code_id,
            data_source_id: o.data_source_id,
            status: s(&o.status),
            identifiers: o.identifiers.iter().map(|(a, b)| (s(a), s(b))).collect(),
            effective_start: o.effective_start,
            effective_end: o.effective_end,
            last_updated: o.last_updated,
            data: Payload::Text(&o.data),
        }
    }
}
