//! The tamper-evident audit log over HTTP: checkpoints, inclusion and consistency
//! proofs checked by a verifier written here from RFC 9162's text (not Ward's
//! code), exports in every format, company scoping and bad proof requests.

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use ward_core::Role;
use ward_store::on_both_backends;

use crate::harness::{Auth, TestApp, expect_problem, integrated, spawn_app, spawn_app_with};

on_both_backends!(
    proofs_verify_independently,
    exports_in_every_format_stay_within_the_company,
    bad_proof_requests_are_clear_4xx,
    a_late_commit_becomes_a_later_leaf,
);

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn unhex(s: &str) -> H {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect();
    v.try_into().expect("32 bytes")
}

fn proof_of(v: &Value) -> Vec<H> {
    v["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| unhex(h.as_str().expect("hex")))
        .collect()
}

/// RFC 9162 §2.1.3.2, step by step.
fn rfc_verify_inclusion(leaf_index: u64, tree_size: u64, leaf: H, path: &[H], root: H) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = sha(&[&[1], p, &r]);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = sha(&[&[1], &r, p]);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2, step by step.
fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_hash: H,
    second_hash: H,
    proof: &[H],
) -> bool {
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second {
        return false;
    }
    let mut path: Vec<H> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((&c0, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (c0, c0);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = sha(&[&[1], c, &fr]);
            sr = sha(&[&[1], c, &sr]);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = sha(&[&[1], &sr, c]);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

async fn json(app: &TestApp, path: &str, auth: &Auth) -> Value {
    let r = app.get(path, auth).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("json")
}

async fn proofs_verify_independently(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let mut roots = Vec::new();
    for round in 0..3 {
        for i in 0..(5 + round * 4) {
            app.member(&t, &format!("u{round}-{i}@acme.example"), Role::Viewer)
                .await;
        }
        integrated(&app).await;
        // The route signs at most one checkpoint per five seconds of Ward's clock.
        app.clock.advance_secs(10);
        let c = json(&app, "/api/v1/audit/checkpoint", &admin.auth).await;
        roots.push((
            c["tree_size"].as_u64().expect("size"),
            unhex(c["root_hash"].as_str().expect("root")),
        ));
        // The note verifies with the published key (Ward's verifier; the
        // Ed25519 maths is checked against RFC 8032's vectors in ward-audit).
        let key = ward_audit::CheckpointVerifier::parse(c["public_key"].as_str().expect("key"))
            .expect("key");
        let cp = key
            .verify(c["note"].as_str().expect("note"))
            .expect("signed");
        assert_eq!(cp.size, roots.last().expect("root").0);
    }
    let (size, root) = *roots.last().expect("root");
    // Every leaf: its hash from the event as exported, its proof from the API.
    let export = app
        .get("/api/v1/audit/export?format=jsonl", &admin.auth)
        .await
        .text()
        .await
        .expect("body");
    let events: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    let mut checked = 0;
    for e in &events {
        let Some(index) = e["leaf_index"].as_u64() else {
            continue;
        };
        if index >= size {
            continue;
        }
        let mut leaf_value = e.clone();
        leaf_value
            .as_object_mut()
            .expect("object")
            .remove("leaf_index");
        let leaf = sha(&[
            &[0],
            &ward_audit::canonical_json(&leaf_value).expect("canonical"),
        ]);
        let p = json(
            &app,
            &format!("/api/v1/audit/proof/inclusion?index={index}&size={size}"),
            &admin.auth,
        )
        .await;
        assert!(
            rfc_verify_inclusion(index, size, leaf, &proof_of(&p), root),
            "leaf {index}"
        );
        // A proof for another index does not prove this leaf.
        if index + 1 < size {
            let other = json(
                &app,
                &format!(
                    "/api/v1/audit/proof/inclusion?index={}&size={size}",
                    index + 1
                ),
                &admin.auth,
            )
            .await;
            assert!(!rfc_verify_inclusion(
                index,
                size,
                leaf,
                &proof_of(&other),
                root
            ));
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} of the company's leaves checked"
    );
    // Every checkpoint is consistent with every later one.
    for (i, (a, ra)) in roots.iter().enumerate() {
        for (b, rb) in &roots[i..] {
            let p = json(
                &app,
                &format!("/api/v1/audit/proof/consistency?from={a}&to={b}"),
                &admin.auth,
            )
            .await;
            assert!(
                rfc_verify_consistency(*a, *b, *ra, *rb, &proof_of(&p)),
                "{a} -> {b}"
            );
            if a != b {
                let mut bad = proof_of(&p);
                bad[0][0] ^= 1;
                assert!(!rfc_verify_consistency(*a, *b, *ra, *rb, &bad));
            }
        }
    }
}

async fn exports_in_every_format_stay_within_the_company(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let admin = app.member(&acme, "admin@acme.example", Role::Admin).await;
    let viewer = app
        .member(&acme, "auditor@acme.example", Role::Viewer)
        .await;
    let user = app.member(&acme, "user@acme.example", Role::User).await;
    app.member(&globex, "admin@globex.example", Role::Admin)
        .await;
    integrated(&app).await;

    for (format, ct) in [
        ("jsonl", "application/x-ndjson"),
        ("ocsf", "application/x-ndjson"),
        ("cef", "text/plain; charset=utf-8"),
        ("csv", "text/csv; charset=utf-8"),
    ] {
        let r = app
            .get(
                &format!("/api/v1/audit/export?format={format}"),
                &viewer.auth,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{format}");
        assert_eq!(r.headers()["content-type"], ct);
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .expect("ascii")
                .starts_with("attachment")
        );
        let body = r.text().await.expect("body");
        assert!(body.contains("auditor@acme.example"), "{format}");
        assert!(
            !body.contains("globex"),
            "{format} leaked another company's events"
        );
        match format {
            "csv" => assert!(body.starts_with("leaf_index,occurred_at,id,")),
            "cef" => assert!(body.lines().all(|l| l.starts_with("CEF:0|Ward|Ward|"))),
            "ocsf" => {
                for l in body.lines() {
                    let v: Value = serde_json::from_str(l).expect("ocsf json");
                    assert!([3001, 3002, 6003].contains(&v["class_uid"].as_u64().expect("class")));
                    assert_eq!(v["metadata"]["version"], "1.3.0");
                }
            }
            _ => {}
        }
    }
    // Filters: only sign-ins, only from one actor.
    let body = app
        .get(
            "/api/v1/audit/export?format=jsonl&action=auth.login",
            &admin.auth,
        )
        .await
        .text()
        .await
        .expect("body");
    assert!(body.lines().count() >= 3);
    assert!(
        body.lines()
            .all(|l| l.contains("\"action\":\"auth.login\""))
    );

    // The verifiable export: acme's events in full with proofs, globex's as hashes,
    // and it verifies offline with the published key.
    let c = json(&app, "/api/v1/audit/checkpoint", &admin.auth).await;
    let key =
        ward_audit::CheckpointVerifier::parse(c["public_key"].as_str().expect("key")).expect("key");
    let body = app
        .get("/api/v1/audit/export?format=proofs", &admin.auth)
        .await
        .text()
        .await
        .expect("body");
    assert!(!body.contains("admin@globex.example"));
    let mut v = ward_audit::ExportVerifier::new(&key);
    for l in body.lines() {
        v.feed(l).expect("line verifies");
    }
    let report = v.finish().expect("verifies");
    assert!(report.events >= 4 && report.hashes_only >= 2, "{report:?}");
    assert!(report.complete_tree);
    // The export itself is in the log.
    assert!(
        app.audit_actions(&acme)
            .await
            .iter()
            .any(|(a, _)| a == "audit.exported")
    );
    // A User may not read the audit log at all.
    let r = app
        .get("/api/v1/audit/export?format=jsonl", &user.auth)
        .await;
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn bad_proof_requests_are_clear_4xx(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let size = integrated(&app).await;
    let audit_rows = app.audit_count().await;
    for path in [
        format!("/api/v1/audit/proof/inclusion?index={size}&size={size}"),
        format!("/api/v1/audit/proof/inclusion?index=0&size={}", size + 1),
        "/api/v1/audit/proof/consistency?from=2&to=1".to_owned(),
        format!("/api/v1/audit/proof/consistency?from=0&to={size}"),
        format!("/api/v1/audit/proof/consistency?from=1&to={}", size + 5),
        format!("/api/v1/audit/export?format=proofs&from=0&to={}", size + 5),
        "/api/v1/audit/export?format=proofs&from=2&to=1".to_owned(),
    ] {
        let r = app.get(&path, &admin.auth).await;
        expect_problem(r, StatusCode::BAD_REQUEST, "proof_out_of_range").await;
    }
    for path in [
        "/api/v1/audit/proof/inclusion?index=-1&size=3",
        "/api/v1/audit/proof/inclusion?index=abc&size=3",
        "/api/v1/audit/proof/inclusion?size=3",
        "/api/v1/audit/export?format=xml",
        "/api/v1/audit/export?format=jsonl&from=3",
        "/api/v1/audit/export?format=proofs&action=auth.login",
        "/api/v1/audit/export?format=csv&since=yesterday",
    ] {
        let r = app.get(path, &admin.auth).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // Refused requests wrote nothing.
    assert_eq!(app.audit_count().await, audit_rows);
}

/// PostgreSQL hands out `seq` before commit: a transaction that drew seq N can
/// commit after one that drew N+1 was already integrated. The leaf index is
/// assigned at integration, so the late event becomes a later leaf, nothing is
/// skipped, and the log verifies. (On SQLite the second writer waits for the
/// first; the test still runs.)
async fn a_late_commit_becomes_a_later_leaf(backend: ward_store::Backend) {
    use ward_jobs::audit_log::Sequencer;
    let app = spawn_app_with(backend, |s| {
        // This test drives the sequencer itself.
        s.audit_sequencer.interval = std::time::Duration::from_secs(3600);
    })
    .await;
    // The app's own sequencer ran once at start; wait for it to go idle.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url()).await.expect("pool");
    let insert = "INSERT INTO audit_events (id, occurred_at, tenant_id, actor_kind, actor_id, actor_label, \
         ip, user_agent, request_id, action, target_kind, target_id, outcome, details) \
         VALUES ($1, $2, NULL, 'system', NULL, 'test', 'local', 't', 'r', 'tenant.created', NULL, NULL, 'success', '{}')";
    let mut slow = match backend {
        ward_store::Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await.expect("begin"),
        ward_store::Backend::Postgres => pool.begin().await.expect("begin"),
    };
    sqlx::query(insert)
        .bind("slow-writer")
        .bind(1_i64)
        .execute(&mut *slow)
        .await
        .expect("slow insert");
    let fast = {
        let pool = pool.clone();
        tokio::spawn(async move {
            sqlx::query(insert)
                .bind("fast-writer")
                .bind(2_i64)
                .execute(&pool)
                .await
                .expect("fast insert");
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut sequencer = Sequencer::new();
    let now = ward_core::Timestamp::from_millis(10_000);
    sequencer
        .integrate_all(&app.store, now, 100)
        .await
        .expect("integrate");
    let size_before = app.store.audit_tree_size().await.expect("size");
    slow.commit().await.expect("commit");
    fast.await.expect("fast writer");
    sequencer
        .integrate_all(&app.store, now, 100)
        .await
        .expect("integrate");
    let size = app.store.audit_tree_size().await.expect("size");
    assert_eq!(app.store.audit_pending_count().await.expect("pending"), 0);
    let records = app.store.audit_leaf_records(0, size).await.expect("leaves");
    let at = |id: &str| {
        records
            .iter()
            .find(|r| r.event.as_ref().is_some_and(|e| e.id.as_str() == id))
            .map(|r| r.index)
            .expect("integrated")
    };
    if backend == ward_store::Backend::Postgres {
        // The fast writer committed first and was integrated first, although its
        // seq is the higher one.
        assert!(
            at("fast-writer") < size_before,
            "fast writer integrated in the first pass"
        );
        assert!(
            at("slow-writer") >= size_before,
            "slow writer is a later leaf"
        );
        let seq = |id: &str| {
            records
                .iter()
                .find_map(|r| {
                    r.event
                        .as_ref()
                        .filter(|e| e.id.as_str() == id)
                        .map(|e| e.seq)
                })
                .expect("seq")
        };
        assert!(seq("slow-writer") < seq("fast-writer"));
    }
    let report = ward_server::audit_verify::verify_log(
        &app.store,
        &[ward_jobs::audit_log::checkpoint_signer(&app.master, &app.salt).verifier()],
        &mut |_, _| {},
    )
    .await
    .expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    pool.close().await;
}

/// The parallel verifier reads a SQLite file directly, so it exists only there:
/// on a clean log it agrees with the page-by-page verifier for every chunk size
/// (chunks of one leaf up to bigger than the log, checkpoints inside chunks and
/// on their edges), and each kind of tampering makes it answer "not clean".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parallel_verifier_agrees_and_refuses_tampering() {
    use sqlx::{Connection, Executor};
    use ward_jobs::audit_log::{Sequencer, sign_checkpoint};
    use ward_server::audit_verify::verify_log_by_pages;
    use ward_server::audit_verify_parallel::verify_sqlite_file;

    let app = spawn_app_with(ward_store::Backend::Sqlite, |s| {
        s.audit_sequencer.interval = std::time::Duration::from_secs(3600);
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let store = &app.store;
    let signer = ward_jobs::audit_log::checkpoint_signer(&app.master, &app.salt);
    let now = ward_core::Timestamp::from_millis(1_800_000_000_000);
    let mut sequencer = Sequencer::new();
    let event = |n: u64| {
        ward_core::AuditEvent::new(
            ward_core::EventId::from_random([n as u8; 16]),
            ward_core::Timestamp::from_millis(1_700_000_000_000 + n as i64),
            None,
            ward_core::Actor::system("test"),
            ward_core::RequestContext {
                ip: "192.0.2.1".into(),
                user_agent: "test".into(),
                request_id: format!("r{n}"),
            },
            ward_core::audit::actions::AUTH_LOGIN_FAILED,
        )
        .failed()
        .details(
            serde_json::json!({"reason": "wrong_password", "email": format!("u{n}@example.com")}),
        )
    };
    // Three rounds of concurrent group-committed writes, each integrated and
    // checkpointed, so checkpoints fall inside chunks and on their edges.
    let mut n = 0u64;
    for round in [13u64, 19, 16] {
        let writes: Vec<_> = (n..n + round)
            .map(|i| {
                let store = store.clone();
                let e = event(i);
                tokio::spawn(async move { store.record_audit(&e).await })
            })
            .collect();
        for w in writes {
            w.await.expect("task").expect("record");
        }
        n += round;
        sequencer
            .integrate_all(store, now, 7)
            .await
            .expect("integrate");
        sign_checkpoint(store, &signer, now).await.expect("sign");
    }
    store.record_audit(&event(200)).await.expect("pending");
    let path = store.sqlite_file().expect("a SQLite file").to_path_buf();
    let trusted = [signer.verifier()];
    let slow = verify_log_by_pages(store, &trusted, &mut |_, _| {})
        .await
        .expect("verify");
    assert!(slow.problems.is_empty(), "{:?}", slow.problems);
    let size = store.audit_tree_size().await.expect("size");
    let roots = || async {
        store
            .audit_checkpoints()
            .await
            .expect("checkpoints")
            .iter()
            .map(|c| (c.tree_size, c.root))
            .collect::<Vec<_>>()
    };
    let fast = |level: u8, checkpoints: Vec<(u64, [u8; 32])>| {
        let path = path.clone();
        async move {
            verify_sqlite_file(path, size, checkpoints, level, &mut |_, _| {})
                .await
                .expect("read")
        }
    };
    let checkpoints = roots().await;
    assert!(checkpoints.len() >= 3 && size >= 48, "{size}");
    for level in 0..=7 {
        let clean = fast(level, checkpoints.clone())
            .await
            .unwrap_or_else(|| panic!("chunk level {level}"));
        assert_eq!(clean.root, slow.root, "chunk level {level}");
        assert_eq!((clean.size, clean.pending), (slow.size, slow.pending));
        assert_eq!(clean.pending, 1);
    }
    // A server integrating while verification runs: the tree verified is the
    // one of the size read first; later leaves count as pending.
    let earlier: Vec<_> = checkpoints
        .iter()
        .copied()
        .filter(|(s, _)| *s <= size - 3)
        .collect();
    let path_earlier = path.clone();
    let clean = verify_sqlite_file(path_earlier, size - 3, earlier, 2, &mut |_, _| {})
        .await
        .expect("read")
        .expect("an earlier size is clean");
    assert_eq!(clean.pending, slow.pending + 3);
    // The front door takes the parallel path and says the same.
    let report = ward_server::audit_verify::verify_log(store, &trusted, &mut |_, _| {})
        .await
        .expect("verify");
    assert_eq!(
        (report.root, report.size, report.problems.len()),
        (slow.root, slow.size, 0)
    );

    // An attacker with the database file and the triggers dropped.
    sqlx::any::install_default_drivers();
    let mut a = sqlx::AnyConnection::connect(&app.db_url())
        .await
        .expect("connect");
    a.execute("PRAGMA foreign_keys = OFF")
        .await
        .expect("fk off");
    for t in [
        "audit_events_no_update",
        "audit_events_no_delete",
        "audit_tree_no_update",
        "audit_checkpoints_no_update",
        "audit_leaves_no_update",
    ] {
        a.execute(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
            .await
            .expect("drop trigger");
    }
    async fn text(a: &mut sqlx::AnyConnection, sql: &str) -> String {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(a)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    let seq = |i: u64| format!("(SELECT event_seq FROM audit_leaves WHERE leaf_index = {i})");
    let node = text(
        &mut a,
        "SELECT hex(hash) FROM audit_tree WHERE level = 3 AND node_index = 2",
    )
    .await;
    let cp = checkpoints[1];
    let cp_root = text(
        &mut a,
        &format!(
            "SELECT hex(root_hash) FROM audit_checkpoints WHERE tree_size = {}",
            cp.0
        ),
    )
    .await;
    let s30 = text(&mut a, &format!("SELECT CAST({} AS TEXT)", seq(30))).await;
    let s31 = text(&mut a, &format!("SELECT CAST({} AS TEXT)", seq(31))).await;
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        (
            "one byte of one event",
            vec![format!("UPDATE audit_events SET ip = ip || 'x' WHERE seq = {}", seq(20))],
            vec![format!("UPDATE audit_events SET ip = substr(ip, 1, length(ip) - 1) WHERE seq = {}", seq(20))],
        ),
        (
            "a stored subtree",
            vec!["UPDATE audit_tree SET hash = zeroblob(32) WHERE level = 3 AND node_index = 2".into()],
            vec![format!("UPDATE audit_tree SET hash = X'{node}' WHERE level = 3 AND node_index = 2")],
        ),
        (
            "two leaves swapped",
            vec![
                "UPDATE audit_leaves SET event_seq = -1 WHERE leaf_index = 30".into(),
                format!("UPDATE audit_leaves SET event_seq = {s30} WHERE leaf_index = 31"),
                format!("UPDATE audit_leaves SET event_seq = {s31} WHERE leaf_index = 30"),
            ],
            vec![
                "UPDATE audit_leaves SET event_seq = -1 WHERE leaf_index = 30".into(),
                format!("UPDATE audit_leaves SET event_seq = {s31} WHERE leaf_index = 31"),
                format!("UPDATE audit_leaves SET event_seq = {s30} WHERE leaf_index = 30"),
            ],
        ),
        (
            "an event outside the tree",
            vec!["INSERT INTO audit_events (seq, id, occurred_at, tenant_id, actor_kind, actor_id, \
                  actor_label, ip, user_agent, request_id, action, target_kind, target_id, outcome, details) \
                  VALUES (0, 'forged', 1, NULL, 'system', NULL, 'x', '', '', '', 'user.created', NULL, NULL, 'success', '{}')".into()],
            vec!["DELETE FROM audit_events WHERE id = 'forged'".into()],
        ),
        (
            "a checkpoint root",
            vec![format!("UPDATE audit_checkpoints SET root_hash = zeroblob(32) WHERE tree_size = {}", cp.0)],
            vec![format!("UPDATE audit_checkpoints SET root_hash = X'{cp_root}' WHERE tree_size = {}", cp.0)],
        ),
    ];
    for (what, tamper, restore) in cases {
        for sql in &tamper {
            a.execute(sqlx::AssertSqlSafe(sql.clone()))
                .await
                .expect(what);
        }
        for level in [0, 2, 4, 7] {
            assert!(
                fast(level, roots().await).await.is_none(),
                "{what}, chunk level {level}"
            );
        }
        for sql in &restore {
            a.execute(sqlx::AssertSqlSafe(sql.clone()))
                .await
                .expect(what);
        }
        assert!(fast(2, roots().await).await.is_some(), "{what} undone");
    }
    // The same details stored as other but equivalent JSON (spaces around the
    // colons) are the same event: canonicalized, it still verifies.
    a.execute(
        "UPDATE audit_events SET details = ' ' || replace(details, ':', ' : ') \
         WHERE id = (SELECT id FROM audit_events WHERE details LIKE '%u5@example.com%')",
    )
    .await
    .expect("rewrite details");
    let clean = fast(2, roots().await)
        .await
        .expect("equivalent details verify");
    assert_eq!(clean.root, slow.root);

    // Tables re-created without their key: one index missing and its neighbour
    // there twice, once holding the missing row's content. As many rows as
    // indexes, so a count would not find it; the direct reader refuses any
    // table whose declaration is not Ward's own.
    for (table, columns, key, scope) in [
        (
            "audit_tree",
            "level INTEGER, node_index INTEGER, hash BLOB",
            "node_index",
            "level = 0 AND ",
        ),
        (
            "audit_leaves",
            "leaf_index INTEGER, event_seq INTEGER, integrated_at INTEGER",
            "leaf_index",
            "",
        ),
    ] {
        for sql in [
            format!("CREATE TABLE loose ({columns})"),
            format!("INSERT INTO loose SELECT * FROM {table} ORDER BY {key}"),
            format!("DROP TABLE {table}"),
            format!("ALTER TABLE loose RENAME TO {table}"),
            format!("UPDATE {table} SET {key} = 6 WHERE {scope}{key} = 5"),
        ] {
            a.execute(sqlx::AssertSqlSafe(sql.clone()))
                .await
                .expect(&sql);
        }
        for level in [0, 2, 4, 7] {
            assert!(
                fast(level, roots().await).await.is_none(),
                "{table}: index 5 missing, 6 twice; chunk level {level}"
            );
        }
        // The moved row is the first of the two (rows were copied in order).
        let undo = format!(
            "UPDATE {table} SET {key} = 5 WHERE rowid = \
             (SELECT min(rowid) FROM {table} WHERE {scope}{key} = 6)"
        );
        a.execute(sqlx::AssertSqlSafe(undo)).await.expect("undo");
        // Even with every index back, the table is not the one Ward's
        // migrations created, so its pages are not read directly: the slow
        // path judges it (and reports the lost key).
        assert!(fast(2, roots().await).await.is_none(), "{table} re-created");
    }
    a.close().await.expect("close");
}

/// The parallel verifier hashes each event's columns as SQLite holds them,
/// encoding them again byte by byte; every kind of string (quotes, backslashes,
/// every control character, apostrophes, non-ASCII, U+2028), NULLs and large
/// integers must come out as the leaf Ward committed to, so the parallel pass
/// judges such a log clean. So must details whose keys Ward stored in UTF-8
/// order where the canonical order is UTF-16's: they are canonicalized. And so
/// must events larger than a page, read over their overflow pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parallel_verifier_reads_every_kind_of_event_back() {
    use ward_jobs::audit_log::{Sequencer, sign_checkpoint};
    let app = spawn_app_with(ward_store::Backend::Sqlite, |s| {
        s.audit_sequencer.interval = std::time::Duration::from_secs(3600);
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let store = &app.store;
    let controls: String = (0u8..0x20).map(char::from).collect();
    let nasty = [
        "plain".to_owned(),
        "q\"uote\\back'slash/".to_owned(),
        controls.clone(),
        "\u{7f}é€😀\u{2028}\u{2029}<&>".to_owned(),
        String::new(),
    ];
    let context = |text: &str| ward_core::RequestContext {
        ip: text.to_owned(),
        user_agent: format!("{text}{text}"),
        request_id: text.to_owned(),
    };
    for (n, text) in nasty.iter().enumerate() {
        let mut e = ward_core::AuditEvent::new(
            ward_core::EventId::from_random([n as u8 + 1; 16]),
            ward_core::Timestamp::from_millis(-5 + n as i64),
            (n % 2 == 0).then(|| ward_core::TenantId::from_random([7; 16])),
            ward_core::Actor::system(text),
            context(text),
            ward_core::audit::actions::USER_UPDATED,
        )
        .details(serde_json::json!({
            "text": text,
            "nested": {"list": [1, -2, null, true, false, text], "ü": {}},
            "big": 9_007_199_254_740_993u64,
        }));
        if n % 2 == 1 {
            e = e.target("rule", text);
        }
        store.record_audit(&e).await.expect("record");
    }
    // Keys whose UTF-16 order differs from their UTF-8 order.
    let e = ward_core::AuditEvent::new(
        ward_core::EventId::from_random([99; 16]),
        ward_core::Timestamp::from_millis(1),
        None,
        ward_core::Actor::system("t"),
        context("c"),
        ward_core::audit::actions::USER_UPDATED,
    )
    .details(serde_json::json!({"\u{fb33}": 1, "\u{1f600}": 2}));
    store.record_audit(&e).await.expect("record");
    // Events larger than a page, whose records go on over overflow pages.
    for (n, len) in [(0u8, 5_000usize), (1, 70_000), (2, 300_000)] {
        let e = ward_core::AuditEvent::new(
            ward_core::EventId::from_random([120 + n; 16]),
            ward_core::Timestamp::from_millis(3),
            None,
            ward_core::Actor::system("t"),
            context("large"),
            ward_core::audit::actions::USER_UPDATED,
        )
        .details(serde_json::json!({ "text": "é\\\"x".repeat(len / 5) }));
        store.record_audit(&e).await.expect("record");
    }
    Sequencer::new()
        .integrate_all(store, ward_core::Timestamp::from_millis(1), 100)
        .await
        .expect("integrate");
    let signer = ward_jobs::audit_log::checkpoint_signer(&app.master, &app.salt);
    sign_checkpoint(store, &signer, ward_core::Timestamp::from_millis(2))
        .await
        .expect("sign");
    let size = store.audit_tree_size().await.expect("size");
    let roots: Vec<(u64, [u8; 32])> = store
        .audit_checkpoints()
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| (c.tree_size, c.root))
        .collect();
    let path = store.sqlite_file().expect("file").to_path_buf();
    for level in [0, 2, 16] {
        let clean = ward_server::audit_verify_parallel::verify_sqlite_file(
            path.clone(),
            size,
            roots.clone(),
            level,
            &mut |_, _| {},
        )
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("chunk level {level}: not judged clean"));
        assert_eq!(clean.size, size);
    }
    let report =
        ward_server::audit_verify::verify_log_by_pages(store, &[signer.verifier()], &mut |_, _| {})
            .await
            .expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
