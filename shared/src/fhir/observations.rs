//! Observations rendered straight to JSON bytes, and their searchset pages.
//!
//! The hot read path serialises Observations and their searchset Bundle straight to JSON, with no
//! `Value` tree in between. The output is what `prune`d `Value`s serialise to: object keys in
//! byte order (serde_json's map without `preserve_order` is a `BTreeMap`), and no null, empty
//! string, empty array or empty object anywhere. `tests::typed_rendering_matches_values` holds the
//! two forms to the same bytes.

use super::*;
use crate::domain::observation::{JsonStr, Observation, ObservationRef, Payload};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

/// A `Display` value serialised as a JSON string (no intermediate `String` for the serialiser).
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `{"coding": [{"code", "display", "system"}]}` with empty strings left out (and the whole
/// object when all three are empty, as `prune` does).
struct CodeView<'a>(&'a Code);

impl CodeView<'_> {
    fn is_empty(&self) -> bool {
        self.0.coding_system.is_empty() && self.0.coding_code.is_empty() && self.0.text.is_empty()
    }
}

impl Serialize for CodeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Coding<'a>(&'a Code);
        impl Serialize for Coding<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (k, v) in
                    [("code", &self.0.coding_code), ("display", &self.0.text), ("system", &self.0.coding_system)]
                {
                    if !v.is_empty() {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("coding", &[Coding(self.0)])?;
        m.end()
    }
}

/// A list of `{"system", "value"}` with empty strings (and then empty objects) left out.
struct IdentifiersView<'a>(&'a [(JsonStr<'a>, JsonStr<'a>)]);

impl IdentifiersView<'_> {
    fn kept(&self) -> impl Iterator<Item = &(JsonStr<'_>, JsonStr<'_>)> {
        self.0.iter().filter(|(s, v)| !s.is_empty() || !v.is_empty())
    }
}

impl Serialize for IdentifiersView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for (sys, val) in self.kept() {
            seq.serialize_element(&NamedStrings([("system", sys), ("value", val)]))?;
        }
        seq.end()
    }
}

/// A stored Observation rendered for the wire, serialised directly: the same JSON as
/// `observation()` (which is now built from it).
pub struct ObservationView<'a> {
    pub obs: &'a ObservationRef<'a>,
    pub code: &'a Code,
    pub user_id: Option<Id>,
}

impl Serialize for ObservationView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.entries_before_attachment(&mut m)?;
        m.serialize_entry("valueAttachment", &Attachment(self.obs.payload()))?;
        m.end()
    }
}

impl ObservationView<'_> {
    /// Every entry but the last, `valueAttachment` (keys in byte order, as a serialised `Value`
    /// map has them).
    fn entries_before_attachment<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        let code = CodeView(self.code);
        if !code.is_empty() {
            m.serialize_entry("code", &code)?;
        }
        head_entries(m, self.obs)?;
        m.serialize_entry("subject", &Subject(self.obs.patient_id, self.user_id))
    }

    /// The same JSON as its `Serialize`, with the attachment written by `Payload::write_literal`
    /// (the largest value of an entry: no escaping pass, the data point unescaped in `scratch`).
    fn write(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<(), String> {
        struct Before<'a>(&'a ObservationView<'a>);
        impl Serialize for Before<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                self.0.entries_before_attachment(&mut m)?;
                m.end()
            }
        }
        put(out, &Before(self))?;
        out.pop(); // the map's `}`: the attachment goes on
        out.extend_from_slice(b",\"valueAttachment\":{\"contentType\":\"application/json\"");
        let payload = self.obs.payload();
        if !payload.is_empty() {
            out.extend_from_slice(b",\"data\":");
            payload.write_literal(out, scratch)?;
        }
        out.extend_from_slice(b"}}");
        Ok(())
    }
}

/// The entries of an Observation's rendering between `code` and `subject` (`device` to
/// `status`), in byte order as the rest.
fn head_entries<M: SerializeMap>(m: &mut M, o: &ObservationRef<'_>) -> Result<(), M::Error> {
    if let Some(d) = o.data_source_id {
        m.serialize_entry("device", &Reference("Device", d))?;
    }
    match (o.effective_start, o.effective_end) {
        (Some(st), Some(e)) => {
            let p = Period(ts_ms(st), ts_ms(e));
            if !p.0.is_empty() || !p.1.is_empty() {
                m.serialize_entry("effectivePeriod", &p)?;
            }
        }
        (Some(st), None) => {
            let t = ts_ms(st);
            if !t.is_empty() {
                m.serialize_entry("effectiveDateTime", &t)?;
            }
        }
        _ => {}
    }
    m.serialize_entry("id", &Text(o.id))?;
    let ids = IdentifiersView(&o.identifiers);
    if ids.kept().next().is_some() {
        m.serialize_entry("identifier", &ids)?;
    }
    m.serialize_entry("meta", &Meta(ts_ms(o.last_updated)))?;
    m.serialize_entry("resourceType", "Observation")?;
    if !o.status.is_empty() {
        m.serialize_entry("status", &*o.status)?;
    }
    Ok(())
}

