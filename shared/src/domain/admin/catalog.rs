//! The catalogue: scope codes, data sources (devices) and their supported scopes, patient-app
//! clients, and practitioners' own API keys.

use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::input::{Body, text};
use super::{data_source_view, practitioner_only, superuser_only};
use crate::auth::crypto::{random_alnum, sha256_b64url};
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::{Repo, keys};

pub async fn all_scopes(repo: &Repo) -> Result<Vec<Value>> {
    Ok(repo.list_codes().await?.iter().map(|c| to_value(&CodeView::from(c))).collect())
}

// ------------------------------------------------------------------- data sources

pub async fn list_data_sources(repo: &Repo) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for d in repo.list_data_sources().await? {
        out.push(to_value(&data_source_view(repo, &d).await?));
    }
    Ok(out)
}

pub async fn get_data_source(repo: &Repo, id: Id) -> Result<Value> {
    let d = repo.data_source(id).await?.ok_or_else(Error::not_found)?;
    Ok(to_value(&data_source_view(repo, &d).await?))
}

fn ds_type(t: Option<String>) -> Result<String> {
    let t = t.unwrap_or_else(|| "personal_device".into());
    if DATA_SOURCE_TYPES.iter().any(|(k, _)| *k == t) {
        Ok(t)
    } else {
        Err(Error::bad(format!("\"{t}\" is not a valid data source type.")))
    }
}

pub async fn create_data_source(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    superuser_only(c)?;
    let d = DataSource {
        id: repo.next_id("data_source").await?,
        name: text(body.req_str("name")?, "name", 200)?,
        ds_type: ds_type(body.opt_str("type")?)?,
    };
    repo.create_data_source(&d).await?;
    Ok(to_value(&data_source_view(repo, &d).await?))
}

pub async fn update_data_source(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    superuser_only(c)?;
    let mut d = repo.data_source(id).await?.ok_or_else(Error::not_found)?;
    if let Some(n) = body.opt_str("name")? {
        d.name = text(n, "name", 200)?;
    }
    if body.has("type") {
        d.ds_type = ds_type(body.opt_str("type")?)?;
    }
    repo.save_data_source(&d).await?;
    Ok(to_value(&data_source_view(repo, &d).await?))
}

pub async fn delete_data_source(repo: &Repo, c: &Caller, id: Id) -> Result<()> {
    superuser_only(c)?;
    repo.data_source(id).await?.ok_or_else(Error::not_found)?;
    repo.delete_data_source(id).await
}

pub async fn supported_scopes(repo: &Repo, id: Id) -> Result<Vec<Value>> {
    let d = repo.data_source(id).await?.ok_or_else(Error::not_found)?;
    let dv = json!({"id": d.id, "name": d.name, "type": d.ds_type});
    let codes = repo.codes(&repo.supported_scope_ids(id).await?).await?;
    Ok(codes.iter().map(|c| json!({"id": c.id, "dataSource": dv, "scopeCode": to_value(&CodeView::from(c))})).collect())
}

pub async fn set_supported_scope(repo: &Repo, c: &Caller, id: Id, body: &Body, present: bool) -> Result<Value> {
    superuser_only(c)?;
    let d = repo.data_source(id).await?.ok_or_else(Error::not_found)?;
    let code_id = body.opt_id("scope_code_id")?.ok_or_else(|| Error::bad("scope_code_id is required."))?;
    let code = repo.code(code_id).await?.ok_or_else(|| Error::bad(format!("Scope code {code_id} does not exist.")))?;
    repo.set_link(&keys::ds(id), "C#", code_id, present).await?;
    Ok(
        json!({"id": code.id, "dataSource": {"id": d.id, "name": d.name, "type": d.ds_type}, "scopeCode": to_value(&CodeView::from(&code))}),
    )
}

// ------------------------------------------------------------------- clients (patient apps)

pub async fn list_clients(repo: &Repo) -> Result<Vec<Value>> {
    let mut cl: Vec<Client> =
        repo.list_clients().await?.into_iter().filter(|c| c.kind == ClientKind::PatientApp).collect();
    cl.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    Ok(cl.iter().map(|c| to_value(&ClientView::from(c))).collect())
}

async fn patient_app(repo: &Repo, id: Id) -> Result<Client> {
    repo.client(id).await?.filter(|c| c.kind == ClientKind::PatientApp).ok_or_else(Error::not_found)
}

pub async fn get_client(repo: &Repo, id: Id) -> Result<Value> {
    Ok(to_value(&ClientView::from(&patient_app(repo, id).await?)))
}

fn invitation_url(u: String) -> Result<String> {
    let u = u.trim().to_string();
    if !u.contains("CODE") {
        return Err(Error::bad("invitationUrl must contain the placeholder CODE."));
    }
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err(Error::bad("invitationUrl must be an http(s) URL."));
    }
    Ok(u)
}

fn oauth_client_id(s: String) -> Result<String> {
    let s = s.trim().to_string();
    if s.is_empty() || s.len() > 100 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
        return Err(Error::bad("clientId must be 1 to 100 characters of letters, digits, '-', '.', '_' or '~'."));
    }
    Ok(s)
}

