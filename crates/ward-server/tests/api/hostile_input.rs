//! Input an attacker shapes byte by byte: control characters in path segments,
//! zips that unzip differently in different tools, and names that look like
//! someone else's (issue 15, lower-severity items).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_rules::bundle::write_bundle;

use crate::harness::{Auth, expect_problem, spawn_app};
use crate::rule_reviews::{ID, rule};
use ward_store::on_both_backends;

on_both_backends!(
    control_characters_in_a_path_answer_problem_details,
    zips_that_unzip_two_ways_are_refused,
    look_alike_and_hidden_characters_in_names_are_refused,
);

/// Before the fix: the page route answered 500 `text/plain` (axum's `Redirect`
/// could not put CR LF into `Location`), and `%ff` answered axum's plain-text
/// 400 from the `Path` extractor.
async fn control_characters_in_a_path_answer_problem_details(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::Admin).await;
    let token = Auth::Bearer(app.token(&alice, None).await);
    for segment in ["%0d%0aX", "%00", "%7f", "%ff", "a%09b", "%c2%85"] {
        for (method, path, auth) in [
            (
                Method::POST,
                format!("/rules/{segment}/tests/run"),
                &alice.auth,
            ),
            (
                Method::POST,
                format!("/api/v1/rules/{segment}/tests/run"),
                &token,
            ),
            (Method::GET, format!("/api/v1/rules/{segment}"), &token),
            (Method::GET, format!("/api/v1/users/{segment}"), &token),
            (Method::GET, format!("/rules/{segment}"), &alice.auth),
            (Method::GET, format!("/{segment}"), &Auth::None),
        ] {
            let r = app
                .req(method.clone(), &path, auth)
                .header("accept", "text/html")
                .send()
                .await
                .expect("send");
            let p = expect_problem(r, StatusCode::BAD_REQUEST, "invalid_path").await;
            assert!(
                !p["detail"].as_str().unwrap_or_default().contains('\r'),
                "{method} {path}"
            );
        }
    }
    // Clean text in a segment still reaches the route (a 404 for no such rule).
    let r = app.get("/api/v1/rules/%C3%A9t%C3%A9", &token).await;
    expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

/// `bytes` with the `n`th occurrence (0-based) of `from` replaced by `to` (same
/// length), or every occurrence when `n` is `None`.
fn patched(bytes: &[u8], from: &[u8], to: &[u8], n: Option<usize>) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut seen = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            if n.is_none_or(|n| n == seen) {
                out[i..i + from.len()].copy_from_slice(to);
            }
            seen += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(seen >= 2, "each name is in a local and a central header");
    out
}

