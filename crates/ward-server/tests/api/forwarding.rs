//! HTTP forwarding sinks against local stand-ins of their documented APIs (a
//! Splunk HEC `/services/collector/event` endpoint and a generic webhook that
//! checks Ward's HMAC signature; a commercial SIEM cannot run here): every event
//! arrives once acknowledged, in leaf order, across a receiver outage; the outage
//! is alerted and the secrets never leave sealed except in the request itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use ward_core::Role;
use ward_core::audit::actions;
use ward_crypto::{OsRandom, SettingsContext, SettingsKey};
use ward_store::{StoredSink, on_both_backends};

use crate::harness::{TestApp, spawn_app_with};

on_both_backends!(http_sinks_receive_every_event_across_an_outage);

const HEC_TOKEN: &str = "hec-7c1f-token-do-not-leak";
const HMAC_KEY: &str = "webhook-hmac-key-do-not-leak";

#[derive(Default)]
struct Receiver {
    down: AtomicBool,
    hec: Mutex<Vec<u64>>,
    webhook: Mutex<Vec<u64>>,
    refused: Mutex<Vec<String>>,
}

async fn hec(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Splunk {HEC_TOKEN}"))
    {
        r.refused.lock().expect("lock").push("hec token".into());
        return StatusCode::UNAUTHORIZED;
    }
    // HEC bodies are concatenated JSON objects.
    let stream = serde_json::Deserializer::from_slice(&body).into_iter::<Value>();
    let mut got = r.hec.lock().expect("lock");
    for v in stream {
        let v = v.expect("hec json");
        assert_eq!(v["sourcetype"], "ward:audit");
        got.push(v["event"]["leaf_index"].as_u64().expect("leaf"));
    }
    StatusCode::OK
}

async fn webhook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // The receiver's side of the signature, written from the documented scheme.
    let sig = headers
        .get("x-ward-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (t, v1) = sig
        .split_once(",v1=")
        .map(|(t, v)| (t.trim_start_matches("t=").to_owned(), v.to_owned()))
        .unwrap_or_default();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(HMAC_KEY.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if expected != v1 {
        r.refused
            .lock()
            .expect("lock")
            .push("webhook signature".into());
        return StatusCode::UNAUTHORIZED;
    }
    let v: Value = serde_json::from_slice(&body).expect("json");
    let mut got = r.webhook.lock().expect("lock");
    for e in v["events"].as_array().expect("events") {
        got.push(e["leaf_index"].as_u64().expect("leaf"));
    }
    StatusCode::NO_CONTENT
}

async fn add_sink(app: &TestApp, name: &str, kind: &str, url: String, secret: &str) {
    let id = format!("sink-{name}");
    let sealed = SettingsKey::derive(&app.master, &app.salt)
        .seal(
            secret.as_bytes(),
            SettingsContext {
                owner_kind: "audit_sink",
                owner_id: &id,
                field: "secret",
                master_version: 1,
            },
            &OsRandom,
        )
        .expect("seal");
    let sink = StoredSink {
        id: id.clone(),
        name: name.into(),
        kind: kind.into(),
        config: serde_json::json!({ "url": url, "batch_size": 5 }).to_string(),
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
        actions::AUDIT_SINK_CREATED,
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

fn in_order_none_lost(got: &[u64], size: u64) -> bool {
    let mut next = 0;
    for &i in got {
        if i > next {
            return false;
        }
        if i == next {
            next += 1;
        }
    }
    next == size
}

async fn http_sinks_receive_every_event_across_an_outage(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        s.audit_forwarding.interval = Duration::from_millis(100);
        s.audit_forwarding.backoff_base = Duration::from_millis(100);
        s.audit_forwarding.backoff_cap = Duration::from_millis(300);
        s.audit_forwarding.alert_after = Duration::from_secs(1);
    })
    .await;
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stand_in = Router::new()
        .route("/services/collector/event", post(hec))
        .route("/hook", post(webhook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, stand_in).await });

    let t = app.tenant("acme").await;
    app.member(&t, "admin@acme.example", Role::Admin).await;
    add_sink(
        &app,
        "hec",
        "splunk-hec",
        format!("http://{addr}/services/collector/event"),
        HEC_TOKEN,
    )
    .await;
    add_sink(
        &app,
        "hook",
        "webhook",
        format!("http://{addr}/hook"),
        HMAC_KEY,
    )
    .await;
    for i in 0..6 {
        app.member(&t, &format!("u{i}@acme.example"), Role::Viewer)
            .await;
    }
    let settled = async |app: &TestApp, r: &Receiver| {
        let size = app.store.audit_tree_size().await.expect("size");
        app.store.audit_pending_count().await.expect("pending") == 0
            && in_order_none_lost(&r.hec.lock().expect("lock"), size)
            && in_order_none_lost(&r.webhook.lock().expect("lock"), size)
    };
    wait_until("first delivery", async || settled(&app, &receiver).await).await;

    // Outage: the receiver answers 503 for a while.
    receiver.down.store(true, Ordering::SeqCst);
    for i in 0..4 {
        app.member(&t, &format!("late{i}@acme.example"), Role::Viewer)
            .await;
    }
    wait_until("failed deliveries", async || {
        let sinks = app.store.list_audit_sinks().await.expect("sinks");
        sinks
            .iter()
            .all(|s| s.failing_since.is_some() && s.last_error.is_some())
    })
    .await;
    let sinks = app.store.list_audit_sinks().await.expect("sinks");
    assert!(
        sinks
            .iter()
            .all(|s| s.last_error.as_deref() == Some("the receiver answered HTTP 503")),
        "{sinks:?}"
    );
    // Past the alert threshold (Ward's clock; the retries themselves keep going).
    app.clock.advance_secs(2);
    wait_until("the failure alert", async || {
        app.audit_actions_all()
            .await
            .iter()
            .filter(|a| a.as_str() == actions::AUDIT_SINK_FAILING)
            .count()
            == 2
    })
    .await;
    receiver.down.store(false, Ordering::SeqCst);
    wait_until("recovery and redelivery", async || {
        // Retries wait on Ward's clock: move it past each backoff.
        app.clock.advance_secs(1);
        settled(&app, &receiver).await
            && app
                .audit_actions_all()
                .await
                .iter()
                .filter(|a| a.as_str() == actions::AUDIT_SINK_RECOVERED)
                .count()
                == 2
    })
    .await;
    wait_until("the recovery events delivered", async || {
        settled(&app, &receiver).await
    })
    .await;
    assert!(
        receiver.refused.lock().expect("lock").is_empty(),
        "bad token or signature"
    );
    // Secrets stay out of logs and of the audit trail.
    let logs =
        String::from_utf8_lossy(&crate::harness::captured_logs().lock().expect("lock")).to_string();
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
    for secret in [HEC_TOKEN, HMAC_KEY] {
        assert!(!logs.contains(secret) && !trail.contains(secret));
    }
}
