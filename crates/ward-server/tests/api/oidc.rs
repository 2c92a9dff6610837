//! OpenID Connect sign-in against a hostile provider: a small OpenID provider in
//! the test that publishes discovery and a JWKS and answers the token request
//! with whatever ID token the test forged. The happy path is exercised again in
//! the browser suite against the real `oidc-provider`; here every refusal the
//! issue names is tried: wrong state, reused code, wrong nonce, expired token,
//! wrong audience, wrong issuer, `alg: none`, an unknown signing key, an email
//! outside the allowed domains, and an unreachable provider.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{Auth, TestApp, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(
    sso_sign_in_provisions_and_maps_groups,
    bad_sso_answers_are_refused_and_audited,
);

const CLIENT_ID: &str = "ward-test";

pub(crate) struct Forger {
    pub(crate) issuer: String,
    key: SigningKey,
    other_key: SigningKey,
    pub(crate) next_token: Mutex<Option<String>>,
    used_codes: Mutex<HashSet<String>>,
}

fn key() -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&crate::harness::random16());
    seed[16..].copy_from_slice(&crate::harness::random16());
    SigningKey::from_slice(&seed).expect("key")
}

fn jwk(k: &SigningKey, kid: &str) -> Value {
    let point = k.verifying_key().to_sec1_point(false);
    let b = point.as_bytes();
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&b[1..33]), "y": URL_SAFE_NO_PAD.encode(&b[33..65])})
}