struct Reference(&'static str, Id);

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("reference", &Text(format_args!("{}/{}", self.0, self.1)))?;
        m.end()
    }
}

/// (start, end), rendered.
struct Period(String, String);

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if !self.1.is_empty() {
            m.serialize_entry("end", &self.1)?;
        }
        if !self.0.is_empty() {
            m.serialize_entry("start", &self.0)?;
        }
        m.end()
    }
}

struct Meta(String);

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        if !self.0.is_empty() {
            m.serialize_entry("lastUpdated", &self.0)?;
        }
        m.serialize_entry("source", JHE_SOURCE)?;
        m.end()
    }
}

struct Subject(Id, Option<Id>);

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct UserId(Id);
        impl Serialize for UserId {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("system", USER_ID_SYSTEM)?;
                m.serialize_entry("value", &Text(self.0))?;
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        if let Some(u) = self.1 {
            m.serialize_entry("identifier", &UserId(u))?;
        }
        m.serialize_entry("reference", &Text(format_args!("Patient/{}", self.0)))?;
        m.end()
    }
}

struct Attachment<'a>(Payload<'a>);

impl Serialize for Attachment<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("contentType", "application/json")?;
        if !self.0.is_empty() {
            m.serialize_entry("data", &self.0)?;
        }
        m.end()
    }
}

/// Something an Observation can be rendered from: an `Observation`, or a stored document read
/// for a page (decoded only while its entry is written).
pub trait ObservationSource {
    fn borrowed(&self) -> Result<ObservationRef<'_>, String>;
}

impl ObservationSource for Observation {
    fn borrowed(&self) -> Result<ObservationRef<'_>, String> {
        Ok(self.into())
    }
}

/// A searchset Bundle of Observations, written straight to JSON bytes: the same JSON as
/// `searchset()` of their `observation()` renderings. `base` is the FHIR base URL.
pub struct ObservationSearchset<'a, E, F> {
    pub base: &'a str,
    pub total: Option<usize>,
    pub links: &'a [(&'a str, String)],
    pub entries: &'a [E],
    /// The code and the patient's user id of an observation, by (patient id, code id).
    pub lookup: F,
}

impl<'a, E, F> ObservationSearchset<'a, E, F>
where
    E: ObservationSource,
    F: Fn(Id, Id) -> (&'a Code, Option<Id>),
{
    /// The Bundle as JSON bytes. An entry that cannot be read fails the whole page (nothing of it
    /// is to be sent).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut w = EntryWriter::new(self.base, &self.lookup, self.entries.len())?;
        for e in self.entries {
            w.push(e)?;
        }
        let (mut out, n) = w.into_parts();
        finish_searchset(&mut out, n, self.links, self.total)?;
        Ok(out)
    }
}

/// A searchset Bundle of Observations written entry by entry: what `ObservationSearchset` writes,
/// for a page whose entries are written as its store query reads them. `into_parts` gives the
/// bytes so far, to be ended by `finish_searchset` once the links are known.
pub struct EntryWriter<'a, F> {
    out: Vec<u8>,
    /// `{"fullUrl":"{base}/Observation/`, escaped once: each entry adds its id.
    full_url: Vec<u8>,
    lookup: F,
    entries: usize,
    /// A data point's text, unescaped (reused entry after entry).
    scratch: Vec<u8>,
    _codes: std::marker::PhantomData<&'a Code>,
}

