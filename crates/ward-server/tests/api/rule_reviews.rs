//! Review and approval of rules through the API (tests required, separation of
//! duties, the company's number of approvals, stale and voided reviews),
//! deletion, list filters, and bulk import and export of Sigma zips.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_rules::bundle::{BundleLimits, read_bundle, write_bundle};

use crate::harness::{Member, TestApp, expect_problem, spawn_app};
use ward_store::on_both_backends;

on_both_backends!(
    review_needs_passing_tests_and_another_reviewer,
    approvals_count_per_company_policy_and_edits_void_them,
    concurrent_approvals_complete_once,
    rules_are_filtered_and_deleted,
    import_is_all_or_nothing_and_export_round_trips,
    the_sigmahq_corpus_imports,
);

pub(crate) fn rule(title: &str, id: &str, level: &str) -> String {
    format!(
        "title: {title}
id: {id}
status: test
description: test rule
author: Ward tests
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
level: {level}
tags:
    - attack.discovery
    - attack.t1033
"
    )
}

pub(crate) const ID: &str = "3f9e1c52-0000-4000-8000-00000000beef";

pub(crate) fn good_tests() -> Value {
    json!({"tests": [
        {"name": "whoami", "expect": "match", "event": {"Image": "C:\\Windows\\System32\\whoami.exe"}},
        {"name": "notepad", "expect": "no_match", "event": {"Image": "C:\\Windows\\notepad.exe"}},
    ]})
}

pub(crate) async fn create(app: &TestApp, who: &Member, content: &str) -> String {
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/rules",
            &who.auth,
            json!({"content": content}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

pub(crate) async fn step(
    app: &TestApp,
    who: &Member,
    id: &str,
    what: &str,
    body: Value,
) -> reqwest::Response {
    app.send_json(
        Method::POST,
        &format!("/api/v1/rules/{id}/{what}"),
        &who.auth,
        body,
    )
    .await
}

pub(crate) async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn edit(app: &TestApp, who: &Member, id: &str, base: u32, content: &str) {
    let r = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/rules/{id}"),
            &who.auth,
            json!({"content": content, "base_version": base}),
        )
        .await;
    ok(r).await;
}

pub(crate) async fn set_tests(app: &TestApp, who: &Member, id: &str, tests: Value) {
    let r = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/rules/{id}/tests"),
            &who.auth,
            tests,
        )
        .await;
    ok(r).await;
}

