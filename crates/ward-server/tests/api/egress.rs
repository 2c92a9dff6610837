//! Server-side request forgery, tried by a company Admin: SIEM connection URLs,
//! SSO issuers (and the `jwks_uri` a discovery document names) and audit-sink URLs
//! pointing at loopback, a name that resolves to loopback, link-local, cloud
//! metadata (also written as IPv4-mapped IPv6) and private addresses are refused
//! by default, while the operator's `egress.allow` reaches the same local
//! listeners; redirects are not followed; the connection test does not tell a
//! closed port from another; unauthenticated SSO starts are rate-limited, reuse a
//! cached discovery document and keep a bounded number of ceremony rows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_core::egress::EgressPolicy;
use ward_core::passkey::CeremonyKind;
use ward_crypto::{OsRandom, SettingsContext, SettingsKey};
use ward_store::{StoredSink, on_both_backends};

use crate::harness::{Auth, TestApp, spawn_app_with};

on_both_backends!(
    connections_to_internal_addresses_are_refused_by_default,
    the_allow_list_reaches_local_listeners,
    connection_tests_do_not_reveal_port_state,
    sso_issuers_and_key_sets_on_internal_addresses_are_refused,
    redirects_are_not_followed,
    sinks_on_internal_addresses_are_refused_by_default,
    sso_starts_are_limited_cached_and_bounded,
);

/// A TCP listener on loopback that counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, hits)
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}

/// A name other than `localhost` that `/etc/hosts` maps to a loopback address.
fn hosts_file_loopback_name() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|l| {
        let mut parts = l.split('#').next()?.split_whitespace();
        let addr: std::net::IpAddr = parts.next()?.parse().ok()?;
        if !addr.is_loopback() {
            return None;
        }
        parts
            .find(|n| {
                *n != "localhost"
                    && !n.starts_with("ip6-")
                    && n.contains(|c: char| c.is_ascii_alphabetic())
            })
            .map(str::to_owned)
    })
}

async fn deny_by_default(backend: ward_store::Backend) -> TestApp {
    spawn_app_with(backend, |s| s.egress = EgressPolicy::default()).await
}

async fn admin_of(app: &TestApp) -> Auth {
    let t = app.tenant("acme").await;
    app.member(&t, "admin@acme.example", Role::Admin).await.auth
}

