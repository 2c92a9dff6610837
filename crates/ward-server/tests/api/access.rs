//! The permission matrix walked route by route and role by role; tenant isolation;
//! the OpenAPI document and `docs/permissions.md` kept in step with the routes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_server::PROBLEM_CODES;
use ward_server::access::{Access, ROUTES, render_permissions_doc};

use crate::harness::{Auth, PASSWORD, TestApp, expect_problem, random16, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(
    every_route_allows_and_denies_by_the_matrix,
    api_tokens_reach_what_the_table_says,
    other_tenants_ids_are_not_found,
    openapi_covers_every_route
);

fn body_for(method: &str, path: &str, n: usize) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/auth/login") => {
            Some(json!({"email": "nobody@example.com", "password": "whatever whatever"}))
        }
        ("POST", "/api/v1/users") => Some(
            json!({"email": format!("new{n}@acme.example"), "role": "viewer", "password": "matrix passphrase"}),
        ),
        ("PATCH", "/api/v1/users/{id}") => Some(json!({"display_name": format!("renamed {n}")})),
        ("POST", "/api/v1/tokens") => Some(json!({"name": "matrix"})),
        ("POST", "/api/v1/connections") => {
            Some(json!({"name": format!("conn {n}"), "kind": "splunk",
            "base_url": "https://splunk.example:8089", "credentials": {"token": "matrix-token"}}))
        }
        ("PATCH", "/api/v1/connections/{id}") => Some(json!({"name": format!("renamed {n}")})),
        ("PUT", "/api/v1/keys/policy") => Some(json!({"rotation_interval_days": 30})),
        ("PUT", "/api/v1/company/mfa-policy") => Some(json!({"policy": "none"})),
        ("POST", "/api/v1/sso/providers") => Some(json!({"name": format!("idp {n}"),
            "issuer": "https://idp.acme.example", "client_id": "ward", "allowed_domains": ["acme.example"]})),
        ("PATCH", "/api/v1/sso/providers/{id}") => Some(json!({"enabled": false})),
        ("POST", "/api/v1/rules") => Some(json!({"content": format!(
            "title: Matrix {n}\nlogsource:\n    product: windows\ndetection:\n    selection:\n        Image: x\n    condition: selection\n")})),
        ("PUT", "/api/v1/rules/{id}/tests") => Some(json!({"tests": []})),
        ("POST", "/api/v1/rules/{id}/submit") | ("POST", "/api/v1/rules/{id}/approve") => {
            Some(json!({"version": 1}))
        }
        ("POST", "/api/v1/rules/{id}/reject") => Some(json!({"version": 1, "reason": "matrix"})),
        ("PUT", "/api/v1/company/review-policy") => Some(json!({"min_approvers": 1})),
        ("POST", "/api/v1/company/domains") => {
            Some(json!({"domain": format!("d{n}.acme.example")}))
        }
        ("PUT", "/api/v1/rules/{id}") => Some(
            json!({"content": "title: x\nlogsource:\n    product: windows\ndetection:\n    selection:\n        Image: x\n    condition: selection\n", "base_version": 1}),
        ),
        ("POST", "/api/v1/auth/reauth") => Some(json!({"password": PASSWORD})),
        ("POST", "/api/v1/passkeys") => Some(json!({"name": "matrix key", "credential": {}})),
        ("POST", "/api/v1/auth/reauth/passkey/finish") => Some(json!({"credential": {}})),
        ("POST", "/api/v1/me/password") => {
            Some(json!({"current_password": PASSWORD, "new_password": "matrix new passphrase"}))
        }
        _ => None,
    }
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: &Auth,
    target: &str,
    n: usize,
) -> reqwest::Response {
    let concrete = path.replace("{id}", target);
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.req(m, &concrete, auth);
    if let Some(body) = body_for(method, path, n) {
        req = req.json(&body);
    }
    req.send().await.expect("send")
}

