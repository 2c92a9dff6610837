//! SIEM connections: credentials encrypted under the company key, write-only,
//! bound to their row, field and company; key rotation keeps them readable.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::Role;
use ward_store::on_both_backends;

use crate::harness::{TestApp, captured_logs, expect_problem, spawn_app};

on_both_backends!(
    credentials_are_encrypted_and_write_only,
    moved_ciphertexts_do_not_decrypt,
    rotation_keeps_old_ciphertexts_readable,
    bad_connection_input_changes_nothing,
);

const SECRET: &str = "hec-token-6f1d2c9a-do-not-leak";

async fn raw_credentials(app: &TestApp, id: &str) -> Vec<u8> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url())
        .await
        .expect("raw pool");
    let row: (Vec<u8>,) = sqlx::query_as("SELECT credentials FROM connections WHERE id = $1")
        .bind(id.to_owned())
        .fetch_one(&pool)
        .await
        .expect("row");
    pool.close().await;
    row.0
}

async fn create(app: &TestApp, auth: &crate::harness::Auth, name: &str, token: &str) -> Value {
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/connections",
            auth,
            json!({
                "name": name, "kind": "splunk", "base_url": format!("http://{}", app.addr),
                "credentials": {"token": token}
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("json")
}

async fn credentials_are_encrypted_and_write_only(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let viewer = app.member(&t, "viewer@acme.example", Role::Viewer).await;
    let created = create(&app, &admin.auth, "prod splunk", SECRET).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["credential_fields"], json!(["token"]));
    // Only an envelope in the database: format 1, algorithm 1, key version 1.
    let raw = raw_credentials(&app, &id).await;
    assert_eq!(&raw[..6], &[1, 1, 0, 0, 0, 1]);
    assert!(!String::from_utf8_lossy(&raw).contains(SECRET));
    // Viewers see metadata; nobody sees the secret.
    for auth in [&admin.auth, &viewer.auth] {
        let list = app
            .get("/api/v1/connections", auth)
            .await
            .text()
            .await
            .expect("text");
        assert!(list.contains("prod splunk") && !list.contains(SECRET));
        let one = app
            .get(&format!("/api/v1/connections/{id}"), auth)
            .await
            .text()
            .await
            .expect("text");
        assert!(!one.contains(SECRET));
    }
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            &viewer.auth,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // The test decrypts and audits the use; the server itself is reachable.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{id}/test"),
            &admin.auth,
        )
        .send()
        .await
        .expect("send");
    let result: Value = r.json().await.expect("json");
    assert_eq!(result["reachable"], true, "{result}");
    let actions = app.audit_actions(&t).await;
    for a in [
        "key.created",
        "connection.created",
        "connection.credentials_used",
    ] {
        assert!(actions.iter().any(|(x, _)| x == a), "{a} in {actions:?}");
    }
    // Replace credentials.
    let r = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/connections/{id}"),
            &admin.auth,
            json!({"credentials": {"token": "second-token-value"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(raw_credentials(&app, &id).await, raw, "new ciphertext");
    let everything = app
        .store
        .list_audit(&ward_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(
        everything
            .iter()
            .all(|e| !e.details.to_string().contains(SECRET))
    );
    let logs = String::from_utf8_lossy(&captured_logs().lock().expect("logs")).to_string();
    assert!(!logs.contains(SECRET) && !logs.contains("second-token-value"));
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/connections/{id}"),
            &admin.auth,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn moved_ciphertexts_do_not_decrypt(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("bravo").await;
    let a_admin = app.member(&a, "admin@alpha.example", Role::Admin).await;
    let b_admin = app.member(&b, "admin@bravo.example", Role::Admin).await;
    let a1 = create(&app, &a_admin.auth, "one", "token-one").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a2 = create(&app, &a_admin.auth, "two", "token-two").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b1 = create(&app, &b_admin.auth, "one", "token-bee").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url())
        .await
        .expect("raw pool");
    let copy = |from: &str, to: &str| {
        sqlx::query("UPDATE connections SET credentials = (SELECT credentials FROM connections WHERE id = $1) WHERE id = $2")
            .bind(from.to_owned())
            .bind(to.to_owned())
    };
    // Another row of the same company.
    copy(&a1, &a2).execute(&pool).await.expect("copy");
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{a2}/test"),
            &a_admin.auth,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::INTERNAL_SERVER_ERROR, "decryption_failed").await;
    // Another company (with its own key, same version number).
    copy(&a1, &b1).execute(&pool).await.expect("copy");
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{b1}/test"),
            &b_admin.auth,
        )
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::INTERNAL_SERVER_ERROR, "decryption_failed").await;
    // A wrapped tenant key copied to another company does not unwrap there.
    sqlx::query("UPDATE tenant_keys SET wrapped_key = (SELECT wrapped_key FROM tenant_keys WHERE tenant_id = $1) WHERE tenant_id = $2")
        .bind(a.to_string())
        .bind(b.to_string())
        .execute(&pool)
        .await
        .expect("copy key");
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{b1}/test"),
            &b_admin.auth,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The untouched row still decrypts.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/connections/{a1}/test"),
            &a_admin.auth,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    pool.close().await;
}

async fn rotation_keeps_old_ciphertexts_readable(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let viewer = app.member(&t, "viewer@acme.example", Role::Viewer).await;
    let old = create(&app, &admin.auth, "old", "token-old").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = app
        .req(Method::POST, "/api/v1/keys/rotate", &viewer.auth)
        .send()
        .await
        .expect("send");
    expect_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .req(Method::POST, "/api/v1/keys/rotate", &admin.auth)
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["version"], 2);
    let new = create(&app, &admin.auth, "new", "token-new").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        &raw_credentials(&app, &new).await[2..6],
        &[0, 0, 0, 2],
        "new writes use the active version"
    );
    assert_eq!(&raw_credentials(&app, &old).await[2..6], &[0, 0, 0, 1]);
    let status: Value = app
        .get("/api/v1/keys/status", &viewer.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(status["active_version"], 2);
    assert_eq!(status["versions"][1]["state"], "decrypt_only");
    assert_eq!(status["fields"][0]["remaining"], 1, "{status}");
    for id in [&old, &new] {
        let r = app
            .req(
                Method::POST,
                &format!("/api/v1/connections/{id}/test"),
                &admin.auth,
            )
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "reads use the version in the envelope"
        );
    }
    assert!(
        app.audit_actions(&t)
            .await
            .iter()
            .any(|(a, _)| a == "key.rotated")
    );
}

