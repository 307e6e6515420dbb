//! The patient invitation flow: issue, redeem (no auth), token for the patient, and the
//! expiry (410) and reuse rules as upstream.

use jhe::auth::crypto::{b64url, sha256_b64url};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn issue(app: &TestApp, token: &str, patient: i64, client: i64) -> Value {
    let (s, inv) = app
        .post("/api/v1/invitation", token, json!({"patient_id": patient, "client_id": client, "send_email": false}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    inv
}

#[tokio::test]
async fn an_invitation_link_gives_the_patient_a_token_for_themself_only() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let (s, clients) = app.get("/api/v1/patients/40001/consolidated_clients", &mary).await;
    assert_eq!(s, StatusCode::OK);
    let carex = clients
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == "CareX")
        .expect("CareX is a client of Peter's study")
        .clone();
    let inv = issue(&app, &mary, 40001, carex["id"].as_i64().expect("id")).await;
    let token = inv["token"].as_str().expect("token").to_string();
    assert_eq!(token.len(), 32);
    assert_eq!(inv["status"], "issued");
    let host = app.base.trim_start_matches("http://").replace(':', "%3A");
    assert_eq!(inv["invitationLink"], format!("https://carex.ai/invitation/{host}_{token}"));
    assert_eq!(inv["tokenHash"], sha256_b64url(token.as_bytes()));

    let (s, grant) = app.redeem(&token).await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    assert_eq!(grant["grant"]["grant_type"], "authorization_code");
    assert_eq!(grant["grant"]["client_id"], carex["clientId"]);
    assert_eq!(grant["token_endpoint"], format!("{}/o/token/", app.base));
    let (s, tok) = app.exchange(&grant["grant"], &b64url(token.as_bytes())).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let patient = tok["access_token"].as_str().expect("access").to_string();
    let (_, me) = app.get("/api/v1/users/profile", &patient).await;
    assert_eq!(me["patient"]["id"], 40001);
    assert_eq!(me["userType"], "patient");
    assert_eq!(app.get("/api/v1/patients/40001", &patient).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/patients/40002", &patient).await.0, StatusCode::FORBIDDEN);
    let (_, list) = app.get("/api/v1/patients", &patient).await;
    assert_eq!(list["count"], 1, "a patient's list holds only themself");

    // The practitioner sees the invitation as redeemed.
    let (_, clients) = app.get("/api/v1/patients/40001/consolidated_clients", &mary).await;
    let carex = clients.as_array().expect("list").iter().find(|c| c["name"] == "CareX").expect("CareX").clone();
    assert_eq!(carex["patientInvitations"][0]["status"], "redeemed");
    assert_eq!(carex["patientInvitations"][0]["token"], Value::Null, "the token is never shown again");
}

#[tokio::test]
async fn redeeming_again_works_within_the_window_then_answers_409() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let inv = issue(&app, &mary, 40001, 2).await;
    let token = inv["token"].as_str().expect("token");
    assert_eq!(app.redeem(token).await.0, StatusCode::OK);
    assert_eq!(app.redeem(token).await.0, StatusCode::OK, "a retry within the window is allowed");
    // Move the last redemption 13 hours into the past.
    let repo = app.repo();
    let mut stored =
        repo.invitation_by_token_hash(&sha256_b64url(token.as_bytes())).await.expect("get").expect("stored");
    stored.redeemed_at = Some(time::OffsetDateTime::now_utc() - time::Duration::hours(13));
    repo.save_invitation(&stored).await.expect("save");
    let (s, body) = app.redeem(token).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(body["detail"], "Invitation has already been used.");
}

#[tokio::test]
async fn an_old_invitation_expires_with_410() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let inv = issue(&app, &mary, 40002, 2).await;
    let token = inv["token"].as_str().expect("token");
    let repo = app.repo();
    let mut stored =
        repo.invitation_by_token_hash(&sha256_b64url(token.as_bytes())).await.expect("get").expect("stored");
    stored.created -= time::Duration::days(8);
    repo.save_invitation(&stored).await.expect("save");
    let (s, body) = app.redeem(token).await;
    assert_eq!((s, body["detail"].as_str()), (StatusCode::GONE, Some("Invitation has expired.")));
    assert_eq!(app.redeem(token).await.0, StatusCode::GONE, "stays expired");
    let stored = repo.invitation_by_token_hash(&sha256_b64url(token.as_bytes())).await.expect("get").expect("stored");
    assert_eq!(stored.status.as_str(), "expired");
}

#[tokio::test]
async fn a_reissued_invitation_replaces_the_earlier_one() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let first = issue(&app, &mary, 40001, 2).await;
    let second = issue(&app, &mary, 40001, 2).await;
    assert_eq!(app.redeem(first["token"].as_str().expect("t")).await.0, StatusCode::CONFLICT);
    assert_eq!(app.redeem(second["token"].as_str().expect("t")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_or_malformed_tokens_are_not_found() {
    let app = spawn_app().await;
    for t in ["A".repeat(32), "short".to_string(), "x".repeat(33), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-".to_string()] {
        let (s, body) = app.redeem(&t).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{t}");
        assert_eq!(body["detail"], "Invitation not found or already used.");
    }
}

#[tokio::test]
async fn only_those_who_manage_the_patient_may_invite_them() {
    let app = spawn_app().await;
    for (who, status) in [
        ("manager_mark@example.com", StatusCode::FORBIDDEN),
        ("viewer_victor@example.com", StatusCode::FORBIDDEN),
        ("member_megan@example.com", StatusCode::CREATED),
    ] {
        let t = app.access(who).await;
        let (s, body) = app.post("/api/v1/invitation", &t, json!({"patient_id": 40001, "client_id": 2})).await;
        assert_eq!(s, status, "{who}: {body}");
    }
    let megan = app.access("member_megan@example.com").await;
    let (s, _) = app.post("/api/v1/invitation", &megan, json!({"patient_id": 40001, "client_id": 99})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unknown client");
    let (s, _) = app.post("/api/v1/invitation", &megan, json!({"patient_id": 49999, "client_id": 2})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unknown patient");
    let (s, _) = app.post("/api/v1/invitation", &megan, json!({"client_id": 2})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "missing patient");
}
