//! HTTP hardening: CSRF, client IP behind proxies, security headers, rate limits,
//! health endpoints, and no secret in any log line.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{Auth, PASSWORD, captured_logs, expect_problem, spawn_app, spawn_app_with};
use ward_store::on_both_backends;

on_both_backends!(
    cross_site_post_with_cookie_is_refused,
    forwarded_for_is_believed_only_from_trusted_proxies,
    security_headers_on_every_response,
    rate_limit_answers_429,
    health_ready_metrics,
    no_secret_is_logged,
    secure_cookies_behind_a_tls_proxy,
);

async fn secure_cookies_behind_a_tls_proxy(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| s.secure_cookies = true).await;
    let t = app.tenant("acme").await;
    app.user(&t, "u@acme.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            json!({"email": "u@acme.example", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("__Host-ward_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(r.headers().get("strict-transport-security").is_some());
    let pair = cookie.split(';').next().expect("pair").to_owned();
    assert_eq!(
        app.get("/api/v1/me", &Auth::Cookie(pair)).await.status(),
        StatusCode::OK
    );
}

async fn cross_site_post_with_cookie_is_refused(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.trusted_origins = vec!["https://console.example".into()]
    })
    .await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let before = app.audit_count().await;
    let create = |site: Option<&'static str>, origin: Option<&'static str>, n: u32| {
        let mut r = app
            .req(Method::POST, "/api/v1/users", &admin.auth)
            .json(&json!({"email": format!("c{n}@acme.example"), "role": "viewer", "password": "csrf test passphrase"}));
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    expect_problem(
        create(Some("cross-site"), Some("https://evil.example"), 1)
            .await
            .expect("send"),
        StatusCode::FORBIDDEN,
        "csrf_rejected",
    )
    .await;
    expect_problem(
        create(Some("same-site"), None, 2).await.expect("send"),
        StatusCode::FORBIDDEN,
        "csrf_rejected",
    )
    .await;
    expect_problem(
        create(None, Some("https://evil.example"), 3)
            .await
            .expect("send"),
        StatusCode::FORBIDDEN,
        "csrf_rejected",
    )
    .await;
    assert_eq!(
        app.audit_count().await,
        before,
        "refused requests change nothing"
    );
    let users: Value = app
        .get("/api/v1/users", &admin.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    // Same-origin, a trusted origin, and non-browser clients pass.
    assert_eq!(
        create(Some("same-origin"), None, 4)
            .await
            .expect("send")
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        create(Some("cross-site"), Some("https://console.example"), 5)
            .await
            .expect("send")
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        create(None, None, 6).await.expect("send").status(),
        StatusCode::CREATED
    );
    // Login CSRF: a cross-site sign-in form post is refused too.
    let r = app
        .req(Method::POST, "/api/v1/auth/login", &Auth::None)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"email": "admin@acme.example", "password": PASSWORD}))
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::FORBIDDEN, "csrf_rejected").await;
}

async fn last_login_ip(app: &crate::harness::TestApp, t: &ward_core::TenantId) -> String {
    let events = app
        .store
        .list_audit(&ward_store::AuditFilter {
            tenant_id: Some(t.clone()),
            action: Some("auth.login".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("audit");
    events[0].context.ip.clone()
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: ward_store::Backend) {
    let login = |app: &crate::harness::TestApp| {
        app.req(Method::POST, "/api/v1/auth/login", &Auth::None)
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .json(&json!({"email": "u@acme.example", "password": PASSWORD}))
            .send()
    };
    // Untrusted peer: the header is a spoofing attempt and is ignored.
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    app.user(&t, "u@acme.example", Role::User).await;
    assert_eq!(login(&app).await.expect("send").status(), StatusCode::OK);
    assert_eq!(last_login_ip(&app, &t).await, "127.0.0.1");
    // Loopback as a trusted proxy: the rightmost untrusted hop is the client.
    let app = spawn_app_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")]
    })
    .await;
    let t = app.tenant("acme").await;
    app.user(&t, "u@acme.example", Role::User).await;
    assert_eq!(login(&app).await.expect("send").status(), StatusCode::OK);
    assert_eq!(last_login_ip(&app, &t).await, "198.51.100.7");
}

async fn security_headers_on_every_response(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    for (m, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/nope"),
        (Method::GET, "/api/v1/me"),
        (Method::PUT, "/healthz"),
    ] {
        let r = app
            .req(m.clone(), path, &Auth::None)
            .send()
            .await
            .expect("send");
        let h = r.headers();
        assert_eq!(
            h.get("content-security-policy")
                .and_then(|v| v.to_str().ok()),
            Some(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "{m} {path}"
        );
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert_eq!(
            h.get("referrer-policy").and_then(|v| v.to_str().ok()),
            Some("no-referrer")
        );
        assert!(h.get("x-request-id").is_some());
        assert!(h.get("server").is_none(), "no server header");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    expect_problem(
        app.get("/nope", &Auth::None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .req(Method::PUT, "/healthz", &Auth::None)
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

async fn rate_limit_answers_429(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.requests_per_second = 1;
        s.rate_limit.burst = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(app.get("/healthz", &Auth::None).await.status());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        (5..=6).contains(&ok),
        "burst of 5 (plus at most one refill): {statuses:?}"
    );
    let r = app.get("/healthz", &Auth::None).await;
    assert!(r.headers().get("retry-after").is_some());
    expect_problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn health_ready_metrics(backend: ward_store::Backend) {
    let token = "prometheus-scrape-token-0123456789abcdef";
    let app = spawn_app_with(backend, |s| {
        s.metrics_token = ward_server::metrics::MetricsToken::from_secret(token);
    })
    .await;
    assert_eq!(
        app.get("/healthz", &Auth::None).await.status(),
        StatusCode::OK
    );
    let ready: Value = app
        .get("/readyz", &Auth::None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    let metrics = app
        .get("/metrics", &Auth::Bearer(token.to_owned()))
        .await
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("ward_http_requests_total"), "{metrics}");
    app.store.close().await;
    expect_problem(
        app.get("/readyz", &Auth::None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
}

async fn no_secret_is_logged(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let pw = format!("unique logged? {} passphrase", backend.as_str());
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &admin.auth,
            json!({"email": "s@acme.example", "role": "user", "password": pw}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = app.login("s@acme.example", &pw).await;
    let wrong = format!("wrong {pw}");
    let _ = app
        .send_json(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            json!({"email": "s@acme.example", "password": wrong}),
        )
        .await;
    let member = crate::harness::Member {
        id: String::new(),
        auth: Auth::Cookie(cookie.clone()),
    };
    let token = app.token(&member, None).await;
    let _ = app.get("/api/v1/me", &Auth::Bearer(token.clone())).await;
    // A password sent as the wrong type must not come back in the error either.
    let r = app
        .req(Method::POST, "/api/v1/auth/login", &Auth::None)
        .header("content-type", "application/json")
        .body(r#"{"email": 12345678901234, "password": "typed wrong passphrase"}"#)
        .send()
        .await
        .expect("send");
    let body = r.text().await.expect("text");
    assert!(!body.contains("12345678901234"), "{body}");
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("logs")).to_string();
    assert!(logs.contains("request"), "logs are being captured");
    let cookie_value = cookie.split_once('=').map(|(_, v)| v).unwrap_or_default();
    for secret in [
        pw.as_str(),
        wrong.as_str(),
        token.as_str(),
        cookie_value,
        PASSWORD,
    ] {
        assert!(!logs.contains(secret), "a secret appeared in the logs");
    }
}
