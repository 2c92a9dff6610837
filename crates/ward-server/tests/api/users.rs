//! A company Admin manages users over the API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{PASSWORD, expect_problem, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(
    admin_creates_viewer_who_cannot_write,
    last_admin_is_kept,
    user_cannot_escalate,
    admin_revokes_all_sessions_of_a_user
);

async fn admin_creates_viewer_who_cannot_write(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let r = app
        .send_json(Method::POST, "/api/v1/users", &admin.auth,
            json!({"email": "Viewer@Acme.example", "role": "viewer", "password": "viewer passphrase 1"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["email"], "viewer@acme.example");
    assert_eq!(v["role"], "viewer");
    let viewer = crate::harness::Auth::Cookie(
        app.login("viewer@acme.example", "viewer passphrase 1")
            .await,
    );
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &viewer,
            json!({"email": "x@acme.example", "role": "viewer", "password": "viewer passphrase 2"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let list: Value = app
        .get("/api/v1/users", &viewer)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["users"].as_array().map(Vec::len), Some(2));
    // Duplicate email, even differently cased.
    let dup = app
        .send_json(Method::POST, "/api/v1/users", &admin.auth,
            json!({"email": "VIEWER@acme.example", "role": "user", "password": "viewer passphrase 3"}))
        .await;
    expect_problem(dup, StatusCode::CONFLICT, "email_taken").await;
    // Weak password.
    let weak = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &admin.auth,
            json!({"email": "w@acme.example", "role": "user", "password": "qwerty123456"}),
        )
        .await;
    let p = expect_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert_eq!(p["field"], "password");
    let actions = app.audit_actions(&t).await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "user.created").count(),
        2,
        "{actions:?}"
    );
}

async fn last_admin_is_kept(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.id),
            &admin.auth,
            json!({"role": "user"}),
        )
        .await;
    expect_problem(r, StatusCode::CONFLICT, "last_admin").await;
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/users/{}", admin.id),
            &admin.auth,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::CONFLICT, "last_admin").await;
    let me: Value = app
        .get("/api/v1/me", &admin.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["role"], "admin", "nothing changed");
    let second = app.user(&t, "second@acme.example", Role::Admin).await;
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.id),
            &admin.auth,
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Demotion takes effect on the next request.
    expect_problem(
        app.get("/api/v1/audit/events", &admin.auth).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let _ = second;
}

async fn user_cannot_escalate(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let user = app.member(&t, "user@acme.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &user.auth,
            json!({"email": "evil@acme.example", "role": "admin", "password": "sneaky passphrase"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{}", user.id),
            &user.auth,
            json!({"role": "admin"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &user.auth,
            json!({"name": "x", "scope": "admin"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "role_escalation").await;
    let me: Value = app
        .get("/api/v1/me", &user.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["role"], "user");
}

async fn admin_revokes_all_sessions_of_a_user(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let user = app.member(&t, "user@acme.example", Role::User).await;
    let again = crate::harness::Auth::Cookie(app.login("user@acme.example", PASSWORD).await);
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/users/{}/sessions", user.id),
            &admin.auth,
        )
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["revoked"], 2);
    for a in [&user.auth, &again] {
        expect_problem(
            app.get("/api/v1/me", a).await,
            StatusCode::UNAUTHORIZED,
            "session_invalid",
        )
        .await;
    }
    assert!(
        app.audit_actions(&t)
            .await
            .contains(&("user.sessions_revoked".into(), "success".into()))
    );
}