async fn create_connection(app: &TestApp, admin: &Auth, name: &str, base_url: &str) -> String {
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/connections",
            admin,
            json!({"name": name, "kind": "splunk", "base_url": base_url,
                "credentials": {"token": "hec-token-for-egress"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{base_url}");
    let v: Value = r.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

async fn test_connection(app: &TestApp, admin: &Auth, id: &str) -> Value {
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            admin,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

/// Before the fix every URL here was tried, and the open loopback port answered
/// `reachable: true, "127.0.0.1:P accepted a connection"`.
async fn connections_to_internal_addresses_are_refused_by_default(backend: ward_store::Backend) {
    let app = deny_by_default(backend).await;
    let admin = admin_of(&app).await;
    let (port, hits) = counting_listener().await;
    let mut urls = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://0x7f.1:{port}"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:169.254.169.254]/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        "http://10.0.0.1:6379".to_owned(),
        "http://localhost:5432".to_owned(),
        "http://[::1]:22".to_owned(),
        "http://0.0.0.0:22".to_owned(),
    ];
    if let Some(name) = hosts_file_loopback_name() {
        urls.push(format!("http://{name}:{port}"));
    }
    for (i, url) in urls.iter().enumerate() {
        let id = create_connection(&app, &admin, &format!("c{i}"), url).await;
        let result = test_connection(&app, &admin, &id).await;
        assert_eq!(
            result,
            json!({
                "reachable": false,
                "reason": "refused_by_policy",
                "detail": "this server may not connect to that address (egress policy)",
            }),
            "{url}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no connection was made");
}

/// With `egress.allow` the same local listener is reached, by address and by a
/// name that resolves to it.
async fn the_allow_list_reaches_local_listeners(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.egress = EgressPolicy::with_allow_list(&["127.0.0.1/32"]).expect("policy")
    })
    .await;
    let admin = admin_of(&app).await;
    let (port, hits) = counting_listener().await;
    let mut urls = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    if let Some(name) = hosts_file_loopback_name() {
        urls.push(format!("http://{name}:{port}"));
    }
    for (i, url) in urls.iter().enumerate() {
        let id = create_connection(&app, &admin, &format!("c{i}"), url).await;
        let result = test_connection(&app, &admin, &id).await;
        assert_eq!(result["reachable"], true, "{url}: {result}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), urls.len());
    // What the allow-list does not name stays refused.
    let id = create_connection(&app, &admin, "redis", "http://10.0.0.1:6379").await;
    assert_eq!(
        test_connection(&app, &admin, &id).await["reason"],
        "refused_by_policy"
    );
}

/// Before the fix the answer named the port and the error kind
/// (`127.0.0.1:P: connection refused`), so two closed ports answered differently
/// and a scanner could tell refused from filtered from open.
async fn connection_tests_do_not_reveal_port_state(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.egress = EgressPolicy::with_allow_list(&["127.0.0.1/32"]).expect("policy")
    })
    .await;
    let admin = admin_of(&app).await;
    let mut answers = Vec::new();
    for i in 0..2 {
        let url = format!("http://127.0.0.1:{}", closed_port().await);
        let id = create_connection(&app, &admin, &format!("closed{i}"), &url).await;
        answers.push(test_connection(&app, &admin, &id).await);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0],
        json!({"reachable": false, "reason": "unreachable",
            "detail": "the host did not accept a connection"})
    );
    // Refused destinations: one answer whatever the port.
    let mut refused = Vec::new();
    for port in [6379, 6380] {
        let id = create_connection(
            &app,
            &admin,
            &format!("p{port}"),
            &format!("http://10.0.0.1:{port}"),
        )
        .await;
        refused.push(test_connection(&app, &admin, &id).await);
    }
    assert_eq!(refused[0], refused[1]);
    for a in answers.iter().chain(&refused) {
        let text = a.to_string().to_lowercase();
        assert!(
            !text.contains("connection refused") && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}

/// A discovery stand-in that counts what it serves; its `jwks_uri` and its answer
/// (document, or a redirect) are the test's to set.
struct Provider {
    issuer: String,
    jwks_uri: Mutex<String>,
    redirect_to: Mutex<Option<String>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

async fn spawn_provider() -> Arc<Provider> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port());
    let p = Arc::new(Provider {
        jwks_uri: Mutex::new(format!("{issuer}/jwks")),
        issuer,
        redirect_to: Mutex::new(None),
        discovery_hits: AtomicUsize::new(0),
        jwks_hits: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(p): State<Arc<Provider>>| async move {
                p.discovery_hits.fetch_add(1, Ordering::SeqCst);
                if let Some(to) = p.redirect_to.lock().expect("lock").clone() {
                    return (AxumStatus::FOUND, [("location", to)]).into_response();
                }
                axum::Json(json!({
                    "issuer": p.issuer,
                    "authorization_endpoint": format!("{}/authorize", p.issuer),
                    "token_endpoint": format!("{}/token", p.issuer),
                    "jwks_uri": p.jwks_uri.lock().expect("lock").clone(),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                }))
                .into_response()
            }),
        )
        .route(
            "/jwks",
            get(|State(p): State<Arc<Provider>>| async move {
                p.jwks_hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"keys": []}))
            }),
        )
        .with_state(p.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    p
}

/// `GET /sso/{id}`: where the browser is sent (the provider, or back to /login).
async fn sso_start(app: &TestApp, provider: &str) -> (StatusCode, String) {
    let r = app.get(&format!("/sso/{provider}"), &Auth::None).await;
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (r.status(), location)
}

async fn sso_failure_reasons(app: &TestApp) -> Vec<String> {
    app.store
        .list_audit(&ward_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == ward_core::audit::actions::AUTH_SSO_FAILED)
        .filter_map(|e| e.details["reason"].as_str().map(str::to_owned))
        .collect()
}

/// Before the fix the issuer on loopback was fetched (the start redirected to
/// its authorization endpoint), and a `jwks_uri` on another internal port was
/// fetched too.
async fn sso_issuers_and_key_sets_on_internal_addresses_are_refused(backend: ward_store::Backend) {
    let provider = spawn_provider().await;
    let app = deny_by_default(backend).await;
    let admin = admin_of(&app).await;
    let id = crate::oidc::add_provider(&app, &admin, &provider.issuer, true).await;
    let (status, location) = sso_start(&app, &id).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/login"), "{location}");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        sso_failure_reasons(&app).await,
        ["provider_refused_by_policy"]
    );

    // The operator allows the issuer's own address and port only; the discovery
    // document sends Ward to another internal port for the keys.
    let port = provider.issuer.rsplit(':').next().expect("port").to_owned();
    let app = spawn_app_with(backend, |s| {
        s.egress = EgressPolicy::with_allow_list(&[format!("127.0.0.1:{port}")]).expect("policy")
    })
    .await;
    let admin = admin_of(&app).await;
    let (other_port, other_hits) = counting_listener().await;
    *provider.jwks_uri.lock().expect("lock") = format!("http://127.0.0.1:{other_port}/jwks");
    let id = crate::oidc::add_provider(&app, &admin, &provider.issuer, true).await;
    let (_, location) = sso_start(&app, &id).await;
    assert!(location.starts_with("/login"), "{location}");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(other_hits.load(Ordering::SeqCst), 0, "jwks_uri not fetched");
    assert_eq!(
        sso_failure_reasons(&app).await,
        ["provider_refused_by_policy"]
    );
}

