//! Identity on a Cognito user pool, on moto: the whole server wired as in the cloud
//! (`jhe::cloud::state_with`: DynamoDB, S3 and a user pool, no signing key in the process).
//! Users created through the admin API exist in the pool; the pool's tokens are accepted; tokens of
//! another pool, expired, tampered, of another app client or of the wrong kind are refused; the
//! invitation, refresh and API-key flows work end to end and hand out the pool's tokens.
//!
//! Needs `JHE_TEST_MOTO_URL` like the other AWS tests. Expired tokens are signed with moto's own
//! pool key (moto ships it), by moto's Python, so that only the expiry differs from a good token.

use std::sync::Arc;

use aws_sdk_cognitoidentityprovider::Client as Cognito;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use jhe::adapters::aws::{cognito_client, dynamo_client, local_sdk_config, s3_client};
use jhe::adapters::cognito::{API_KEY_USER_PREFIX, CognitoAccounts, CognitoIdentity, create_pool};
use jhe::config::CognitoSettings;
use jhe::ports::{Accounts, SignInFor};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::aws::{moto, unique};
use crate::common::*;

pub(crate) struct PoolApp {
    pub(crate) app: TestApp,
    pub(crate) cognito: Cognito,
    pub(crate) pool: CognitoSettings,
    pub(crate) url: String,
    /// The table's and the bucket's name.
    pub(crate) name: String,
}

/// The server on a fresh table, bucket and user pool, with the demo data.
pub(crate) async fn pool_app(url: &str) -> PoolApp {
    pool_app_with(url, |a| Arc::new(a)).await
}

/// `pool_app` with the accounts port wrapped (e.g. to make it fail).
async fn pool_app_with(url: &str, wrap: impl FnOnce(CognitoAccounts) -> Arc<dyn Accounts> + Send + 'static) -> PoolApp {
    let conf = local_sdk_config(url).await;
    let dynamo = dynamo_client(&conf);
    let name = unique("cognito");
    jhe::adapters::dynamo::DynamoTable::create_table(&dynamo, &name).await.expect("create table");
    let s3 = s3_client(&conf);
    jhe::adapters::s3::S3Blobs::create_bucket(&s3, &name).await.expect("create bucket");
    let cognito = cognito_client(&conf);
    let pool = create_pool(&cognito, &name, url).await.expect("create pool");
    let (p, c, n) = (pool.clone(), cognito.clone(), name.clone());
    let app = spawn_state(async move |mut s| {
        s.cognito = Some(p.clone());
        let state = jhe::cloud::state_with(
            s,
            Arc::new(jhe::adapters::dynamo::DynamoTable::new(dynamo, n.clone())),
            Arc::new(jhe::adapters::s3::S3Blobs::new(s3, n, "")),
            Arc::new(CognitoIdentity::new(p.clone())),
            wrap(CognitoAccounts::new(c, p)),
        )
        .expect("cloud state");
        jhe::seed::seed(&state.repo, &state.settings, &*state.blobs).await.expect("seed");
        state
    })
    .await;
    PoolApp { app, cognito, pool, url: url.to_string(), name }
}

const POOL_PASSWORD: &str = "Pool-test-password-1!";

impl PoolApp {
    /// A pool access token for the demo user `email`, as the managed login would hand it to the
    /// web UI (moto has no managed login: the same app client signs in server-side).
    pub(crate) async fn practitioner(&self, email: &str) -> String {
        let user = self.app.repo().user_by_email(email).await.expect("read").expect("demo user");
        self.app.state.issuer.provision(&user).await.expect("provision");
        self.sign_in(&self.pool, &user.id.to_string()).await["AccessToken"].as_str().expect("access").to_string()
    }

