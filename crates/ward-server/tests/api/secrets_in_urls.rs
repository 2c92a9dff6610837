//! Secrets in URLs, tried by a company Admin: moving a SIEM connection to another
//! host without re-entering its credentials (so the stored token would be sent
//! there), and base URLs that carry a secret; and a sink whose URL and Basic
//! credentials are sealed delivers with them while nothing shows them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_crypto::{OsRandom, SettingsContext, SettingsKey};
use ward_store::{StoredSink, on_both_backends};

use crate::harness::{captured_logs, expect_problem, spawn_app, spawn_app_with};

on_both_backends!(
    moving_a_connection_needs_its_credentials,
    sealed_sink_credentials_reach_only_the_receiver,
);

const TOKEN: &str = "splunk-token-Qm41-do-not-leak";
const NEW_TOKEN: &str = "splunk-token-Rr07-do-not-leak";

/// Before the fix `PATCH {"base_url": "https://attacker.example"}` answered 200
/// and kept the stored token, which a deployment would then send there.
async fn moving_a_connection_needs_its_credentials(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await.auth;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/connections",
            &admin,
            json!({"name": "prod", "kind": "splunk", "base_url": "https://siem.acme.example:8089",
                "credentials": {"token": TOKEN}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1/connections/{id}");
    let audit_before = app.audit_count().await;
    for elsewhere in [
        "https://attacker.example",
        "http://siem.acme.example:8089",
        "https://siem.acme.example:8443",
        "https://siem.acme.example.attacker.example:8089",
    ] {
        let r = app
            .send_json(
                Method::PATCH,
                &path,
                &admin,
                json!({"base_url": elsewhere, "name": "moved"}),
            )
            .await;
        let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "credentials_required").await;
        assert_eq!(p["field"], "credentials", "{p}");
    }
    // Nothing changed, nothing was written.
    let v: Value = app.get(&path, &admin).await.json().await.expect("json");
    assert_eq!(v["base_url"], "https://siem.acme.example:8089");
    assert_eq!(v["name"], "prod");
    assert_eq!(app.audit_count().await, audit_before);
    // Base URLs carrying a secret are refused too.
    for secret_url in [
        "https://siem.acme.example:8089/?api_key=abc",
        "https://user:pw@siem.acme.example:8089/",
    ] {
        let r = app
            .send_json(
                Method::PATCH,
                &path,
                &admin,
                json!({"base_url": secret_url, "credentials": {"token": NEW_TOKEN}}),
            )
            .await;
        expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    // Same scheme, host and port: a new path needs nothing more.
    let r = app
        .send_json(
            Method::PATCH,
            &path,
            &admin,
            json!({"base_url": "https://SIEM.acme.example:8089/services"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Another host with the credentials given again: accepted.
    let r = app
        .send_json(
            Method::PATCH,
            &path,
            &admin,
            json!({"base_url": "https://splunk2.acme.example:8089", "credentials": {"token": NEW_TOKEN}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["base_url"], "https://splunk2.acme.example:8089");
    // The tokens are nowhere to be read.
    let trail = serde_json::to_string(
        &app.store
            .list_audit(&ward_store::AuditFilter {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("audit"),
    )
    .expect("json");
    let list = app
        .get("/api/v1/connections", &admin)
        .await
        .text()
        .await
        .expect("text");
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("lock")).to_string();
    for secret in [TOKEN, NEW_TOKEN] {
        assert!(!trail.contains(secret) && !list.contains(secret) && !logs.contains(secret));
    }
}

const HMAC_KEY: &str = "hmac-key-Lp55-do-not-leak";
const BASIC_PASSWORD: &str = "basic-pw-Wq12-do-not-leak";
const PATH_SECRET: &str = "PathSecretT0k3n";

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, Option<String>)>>,
}

/// A sink stored as `ward audit sink add` stores it, delivering to a loopback
/// receiver that records the path and the Basic credentials it was sent. Before
/// URLs were sealed there were no Basic credentials but the URL's, and the whole
/// URL sat in the sink's public settings.
async fn sealed_sink_credentials_reach_only_the_receiver(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.audit_forwarding.interval = Duration::from_millis(100);
    })
    .await;
    let seen = Arc::new(Seen::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let receiver = Router::new()
        .route(
            "/hooks/{secret}",
            post(
                |State(s): State<Arc<Seen>>,
                 axum::extract::Path(secret): axum::extract::Path<String>,
                 headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    s.requests.lock().expect("lock").push((secret, auth));
                    AxumStatus::NO_CONTENT
                },
            ),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(l, receiver).await });
    let url = format!("http://{addr}/hooks/{PATH_SECRET}");
    let id = "sink-chat";
    let secrets = json!({"url": url, "token": HMAC_KEY, "basic_user": "soc", "basic_password": BASIC_PASSWORD});
    let sealed = SettingsKey::derive(&app.master, &app.salt)
        .seal(
            secrets.to_string().as_bytes(),
            SettingsContext {
                owner_kind: "audit_sink",
                owner_id: id,
                field: "credentials",
                master_version: 1,
            },
            &OsRandom,
        )
        .expect("seal");
    let sink = StoredSink {
        id: id.into(),
        name: "chat".into(),
        kind: "webhook".into(),
        config: json!({"endpoint": format!("http://{addr}"), "batch_size": 10}).to_string(),
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
    let t = app.tenant("acme").await;
    app.member(&t, "admin@acme.example", Role::Admin).await;
    for _ in 0..200 {
        if !seen.requests.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected_basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("soc:{BASIC_PASSWORD}")
        )
    );
    let requests = seen.requests.lock().expect("lock").clone();
    assert!(!requests.is_empty(), "delivered");
    assert!(
        requests
            .iter()
            .all(|(p, a)| p == PATH_SECRET && a.as_deref() == Some(expected_basic.as_str())),
        "{requests:?}"
    );
    let stored = app.store.list_audit_sinks().await.expect("sinks");
    let trail = serde_json::to_string(
        &app.store
            .list_audit(&ward_store::AuditFilter {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("audit"),
    )
    .expect("json");
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("lock")).to_string();
    for secret in [HMAC_KEY, BASIC_PASSWORD, PATH_SECRET] {
        assert!(
            !format!("{stored:?}").contains(secret),
            "{secret} in the sink row"
        );
        assert!(
            !trail.contains(secret) && !logs.contains(secret),
            "{secret}"
        );
    }
}