async fn bad_connection_input_changes_nothing(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("acme").await;
    let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
    let before = app.audit_count().await;
    let cases = [
        (
            json!({"name": "x", "kind": "qradar", "base_url": "https://q", "credentials": {"token": "t"}}),
            "invalid_field",
        ),
        (
            json!({"name": "x", "kind": "splunk", "base_url": "ftp://q", "credentials": {"token": "t"}}),
            "invalid_field",
        ),
        (
            json!({"name": "x", "kind": "splunk", "base_url": "https://u:p@q", "credentials": {"token": "t"}}),
            "invalid_field",
        ),
        (
            json!({"name": "x", "kind": "splunk", "base_url": "https://q", "credentials": {"username": "u", "password": "p"}}),
            "invalid_field",
        ),
        (
            json!({"name": "x", "kind": "sentinel", "base_url": "https://q", "credentials": {"client_id": "i"}}),
            "invalid_field",
        ),
        (
            json!({"name": "x", "kind": "splunk", "base_url": "https://q", "credentials": {"apikey": "t"}}),
            "invalid_body",
        ),
        (
            json!({"name": "", "kind": "splunk", "base_url": "https://q", "credentials": {"token": "t"}}),
            "invalid_field",
        ),
    ];
    for (body, code) in cases {
        let r = app
            .send_json(
                Method::POST,
                "/api/v1/connections",
                &admin.auth,
                body.clone(),
            )
            .await;
        let p = expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert!(
            !p.to_string().contains("\"t\""),
            "no credential echoed: {p}"
        );
    }
    create(&app, &admin.auth, "dup", "t1").await;
    let r = app
        .send_json(Method::POST, "/api/v1/connections", &admin.auth,
            json!({"name": "dup", "kind": "splunk", "base_url": "https://q", "credentials": {"token": "t2"}}))
        .await;
    expect_problem(r, StatusCode::CONFLICT, "name_taken").await;
    let list: Value = app
        .get("/api/v1/connections", &admin.auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["connections"].as_array().map(Vec::len), Some(1));
    // Only the one successful create (and its key creation) was audited.
    assert_eq!(app.audit_count().await, before + 2);
}

