//! The admin REST API routers (`/api/v1/...`), in four route groups. Handlers only extract,
//! call one service in `domain::admin`, and shape the status.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Query, ReqUrl};
use super::wire::page;
use crate::domain::Caller;
use crate::domain::admin::consents::ConsentWrite;
use crate::domain::admin::{catalog, consents, invitations, orgs, patients, studies, users};
use crate::error::Error;
use crate::model::GoneAccount;

/// What an admin handler answers: a JSON body, or an `ApiError`.
type JsonAnswer = ApiResult<Json<Value>>;
use super::audit::{Slot, note};

/// Notes the patients of a list of admin-API patient objects.
fn note_patients(slot: &Slot, items: &[Value]) {
    note(slot, |n| {
        n.resource_type = Some("Patient".into());
        n.count = Some(items.len());
        n.patients.extend(items.iter().filter_map(|p| p["id"].as_i64()));
    });
}

/// Notes the studies and scopes of a consent write.
/// Notes the decisions a consent write made (after it was validated and authorized: a refused
/// write records the patient, not what the body claimed).
fn note_consents(slot: &Slot, patient: i64, written: &Value) {
    note(slot, |n| {
        for e in written["studyScopeConsents"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let (Some(st), Some(code)) = (e["studyPatient"]["study"].as_i64(), e["scopeCode"]["codingCode"].as_str())
            else {
                continue;
            };
            n.grants.insert((patient, st, format!("{code}={}", e["consented"])));
        }
    });
}

