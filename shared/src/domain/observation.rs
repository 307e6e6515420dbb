//! Observations as stored: an Open mHealth data point uploaded as a FHIR Observation, kept with
//! the uploaded base64 verbatim, plus what reads are keyed and filtered by.
//!
//! Stored field names are short, so that an observation's item stays under DynamoDB's 1 KB write
//! unit (docs/adr/0003-observation-item.md); documents written before under the long names (the
//! Rust ones) are still read:
//!
//! | field | stored as |
//! |---|---|
//! | `id`, `uuid` | the same |
//! | `data` (the uploaded base64) | `dp`: the data point's JSON text it decodes to, which encodes back to the same base64 (else `data`, as uploaded) |
//! | `patient_id`, `code_id`, `data_source_id` | `pt`, `cd`, `ds` (absent when none) |
//! | `status`, `identifiers`, `archive` | `st`, `ids`, `ar` |
//! | `effective_start`, `effective_end`, `last_updated` | `t0`, `t1` (absent when none), `lu` |

use std::borrow::Cow;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::Id;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredFields", into = "StoredFields")]
pub struct Observation {
    pub id: Id,
    pub patient_id: Id,
    pub code_id: Id,
    pub data_source_id: Option<Id>,
    pub status: String,
    /// (system, value) pairs as uploaded.
    pub identifiers: Vec<(String, String)>,
    /// Effective time (ms since the epoch): an instant, or a period when `effective_end` is set.
    pub effective_start: Option<i64>,
    pub effective_end: Option<i64>,
    /// When it was stored (ms since the epoch).
    pub last_updated: i64,
    /// `valueAttachment.data` exactly as uploaded (base64 of the Open mHealth data point).
    pub data: String,
    /// The data point's `header.uuid` (its natural key, with the identifiers).
    pub uuid: String,
    /// The archived upload it came from.
    pub archive: String,
}

/// An observation's document as stored (the table in the module's documentation).
#[derive(Serialize, Deserialize)]
struct StoredFields {
    id: Id,
    #[serde(rename = "pt", alias = "patient_id")]
    patient_id: Id,
    #[serde(rename = "cd", alias = "code_id")]
    code_id: Id,
    #[serde(rename = "ds", alias = "data_source_id", default, skip_serializing_if = "Option::is_none")]
    data_source_id: Option<Id>,
    #[serde(rename = "st", alias = "status")]
    status: String,
    #[serde(rename = "ids", alias = "identifiers", default)]
    identifiers: Vec<(String, String)>,
    #[serde(rename = "t0", alias = "effective_start", default, skip_serializing_if = "Option::is_none")]
    effective_start: Option<i64>,
    #[serde(rename = "t1", alias = "effective_end", default, skip_serializing_if = "Option::is_none")]
    effective_end: Option<i64>,
    #[serde(rename = "lu", alias = "last_updated")]
    last_updated: i64,
    /// The base64 as uploaded, when `point` cannot stand for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(rename = "dp", default, skip_serializing_if = "Option::is_none")]
    point: Option<String>,
    uuid: String,
    #[serde(rename = "ar", alias = "archive", default)]
    archive: String,
}

/// The JSON text a base64 payload decodes to, when encoding that text gives the same base64.
fn point_of(data: &str) -> Option<String> {
    let bytes = B64.decode(data).ok().filter(|b| !b.is_empty())?;
    let text = String::from_utf8(bytes).ok()?;
    (B64.encode(&text) == data).then_some(text)
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl From<Observation> for StoredFields {
    fn from(o: Observation) -> Self {
        let point = point_of(&o.data);
        StoredFields {
            id: o.id,
            patient_id: o.patient_id,
            code_id: o.code_id,
            data_source_id: o.data_source_id,
            status: o.status,
            identifiers: o.identifiers,
            effective_start: o.effective_start,
            effective_end: o.effective_end,
            last_updated: o.last_updated,
            data: point.is_none().then_some(o.data),
            point,
            uuid: o.uuid,
            archive: o.archive,
        }
    }
}

impl From<StoredFields> for Observation {
    fn from(f: StoredFields) -> Self {
        let data = match (f.point, f.data) {
            (Some(p), _) => B64.encode(p),
            (None, d) => d.unwrap_or_default(),
        };
        Observation {
            id: f.id,
            patient_id: f.patient_id,
            code_id: f.code_id,
            data_source_id: f.data_source_id,
            status: f.status,
            identifiers: f.identifiers,
            effective_start: f.effective_start,
            effective_end: f.effective_end,
            last_updated: f.last_updated,
            data,
            uuid: f.uuid,
            archive: f.archive,
        }
    }
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

/// The uploaded base64 (`valueAttachment.data`): as its JSON string literal in a stored document
/// (written out unchanged), as a plain string, or as the data point's text it encodes (`Point`,
/// encoded as it is written out).
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Literal(&'a RawValue),
    Text(&'a str),
    /// The data point's text as its JSON string literal in a stored document (`dp`).
    Point(&'a RawValue),
}

impl Payload<'_> {
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Literal(r) => r.get() == "\"\"",
            Payload::Text(t) => t.is_empty(),
            Payload::Point(r) => r.get() == "\"\"",
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
            Payload::Point(r) => {
                let text: Cow<str> = serde_json::from_str(r.get()).map_err(serde::ser::Error::custom)?;
                s.collect_str(&base64::display::Base64Display::new(text.as_bytes(), &B64))
            }
        }
    }
}

/// An Observation as rendering needs it, borrowed: from a stored JSON document (strings point
/// into it, the payload stays its JSON literal) or from an `Observation`.
#[derive(Debug, Deserialize)]
pub struct ObservationRef<'a> {
    pub id: Id,
    #[serde(rename = "pt", alias = "patient_id")]
    pub patient_id: Id,
    #[serde(rename = "cd", alias = "code_id")]
    pub code_id: Id,
    #[serde(rename = "ds", alias = "data_source_id", default)]
    pub data_source_id: Option<Id>,
    #[serde(rename = "st", alias = "status", borrow)]
    pub status: JsonStr<'a>,
    #[serde(rename = "ids", alias = "identifiers", default, borrow)]
    pub identifiers: Vec<(JsonStr<'a>, JsonStr<'a>)>,
    #[serde(rename = "t0", alias = "effective_start", default)]
    pub effective_start: Option<i64>,
    #[serde(rename = "t1", alias = "effective_end", default)]
    pub effective_end: Option<i64>,
    #[serde(rename = "lu", alias = "last_updated")]
    pub last_updated: i64,
    #[serde(default, borrow)]
    data: Option<Payload<'a>>,
    #[serde(rename = "dp", default, borrow)]
    point: Option<&'a RawValue>,
}