    async fn sign_in(&self, pool: &CognitoSettings, username: &str) -> Value {
        let c = &self.cognito;
        c.admin_set_user_password()
            .user_pool_id(&pool.user_pool_id)
            .username(username)
            .password(POOL_PASSWORD)
            .permanent(true)
            .send()
            .await
            .expect("set password");
        let r = c
            .admin_initiate_auth()
            .user_pool_id(&pool.user_pool_id)
            .client_id(&pool.spa_client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", POOL_PASSWORD)
            .send()
            .await
            .expect("sign in")
            .authentication_result
            .expect("tokens");
        json!({"AccessToken": r.access_token, "IdToken": r.id_token})
    }

    /// A patient created through the admin API in organization 20001 by `token`: the answer, and
    /// the patient's user.
    async fn new_patient(&self, token: &str, email: &str) -> (Value, jhe::model::User) {
        let body = json!({"organization_id": 20001, "telecom_email": email, "name_family": "New",
                          "name_given": "Pat", "birth_date": "1990-01-01"});
        let (s, pat) = self.app.post("/api/v1/patients", token, body).await;
        assert_eq!(s, StatusCode::CREATED, "{pat}");
        let user = self.app.repo().user_by_email(email).await.expect("read").expect("user");
        (pat, user)
    }

    /// Whether the pool has user `username`, and its email.
    async fn pool_user(&self, username: &str) -> Option<String> {
        let u = self.cognito.admin_get_user().user_pool_id(&self.pool.user_pool_id).username(username).send().await;
        let u = u.ok()?;
        Some(u.user_attributes().iter().find(|a| a.name() == "email").and_then(|a| a.value()).unwrap_or("").into())
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&jhe::auth::crypto::b64url_decode(payload).expect("b64")).expect("json")
}

/// `claims` signed with moto's pool key (kid `dummy`), by moto's own Python.
fn moto_signed(claims: &Value) -> String {
    let py = std::env::var("JHE_MOTO_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/moto"))
        .join("bin/python");
    let script = "import json,sys\nfrom moto.utilities.utils import load_resource\nfrom joserfc import jwk, jwt\n\
                  k = jwk.RSAKey.import_key(load_resource('cognitoidp/resources/jwks-private.json'))\n\
                  print(jwt.encode({'kid': 'dummy', 'alg': 'RS256'}, json.loads(sys.argv[1]), k))";
    let out = std::process::Command::new(&py)
        .args(["-c", script, &claims.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    assert!(out.status.success(), "signing with moto's key: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

#[tokio::test]
async fn users_created_through_the_admin_api_exist_in_the_pool_and_its_tokens_are_accepted() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let admin = p.practitioner("admin@example.com").await;
    assert_eq!(claims(&admin)["iss"], json!(p.pool.issuer), "a token of the pool, not of JHE");
    let (s, me) = p.app.get("/api/v1/users/profile", &admin).await;
    assert_eq!((s, me["email"].as_str()), (StatusCode::OK, Some("admin@example.com")), "{me}");

    let (s, doc) = p
        .app
        .post(
            "/api/v1/practitioners",
            &admin,
            json!({"telecom_email": "Dr.New@Example.com", "name_family": "New", "name_given": "Dr"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{doc}");
    let doc_user = p.app.repo().user_by_email("dr.new@example.com").await.expect("read").expect("user");
    assert_eq!(p.pool_user(&doc_user.id.to_string()).await.as_deref(), Some("dr.new@example.com"));
    p.app.state.issuer.provision(&doc_user).await.expect("provisioning a user the pool holds is fine");
    // The new practitioner signs in at the pool and is the user the API knows.
    let doc_token = p.sign_in(&p.pool, &doc_user.id.to_string()).await["AccessToken"].as_str().expect("t").to_string();
    let (s, me) = p.app.get("/api/v1/users/profile", &doc_token).await;
    assert_eq!((s, me["id"].as_i64()), (StatusCode::OK, Some(doc_user.id)), "{me}");

    let mary = p.practitioner("manager_mary@example.com").await;
    let (_, pat_user) = p.new_patient(&mary, "pat.new@example.com").await;
    assert_eq!(p.pool_user(&pat_user.id.to_string()).await.as_deref(), Some("pat.new@example.com"));
    assert_eq!(p.pool_user("999999").await, None, "the check can fail");
}

#[tokio::test]
async fn tokens_of_another_pool_or_client_expired_tampered_or_of_the_wrong_kind_are_refused() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let mary = p.practitioner("manager_mary@example.com").await;
    let good = claims(&mary);
    let profile = |t: String| {
        let app = &p.app;
        async move { app.get("/api/v1/users/profile", &t).await.0 }
    };
    assert_eq!(profile(mary.clone()).await, StatusCode::OK);

    // Signed by moto's key like every pool token: only the claims differ from the good one.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = good.clone();
    c["exp"] = json!(now + 600);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::OK, "a token signed here with the pool key is good");
    c["exp"] = json!(now - 120);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "expired");

    // Another pool on the same server: same signing key (moto's), another issuer.
    let other_name = unique("other");
    let other = create_pool(&p.cognito, &other_name, &p.url).await.expect("pool");
    let uid = good["username"].as_str().expect("username").to_string();
    p.cognito
        .admin_create_user()
        .user_pool_id(&other.user_pool_id)
        .username(&uid)
        .send()
        .await
        .expect("user in the other pool");
    let foreign = p.sign_in(&other, &uid).await["AccessToken"].as_str().expect("t").to_string();
    assert_eq!(profile(foreign).await, StatusCode::UNAUTHORIZED, "another pool's token");
    // ... which also carries that pool's client id: the issuer alone, on a token otherwise good.
    let mut c = good.clone();
    c["iss"] = json!(other.issuer);
    c["exp"] = json!(now + 600);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "another pool's issuer");

    // Tampered: the payload names another user, the signature is the original one.
    let mut parts: Vec<String> = mary.split('.').map(String::from).collect();
    let mut t = good.clone();
    t["username"] = json!("10001");
    parts[1] = jhe::auth::crypto::b64url(t.to_string().as_bytes());
    assert_eq!(profile(parts.join(".")).await, StatusCode::UNAUTHORIZED, "tampered");

    // An ID token is not an access token.
    let id = p.sign_in(&p.pool, &uid).await["IdToken"].as_str().expect("id").to_string();
    assert_eq!(profile(id).await, StatusCode::UNAUTHORIZED, "ID token");
    // (moto's ID tokens also lack the access token's claims:) only `token_use` differs here.
    let mut c = good.clone();
    c["token_use"] = json!("id");
    c["exp"] = json!(now + 600);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "token_use id");

    // An app client of the pool that is not this deployment's.
    let mut c = good.clone();
    c["client_id"] = json!("someone-elses-client");
    c["exp"] = json!(now + 600);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "foreign app client");

