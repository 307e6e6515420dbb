//! Tests of the public API: effective times, examples, data point checks and error messages.

use serde_json::{Value, json};
use time::macros::datetime;

use super::*;

const UUID: &str = "0b7e4c1e-6c2a-4c1b-9a3e-6f1d2c3b4a59";

fn frame(frame: Value) -> Option<Effective> {
    effective_time(&json!({"effective_time_frame": frame}))
}

fn interval(interval: Value) -> Option<Effective> {
    frame(json!({"time_interval": interval}))
}

fn period(start: time::OffsetDateTime, end: time::OffsetDateTime) -> Option<Effective> {
    Some(Effective::Period { start, end })
}

fn bound_and_duration(bound: &str, at: &str, value: f64, unit: &str) -> Option<Effective> {
    interval(json!({bound: at, "duration": {"value": value, "unit": unit}}))
}

#[test]
fn date_time_is_an_instant() {
    let got = frame(json!({"date_time": "2024-05-01T08:30:00-07:00"}));
    assert_eq!(got, Some(Effective::Instant(datetime!(2024-05-01 08:30:00 -7))));
}

#[test]
fn start_and_end_are_a_period() {
    let got =
        interval(json!({"start_date_time": "2024-05-01T07:00:00Z", "end_date_time": "2024-05-01T08:00:00+02:00"}));
    assert_eq!(got, period(datetime!(2024-05-01 07:00:00 UTC), datetime!(2024-05-01 08:00:00 +2)));
}

#[test]
fn start_and_fixed_duration_give_the_end() {
    let start = datetime!(2024-05-01 08:00:00 UTC);
    let cases = [
        (1.0, "ps", datetime!(2024-05-01 08:00:00 UTC)),
        (1500.0, "ns", datetime!(2024-05-01 08:00:00.0000015 UTC)),
        (250.0, "us", datetime!(2024-05-01 08:00:00.00025 UTC)),
        (1500.0, "ms", datetime!(2024-05-01 08:00:01.5 UTC)),
        (90.0, "sec", datetime!(2024-05-01 08:01:30 UTC)),
        (45.0, "min", datetime!(2024-05-01 08:45:00 UTC)),
        (1.5, "h", datetime!(2024-05-01 09:30:00 UTC)),
        (2.0, "d", datetime!(2024-05-03 08:00:00 UTC)),
        (1.0, "wk", datetime!(2024-05-08 08:00:00 UTC)),
        (-1.0, "h", datetime!(2024-05-01 07:00:00 UTC)),
    ];
    for (value, unit, end) in cases {
        assert_eq!(
            bound_and_duration("start_date_time", "2024-05-01T08:00:00Z", value, unit),
            period(start, end),
            "{value} {unit}"
        );
    }
}

#[test]
fn end_and_duration_give_the_start() {
    let got = bound_and_duration("end_date_time", "2024-05-01T08:00:00-04:00", 30.0, "min");
    assert_eq!(got, period(datetime!(2024-05-01 07:30:00 -4), datetime!(2024-05-01 08:00:00 -4)));
}

#[test]
fn months_and_years_follow_the_calendar_clamped_to_the_month_end() {
    let start = "start_date_time";
    assert_eq!(
        bound_and_duration(start, "2024-01-31T10:00:00+01:00", 1.0, "Mo"),
        period(datetime!(2024-01-31 10:00:00 +1), datetime!(2024-02-29 10:00:00 +1))
    );
    assert_eq!(
        bound_and_duration(start, "2023-11-30T00:00:00Z", 3.0, "Mo"),
        period(datetime!(2023-11-30 00:00:00 UTC), datetime!(2024-02-29 00:00:00 UTC))
    );
    assert_eq!(
        bound_and_duration(start, "2024-02-29T00:00:00Z", 1.0, "yr"),
        period(datetime!(2024-02-29 00:00:00 UTC), datetime!(2025-02-28 00:00:00 UTC))
    );
    assert_eq!(
        bound_and_duration("end_date_time", "2024-03-31T12:00:00Z", 1.0, "Mo"),
        period(datetime!(2024-02-29 12:00:00 UTC), datetime!(2024-03-31 12:00:00 UTC))
    );
    assert_eq!(
        bound_and_duration("end_date_time", "2024-01-15T12:00:00Z", 2.0, "yr"),
        period(datetime!(2022-01-15 12:00:00 UTC), datetime!(2024-01-15 12:00:00 UTC))
    );
    assert_eq!(bound_and_duration(start, "2024-01-31T10:00:00Z", 1.5, "Mo"), None, "fractional months");
    assert_eq!(bound_and_duration(start, "9999-12-01T00:00:00Z", 1.0, "yr"), None, "out of range");
}

