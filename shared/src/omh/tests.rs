//! Tests of the public API: effective times, examples, data point checks, warnings and error messages.

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
    let naive = frame(json!({"date_time": "2024-05-01T08:30:00.25"}));
    assert_eq!(naive, Some(Effective::Instant(datetime!(2024-05-01 08:30:00.25 UTC))), "no offset: UTC, as upstream");
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
    let codes: Vec<&str> = example_codes().collect();
    assert_eq!(codes.len(), 11);
    for code in codes {
        let dp = example(code, UUID, "2024-05-01T08:30:00Z").unwrap_or_else(|| panic!("no example for {code}"));
        let checked = validate_data_point(code, &dp).unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(checked.uuid, UUID);
        assert_eq!(checked.schema_id.map(|s| s.to_string()).as_deref(), Some(code));
        assert_eq!(checked.warnings, Vec::<String>::new(), "{code}");
        let start = datetime!(2024-05-01 08:30:00 UTC);
        let expected = match code {
            "omh:step-count:3.0" => Effective::Period { start, end: datetime!(2024-05-02 08:30:00 UTC) },
            "omh:physical-activity:1.2" => Effective::Period { start, end: datetime!(2024-05-01 09:00:00 UTC) },
            "omh:sleep-duration:2.0" => Effective::Period { start, end: datetime!(2024-05-01 16:30:00 UTC) },
            _ => Effective::Instant(start),
        };
        assert_eq!(checked.effective, Some(expected), "{code}");
    }
    assert_eq!(example("omh:blood-glucose:3.0", UUID, "2024-05-01T08:30:00Z"), None, "no example body");
    assert_eq!(example("omh:blood-glucose:4.0", UUID, "yesterday"), None, "a format miss is a warning");
    assert_eq!(example("omh:blood-glucose:4.0", "not-a-uuid", "2024-05-01T08:30:00Z"), None);
}