/// Redirects were already off before this change; this keeps them off: a
/// provider whose discovery answers 302 to another local port, and a webhook
/// receiver that does the same, send Ward nowhere.
async fn redirects_are_not_followed(backend: ward_store::Backend) {
    let provider = spawn_provider().await;
    let (other_port, other_hits) = counting_listener().await;
    let elsewhere = format!("http://127.0.0.1:{other_port}/");
    *provider.redirect_to.lock().expect("lock") = Some(elsewhere.clone());
    let app = spawn_app_with(backend, |s| {
        s.audit_forwarding.interval = Duration::from_millis(100);
        s.audit_forwarding.backoff_cap = Duration::from_millis(200);
    })
    .await;
    let admin = admin_of(&app).await;
    let id = crate::oidc::add_provider(&app, &admin, &provider.issuer, true).await;
    let (_, location) = sso_start(&app, &id).await;
    assert!(location.starts_with("/login"), "{location}");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1);

    // A webhook receiver that redirects.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", l.local_addr().expect("addr"));
    let to = elsewhere.clone();
    let redirector = Router::new().route(
        "/hook",
        any(move || {
            let to = to.clone();
            async move { (AxumStatus::FOUND, [("location", to)]) }
        }),
    );
    tokio::spawn(async move { axum::serve(l, redirector).await });
    add_sink(&app, "hook", &hook).await;
    wait_until("a failed delivery", async || {
        app.store
            .list_audit_sinks()
            .await
            .expect("sinks")
            .iter()
            .any(|s| s.last_error.is_some())
    })
    .await;
    let sinks = app.store.list_audit_sinks().await.expect("sinks");
    assert_eq!(
        sinks[0].last_error.as_deref(),
        Some("the receiver answered HTTP 302")
    );
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "nothing followed a redirect"
    );
}

