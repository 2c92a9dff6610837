//! `/metrics` is not public: it names every company (tenant ids in labels), so
//! the main listener answers only the operator's `metrics` token, and
//! `metrics.listen` serves it alone on an address to firewall.

use reqwest::StatusCode;
use ward_core::Role;
use ward_server::metrics::MetricsToken;

use crate::harness::{Auth, expect_problem, spawn_app, spawn_app_with};
use ward_store::on_both_backends;

on_both_backends!(
    metrics_need_the_metrics_token,
    metrics_listen_serves_metrics_alone,
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