#[test]
fn every_shipped_schema_compiles() {
    let urls = schema_urls();
    assert!(urls.len() > 150, "{} schemas", urls.len());
    for url in &urls {
        schemas::checker(url).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn data_point(code: &str) -> Value {
    example(code, UUID, "2024-05-01T08:30:00Z").expect("example")
}

fn with(code: &str, edit: impl Fn(&mut Value)) -> Result<DataPoint, OmhError> {
    let mut dp = data_point(code);
    edit(&mut dp);
    validate_data_point(code, &dp)
}

#[test]
fn a_data_point_gives_uuid_schema_id_and_effective_time() {
    let got = validate_data_point("omh:heart-rate:2.0", &data_point("omh:heart-rate:2.0"));
    let schema_id = Some(SchemaId { namespace: "omh".into(), name: "heart-rate".into(), version: "2.0".into() });
    let effective = Some(Effective::Instant(datetime!(2024-05-01 08:30:00 UTC)));
    assert_eq!(got, Ok(DataPoint { uuid: UUID.into(), schema_id, effective, warnings: vec![] }));
}

#[test]
fn codes_without_a_shipped_schema_are_refused() {
    for code in ["omh:blood-glucose:9.0", "omh:calories-burned:7.0", "blood-glucose", "loinc:1234-5:1", ""] {
        let e = validate_data_point(code, &data_point("omh:blood-glucose:4.0")).expect_err(code);
        assert_eq!(e.path, "code", "{code}");
        assert!(e.message.contains("no Open mHealth or IEEE 1752 schema"), "{e}");
        assert!(!has_schema(code));
    }
    for code in ["omh:rr-interval:1.0", "ieee:sleep-stage-summary:1.0", "ieee:food-entry:0.1", "omh:blood-glucose:1.0"]
    {
        assert!(has_schema(code), "{code}");
    }
}

#[test]
fn schema_violations_are_refused_with_the_field_named() {
    let bg = "omh:blood-glucose:4.0";
    let refused = |r: Result<DataPoint, OmhError>| r.map(|p| p.warnings).expect_err("refused");
    let e = refused(with(bg, |dp| drop(dp["header"].as_object_mut().map(|h| h.remove("uuid")))));
    assert_eq!(e.path, "header", "{e}");
    assert!(e.message.contains("\"uuid\" is a required property"), "{e}");
    let e = refused(with(bg, |dp| dp["body"]["blood_glucose"]["unit"] = json!("mg")));
    assert_eq!(e.path, "body.blood_glucose.unit", "{e}");
    let e = refused(with(bg, |dp| dp["body"]["blood_glucose"]["value"] = json!("110")));
    assert_eq!(e.path, "body.blood_glucose.value", "{e}");
    assert!(e.message.contains("is not of type"), "{e}");
    let e = refused(with(bg, |dp| drop(dp["body"].as_object_mut().map(|b| b.remove("blood_glucose")))));
    assert_eq!(e.path, "body", "{e}");
    let e = refused(with(bg, |dp| dp["header"]["modality"] = json!("guessed")));
    assert_eq!(e.path, "header.modality", "{e}");
    let e = refused(with(bg, |dp| dp["header"]["schema_id"]["name"] = json!(7)));
    assert_eq!(e.path, "header.schema_id.name", "{e}");
    let e = refused(with(bg, |dp| *dp = json!([])));
    assert_eq!(e.path, "data_point", "{e}");
    let e = refused(with(bg, |dp| drop(dp.as_object_mut().map(|d| d.remove("body")))));
    assert_eq!(e.path, "body", "{e}");
    let e = refused(with("omh:step-count:3.0", |dp| {
        dp["body"]["effective_time_frame"] = json!({"date_time": "2024-05-01T08:30:00Z"})
    }));
    assert!(e.path.starts_with("body.effective_time_frame"), "a time interval is required: {e}");
    let e = refused(with(bg, |dp| dp["header"]["external_datasheets"] = json!([{"datasheet_type": "manufacturer"}])));
    assert!(e.message.contains("\"datasheet_reference\" is a required property"), "{e}");
}

#[test]
fn format_misses_are_warnings_not_refusals() {
    let bg = "omh:blood-glucose:4.0";
    let warned = |edit: &dyn Fn(&mut Value)| with(bg, edit).map(|p| p.warnings).expect("accepted");
    let w = warned(&|dp| {
        dp["header"]["external_datasheets"] =
            json!([{"datasheet_type": "manufacturer", "datasheet_reference": "iHealth"}])
    });
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("header.external_datasheets[0].datasheet_reference: "), "{w:?}");
    let w = warned(&|dp| dp["header"]["uuid"] = json!("bg-1"));
    assert!(w.iter().any(|w| w.starts_with("header.uuid: ")), "{w:?}");
    let w = warned(&|dp| dp["header"]["source_creation_date_time"] = json!("yesterday"));
    assert!(w.iter().any(|w| w.starts_with("header.source_creation_date_time: ")), "{w:?}");
    assert_eq!(with(bg, |dp| dp["header"]["uuid"] = json!("bg-1")).map(|p| p.uuid), Ok("bg-1".to_string()));
}

#[test]
fn an_unreadable_time_frame_is_accepted_without_an_effective_time() {
    let p = with("omh:heart-rate:2.0", |dp| dp["body"]["effective_time_frame"] = json!({"date_time": "soon"}))
        .expect("accepted: the format is an annotation");
    assert_eq!(p.effective, None);
    assert!(p.warnings.iter().any(|w| w.starts_with("body.effective_time_frame: cannot be read")), "{:?}", p.warnings);
    assert!(p.warnings.iter().any(|w| w.starts_with("body.effective_time_frame.date_time: ")), "{:?}", p.warnings);
}

#[test]
fn a_schema_id_other_than_the_code_is_a_warning() {
    let p = with("omh:heart-rate:2.0", |dp| dp["header"]["schema_id"]["version"] = json!("1.0")).expect("accepted");
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("header.schema_id: names omh:heart-rate:1.0"), "{:?}", p.warnings);
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

#[test]
fn dotted_paths() {
    assert_eq!(dotted("body", ""), "body");
    assert_eq!(
        dotted("header", "/external_datasheets/0/datasheet_reference"),
        "header.external_datasheets[0].datasheet_reference"
    );
    assert_eq!(dotted("body", "/a~1b/c~0d"), "body.a/b.c~d");
}