async fn review_needs_passing_tests_and_another_reviewer(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    let viewer = app.member(&t, "val@acme.example", Role::Viewer).await;
    let id = create(&app, &alice, &rule("Whoami", ID, "low")).await;
    let v1 = json!({"version": 1});

    // Submissions refused for their tests, each writing nothing.
    let before = app.audit_count().await;
    let r = step(&app, &alice, &id, "submit", v1.clone()).await;
    expect_problem(r, StatusCode::CONFLICT, "no_tests").await;
    set_tests(
        &app,
        &alice,
        &id,
        json!({"tests": [
        {"name": "notepad", "expect": "no_match", "event": {"Image": "C:\\notepad.exe"}}]}),
    )
    .await;
    let before_tests = app.audit_count().await;
    assert!(before_tests > before);
    let r = step(&app, &alice, &id, "submit", v1.clone()).await;
    expect_problem(r, StatusCode::CONFLICT, "no_positive_test").await;
    set_tests(
        &app,
        &alice,
        &id,
        json!({"tests": [
        {"name": "calc", "expect": "match", "event": {"Image": "C:\\calc.exe"}}]}),
    )
    .await;
    let before = app.audit_count().await;
    let r = step(&app, &alice, &id, "submit", v1.clone()).await;
    let p = expect_problem(r, StatusCode::CONFLICT, "tests_failing").await;
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("1 test"),
        "{p}"
    );
    set_tests(&app, &alice, &id, good_tests()).await;
    let before = before + 1;
    let r = step(&app, &viewer, &id, "submit", v1.clone()).await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = step(&app, &alice, &id, "submit", json!({"version": 9})).await;
    expect_problem(r, StatusCode::CONFLICT, "stale_version").await;
    assert_eq!(
        app.audit_count().await,
        before,
        "refused submissions write nothing"
    );

    // Submitted: the reviewer sees the whole rule as the diff and the test run.
    let v = ok(step(&app, &alice, &id, "submit", v1.clone()).await).await;
    assert_eq!(v["rule"]["status"], "in_review");
    assert_eq!(v["diff_from"], Value::Null);
    assert!(
        v["diff"]
            .as_str()
            .unwrap_or_default()
            .contains("+title: Whoami")
    );
    assert_eq!(
        (
            v["test_run"]["passed"].as_u64(),
            v["test_run"]["failed"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(v["reviews"][0]["state"], "open");
    assert_eq!(v["can_review"], false, "the author may not review");
    let r = step(&app, &alice, &id, "submit", v1.clone()).await;
    expect_problem(r, StatusCode::CONFLICT, "invalid_transition").await;

    // The queue: bob may act, alice may not.
    let q: Value = app
        .get("/api/v1/reviews", &bob.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(q["reviews"].as_array().map(Vec::len), Some(1));
    assert_eq!(q["reviews"][0]["can_review"], true);
    let q: Value = app
        .get("/api/v1/reviews", &alice.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(q["reviews"][0]["can_review"], false);

    // The author's approval is refused, and so are a Viewer's and a stale one.
    let before = app.audit_count().await;
    let r = step(&app, &alice, &id, "approve", v1.clone()).await;
    let p = expect_problem(r, StatusCode::FORBIDDEN, "separation_of_duties").await;
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("author"),
        "{p}"
    );
    let r = step(&app, &viewer, &id, "approve", v1.clone()).await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = step(&app, &bob, &id, "approve", json!({"version": 2})).await;
    expect_problem(r, StatusCode::CONFLICT, "stale_version").await;
    let r = step(&app, &bob, &id, "approve", json!({"version": "one"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.audit_count().await,
        before,
        "refused approvals write nothing"
    );

    let v = ok(step(&app, &bob, &id, "approve", v1.clone()).await).await;
    assert_eq!(v["rule"]["status"], "approved");
    assert_eq!(v["rule"]["approved_version"], 1);
    assert_eq!(
        v["reviews"][0]["approvals"][0]["approver"],
        "bob@acme.example"
    );
    let r = step(&app, &bob, &id, "approve", v1.clone()).await;
    expect_problem(r, StatusCode::CONFLICT, "invalid_transition").await;

    // Bob changes the rule: now he is the author and alice the reviewer; the
    // diff starts at the approved version.
    edit(&app, &bob, &id, 1, &rule("Whoami", ID, "medium")).await;
    let v = ok(step(&app, &bob, &id, "submit", json!({"version": 2})).await).await;
    assert_eq!(v["diff_from"], 1);
    let diff = v["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("-level: low\n+level: medium"), "{diff}");
    let r = step(&app, &bob, &id, "approve", json!({"version": 2})).await;
    expect_problem(r, StatusCode::FORBIDDEN, "separation_of_duties").await;
    // Rejection needs a reason; with one, the rule is rejected until edited.
    let r = step(
        &app,
        &alice,
        &id,
        "reject",
        json!({"version": 2, "reason": "  "}),
    )
    .await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let v = ok(step(
        &app,
        &alice,
        &id,
        "reject",
        json!({"version": 2, "reason": "too noisy"}),
    )
    .await)
    .await;
    assert_eq!(v["rule"]["status"], "rejected");
    assert_eq!(v["reviews"][0]["reason"], "too noisy");
    assert_eq!(
        v["rule"]["approved_version"], 1,
        "the approved version stands"
    );
    let r = step(&app, &bob, &id, "submit", json!({"version": 2})).await;
    expect_problem(r, StatusCode::CONFLICT, "invalid_transition").await;
    let r = step(&app, &alice, &id, "approve", json!({"version": 2})).await;
    expect_problem(r, StatusCode::CONFLICT, "invalid_transition").await;

    let actions = app.audit_actions(&t).await;
    for a in ["rule.submitted", "rule.approved", "rule.rejected"] {
        assert!(actions.iter().any(|(x, _)| x == a), "{a}");
    }
    // Another company sees none of it.
    let other = app.tenant("other").await;
    let mallory = app.member(&other, "m@other.example", Role::Admin).await;
    let r = step(&app, &mallory, &id, "approve", json!({"version": 2})).await;
    expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let q: Value = app
        .get("/api/v1/reviews", &mallory.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(q["reviews"].as_array().map(Vec::len), Some(0));
}

async fn approvals_count_per_company_policy_and_edits_void_them(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "carol@acme.example", Role::Admin).await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    let policy = "/api/v1/company/review-policy";
    let p: Value = app.get(policy, &bob.auth).await.json().await.expect("json");
    assert_eq!(p["min_approvers"], 1);
    let r = app
        .send_json(Method::PUT, policy, &bob.auth, json!({"min_approvers": 2}))
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    for bad in [
        json!({"min_approvers": 0}),
        json!({"min_approvers": 6}),
        json!({"min_approvers": -1}),
    ] {
        let r = app.send_json(Method::PUT, policy, &admin.auth, bad).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    ok(app
        .send_json(
            Method::PUT,
            policy,
            &admin.auth,
            json!({"min_approvers": 2}),
        )
        .await)
    .await;

    let id = create(&app, &alice, &rule("Whoami", ID, "low")).await;
    set_tests(&app, &alice, &id, good_tests()).await;
    ok(step(&app, &alice, &id, "submit", json!({"version": 1})).await).await;
    let v = ok(step(&app, &bob, &id, "approve", json!({"version": 1})).await).await;
    assert_eq!(v["rule"]["status"], "in_review", "one of two approvals");
    assert_eq!(v["reviews"][0]["required_approvals"], 2);
    let r = step(&app, &bob, &id, "approve", json!({"version": 1})).await;
    expect_problem(r, StatusCode::CONFLICT, "already_approved").await;

    // An edit during review voids it: bob's approval no longer counts.
    edit(&app, &alice, &id, 1, &rule("Whoami", ID, "high")).await;
    let v: Value = app
        .get(&format!("/api/v1/rules/{id}/review"), &bob.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["rule"]["status"], "draft");
    assert_eq!(v["reviews"][0]["state"], "voided");
    let r = step(&app, &admin, &id, "approve", json!({"version": 2})).await;
    expect_problem(r, StatusCode::CONFLICT, "invalid_transition").await;
    // So does a change of the tests.
    ok(step(&app, &alice, &id, "submit", json!({"version": 2})).await).await;
    set_tests(&app, &alice, &id, good_tests()).await;
    let v: Value = app
        .get(&format!("/api/v1/rules/{id}"), &bob.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "draft");

    ok(step(&app, &alice, &id, "submit", json!({"version": 2})).await).await;
    ok(step(&app, &bob, &id, "approve", json!({"version": 2})).await).await;
    let v = ok(step(&app, &admin, &id, "approve", json!({"version": 2})).await).await;
    assert_eq!(v["rule"]["status"], "approved");
    assert_eq!(
        v["reviews"][0]["approvals"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        app.audit_actions(&t)
            .await
            .iter()
            .any(|(a, _)| a == "company.review_policy_changed")
    );
}

async fn concurrent_approvals_complete_once(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "carol@acme.example", Role::Admin).await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    ok(app
        .send_json(
            Method::PUT,
            "/api/v1/company/review-policy",
            &admin.auth,
            json!({"min_approvers": 2}),
        )
        .await)
    .await;
    for round in 0..5 {
        let id = create(
            &app,
            &alice,
            &rule(
                &format!("Whoami {round}"),
                &format!("3f9e1c52-0000-4000-8000-0000000000{round:02}"),
                "low",
            ),
        )
        .await;
        set_tests(&app, &alice, &id, good_tests()).await;
        ok(step(&app, &alice, &id, "submit", json!({"version": 1})).await).await;
        let (a, b) = tokio::join!(
            step(&app, &bob, &id, "approve", json!({"version": 1})),
            step(&app, &admin, &id, "approve", json!({"version": 1}))
        );
        assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
        let v: Value = app
            .get(&format!("/api/v1/rules/{id}/review"), &bob.auth)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(v["rule"]["status"], "approved", "round {round}: {v}");
        assert_eq!(
            v["reviews"][0]["approvals"].as_array().map(Vec::len),
            Some(2)
        );
    }
}

async fn rules_are_filtered_and_deleted(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let bob = app.member(&t, "bob@acme.example", Role::User).await;
    let viewer = app.member(&t, "val@acme.example", Role::Viewer).await;
    let a = create(&app, &alice, &rule("Alpha", ID, "low")).await;
    create(
        &app,
        &bob,
        &rule("Bravo", "3f9e1c52-0000-4000-8000-00000000b0b0", "high"),
    )
    .await;
    let list = |q: &'static str| {
        let app = &app;
        let viewer = &viewer;
        async move {
            let r = app.get(&format!("/api/v1/rules{q}"), &viewer.auth).await;
            let v: Value = r.json().await.expect("json");
            v["rules"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    assert_eq!(list("").await, ["Alpha", "Bravo"]);
    assert_eq!(list("?level=HIGH").await, ["Bravo"]);
    assert_eq!(list("?author=alice").await, ["Alpha"]);
    assert_eq!(
        list("?tag=attack.t1033&status=draft").await,
        ["Alpha", "Bravo"]
    );
    assert_eq!(
        list("?logsource=process_creation&level=low").await,
        ["Alpha"]
    );
    assert!(
        list("?tag=attack.t1").await.is_empty(),
        "a tag matches whole"
    );
    let r = app.get("/api/v1/rules?status=done", &viewer.auth).await;
    expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
    let r = app.get("/api/v1/rules?colour=red", &viewer.auth).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let path = format!("/api/v1/rules/{a}");
    let r = app
        .req(Method::DELETE, &path, &viewer.auth)
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .req(Method::DELETE, &path, &bob.auth)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .req(Method::DELETE, &path, &bob.auth)
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(
        app.get(&path, &viewer.auth).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(list("").await, ["Bravo"]);
    // Its Sigma id is free again.
    create(&app, &alice, &rule("Alpha again", ID, "low")).await;
    assert!(
        app.audit_actions(&t)
            .await
            .iter()
            .any(|(a, _)| a == "rule.deleted")
    );
}

fn zip(files: &[(&str, String)]) -> Vec<u8> {
    write_bundle(files.iter().map(|(p, c)| (*p, c.as_bytes()))).expect("zip")
}

async fn import(app: &TestApp, who: &Member, body: Vec<u8>, partial: bool) -> reqwest::Response {
    let q = if partial { "?partial=true" } else { "" };
    app.req(Method::POST, &format!("/api/v1/rules/import{q}"), &who.auth)
        .header("content-type", "application/zip")
        .body(body)
        .send()
        .await
        .expect("send")
}

async fn import_is_all_or_nothing_and_export_round_trips(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let viewer = app.member(&t, "val@acme.example", Role::Viewer).await;
    let tests = serde_json::to_string(&good_tests()).expect("json");
    let one = rule("One", ID, "low");
    let two = rule("Two", "3f9e1c52-0000-4000-8000-000000000002", "high");
    let bad =
        rule("Bad", "3f9e1c52-0000-4000-8000-000000000003", "low").replace("endswith", "endswitch");
    let files = [
        ("windows/one.yml", one.clone()),
        ("windows/one.tests.json", tests.clone()),
        ("windows/two.yaml", two.clone()),
        ("broken/bad.yml", bad),
    ];

    // One invalid file: nothing is imported, and every file has its result.
    let before = app.audit_count().await;
    let r = import(&app, &alice, zip(&files), false).await;
    let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "import_failed").await;
    let results = p["files"].as_array().expect("files");
    assert_eq!(results.len(), 3);
    let bad_result = results
        .iter()
        .find(|f| f["path"] == "broken/bad.yml")
        .expect("bad");
    assert!(
        bad_result["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("endswitch"),
        "{bad_result}"
    );
    assert!(
        results
            .iter()
            .filter(|f| f["path"] != "broken/bad.yml")
            .all(|f| f["outcome"] == "skipped")
    );
    assert_eq!(app.audit_count().await, before);
    assert!(app.store.list_rules(&t).await.expect("list").is_empty());

    // Hostile or empty archives, and Viewers, are refused.
    for body in [
        b"not a zip".to_vec(),
        zip(&[("README.md", "x".to_owned())]),
        zip(&[("../up.yml", one.clone())]),
        zip(&[("bomb.yml", "a".repeat(3 * 1024 * 1024))]),
    ] {
        let r = import(&app, &alice, body, false).await;
        expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_bundle").await;
    }
    let dup = zip(&[
        ("a.yml", one.clone()),
        ("b.yml", one.replace("title: One", "title: Uno")),
    ]);
    let r = import(&app, &alice, dup, false).await;
    let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "import_failed").await;
    assert!(
        p["files"][1]["errors"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("duplicate_rule_id"),
        "{p}"
    );
    let r = import(&app, &viewer, zip(&files), true).await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.audit_count().await, before);

    // Partial: the valid files go in.
    let v = ok(import(&app, &alice, zip(&files), true).await).await;
    assert_eq!(
        (v["created"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let rules = app.store.list_rules(&t).await.expect("list");
    assert_eq!(rules.len(), 2);
    let one_id = rules
        .iter()
        .find(|r| r.title == "One")
        .expect("one")
        .id
        .to_string();
    let stored: Value = app
        .get(&format!("/api/v1/rules/{one_id}/tests"), &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["tests"].as_array().map(Vec::len), Some(2));

    // Re-importing the same tree changes nothing; a changed rule is a new version.
    let same = [files[0].clone(), files[1].clone(), files[2].clone()];
    let v = ok(import(&app, &alice, zip(&same), false).await).await;
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    let changed = [(
        "windows/one.yml",
        one.replace("level: low", "level: critical"),
    )];
    let v = ok(import(&app, &alice, zip(&changed), false).await).await;
    assert_eq!(v["files"][0]["outcome"], "updated");
    assert_eq!(v["files"][0]["version"], 2);
    let actions = app.audit_actions(&t).await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "rule.imported").count(),
        3
    );

    // Export: a zip of the current texts with tests beside them, which imports
    // into another company as it was.
    let r = app.get("/api/v1/rules/export", &viewer.auth).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let body = r.bytes().await.expect("bytes").to_vec();
    let bundled = read_bundle(&body, BundleLimits::default()).expect("bundle");
    let paths: Vec<&str> = bundled.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(paths, ["windows/one.yml", "windows/two.yml"]);
    assert!(String::from_utf8_lossy(&bundled[0].content).contains("level: critical"));
    assert_eq!(
        bundled[0].tests_path.as_deref(),
        Some("windows/one.tests.json")
    );
    assert!(
        app.audit_actions(&t)
            .await
            .iter()
            .any(|(a, _)| a == "rules.exported")
    );
    let other = app.tenant("other").await;
    let mallory = app.member(&other, "m@other.example", Role::Admin).await;
    let v = ok(import(&app, &mallory, body, false).await).await;
    assert_eq!(v["created"], 2);
}

async fn the_sigmahq_corpus_imports(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let alice = app.member(&t, "alice@acme.example", Role::User).await;
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma/rules");
    let mut files: Vec<(String, String)> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("SigmaHQ rules in ../shared/data/sigma/rules") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                let rel = p
                    .strip_prefix(&root)
                    .expect("rel")
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, std::fs::read_to_string(&p).expect("read")));
            }
        }
    }
    assert!(files.len() > 3000, "{}", files.len());
    let body = write_bundle(files.iter().map(|(p, c)| (p.as_str(), c.as_bytes()))).expect("zip");
    let v = ok(import(&app, &alice, body, false).await).await;
    assert_eq!(
        v["created"].as_u64(),
        Some(files.len() as u64),
        "{}",
        v["failed"]
    );
    assert_eq!(
        app.store.list_rules(&t).await.expect("list").len(),
        files.len()
    );
}