#[test]
fn date_and_part_of_day_give_a_utc_window() {
    let cases = [
        ("night", datetime!(2024-05-01 00:00:00 UTC), datetime!(2024-05-01 06:00:00 UTC)),
        ("morning", datetime!(2024-05-01 06:00:00 UTC), datetime!(2024-05-01 12:00:00 UTC)),
        ("afternoon", datetime!(2024-05-01 12:00:00 UTC), datetime!(2024-05-01 18:00:00 UTC)),
        ("evening", datetime!(2024-05-01 18:00:00 UTC), datetime!(2024-05-02 00:00:00 UTC)),
    ];
    for (part, start, end) in cases {
        assert_eq!(interval(json!({"date": "2024-05-01", "part_of_day": part})), period(start, end), "{part}");
    }
    let new_year = interval(json!({"date": "2024-12-31", "part_of_day": "evening"}));
    assert_eq!(new_year, period(datetime!(2024-12-31 18:00:00 UTC), datetime!(2025-01-01 00:00:00 UTC)));
}

#[test]
fn absent_or_malformed_time_frames_have_no_effective_time() {
    assert_eq!(effective_time(&json!({"heart_rate": {"value": 60, "unit": "beats/min"}})), None);
    assert_eq!(effective_time(&json!("not a body")), None);
    for bad in [
        json!("2024-05-01T08:30:00Z"),
        json!({}),
        json!({"date_time": "2024-05-01T08:30:00"}),
        json!({"date_time": "2024-05-01T08:30:00Z", "time_interval": {"start_date_time": "2024-05-01T08:30:00Z", "end_date_time": "2024-05-01T09:30:00Z"}}),
        json!({"time_interval": {"start_date_time": "2024-05-01T08:30:00Z"}}),
        json!({"time_interval": {"start_date_time": "2024-05-01T08:30:00Z", "duration": {"value": 1, "unit": "hours"}}}),
        json!({"time_interval": {"start_date_time": "2024-05-01T08:30:00Z", "end_date_time": "2024-05-01T09:30:00Z", "duration": {"value": 1, "unit": "h"}}}),
        json!({"time_interval": {"date": "2024-02-30", "part_of_day": "morning"}}),
        json!({"time_interval": {"date": "2024-05-01", "part_of_day": "noon"}}),
    ] {
        assert_eq!(frame(bad.clone()), None, "{bad}");
    }
}

#[test]
fn examples_are_valid_data_points() {
    assert_eq!(supported_codes().len(), 10);
    for code in supported_codes() {
        let dp = example(code, UUID, "2024-05-01T08:30:00Z").unwrap_or_else(|| panic!("no example for {code}"));
        let checked = validate_data_point(code, &dp).unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(checked.uuid, UUID);
        assert_eq!(checked.schema_id.to_string(), *code);
        let start = datetime!(2024-05-01 08:30:00 UTC);
        let expected = match *code {
            "omh:step-count:3.0" => Effective::Period { start, end: datetime!(2024-05-02 08:30:00 UTC) },
            "omh:physical-activity:1.2" => Effective::Period { start, end: datetime!(2024-05-01 09:00:00 UTC) },
            "omh:sleep-duration:2.0" => Effective::Period { start, end: datetime!(2024-05-01 16:30:00 UTC) },
            _ => Effective::Instant(start),
        };
        assert_eq!(checked.effective, Some(expected), "{code}");
    }
    assert_eq!(example("omh:blood-glucose:3.0", UUID, "2024-05-01T08:30:00Z"), None);
    assert_eq!(example("omh:blood-glucose:4.0", UUID, "yesterday"), None);
    assert_eq!(example("omh:blood-glucose:4.0", "not-a-uuid", "2024-05-01T08:30:00Z"), None);
}

fn data_point(code: &str) -> Value {
    example(code, UUID, "2024-05-01T08:30:00Z").expect("example")
}

fn error(path: &str, message: &str) -> OmhError {
    OmhError { path: path.into(), message: message.into() }
}

#[test]
fn data_point_gives_uuid_schema_id_and_effective_time() {
    let got = validate_data_point("omh:heart-rate:2.0", &data_point("omh:heart-rate:2.0"));
    let schema_id = SchemaId { namespace: "omh".into(), name: "heart-rate".into(), version: "2.0".into() };
    let effective = Some(Effective::Instant(datetime!(2024-05-01 08:30:00 UTC)));
    assert_eq!(got, Ok(DataPoint { uuid: UUID.into(), schema_id, effective }));
}

#[test]
fn unsupported_codes_are_rejected() {
    for code in ["omh:blood-glucose:3.0", "omh:calories-burned:2.0", "blood-glucose", ""] {
        let e = validate_body(code, &json!({})).expect_err(code);
        assert_eq!(e.path, "code");
        assert!(e.message.starts_with(&format!("no validator exists for \"{code}\"")), "{e}");
        assert_eq!(validate_data_point(code, &data_point("omh:blood-glucose:4.0")).map(drop), Err(e));
    }
}

