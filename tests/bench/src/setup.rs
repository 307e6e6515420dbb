//! Everything a run needs, created through the admin API in a fresh namespace so runs never
//! collide: an organization under one the caller manages, a study requesting blood glucose with
//! Dexcom as data source and a patient app attached, patients enrolled, each of whom consents with
//! their own token (an invitation of that app), as a deployment requires: granting consent is the
//! patient's act.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::client::{Api, Credentials, Res, Token};

pub const OMH_SYSTEM: &str = "https://w3id.org/openmhealth";
pub const BG_CODE: &str = "omh:blood-glucose:4.0";
/// Admin lists are read at most this many pages deep during setup.
const MAX_LIST_PAGES: usize = 100;

/// What setup created (or found).
#[derive(Debug, Clone)]
pub struct Env {
    pub ns: String,
    pub org_id: i64,
    pub study_id: i64,
    pub device_id: i64,
    /// The patient app attached to the study: the patients' invitations are for it.
    pub client_id: i64,
    /// Uploads are sent with each patient's own token (`--as-patient`), else the manager's.
    pub as_patient: bool,
    /// The measured patients (the read tests use the first).
    pub patients: Vec<i64>,
}

impl Env {
    /// The identifier system of this run's observations.
    pub fn ident_system(&self) -> String {
        format!("https://bench.jhe/{}", self.ns)
    }
}

fn id(v: &Value, what: &str) -> Res<i64> {
    v["id"].as_i64().ok_or_else(|| format!("{what}: no id in {v}"))
}

/// Creates the organization, study, scope request, data source and `patients` patients.
/// Gives the environment and each patient's own token.
pub async fn setup(
    api: &Api,
    token: &Arc<Token>,
    ns: &str,
    patients: usize,
    parent: Option<i64>,
    as_patient: bool,
) -> Res<(Env, HashMap<i64, Arc<Token>>)> {
    let t = token.get().await?;
    let profile = api.get_json("/api/v1/users/profile", &t).await?;
    let parent = match parent {
        Some(p) => p,
        None => {
            let orgs = api.list_all("/api/v1/organizations?pageSize=1000", &t, MAX_LIST_PAGES).await?;
            let managed =
                orgs.iter().filter(|o| o["currentUserRole"] == "manager").filter_map(|o| o["id"].as_i64()).min();
            match managed {
                Some(p) => p,
                None if profile["isSuperuser"] == true => 0,
                None => {
                    return Err(format!(
                        "{} manages no organization: log in as a manager (e.g. manager_mark@example.com) or pass --parent-org",
                        profile["email"]
                    ));
                }
            }
        }
    };
    let name = format!("bench-{ns}");
    let org = api
        .post_json("/api/v1/organizations", Some(&t), &json!({"name": name, "type": "laboratory", "partOf": parent}))
        .await?;
    let org_id = id(&org, "organization")?;
    let study = api
        .post_json(
            "/api/v1/studies",
            Some(&t),
            &json!({"organization": org_id, "name": name, "description": "jhe-bench"}),
        )
        .await?;
    let study_id = id(&study, "study")?;

    let scopes = api.get_json("/api/v1/data_sources/all_scopes", &t).await?;
    let scope_id = scopes
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["codingSystem"] == OMH_SYSTEM && s["codingCode"] == BG_CODE)
        .and_then(|s| s["id"].as_i64())
        .ok_or("the server has no blood-glucose scope (omh:blood-glucose:4.0)")?;
    api.post_json(&format!("/api/v1/studies/{study_id}/scope_requests"), Some(&t), &json!({"scopeCodeId": scope_id}))
        .await?;

    let sources = api.list_all("/api/v1/data_sources?pageSize=1000", &t, MAX_LIST_PAGES).await?;
    let supports_bg =
        |d: &&Value| d["supportedScopes"].as_array().is_some_and(|s| s.iter().any(|s| s["codingCode"] == BG_CODE));
    let device = sources
        .iter()
        .filter(supports_bg)
        .find(|d| d["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("dexcom")))
        .or_else(|| sources.iter().find(supports_bg))
        .ok_or("the server has no data source supporting blood glucose (Dexcom)")?;
    let device_id = id(device, "data source")?;
    api.post_json(&format!("/api/v1/studies/{study_id}/data_sources"), Some(&t), &json!({"dataSourceId": device_id}))
        .await?;

    let clients = api.list_all("/api/v1/clients?pageSize=1000", &t, MAX_LIST_PAGES).await?;
    let c = clients.first().ok_or("the server has no patient-app client (the patients' invitations need one)")?;
    let client_id = id(c, "client")?;
    api.post_json(&format!("/api/v1/studies/{study_id}/clients"), Some(&t), &json!({"clientId": client_id})).await?;

    let mut env = Env { ns: ns.to_string(), org_id, study_id, device_id, client_id, as_patient, patients: vec![] };
    let added = add_patients(api, token, &env, "p", patients).await?;
    env.patients = added.iter().map(|(p, _)| *p).collect();
    Ok((env, added.into_iter().collect()))
}

/// Creates `count` patients named `{label}{i}` in the run's organization and enrols them in the
/// study; each then consents to blood glucose with their own token. Gives (id, own token).
pub async fn add_patients(
    api: &Api,
    token: &Arc<Token>,
    env: &Env,
    label: &str,
    count: usize,
) -> Res<Vec<(i64, Arc<Token>)>> {
    let mut ids = Vec::with_capacity(count);
    // A few at a time: creating a patient account costs the server a password hash.
    for chunk in (0..count).collect::<Vec<_>>().chunks(4) {
        let t = token.get().await?;
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (api, t, org, ns, label) = (api.clone(), t.clone(), env.org_id, env.ns.clone(), label.to_string());
            set.spawn(async move {
                let body = json!({
                    "organizationId": org,
                    "telecomEmail": format!("bench-{ns}-{label}{i}@example.com"),
                    "nameFamily": format!("Bench {ns}"),
                    "nameGiven": format!("{label}{i}"),
                    "birthDate": "1980-01-01",
                });
                let p = api.post_json("/api/v1/patients", Some(&t), &body).await?;
                Ok::<_, String>((i, id(&p, "patient")?))
            });
        }
        let mut got = Vec::new();
        while let Some(r) = set.join_next().await {
            got.push(r.map_err(|e| e.to_string())??);
        }
        got.sort();
        ids.extend(got.into_iter().map(|(_, id)| id));
    }
    let t = token.get().await?;
    for chunk in ids.chunks(50) {
        api.post_json(&format!("/api/v1/studies/{}/patients", env.study_id), Some(&t), &json!({"patientIds": chunk}))
            .await?;
    }
    let consent = json!({"studyScopeConsents": [{"studyId": env.study_id, "scopeConsents": [
        {"codingSystem": OMH_SYSTEM, "codingCode": BG_CODE, "consented": true}]}]});
    let mut out = Vec::with_capacity(ids.len());
    for p in ids {
        let own = Token::obtain(
            api,
            Credentials::Invitation { manager: token.clone(), patient_id: p, client_id: env.client_id },
        )
        .await?;
        api.post_json(&format!("/api/v1/patients/{p}/consents"), Some(&own.get().await?), &consent).await?;
        out.push((p, own));
    }
    Ok(out)
}

/// The token each patient's uploads use: the manager's, or with `--as-patient` the patient's own.
pub fn upload_tokens(manager: &Arc<Token>, env: &Env, own: &HashMap<i64, Arc<Token>>) -> HashMap<i64, Arc<Token>> {
    own.iter().map(|(p, t)| (*p, if env.as_patient { t.clone() } else { manager.clone() })).collect()
}