    // A user's token presented as an API key's (the API-key client), and the reverse.
    let mut c = good.clone();
    c["client_id"] = json!(p.pool.api_client_id);
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "user on the API-key client");
    let mut c = good.clone();
    c["username"] = json!("apikey.whatever");
    assert_eq!(profile(moto_signed(&c)).await, StatusCode::UNAUTHORIZED, "API-key user on the web client");

    // alg none with the good payload.
    let none = format!("{}.{}.", jhe::auth::crypto::b64url(br#"{"alg":"none","kid":"dummy"}"#), parts[1]);
    assert_eq!(profile(none).await, StatusCode::UNAUTHORIZED, "alg none");
}

#[tokio::test]
async fn invitation_refresh_and_api_key_flows_hand_out_pool_tokens() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let mary = p.practitioner("manager_mary@example.com").await;

    // Invitation: issue, redeem, exchange the code (PKCE with the invitation token): pool tokens.
    let (s, inv) = p.app.post("/api/v1/invitation", &mary, json!({"patient_id": 40001, "client_id": 2})).await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    let token = inv["token"].as_str().expect("token").to_string();
    let (s, grant) = p.app.redeem(&token).await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    let wrong_verifier = jhe::auth::crypto::b64url(b"not-the-invitation-token-000000");
    let (s, e) = p.app.exchange(&grant["grant"], &wrong_verifier).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "PKCE is checked");

    // The failed attempt used the code up: redeem again (within the window) for a fresh one.
    let (s, grant) = p.app.redeem(&token).await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    let (s, tok) = p.app.exchange(&grant["grant"], &jhe::auth::crypto::b64url(token.as_bytes())).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let access = tok["access_token"].as_str().expect("access").to_string();
    let c = claims(&access);
    assert_eq!(
        (c["iss"].as_str(), c["client_id"].as_str()),
        (Some(p.pool.issuer.as_str()), Some(p.pool.patient_client_id.as_str()))
    );
    let peter = p.app.repo().patient(40001).await.expect("read").expect("patient");
    assert_eq!(c["username"], json!(peter.user_id.expect("user").to_string()), "the patient's pool user");
    let (s, me) = p.app.get("/api/v1/patients/me", &access).await;
    assert_eq!((s, me["id"].as_i64()), (StatusCode::OK, Some(40001)), "{me}");

    // Refresh through JHE's token endpoint: the pool refreshes.
    let refresh = tok["refresh_token"].as_str().expect("refresh").to_string();
    let (s, tok2) = p.app.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(s, StatusCode::OK, "{tok2}");
    let (s, _) = p.app.get("/api/v1/patients/me", tok2["access_token"].as_str().expect("access")).await;
    assert_eq!(s, StatusCode::OK);
    // Signed out at the pool (e.g. by an administrator): the refresh token is refused.
    p.cognito
        .admin_user_global_sign_out()
        .user_pool_id(&p.pool.user_pool_id)
        .username(c["username"].as_str().expect("username"))
        .send()
        .await
        .expect("sign out");
    let (s, e) = p.app.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{e}");

    // API key: client credentials give a pool token acting as the key's practitioner.
    let (_, me) = p.app.get("/api/v1/users/profile", &mary).await;
    let (s, key) = p.app.post("/api/v1/practitioner_clients", &mary, json!({"label": "notebook"})).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let basic = key["key"].as_str().expect("key").to_string();
    let (s, kt) = p.app.client_credentials(&basic).await;
    assert_eq!(s, StatusCode::OK, "{kt}");
    assert!(kt.get("refresh_token").is_none() && kt.get("id_token").is_none(), "{kt}");
    let key_token = kt["access_token"].as_str().expect("access").to_string();
    let kc = claims(&key_token);
    assert_eq!(
        (kc["iss"].as_str(), kc["client_id"].as_str()),
        (Some(p.pool.issuer.as_str()), Some(p.pool.api_client_id.as_str()))
    );
    let (s, me2) = p.app.get("/api/v1/users/profile", &key_token).await;
    assert_eq!((s, &me2["id"]), (StatusCode::OK, &me["id"]), "the key acts as its practitioner");
    // A second grant signs in the pool user the first one created.
    let (s, kt2) = p.app.client_credentials(&basic).await;
    assert_eq!(s, StatusCode::OK, "{kt2}");
    let (s, _) = p.app.get("/api/v1/users/profile", kt2["access_token"].as_str().expect("access")).await;
    assert_eq!(s, StatusCode::OK);
    // The audit trail names the key (its client id), not the pool's one API-key app client.
    let key_client = {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(&basic).expect("b64");
        String::from_utf8(raw).expect("utf8").split(':').next().expect("client id").to_string()
    };
    let (s, _) = p.app.get("/FHIR/R5/Patient?_count=1", &key_token).await;
    assert_eq!(s, StatusCode::OK);
    let admin = p.practitioner("admin@example.com").await;
    let (s, b) = p.app.get(&format!("/FHIR/R5/AuditEvent?agent={}&_count=50", me["id"]), &admin).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let clients: Vec<&str> = b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["code"]["text"] == "GET /FHIR/R5/Patient")
        .filter_map(|r| r["agent"][0]["extension"][0]["valueString"].as_str())
        .collect();
    assert!(clients.contains(&key_client.as_str()), "{clients:?} names {key_client}");
    // ... and the key's token request is recorded as the practitioner's.
    let grants =
        b["entry"].as_array().expect("entries").iter().filter(|e| e["resource"]["code"]["text"] == "POST /o/token/");
    assert!(grants.count() >= 1, "the client-credentials grant is on the practitioner's record");

    let (s, _) = p.app.delete(&format!("/api/v1/practitioner_clients/{}", key["id"]), &mary, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = p.app.get("/api/v1/users/profile", &key_token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a deleted key's pool tokens stop working at once");
    let (s, _) = p.app.client_credentials(&basic).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a deleted key gets no new tokens");
    assert_eq!(p.pool_user(&format!("{API_KEY_USER_PREFIX}{key_client}")).await, None, "nor a pool user");
}

/// Deleting a practitioner (with their API key) or removing a patient from their last
/// organization deletes their users here, and the pool forgets them too; a pool that fails then
/// leaves the deletion standing (and the account is logged for an operator).
#[tokio::test]
async fn accounts_deleted_here_are_removed_from_the_pool() {
    let Some(url) = moto() else { return };
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = down.clone();
    let p = pool_app_with(&url, move |inner| Arc::new(FlakyPool { inner, down: d })).await;
    let admin = p.practitioner("admin@example.com").await;
    let practitioner = async |email: &str| {
        let (s, doc) = p.app.post("/api/v1/practitioners", &admin, json!({"telecom_email": email})).await;
        assert_eq!(s, StatusCode::CREATED, "{doc}");
        let user = p.app.repo().user_by_email(email).await.expect("read").expect("user");
        assert!(p.pool_user(&user.id.to_string()).await.is_some(), "provisioned");
        (doc["id"].as_i64().expect("id"), user.id.to_string())
    };

    // A practitioner with an API key that has been used (so the key has a pool user too).
    let (doc, doc_user) = practitioner("gone.doc@example.com").await;
    let doc_token = p.sign_in(&p.pool, &doc_user).await["AccessToken"].as_str().expect("t").to_string();
    let (s, key) = p.app.post("/api/v1/practitioner_clients", &doc_token, json!({"label": "nb"})).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let (s, kt) = p.app.client_credentials(key["key"].as_str().expect("key")).await;
    assert_eq!(s, StatusCode::OK, "{kt}");
    let key_user = claims(kt["access_token"].as_str().expect("access"))["username"].as_str().expect("u").to_string();
    assert!(key_user.starts_with(API_KEY_USER_PREFIX) && p.pool_user(&key_user).await.is_some(), "{key_user}");
    let (s, e) = p.app.delete(&format!("/api/v1/practitioners/{doc}"), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    assert_eq!(p.pool_user(&doc_user).await, None, "the user is gone from the pool");
    assert_eq!(p.pool_user(&key_user).await, None, "and so is the key's");
    let (s, _) = p.app.get("/api/v1/users/profile", &doc_token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A patient removed from their only organization.
    let mary = p.practitioner("manager_mary@example.com").await;
    let (pat, pat_user) = p.new_patient(&mary, "gone.pat@example.com").await;
    assert!(p.pool_user(&pat_user.id.to_string()).await.is_some(), "provisioned");
    let (s, e) = p.app.delete(&format!("/api/v1/patients/{}?organizationId=20001", pat["id"]), &mary, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    assert_eq!(p.pool_user(&pat_user.id.to_string()).await, None, "the patient's user is gone from the pool");

    // The pool fails to remove: the deletion here stands and is answered as done.
    let (doc2, doc2_user) = practitioner("stuck.doc@example.com").await;
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, e) = p.app.delete(&format!("/api/v1/practitioners/{doc2}"), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{e}");
    assert!(p.app.repo().user_by_email("stuck.doc@example.com").await.expect("read").is_none(), "deleted here");
    assert!(p.pool_user(&doc2_user).await.is_some(), "left in the pool (logged for an operator)");
    // ... and written into the deletion's record; the deletions the pool followed have no reason.
    let q = jhe::ports::AuditQuery { limit: 1000, ..Default::default() };
    let records = p.app.state.audit.query(&q).await.expect("audit").0;
    let deletion = |id: &str| {
        records
            .iter()
            .find(|r| r.action == "practitioner.delete" && r.ids == [id])
            .unwrap_or_else(|| panic!("no record of deleting {id}"))
    };
    let reason = deletion(&doc2.to_string()).reason.clone().unwrap_or_default();
    assert!(reason.contains("identity provider still holds") && reason.contains("the pool is down"), "{reason}");
    assert_eq!(deletion(&doc.to_string()).reason, None);
}

#[tokio::test]
async fn login_pages_discovery_and_settings_point_at_the_pool() {
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let r = p.app.http.get(p.app.url("/o/authorize/?client_id=x&response_type=code")).send().await.expect("get");
    assert!(r.status().is_redirection());
    assert_eq!(
        location(&r).as_deref(),
        Some(format!("{}/oauth2/authorize?client_id=x&response_type=code", p.pool.domain).as_str())
    );
    let r = p.app.http.get(p.app.url("/o/.well-known/jwks.json")).send().await.expect("get");
    assert_eq!(location(&r).as_deref(), Some(p.pool.jwks_url.as_str()));
    let r = p.app.http.get(p.app.url("/o/.well-known/openid-configuration")).send().await.expect("get");
    let discovery = format!("{}/.well-known/openid-configuration", p.pool.issuer);
    assert_eq!(location(&r).as_deref(), Some(discovery.as_str()));
    // Logging out ends the pool's session too, and comes back to JHE.
    let r = p.app.http.get(p.app.url("/accounts/logout/")).send().await.expect("get");
    let back = format!("{}/", p.app.base);
    let logout = reqwest::Url::parse_with_params(
        &format!("{}/logout", p.pool.domain),
        [("client_id", p.pool.spa_client_id.as_str()), ("logout_uri", back.as_str())],
    )
    .expect("url");
    assert_eq!(location(&r).as_deref(), Some(logout.as_str()));
    let r = p.app.http.get(p.app.url("/common/server-settings.js")).send().await.expect("get");
    let js = r.text().await.expect("text");
    assert!(js.contains(&format!("const authority = \"{}\"", p.pool.issuer)), "{js}");
    assert!(js.contains(&format!("client_id: \"{}\"", p.pool.spa_client_id)), "{js}");
    assert!(js.contains(&format!("end_session_endpoint: \"{}/logout\"", p.pool.domain)), "{js}");
    // The login form is the pool's: JHE's own form does not take passwords here.
    let r = p
        .app
        .http
        .post(p.app.url("/accounts/login/"))
        .form(&[("email", "admin@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert!(r.status().is_redirection() && set_cookie(&r, "jhe_session").is_none());
    assert_eq!(location(&r).as_deref(), Some("/"), "sent home, where the web UI signs in at the pool");
}

/// The pool refuses the next `provision` or `remove` (as if Cognito were down), then works again.
struct FlakyPool {
    inner: CognitoAccounts,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl Accounts for FlakyPool {
    async fn provision(&self, user: &jhe::model::User) -> Result<(), String> {
        if self.down.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err("the pool is down".into());
        }
        self.inner.provision(user).await
    }
    async fn sign_in(
        &self,
        user: &jhe::model::User,
        purpose: SignInFor<'_>,
    ) -> Result<jhe::auth::issuer::TokenResponse, String> {
        self.inner.sign_in(user, purpose).await
    }
    async fn refresh(&self, t: &str) -> Result<Option<jhe::auth::issuer::TokenResponse>, String> {
        self.inner.refresh(t).await
    }
    async fn remove(&self, account: &jhe::model::GoneAccount) -> Result<(), String> {
        if self.down.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err("the pool is down".into());
        }
        self.inner.remove(account).await
    }
}

#[tokio::test]
async fn a_practitioner_stored_while_the_pool_was_down_is_provisioned_when_the_create_is_retried() {
    let Some(url) = moto() else { return };
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = down.clone();
    let p = pool_app_with(&url, move |inner| Arc::new(FlakyPool { inner, down: d })).await;
    let admin = p.practitioner("admin@example.com").await;
    let body = json!({"telecom_email": "late.doc@example.com", "name_family": "Late"});
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, e) = p.app.post("/api/v1/practitioners", &admin, body.clone()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    let user = p.app.repo().user_by_email("late.doc@example.com").await.expect("read").expect("stored");
    assert_eq!(p.pool_user(&user.id.to_string()).await, None, "not in the pool yet");
    // A caller who may not create practitioners is refused, and provisions nobody.
    let mark = p.practitioner("manager_mark@example.com").await;
    let (s, e) = p.app.post("/api/v1/practitioners", &mark, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(p.pool_user(&user.id.to_string()).await, None, "a refused create provisions nobody");
    // The client retries: the email is taken now (the original answer), and the user is provisioned.
    let (s, e) = p.app.post("/api/v1/practitioners", &admin, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(p.pool_user(&user.id.to_string()).await.as_deref(), Some("late.doc@example.com"), "healed");
}

#[tokio::test]
async fn when_the_pools_keys_cannot_be_fetched_every_token_is_refused() {
    use jhe::ports::Identity;
    let Some(url) = moto() else { return };
    let p = pool_app(&url).await;
    let token = p.practitioner("manager_mary@example.com").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/jwks.json", l.local_addr().expect("addr"))
    };
    let mut s = p.pool.clone();
    s.jwks_url = dead;
    let e = CognitoIdentity::new(s).verify(&token).await.expect_err("no keys, no trust");
    assert!(e.contains("fetching the pool's keys"), "{e}");
    let v = CognitoIdentity::new(p.pool.clone()).verify(&token).await.expect("the same token with the keys");
    assert_eq!(v.api_key, None);
}