async fn every_route_allows_and_denies_by_the_matrix(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    app.user(&t, "keeper@acme.example", Role::Admin).await; // so no change trips last_admin
    let mut n = 0;
    for route in ROUTES {
        for role in Role::ALL {
            n += 1;
            let member = app.member(&t, &format!("m{n}@acme.example"), role).await;
            // A user-id target in the same company; other ids are random (404 when allowed).
            let target = if route.path.starts_with("/api/v1/users/") {
                app.user(&t, &format!("target{n}@acme.example"), Role::Viewer)
                    .await
            } else {
                ward_core::UserId::from_random(random16()).to_string()
            };
            let audit_before = app.audit_count().await;
            let r = call(&app, route.method, route.path, &member.auth, &target, n).await;
            let status = r.status();
            // Starting a sign-in ceremony stores only its single-use challenge
            // (bookkeeping, like the sign-in throttle), so it writes no event.
            let ceremony_start =
                route.path.ends_with("/start") || route.path == "/api/v1/passkeys/registration";
            if route.method != "GET" && status.is_success() && !ceremony_start {
                assert!(
                    app.audit_count().await > audit_before,
                    "{} {} changed state without an audit event",
                    route.method,
                    route.path
                );
            }
            let allowed = match route.access {
                Access::Public => true,
                Access::Requires(p) | Access::SessionOnly(p) => role.allows(p),
                // Only the operator's metrics token, never a company role.
                Access::MetricsToken => false,
            };
            if allowed {
                let refused_auth =
                    status == StatusCode::UNAUTHORIZED && route.path != "/api/v1/auth/login";
                assert!(
                    status != StatusCode::FORBIDDEN && !refused_auth,
                    "{} {} as {role:?}: expected allowed, got {status}",
                    route.method,
                    route.path
                );
                // Allowed is not "anything but 403": a server error fails too.
                assert!(
                    !status.is_server_error(),
                    "{} {} as {role:?}: allowed, but answered {status}",
                    route.method,
                    route.path
                );
            } else {
                let p = expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
                assert!(
                    p["detail"].is_string(),
                    "{} {} as {role:?}",
                    route.method,
                    route.path
                );
            }
        }
        // Unauthenticated callers are refused every non-public route.
        if route.access != Access::Public {
            let r = call(&app, route.method, route.path, &Auth::None, "x", 0).await;
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{} {} anonymous",
                route.method,
                route.path
            );
        }
    }
}

/// The credentials column is true: an Admin's API token (without the
/// `sensitive` capability) is refused by exactly the session-only routes, and
/// asked for that capability only by routes marked sensitive.
async fn api_tokens_reach_what_the_table_says(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    app.user(&t, "keeper@acme.example", Role::Admin).await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let token = Auth::Bearer(app.token(&admin, None).await);
    for (n, route) in ROUTES.iter().enumerate() {
        if matches!(route.access, Access::Public | Access::MetricsToken) {
            continue;
        }
        let target = if route.path.starts_with("/api/v1/users/") {
            app.user(&t, &format!("target{n}@acme.example"), Role::Viewer)
                .await
        } else {
            ward_core::UserId::from_random(random16()).to_string()
        };
        let r = call(&app, route.method, route.path, &token, &target, n).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or_default();
        let session_refusal = matches!(
            (status, code),
            (StatusCode::BAD_REQUEST, "no_session") | (StatusCode::FORBIDDEN, "session_required")
        );
        let what = format!(
            "{} {} with a token: {status} {code}",
            route.method, route.path
        );
        assert_eq!(
            session_refusal,
            matches!(route.access, Access::SessionOnly(_)),
            "{what}"
        );
        if !route.sensitive {
            assert_ne!(code, "sensitive_capability_required", "{what}");
        }
        assert!(
            status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
            "{what}"
        );
    }
}

