//! Wire conventions of the admin API: camelCase or snake_case keys in (normalised to snake_case),
//! DRF-style pages out (`{count, next, previous, results}` with absolute links).

use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::ReqUrl;
use crate::domain::admin::input::Params;
use crate::error::Error;

/// `organizationId` -> `organization_id`; keys without capitals are unchanged.
pub fn snake(k: &str) -> String {
    if !k.bytes().any(|b| b.is_ascii_uppercase()) {
        return k.to_string();
    }
    let mut out = String::with_capacity(k.len() + 4);
    for (i, ch) in k.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Converts every object key of a request body to snake_case, recursively.
pub fn snake_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (snake(&k), snake_keys(v))).collect::<Map<_, _>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 1000;

/// One DRF page of `items`. `fixed`: a page size the client cannot change (upstream's default
/// paginator, 1000); otherwise `pageSize` (default 20, at most 1000).
pub fn page(items: Vec<Value>, q: &Params, url: &ReqUrl, fixed: Option<usize>) -> ApiResult<Value> {
    let size = match fixed {
        Some(f) => f,
        None => page_size(q)?,
    };
    let page = page_number(q)?;
    let count = items.len();
    let results: Vec<Value> = items.into_iter().skip(page.saturating_sub(1).saturating_mul(size)).take(size).collect();
    drf_page(results, count, page, size, url)
}

/// `pageSize` (default 20, at most 1000; not a number: 400).
pub fn page_size(q: &Params) -> ApiResult<usize> {
    match q.get("page_size") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(s) => Ok(s
            .parse::<usize>()
            .map_err(|_| ApiError(Error::bad("pageSize must be a positive integer.")))?
            .clamp(1, MAX_PAGE_SIZE)),
    }
}

/// `page` (default 1; not a page: upstream's 404 "Invalid page.").
pub fn page_number(q: &Params) -> ApiResult<usize> {
    match q.get("page") {
        None => Ok(1),
        Some(s) => s.parse().ok().filter(|p| *p >= 1).ok_or_else(|| ApiError(Error::NotFound("Invalid page.".into()))),
    }
}

/// The DRF page `page` (of `size`) holding `results`, of `count` in all; past the last: 404.
pub fn drf_page(results: Vec<Value>, count: usize, page: usize, size: usize, url: &ReqUrl) -> ApiResult<Value> {
    let pages = count.div_ceil(size).max(1);
    if page < 1 || page > pages {
        return Err(ApiError(Error::NotFound("Invalid page.".into())));
    }
    let link = |p: usize| Value::String(url.with_param("page", &p.to_string()));
    Ok(json!({
        "count": count,
        "next": if page < pages { link(page + 1) } else { Value::Null },
        "previous": if page > 1 { link(page - 1) } else { Value::Null },
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_becomes_snake() {
        assert_eq!(snake("organizationId"), "organization_id");
        assert_eq!(snake("organization_id"), "organization_id");
        assert_eq!(snake("jheUserId"), "jhe_user_id");
        assert_eq!(snake("client_id"), "client_id");
        let v = snake_keys(json!({"studyScopeConsents": [{"studyId": 1, "scopeConsents": [{"codingCode": "x"}]}]}));
        assert_eq!(v["study_scope_consents"][0]["scope_consents"][0]["coding_code"], "x");
    }
}
