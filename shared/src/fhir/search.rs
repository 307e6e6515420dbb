//! FHIR search parameters: parsing with 400s for anything unknown or malformed, date prefixes,
//! and the opaque paging cursor.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{DEFAULT_COUNT, JHE_SOURCE, MAX_COUNT};
use crate::model::Id;

/// A half-open time window in milliseconds since the epoch: `lo <= t < hi`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

impl TimeRange {
    pub fn is_all(&self) -> bool {
        self.lo.is_none() && self.hi.is_none()
    }
    pub fn contains(&self, t: i64) -> bool {
        self.lo.is_none_or(|lo| t >= lo) && self.hi.is_none_or(|hi| t < hi)
    }
    pub fn intersect(self, o: TimeRange) -> TimeRange {
        TimeRange {
            lo: match (self.lo, o.lo) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            hi: match (self.hi, o.hi) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
    pub fn is_empty(&self) -> bool {
        matches!((self.lo, self.hi), (Some(l), Some(h)) if l >= h)
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The instant a value names and the length of its precision: `2025`, `2025-03`, `2025-03-04`,
/// `2025-03-04T10:00:00Z` (seconds, optional fraction, `Z` or an offset; no offset = UTC).
fn parse_instant(v: &str) -> Option<(i64, i64)> {
    let day = 86_400_000i64;
    let b = v.as_bytes();
    if v.len() == 4 && b.iter().all(u8::is_ascii_digit) {
        let y: i32 = v.parse().ok()?;
        let start = Date::from_calendar_date(y, Month::January, 1).ok()?;
        let end = Date::from_calendar_date(y + 1, Month::January, 1).ok()?;
        let s = ms(start.midnight().assume_utc());
        return Some((s, ms(end.midnight().assume_utc()) - s));
    }
    if v.len() == 7 && b[4] == b'-' {
        let y: i32 = v[..4].parse().ok()?;
        let m: u8 = v[5..].parse().ok()?;
        let start = Date::from_calendar_date(y, Month::try_from(m).ok()?, 1).ok()?;
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let end = Date::from_calendar_date(ny, Month::try_from(nm).ok()?, 1).ok()?;
        let s = ms(start.midnight().assume_utc());
        return Some((s, ms(end.midnight().assume_utc()) - s));
    }
    if v.len() == 10 {
        let d = Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
        return Some((ms(d.midnight().assume_utc()), day));
    }
    if let Ok(t) = OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        let prec = if v.contains('.') { 1 } else { 1000 };
        return Some((ms(t), prec));
    }
    // No offset: read as UTC.
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let p = PrimitiveDateTime::parse(v, &fmt).ok()?;
    Some((ms(p.assume_offset(UtcOffset::UTC)), 1000))
}

/// One `date`-typed parameter value with its prefix.
pub fn parse_date(v: &str) -> Result<TimeRange, String> {
    let (prefix, rest) = match v.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb" | "ap")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let (t, len) = parse_instant(rest).ok_or_else(|| format!("{v:?} is not a valid date or dateTime"))?;
    Ok(match prefix {
        "eq" => TimeRange { lo: Some(t), hi: Some(t + len) },
        "ge" => TimeRange { lo: Some(t), hi: None },
        "gt" => TimeRange { lo: Some(t + len), hi: None },
        "le" => TimeRange { lo: None, hi: Some(t + len) },
        "lt" => TimeRange { lo: None, hi: Some(t) },
        other => return Err(format!("date prefix {other:?} is not supported (use eq, ge, gt, le, lt)")),
    })
}

/// The position after the last entry of a page: (patient, sort value, id), and the search's
/// total as counted for its first page (`None` in cursors of searches that carry no total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub patient: Id,
    pub at: i64,
    pub id: Id,
    /// Counted once, on the first page, and carried from page to page: counting a time window
    /// again on every page cost as much as reading the page.
    pub total: Option<usize>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = match self.total {
            Some(n) => format!("v2.{}.{}.{}.{n}", self.patient, self.at, self.id),
            None => format!("v1.{}.{}.{}", self.patient, self.at, self.id),
        };
        crate::auth::crypto::b64url(text.as_bytes())
    }
    pub fn decode(s: &str) -> Result<Self, String> {
        let bad = || "_cursor is not a cursor this server issued".to_string();
        let raw = crate::auth::crypto::b64url_decode(s).ok_or_else(bad)?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let parts: Vec<&str> = text.split('.').collect();
        let (p, t, i, total) = match parts.as_slice() {
            ["v1", p, t, i] => (p, t, i, None),
            ["v2", p, t, i, n] => (p, t, i, Some(n.parse().map_err(|_| bad())?)),
            _ => return Err(bad()),
        };
        Ok(Cursor {
            patient: p.parse().map_err(|_| bad())?,
            at: t.parse().map_err(|_| bad())?,
            id: i.parse().map_err(|_| bad())?,
            total,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Date,
    LastUpdated,
}

/// The parameters common to every search.
#[derive(Debug, Clone)]
pub struct Common {
    pub count: usize,
    pub summary_count: bool,
    pub cursor: Option<Cursor>,
    /// `_id` values (a malformed id matches nothing, as upstream).
    pub ids: Option<Vec<Id>>,
    /// `_source` names a source not held here: the answer is empty.
    pub foreign_source: bool,
}

#[derive(Debug, Clone)]
pub struct ObservationQuery {
    pub common: Common,
    pub patient: Option<Id>,
    pub study: Option<Id>,
    pub organization: Option<Id>,
    /// Patient identifier: (system if given, value).
    pub patient_identifier: Option<(Option<String>, String)>,
    /// (system, code) alternatives.
    pub codes: Vec<CodeToken>,
    pub date: TimeRange,
    pub last_updated: TimeRange,
    pub sort: SortBy,
    pub descending: bool,
}

impl ObservationQuery {
    /// The time window on the sort's own time (the one a scan in that order is bounded by).
    pub fn window(&self) -> TimeRange {
        match self.sort {
            SortBy::Date => self.date,
            SortBy::LastUpdated => self.last_updated,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OtherQuery {
    pub identifier: Option<(Option<String>, String)>,
    pub study: Option<Id>,
    pub organization: Option<Id>,
    pub name: Option<String>,
    pub family: Option<String>,
    pub given: Option<String>,
    pub birthdate: TimeRange,
    pub last_updated: TimeRange,
    pub device_type: Option<String>,
}

/// The id of a reference parameter's value (`Type/{id}` or `{id}`), or why it is not one.
pub fn reference_id(v: &str, ty: &str, param: &str) -> Result<Id, String> {
    let raw = v.strip_prefix(&format!("{ty}/")).unwrap_or(v);
    raw.parse().map_err(|_| format!("{param}={v:?} is not a {ty} id"))
}

/// One alternative of a `code` search: a system (when given), a code (when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeToken {
    pub system: Option<String>,
    pub code: Option<String>,
}

impl CodeToken {
    pub fn matches(&self, system: &str, code: &str) -> bool {
        self.system.as_deref().is_none_or(|s| s == system) && self.code.as_deref().is_none_or(|c| c == code)
    }
}

fn token(v: &str) -> (Option<String>, String) {
    match v.split_once('|') {
        Some(("", val)) => (None, val.to_string()),
        Some((sys, val)) => (Some(sys.to_string()), val.to_string()),
        None => (None, v.to_string()),
    }
}

fn once<'a>(seen: &mut Vec<&'a str>, key: &'a str) -> Result<(), String> {
    if seen.contains(&key) {
        return Err(format!("{key} may be given only once"));
    }
    seen.push(key);
    Ok(())
}

fn common_param(c: &mut Common, key: &str, value: &str) -> Result<bool, String> {
    match key {
        "_count" => {
            let n: usize = value.parse().map_err(|_| format!("_count={value:?} is not a number"))?;
            if n == 0 || n > MAX_COUNT {
                return Err(format!("_count must be between 1 and {MAX_COUNT}"));
            }
            c.count = n;
        }
        "_summary" => match value {
            "count" => c.summary_count = true,
            "false" => {}
            _ => return Err(format!("_summary={value:?} is not supported (only count)")),
        },
        "_cursor" => c.cursor = Some(Cursor::decode(value)?),
        "_id" => {
            let ids: Vec<Id> = value.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            c.ids = Some(match c.ids.take() {
                Some(prev) => prev.into_iter().filter(|i| ids.contains(i)).collect(),
                None => ids,
            });
        }
        "_source" => c.foreign_source |= value != JHE_SOURCE,
        "_source:below" => c.foreign_source |= !JHE_SOURCE.starts_with(value),
        "_format" => {
            if !value.contains("json") {
                return Err("only JSON is served".into());
            }
        }
        "_page" => return Err("_page is not supported: follow the Bundle's next link".into()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn new_common() -> Common {
    Common { count: DEFAULT_COUNT, summary_count: false, cursor: None, ids: None, foreign_source: false }
}

pub fn parse_observation_query(params: &[(String, String)]) -> Result<ObservationQuery, String> {
    let mut q = ObservationQuery {
        common: new_common(),
        patient: None,
        study: None,
        organization: None,
        patient_identifier: None,
        codes: vec![],
        date: TimeRange::default(),
        last_updated: TimeRange::default(),
        sort: SortBy::Date,
        descending: true,
    };
    let mut seen = Vec::new();
    for (k, v) in params {
        let (k, v) = (k.as_str(), v.as_str());
        if common_param(&mut q.common, k, v)? {
            continue;
        }
        match k {
            "patient" | "subject" | "subject:Patient" | "patient:Patient" => {
                once(&mut seen, "patient")?;
                q.patient = Some(reference_id(v, "Patient", k)?);
            }
            "patient._has:Group:member:_id" | "patient._has:_group:member:_id" => {
                once(&mut seen, "study")?;
                q.study = Some(reference_id(v, "Group", k)?);
            }
            "patient.organization" => {
                once(&mut seen, "organization")?;
                q.organization = Some(reference_id(v, "Organization", k)?);
            }
            "identifier" | "patient.identifier" => {
                once(&mut seen, "identifier")?;
                q.patient_identifier = Some(token(v));
            }
            "code" => {
                once(&mut seen, "code")?;
                for alt in v.split(',') {
                    // FHIR token semantics: `system|code`, `code` (any system), `system|` (any code).
                    let (system, code) = match alt.split_once('|') {
                        Some((s, c)) => (Some(s), c),
                        None => (None, alt),
                    };
                    if alt.is_empty() || (system.is_some_and(str::is_empty) && code.is_empty()) {
                        return Err(format!("code={alt:?} must be system|code, code or system|"));
                    }
                    q.codes.push(CodeToken {
                        system: system.map(str::to_string),
                        code: (!code.is_empty()).then(|| code.to_string()),
                    });
                }
            }
            "date" => q.date = q.date.intersect(parse_date(v)?),
            "_lastUpdated" | "_last_updated" => q.last_updated = q.last_updated.intersect(parse_date(v)?),
            "_sort" => {
                once(&mut seen, "_sort")?;
                (q.sort, q.descending) = match v {
                    "date" => (SortBy::Date, false),
                    "-date" => (SortBy::Date, true),
                    "_lastUpdated" => (SortBy::LastUpdated, false),
                    "-_lastUpdated" => (SortBy::LastUpdated, true),
                    _ => {
                        return Err(format!("_sort={v:?} is not supported (date, -date, _lastUpdated, -_lastUpdated)"));
                    }
                };
            }
            other => return Err(format!("Unknown or unsupported search parameter {other:?} for Observation")),
        }
    }
    Ok(q)
}

/// Parameters of Patient, Group, Organization, Practitioner and Device searches.
pub fn parse_other_query(resource: &str, params: &[(String, String)]) -> Result<(Common, OtherQuery), String> {
    let mut c = new_common();
    let mut q = OtherQuery::default();
    let allowed: Vec<&str> = super::search_params(resource).iter().map(|(n, _, _)| *n).collect();
    for (k, v) in params {
        let (k, v) = (k.as_str(), v.as_str());
        if common_param(&mut c, k, v)? {
            continue;
        }
        let canonical = match k {
            "patient._has:Group:member:_id" | "patient._has:_group:member:_id" | "_has:_group:member:_id" => {
                "_has:Group:member:_id"
            }
            "patient.organization" => "organization",
            "_last_updated" => "_lastUpdated",
            other => other,
        };
        if !allowed.contains(&canonical) {
            return Err(format!("Unknown or unsupported search parameter {k:?} for {resource}"));
        }
        match canonical {
            "identifier" => q.identifier = Some(token(v)),
            "_has:Group:member:_id" => q.study = Some(reference_id(v, "Group", k)?),
            "organization" => q.organization = Some(reference_id(v, "Organization", k)?),
            "name" => q.name = Some(v.to_lowercase()),
            "family" => q.family = Some(v.to_lowercase()),
            "given" => q.given = Some(v.to_lowercase()),
            "birthdate" => q.birthdate = q.birthdate.intersect(parse_date(v)?),
            "_lastUpdated" => q.last_updated = q.last_updated.intersect(parse_date(v)?),
            "type" => q.device_type = Some(v.to_string()),
            other => return Err(format!("Unsupported search parameter {other:?}")),
        }
    }
    Ok((c, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn date_prefixes_make_half_open_windows() {
        let day = parse_date("2025-01-02").expect("day");
        assert_eq!(day.hi.zip(day.lo).map(|(h, l)| h - l), Some(86_400_000));
        let ge = parse_date("ge2025-01-02").expect("ge");
        assert_eq!((ge.lo, ge.hi), (day.lo, None));
        let gt = parse_date("gt2025-01-02").expect("gt");
        assert_eq!(gt.lo, day.hi);
        let lt = parse_date("lt2025-01-02").expect("lt");
        assert_eq!(lt.hi, day.lo);
        let le = parse_date("le2025-01-02T00:00:00Z").expect("le");
        assert_eq!(le.hi, day.lo.map(|l| l + 1000));
        assert!(parse_date("ge2025-13-01").is_err());
        assert!(parse_date("sa2025").is_err());
        assert!(parse_date("yesterday").is_err());
        let off = parse_date("2025-01-02T01:00:00+01:00").expect("offset");
        assert_eq!(off.lo, day.lo);
    }

    #[test]
    fn observation_params_parse_and_unknown_ones_are_refused() {
        let q = parse_observation_query(&p(&[
            ("patient", "40001"),
            ("patient._has:Group:member:_id", "30001"),
            ("code", "https://w3id.org/openmhealth|omh:blood-glucose:4.0"),
            ("date", "ge2025-01-01"),
            ("date", "lt2025-02-01"),
            ("_count", "1000"),
            ("_sort", "date"),
        ]))
        .expect("parse");
        assert_eq!((q.patient, q.study, q.common.count, q.descending), (Some(40001), Some(30001), 1000, false));
        assert!(q.date.lo.is_some() && q.date.hi.is_some());
        for bad in [
            vec![("foo", "1")],
            vec![("_count", "100000")],
            vec![("_count", "0")],
            vec![("code", "|")],
            vec![("code", "")],
            vec![("date", "soon")],
            vec![("patient", "x")],
            vec![("_sort", "value")],
            vec![("_cursor", "garbage!")],
            vec![("_page", "2")],
            vec![("patient", "1"), ("patient", "2")],
        ] {
            assert!(parse_observation_query(&p(&bad)).is_err(), "{bad:?} must be refused");
        }
        let c = Cursor { patient: 40001, at: -5, id: 60001, total: None };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        let c = Cursor { total: Some(25_920), ..c };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        // Cursors issued before totals were carried still work.
        let v1 = crate::auth::crypto::b64url(b"v1.40001.-5.60001");
        assert_eq!(Cursor::decode(&v1), Ok(Cursor { total: None, ..c }));
        assert!(Cursor::decode(&crate::auth::crypto::b64url(b"v2.40001.-5.60001.x")).is_err());
    }

    #[test]
    fn a_code_is_a_token_as_fhir_has_it() {
        let q = parse_observation_query(&p(&[("code", "omh:blood-glucose:4.0,https://w3id.org/openmhealth|,|x")]))
            .expect("parse");
        let matches = |system: &str, code: &str| q.codes.iter().map(|t| t.matches(system, code)).collect::<Vec<_>>();
        // (code alone: any system; system alone: any code; empty system: none of ours)
        assert_eq!(matches("https://w3id.org/openmhealth", "omh:blood-glucose:4.0"), [true, true, false]);
        assert_eq!(matches("urn:other", "omh:blood-glucose:4.0"), [true, false, false]);
        assert_eq!(matches("https://w3id.org/openmhealth", "omh:heart-rate:2.0"), [false, true, false]);
        assert_eq!(matches("", "x"), [false, false, true]);
    }

    #[test]
    fn other_resources_accept_only_their_parameters() {
        assert!(
            parse_other_query("Patient", &p(&[("identifier", "urn:x|1"), ("_has:Group:member:_id", "30001")])).is_ok()
        );
        assert!(parse_other_query("Device", &p(&[("name", "x")])).is_err());
        assert!(parse_other_query("Organization", &p(&[("name", "Life")])).is_ok());
    }
}