mod maintenance {
    use reqwest::{Method, StatusCode};
    use serde_json::Value;
    use ward_core::Role;
    use ward_jobs::key_maintenance::{LEASE_NAME, ReencryptSettings, run_pass};
    use ward_store::on_both_backends;

    use super::{create, raw_credentials};
    use crate::harness::{expect_problem, spawn_app};

    on_both_backends!(
        reencryption_moves_everything_and_destroys_the_old_version,
        one_worker_holds_the_lease,
        scheduled_rotation
    );

    async fn reencryption_moves_everything_and_destroys_the_old_version(
        backend: ward_store::Backend,
    ) {
        let app = spawn_app(backend).await;
        let t = app.tenant("acme").await;
        let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
        let mut ids = Vec::new();
        for i in 0..25 {
            ids.push(
                create(&app, &admin.auth, &format!("c{i}"), &format!("token-{i}")).await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
        let old_bytes = raw_credentials(&app, &ids[0]).await;
        let r = app
            .req(Method::POST, "/api/v1/keys/rotate", &admin.auth)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        // A live write during re-encryption: already under v2, must not be overwritten.
        let batch = app
            .store
            .stale_ciphertexts(&ward_store::ENCRYPTED_FIELDS[0], &t, 2, "", 100)
            .await
            .expect("stale");
        assert_eq!(batch.len(), 25);
        let r = app
            .send_json(
                Method::PATCH,
                &format!("/api/v1/connections/{}", ids[1]),
                &admin.auth,
                serde_json::json!({"credentials": {"token": "written-meanwhile"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let live = batch.iter().find(|c| c.row_id == ids[1]).expect("row");
        let swapped = app
            .store
            .swap_ciphertext(
                &ward_store::ENCRYPTED_FIELDS[0],
                &t,
                &live.row_id,
                &live.envelope,
                &live.envelope,
                1,
            )
            .await
            .expect("cas");
        assert!(
            !swapped,
            "compare-and-swap refuses a ciphertext changed meanwhile"
        );

        let settings = ReencryptSettings {
            batch_size: 7,
            max_rows_per_second: 0,
            ..Default::default()
        };
        // The server's own worker took the lease at start; let it expire.
        app.clock.advance_secs(31);
        let now = app.state.now();
        assert!(
            app.store
                .acquire_lease(LEASE_NAME, "test", now, now.plus_seconds(60))
                .await
                .expect("lease")
        );
        let report = run_pass(&app.state.key_maintenance(settings, "test"), &t)
            .await
            .expect("pass");
        assert_eq!(report.moved, 24, "{report:?}");
        assert_eq!(report.destroyed, 1);
        let status: Value = app
            .get("/api/v1/keys/status", &admin.auth)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(status["fields"][0]["remaining"], 0, "{status}");
        assert_eq!(status["versions"][1]["state"], "destroyed");
        for id in &ids {
            assert_eq!(&raw_credentials(&app, id).await[2..6], &[0, 0, 0, 2]);
            let r = app
                .req(
                    Method::POST,
                    &format!("/api/v1/connections/{id}/test"),
                    &admin.auth,
                )
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), StatusCode::OK);
        }
        let actions = app.audit_actions(&t).await;
        for a in [
            "reencryption.started",
            "reencryption.finished",
            "key.destroyed",
        ] {
            assert!(actions.iter().any(|(x, _)| x == a), "{a}");
        }
        // A ciphertext of the destroyed version can never be read again: clear error
        // naming the version.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&app.db_url()).await.expect("pool");
        sqlx::query("UPDATE connections SET credentials = $1 WHERE id = $2")
            .bind(old_bytes)
            .bind(ids[0].clone())
            .execute(&pool)
            .await
            .expect("restore old");
        pool.close().await;
        let r = app
            .req(
                Method::POST,
                &format!("/api/v1/connections/{}/test", ids[0]),
                &admin.auth,
            )
            .send()
            .await
            .expect("send");
        let p = expect_problem(r, StatusCode::CONFLICT, "key_destroyed").await;
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.contains("version 1")),
            "{p}"
        );
        // A second pass has nothing to do.
        let again = run_pass(&app.state.key_maintenance(settings, "test"), &t)
            .await
            .expect("pass");
        assert_eq!((again.moved, again.destroyed), (0, 0));
    }

    async fn one_worker_holds_the_lease(backend: ward_store::Backend) {
        let app = spawn_app(backend).await;
        let t0 = ward_core::Timestamp::from_millis(1_000_000);
        let later = |s: i64| t0.plus_seconds(s);
        assert!(
            app.store
                .acquire_lease("job", "a", t0, later(30))
                .await
                .expect("a")
        );
        assert!(
            !app.store
                .acquire_lease("job", "b", later(10), later(40))
                .await
                .expect("b"),
            "held by a"
        );
        assert!(
            app.store
                .acquire_lease("job", "a", later(20), later(50))
                .await
                .expect("renew"),
            "a renews"
        );
        assert!(
            !app.store
                .acquire_lease("job", "b", later(49), later(79))
                .await
                .expect("b")
        );
        assert!(
            app.store
                .acquire_lease("job", "b", later(51), later(81))
                .await
                .expect("b"),
            "expired: b takes over"
        );
        assert!(
            !app.store
                .acquire_lease("job", "a", later(60), later(90))
                .await
                .expect("a")
        );
    }

    async fn scheduled_rotation(backend: ward_store::Backend) {
        let app = spawn_app(backend).await;
        let t = app.tenant("acme").await;
        let admin = app.member(&t, "admin@acme.example", Role::Admin).await;
        create(&app, &admin.auth, "c", "token").await;
        let r = app
            .send_json(
                Method::PUT,
                "/api/v1/keys/policy",
                &admin.auth,
                serde_json::json!({"rotation_interval_days": 0}),
            )
            .await;
        expect_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").await;
        let r = app
            .send_json(
                Method::PUT,
                "/api/v1/keys/policy",
                &admin.auth,
                serde_json::json!({"rotation_interval_days": 7}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let settings = ReencryptSettings {
            max_rows_per_second: 0,
            ..Default::default()
        };
        // The server's own worker took the lease at start; let it expire.
        app.clock.advance_secs(31);
        let now = app.state.now();
        assert!(
            app.store
                .acquire_lease(LEASE_NAME, "test", now, now.plus_seconds(3600 * 24 * 30))
                .await
                .expect("lease")
        );
        let r = run_pass(&app.state.key_maintenance(settings, "test"), &t)
            .await
            .expect("pass");
        assert!(!r.rotated, "not due yet");
        app.clock.advance_secs(7 * 86_400);
        let r = run_pass(&app.state.key_maintenance(settings, "test"), &t)
            .await
            .expect("pass");
        assert!(r.rotated && r.moved == 1 && r.destroyed == 1, "{r:?}");
        // Seven days later the session has long ended: sign in again.
        let auth = crate::harness::Auth::Cookie(
            app.login("admin@acme.example", crate::harness::PASSWORD)
                .await,
        );
        let status: Value = app
            .get("/api/v1/keys/status", &auth)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(status["active_version"], 2);
    }
}