/// A webhook sink as `ward audit sink add` stores it: the URL and HMAC key
/// sealed as one `credentials` document, only the endpoint in the clear.
async fn add_sink(app: &TestApp, name: &str, url: &str) {
    let id = format!("sink-{name}");
    let secrets = json!({"url": url, "token": "webhook-hmac-key"}).to_string();
    let sealed = SettingsKey::derive(&app.master, &app.salt)
        .seal(
            secrets.as_bytes(),
            SettingsContext {
                owner_kind: "audit_sink",
                owner_id: &id,
                field: "credentials",
                master_version: 1,
            },
            &OsRandom,
        )
        .expect("seal");
    let endpoint = ward_jobs::egress::Origin::of(url)
        .expect("origin")
        .to_string();
    let sink = StoredSink {
        id: id.clone(),
        name: name.into(),
        kind: "webhook".into(),
        config: json!({ "endpoint": endpoint, "batch_size": 5 }).to_string(),
        secret: Some(sealed),
        secret_master_version: Some(1),
        created_at: ward_server::Clock::now(app.clock.as_ref()),
        delivered_size: 0,
        failing_since: None,
        alerted: false,
        last_error: None,
    };
    let e = ward_core::AuditEvent::new(
        ward_core::EventId::from_random(crate::harness::random16()),
        ward_server::Clock::now(app.clock.as_ref()),
        None,
        ward_core::Actor::system("test"),
        ward_core::RequestContext::cli("t".into()),
        ward_core::audit::actions::AUDIT_SINK_CREATED,
    );
    app.store.create_audit_sink(&sink, &e).await.expect("sink");
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Before the fix the forwarder delivered to the loopback receiver.
async fn sinks_on_internal_addresses_are_refused_by_default(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.egress = EgressPolicy::default();
        s.audit_forwarding.interval = Duration::from_millis(100);
        s.audit_forwarding.backoff_cap = Duration::from_millis(200);
    })
    .await;
    let (port, hits) = counting_listener().await;
    add_sink(&app, "local", &format!("http://127.0.0.1:{port}/hook")).await;
    add_sink(&app, "named", &format!("http://localhost:{port}/hook")).await;
    add_sink(&app, "metadata", "http://[::ffff:169.254.169.254]/latest").await;
    admin_of(&app).await;
    wait_until("every sink failing", async || {
        app.store
            .list_audit_sinks()
            .await
            .expect("sinks")
            .iter()
            .all(|s| s.last_error.is_some())
    })
    .await;
    for s in app.store.list_audit_sinks().await.expect("sinks") {
        let e = s.last_error.unwrap_or_default();
        assert!(
            e.starts_with("refused by the egress policy"),
            "{}: {e}",
            s.name
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// Before the fix every `GET /sso/{id}` fetched discovery and keys again (two
/// requests), was never limited, and left a ceremony row each time.
async fn sso_starts_are_limited_cached_and_bounded(backend: ward_store::Backend) {
    let provider = spawn_provider().await;
    // Four sign-in attempts a minute: the Admin's password sign-in, three starts.
    let app = spawn_app_with(backend, |s| s.rate_limit.login_per_minute = 4).await;
    let admin = admin_of(&app).await;
    let id = crate::oidc::add_provider(&app, &admin, &provider.issuer, true).await;
    for _ in 0..3 {
        let (status, location) = sso_start(&app, &id).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(location.starts_with(&provider.issuer), "{location}");
    }
    // One discovery (and one key set) served all three.
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1);
    let (status, _) = sso_start(&app, &id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1);

    // The cache lasts five minutes, and a changed provider is discovered afresh.
    let app = spawn_app_with(backend, |_| {}).await;
    let admin = admin_of(&app).await;
    let id = crate::oidc::add_provider(&app, &admin, &provider.issuer, true).await;
    let before = provider.discovery_hits.load(Ordering::SeqCst);
    sso_start(&app, &id).await;
    sso_start(&app, &id).await;
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), before + 1);
    app.clock.advance_secs(301);
    sso_start(&app, &id).await;
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), before + 2);
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/sso/providers/{id}"),
            &admin,
            json!({"name": "Forger renamed"}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    sso_start(&app, &id).await;
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), before + 3);

    // Open ceremonies from one address are bounded; the next start is refused
    // and stores nothing.
    let max = 30;
    let now = app.state.now();
    let open = app
        .store
        .open_ceremonies_from("127.0.0.1", CeremonyKind::OidcSignIn, now)
        .await
        .expect("count");
    for _ in open..max {
        let (status, _) = sso_start(&app, &id).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let (status, _) = sso_start(&app, &id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.store
            .open_ceremonies_from("127.0.0.1", CeremonyKind::OidcSignIn, now)
            .await
            .expect("count"),
        max
    );
    // They expire (ten minutes), and expired rows are cleared by the next start.
    app.clock
        .advance_secs(ward_core::passkey::CEREMONY_TTL_SECS + 1);
    let (status, _) = sso_start(&app, &id).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.store
            .open_ceremonies_from("127.0.0.1", CeremonyKind::OidcSignIn, app.state.now())
            .await
            .expect("count"),
        1
    );
}