/// Before the fix: the duplicate name imported the last entry ("Evil", 200 with
/// one rule), and the disagreeing headers imported whatever the central
/// directory named.
async fn zips_that_unzip_two_ways_are_refused(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let good = rule("Reviewed", ID, "low");
    let evil = rule("Evil", "3f9e1c52-0000-4000-8000-0000000000e1", "low");
    let zip = write_bundle([("a.yml", good.as_bytes()), ("b.yml", evil.as_bytes())]).expect("zip");
    let import = |body: Vec<u8>| {
        app.req(Method::POST, "/api/v1/rules/import", &alice.auth)
            .header("content-type", "application/zip")
            .body(body)
            .send()
    };
    // Two entries named a.yml (both headers of the second renamed).
    let twice = patched(&zip, b"b.yml", b"a.yml", None);
    let p = expect_problem(
        import(twice).await.expect("send"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_bundle",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("two entries"),
        "{p}"
    );
    // The local header names c.yml, the central directory b.yml.
    let split = patched(&zip, b"b.yml", b"c.yml", Some(0));
    let p = expect_problem(
        import(split).await.expect("send"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_bundle",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("disagree"),
        "{p}"
    );
    assert!(app.store.list_rules(&t).await.expect("list").is_empty());
    // The untouched archive imports.
    let r = import(zip).await.expect("send");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Before the fix: `cto@аlpha.example` (Cyrillic `а`) was created as a second
/// "cto@alpha.example"; a display name, token or test name holding U+202E (which
/// shows `Mallory<U+202E>exe.txt` as `Mallorytxt.exe`) or U+200B was stored as given.
async fn look_alike_and_hidden_characters_in_names_are_refused(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("alpha").await;
    let admin = app.member(&t, "admin@alpha.example", Role::Admin).await;
    let refused = |body: Value, path: &'static str, field: &'static str| {
        let app = &app;
        let auth = admin.auth.clone();
        async move {
            let r = app.send_json(Method::POST, path, &auth, body).await;
            let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
            assert_eq!(p["field"], field, "{p}");
            p
        }
    };
    let user = |email: &str, name: &str| {
        json!({"email": email, "display_name": name, "role": "viewer",
               "password": "a long enough passphrase"})
    };
    // The look-alike domain and local part, and hidden characters in an address.
    for email in [
        "cto@\u{430}lpha.example",
        "\u{441}to@alpha.example",
        "cto\u{200B}@alpha.example",
        "cto@\u{430}\u{440}\u{435}.example",
    ] {
        refused(user(email, "CTO"), "/api/v1/users", "email").await;
    }
    for name in ["Mallory\u{202E}exe.txt", "Eve\u{2066}", "\u{430}dmin"] {
        refused(
            user("eve@alpha.example", name),
            "/api/v1/users",
            "display_name",
        )
        .await;
    }
    // Nothing above was created, and the message does not echo a hidden character.
    let users: Value = app
        .get("/api/v1/users", &admin.auth)
        .await
        .json()
        .await
        .expect("json");
    let emails: Vec<&str> = users
        .as_array()
        .or_else(|| users["users"].as_array())
        .expect("list")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, ["admin@alpha.example"], "{users}");
    let p = refused(
        user("eve@alpha.example", "Eve\u{202E}"),
        "/api/v1/users",
        "display_name",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("U+202E"),
        "{p}"
    );
    assert!(!p.to_string().contains('\u{202E}'), "{p}");

    // A display name in NFC, and other scripts on their own, are fine.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/users",
            &admin.auth,
            user("rene@alpha.example", "Rene\u{301}e Иванова"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["display_name"], "Ren\u{e9}e Иванова", "{v}");

    // Token, connection and rule-test names.
    refused(json!({"name": "ci\u{202E}"}), "/api/v1/tokens", "name").await;
    refused(
        json!({"name": "Spl\u{200B}unk", "kind": "splunk", "base_url": "https://siem.example",
               "credentials": {"token": "t"}}),
        "/api/v1/connections",
        "name",
    )
    .await;
    let rule_id = crate::rule_reviews::create(&app, &admin, &rule("One", ID, "low")).await;
    let r = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/rules/{rule_id}/tests"),
            &admin.auth,
            json!({"tests": [{"name": "wh\u{43e}ami", "expect": "match",
                              "event": {"Image": "C:\\whoami.exe"}}]}),
        )
        .await;
    let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    assert_eq!(p["field"], "tests", "{p}");

    // The same test name arriving in a bundle's tests file.
    let tests = json!({"tests": [{"name": "whoami\u{202E}", "expect": "match",
                                  "event": {"Image": "C:\\whoami.exe"}}]});
    let zip = write_bundle([
        (
            "two.yml",
            rule("Two", "3f9e1c52-0000-4000-8000-0000000000e2", "low").as_bytes(),
        ),
        ("two.tests.json", tests.to_string().as_bytes()),
    ])
    .expect("zip");
    let r = app
        .req(Method::POST, "/api/v1/rules/import", &admin.auth)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .expect("send");
    let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "import_failed").await;
    assert!(p.to_string().contains("U+202E"), "{p}");
}
