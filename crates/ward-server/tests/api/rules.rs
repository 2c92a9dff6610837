//! Detection rules through the API: validation on save (nothing written when
//! invalid), immutable versions, stale edits, duplicate Sigma ids within a
//! company, roles and company isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;

use crate::harness::{expect_problem, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(
    rules_are_validated_versioned_and_scoped,
    rule_versions_are_immutable_in_the_database,
    rule_tests_run_and_are_recorded,
);

const RULE: &str = "title: Whoami
id: 3f9e1c52-0000-4000-8000-00000000c0de
status: test
description: whoami run
author: Ward tests
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
level: low
tags:
    - attack.discovery
    - attack.t1033
";

async fn rules_are_validated_versioned_and_scoped(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let viewer = app.member(&t, "val@acme.example", Role::Viewer).await;
    let other = app.tenant("other").await;
    let mallory = app.member(&other, "m@other.example", Role::Admin).await;

    // Invalid rules: 422 naming the position, and nothing is stored or audited.
    let before = app.audit_count().await;
    for (content, needle) in [
        (RULE.replace("endswith", "endswitch"), "11:15"),
        (
            RULE.replace("condition: selection", "condition: selection and filter"),
            "filter",
        ),
        (RULE.replace("    condition", "\tcondition"), "yaml"),
        ("a: &a [1]\nb: [*a, *a]\n".to_owned(), "Sigma"),
    ] {
        let r = app
            .send_json(
                Method::POST,
                "/api/v1/rules",
                &alice.auth,
                json!({"content": content}),
            )
            .await;
        let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule").await;
        assert!(
            p["detail"].as_str().unwrap_or_default().contains(needle),
            "{needle}: {p}"
        );
    }
    let big = format!("{RULE}# {}\n", "x".repeat(10 * 1024 * 1024));
    // The server answers 413 from the Content-Length and closes the connection;
    // a client still writing the body may see the close first (a broken pipe).
    // Either way nothing is stored (checked below).
    match app
        .req(Method::POST, "/api/v1/rules", &alice.auth)
        .json(&json!({"content": big}))
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &viewer.auth,
            json!({"content": RULE}),
        )
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        app.audit_count().await,
        before,
        "refused saves write nothing"
    );
    assert!(app.store.list_rules(&t).await.expect("list").is_empty());

    // A valid rule: version 1, a draft, with its lint findings.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &alice.auth,
            json!({"content": RULE, "note": "first"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    let id = v["id"].as_str().expect("id").to_owned();
    assert_eq!(v["status"], "draft");
    assert_eq!(v["current_version"], 1);
    assert_eq!(v["level"], "low");
    assert_eq!(v["content_hash"].as_str().map(str::len), Some(64));

    // The same Sigma id again in this company: refused; in another company: fine.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &alice.auth,
            json!({"content": RULE}),
        )
        .await;
    expect_problem(r, StatusCode::CONFLICT, "duplicate_rule_id").await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &mallory.auth,
            json!({"content": RULE}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Saving unchanged text makes no version; a change makes version 2.
    let path = format!("/api/v1/rules/{id}");
    let r = app
        .send_json(
            Method::PUT,
            &path,
            &alice.auth,
            json!({"content": RULE, "base_version": 1}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["current_version"], 1);
    let changed = RULE.replace("level: low", "level: medium");
    let r = app
        .send_json(
            Method::PUT,
            &path,
            &alice.auth,
            json!({"content": changed, "base_version": 1, "note": "raise"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["current_version"].as_u64(), v["level"].as_str()),
        (Some(2), Some("medium"))
    );
    // An edit based on version 1 is now stale.
    let r = app
        .send_json(
            Method::PUT,
            &path,
            &alice.auth,
            json!({"content": RULE, "base_version": 1}),
        )
        .await;
    expect_problem(r, StatusCode::CONFLICT, "stale_version").await;
    let r = app
        .send_json(
            Method::PUT,
            &path,
            &alice.auth,
            json!({"content": RULE.replace("endswith", "bogus"), "base_version": 2}),
        )
        .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule").await;

    let versions: Value = app
        .get(&format!("{path}/versions"), &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    let list = versions["versions"].as_array().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["note"], "raise");
    assert_eq!(list[1]["author"], "alice@acme.example");
    assert_ne!(list[0]["content_hash"], list[1]["content_hash"]);
    let d: Value = app
        .get(&format!("{path}/diff?from=1&to=2"), &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    let diff = d["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("-level: low\n+level: medium"), "{diff}");
    for bad in ["from=1&to=9", "from=x&to=2", "to=2"] {
        let r = app.get(&format!("{path}/diff?{bad}"), &viewer.auth).await;
        assert!(
            r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::BAD_REQUEST,
            "{bad}: {}",
            r.status()
        );
    }

    // Another company's rule is not found, by any route.
    for (m, p) in [
        (Method::GET, path.clone()),
        (Method::GET, format!("{path}/versions")),
    ] {
        let r = app.req(m, &p, &mallory.auth).send().await.expect("send");
        expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = app
        .send_json(
            Method::PUT,
            &path,
            &mallory.auth,
            json!({"content": changed, "base_version": 2}),
        )
        .await;
    expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;

    let actions = app.audit_actions(&t).await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "rule.created").count(),
        1
    );
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "rule.edited").count(),
        1
    );
}

async fn rule_versions_are_immutable_in_the_database(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &alice.auth,
            json!({"content": RULE}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url()).await.expect("pool");
    for sql in [
        "UPDATE rule_versions SET content = 'x'",
        "DELETE FROM rule_versions",
    ] {
        let e = sqlx::query(sql).execute(&pool).await.expect_err("refused");
        assert!(e.to_string().contains("immutable"), "{e}");
    }
}

async fn rule_tests_run_and_are_recorded(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let viewer = app.member(&t, "val@acme.example", Role::Viewer).await;
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &alice.auth,
            json!({"content": RULE}),
        )
        .await;
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let tests = format!("/api/v1/rules/{id}/tests");

    let r = app
        .req(Method::POST, &format!("{tests}/run"), &alice.auth)
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::CONFLICT, "no_tests").await;

    // Bad test cases: an event that is not an object, a body that is not JSON.
    let r = app
        .send_json(
            Method::PUT,
            &tests,
            &alice.auth,
            json!({"tests": [{"name": "x", "expect": "match", "event": "whoami"}]}),
        )
        .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = app
        .req(Method::PUT, &tests, &alice.auth)
        .header("content-type", "application/json")
        .body("{\"tests\": [{\"event\": not json}]}")
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::BAD_REQUEST, "malformed_json").await;
    let r = app
        .send_json(Method::PUT, &tests, &viewer.auth, json!({"tests": []}))
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let cases = json!({"tests": [
        {"name": "whoami", "expect": "match", "event": {"Image": "C:\\Windows\\System32\\whoami.exe"}},
        {"name": "evtx whoami", "expect": "match", "event": {"Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\x\\whoami.exe"}}}},
        {"name": "notepad", "expect": "no_match", "event": {"Image": "C:\\Windows\\notepad.exe"}},
        {"name": "wrong on purpose", "expect": "match", "event": {"Image": "C:\\calc.exe"}},
    ]});
    let r = app.send_json(Method::PUT, &tests, &alice.auth, cases).await;
    assert_eq!(r.status(), StatusCode::OK);
    let stored: Value = app
        .get(&tests, &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["tests"].as_array().map(Vec::len), Some(4));

    let r = app
        .req(Method::POST, &format!("{tests}/run"), &alice.auth)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let run: Value = r.json().await.expect("json");
    assert_eq!(
        (
            run["passed"].as_u64(),
            run["failed"].as_u64(),
            run["version"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(run["run_by"], "alice@acme.example");
    let wrong = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["name"] == "wrong on purpose")
        .expect("result");
    assert_eq!(
        (wrong["passed"].as_bool(), wrong["matched"].as_bool()),
        (Some(false), Some(false))
    );

    let runs: Value = app
        .get(&format!("{tests}/runs"), &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1));
    let actions = app.audit_actions(&t).await;
    assert!(actions.iter().any(|(a, _)| a == "rule.tests_changed"));
    assert!(actions.iter().any(|(a, _)| a == "rule.tests_run"));
}
