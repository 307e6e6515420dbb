//! Example bodies, one per common data type: test data, the demo seed and the load tool's uploads.
//! They are not validators: `example` checks each against the official schema like any upload.

use serde_json::{Value, json};

fn interval(start: &str, value: u32, unit: &str) -> Value {
    json!({"time_interval": {"start_date_time": start, "duration": {"value": value, "unit": unit}}})
}

/// (code, a body whose time frame starts at the given date-time)
/// A body whose time frame starts at the given date-time.
type Body = fn(&str) -> Value;

pub(crate) const BODIES: &[(&str, Body)] = &[
    ("omh:blood-glucose:4.0", |t| {
        json!({
            "blood_glucose": {"value": 110, "unit": "mg/dL"},
            "specimen_source": "capillary blood",
            "temporal_relationship_to_meal": "fasting",
            "effective_time_frame": {"date_time": t},
        })
    }),
    ("omh:blood-pressure:4.0", |t| {
        json!({
            "systolic_blood_pressure": {"value": 122, "unit": "mmHg"},
            "diastolic_blood_pressure": {"value": 78, "unit": "mmHg"},
            "body_posture": "sitting",
            "effective_time_frame": {"date_time": t},
        })
    }),
    ("omh:heart-rate:2.0", |t| {
        json!({
            "heart_rate": {"value": 62, "unit": "beats/min"},
            "temporal_relationship_to_physical_activity": "at rest",
            "effective_time_frame": {"date_time": t},
        })
    }),
    ("omh:body-temperature:4.0", |t| {
        json!({
            "body_temperature": {"value": 36.8, "unit": "C"},
            "measurement_location": "oral",
            "effective_time_frame": {"date_time": t},
        })
    }),
    ("omh:oxygen-saturation:2.0", |t| {
        json!({
            "oxygen_saturation": {"value": 97, "unit": "%"},
            "system": "peripheral capillary",
            "measurement_method": "pulse oximetry",
            "effective_time_frame": {"date_time": t},
        })
    }),
    (
        "omh:respiratory-rate:2.0",
        |t| json!({"respiratory_rate": {"value": 14, "unit": "breaths/min"}, "effective_time_frame": {"date_time": t}}),
    ),
    (
        "omh:rr-interval:1.0",
        |t| json!({"rr_interval": {"value": 812, "unit": "ms"}, "effective_time_frame": {"date_time": t}}),
    ),
    (
        "omh:body-weight:3.0",
        |t| json!({"body_weight": {"value": 70.5, "unit": "kg"}, "effective_time_frame": {"date_time": t}}),
    ),
    (
        "omh:step-count:3.0",
        |t| json!({"step_count": {"value": 5400, "unit": "steps"}, "effective_time_frame": interval(t, 1, "d")}),
    ),
    ("omh:physical-activity:1.2", |t| {
        json!({
            "activity_name": "walking",
            "distance": {"value": 2.4, "unit": "km"},
            "kcal_burned": {"value": 160, "unit": "kcal"},
            "reported_activity_intensity": "moderate",
            "effective_time_frame": interval(t, 30, "min"),
        })
    }),
    (
        "omh:sleep-duration:2.0",
        |t| json!({"sleep_duration": {"value": 7.5, "unit": "h"}, "effective_time_frame": interval(t, 8, "h")}),
    ),
];