async fn other_tenants_ids_are_not_found(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("bravo").await;
    let a_admin = app.member(&a, "admin@alpha.example", Role::Admin).await;
    let a_user = app.member(&a, "user@alpha.example", Role::User).await;
    let me: Value = app
        .get("/api/v1/me", &a_user.auth)
        .await
        .json()
        .await
        .expect("json");
    let a_session = me["session_id"].as_str().expect("sid").to_owned();
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/tokens",
            &a_user.auth,
            json!({"name": "a"}),
        )
        .await;
    let a_token = r.json::<Value>().await.expect("json")["token"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b_admin = app.member(&b, "admin@bravo.example", Role::Admin).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/connections",
            &a_admin.auth,
            json!({
            "name": "alpha siem", "kind": "splunk", "base_url": "https://siem.alpha.example",
            "credentials": {"token": "alpha-token"}}),
        )
        .await;
    let a_conn = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &a_user.auth,
            json!({"content": "title: Alpha rule\nlogsource:\n    product: windows\ndetection:\n    selection:\n        Image: x\n    condition: selection\n"}),
        )
        .await;
    let a_rule = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let rule_probes = [
        (Method::GET, "", None),
        (
            Method::PUT,
            "",
            Some(
                json!({"content": "title: Taken\nlogsource:\n    product: windows\ndetection:\n    selection:\n        Image: x\n    condition: selection\n", "base_version": 1}),
            ),
        ),
        (Method::DELETE, "", None),
        (Method::GET, "/versions", None),
        (Method::GET, "/diff?from=1&to=1", None),
        (Method::GET, "/tests", None),
        (Method::PUT, "/tests", Some(json!({"tests": []}))),
        (Method::POST, "/tests/run", None),
        (Method::GET, "/tests/runs", None),
        (Method::POST, "/submit", Some(json!({"version": 1}))),
        (Method::POST, "/approve", Some(json!({"version": 1}))),
        (
            Method::POST,
            "/reject",
            Some(json!({"version": 1, "reason": "mine now"})),
        ),
        (Method::GET, "/review", None),
    ];
    let mut probes: Vec<(Method, String, Option<Value>)> = rule_probes
        .into_iter()
        .map(|(m, tail, body)| (m, format!("/api/v1/rules/{a_rule}{tail}"), body))
        .collect();
    probes.extend(vec![
        (Method::GET, format!("/api/v1/users/{}", a_user.id), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{}", a_user.id),
            Some(json!({"role": "viewer"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{}", a_user.id), None),
        (
            Method::DELETE,
            format!("/api/v1/users/{}/sessions", a_user.id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/sessions/{a_session}"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/tokens/{a_token}"), None),
        (Method::GET, format!("/api/v1/connections/{a_conn}"), None),
        (
            Method::PATCH,
            format!("/api/v1/connections/{a_conn}"),
            Some(json!({"name": "taken over"})),
        ),
        (
            Method::POST,
            format!("/api/v1/connections/{a_conn}/test"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/connections/{a_conn}"),
            None,
        ),
    ]);
    for (m, path, body) in probes {
        let mut req = app.req(m.clone(), &path, &b_admin.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("send");
        expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let users = app
        .get("/api/v1/users", &b_admin.auth)
        .await
        .text()
        .await
        .expect("text");
    assert!(!users.contains("alpha.example"));
    let audit = app
        .get("/api/v1/audit/events", &b_admin.auth)
        .await
        .text()
        .await
        .expect("text");
    assert!(!audit.contains("alpha.example") && !audit.contains(&a.to_string()));
    // Nothing changed for tenant A's user.
    let me: Value = app
        .get("/api/v1/me", &a_user.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["role"], "user");
    assert_eq!(me["user"]["disabled"], false);
    let _ = a_admin;
}

async fn openapi_covers_every_route(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let spec: Value = app
        .get("/openapi.json", &Auth::None)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        spec["openapi"]
    );
    for r in ROUTES {
        if r.path == "/openapi.json" {
            continue;
        }
        let op = &spec["paths"][r.path][r.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from openapi.json",
            r.method,
            r.path
        );
    }
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let route = ROUTES
                .iter()
                .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method));
            let Some(route) = route else {
                panic!("{method} {path} is served but missing from the access table");
            };
            // The credentials it accepts are the table's.
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|r| r.as_object()?.keys().next().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let expected: &[&str] = match route.access {
                Access::Public => &[],
                Access::Requires(_) => &["bearer", "session_cookie"],
                Access::SessionOnly(_) => &["session_cookie"],
                Access::MetricsToken => &["bearer"],
            };
            assert_eq!(schemes, expected, "{method} {path}: security");
            // Every refusal is problem details; a 401 is documented wherever
            // credentials are required.
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().expect("content");
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem"
                    );
                }
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
            assert!(
                route.access == Access::Public || responses.contains_key("401"),
                "{method} {path}: 401"
            );
            assert!(responses.contains_key("429"), "{method} {path}: 429");
        }
    }
    let codes: Vec<&str> = spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the Problem code enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(codes, PROBLEM_CODES);
}

/// docs/api.md's table of problem codes and `PROBLEM_CODES` (the document's
/// enum, checked whenever a problem is rendered in a debug build) agree.
#[test]
fn api_doc_lists_every_problem_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let doc = std::fs::read_to_string(&path).expect("docs/api.md");
    let mut documented: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| 4") || l.starts_with("| 5"))
        .filter_map(|l| l.split('|').nth(2))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let mut known = PROBLEM_CODES.to_vec();
    known.sort_unstable();
    assert_eq!(documented, known, "docs/api.md's codes and PROBLEM_CODES");
}

#[test]
fn audit_doc_lists_every_action() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit.md");
    let doc = std::fs::read_to_string(&path).expect("docs/audit.md");
    for action in ward_core::audit::actions::ALL {
        assert!(
            doc.contains(&format!("`{action}`")),
            "docs/audit.md does not list `{action}`"
        );
    }
}

#[test]
fn permissions_doc_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/permissions.md");
    let rendered = render_permissions_doc();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/permissions.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        on_disk, rendered,
        "docs/permissions.md is stale: run the test with UPDATE_DOCS=1"
    );
}
