//! Issue 15, items 1, 2 and 5, written from the attacker's side: an Admin who
//! controls an identity provider, an Admin of a second company, and an Admin's
//! API token used as a persistence backdoor. Each failed on the code before.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{Auth, Member, PASSWORD, TestApp, expect_problem, spawn_app_with};
use crate::oidc::{Signing, add_provider, callback, claims, session_cookie, spawn_forger, start};
use crate::rule_reviews::{ID, create, good_tests, ok, rule, set_tests, step};
use ward_store::on_both_backends;

on_both_backends!(
    a_hostile_provider_cannot_sign_in_as_a_colleague,
    owners_link_providers_and_then_sign_in_through_them,
    approvals_through_an_authors_provider_or_puppet_are_refused,
    tokens_need_the_sensitive_capability_and_die_with_their_owner,
    a_company_cannot_claim_another_companys_domain,
    domains_are_verified_by_dns_txt_records,
);

/// The hostile provider listens on 127.0.0.1: allowed by the operator here.
fn allow_loopback(s: &mut ward_server::ServerSettings) {
    s.egress = ward_core::egress::EgressPolicy::with_allow_list(&["127.0.0.1/32"]).expect("allow");
}

/// One SSO callback with an ID token for `email` and subject `sub`.
async fn sso(
    app: &TestApp,
    f: &crate::oidc::Forger,
    provider: &str,
    email: &str,
    sub: &str,
    code: &str,
) -> reqwest::Response {
    let (cookie, state, nonce) = start(app, provider).await;
    let mut c = claims(f, app, &nonce, email);
    c["sub"] = json!(sub);
    *f.next_token.lock().expect("lock") = Some(f.token(&c, Signing::Published));
    callback(app, &cookie, code, &state).await
}

fn cookie_of(m: &Member) -> String {
    match &m.auth {
        Auth::Cookie(c) => c.clone(),
        _ => panic!("a session member"),
    }
}

/// Bob starts linking `provider` (his ceremony cookie and the request's state);
/// the forger will answer for subject `bob-at-idp`.
async fn start_link(
    app: &TestApp,
    forger: &crate::oidc::Forger,
    bob: &Member,
    provider: &str,
) -> (String, String) {
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/me/sso-links/{provider}"),
            &bob.auth,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let ceremony = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ward_ceremony="))
        .expect("ceremony")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let body: Value = r.json().await.expect("json");
    let url = reqwest::Url::parse(body["authorization_url"].as_str().expect("url")).expect("url");
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .expect("param")
    };
    let mut c = claims(forger, app, &q("nonce"), "bob@acme.example");
    c["sub"] = json!("bob-at-idp");
    *forger.next_token.lock().expect("lock") = Some(forger.token(&c, Signing::Published));
    (ceremony, q("state"))
}

async fn me(app: &TestApp, auth: &Auth) -> Value {
    app.get("/api/v1/me", auth)
        .await
        .json()
        .await
        .expect("json")
}

