//! Building blocks of the validators: an object reader that tracks the JSON path of each field, and checks of
//! JSON types, value sets and string formats (RFC 3339 date-time, UUID, IRI) with the semantics JSON Schema
//! gives them.

use serde_json::{Map, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::OmhError;

pub(crate) type Res<T> = Result<T, OmhError>;

/// A JSON object being validated, and where it is.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// `path` is empty for the whole data point.
    pub(crate) fn new(value: &'a Value, path: &str) -> Res<Self> {
        match value {
            Value::Object(map) => Ok(Self { map, path: path.to_owned() }),
            _ => Err(OmhError::new(if path.is_empty() { "data_point" } else { path }, "must be an object")),
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    pub(crate) fn has_all(&self, keys: &[&str]) -> bool {
        keys.iter().all(|key| self.map.contains_key(*key))
    }

    /// Checks a required field.
    pub(crate) fn req<T>(&self, key: &str, check: impl FnOnce(&'a Value, &str) -> Res<T>) -> Res<T> {
        match self.map.get(key) {
            Some(value) => check(value, &self.path(key)),
            None => Err(OmhError::new(self.path(key), "required")),
        }
    }

    /// Checks an optional field (present but `null` is checked, and rejected, like any other value).
    pub(crate) fn opt<T>(&self, key: &str, check: impl FnOnce(&'a Value, &str) -> Res<T>) -> Res<Option<T>> {
        self.map.get(key).map(|value| check(value, &self.path(key))).transpose()
    }

    /// Checks optional string fields against their value sets.
    pub(crate) fn opt_enums(&self, fields: &[(&str, &'static [&'static str])]) -> Res<()> {
        fields.iter().try_for_each(|&(key, allowed)| self.opt(key, one_of(allowed)).map(drop))
    }
}

/// JSON Schema `oneOf` over alternatives told apart by their required keys: each alternative is `None` when one
/// of its keys is missing, else the result of checking it. Exactly one alternative must pass; when none does, the
/// error of the first one tried is the most telling.
pub(crate) fn exactly_one<T>(
    path: &str,
    expected: &str,
    alternatives: impl IntoIterator<Item = Option<Res<T>>>,
) -> Res<T> {
    let (mut passed, mut count, mut first_error) = (None, 0, None);
    for alternative in alternatives.into_iter().flatten() {
        match alternative {
            Ok(value) => {
                count += 1;
                passed.get_or_insert(value);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match passed {
        Some(value) if count == 1 => Ok(value),
        Some(_) => Err(OmhError::new(path, format!("is ambiguous: must contain exactly one of {expected}"))),
        None => Err(first_error.unwrap_or_else(|| OmhError::new(path, format!("must contain {expected}")))),
    }
}

pub(crate) fn number(value: &Value, path: &str) -> Res<f64> {
    value.as_f64().ok_or_else(|| OmhError::new(path, "must be a number"))
}

pub(crate) fn string<'a>(value: &'a Value, path: &str) -> Res<&'a str> {
    value.as_str().ok_or_else(|| OmhError::new(path, "must be a string"))
}

/// A string from a value set.
pub(crate) fn one_of(allowed: &'static [&'static str]) -> impl Fn(&Value, &str) -> Res<&'static str> {
    move |value, path| {
        let found = value.as_str().and_then(|s| allowed.iter().find(|a| **a == s));
        found.copied().ok_or_else(|| {
            let list = allowed.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
            OmhError::new(
                path,
                if allowed.len() == 1 { format!("must be {list}") } else { format!("must be one of {list}") },
            )
        })
    }
}

/// A numerical value with a unit (`unit-value` narrowed to a unit set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UnitValue {
    pub value: f64,
    pub unit: &'static str,
}

pub(crate) fn unit_value(units: &'static [&'static str]) -> impl Fn(&Value, &str) -> Res<UnitValue> {
    move |value, path| {
        let obj = Obj::new(value, path)?;
        Ok(UnitValue { value: obj.req("value", number)?, unit: obj.req("unit", one_of(units))? })
    }
}

const DATE_TIME: &str =
    "must be an RFC 3339 date-time with a UTC offset, e.g. \"2024-05-01T08:30:00Z\" or \"2024-05-01T08:30:00.5-07:00\"";

pub(crate) fn date_time(value: &Value, path: &str) -> Res<OffsetDateTime> {
    value.as_str().and_then(parse_date_time).ok_or_else(|| OmhError::new(path, DATE_TIME))
}

/// Parses an RFC 3339 `date-time` as JSON Schema's `format` checks it: `T` or `t`, optional fraction, `Z`, `z` or
/// a `±hh:mm` offset; a leap second (`:60`) only at 23:59 UTC, read as 23:59:59.999999999.
pub(crate) fn parse_date_time(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        b.get(at..at + n)?.iter().try_fold(0, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let (mut at, mut nanos) = (19, 0);
    if sep(at, b".") {
        let n = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        nanos = (0..9).fold(0, |acc, k| acc * 10 + if k < n { u32::from(b[at + 1 + k] - b'0') } else { 0 });
        at += 1 + n;
    }
    let offset_minutes = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = (h * 60 + m) as i32;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let time = if second == 60 {
        let utc_minute = ((hour * 60 + minute) as i32 - offset_minutes).rem_euclid(24 * 60);
        if utc_minute != 23 * 60 + 59 {
            return None;
        }
        Time::from_hms_nano(hour as u8, minute as u8, 59, 999_999_999)
    } else {
        Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos)
    };
    let date = Date::from_calendar_date(year as i32, Month::try_from(month as u8).ok()?, day as u8).ok()?;
    let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    Some(PrimitiveDateTime::new(date, time.ok()?).assume_offset(offset))
}

