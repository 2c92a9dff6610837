//! Bad input gets a clear problem+json error with a stable code, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ward_core::Role;

use crate::harness::{expect_problem, spawn_app_with};
use ward_store::on_both_backends;

on_both_backends!(bad_bodies_change_nothing, bad_queries_are_refused);

async fn bad_bodies_change_nothing(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| s.max_body_bytes = 4096).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let audit_before = app.audit_count().await;
    let long = "x".repeat(300);
    let huge = format!(
        r#"{{"email":"a@acme.example","role":"user","password":"{}"}}"#,
        "p".repeat(8000)
    );
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        ("malformed JSON", "application/json", b"{\"email\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("wrong content type", "text/plain", br#"{"email":"a@acme.example","role":"user","password":"long enough pass"}"#.to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("oversized body", "application/json", huge.into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        ("invalid UTF-8", "application/json", b"{\"email\":\"a\xff\xfe@acme.example\",\"role\":\"user\",\"password\":\"long enough pass\"}".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("unknown field", "application/json", br#"{"email":"a@acme.example","role":"user","password":"long enough pass","tenant_id":"other"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("wrong type", "application/json", br#"{"email":"a@acme.example","role":7,"password":"long enough pass"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("over-long name", "application/json", format!(r#"{{"email":"a@acme.example","role":"user","password":"long enough pass","display_name":"{long}"}}"#).into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("over-long email", "application/json", format!(r#"{{"email":"{long}@acme.example","role":"user","password":"long enough pass"}}"#).into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("bad role", "application/json", br#"{"email":"a@acme.example","role":"root","password":"long enough pass"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("control characters", "application/json", br#"{"email":"a@acme.example","role":"user","password":"long enough pass","display_name":"a\u0000b"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("JSON array", "application/json", b"[]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
    ];
    for (what, ct, body, status, code) in cases {
        let r = app
            .req(Method::POST, "/api/v1/users", &admin.auth)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), status, "{what}");
        let p = expect_problem(r, status, code).await;
        assert!(
            p["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {p}"
        );
    }
    let users: Value = app
        .get("/api/v1/users", &admin.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        users["users"].as_array().map(Vec::len),
        Some(1),
        "no user was created"
    );
    assert_eq!(
        app.audit_count().await,
        audit_before,
        "no audit event was written"
    );
    // Non-UUID ids are simply not found.
    let r = app.get("/api/v1/users/1%20OR%201=1", &admin.auth).await;
    expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

async fn bad_queries_are_refused(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    for q in [
        "limit=0",
        "limit=100000",
        "since=yesterday",
        "limit=abc",
        "bogus=1",
    ] {
        let r = app
            .get(&format!("/api/v1/audit/events?{q}"), &admin.auth)
            .await;
        expect_problem(r, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let page: Value = app
        .get(
            "/api/v1/audit/events?limit=1&action=auth.login",
            &admin.auth,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["events"][0]["action"], "auth.login");
    assert!(page["next_before"].is_null() || page["next_before"].is_i64());
}
