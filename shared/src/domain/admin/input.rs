//! Reading request fields with clear 400s. Keys arrive already in snake_case (the HTTP layer
//! converts camelCase), so every lookup names the snake_case key.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::Id;

/// A JSON object body.
#[derive(Debug, Clone, Default)]
pub struct Body(pub Map<String, Value>);

/// Query parameters (snake_case keys).
pub type Params = BTreeMap<String, String>;

pub(crate) fn camel(k: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in k.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

impl Body {
    pub fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Object(m) => Ok(Self(m)),
            Value::Null => Ok(Self::default()),
            _ => Err(Error::bad("The request body must be a JSON object.")),
        }
    }

    /// No field at all (an empty or absent body).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| !v.is_null())
    }

    /// Refuses fields outside `allowed` (for writes where a stray field would be ignored silently
    /// in a way that matters, such as privilege fields).
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        let unknown: Vec<String> = self.0.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| camel(k)).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::bad(format!("Unknown or read-only field(s): {}.", unknown.join(", "))))
        }
    }

    pub fn opt_str(&self, k: &str) -> Result<Option<String>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::bad(format!("{} must be a string.", camel(k)))),
        }
    }

    pub fn req_str(&self, k: &str) -> Result<String> {
        match self.opt_str(k)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::bad(format!("{} is required.", camel(k)))),
        }
    }

    /// An id given as a JSON number or a numeric string.
    pub fn opt_id(&self, k: &str) -> Result<Option<Id>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => id_of(v).map(Some).ok_or_else(|| Error::bad(format!("{} must be an integer id.", camel(k)))),
        }
    }

    pub fn req_id(&self, k: &str) -> Result<Id> {
        self.opt_id(k)?.ok_or_else(|| Error::bad(format!("{} is required.", camel(k))))
    }

    pub fn id_list(&self, k: &str) -> Result<Vec<Id>> {
        match self.0.get(k) {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|v| id_of(v).ok_or_else(|| Error::bad(format!("{} must be a list of integer ids.", camel(k)))))
                .collect(),
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                Err(Error::bad(format!("{} is required (a non-empty list of ids).", camel(k))))
            }
            Some(_) => Err(Error::bad(format!("{} must be a list of integer ids.", camel(k)))),
        }
    }

    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::bad(format!("{} must be true or false.", camel(k)))),
        }
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
}

pub fn id_of(v: &Value) -> Option<Id> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional id query parameter; a non-integer is a 400.
pub fn param_id(p: &Params, k: &str) -> Result<Option<Id>> {
    match p.get(k).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| Error::bad(format!("{} must be an integer id.", camel(k)))),
    }
}

/// A lenient email check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    !local.is_empty()
        && e.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn valid_date(d: &str) -> bool {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    d.len() == 10 && time::Date::parse(d, &fmt).is_ok()
}

/// A required, trimmed, bounded text field.
pub fn text(s: String, field: &str, max: usize) -> Result<String> {
    let t = s.trim().to_string();
    if t.is_empty() {
        return Err(Error::bad(format!("{field} must not be blank.")));
    }
    if t.chars().count() > max {
        return Err(Error::bad(format!("{field} is longer than {max} characters.")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_dates() {
        assert!(valid_email("p@example.com"));
        assert!(!valid_email("p@example"));
        assert!(!valid_email("p example@x.com"));
        assert!(!valid_email("@x.com"));
        assert!(valid_date("1990-05-15"));
        assert!(!valid_date("1990-02-30"));
        assert!(!valid_date("15/05/1990"));
    }

    #[test]
    fn ids_accept_numbers_and_numeric_strings_only() {
        let b = Body::from_value(serde_json::json!({"a": 5, "b": "6", "c": "x", "d": 1.5})).expect("object");
        assert_eq!(b.opt_id("a").expect("a"), Some(5));
        assert_eq!(b.opt_id("b").expect("b"), Some(6));
        assert!(b.opt_id("c").is_err());
        assert!(b.opt_id("d").is_err());
        assert!(b.only(&["a", "b", "c"]).is_err());
    }
}