impl Forger {
    /// A JWT over `claims`: signed ES256 with the published key, with a key the
    /// provider does not publish, or not at all.
    pub(crate) fn token(&self, claims: &Value, signing: Signing) -> String {
        let (alg, kid) = match signing {
            Signing::Published => ("ES256", "k1"),
            Signing::Unpublished => ("ES256", "k2"),
            Signing::None => ("none", "k1"),
        };
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{body}");
        let sig = match signing {
            Signing::None => String::new(),
            Signing::Published | Signing::Unpublished => {
                let k = if matches!(signing, Signing::Published) {
                    &self.key
                } else {
                    &self.other_key
                };
                let s: Signature = k.sign(input.as_bytes());
                URL_SAFE_NO_PAD.encode(s.to_bytes())
            }
        };
        format!("{input}.{sig}")
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Signing {
    Published,
    Unpublished,
    None,
}

pub(crate) async fn spawn_forger() -> Arc<Forger> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let f = Arc::new(Forger {
        issuer: issuer.clone(),
        key: key(),
        other_key: key(),
        next_token: Mutex::new(None),
        used_codes: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(f): State<Arc<Forger>>| async move {
                Json(json!({
                    "issuer": f.issuer,
                    "authorization_endpoint": format!("{}/authorize", f.issuer),
                    "token_endpoint": format!("{}/token", f.issuer),
                    "jwks_uri": format!("{}/jwks", f.issuer),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                }))
            }),
        )
        .route(
            "/jwks",
            get(|State(f): State<Arc<Forger>>| async move { Json(json!({"keys": [jwk(&f.key, "k1")]})) }),
        )
        .route(
            "/token",
            post(|State(f): State<Arc<Forger>>, Form(form): Form<std::collections::HashMap<String, String>>| async move {
                let code = form.get("code").cloned().unwrap_or_default();
                let fresh = f.used_codes.lock().expect("lock").insert(code);
                let verifier_sent = form.get("code_verifier").is_some_and(|v| v.len() >= 43);
                if !fresh || !verifier_sent {
                    return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"})));
                }
                let id_token = f.next_token.lock().expect("lock").clone().unwrap_or_default();
                (StatusCode::OK, Json(json!({
                    "access_token": "opaque", "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
                })))
            }),
        )
        .with_state(f.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    f
}

pub(crate) async fn add_provider(app: &TestApp, admin: &Auth, issuer: &str, jit: bool) -> String {
    let me: Value = app
        .get("/api/v1/me", admin)
        .await
        .json()
        .await
        .expect("json");
    let tenant = ward_core::TenantId::from_stored(
        me["user"]["tenant_id"].as_str().expect("tenant").to_owned(),
    );
    app.verify_domain(&tenant, "acme.example").await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/sso/providers",
            admin,
            json!({
                "name": "Forger", "issuer": issuer, "client_id": CLIENT_ID, "client_secret": "s3cret-client-value",
                "scopes": ["email", "profile", "groups"], "allowed_domains": ["acme.example"],
                "role_mappings": [{"group": "soc", "role": "user"}, {"group": "soc-leads", "role": "admin"}],
                "jit_provisioning": jit,
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    assert!(v.get("client_secret").is_none());
    assert_eq!(v["client_secret_set"], true);
    v["id"].as_str().expect("id").to_owned()
}

/// Starts a sign-in: (ceremony cookie, state, nonce).
pub(crate) async fn start(app: &TestApp, provider: &str) -> (String, String, String) {
    let r = app.get(&format!("/sso/{provider}"), &Auth::None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ward_ceremony="))
        .expect("ceremony cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let url = reqwest::Url::parse(&location).expect("authorize url");
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{k} in {location}"))
    };
    assert_eq!(q("code_challenge_method"), "S256");
    assert_eq!(q("response_type"), "code");
    assert!(q("scope").split(' ').any(|s| s == "openid"));
    (cookie, q("state"), q("nonce"))
}

pub(crate) async fn callback(app: &TestApp, cookie: &str, code: &str, state: &str) -> Response {
    app.get(
        &format!("/sso/callback?code={code}&state={state}"),
        &Auth::Cookie(cookie.to_owned()),
    )
    .await
}

pub(crate) fn session_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ward_session=") && !c.starts_with("ward_session=;"))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

pub(crate) fn claims(f: &Forger, app: &TestApp, nonce: &str, email: &str) -> Value {
    let now = app.state.now().millis() / 1000;
    json!({
        "iss": f.issuer, "sub": format!("sub-{email}"), "aud": CLIENT_ID, "iat": now, "exp": now + 300,
        "nonce": nonce, "email": email, "email_verified": true, "name": "Sam Analyst",
        "groups": ["soc-leads"], "amr": ["pwd", "mfa"],
    })
}

async fn sso_sign_in_provisions_and_maps_groups(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let forger = spawn_forger().await;
    let provider = add_provider(&app, &admin.auth, &forger.issuer, true).await;

    let (cookie, state, nonce) = start(&app, &provider).await;
    let token = forger.token(
        &claims(&forger, &app, &nonce, "sam@acme.example"),
        Signing::Published,
    );
    *forger.next_token.lock().expect("lock") = Some(token);
    let r = callback(&app, &cookie, "code-1", &state).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account");
    let session = session_cookie(&r).expect("signed in");
    let me: Value = app
        .get("/api/v1/me", &Auth::Cookie(session.clone()))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["email"], "sam@acme.example");
    assert_eq!(me["user"]["display_name"], "Sam Analyst");
    assert_eq!(me["user"]["role"], "admin", "soc-leads maps to admin");
    let sessions: Value = app
        .get("/api/v1/sessions", &Auth::Cookie(session))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions["sessions"][0]["auth_method"], "oidc");
    assert_eq!(sessions["sessions"][0]["multi_factor"], true, "amr mfa");

    // SSO and API tokens coexist: the provisioned user can still hold a token.
    let actions = app.audit_actions(&t).await;
    assert!(
        actions
            .iter()
            .any(|(a, o)| a == "user.created" && o == "success")
    );
    assert!(
        actions
            .iter()
            .any(|(a, o)| a == "auth.login" && o == "success")
    );
    assert!(actions.iter().any(|(a, _)| a == "sso.provider_created"));
    // The secret is nowhere in the trail.
    let trail = app
        .get("/api/v1/audit/events", &admin.auth)
        .await
        .text()
        .await
        .expect("text");
    assert!(!trail.contains("s3cret-client-value"));
}

/// One sign-in whose ID token `edit` spoils; it must end at the sign-in page.
async fn attempt(
    app: &TestApp,
    forger: &Forger,
    provider: &str,
    code: &str,
    edit: &dyn Fn(&mut Value),
    signing: Signing,
) {
    let (cookie, state, nonce) = start(app, provider).await;
    let mut v = claims(forger, app, &nonce, "sam@acme.example");
    edit(&mut v);
    *forger.next_token.lock().expect("lock") = Some(forger.token(&v, signing));
    let r = callback(app, &cookie, code, &state).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    assert!(session_cookie(&r).is_none());
}

async fn bad_sso_answers_are_refused_and_audited(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let forger = spawn_forger().await;
    let provider = add_provider(&app, &admin.auth, &forger.issuer, true).await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-1",
        &|v| v["nonce"] = json!("another-nonce"),
        Signing::Published,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-2",
        &|v| {
            v["exp"] = json!(v["iat"].as_i64().unwrap_or(0) - 10);
            v["iat"] = json!(v["iat"].as_i64().unwrap_or(0) - 600)
        },
        Signing::Published,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-3",
        &|v| v["aud"] = json!("another-client"),
        Signing::Published,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-4",
        &|v| v["iss"] = json!("https://evil.example"),
        Signing::Published,
    )
    .await;
    attempt(&app, &forger, &provider, "code-5", &|_| {}, Signing::None).await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-6",
        &|_| {},
        Signing::Unpublished,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-7",
        &|v| v["email"] = json!("sam@evil.example"),
        Signing::Published,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-8",
        &|v| v["email_verified"] = json!(false),
        Signing::Published,
    )
    .await;
    attempt(
        &app,
        &forger,
        &provider,
        "code-9",
        &|v| v["groups"] = json!(["finance"]),
        Signing::Published,
    )
    .await;

    // Wrong state.
    let (cookie, _, nonce) = start(&app, &provider).await;
    *forger.next_token.lock().expect("lock") = Some(forger.token(
        &claims(&forger, &app, &nonce, "sam@acme.example"),
        Signing::Published,
    ));
    let r = callback(&app, &cookie, "code-state", "not-the-state").await;
    assert!(session_cookie(&r).is_none());
    // Reused code: code-1 was already exchanged above.
    let (cookie, state, nonce) = start(&app, &provider).await;
    *forger.next_token.lock().expect("lock") = Some(forger.token(
        &claims(&forger, &app, &nonce, "sam@acme.example"),
        Signing::Published,
    ));
    let r = callback(&app, &cookie, "code-1", &state).await;
    assert!(session_cookie(&r).is_none());
    // The same ceremony twice: its cookie no longer names anything.
    let r = callback(&app, &cookie, "code-fresh", &state).await;
    assert!(session_cookie(&r).is_none());

    // Unreachable provider: a clear message, no crash.
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/sso/providers/{provider}"),
            &admin.auth,
            json!({"issuer": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get(&format!("/sso/{provider}"), &Auth::None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");

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
        .filter(|e| e.action == "auth.sso_failed")
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for reason in [
        "wrong_nonce",
        "id_token_expired",
        "wrong_audience",
        "wrong_issuer",
        "unsigned_token",
        "unknown_signing_key",
        "domain_not_allowed",
        "email_unverified",
        "no_role",
        "wrong_state",
        "code_exchange_failed",
        "provider_unreachable",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} audited: {reasons:?}"
        );
    }
    assert!(
        app.store
            .find_user_by_email(&ward_core::Email::parse("sam@acme.example").expect("e"))
            .await
            .expect("find")
            .is_none(),
        "nothing was provisioned by a refused sign-in"
    );

    // Bad provider configuration is refused with field errors, nothing stored.
    for (body, field) in [
        (
            json!({"name": "x", "issuer": "http://idp.example", "client_id": "c", "allowed_domains": ["acme.example"]}),
            "issuer",
        ),
        (
            json!({"name": "x", "issuer": "https://idp.example", "client_id": "c", "allowed_domains": []}),
            "allowed_domains",
        ),
        (
            json!({"name": "x", "issuer": "https://idp.example", "client_id": "c", "allowed_domains": ["acme"]}),
            "allowed_domains",
        ),
    ] {
        let r = app
            .send_json(Method::POST, "/api/v1/sso/providers", &admin.auth, body)
            .await;
        let p =
            crate::harness::expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
                .await;
        assert_eq!(p["field"], field);
    }
}