/// Before the fix, sign-in matched accounts by email: the Admin's own provider
/// asserting bob's address signed the Admin in as bob.
async fn a_hostile_provider_cannot_sign_in_as_a_colleague(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, allow_loopback).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    app.user(&t, "bob@acme.example", Role::User).await;
    let forger = spawn_forger().await;
    let provider = add_provider(&app, &admin.auth, &forger.issuer, true).await;

    let r = sso(&app, &forger, &provider, "bob@acme.example", "evil", "c1").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    assert!(session_cookie(&r).is_none(), "no session as bob");
    let failed = app
        .store
        .list_audit(&ward_store::AuditFilter {
            action: Some("auth.sso_failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(failed[0].details["reason"], "account_not_linked");
    // The provider's own new users still work (JIT, bound to their subject),
    // and the same subject returns to the same account.
    let r = sso(&app, &forger, &provider, "sam@acme.example", "sam", "c2").await;
    let sam = Auth::Cookie(session_cookie(&r).expect("sam signed in"));
    let sam_id = me(&app, &sam).await["user"]["id"].clone();
    let r = sso(&app, &forger, &provider, "sam@acme.example", "sam", "c3").await;
    let again = Auth::Cookie(session_cookie(&r).expect("again"));
    assert_eq!(me(&app, &again).await["user"]["id"], sam_id);
    // A different subject claiming sam's address does not reach sam.
    let r = sso(&app, &forger, &provider, "sam@acme.example", "other", "c4").await;
    assert!(session_cookie(&r).is_none());
    let actions = app.audit_actions(&t).await;
    assert!(actions.iter().any(|(a, _)| a == "sso.identity_linked"));
}

async fn owners_link_providers_and_then_sign_in_through_them(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, allow_loopback).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    let forger = spawn_forger().await;
    let provider = add_provider(&app, &admin.auth, &forger.issuer, false).await;

    // Bob starts the link from his password session and finishes it at the
    // provider; the ceremony only completes in the session that started it.
    let (ceremony, state) = start_link(&app, &forger, &bob, &provider).await;
    // Without bob's session (someone else's browser): refused.
    let r = callback(&app, &ceremony, "l1", &state).await;
    assert_eq!(r.headers()["location"], "/account");
    assert!(
        app.store
            .find_identity(
                &ward_core::SsoProviderId::from_stored(provider.clone()),
                "bob-at-idp"
            )
            .await
            .expect("read")
            .is_none()
    );
    // Start again, finish in bob's browser.
    let (ceremony, state) = start_link(&app, &forger, &bob, &provider).await;
    let both = format!("{ceremony}; {}", cookie_of(&bob));
    let r = callback(&app, &both, "l2", &state).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account");
    let links: Value = app
        .get("/api/v1/me/sso-links", &bob.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(links["links"][0]["linked_by"], "owner");
    // Now the provider signs bob in by his subject.
    let r = sso(
        &app,
        &forger,
        &provider,
        "bob@acme.example",
        "bob-at-idp",
        "l3",
    )
    .await;
    let s = Auth::Cookie(session_cookie(&r).expect("bob via sso"));
    assert_eq!(me(&app, &s).await["user"]["email"], "bob@acme.example");
    // Every Admin sees the link on the Security page.
    let page = app
        .get("/admin/security", &admin.auth)
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("sso.identity_linked"),
        "notice on the Security page"
    );
}

/// Before the fix an Admin who authored a change could approve it as a
/// colleague signed in through the Admin's provider, or through an account
/// the Admin created after submitting.
async fn approvals_through_an_authors_provider_or_puppet_are_refused(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, allow_loopback).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let forger = spawn_forger().await;
    let provider = add_provider(&app, &admin.auth, &forger.issuer, true).await;
    // A colleague provisioned by (so bound to) the Admin's provider.
    let r = sso(&app, &forger, &provider, "sam@acme.example", "sam", "p1").await;
    assert!(session_cookie(&r).is_some());

    let id = create(&app, &admin, &rule("Whoami", ID, "low")).await;
    set_tests(&app, &admin, &id, good_tests()).await;
    ok(step(&app, &admin, &id, "tests/run", json!({})).await).await;
    ok(step(&app, &admin, &id, "submit", json!({"version": 1})).await).await;

    // The Admin signs in as sam through the provider they control.
    let r = sso(&app, &forger, &provider, "sam@acme.example", "sam", "p2").await;
    let sam = Member {
        id: String::new(),
        auth: Auth::Cookie(session_cookie(&r).expect("sam")),
    };
    let r = step(&app, &sam, &id, "approve", json!({"version": 1})).await;
    let p = expect_problem(r, StatusCode::FORBIDDEN, "separation_of_duties").await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("identity provider")
    );

    // A puppet account the Admin makes after submitting.
    app.clock.advance_secs(5);
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &admin.auth,
            json!({"email": "puppet@acme.example", "role": "user", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let puppet = Member {
        id: String::new(),
        auth: Auth::Cookie(app.login("puppet@acme.example", PASSWORD).await),
    };
    let r = step(&app, &puppet, &id, "approve", json!({"version": 1})).await;
    expect_problem(r, StatusCode::FORBIDDEN, "separation_of_duties").await;

    // A colleague signing in by password approves, even under the stricter
    // policy (the store-made account predates the change).
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/review-policy",
            &admin.auth,
            json!({"min_approvers": 1, "approvers_predate_change": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let old = app.member(&t, "olga@acme.example", Role::User).await;
    ok(step(&app, &old, &id, "approve", json!({"version": 1})).await).await;
}

async fn tokens_need_the_sensitive_capability_and_die_with_their_owner(
    backend: ward_store::Backend,
) {
    let app = spawn_app_with(backend, allow_loopback).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let token = Auth::Bearer(app.token(&admin, None).await);

    // The backdoor attempts with an ordinary Admin token: all refused.
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/company/mfa-policy",
            &token,
            json!({"policy": "none"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "sensitive_capability_required").await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/sso/providers",
            &token,
            json!({"name": "x", "issuer": "https://idp.example", "client_id": "c",
                "allowed_domains": ["acme.example"], "jit_provisioning": true, "default_role": "admin"}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "sensitive_capability_required").await;
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/keys/policy",
            &token,
            json!({"rotation_interval_days": 30}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "sensitive_capability_required").await;

    // A sensitive token: minted from a fresh session, one hour, audited per use.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &admin.auth,
            json!({"name": "break-glass", "sensitive": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["token"]["sensitive"], true);
    let sensitive = Auth::Bearer(v["secret"].as_str().expect("secret").to_owned());
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/keys/policy",
            &sensitive,
            json!({"rotation_interval_days": 30}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert!(
        app.audit_actions(&t)
            .await
            .iter()
            .any(|(a, _)| a == "token.sensitive_used")
    );
    // A session past the re-authentication window cannot mint one.
    app.clock.advance_secs(11 * 60);
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &admin.auth,
            json!({"name": "late", "sensitive": true}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "reauthentication_required").await;
    app.clock.advance_secs(3600);
    let r = app
        .send_json(
            Method::PUT,
            "/api/v1/keys/policy",
            &sensitive,
            json!({"rotation_interval_days": 30}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "expired after an hour"
    );

    // Disabling revokes tokens for good: re-enabling does not revive them.
    let other = app.member(&t, "ops@acme.example", Role::Admin).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    let bob_token = Auth::Bearer(app.token(&bob, None).await);
    assert_eq!(
        app.get("/api/v1/me", &bob_token).await.status(),
        StatusCode::OK
    );
    for disabled in [true, false] {
        let r = app
            .send_json(
                Method::PATCH,
                &format!("/api/v1/users/{}", bob.id),
                &other.auth,
                json!({"disabled": disabled}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/api/v1/me", &bob_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A password change revokes tokens unless asked not to.
    let carol = app.member(&t, "carol@acme.example", Role::User).await;
    let kept = Auth::Bearer(app.token(&carol, None).await);
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/me/password",
            &carol.auth,
            json!({"current_password": PASSWORD, "new_password": "a much longer new passphrase", "revoke_tokens": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &kept).await.status(), StatusCode::OK);
    let carol2 = Member {
        id: carol.id.clone(),
        auth: Auth::Cookie(
            app.login("carol@acme.example", "a much longer new passphrase")
                .await,
        ),
    };
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/me/password",
            &carol2.auth,
            json!({"current_password": "a much longer new passphrase", "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", &kept).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Before the fix company B could list alpha.example on its provider and create
/// users there, and the 409 said whether an address existed in company A.
async fn a_company_cannot_claim_another_companys_domain(backend: ward_store::Backend) {
    let app = spawn_app_with(backend, allow_loopback).await;
    let alpha = app.tenant("alpha").await;
    let beta = app.tenant("beta").await;
    app.user(&alpha, "cto@alpha.example", Role::Admin).await;
    app.verify_domain(&alpha, "alpha.example").await;
    let b = app.member(&beta, "admin@beta.example", Role::Admin).await;

    let r = app
        .send_json(
            Method::POST,
            "/api/v1/sso/providers",
            &b.auth,
            json!({"name": "x", "issuer": "https://idp.beta.example", "client_id": "c",
                "allowed_domains": ["alpha.example"], "jit_provisioning": true}),
        )
        .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "domain_not_verified").await;
    // Existing address and new address on A's domain: the same refusal.
    let mut answers = Vec::new();
    for email in ["cto@alpha.example", "nobody@alpha.example"] {
        let r = app
            .send_json(
                Method::POST,
                "/api/v1/users",
                &b.auth,
                json!({"email": email, "role": "user", "password": PASSWORD}),
            )
            .await;
        answers.push(expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "email_unavailable").await["detail"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    // On a domain nobody holds, another company's address answers the same.
    app.user(&alpha, "someone@shared.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &b.auth,
            json!({"email": "someone@shared.example", "role": "user", "password": PASSWORD}),
        )
        .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "email_unavailable").await;

    // Cross-company probes of the new routes: Alpha's domain and provider are
    // "not found" to Beta, exactly like missing ones, and nothing changes.
    let a = app.member(&alpha, "admin@alpha.example", Role::Admin).await;
    let forger = spawn_forger().await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/sso/providers",
            &a.auth,
            json!({"name": "Alpha IdP", "issuer": forger.issuer, "client_id": "c",
                "allowed_domains": ["alpha.example"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let provider = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let before = app.audit_count().await;
    for (method, path) in [
        (
            Method::DELETE,
            "/api/v1/company/domains/alpha.example".to_owned(),
        ),
        (
            Method::POST,
            "/api/v1/company/domains/alpha.example/verify".to_owned(),
        ),
        (Method::POST, format!("/api/v1/me/sso-links/{provider}")),
        (Method::DELETE, format!("/api/v1/me/sso-links/{provider}")),
    ] {
        let r = app.req(method, &path, &b.auth).send().await.expect("send");
        expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(
        app.audit_count().await,
        before,
        "the probes changed nothing"
    );
    assert_eq!(
        app.store
            .domain_owner("alpha.example")
            .await
            .expect("owner"),
        Some(alpha.clone())
    );
    let listed: Value = app
        .get("/api/v1/company/domains", &b.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["domains"],
        json!([]),
        "Beta sees none of Alpha's domains"
    );
}

/// The local DNS server (PyPI dnslib) serving the TXT records in `records`.
struct DnsPeer {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    records: std::path::PathBuf,
}

impl DnsPeer {
    fn start() -> Self {
        let name: String = crate::harness::random16()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let records = std::env::temp_dir().join(format!("ward-dns-{name}.json"));
        std::fs::write(&records, "{}").expect("records");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/peers/dns_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(&records)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (with `pip install dnslib`) runs the test DNS server");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("the DNS server did not start (pip install dnslib): {line:?}")
        });
        DnsPeer {
            child,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            records,
        }
    }

    fn publish(&self, records: Value) {
        std::fs::write(&self.records, records.to_string()).expect("records");
    }
}

impl Drop for DnsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.records);
    }
}

/// Verification by DNS TXT record, against a real DNS server the test controls.
async fn domains_are_verified_by_dns_txt_records(backend: ward_store::Backend) {
    let dns = DnsPeer::start();
    let addr = dns.addr;
    let app = spawn_app_with(backend, |s| s.dns_resolver = Some(addr)).await;
    let alpha = app.tenant("alpha").await;
    let beta = app.tenant("beta").await;
    let a = app.member(&alpha, "admin@alpha.example", Role::Admin).await;
    let b = app.member(&beta, "admin@beta.example", Role::Admin).await;
    let claim = |who: &Member| {
        let auth = who.auth.clone();
        let app = &app;
        async move {
            let r = app
                .send_json(
                    Method::POST,
                    "/api/v1/company/domains",
                    &auth,
                    json!({"domain": "Alpha.Example"}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.expect("json")["txt_record"]
                .as_str()
                .expect("record")
                .to_owned()
        }
    };
    let a_record = claim(&a).await;
    let b_record = claim(&b).await;
    assert!(a_record.starts_with("ward-verification="));
    assert_ne!(a_record, b_record);
    let verify = |who: &Member| {
        let auth = who.auth.clone();
        let app = &app;
        async move {
            app.send_json(
                Method::POST,
                "/api/v1/company/domains/alpha.example/verify",
                &auth,
                json!({}),
            )
            .await
        }
    };
    // Nothing published, then only beta's token: alpha's claim stays unverified.
    expect_problem(
        verify(&a).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "domain_verification_failed",
    )
    .await;
    dns.publish(json!({"alpha.example": ["v=spf1 -all", b_record.clone()]}));
    expect_problem(
        verify(&a).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "domain_verification_failed",
    )
    .await;
    assert!(
        app.store
            .domain_owner("alpha.example")
            .await
            .expect("owner")
            .is_none()
    );
    dns.publish(json!({"alpha.example": [a_record.clone(), b_record.clone()]}));
    let r = verify(&a).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["verified"].clone(), v["verified_by"].clone()),
        (json!(true), json!("dns"))
    );
    // Beta's record is published too, but the domain is alpha's now.
    expect_problem(verify(&b).await, StatusCode::CONFLICT, "domain_taken").await;
    assert_eq!(
        app.store
            .domain_owner("alpha.example")
            .await
            .expect("owner"),
        Some(alpha.clone())
    );
    let actions = app.audit_actions(&alpha).await;
    assert!(
        actions
            .iter()
            .any(|(x, o)| x == "company.domain_verification_failed" && o == "failure")
    );
    assert!(actions.iter().any(|(x, _)| x == "company.domain_verified"));
    // A token without the sensitive capability cannot claim or remove domains.
    let token = Auth::Bearer(app.token(&a, None).await);
    let r = app
        .req(
            Method::DELETE,
            "/api/v1/company/domains/alpha.example",
            &token,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::FORBIDDEN, "sensitive_capability_required").await;
}
