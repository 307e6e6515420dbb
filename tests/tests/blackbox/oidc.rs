//! The OIDC issuer end to end over HTTP: PKCE login through the form, refresh, client
//! credentials with an API key, and the refusals.

use base64::Engine;
use jhe::auth::crypto::{random_alnum, sha256_b64url};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn pkce_login_gives_tokens_that_identify_the_user() {
    let app = spawn_app().await;
    let tok = app.login("manager_mary@example.com").await;
    assert_eq!(tok["token_type"], "Bearer");
    assert!(tok["expires_in"].as_i64().unwrap_or(0) > 0);
    let access = tok["access_token"].as_str().expect("access");
    let (s, me) = app.get("/api/v1/users/profile", access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "manager_mary@example.com");
    assert_eq!(me["patient"], Value::Null);
    assert_eq!(me["userType"], "practitioner");

    // The ID token verifies against the published JWKS, for the client as audience.
    let jwks: Value =
        app.http.get(app.url("/o/.well-known/jwks.json")).send().await.expect("jwks").json().await.expect("json");
    let k = &jwks["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_rsa_components(k["n"].as_str().expect("n"), k["e"].as_str().expect("e"))
        .expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[ADMIN_CLIENT]);
    v.set_issuer(&[format!("{}/o", app.base)]);
    let id = jsonwebtoken::decode::<Value>(tok["id_token"].as_str().expect("id_token"), &key, &v)
        .expect("id token verifies");
    assert_eq!(id.claims["email"], "manager_mary@example.com");
    let disco: Value = app
        .http
        .get(app.url("/o/.well-known/openid-configuration"))
        .send()
        .await
        .expect("disco")
        .json()
        .await
        .expect("json");
    assert_eq!(disco["issuer"], format!("{}/o", app.base));
    assert_eq!(disco["code_challenge_methods_supported"], json!(["S256"]));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_cannot_be_reused() {
    let app = spawn_app().await;
    let tok = app.login("member_megan@example.com").await;
    let refresh = tok["refresh_token"].as_str().expect("refresh");
    let (s, t2) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", ADMIN_CLIENT)]).await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    let (s, me) = app.get("/api/v1/users/profile", t2["access_token"].as_str().expect("access")).await;
    assert_eq!((s, me["email"].clone()), (StatusCode::OK, json!("member_megan@example.com")));
    assert_ne!(t2["refresh_token"], tok["refresh_token"], "refresh tokens rotate");
    let (s, err) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", ADMIN_CLIENT)]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
}

/// Runs authorize + login and returns (code, verifier, redirect_uri).
async fn code_for(app: &TestApp, email: &str) -> (String, String, String) {
    let verifier = random_alnum(64);
    let redirect = format!("{}/auth/callback", app.base);
    let authorize = format!(
        "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        urlenc(&redirect),
        sha256_b64url(verifier.as_bytes())
    );
    let session = app.password_login(&authorize, email, PASSWORD).await.expect("login");
    let resp = app.http.get(app.url(&authorize)).header("cookie", session).send().await.expect("authorize");
    let loc = location(&resp).expect("redirect");
    assert!(loc.starts_with(&redirect), "code goes to the registered redirect URI: {loc}");
    (query_param(&loc, "code").expect("code"), verifier, redirect)
}

#[tokio::test]
async fn a_wrong_verifier_fails_and_burns_the_code() {
    let app = spawn_app().await;
    let (code, verifier, redirect) = code_for(&app, "manager_mary@example.com").await;
    let wrong = random_alnum(64);
    let form = |v: &str| -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.clone()),
            ("redirect_uri".into(), redirect.clone()),
            ("client_id".into(), ADMIN_CLIENT.into()),
            ("code_verifier".into(), v.into()),
        ]
    };
    let f: Vec<(String, String)> = form(&wrong);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (s, err) = app.token(&pairs).await;
    assert_eq!((s, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let f = form(&verifier);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (s, _) = app.token(&pairs).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a code is single use, even after a failed attempt");
}

#[tokio::test]
async fn a_code_cannot_be_used_twice_or_without_verifier_or_with_another_redirect() {
    let app = spawn_app().await;
    let (code, verifier, redirect) = code_for(&app, "manager_mary@example.com").await;
    let (s, _) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", ADMIN_CLIENT),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, err) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", ADMIN_CLIENT),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!((s, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "reused code");

    let (code, _, redirect) = code_for(&app, "manager_mary@example.com").await;
    let (s, err) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", ADMIN_CLIENT),
        ])
        .await;
    assert_eq!((s, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "missing verifier");

    let (code, verifier, _) = code_for(&app, "manager_mary@example.com").await;
    let other = format!("{}/elsewhere", app.base);
    let (s, err) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &other),
            ("client_id", ADMIN_CLIENT),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!((s, err["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "redirect_uri must match");
}

#[tokio::test]
async fn authorize_refuses_plain_or_missing_pkce_and_unregistered_redirects() {
    let app = spawn_app().await;
    let redirect = urlenc(&format!("{}/auth/callback", app.base));
    let plain = format!(
        "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={redirect}&code_challenge={}&code_challenge_method=plain&state=s1",
        random_alnum(43)
    );
    let resp = app.http.get(app.url(&plain)).send().await.expect("authorize");
    let loc = location(&resp).expect("error redirect");
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_request"), "plain is refused: {loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    let missing = format!("/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={redirect}");
    let resp = app.http.get(app.url(&missing)).send().await.expect("authorize");
    assert_eq!(
        query_param(&location(&resp).expect("redirect"), "error").as_deref(),
        Some("invalid_request"),
        "missing challenge is refused"
    );
    let evil = format!(
        "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        urlenc("https://evil.example/cb"),
        sha256_b64url(b"x")
    );
    let resp = app.http.get(app.url(&evil)).send().await.expect("authorize");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "never redirect to an unregistered URI");
    assert!(location(&resp).is_none());
    let unknown =
        "/o/authorize/?response_type=code&client_id=nope&redirect_uri=x&code_challenge=x&code_challenge_method=S256";
    assert_eq!(app.http.get(app.url(unknown)).send().await.expect("authorize").status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_login_form_checks_password_and_csrf() {
    let app = spawn_app().await;
    let authorize = format!(
        "/o/authorize/?response_type=code&client_id={ADMIN_CLIENT}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
        urlenc(&format!("{}/auth/callback", app.base)),
        sha256_b64url(b"v")
    );
    let err = app.password_login(&authorize, "manager_mary@example.com", "wrong").await.expect_err("wrong password");
    assert!(err.contains("401"), "{err}");
    let err = app.password_login(&authorize, "nobody@example.com", PASSWORD).await.expect_err("unknown user");
    assert!(err.contains("401"), "{err}");
    // Without the CSRF cookie the form post is refused.
    let resp = app
        .http
        .post(app.url("/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", "x"),
            ("username", "manager_mary@example.com"),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&resp, "jhe_session").is_none());
    // After login, `next` may only be a local path.
    let resp = app.http.get(app.url("/accounts/login/?next=//evil.example/x")).send().await.expect("form");
    let html = resp.text().await.expect("html");
    assert_eq!(html_input(&html, "next").as_deref(), Some("/"));
}

#[tokio::test]
async fn api_keys_give_client_credentials_tokens_until_revoked() {
    let app = spawn_app().await;
    let mary = app.access("manager_mary@example.com").await;
    let (_, me) = app.get("/api/v1/users/profile", &mary).await;
    let (s, key) = app.post("/api/v1/practitioner_clients", &mary, json!({"label": "my laptop"})).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let basic = key["key"].as_str().expect("key shown at creation").to_string();
    let decoded =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&basic).expect("b64")).expect("utf8");
    assert!(decoded.contains(':'), "key is base64(client_id:client_secret)");
    let (_, listed) = app.get("/api/v1/practitioner_clients", &mary).await;
    assert_eq!(listed["results"][0]["key"], Value::Null, "the key is shown only once");

    let (s, tok) = app.client_credentials(&basic).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    assert!(tok.get("refresh_token").is_none() && tok.get("id_token").is_none());
    let token = tok["access_token"].as_str().expect("access").to_string();
    let (s, me2) = app.get("/api/v1/users/profile", &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me2["id"], me["id"], "the key acts as its practitioner");

    let (bad_id, _) = decoded.split_once(':').expect("pair");
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{bad_id}:{}", random_alnum(32)));
    let (s, err) = app.client_credentials(&wrong).await;
    assert_eq!((s, err["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));

    let (s, _) = app.delete(&format!("/api/v1/practitioner_clients/{}", key["id"]), &mary, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/api/v1/users/profile", &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key's tokens stop working at once");
    let (s, _) = app.client_credentials(&basic).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key gets no new tokens");
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = spawn_app().await;
    for (what, token) in [
        ("expired", app.mint(10002, -3600).await),
        ("signed by another key", app.forged(10002).await),
        ("garbage", "not.a.token".to_string()),
        ("alg none", {
            let t = app.mint(10002, 3600).await;
            let mut p = t.split('.');
            let _h = p.next();
            format!("{}.{}.", jhe::auth::crypto::b64url(br#"{"alg":"none","typ":"JWT"}"#), p.next().expect("payload"))
        }),
        ("unknown user", app.mint(99999, 3600).await),
    ] {
        let (s, body) = app.get("/api/v1/users/profile", &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what} token");
        assert!(body["detail"].is_string(), "{what}: {body}");
    }
    let (s, _) = app.get("/api/v1/users/profile", &app.mint(10002, 3600).await).await;
    assert_eq!(s, StatusCode::OK, "a fresh token signed by the server's key is accepted");
}

#[tokio::test]
async fn server_settings_expose_the_web_client_id() {
    let app = spawn_app().await;
    let js = app.http.get(app.url("/common/server-settings.js")).send().await.expect("js").text().await.expect("text");
    assert!(js.contains(&format!("client_id: \"{ADMIN_CLIENT}\"")), "{js}");
    let resp = app.http.request(reqwest::Method::OPTIONS, app.url("/o/token/")).send().await.expect("preflight");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
}
