//! `/metrics` is not public: it names every company (tenant ids in labels), so
//! the main listener answers only the operator's `metrics` token, and
//! `metrics.listen` serves it alone on an address to firewall.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_server::metrics::MetricsToken;

use crate::harness::{Auth, expect_problem, spawn_app, spawn_app_with};
use ward_store::on_both_backends;

on_both_backends!(
    metrics_need_the_metrics_token,
    metrics_listen_serves_metrics_alone,
    a_company_metrics_token_reads_only_its_company,
);

const SCRAPE_TOKEN: &str = "prometheus-scrape-token-0123456789abcdef";

/// Before the fix: an anonymous `GET /metrics` answered 200 with every metric,
/// and so did a company Admin's session or API token.
async fn metrics_need_the_metrics_token(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.metrics_token = MetricsToken::from_secret(SCRAPE_TOKEN);
    })
    .await;
    let t = app.tenant("alpha").await;
    let admin = app.member(&t, "admin@alpha.example", Role::Admin).await;
    let api_token = Auth::Bearer(app.token(&admin, None).await);

    let r = app.get("/metrics", &Auth::None).await;
    expect_problem(r, StatusCode::UNAUTHORIZED, "metrics_token_required").await;
    for caller in [&admin.auth, &api_token, &Auth::Bearer("x".repeat(40))] {
        let r = app.get("/metrics", caller).await;
        expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let r = app
        .get("/metrics", &Auth::Bearer(SCRAPE_TOKEN.to_owned()))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("text");
    assert!(text.contains("ward_http_requests_total"), "{text}");

    // Without a configured token nobody reads them on the main listener.
    let bare = spawn_app(backend).await;
    let r = bare
        .get("/metrics", &Auth::Bearer(SCRAPE_TOKEN.to_owned()))
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn metrics_listen_serves_metrics_alone(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let _ = app.get("/healthz", &Auth::None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(ward_server::metrics::serve_metrics(
        listener,
        std::future::pending(),
    ));
    let r = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("ward_http_requests_total")
    );
    // Nothing else is served there.
    for path in ["/api/v1/me", "/healthz", "/login"] {
        let r = app
            .http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .expect("send");
        expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    server.abort();
}

/// Before the fix: any caller read `ward_encrypted_fields{tenant="ten_…"}` for
/// every company. Now an Admin's token with the `metrics` scope reads its own
/// company's series only, and that token opens nothing else.
async fn a_company_metrics_token_reads_only_its_company(backend: ward_store::Backend) {
    use ward_jobs::key_maintenance::{LEASE_NAME, ReencryptSettings, run_pass};
    let app = spawn_app_with(backend, |s| {
        s.metrics_token = MetricsToken::from_secret(SCRAPE_TOKEN);
    })
    .await;
    let alpha = app.tenant("alpha").await;
    let bravo = app.tenant("bravo").await;
    let a_admin = app.member(&alpha, "admin@alpha.example", Role::Admin).await;
    let b_admin = app.member(&bravo, "admin@bravo.example", Role::Admin).await;
    for admin in [&a_admin, &b_admin] {
        let r = app
            .send_json(
                Method::POST,
                "/api/v1/connections",
                &admin.auth,
                json!({"name": "SIEM", "kind": "splunk", "base_url": "https://siem.example",
                       "credentials": {"token": "t"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Key maintenance publishes each company's ciphertext counts.
    app.clock.advance_secs(31);
    let now = app.state.now();
    assert!(
        app.store
            .acquire_lease(LEASE_NAME, "test", now, now.plus_seconds(60))
            .await
            .expect("lease")
    );
    for t in [&alpha, &bravo] {
        run_pass(
            &app.state
                .key_maintenance(ReencryptSettings::default(), "test"),
            t,
        )
        .await
        .expect("pass");
    }
    let all = app
        .get("/metrics", &Auth::Bearer(SCRAPE_TOKEN.to_owned()))
        .await
        .text()
        .await
        .expect("text");
    assert!(
        all.contains(alpha.as_str()) && all.contains(bravo.as_str()),
        "{all}"
    );

    // A User may not mint a metrics token; an Admin may.
    let user = app.member(&alpha, "user@alpha.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &user.auth,
            json!({"name": "prometheus", "metrics": true}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &a_admin.auth,
            json!({"name": "prometheus", "metrics": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["token"]["metrics"], true);
    assert_eq!(created["token"]["scope"], "viewer");
    let scrape = Auth::Bearer(created["secret"].as_str().expect("secret").to_owned());

    let r = app.get("/metrics", &scrape).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen = r.text().await.expect("text");
    assert!(seen.contains(alpha.as_str()), "{seen}");
    assert!(!seen.contains(bravo.as_str()), "{seen}");
    assert!(
        seen.lines()
            .filter(|l| l.contains("tenant=\""))
            .all(|l| l.contains(alpha.as_str())),
        "{seen}"
    );
    assert!(seen.contains("ward_http_requests_total"), "{seen}");

    // The scraper's token opens nothing else.
    for path in ["/api/v1/me", "/api/v1/users", "/api/v1/connections"] {
        let r = app.get(path, &scrape).await;
        expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
}
