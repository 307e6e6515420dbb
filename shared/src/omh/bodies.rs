//! One validator per supported Open mHealth schema, the value sets they draw on, and an example body for each.

use serde_json::{Value, json};

use super::check::{Obj, Res, number, string, unit_value};
use super::time_frame::{Flavor, time_frame};
use super::{Effective, OmhError, SchemaId};

/// A supported schema.
pub(crate) struct Schema {
    /// The FHIR coding code, `omh:<name>:<version>`.
    pub code: &'static str,
    frame: Frame,
    /// Checks every property but `effective_time_frame`.
    fields: fn(&Obj) -> Res<()>,
    /// A valid body whose time frame starts at the given date-time.
    pub example: fn(&str) -> Value,
}

/// How a schema takes `effective_time_frame`.
#[derive(Clone, Copy)]
enum Frame {
    /// Required, IEEE 1752 `time-frame-1.0` (no `date` + `part_of_day`).
    Ieee,
    /// Required, OMH `time-frame-1.x`.
    Omh,
    /// Optional, OMH `time-frame-1.x`.
    OmhOptional,
    /// Required, OMH `time-frame-1.x` with a `time_interval`.
    OmhInterval,
}

const SCHEMAS: &[Schema] = &[
    Schema {
        code: "omh:blood-glucose:4.0",
        frame: Frame::Ieee,
        fields: blood_glucose,
        example: |t| {
            json!({
                "blood_glucose": {"value": 110, "unit": "mg/dL"},
                "specimen_source": "capillary blood",
                "temporal_relationship_to_meal": "fasting",
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:blood-pressure:4.0",
        frame: Frame::Ieee,
        fields: blood_pressure,
        example: |t| {
            json!({
                "systolic_blood_pressure": {"value": 122, "unit": "mmHg"},
                "diastolic_blood_pressure": {"value": 78, "unit": "mmHg"},
                "body_posture": "sitting",
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:heart-rate:2.0",
        frame: Frame::Omh,
        fields: heart_rate,
        example: |t| {
            json!({
                "heart_rate": {"value": 62, "unit": "beats/min"},
                "temporal_relationship_to_physical_activity": "at rest",
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:body-temperature:4.0",
        frame: Frame::Ieee,
        fields: body_temperature,
        example: |t| {
            json!({
                "body_temperature": {"value": 36.8, "unit": "C"},
                "measurement_location": "oral",
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:oxygen-saturation:2.0",
        frame: Frame::Omh,
        fields: oxygen_saturation,
        example: |t| {
            json!({
                "oxygen_saturation": {"value": 97, "unit": "%"},
                "system": "peripheral capillary",
                "measurement_method": "pulse oximetry",
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:respiratory-rate:2.0",
        frame: Frame::Omh,
        fields: respiratory_rate,
        example: |t| {
            json!({
                "respiratory_rate": {"value": 14, "unit": "breaths/min"},
                "effective_time_frame": {"date_time": t},
            })
        },
    },
    Schema {
        code: "omh:body-weight:3.0",
        frame: Frame::Ieee,
        fields: body_weight,
        example: |t| json!({"body_weight": {"value": 70.5, "unit": "kg"}, "effective_time_frame": {"date_time": t}}),
    },
    Schema {
        code: "omh:step-count:3.0",
        frame: Frame::OmhInterval,
        fields: step_count,
        example: |t| {
            json!({
                "step_count": {"value": 5400, "unit": "steps"},
                "effective_time_frame": interval(t, 1, "d"),
            })
        },
    },
    Schema {
        code: "omh:physical-activity:1.2",
        frame: Frame::OmhOptional,
        fields: physical_activity,
        example: |t| {
            json!({
                "activity_name": "walking",
                "distance": {"value": 2.4, "unit": "km"},
                "kcal_burned": {"value": 160, "unit": "kcal"},
                "reported_activity_intensity": "moderate",
                "effective_time_frame": interval(t, 30, "min"),
            })
        },
    },
    Schema {
        code: "omh:sleep-duration:2.0",
        frame: Frame::OmhInterval,
        fields: sleep_duration,
        example: |t| {
            json!({
                "sleep_duration": {"value": 7.5, "unit": "h"},
                "effective_time_frame": interval(t, 8, "h"),
            })
        },
    },
];

fn interval(start: &str, value: u32, unit: &str) -> Value {
    json!({"time_interval": {"start_date_time": start, "duration": {"value": value, "unit": unit}}})
}

pub(crate) static CODES: [&str; SCHEMAS.len()] = {
    let mut codes = [""; SCHEMAS.len()];
    let mut i = 0;
    while i < codes.len() {
        codes[i] = SCHEMAS[i].code;
        i += 1;
    }
    codes
};

pub(crate) fn find(code: &str) -> Res<&'static Schema> {
    SCHEMAS.iter().find(|schema| schema.code == code).ok_or_else(|| {
        OmhError::new("code", format!("no validator exists for \"{code}\"; supported: {}", CODES.join(", ")))
    })
}

/// The `schema_id` a supported `code` stands for.
pub(crate) fn schema_id(code: &str) -> SchemaId {
    let mut parts = code.splitn(3, ':').map(str::to_owned);
    let mut next = || parts.next().unwrap_or_default();
    SchemaId { namespace: next(), name: next(), version: next() }
}

impl Schema {
    /// Checks a body; gives its effective time (`None` only where the schema makes the time frame optional).
    pub(crate) fn validate(&self, body: &Value, path: &str) -> Res<Option<Effective>> {
        let body = Obj::new(body, path)?;
        (self.fields)(&body)?;
        let flavor = if matches!(self.frame, Frame::Ieee) { Flavor::Ieee } else { Flavor::Omh };
        let frame = |value: &Value, path: &str| {
            let frame = time_frame(value, path, flavor)?;
            match self.frame {
                // The schema adds `"required": ["time_interval"]` to the time frame.
                Frame::OmhInterval if value.get("time_interval").is_none() => Err(OmhError::new(
                    format!("{path}.time_interval"),
                    "required: this schema takes a time interval, not a date_time",
                )),
                _ => Ok(frame.effective()),
            }
        };
        match self.frame {
            Frame::OmhOptional => Ok(body.opt("effective_time_frame", frame)?.flatten()),
            _ => body.req("effective_time_frame", frame),
        }
    }
}

// Value sets, named after the schema (and version) they come from.

/// IEEE 1752 `descriptive-statistic-1.0`, same values as OMH `descriptive-statistic-1.2`.
const DESCRIPTIVE_STATISTIC: &[&str] = &[
    "average",
    "count",
    "maximum",
    "median",
    "minimum",
    "standard deviation",
    "sum",
    "variance",
    "20th percentile",
    "80th percentile",
    "lower quartile",
    "upper quartile",
    "quartile deviation",
    "1st quintile",
    "2nd quintile",
    "3rd quintile",
    "4th quintile",
];
/// OMH `descriptive-statistic-1.0` (step-count 3.0 refers to this version).
const DESCRIPTIVE_STATISTIC_1_0: &[&str] =
    &["average", "maximum", "minimum", "standard deviation", "variance", "sum", "median"];
/// OMH `specimen-source-2.1`.
const SPECIMEN_SOURCE: &[&str] =
    &["breath", "capillary blood", "interstitial fluid", "saliva", "sweat", "tears", "urine"];
/// OMH `temporal-relationship-to-meal-1.2`.
const MEAL: &[&str] = &[
    "fasting",
    "not fasting",
    "before meal",
    "after meal",
    "before breakfast",
    "after breakfast",
    "before lunch",
    "after lunch",
    "before dinner",
    "after dinner",
    "2 hours postprandial",
    "with meal",
    "with food",
];
/// OMH `temporal-relationship-to-sleep-1.0`.
const SLEEP: &[&str] = &["before sleeping", "during sleep", "on waking"];
/// OMH `temporal-relationship-to-physical-activity-1.0`.
const PHYSICAL_ACTIVITY: &[&str] = &["at rest", "active", "before exercise", "after exercise", "during exercise"];
/// IEEE 1752 `body-posture-1.0`.
const BODY_POSTURE: &[&str] = &["sitting", "lying down", "standing", "semi-recumbent"];
/// OMH `body-location-1.1`.
const BODY_LOCATION: &[&str] = &[
    "left ankle",
    "right ankle",
    "left hip",
    "right hip",
    "left thigh",
    "right thigh",
    "left thorax",
    "middle left thorax",
    "left upper arm",
    "right upper arm",
    "left wrist",
    "right wrist",
];
/// `measurement_location` of body-temperature 4.0.
const TEMPERATURE_LOCATION: &[&str] =
    &["axillary", "finger", "forehead", "oral", "rectal", "temporal artery", "toe", "tympanic", "wrist", "vagina"];
/// OMH `mass-unit-value-1.0`.
const MASS_UNITS: &[&str] = &["fg", "pg", "ng", "ug", "mg", "g", "kg", "Metric Ton", "gr", "oz", "lb", "Ton"];
/// OMH `length-unit-value-1.0`.
const LENGTH_UNITS: &[&str] = &["fm", "pm", "nm", "um", "mm", "cm", "m", "km", "in", "ft", "yd", "mi"];

fn blood_glucose(body: &Obj) -> Res<()> {
    body.req("blood_glucose", unit_value(&["mg/dL", "mmol/L"]))?;
    body.opt_enums(&[
        ("specimen_source", SPECIMEN_SOURCE),
        ("temporal_relationship_to_meal", MEAL),
        ("temporal_relationship_to_sleep", SLEEP),
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
    ])
}

fn blood_pressure(body: &Obj) -> Res<()> {
    body.req("systolic_blood_pressure", unit_value(&["mmHg"]))?;
    body.req("diastolic_blood_pressure", unit_value(&["mmHg"]))?;
    body.opt_enums(&[
        ("body_posture", BODY_POSTURE),
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
        ("measurement_location", BODY_LOCATION),
        ("temporal_relationship_to_physical_activity", PHYSICAL_ACTIVITY),
    ])
}

fn heart_rate(body: &Obj) -> Res<()> {
    body.req("heart_rate", unit_value(&["beats/min"]))?;
    body.opt_enums(&[
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
        ("temporal_relationship_to_physical_activity", PHYSICAL_ACTIVITY),
        ("temporal_relationship_to_sleep", SLEEP),
    ])
}

fn body_temperature(body: &Obj) -> Res<()> {
    body.req("body_temperature", unit_value(&["K", "F", "C"]))?;
    body.opt_enums(&[
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
        ("measurement_location", TEMPERATURE_LOCATION),
        ("temporal_relationship_to_sleep", SLEEP),
    ])
}

fn oxygen_saturation(body: &Obj) -> Res<()> {
    body.req("oxygen_saturation", unit_value(&["%"]))?;
    body.opt("supplemental_oxygen_flow_rate", unit_value(&["L/min"]))?;
    body.opt_enums(&[
        ("system", &["peripheral capillary"]),
        ("oxygen_therapy_mode_of_administration", &["nasal cannula"]),
        ("measurement_method", &["pulse oximetry"]),
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
    ])
}

fn respiratory_rate(body: &Obj) -> Res<()> {
    body.req("respiratory_rate", unit_value(&["breaths/min"]))?;
    body.opt_enums(&[
        ("descriptive_statistic", DESCRIPTIVE_STATISTIC),
        ("temporal_relationship_to_physical_activity", PHYSICAL_ACTIVITY),
    ])
}

fn body_weight(body: &Obj) -> Res<()> {
    body.req("body_weight", unit_value(MASS_UNITS))?;
    body.opt_enums(&[("descriptive_statistic", DESCRIPTIVE_STATISTIC)])
}

fn step_count(body: &Obj) -> Res<()> {
    body.req("step_count", unit_value(&["steps"]))?;
    body.opt_enums(&[("descriptive_statistic", DESCRIPTIVE_STATISTIC_1_0)])?;
    // `anyOf` a denominator value set and any string: any string.
    body.opt("descriptive_statistic_denominator", string).map(drop)
}

fn physical_activity(body: &Obj) -> Res<()> {
    body.req("activity_name", string)?;
    body.opt("distance", unit_value(LENGTH_UNITS))?;
    body.opt("kcal_burned", unit_value(&["kcal"]))?;
    body.opt_enums(&[("reported_activity_intensity", &["light", "moderate", "vigorous"])])?;
    body.opt("met_value", number).map(drop)
}

fn sleep_duration(body: &Obj) -> Res<()> {
    // `duration-unit-value` narrowed to seconds, minutes and hours.
    body.req("sleep_duration", unit_value(&["sec", "min", "h"]))?;
    body.opt_enums(&[("descriptive_statistic", DESCRIPTIVE_STATISTIC)])?;
    body.opt("descriptive_statistic_denominator", string).map(drop)
}
