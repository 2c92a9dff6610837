//! API tokens: shown once, scoped, expiring, revocable.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{Auth, expect_problem, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(token_lifecycle, token_scope_limits_its_owner, tokens_expire);

async fn token_lifecycle(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &admin.auth,
            json!({"name": "siem sync", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.expect("json");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("ward_") && secret.len() == 48,
        "{secret}"
    );
    let bearer = Auth::Bearer(secret.clone());
    let me: Value = app
        .get("/api/v1/me", &bearer)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["authenticated_by"], "token");
    // Listing never shows the secret again; last use is recorded.
    let list = app
        .get("/api/v1/tokens", &admin.auth)
        .await
        .text()
        .await
        .expect("text");
    assert!(!list.contains(&secret));
    let list: Value = serde_json::from_str(&list).expect("json");
    assert!(list["tokens"][0]["last_used_at"].is_string());
    // A token cannot mint tokens.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &bearer,
            json!({"name": "child"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "session_required").await;
    // Stored only as a keyed digest.
    let id = created["token"]["id"].as_str().expect("id");
    let r = app
        .req(Method::DELETE, &format!("/api/v1/tokens/{id}"), &admin.auth)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_problem(
        app.get("/api/v1/me", &bearer).await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    )
    .await;
    expect_problem(
        app.get("/api/v1/me", &Auth::Bearer("ward_nonsense".into()))
            .await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    )
    .await;
    let actions = app.audit_actions(&t).await;
    assert!(actions.contains(&("token.created".into(), "success".into())));
    assert!(actions.contains(&("token.revoked".into(), "success".into())));
    let all = app
        .store
        .list_audit(&ward_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(all.iter().all(|e| !e.details.to_string().contains(&secret)));
}

async fn token_scope_limits_its_owner(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let viewer_token = Auth::Bearer(app.token(&admin, Some("viewer")).await);
    let me: Value = app
        .get("/api/v1/me", &viewer_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["effective_role"], "viewer");
    let r = app
        .send_json(Method::POST, "/api/v1/users", &viewer_token,
            json!({"email": "x@acme.example", "role": "viewer", "password": "some long passphrase"}))
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Bearer requests are not cookie requests: no CSRF check, even cross-site.
    let admin_token = Auth::Bearer(app.token(&admin, None).await);
    let r = app
        .req(Method::POST, "/api/v1/users", &admin_token)
        .header("sec-fetch-site", "cross-site")
        .json(
            &json!({"email": "y@acme.example", "role": "user", "password": "some long passphrase"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &admin.auth,
            json!({"name": "x", "expires_in_days": 1000}),
        )
        .await;
    let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert_eq!(p["field"], "expires_in_days");
}

async fn tokens_expire(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let user = app.member(&t, "u@acme.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &user.auth,
            json!({"name": "short", "expires_in_days": 1}),
        )
        .await;
    let secret = r.json::<Value>().await.expect("json")["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_eq!(
        app.get("/api/v1/me", &Auth::Bearer(secret.clone()))
            .await
            .status(),
        StatusCode::OK
    );
    app.clock.advance_secs(86_400);
    expect_problem(
        app.get("/api/v1/me", &Auth::Bearer(secret)).await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    )
    .await;
}
