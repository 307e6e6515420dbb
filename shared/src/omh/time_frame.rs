//! Times in data points: RFC 3339 date-times, UUIDs, and the effective time a body's
//! `effective_time_frame` gives (OMH `time-frame-1.x` and IEEE 1752 `time-frame-1.0`). This is what
//! the server derives and keys observations by; whether a data point is valid is the JSON schemas'
//! decision (`schemas`), so the derivation is lenient and answers `None` for what it cannot read.

use serde_json::Value;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, macros::format_description};

use super::Effective;

/// A duration's value and unit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span<'a> {
    value: f64,
    unit: &'a str,
}

fn span(v: &Value) -> Option<Span<'_>> {
    Some(Span { value: v.get("value")?.as_f64()?, unit: v.get("unit")?.as_str()? })
}

/// A date-time of a time frame: RFC 3339, or (as upstream reads them) without an offset, taken as UTC.
fn instant(v: &Value) -> Option<OffsetDateTime> {
    let s = v.as_str()?;
    parse_date_time(s).or_else(|| {
        let naive = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");
        PrimitiveDateTime::parse(s, naive).ok().map(PrimitiveDateTime::assume_utc)
    })
}

/// The effective time of a body, from `body.effective_time_frame`: a `date_time` gives an instant; a
/// `time_interval` gives a period from its start and end, from a bound and a duration, or from a `date` and a
/// `part_of_day` (UTC: night 00-06, morning 06-12, afternoon 12-18, evening 18-24). Of the forms present, the
/// one that can be read is taken (the schemas' `oneOf` lets a malformed other form stand beside it), a date
/// and part of the day only when no date-time form can be; `None` when none can be read, or when more than one
/// date-time form can (ambiguous).
pub fn effective_time(body: &Value) -> Option<Effective> {
    let frame = body.get("effective_time_frame")?;
    let instant_form = frame.get("date_time").and_then(instant).map(Effective::Instant);
    let iv = frame.get("time_interval");
    let field = |k: &str| iv.and_then(|iv| iv.get(k));
    let (start, end) = (field("start_date_time").and_then(instant), field("end_date_time").and_then(instant));
    let duration = field("duration").and_then(span);
    let period = |start, end| Some(Effective::Period { start, end });
    let bounded = [
        instant_form,
        start.zip(end).and_then(|(s, e)| period(s, e)),
        start.zip(duration).and_then(|(s, d)| period(s, shift(s, d, 1)?)),
        end.zip(duration).and_then(|(e, d)| period(shift(e, d, -1)?, e)),
    ];
    let mut readable = bounded.into_iter().flatten();
    match (readable.next(), readable.next()) {
        (Some(one), None) => Some(one),
        (Some(_), Some(_)) => None,
        // Only OMH 1.x has the `date` + `part_of_day` form; IEEE 1752 reads the bounds beside it.
        (None, _) => {
            let (date, part) = (field("date")?.as_str()?, field("part_of_day")?.as_str()?);
            part_of_day(date, part)
        }
    }
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

/// A hyphenated UUID, `8-4-4-4-12` hexadecimal digits of either case.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// `at` moved by `sign` × `span`: fixed lengths up to weeks; months and years on the calendar, the day of the
/// month clamped to the month's end (and then only for whole numbers of months or years).
fn shift(at: OffsetDateTime, span: Span<'_>, sign: i8) -> Option<OffsetDateTime> {
    let value = span.value * f64::from(sign);
    let seconds = match span.unit {
        "ps" => 1e-12,
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "sec" => 1.0,
        "min" => 60.0,
        "h" => 3_600.0,
        "d" => 86_400.0,
        "wk" => 604_800.0,
        "Mo" => return add_months(at, value),
        "yr" => return add_months(at, value * 12.0),
        _ => return None,
    };
    at.checked_add(Duration::checked_seconds_f64(value * seconds)?)
}

fn add_months(at: OffsetDateTime, months: f64) -> Option<OffsetDateTime> {
    if months.fract() != 0.0 || months.abs() > 1e6 {
        return None;
    }
    let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months as i64;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, at.day().min(month.length(year))).ok()?;
    Some(at.replace_date(date))
}

/// The UTC window of a part of a day.
fn part_of_day(date: &str, part: &str) -> Option<Effective> {
    let date = Date::parse(date, format_description!("[year]-[month]-[day]")).ok()?;
    let (from, to) = match part {
        "night" => (0, 6),
        "morning" => (6, 12),
        "afternoon" => (12, 18),
        "evening" => (18, 24),
        _ => return None,
    };
    let at = |hour: u8| {
        let moment = if hour == 24 { date.next_day()?.midnight() } else { date.with_hms(hour, 0, 0).ok()? };
        Some(moment.assume_utc())
    };
    Some(Effective::Period { start: at(from)?, end: at(to)? })
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
}