pub(super) fn id(s: &str) -> Result<i64, ApiError> {
    s.parse().map_err(|_| ApiError(Error::not_found()))
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn users_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    let items = users::list(&s.repo, &c, q.get("email").map(String::as_str)).await?;
    Ok(Json(page(items, &q, &url, None)?))
}
pub(super) async fn users_profile(State(s): State<AppState>, c: Caller) -> JsonAnswer {
    Ok(Json(users::profile(&s.repo, &c).await?))
}
pub(super) async fn users_orgs(State(s): State<AppState>, c: Caller) -> JsonAnswer {
    Ok(Json(Value::Array(users::organizations(&s.repo, &c).await?)))
}
pub(super) async fn users_search(State(s): State<AppState>, c: Caller, Query(q): Query) -> JsonAnswer {
    Ok(Json(users::search_by_email(&s.repo, &c, q.get("email").map(String::as_str)).await?))
}
pub(super) async fn users_get(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(users::get(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn users_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(users::update(&s.repo, &c, id(&p)?, &b).await?))
}

pub(super) async fn orgs_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    let part_of = crate::domain::admin::input::param_id(&q, "part_of")?;
    Ok(Json(page(orgs::list(&s.repo, &c, part_of).await?, &q, &url, None)?))
}
pub(super) async fn orgs_types(_: Caller) -> JsonAnswer {
    Ok(Json(orgs::types()))
}
pub(super) async fn orgs_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    Ok(created(orgs::create(&s.repo, &c, &b).await?))
}
pub(super) async fn orgs_get(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(orgs::get(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn orgs_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(orgs::update(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn orgs_delete(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> ApiResult<Response> {
    orgs::delete(&s.repo, &c, id(&p)?).await?;
    Ok(no_content())
}
pub(super) async fn orgs_tree(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(orgs::tree(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn orgs_users(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(orgs::users(&s.repo, &c, id(&p)?).await?)))
}
pub(super) async fn orgs_add_user(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let (v, is_new) = orgs::add_user(&s.repo, &c, id(&p)?, &b).await?;
    Ok(if is_new { created(v) } else { Json(v).into_response() })
}
pub(super) async fn orgs_remove_user(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    orgs::remove_user(&s.repo, &c, id(&p)?, &b).await?;
    Ok(no_content())
}
pub(super) async fn orgs_studies(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(orgs::studies(&s.repo, &c, id(&p)?).await?)))
}

pub(super) async fn pract_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    Ok(Json(page(users::list_practitioners(&s.repo, &c).await?, &q, &url, Some(1000))?))
}
pub(super) async fn pract_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    let v = match users::create_practitioner(&s.repo, &c, &b).await {
        Ok(v) => v,
        Err(e) => return Err(heal_and_fail(&s, &b, e).await),
    };
    if s.issuer.is_delegating()
        && let Some(p) = v.get("id").and_then(Value::as_i64)
        && let Some(p) = s.repo.practitioner(p).await?
    {
        provision(&s, p.user_id).await?;
    }
    Ok(created(v))
}

/// A create that failed because the email is taken may be the retry of one whose record was
/// stored but whose provisioning failed (the provider was down): provision that user now (it is
/// idempotent), then answer the original error. Only for a refused input (the email-taken
/// answers are 400s), never for a caller who may not create at all.
pub(super) async fn heal_and_fail(
    s: &AppState,
    b: &crate::domain::admin::input::Body,
    e: crate::error::Error,
) -> ApiError {
    if s.issuer.is_delegating()
        && matches!(e, crate::error::Error::BadRequest(_))
        && let Ok(Some(email)) = b.opt_str("telecom_email")
        && let Ok(Some(u)) = s.repo.user_by_email(email.trim().to_lowercase().as_str()).await
        && let Err(pe) = s.issuer.provision(&u).await
    {
        tracing::warn!(error = ?pe, user = u.id, "provisioning an existing user failed again");
    }
    e.into()
}

/// Removes accounts deleted here from the identity provider (a Cognito user pool in the cloud),
/// so that it no longer holds their email or sign-in. Deleted here first: from then on no token
/// of theirs is accepted (a token names a user or key, which must still exist). If the provider
/// fails, the deletion stands and is answered as done, and the account left in the provider is
/// logged as an error for an operator to remove (a retried DELETE would find nothing to delete)
/// and written into the deletion's audit record.
pub(super) async fn forget(s: &AppState, slot: &Slot, gone: &[GoneAccount]) {
    if let Err(e) = s.issuer.remove(gone).await {
        tracing::error!(error = %e, accounts = ?gone, "deleted here, but still held by the identity provider");
        note(slot, |n| n.reason = Some(format!("deleted here, but the identity provider still holds it: {e}")));
    }
}

/// Makes a user created here known to the identity provider (a Cognito user pool in the cloud).
/// Stored first, provisioned second: if the provider fails, the request fails, and the account is
/// provisioned again when the user is next signed in through JHE (provisioning is idempotent).
pub(super) async fn provision(s: &AppState, user_id: crate::model::Id) -> ApiResult<()> {
    if s.issuer.is_delegating()
        && let Some(u) = s.repo.user(user_id).await?
    {
        s.issuer.provision(&u).await?;
    }
    Ok(())
}
pub(super) async fn pract_get(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(users::get_practitioner(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn pract_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(users::update_practitioner(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn pract_delete(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
) -> ApiResult<Response> {
    note(&slot, |n| {
        n.resource_type = Some("Practitioner".into());
        n.ids.push(p.clone());
    });
    let gone = users::delete_practitioner(&s.repo, &c, id(&p)?).await?;
    forget(&s, &slot, &gone).await;
    Ok(no_content())
}

pub(super) async fn pat_list(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Query(q): Query,
    url: ReqUrl,
) -> JsonAnswer {
    let items = patients::list(&s.repo, &c, &q).await?;
    note_patients(&slot, &items);
    Ok(Json(page(items, &q, &url, None)?))
}
pub(super) async fn pat_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    let v = match patients::create(&s.repo, &c, &b).await {
        Ok(v) => v,
        Err(e) => return Err(heal_and_fail(&s, &b, e).await),
    };
    if s.issuer.is_delegating()
        && let Some(p) = v.get("id").and_then(Value::as_i64)
        && let Some(p) = s.repo.patient(p).await?
        && let Some(u) = p.user_id
    {
        provision(&s, u).await?;
    }
    Ok(created(v))
}
pub(super) async fn pat_me(State(s): State<AppState>, c: Caller) -> JsonAnswer {
    Ok(Json(patients::me(&s.repo, &c).await?))
}
pub(super) async fn pat_lookup(State(s): State<AppState>, c: Caller, Query(q): Query) -> JsonAnswer {
    Ok(Json(Value::Array(patients::global_lookup(&s.repo, &c, q.get("email").map(String::as_str)).await?)))
}
pub(super) async fn pat_get(State(s): State<AppState>, slot: Slot, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    note(&slot, |n| n.resource_type = Some("Patient".into()));
    Ok(Json(patients::get(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn pat_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(patients::update(&s.repo, &c, id(&p)?, &q, &b).await?))
}
pub(super) async fn pat_delete(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
) -> ApiResult<Response> {
    let gone = patients::delete(&s.repo, &c, id(&p)?, &q).await?;
    forget(&s, &slot, &gone).await;
    Ok(no_content())
}
pub(super) async fn pat_add_org(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(patients::add_organization(&s.repo, &c, id(&p)?, &q, &b).await?))
}
pub(super) async fn pat_clients(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(patients::consolidated_clients(&s.repo, &c, id(&p)?).await?)))
}
pub(super) async fn consents_get(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
) -> JsonAnswer {
    note(&slot, |n| n.resource_type = Some("Consent".into()));
    let pid = id(&p)?;
    if q.contains_key("reset") {
        // Upstream's GET ?reset=true deleted every decision: a GET changes nothing here.
        return Err(Error::bad(
            "A GET changes nothing: to forget every decision, the patient sends DELETE with no body.",
        )
        .into());
    }
    Ok(Json(consents::get(&s.repo, &c, pid).await?))
}
pub(super) async fn consents_post(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let pid = id(&p)?;
    let written = consents::write(&s.repo, &c, pid, &b, ConsentWrite::Create).await?;
    note_consents(&slot, pid, &written);
    Ok(created(written))
}
pub(super) async fn consents_patch(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    let pid = id(&p)?;
    let written = consents::write(&s.repo, &c, pid, &b, ConsentWrite::Update).await?;
    note_consents(&slot, pid, &written);
    Ok(Json(written))
}
pub(super) async fn consents_delete(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    if b.is_empty() {
        consents::reset(&s.repo, &c, id(&p)?).await?;
    } else {
        let pid = id(&p)?;
        let written = consents::write(&s.repo, &c, pid, &b, ConsentWrite::Delete).await?;
        note_consents(&slot, pid, &written);
    }
    Ok(no_content())
}
/// "Who accessed my data": the patient's audit trail, newest first.
pub(super) async fn pat_audit(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
    url: ReqUrl,
) -> JsonAnswer {
    let limit = q.get("page_size").and_then(|v| v.parse().ok()).unwrap_or(100);
    let (rows, next) =
        crate::domain::audit::patient_view(&s.repo, &*s.audit, &c, id(&p)?, q.get("cursor").cloned(), limit).await?;
    Ok(Json(serde_json::json!({
        "count": rows.len(),
        "next": next.map(|n| url.with_param("cursor", &n)),
        "previous": null,
        "results": rows,
    })))
}
pub(super) async fn inv_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    Ok(Json(page(invitations::list(&s.repo, &c).await?, &q, &url, Some(1000))?))
}
pub(super) async fn inv_create(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    note(&slot, |n| {
        n.patients.extend(b.opt_id("patient_id").ok().flatten());
        n.resource_type = Some("Invitation".into());
    });
    let v = invitations::create(&s.repo, &c, &b, &s.settings).await?;
    note(&slot, |n| n.ids.push(v["id"].to_string()));
    Ok(created(v))
}
pub(super) async fn inv_redeem(State(s): State<AppState>, slot: Slot, Path(token): Path<String>) -> JsonAnswer {
    let (v, patient, inv) = invitations::redeem(&s.repo, &s.issuer, &s.settings, &token).await?;
    note(&slot, |n| {
        n.patients.insert(patient);
        n.ids.push(inv.to_string());
        n.resource_type = Some("Invitation".into());
    });
    Ok(Json(v))
}

pub(super) async fn st_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    let org = crate::domain::admin::input::param_id(&q, "organization_id")?;
    Ok(Json(page(studies::list(&s.repo, &c, org).await?, &q, &url, None)?))
}
pub(super) async fn st_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    Ok(created(studies::create(&s.repo, &c, &b).await?))
}
pub(super) async fn st_get(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(studies::get(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn st_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(studies::update(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn st_delete(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> ApiResult<Response> {
    studies::delete(&s.repo, &c, id(&p)?).await?;
    Ok(no_content())
}
pub(super) async fn st_patients(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    Query(q): Query,
    url: ReqUrl,
) -> JsonAnswer {
    let items = studies::patients(&s.repo, &c, id(&p)?).await?;
    note_patients(&slot, &items);
    note(&slot, |n| n.studies.extend(p.parse::<i64>().ok()));
    Ok(Json(page(items, &q, &url, None)?))
}
pub(super) async fn st_add_patients(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    note(&slot, |n| n.studies.extend(p.parse::<i64>().ok()));
    let added = studies::add_patients(&s.repo, &c, id(&p)?, &b).await?;
    // The patients once the caller may (a refused body names whoever it likes).
    note(&slot, |n| n.patients.extend(b.id_list("patient_ids").unwrap_or_default()));
    Ok(created(added))
}
pub(super) async fn st_remove_patients(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    note(&slot, |n| n.studies.extend(p.parse::<i64>().ok()));
    studies::remove_patients(&s.repo, &c, id(&p)?, &b).await?;
    note(&slot, |n| n.patients.extend(b.id_list("patient_ids").unwrap_or_default()));
    Ok(no_content())
}
pub(super) async fn st_scopes(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(studies::scope_requests(&s.repo, &c, id(&p)?).await?)))
}
pub(super) async fn st_add_scope(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    Ok(created(studies::set_scope_request(&s.repo, &c, id(&p)?, &b, true).await?))
}
pub(super) async fn st_remove_scope(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    studies::set_scope_request(&s.repo, &c, id(&p)?, &b, false).await?;
    Ok(no_content())
}
pub(super) async fn st_clients(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(studies::clients(&s.repo, &c, id(&p)?).await?)))
}
pub(super) async fn st_add_client(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    Ok(created(studies::set_client(&s.repo, &c, id(&p)?, &b, true).await?))
}
pub(super) async fn st_remove_client(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    studies::set_client(&s.repo, &c, id(&p)?, &b, false).await?;
    Ok(no_content())
}
pub(super) async fn st_data_sources(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(studies::data_sources(&s.repo, &c, id(&p)?).await?)))
}
pub(super) async fn st_add_data_source(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    Ok(created(studies::set_data_source(&s.repo, &c, id(&p)?, &b, true).await?))
}
pub(super) async fn st_remove_data_source(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    studies::set_data_source(&s.repo, &c, id(&p)?, &b, false).await?;
    Ok(no_content())
}

pub(super) async fn ds_list(State(s): State<AppState>, _: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    Ok(Json(page(catalog::list_data_sources(&s.repo).await?, &q, &url, None)?))
}
pub(super) async fn ds_all_scopes(State(s): State<AppState>, _: Caller) -> JsonAnswer {
    Ok(Json(Value::Array(catalog::all_scopes(&s.repo).await?)))
}
pub(super) async fn ds_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    Ok(created(catalog::create_data_source(&s.repo, &c, &b).await?))
}
pub(super) async fn ds_get(State(s): State<AppState>, _: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(catalog::get_data_source(&s.repo, id(&p)?).await?))
}
pub(super) async fn ds_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(catalog::update_data_source(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn ds_delete(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> ApiResult<Response> {
    catalog::delete_data_source(&s.repo, &c, id(&p)?).await?;
    Ok(no_content())
}
pub(super) async fn ds_scopes(State(s): State<AppState>, _: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(catalog::supported_scopes(&s.repo, id(&p)?).await?)))
}
pub(super) async fn ds_add_scope(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    Ok(created(catalog::set_supported_scope(&s.repo, &c, id(&p)?, &b, true).await?))
}
pub(super) async fn ds_remove_scope(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    catalog::set_supported_scope(&s.repo, &c, id(&p)?, &b, false).await?;
    Ok(no_content())
}
pub(super) async fn cl_list(State(s): State<AppState>, _: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    Ok(Json(page(catalog::list_clients(&s.repo).await?, &q, &url, Some(1000))?))
}
pub(super) async fn cl_create(State(s): State<AppState>, c: Caller, JsonBody(b): JsonBody) -> ApiResult<Response> {
    Ok(created(catalog::create_client(&s.repo, &c, &b, &s.settings.site_url).await?))
}
pub(super) async fn cl_get(State(s): State<AppState>, _: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(catalog::get_client(&s.repo, id(&p)?).await?))
}
pub(super) async fn cl_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(catalog::update_client(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn cl_delete(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> ApiResult<Response> {
    catalog::delete_client(&s.repo, &c, id(&p)?).await?;
    Ok(no_content())
}
pub(super) async fn cl_data_sources(State(s): State<AppState>, _: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(Value::Array(catalog::client_data_sources(&s.repo, id(&p)?).await?)))
}
pub(super) async fn cl_add_data_source(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    Ok(created(catalog::set_client_data_source(&s.repo, &c, id(&p)?, &b, true).await?))
}
pub(super) async fn cl_remove_data_source(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    catalog::set_client_data_source(&s.repo, &c, id(&p)?, &b, false).await?;
    Ok(no_content())
}
pub(super) async fn key_list(State(s): State<AppState>, c: Caller, Query(q): Query, url: ReqUrl) -> JsonAnswer {
    Ok(Json(page(catalog::list_api_keys(&s.repo, &c).await?, &q, &url, Some(1000))?))
}
pub(super) async fn key_create(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let v = catalog::create_api_key(&s.repo, &c, &b).await?;
    note(&slot, |n| {
        n.resource_type = Some("ApiKey".into());
        n.ids.push(v["id"].to_string());
    });
    Ok(created(v))
}
pub(super) async fn key_get(State(s): State<AppState>, c: Caller, Path(p): Path<String>) -> JsonAnswer {
    Ok(Json(catalog::get_api_key(&s.repo, &c, id(&p)?).await?))
}
pub(super) async fn key_update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<String>,
    JsonBody(b): JsonBody,
) -> JsonAnswer {
    Ok(Json(catalog::update_api_key(&s.repo, &c, id(&p)?, &b).await?))
}
pub(super) async fn key_delete(
    State(s): State<AppState>,
    slot: Slot,
    c: Caller,
    Path(p): Path<String>,
) -> ApiResult<Response> {
    note(&slot, |n| {
        n.resource_type = Some("ApiKey".into());
        n.ids.push(p.clone());
    });
    let gone = catalog::delete_api_key(&s.repo, &c, id(&p)?).await?;
    forget(&s, &slot, &[gone]).await;
    Ok(no_content())
}