impl<'a, F> EntryWriter<'a, F>
where
    F: Fn(Id, Id) -> (&'a Code, Option<Id>),
{
    /// For a page of about `expected` entries (about 1.2 kB each); `base` is the FHIR base URL,
    /// `lookup` gives the code and the patient's user id of an observation.
    pub fn new(base: &str, lookup: F, expected: usize) -> Result<Self, String> {
        let mut full_url = b"{\"fullUrl\":".to_vec();
        put(&mut full_url, &Text(format_args!("{base}/Observation/")))?;
        full_url.pop();
        let mut out = Vec::with_capacity(512 + 1280 * expected);
        out.push(b'{');
        Ok(Self { out, full_url, lookup, entries: 0, scratch: Vec::new(), _codes: std::marker::PhantomData })
    }

    /// Appends one entry.
    pub fn push(&mut self, e: &impl ObservationSource) -> Result<(), String> {
        let out = &mut self.out;
        out.extend_from_slice(if self.entries == 0 { b"\"entry\":[" } else { b"," });
        let o = e.borrowed()?;
        out.extend_from_slice(&self.full_url);
        push_decimal(out, o.id);
        out.extend_from_slice(b"\",\"resource\":");
        let (code, user_id) = (self.lookup)(o.patient_id, o.code_id);
        ObservationView { obs: &o, code, user_id }.write(out, &mut self.scratch)?;
        out.extend_from_slice(b",\"search\":{\"mode\":\"match\"}}");
        self.entries += 1;
        Ok(())
    }

    /// Appends one entry unless the page would then be longer than `max_bytes` with room for
    /// its end (links and total); a page always takes its first entry. Whether it was appended.
    pub fn push_within(&mut self, e: &impl ObservationSource, max_bytes: usize) -> Result<bool, String> {
        let (len, entries) = (self.out.len(), self.entries);
        self.push(e)?;
        if entries > 0 && self.out.len() + PAGE_END_BYTES > max_bytes {
            self.out.truncate(len);
            self.entries = entries;
            return Ok(false);
        }
        Ok(true)
    }

    /// How many entries are written.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The bytes written and how many entries they hold.
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.out, self.entries)
    }
}

/// Room kept for what `finish_searchset` adds after the entries (the links echo the query).
pub const PAGE_END_BYTES: usize = 16 * 1024;

fn put(out: &mut Vec<u8>, v: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(out, v).map_err(|e| e.to_string())
}

/// Ends a searchset `EntryWriter` began with `entries` entries: the entries' array, the links,
/// the total.
pub fn finish_searchset(
    out: &mut Vec<u8>,
    entries: usize,
    links: &[(&str, String)],
    total: Option<usize>,
) -> Result<(), String> {
    // An empty page still carries `"entry":[]` (clients index it without checking).
    out.extend_from_slice(if entries > 0 { b"]," } else { b"\"entry\":[]," });
    if links.iter().any(|(rel, url)| !rel.is_empty() || !url.is_empty()) {
        out.extend_from_slice(b"\"link\":");
        put(out, &Links(links))?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceType\":\"Bundle\",");
    if let Some(t) = total {
        out.extend_from_slice(b"\"total\":");
        push_decimal(out, t as i64);
        out.push(b',');
    }
    out.extend_from_slice(b"\"type\":\"searchset\"}");
    Ok(())
}

/// Appends `n` in decimal, as `{n}` formats it (without a `String` per entry).
fn push_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Two named strings as a JSON object, leaving out the empty ones (an identifier, a link).
struct NamedStrings<'a>([(&'static str, &'a str); 2]);

