//! Time frames: the OMH `time-frame-1.0`/`time-interval-1.0` and IEEE 1752 `time-frame-1.0`/`time-interval-1.0`
//! schemas, and the effective time they give.

use serde_json::Value;
use time::{Date, Duration, Month, OffsetDateTime, macros::format_description};

use super::Effective;
use super::check::{Obj, Res, UnitValue, date_time, exactly_one, full_date, one_of, unit_value};

pub(crate) const DURATION_UNITS: &[&str] = &["ps", "ns", "us", "ms", "sec", "min", "h", "d", "wk", "Mo", "yr"];
const PART_OF_DAY: &[&str] = &["morning", "afternoon", "evening", "night"];

/// Which time-interval schema applies: IEEE 1752 has no `date` + `part_of_day` form, OMH 1.0 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Ieee,
    Omh,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TimeFrame<'a> {
    DateTime(OffsetDateTime),
    Interval(Interval<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Interval<'a> {
    StartEnd(OffsetDateTime, OffsetDateTime),
    StartDuration(OffsetDateTime, UnitValue),
    EndDuration(OffsetDateTime, UnitValue),
    /// A `YYYY-MM-DD` string (not necessarily a calendar date) and a part of the day.
    PartOfDay(&'a str, &'static str),
}

/// A time frame: exactly one of `date_time` and `time_interval`.
pub(crate) fn time_frame<'a>(value: &'a Value, path: &str, flavor: Flavor) -> Res<TimeFrame<'a>> {
    let obj = Obj::new(value, path)?;
    exactly_one(
        path,
        "either date_time or time_interval",
        [
            obj.has_all(&["date_time"]).then(|| obj.req("date_time", date_time).map(TimeFrame::DateTime)),
            obj.has_all(&["time_interval"])
                .then(|| obj.req("time_interval", |v, p| time_interval(v, p, flavor)).map(TimeFrame::Interval)),
        ],
    )
}

fn time_interval<'a>(value: &'a Value, path: &str, flavor: Flavor) -> Res<Interval<'a>> {
    let obj = Obj::new(value, path)?;
    let (start, end, duration) = ("start_date_time", "end_date_time", "duration");
    let expected = match flavor {
        Flavor::Ieee => {
            "start_date_time and end_date_time, start_date_time and duration, or end_date_time and duration"
        }
        Flavor::Omh => concat!(
            "start_date_time and end_date_time, start_date_time and duration, end_date_time and duration, ",
            "or date and part_of_day"
        ),
    };
    let span = unit_value(DURATION_UNITS);
    exactly_one(
        path,
        expected,
        [
            obj.has_all(&[start, end])
                .then(|| Ok(Interval::StartEnd(obj.req(start, date_time)?, obj.req(end, date_time)?))),
            obj.has_all(&[start, duration])
                .then(|| Ok(Interval::StartDuration(obj.req(start, date_time)?, obj.req(duration, &span)?))),
            obj.has_all(&[end, duration])
                .then(|| Ok(Interval::EndDuration(obj.req(end, date_time)?, obj.req(duration, &span)?))),
            (flavor == Flavor::Omh && obj.has_all(&["date", "part_of_day"])).then(|| {
                Ok(Interval::PartOfDay(obj.req("date", full_date)?, obj.req("part_of_day", one_of(PART_OF_DAY))?))
            }),
        ],
    )
}

impl TimeFrame<'_> {
    pub(crate) fn effective(&self) -> Option<Effective> {
        let period = |start, end| Some(Effective::Period { start, end });
        match *self {
            TimeFrame::DateTime(at) => Some(Effective::Instant(at)),
            TimeFrame::Interval(Interval::StartEnd(start, end)) => period(start, end),
            TimeFrame::Interval(Interval::StartDuration(start, span)) => period(start, shift(start, span, 1)?),
            TimeFrame::Interval(Interval::EndDuration(end, span)) => period(shift(end, span, -1)?, end),
            TimeFrame::Interval(Interval::PartOfDay(date, part)) => part_of_day(date, part),
        }
    }
}

/// `at` moved by `sign` × `span`: fixed lengths up to weeks; months and years on the calendar, the day of the
/// month clamped to the month's end (and then only for whole numbers of months or years).
fn shift(at: OffsetDateTime, span: UnitValue, sign: i8) -> Option<OffsetDateTime> {
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
