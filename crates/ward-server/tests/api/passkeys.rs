//! Passkeys through the API with a software authenticator: registration,
//! passwordless sign-in, the second factor, re-authentication, the MFA policy,
//! and every refusal the issue names (wrong origin, wrong RP id, replayed
//! assertion, challenge from another session, signature-counter regression).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{Auth, PASSWORD, TestApp, expect_problem, spawn_app};
use crate::soft_authenticator::SoftAuthenticator;
use ward_store::on_both_backends;

on_both_backends!(
    register_then_sign_in_without_password,
    password_then_passkey_as_second_factor,
    mfa_policy_restricts_until_verified_and_keeps_the_last_passkey,
    refused_passkey_responses_are_audited,
    sensitive_actions_need_recent_reauthentication,
);

/// The `name=value` of the cookie a response sets, by name prefix.
pub(crate) fn set_cookie(r: &Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| v.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn cookies(parts: &[&str]) -> Auth {
    Auth::Cookie(parts.join("; "))
}

pub(crate) fn cookie_of(auth: &Auth) -> String {
    match auth {
        Auth::Cookie(c) => c.clone(),
        _ => panic!("not a cookie session"),
    }
}

async fn post(app: &TestApp, path: &str, auth: &Auth, body: Value) -> Response {
    app.send_json(Method::POST, path, auth, body).await
}

/// Registers `key` on the signed-in `session` cookie; returns the passkey's id.
pub(crate) async fn register(app: &TestApp, session: &str, key: &mut SoftAuthenticator) -> String {
    let r = post(
        app,
        "/api/v1/passkeys/registration",
        &cookies(&[session]),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let ceremony = set_cookie(&r, "ward_ceremony");
    let options: Value = r.json().await.expect("json");
    let options = &options["options"];
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "passkeys are discoverable, for passwordless sign-in"
    );
    let credential = key.register(options);
    let r = post(
        app,
        "/api/v1/passkeys",
        &cookies(&[session, &ceremony]),
        json!({"name": "laptop", "credential": credential}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// Starts a ceremony at `start` and answers it with `key`; returns the finish
/// response.
pub(crate) async fn assert_with(
    app: &TestApp,
    start: &str,
    finish: &str,
    session: Option<&str>,
    key: &mut SoftAuthenticator,
) -> Response {
    let auth = session.map_or(Auth::None, |s| cookies(&[s]));
    let r = post(app, start, &auth, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{start}");
    let ceremony = set_cookie(&r, "ward_ceremony");
    let options: Value = r.json().await.expect("json");
    let credential = key.assert(&options["options"]);
    let mut parts = vec![ceremony.as_str()];
    if let Some(s) = session {
        parts.push(s);
    }
    post(
        app,
        finish,
        &cookies(&parts),
        json!({"credential": credential}),
    )
    .await
}

async fn register_then_sign_in_without_password(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let session = cookie_of(&alice.auth);
    let mut key = SoftAuthenticator::new();
    register(&app, &session, &mut key).await;

    let r = app.get("/api/v1/passkeys", &alice.auth).await;
    let list: Value = r.json().await.expect("json");
    assert_eq!(list["passkeys"][0]["name"], "laptop");

    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, "ward_session");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["user"]["email"], "alice@acme.example");
    let r = app.get("/api/v1/sessions", &cookies(&[&cookie])).await;
    let sessions: Value = r.json().await.expect("json");
    let current = sessions["sessions"]
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["current"] == true)
        .expect("current");
    assert_eq!(current["auth_method"], "passkey");
    assert_eq!(current["multi_factor"], true);

    let actions = app.audit_actions(&t).await;
    for a in ["passkey.registered", "passkey.used", "auth.login"] {
        assert!(actions.iter().any(|(x, o)| x == a && o == "success"), "{a}");
    }
}

async fn password_then_passkey_as_second_factor(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let mut key = SoftAuthenticator::new();
    register(&app, &cookie_of(&alice.auth), &mut key).await;

    // With a passkey registered, the password alone no longer opens a session.
    let r = post(
        &app,
        "/api/v1/auth/login",
        &Auth::None,
        json!({"email": "alice@acme.example", "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().starts_with("ward_session")),
        "no session before the second factor"
    );
    let ceremony = set_cookie(&r, "ward_ceremony");
    let challenge: Value = r.json().await.expect("json");
    assert_eq!(challenge["second_factor"], "passkey");
    let credential = key.assert(&challenge["options"]);
    let r = post(
        &app,
        "/api/v1/auth/second-factor",
        &cookies(&[&ceremony]),
        json!({"credential": credential.clone()}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let session = set_cookie(&r, "ward_session");
    let me: Value = app
        .get("/api/v1/me", &cookies(&[&session]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["mfa_satisfied"], true);

    // The same response again: its challenge is spent.
    let r = post(
        &app,
        "/api/v1/auth/second-factor",
        &cookies(&[&ceremony]),
        json!({"credential": credential}),
    )
    .await;
    expect_problem(r, StatusCode::BAD_REQUEST, "passkey_refused").await;
}

async fn mfa_policy_restricts_until_verified_and_keeps_the_last_passkey(
    backend: ward_store::Backend,
) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;

    for bad in ["always", "", "REQUIRE_MFA"] {
        let r = app
            .send_json(
                Method::PUT,
                "/api/v1/company/mfa-policy",
                &admin.auth,
                json!({"policy": bad}),
            )
            .await;
        expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    }
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/mfa-policy",
            &bob.auth,
            json!({"policy": "require_mfa"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // An Admin signed in with a password alone would lock themselves out.
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/mfa-policy",
            &admin.auth,
            json!({"policy": "require_mfa"}),
        )
        .await;
    expect_problem(r, StatusCode::CONFLICT, "would_lock_out").await;
    let admin_session = cookie_of(&admin.auth);
    let mut admin_key = SoftAuthenticator::new();
    register(&app, &admin_session, &mut admin_key).await;
    let r = assert_with(
        &app,
        "/api/v1/auth/reauth/passkey/start",
        "/api/v1/auth/reauth/passkey/finish",
        Some(&admin_session),
        &mut admin_key,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/mfa-policy",
            &admin.auth,
            json!({"policy": "require_mfa"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Bob signs in with his password: he may reach his account (to enroll) and
    // nothing else.
    let bob_session = app.login("bob@acme.example", PASSWORD).await;
    let bob_auth = cookies(&[&bob_session]);
    let me: Value = app
        .get("/api/v1/me", &bob_auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["mfa_satisfied"], false);
    let r = app.get("/api/v1/users", &bob_auth).await;
    expect_problem(r, StatusCode::FORBIDDEN, "mfa_required").await;
    let r = post(&app, "/api/v1/tokens", &bob_auth, json!({"name": "x"})).await;
    expect_problem(r, StatusCode::FORBIDDEN, "mfa_required").await;

    let mut key = SoftAuthenticator::new();
    let passkey = register(&app, &bob_session, &mut key).await;
    let r = assert_with(
        &app,
        "/api/v1/auth/reauth/passkey/start",
        "/api/v1/auth/reauth/passkey/finish",
        Some(&bob_session),
        &mut key,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get("/api/v1/users", &bob_auth).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "verified with a passkey: unlocked"
    );

    // The last passkey stays while MFA is required.
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/passkeys/{passkey}"),
            &bob_auth,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::CONFLICT, "last_factor").await;
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/mfa-policy",
            &admin.auth,
            json!({"policy": "none"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/passkeys/{passkey}"),
            &bob_auth,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let actions = app.audit_actions(&t).await;
    assert!(
        actions
            .iter()
            .any(|(a, _)| a == "company.mfa_policy_changed")
    );
    assert!(actions.iter().any(|(a, _)| a == "passkey.removed"));
}

async fn refused_passkey_responses_are_audited(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let other = app.member(&t, "other@acme.example", Role::User).await;
    let session = cookie_of(&alice.auth);
    let mut key = SoftAuthenticator::new();
    register(&app, &session, &mut key).await;

    // Wrong origin.
    key.origin = "http://evil.example:8080".into();
    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    expect_detail(r, "origin").await;
    key.origin = crate::soft_authenticator::ORIGIN.into();

    // Wrong RP id.
    key.rp_id = "evil.example".into();
    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    expect_detail(r, "relying party").await;
    key.rp_id = crate::soft_authenticator::RP_ID.into();

    // A good sign-in, then the counter going backwards (a cloned authenticator).
    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    key.counter = 0;
    let r = assert_with(
        &app,
        "/api/v1/auth/passkey/start",
        "/api/v1/auth/passkey/finish",
        None,
        &mut key,
    )
    .await;
    expect_detail(r, "cloned").await;
    key.counter = 100;

    // A challenge from another session: Alice starts a re-authentication, and
    // the ceremony is presented with another user's session.
    let r = post(
        &app,
        "/api/v1/auth/reauth/passkey/start",
        &cookies(&[&session]),
        json!({}),
    )
    .await;
    let ceremony = set_cookie(&r, "ward_ceremony");
    let options: Value = r.json().await.expect("json");
    let credential = key.assert(&options["options"]);
    let r = post(
        &app,
        "/api/v1/auth/reauth/passkey/finish",
        &cookies(&[&ceremony, &cookie_of(&other.auth)]),
        json!({"credential": credential.clone()}),
    )
    .await;
    expect_detail(r, "another session").await;

    // Replaying a used response: its challenge is gone.
    let r = post(
        &app,
        "/api/v1/auth/reauth/passkey/finish",
        &cookies(&[&ceremony, &session]),
        json!({"credential": credential}),
    )
    .await;
    expect_detail(r, "already used").await;

    // An answer to a challenge issued to someone else's ceremony.
    let r1 = post(&app, "/api/v1/auth/passkey/start", &Auth::None, json!({})).await;
    let mine = set_cookie(&r1, "ward_ceremony");
    let r2 = post(&app, "/api/v1/auth/passkey/start", &Auth::None, json!({})).await;
    let theirs: Value = r2.json().await.expect("json");
    let credential = key.assert(&theirs["options"]);
    let r = post(
        &app,
        "/api/v1/auth/passkey/finish",
        &cookies(&[&mine]),
        json!({"credential": credential}),
    )
    .await;
    expect_detail(r, "different challenge").await;

    // Not a credential at all.
    let r2 = post(&app, "/api/v1/auth/passkey/start", &Auth::None, json!({})).await;
    let c = set_cookie(&r2, "ward_ceremony");
    let r = post(
        &app,
        "/api/v1/auth/passkey/finish",
        &cookies(&[&c]),
        json!({"credential": {"id": 5}}),
    )
    .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential").await;

    let trail = app
        .store
        .list_audit(&ward_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit");
    let reasons: Vec<String> = trail
        .iter()
        .filter(|e| e.action == "passkey.rejected")
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for reason in [
        "wrong_origin",
        "wrong_rp_id",
        "sign_count_regression",
        "challenge_from_another_session",
        "challenge_used_or_expired",
        "wrong_challenge",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} audited: {reasons:?}"
        );
    }
}

async fn expect_detail(r: Response, needle: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], "passkey_refused", "{v}");
    assert!(
        v["detail"].as_str().unwrap_or_default().contains(needle),
        "{needle:?} in {v}"
    );
}

async fn sensitive_actions_need_recent_reauthentication(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    app.clock.advance_secs(11 * 60);
    // Keep the session alive (idle timeout 30 min) but past the 10-minute window.
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{}", bob.id),
            &admin.auth,
            json!({"role": "viewer"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "reauthentication_required").await;
    let r = app
        .send_json(Method::POST, "/api/v1/keys/rotate", &admin.auth, json!({}))
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "reauthentication_required").await;

    let r = post(
        &app,
        "/api/v1/auth/reauth",
        &admin.auth,
        json!({"password": "wrong-password-1"}),
    )
    .await;
    expect_problem(r, StatusCode::UNAUTHORIZED, "reauth_failed").await;
    let r = post(
        &app,
        "/api/v1/auth/reauth",
        &admin.auth,
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{}", bob.id),
            &admin.auth,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let actions = app.audit_actions(&t).await;
    assert!(
        actions
            .iter()
            .any(|(a, o)| a == "auth.reauthenticated" && o == "success")
    );
    assert!(
        actions
            .iter()
            .any(|(a, o)| a == "auth.reauth_failed" && o == "failure")
    );
}