#[test]
fn header_errors_name_the_field() {
    let code = "omh:blood-glucose:4.0";
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut dp = data_point(code);
        edit(&mut dp);
        validate_data_point(code, &dp).map(drop)
    };
    assert_eq!(
        with(&|dp| drop(dp["header"].as_object_mut().map(|h| h.remove("uuid")))),
        Err(error("header.uuid", "required"))
    );
    assert_eq!(
        with(&|dp| dp["header"]["uuid"] = json!("bg-1")),
        Err(error("header.uuid", "must be a UUID, e.g. \"123e4567-e89b-12d3-a456-426614174000\""))
    );
    assert_eq!(
        with(&|dp| dp["header"]["schema_id"]["version"] = json!("4")),
        Err(error(
            "header.schema_id",
            "must be {namespace: \"omh\", name: \"blood-glucose\", version: \"4.0\"} to match the code \
             \"omh:blood-glucose:4.0\", found {namespace: \"omh\", name: \"blood-glucose\", version: \"4\"}"
        ))
    );
    assert_eq!(
        with(&|dp| dp["header"]["schema_id"]["name"] = json!(7)),
        Err(error("header.schema_id.name", "must be a string"))
    );
    assert_eq!(
        with(&|dp| drop(dp["header"].as_object_mut().map(|h| h.remove("source_creation_date_time")))),
        Err(error("header.source_creation_date_time", "required"))
    );
    assert_eq!(with(&|dp| *dp = json!([])), Err(error("data_point", "must be an object")));
    assert_eq!(with(&|dp| drop(dp.as_object_mut().map(|d| d.remove("body")))), Err(error("body", "required")));
    assert_eq!(
        with(&|dp| dp["header"]["acquisition_rate"] =
            json!({"number_of_times": 2, "time_window": {"value": 1, "unit": "day"}})),
        Err(error(
            "header.acquisition_rate.time_window.unit",
            "must be one of \"ps\", \"ns\", \"us\", \"ms\", \"sec\", \"min\", \"h\", \"d\", \"wk\", \"Mo\", \"yr\""
        ))
    );
}

#[test]
fn body_errors_name_the_field() {
    let check = |code: &str, body: Value| validate_body(code, &body).map_err(|e| e.to_string());
    let at = json!({"date_time": "2024-05-01T08:30:00Z"});
    assert_eq!(
        check(
            "omh:blood-glucose:4.0",
            json!({"blood_glucose": {"value": 5, "unit": "mg"}, "effective_time_frame": at})
        ),
        Err("body.blood_glucose.unit: must be one of \"mg/dL\", \"mmol/L\"".into())
    );
    assert_eq!(
        check(
            "omh:heart-rate:2.0",
            json!({"heart_rate": {"value": "60", "unit": "beats/min"}, "effective_time_frame": at})
        ),
        Err("body.heart_rate.value: must be a number".into())
    );
    assert_eq!(
        check("omh:blood-pressure:4.0", json!({"systolic_blood_pressure": {"value": 120, "unit": "mmHg"}})),
        Err("body.diastolic_blood_pressure: required".into())
    );
    assert_eq!(
        check("omh:step-count:3.0", json!({"step_count": {"value": 10, "unit": "steps"}, "effective_time_frame": at})),
        Err("body.effective_time_frame.time_interval: required: this schema takes a time interval, not a date_time"
            .into())
    );
    assert_eq!(
        check("omh:body-weight:3.0", json!({"body_weight": {"value": 70, "unit": "kg"}, "effective_time_frame": {"time_interval": {"date": "2024-05-01", "part_of_day": "morning"}}})),
        Err("body.effective_time_frame.time_interval: must contain start_date_time and end_date_time, start_date_time and duration, or end_date_time and duration".into())
    );
    assert_eq!(
        check("omh:respiratory-rate:2.0", json!({"respiratory_rate": {"value": 12, "unit": "breaths/min"}, "effective_time_frame": {"time_interval": {"end_date_time": "2024-05-01T08:30:00+01", "duration": {"value": 1, "unit": "h"}}}})),
        Err("body.effective_time_frame.time_interval.end_date_time: must be an RFC 3339 date-time with a UTC offset, e.g. \"2024-05-01T08:30:00Z\" or \"2024-05-01T08:30:00.5-07:00\"".into())
    );
    assert_eq!(
        check("omh:physical-activity:1.2", json!({"activity_name": "yoga", "met_value": null})),
        Err("body.met_value: must be a number".into())
    );
    assert_eq!(check("omh:oxygen-saturation:2.0", json!(null)), Err("body: must be an object".into()));
}

#[test]
fn ieee_time_frames_that_omh_finds_ambiguous_keep_their_effective_time() {
    // Valid for the IEEE time interval (start and end), ambiguous for the OMH one (also date and part_of_day).
    let body = json!({"blood_glucose": {"value": 100, "unit": "mg/dL"}, "effective_time_frame": {"time_interval": {
        "start_date_time": "2024-05-01T07:00:00Z", "end_date_time": "2024-05-01T08:00:00Z",
        "date": "2024-05-01", "part_of_day": "morning"}}});
    let expected = period(datetime!(2024-05-01 07:00:00 UTC), datetime!(2024-05-01 08:00:00 UTC));
    assert_eq!(effective_time(&body), expected);
    let mut dp = data_point("omh:blood-glucose:4.0");
    dp["body"] = body;
    assert_eq!(validate_data_point("omh:blood-glucose:4.0", &dp).map(|dp| dp.effective), Ok(expected));
}