pub async fn create_client(repo: &Repo, c: &Caller, body: &Body, site_url: &str) -> Result<Value> {
    superuser_only(c)?;
    let mut missing = Vec::new();
    for f in ["name", "client_id", "invitation_url"] {
        if !body.has(f) {
            missing.push(f);
        }
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing
            .iter()
            .map(|f| match *f {
                "client_id" => "clientId",
                "invitation_url" => "invitationUrl",
                other => other,
            })
            .collect();
        return Err(Error::bad(format!("Required: {}.", names.join(", "))));
    }
    let cl = Client {
        id: repo.next_id("client").await?,
        name: text(body.req_str("name")?, "name", 200)?,
        client_id: oauth_client_id(body.req_str("client_id")?)?,
        kind: ClientKind::PatientApp,
        invitation_url: Some(invitation_url(body.req_str("invitation_url")?)?),
        redirect_uris: vec![format!("{site_url}/auth/callback")],
        created: OffsetDateTime::now_utc(),
    };
    repo.create_client(&cl).await?;
    Ok(to_value(&ClientView::from(&cl)))
}

pub async fn update_client(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    superuser_only(c)?;
    let old = patient_app(repo, id).await?;
    let mut cl = old.clone();
    if let Some(n) = body.opt_str("name")? {
        cl.name = text(n, "name", 200)?;
    }
    if let Some(u) = body.opt_str("invitation_url")? {
        cl.invitation_url = Some(invitation_url(u)?);
    }
    if let Some(ci) = body.opt_str("client_id")? {
        cl.client_id = oauth_client_id(ci)?;
    }
    repo.save_client(&old, &cl).await?;
    Ok(to_value(&ClientView::from(&cl)))
}

pub async fn delete_client(repo: &Repo, c: &Caller, id: Id) -> Result<()> {
    superuser_only(c)?;
    let cl = patient_app(repo, id).await?;
    repo.delete_client(&cl).await
}

pub async fn client_data_sources(repo: &Repo, id: Id) -> Result<Vec<Value>> {
    patient_app(repo, id).await?;
    let mut out = Vec::new();
    for d in repo.linked_ids(&keys::client(id), "D#").await? {
        if let Some(ds) = repo.data_source(d).await? {
            out.push(to_value(&data_source_view(repo, &ds).await?));
        }
    }
    Ok(out)
}

pub async fn set_client_data_source(repo: &Repo, c: &Caller, id: Id, body: &Body, present: bool) -> Result<Value> {
    superuser_only(c)?;
    patient_app(repo, id).await?;
    let did = body.opt_id("data_source_id")?.ok_or_else(|| Error::bad("dataSourceId is required."))?;
    repo.data_source(did).await?.ok_or_else(|| Error::bad(format!("Data source {did} does not exist.")))?;
    repo.set_link(&keys::client(id), "D#", did, present).await?;
    Ok(json!({"id": did, "client_id": id, "dataSourceId": did}))
}

// ------------------------------------------------------------------- API keys

pub async fn list_api_keys(repo: &Repo, c: &Caller) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    Ok(repo.api_keys(c.id()).await?.iter().map(|k| to_value(&ApiKeyView::from(k))).collect())
}

pub async fn get_api_key(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    practitioner_only(c)?;
    let k = repo.api_key(c.id(), id).await?.ok_or_else(Error::not_found)?;
    Ok(to_value(&ApiKeyView::from(&k)))
}

/// Creates an API key; the response is the only time the key is shown.
pub async fn create_api_key(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    practitioner_only(c)?;
    let label = body.opt_str("label")?.unwrap_or_default();
    if label.chars().count() > 200 {
        return Err(Error::bad("label is longer than 200 characters."));
    }
    let now = OffsetDateTime::now_utc();
    let client_id = random_alnum(16);
    let secret = random_alnum(32);
    let stamp =
        now.format(time::macros::format_description!("[year][month][day][hour][minute][second]")).unwrap_or_default();
    let k = ApiKey {
        id: repo.next_id("api_key").await?,
        user_id: c.id(),
        label,
        name: format!("_practitioner_client_{}_{stamp}", c.user.practitioner_id.unwrap_or(c.id())),
        client_id: client_id.clone(),
        secret_sha256: sha256_b64url(secret.as_bytes()),
        created: now,
    };
    repo.create_api_key(&k).await?;
    let mut v = ApiKeyView::from(&k);
    v.key = Some(base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}")));
    Ok(to_value(&v))
}

pub async fn update_api_key(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    practitioner_only(c)?;
    let mut k = repo.api_key(c.id(), id).await?.ok_or_else(Error::not_found)?;
    if let Some(l) = body.opt_str("label")? {
        if l.chars().count() > 200 {
            return Err(Error::bad("label is longer than 200 characters."));
        }
        k.label = l;
    }
    repo.save_api_key(&k).await?;
    Ok(to_value(&ApiKeyView::from(&k)))
}

/// Returns the key's account, for the identity provider to forget.
pub async fn delete_api_key(repo: &Repo, c: &Caller, id: Id) -> Result<GoneAccount> {
    practitioner_only(c)?;
    let k = repo.api_key(c.id(), id).await?.ok_or_else(Error::not_found)?;
    repo.delete_api_key(&k).await?;
    Ok(GoneAccount::ApiKey(k.client_id))
}