/// `YYYY-MM-DD` as the OMH `full_date` pattern has it (digits only: the pattern does not check the calendar).
pub(crate) fn full_date<'a>(value: &'a Value, path: &str) -> Res<&'a str> {
    let s = value.as_str().filter(|s| {
        s.len() == 10
            && s.bytes().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == b'-' } else { c.is_ascii_digit() })
    });
    s.ok_or_else(|| OmhError::new(path, "must be a date written YYYY-MM-DD"))
}

/// A hyphenated UUID, `8-4-4-4-12` hexadecimal digits of either case.
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// An absolute IRI with optional fragment (RFC 3987 `IRI`).
pub(crate) fn is_iri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut scheme = scheme.chars();
    if !scheme.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !scheme.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return false;
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (hier, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = match hier.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !is_iri_authority(authority) {
                return false;
            }
            path
        }
        None => hier,
    };
    iri_chars(path, "/:@", false) && iri_chars(query, "/?:@", true) && iri_chars(fragment, "/?:@", false)
}

fn is_iri_authority(authority: &str) -> bool {
    let (userinfo, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (host_ok, port) = match host_port.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((ip, after)) if after.is_empty() || after.starts_with(':') => {
                (ip.parse::<std::net::Ipv6Addr>().is_ok() || is_ip_future(ip), after.trim_start_matches(':'))
            }
            _ => return false,
        },
        None => {
            let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
            (iri_chars(host, "", false), port)
        }
    };
    host_ok && iri_chars(userinfo, ":", false) && port.bytes().all(|c| c.is_ascii_digit())
}

/// `"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`
fn is_ip_future(ip: &str) -> bool {
    let Some((version, address)) = ip.strip_prefix(['v', 'V']).and_then(|rest| rest.split_once('.')) else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|c| c.is_ascii_hexdigit())
        && !address.is_empty()
        && address.chars().all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:".contains(c))
}

/// Unreserved (with UCS characters), sub-delims, percent-encodings, `extra`, and private-use characters if allowed.
fn iri_chars(s: &str, extra: &str, private: bool) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let ok = match c {
            '%' => {
                chars.next().is_some_and(|h| h.is_ascii_hexdigit())
                    && chars.next().is_some_and(|h| h.is_ascii_hexdigit())
            }
            c if c.is_ascii() => c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=".contains(c) || extra.contains(c),
            c => {
                let u = u32::from(c);
                matches!(u, 0xA0..=0xD7FF | 0xF900..=0xFDCF | 0xFDF0..=0xFFEF)
                    || ((0x10000..=0xEFFFD).contains(&u) && u & 0xFFFF < 0xFFFE)
                    || (private && matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD))
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn date_times() {
        assert_eq!(parse_date_time("2024-05-01T08:30:00Z"), Some(datetime!(2024-05-01 08:30:00 UTC)));
        assert_eq!(
            parse_date_time("2024-05-01t08:30:00.123456789123z"),
            Some(datetime!(2024-05-01 08:30:00.123456789 UTC))
        );
        assert_eq!(parse_date_time("2024-05-01T08:30:00-07:00"), Some(datetime!(2024-05-01 08:30:00 -7)));
        assert_eq!(parse_date_time("2016-12-31T23:59:60Z"), Some(datetime!(2016-12-31 23:59:59.999999999 UTC)));
        assert_eq!(parse_date_time("2016-12-31T15:59:60-08:00"), Some(datetime!(2016-12-31 15:59:59.999999999 -8)));
        for bad in [
            "2024-05-01T08:30:00",
            "2024-05-01 08:30:00Z",
            "2024-05-01",
            "2024-02-30T08:30:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T08:30:00.Z",
            "2024-05-01T08:30:00+0700",
            "2024-05-01T08:30:00+24:00",
            "2024-05-01T08:30:60Z",
            "2024-5-01T08:30:00Z",
            "2024-05-01T08:30:00ZZ",
            "２024-05-01T08:30:00Z",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn uuids_and_iris() {
        assert!(is_uuid("0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59"));
        assert!(is_uuid("0B7E4C1E-6C2A-4C1B-9A3E-6F1D2C3B4A59"));
        assert!(!is_uuid("0b7e4c1e6c2a4c1b9a3e6f1d2c3b4a59"));
        assert!(!is_uuid("{0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59}"));
        assert!(!is_uuid("0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a5g"));
        for good in [
            "https://example.org/a/b?c=d#e",
            "urn:isbn:0451450523",
            "https://[::1]:8080/x",
            "http://例え.jp/パス",
            "mailto:a@b.c",
        ] {
            assert!(is_iri(good), "{good}");
        }
        for bad in [
            "example.org/a",
            "/relative",
            "https://exa mple.org",
            "1http://x",
            "https://x/%zz",
            "https://a@b@c/",
            "http://[::1/",
        ] {
            assert!(!is_iri(bad), "{bad}");
        }
    }
}
