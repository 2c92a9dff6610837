//! Sign-in throttling from the attacker's side: wrong passwords slow down the
//! source that sends them, not the account's owner signing in from elsewhere;
//! the per-account ceiling locks passwords only, and a passkey still signs in.
//! Sources differ by `X-Forwarded-For` from a trusted proxy (the test client
//! connects from 127.0.0.1).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_server::ServerSettings;

use crate::harness::{Auth, PASSWORD, TestApp, expect_problem, spawn_app_with};
use crate::passkeys::{assert_with, cookie_of, register, set_cookie};
use crate::soft_authenticator::SoftAuthenticator;
use ward_store::on_both_backends;

on_both_backends!(
    a_guesser_elsewhere_cannot_lock_the_owner_out,
    a_passkey_signs_in_while_the_password_is_locked,
);

fn behind_proxy(s: &mut ServerSettings) {
    s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
}

async fn sign_in_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Response {
    app.req(Method::POST, "/api/v1/auth/login", &Auth::None)
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("send")
}

fn retry_after(r: &Response) -> i64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after")
}

/// Before the fix: the fifth wrong password from the attacker's address locked
/// the account for everyone for 15 minutes, so the owner's correct password from
/// their own address answered 429 `login_throttled`.
async fn a_guesser_elsewhere_cannot_lock_the_owner_out(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, behind_proxy).await;
    let t = app.tenant("alpha").await;
    let victim = app.user(&t, "cto@alpha.example", Role::Admin).await;
    let attacker = "198.51.100.66";
    // Ten real failures from the attacker: five free, then each after its
    // delay (1 s, 2 s, 4 s, 8 s, 16 s), which the attacker has to wait out.
    let mut waited = Vec::new();
    for _ in 0..10 {
        let mut r = sign_in_from(&app, attacker, "cto@alpha.example", "guess 123456").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let secs = retry_after(&r);
            expect_problem(r, StatusCode::TOO_MANY_REQUESTS, "login_throttled").await;
            waited.push(secs);
            app.clock.advance_secs(secs);
            r = sign_in_from(&app, attacker, "cto@alpha.example", "guess 123456").await;
        }
        expect_problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // The owner, from their own address, signs in at once.
    let r = sign_in_from(&app, "203.0.113.5", "cto@alpha.example", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(waited, [1, 2, 4, 8, 16]);
    // The attacker's next guess waits 32 s, even with the right password.
    let r = sign_in_from(&app, attacker, "cto@alpha.example", PASSWORD).await;
    assert_eq!(retry_after(&r), 32);
    expect_problem(r, StatusCode::TOO_MANY_REQUESTS, "login_throttled").await;

    // The throttling is audited once, against the account, naming the source.
    let events = app
        .store
        .list_audit(&ward_store::AuditFilter {
            tenant_id: Some(t.clone()),
            action: Some("auth.sign_in_throttled".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].target_id.as_deref(), Some(victim.as_str()));
    assert_eq!(events[0].details["source"], attacker);
    assert_eq!(events[0].details["failures"], 5);
    assert!(!events[0].details.to_string().contains("guess"));
}

/// Before the fix: there was no passkey exception to a lock — any five failures
/// locked the account (429 `login_throttled` for passwords) and nothing but
/// time ended it; no `auth.password_locked` or `auth.password_unlocked` event
/// existed.
async fn a_passkey_signs_in_while_the_password_is_locked(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, |s| {
        behind_proxy(s);
        s.login_throttle.account_lock_failures = 3;
    })
    .await;
    let t = app.tenant("alpha").await;
    let alice = app.member(&t, "alice@alpha.example", Role::User).await;
    let mut key = SoftAuthenticator::new();
    register(&app, &cookie_of(&alice.auth), &mut key).await;

    // Three guessers, one failure each: no source is slowed, the account locks.
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let r = sign_in_from(&app, ip, "alice@alpha.example", "guess 123456").await;
        expect_problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let r = sign_in_from(&app, "203.0.113.5", "alice@alpha.example", PASSWORD).await;
    assert!(retry_after(&r) > 0);
    let p = expect_problem(r, StatusCode::TOO_MANY_REQUESTS, "password_locked").await;
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("passkey"),
        "{p}"
    );

    // A passkey signs in during the lock, and ends it.
    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let session = set_cookie(&r, "ward_session");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["user"]["email"], "alice@alpha.example");
    assert!(!session.is_empty());
    let r = sign_in_from(&app, "203.0.113.5", "alice@alpha.example", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "second factor: the passkey"
    );

    let actions = app.audit_actions(&t).await;
    for (action, outcome) in [
        ("auth.password_locked", "failure"),
        ("auth.password_unlocked", "success"),
    ] {
        assert!(
            actions.iter().any(|(a, o)| a == action && o == outcome),
            "{action}: {actions:?}"
        );
    }
}