impl Serialize for NamedStrings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !v.is_empty() {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

struct Links<'a>(&'a [(&'a str, String)]);

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for (rel, url) in self.0 {
            if !rel.is_empty() || !url.is_empty() {
                seq.serialize_element(&NamedStrings([("relation", rel), ("url", url)]))?;
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::observations::{StoredObs, observation_item};

    /// The `Value`-tree rendering the typed one replaced: the reference it must match. `valueAttachment.data` is the uploaded base64, verbatim.
    fn observation_tree(o: &Observation, code: &Code, user_id: Option<Id>) -> Value {
        let effective = match (o.effective_start, o.effective_end) {
            (Some(s), Some(e)) => json!({"effectivePeriod": {"start": ts_ms(s), "end": ts_ms(e)}}),
            (Some(s), None) => json!({"effectiveDateTime": ts_ms(s)}),
            _ => json!({}),
        };
        let mut v = json!({
            "resourceType": "Observation",
            "id": o.id.to_string(),
            "meta": meta(Some(ts_ms(o.last_updated))),
            "identifier": o.identifiers.iter().map(|(s, v)| json!({"system": s, "value": v})).collect::<Vec<_>>(),
            "status": o.status,
            "code": {"coding": [{"system": code.coding_system, "code": code.coding_code, "display": code.text}]},
            "subject": {
                "reference": format!("Patient/{}", o.patient_id),
                "identifier": user_id.map(|u| json!({"system": USER_ID_SYSTEM, "value": u.to_string()})),
            },
            "device": o.data_source_id.map(|d| json!({"reference": format!("Device/{d}")})),
            "valueAttachment": {"contentType": "application/json", "data": o.data},
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, effective) {
            m.extend(e);
        }
        prune(v)
    }

    fn code(system: &str, code: &str, text: &str) -> Code {
        Code { id: 50001, coding_system: system.into(), coding_code: code.into(), text: text.into() }
    }

    fn obs(i: i64) -> Observation {
        Observation {
            id: 60_000 + i,
            patient_id: 40_000 + i % 2,
            code_id: 50_000 + i % 3,
            data_source_id: (i % 2 == 0).then_some(70002),
            status: if i % 5 == 4 { String::new() } else { "final".into() },
            identifiers: match i % 4 {
                0 => vec![],
                1 => vec![("https://x.example/ids".into(), format!("bg-{i}"))],
                2 => vec![("a".into(), "1".into()), (String::new(), String::new()), ("b\"q".into(), "ü\n2".into())],
                _ => vec![(String::new(), "only-value".into())],
            },
            effective_start: (i % 3 != 0).then_some(1_728_000_000_000 + i * 300_123),
            effective_end: (i % 3 == 2).then_some(1_728_000_900_000 + i * 300_000),
            last_updated: 1_728_000_000_000 + i,
            data: if i == 7 { String::new() } else { format!("eyJhIjo{i}fQ==") },
            uuid: format!("u-{i}"),
            archive: String::new(),
        }
    }

    /// A page as the server writes it.
    fn written<'a, E, F>(b: &ObservationSearchset<'a, E, F>) -> Result<String, String>
    where
        E: ObservationSource,
        F: Fn(Id, Id) -> (&'a Code, Option<Id>),
    {
        String::from_utf8(b.to_bytes()?).map_err(|e| e.to_string())
    }

    /// A stored document as written now.
    fn stored(o: &Observation) -> StoredObs {
        StoredObs::from_item(&observation_item(o).expect("item")).expect("doc")
    }

    /// A stored document as earlier builds wrote it: long field names, `null`s, and a
    /// pre-rendered head (here a wrong one, which must not be sent).
    fn stored_before(o: &Observation) -> StoredObs {
        let doc = json!({
            "id": o.id, "patient_id": o.patient_id, "code_id": o.code_id, "data_source_id": o.data_source_id,
            "status": o.status, "identifiers": o.identifiers, "effective_start": o.effective_start,
            "effective_end": o.effective_end, "last_updated": o.last_updated, "data": o.data, "uuid": o.uuid,
            "archive": o.archive, "~fhir2": {"id": "1", "status": "amended"}, "~fhir2at": [30, 2],
            "fhir1": {"status": "amended"},
        });
        StoredObs::from_item(&crate::repo::item("OBS#x", o.id.to_string(), &doc).expect("item")).expect("doc")
    }

    #[test]
    fn a_page_holding_a_corrupt_stored_document_fails_instead_of_rendering_part_of_it() {
        let code = code(OMH_SYSTEM, "omh:blood-glucose:4.0", "Blood glucose");
        // Ordered and paged by (its id and times are there), but it cannot be rendered.
        let partial = json!({"id": 2, "patient_id": 40_000, "code_id": 50_000, "last_updated": 0});
        let bad = StoredObs::from_item(&crate::repo::item("OBS#x", "2", &partial).expect("item")).expect("doc");
        assert!(bad.view().is_err() && bad.decode().is_err());
        for good in [stored(&obs(1)), stored_before(&obs(1))] {
            let page = [good, bad.clone()];
            let bundle = ObservationSearchset {
                base: "http://h/FHIR/R5",
                total: Some(2),
                links: &[],
                entries: &page[..],
                lookup: |_, _| (&code, None),
            };
            let err = written(&bundle).expect_err("an error, not a half page");
            assert!(err.contains("corrupt observation"), "{err}");
            assert!(written(&ObservationSearchset { entries: &page[..1], ..bundle }).is_ok(), "the good one alone");
        }
    }

    #[test]
    fn times_are_written_as_the_time_crate_writes_them() {
        let slow = |ms: i64| {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            crate::domain::views::ts(t)
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut samples = vec![0, 1, 999, 1000, -1, -1001, 951_782_400_000, 253_402_300_799_999, -62_167_219_200_000];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 600_000_000_000_000) as i64 - 300_000_000_000_000);
        }
        for ms in samples {
            assert_eq!(ts_ms(ms), slow(ms), "{ms}");
        }
    }

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [0, 7, 10, 60_001, -3, i64::MAX, i64::MIN] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn an_observation_item_is_stored_under_short_names_without_nulls() {
        let o = obs(1);
        let it = observation_item(&o).expect("item");
        let names: Vec<&str> = it.data.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(names, ["ar", "cd", "dp", "id", "ids", "lu", "pt", "st", "t0", "uuid"], "obs(1): no device");
        let undated = Observation { effective_start: None, data_source_id: None, ..obs(3) };
        let it = observation_item(&undated).expect("item");
        assert!(it.data.get("t0").is_none() && it.data.get("t1").is_none() && it.data.get("ds").is_none());
        assert_eq!(stored(&undated).decode().expect("decode"), undated);
        // The payload is kept as the data point's text when that encodes back to the same
        // base64, and as uploaded otherwise.
        assert_eq!(it.data["dp"], "{\"a\":7}", "eyJhIjo3fQ== decoded");
        for data in ["eyJhIjoxMH0", "eyJhIjoxMH0=\n", "not base64", "/w==", ""] {
            let odd = Observation { data: data.into(), ..obs(3) };
            let it = observation_item(&odd).expect("item");
            assert!(it.data.get("dp").is_none(), "{data:?}");
            assert_eq!(stored(&odd).decode().expect("decode"), odd);
            assert_eq!(stored(&odd).view().expect("view").payload().is_empty(), data.is_empty());
        }
    }

    #[test]
    fn typed_rendering_matches_values() {
        let codes = [
            code(OMH_SYSTEM, "omh:blood-glucose:4.0", "Blood glucose"),
            code(OMH_SYSTEM, "omh:heart-rate:2.0", ""),
            code("", "", ""),
        ];
        let page: Vec<Observation> = (0..24).map(obs).collect();
        // Stored documents as a page reads them: written now, written by earlier builds (long
        // names, a stored head that must not be sent), and both in one page.
        let now: Vec<StoredObs> = page.iter().map(stored).collect();
        let before: Vec<StoredObs> = page.iter().map(stored_before).collect();
        let mixed: Vec<StoredObs> =
            page.iter().enumerate().map(|(i, o)| if i % 3 == 1 { stored_before(o) } else { stored(o) }).collect();
        let lookup = |p: Id, c: Id| (&codes[(c - 50_000) as usize], (p % 2 == 1).then_some(10_000 + p));
        for (o, st) in page.iter().cycle().zip(now.iter().chain(&before)) {
            let (c, u) = lookup(o.patient_id, o.code_id);
            let typed = serde_json::to_vec(&ObservationView { obs: &o.into(), code: c, user_id: u }).expect("typed");
            let tree = serde_json::to_vec(&observation_tree(o, c, u)).expect("tree");
            assert_eq!(String::from_utf8_lossy(&typed), String::from_utf8_lossy(&tree), "observation {}", o.id);
            assert_eq!(observation(o, c, u), observation_tree(o, c, u));
            let from_doc = serde_json::to_vec(&ObservationView { obs: &st.view().expect("view"), code: c, user_id: u });
            assert_eq!(String::from_utf8_lossy(&from_doc.expect("doc")), String::from_utf8_lossy(&tree));
            assert_eq!(&st.decode().expect("decode"), o);
        }
        let base = "http://127.0.0.1:8000/FHIR/R5";
        let links = [("self", format!("{base}/Observation?a=1")), ("next", format!("{base}/Observation?_cursor=x"))];
        for (n, total, links) in
            [(page.len(), Some(25_920), &links[..]), (0, Some(0), &links[..1]), (3, None, &links[..0])]
        {
            let values = page[..n]
                .iter()
                .map(|o| {
                    let (c, u) = lookup(o.patient_id, o.code_id);
                    observation_tree(o, c, u)
                })
                .collect();
            let tree = serde_json::to_string(&searchset(base, values, total, links)).expect("tree");
            let typed = written(&ObservationSearchset { base, total, links, entries: &page[..n], lookup });
            assert_eq!(typed.expect("typed"), tree);
            for stored in [&now, &before, &mixed] {
                let from_docs = written(&ObservationSearchset { base, total, links, entries: &stored[..n], lookup });
                assert_eq!(from_docs.expect("docs"), tree);
            }
        }
    }
}
