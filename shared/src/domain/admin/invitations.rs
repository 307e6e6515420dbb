//! Patient invitations: issued by a practitioner who may manage the patient, redeemed without
//! authentication by the patient's app for an authorization grant (upstream section 5).

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::input::Body;
use super::visible_patient;
use crate::access;
use crate::auth::crypto::{random_alnum, sha256_b64url};
use crate::auth::issuer::Issuer;
use crate::config::Settings;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::Repo;

/// `host[:port]` of the site URL, as the invitation code carries it.
fn site_host(site_url: &str) -> &str {
    let rest = site_url.split_once("://").map_or(site_url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

const CODE_SET: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.').remove(b'~');

pub async fn create(repo: &Repo, c: &Caller, body: &Body, settings: &Settings) -> Result<Value> {
    let pid = body.opt_id("patient_id")?.ok_or_else(|| Error::bad("patient_id is required."))?;
    let cid =
        body.opt_id("client_id")?.ok_or_else(|| Error::bad("client_id is required (the client's numeric id)."))?;
    let (_, orgs) = match visible_patient(repo, c, pid).await {
        Err(Error::NotFound(_)) => return Err(Error::NotFound(format!("Patient {pid} not found."))),
        other => other?,
    };
    if !access::may_manage_patient(c, &orgs) {
        return Err(Error::forbidden());
    }
    let client = repo
        .client(cid)
        .await?
        .filter(|cl| cl.kind == ClientKind::PatientApp)
        .ok_or_else(|| Error::NotFound(format!("Client {cid} not found.")))?;
    let url = client.invitation_url.clone().ok_or_else(|| Error::bad("This client has no invitation URL."))?;
    if repo.patient(pid).await?.and_then(|p| p.user_id).is_none() {
        return Err(Error::bad("This patient has no user account to invite."));
    }
    let token = random_alnum(32);
    let now = OffsetDateTime::now_utc();
    let inv = Invitation {
        id: repo.next_id("invitation").await?,
        patient_id: pid,
        client: cid,
        token_hash: sha256_b64url(token.as_bytes()),
        status: InvitationStatus::Issued,
        created: now,
        last_updated: now,
        redeemed_at: None,
        expires: Some(now + Duration::days(settings.invitation_expiration_days)),
    };
    repo.create_invitation(&inv).await?;
    let code: String =
        percent_encoding::utf8_percent_encode(&format!("{}_{token}", site_host(&settings.site_url)), CODE_SET)
            .to_string();
    let mut v = InvitationView::from(&inv);
    v.token = Some(token);
    v.invitation_link = Some(url.replace("CODE", &code));
    let mut out = to_value(&v);
    // No mail transport is configured in this deployment; say so rather than pretend.
    out["emailSent"] = json!(false);
    Ok(out)
}

/// Invitations of the patients the caller may manage.
pub async fn list(repo: &Repo, c: &Caller) -> Result<Vec<Value>> {
    super::practitioner_only(c)?;
    let mut patients = std::collections::BTreeSet::new();
    match access::managing_reach(c) {
        access::Reach::All => patients.extend(repo.list_all_patients().await?.iter().map(|p| p.id)),
        access::Reach::Orgs(orgs) => {
            for o in orgs {
                patients.extend(repo.org_patient_ids(o).await?);
            }
        }
    }
    let mut out = Vec::new();
    for p in patients {
        for inv in repo.invitations_of(p).await? {
            out.push(inv);
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    Ok(out.iter().map(|i| to_value(&InvitationView::from(i))).collect())
}

/// `POST /invitation/{token}` (no authentication): the authorization grant for the patient's app.
/// Returns the grant, and the patient and invitation ids (for the audit record).
pub async fn redeem(repo: &Repo, issuer: &Issuer, settings: &Settings, token: &str) -> Result<(Value, Id, Id)> {
    let not_found = || Error::NotFound("Invitation not found or already used.".into());
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    let mut inv = repo.invitation_by_token_hash(&sha256_b64url(token.as_bytes())).await?.ok_or_else(not_found)?;
    let now = OffsetDateTime::now_utc();
    match inv.status {
        InvitationStatus::Issued => {
            if now - inv.created > Duration::days(settings.invitation_expiration_days) {
                inv.status = InvitationStatus::Expired;
                inv.last_updated = now;
                repo.save_invitation(&inv).await?;
                return Err(Error::Gone("Invitation has expired.".into()));
            }
        }
        InvitationStatus::Redeemed => {
            let last = inv.redeemed_at.unwrap_or(inv.last_updated);
            if now - last > Duration::hours(settings.invitation_redemption_window_hours) {
                return Err(Error::Conflict("Invitation has already been used.".into()));
            }
        }
        InvitationStatus::Expired => return Err(Error::Gone("Invitation has expired.".into())),
        InvitationStatus::Cancelled => return Err(Error::Forbidden("Invitation has been cancelled.".into())),
        InvitationStatus::Reissued => {
            return Err(Error::Conflict("Invitation has been replaced by a newer one.".into()));
        }
    }
    let patient = repo.patient(inv.patient_id).await?.ok_or_else(not_found)?;
    let user_id = patient.user_id.ok_or_else(|| Error::bad("This patient has no user account."))?;
    let client = repo.client(inv.client).await?.ok_or_else(not_found)?;
    let redirect_uri =
        client.redirect_uris.first().cloned().unwrap_or_else(|| format!("{}/auth/callback", settings.site_url));
    let (code, expires) = issuer.invitation_grant(repo, user_id, &client.client_id, &redirect_uri, token).await?;
    if inv.status == InvitationStatus::Issued {
        inv.status = InvitationStatus::Redeemed;
    }
    inv.redeemed_at = Some(now);
    inv.last_updated = now;
    repo.save_invitation(&inv).await?;
    if let Some(mut u) = repo.user(user_id).await? {
        u.last_login = Some(now);
        repo.save_user(&u).await?;
    }
    let expires = OffsetDateTime::from_unix_timestamp(expires).map(ts).unwrap_or_default();
    let v = json!({
        "grant": {"grant_type": "authorization_code", "redirect_uri": redirect_uri, "client_id": client.client_id, "code": code},
        "token_endpoint": format!("{}/o/token/", settings.site_url),
        "expires": expires,
    });
    Ok((v, inv.patient_id, inv.id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn invitation_code_host_keeps_the_port() {
        assert_eq!(super::site_host("http://localhost:8000"), "localhost:8000");
        assert_eq!(super::site_host("https://jhe.example.org/"), "jhe.example.org");
        let code = percent_encoding::utf8_percent_encode("localhost:8000_Ab3", super::CODE_SET).to_string();
        assert_eq!(code, "localhost%3A8000_Ab3");
    }
}