impl ObservationRef<'_> {
    /// `valueAttachment.data`.
    pub fn payload(&self) -> Payload<'_> {
        match (&self.point, self.data) {
            (Some(p), _) => Payload::Point(p),
            (None, d) => d.unwrap_or(Payload::Text("")),
        }
    }
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
            data: Some(Payload::Text(&o.data)),
            point: None,
        }
    }
}

impl Payload<'_> {
    /// Appends the payload as a JSON string literal of base64 (what its `Serialize` writes), with
    /// no escaping pass over the base64 and the data point's text unescaped into `scratch` (kept
    /// by the caller across entries): a page writes one per entry.
    pub fn write_literal(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Payload::Literal(r) => out.extend_from_slice(r.get().as_bytes()),
            Payload::Text(t) => serde_json::to_writer(&mut *out, t).map_err(|e| e.to_string())?,
            Payload::Point(r) => {
                scratch.clear();
                if !unescape_into(r.get().as_bytes(), scratch) {
                    let text: String = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
                    scratch.clear();
                    scratch.extend_from_slice(text.as_bytes());
                }
                out.push(b'"');
                let at = out.len();
                out.resize(at + base64::encoded_len(scratch.len(), true).unwrap_or(0), 0);
                let n = B64.encode_slice(&scratch[..], &mut out[at..]).map_err(|e| e.to_string())?;
                out.truncate(at + n);
                out.push(b'"');
            }
        }
        Ok(())
    }
}

/// The text of a JSON string literal (quotes included) appended to `out`, escapes decoded; false
/// (and `out` partly written) for a literal this does not decode, which the caller then parses.
fn unescape_into(lit: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(mut rest) = lit.strip_prefix(b"\"").and_then(|l| l.strip_suffix(b"\"")) else { return false };
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let Some(&kind) = rest.get(at + 1) else { return false };
        rest = &rest[at + 2..];
        let byte = match kind {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex =
                    |b: &[u8]| std::str::from_utf8(b.get(..4)?).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
                let Some(unit) = hex(rest) else { return false };
                rest = &rest[4..];
                let code = match unit {
                    0xD800..=0xDBFF => {
                        let Some(low) =
                            rest.strip_prefix(b"\\u").and_then(hex).filter(|l| (0xDC00..=0xDFFF).contains(l))
                        else {
                            return false;
                        };
                        rest = &rest[6..];
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return false,
                    u => u,
                };
                let Some(c) = char::from_u32(code) else { return false };
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return false,
        };
        out.push(byte);
    }
    out.extend_from_slice(rest);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast unescaper gives what serde_json gives, or declines (then serde_json decides).
    #[test]
    fn string_literals_unescape_as_serde_json_unescapes_them() {
        let texts = [
            "",
            "plain",
            r#"{"header":{"uuid":"a"},"body":{"v":1}}"#,
            "tab\tnewline\nreturn\r quote\" backslash\\ slash/ bell\u{7} nul\u{0} é ü 中 🩸 \u{2028}",
        ];
        for t in texts {
            let lit = serde_json::to_string(t).expect("literal");
            let mut out = Vec::new();
            assert!(unescape_into(lit.as_bytes(), &mut out), "{lit}");
            assert_eq!(String::from_utf8(out).expect("utf-8"), t);
        }
        for (lit, want) in [(r#""\/\b\f""#, "/\u{8}\u{c}"), (r#""\ud83e\ude78 \u00e9""#, "🩸 é")] {
            let mut out = Vec::new();
            assert!(unescape_into(lit.as_bytes(), &mut out), "{lit}");
            assert_eq!(String::from_utf8(out).expect("utf-8"), want);
        }
        for bad in [r#""\x""#, r#""\ud83e""#, r#""\udc00""#, r#""\u12""#, "\"unterminated", r#""trailing\""#] {
            assert!(!unescape_into(bad.as_bytes(), &mut Vec::new()), "{bad}");
        }
    }

    /// A payload written by `write_literal` is the literal its `Serialize` writes.
    #[test]
    fn payload_literals_are_what_serialize_writes() {
        let point = serde_json::to_string(r#"{"a":"b\"c","é":1}"#).expect("literal");
        let raw = RawValue::from_string(point).expect("raw");
        let b64 = serde_json::to_string(&B64.encode("x")).expect("literal");
        let lit = RawValue::from_string(b64).expect("raw");
        for p in [Payload::Point(&raw), Payload::Literal(&lit), Payload::Text("eyJhIjoxfQ=="), Payload::Text("")] {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            p.write_literal(&mut out, &mut scratch).expect("write");
            assert_eq!(String::from_utf8(out).expect("utf-8"), serde_json::to_string(&p).expect("json"));
        }
    }
}
