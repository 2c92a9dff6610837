//! The tamper-evident audit log from the command line: verification names the
//! index an attacker with write access to the database touched, exports verify
//! offline, and the sequencer survives kill -9.

use sqlx::{AnyConnection, Connection, Executor, Row};

use super::*;

impl Env {
    pub(crate) fn db_url(&self) -> String {
        match &self.db {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("ward.db").display()),
        }
    }
}

/// A direct connection with the append-only protection off, as an attacker with
/// database access has it.
struct Attacker {
    conn: AnyConnection,
    backend: Backend,
    triggers: Vec<String>,
}

impl Attacker {
    async fn connect(env: &Env, backend: Backend) -> Self {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&env.db_url())
            .await
            .expect("connect");
        let mut triggers = Vec::new();
        match backend {
            Backend::Sqlite => {
                conn.execute("PRAGMA foreign_keys = OFF")
                    .await
                    .expect("fk off");
                let rows = sqlx::query(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'",
                )
                .fetch_all(&mut conn)
                .await
                .expect("triggers");
                for r in rows {
                    let name: String = r.get("name");
                    triggers.push(r.get("sql"));
                    conn.execute(sqlx::AssertSqlSafe(format!("DROP TRIGGER {name}")))
                        .await
                        .expect("drop trigger");
                }
            }
            // Replica mode skips triggers and foreign keys for this session only.
            Backend::Postgres => {
                conn.execute("SET session_replication_role = replica")
                    .await
                    .expect("replica");
            }
        }
        Self {
            conn,
            backend,
            triggers,
        }
    }

    async fn exec(&mut self, sql: &str) {
        self.conn
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn scalar(&mut self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Puts the triggers back, covering the tracks (so verification must find the
    /// tampering from the data, not from the missing protection).
    async fn cover_tracks(mut self) {
        for sql in std::mem::take(&mut self.triggers) {
            self.exec(&sql).await;
        }
        self.conn.close().await.expect("close");
    }

    fn insert_prefix(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "INSERT INTO audit_events",
            Backend::Postgres => "INSERT INTO audit_events OVERRIDING SYSTEM VALUE",
        }
    }
}

fn verify_fails_at(env: &Env, expected: &str) {
    let out = env.run(&["audit", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify passed; expected {expected}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
}

fn verify_passes(env: &Env) -> String {
    ok(&env.run(&["audit", "verify"]))
}

/// A log of a few dozen events, integrated and checkpointed.
fn populated(env: &Env) {
    acme_with_admin(env);
    for i in 0..12 {
        ok(&env.run(&["tenant", "create", "--name", &format!("Company {i}")]));
    }
    ok(&env.run(&["audit", "checkpoint"]));
}

async fn tampering_is_found_at_the_right_index(backend: Backend) {
    let env = Env::new(backend).await;
    populated(&env);
    let report = verify_passes(&env);
    assert!(
        report.contains("verified 15 events, tree size 15"),
        "{report}"
    );

    let seq_of = |i: u64| format!("(SELECT event_seq FROM audit_leaves WHERE leaf_index = {i})");

    // One byte of one event.
    let mut a = Attacker::connect(&env, backend).await;
    a.exec(&format!(
        "UPDATE audit_events SET actor_label = 'clj' WHERE seq = {}",
        seq_of(5)
    ))
    .await;
    a.cover_tracks().await;
    verify_fails_at(&env, "index 5: modified");
    let mut a = Attacker::connect(&env, backend).await;
    a.exec(&format!(
        "UPDATE audit_events SET actor_label = 'cli' WHERE seq = {}",
        seq_of(5)
    ))
    .await;
    a.cover_tracks().await;
    verify_passes(&env);

    // An event deleted (kept aside in a table of the attacker's, to put it back).
    let mut a = Attacker::connect(&env, backend).await;
    let seq = a.scalar(&format!("SELECT {}", seq_of(7))).await;
    a.exec(&format!(
        "CREATE TABLE kept AS SELECT * FROM audit_events WHERE seq = {seq}"
    ))
    .await;
    a.exec(&format!("DELETE FROM audit_events WHERE seq = {seq}"))
        .await;
    a.cover_tracks().await;
    verify_fails_at(&env, "index 7: missing");
    let mut a = Attacker::connect(&env, backend).await;
    let restore = format!("{} SELECT * FROM kept", a.insert_prefix());
    a.exec(&restore).await;
    a.exec("DROP TABLE kept").await;
    a.cover_tracks().await;
    verify_passes(&env);

    // Two events swapped in the log's order.
    let mut a = Attacker::connect(&env, backend).await;
    let (s3, s9) = (
        a.scalar(&format!("SELECT {}", seq_of(3))).await,
        a.scalar(&format!("SELECT {}", seq_of(9))).await,
    );
    a.exec("UPDATE audit_leaves SET event_seq = -1 WHERE leaf_index = 3")
        .await;
    a.exec(&format!(
        "UPDATE audit_leaves SET event_seq = {s3} WHERE leaf_index = 9"
    ))
    .await;
    a.exec(&format!(
        "UPDATE audit_leaves SET event_seq = {s9} WHERE leaf_index = 3"
    ))
    .await;
    a.cover_tracks().await;
    verify_fails_at(
        &env,
        "index 3: reordered (it holds the event committed at index 9)",
    );
    let mut a = Attacker::connect(&env, backend).await;
    a.exec("UPDATE audit_leaves SET event_seq = -1 WHERE leaf_index = 3")
        .await;
    a.exec(&format!(
        "UPDATE audit_leaves SET event_seq = {s9} WHERE leaf_index = 9"
    ))
    .await;
    a.exec(&format!(
        "UPDATE audit_leaves SET event_seq = {s3} WHERE leaf_index = 3"
    ))
    .await;
    a.cover_tracks().await;
    verify_passes(&env);

    // A forged event slipped in before existing ones, backdated by an hour.
    let mut a = Attacker::connect(&env, backend).await;
    let first = a.scalar("SELECT MIN(occurred_at) FROM audit_events").await;
    let overriding = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "OVERRIDING SYSTEM VALUE",
    };
    let insert = format!(
        "INSERT INTO audit_events (seq, id, occurred_at, tenant_id, actor_kind, actor_id, actor_label, \
         ip, user_agent, request_id, action, target_kind, target_id, outcome, details) {overriding} \
         VALUES (0, 'forged', {}, NULL, 'system', NULL, 'cli', 'local', 'ward-cli', 'x', \
         'user.created', NULL, NULL, 'success', '{{}}')",
        first - 3_600_000
    );
    a.exec(&insert).await;
    a.cover_tracks().await;
    verify_fails_at(
        &env,
        "index 0: inserted (event forged is in no leaf of the tree)",
    );
    let mut a = Attacker::connect(&env, backend).await;
    a.exec("DELETE FROM audit_events WHERE id = 'forged'").await;
    a.cover_tracks().await;
    verify_passes(&env);

    // A checkpoint's signature replaced.
    let mut a = Attacker::connect(&env, backend).await;
    let note: String =
        sqlx::query_scalar("SELECT note FROM audit_checkpoints WHERE tree_size = 15")
            .fetch_one(&mut a.conn)
            .await
            .expect("note");
    let sig_at = note.rfind(' ').expect("signature") + 10;
    let mut forged = note.clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("utf-8");
    sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = 15")
        .bind(forged)
        .execute(&mut a.conn)
        .await
        .expect("forge");
    a.cover_tracks().await;
    verify_fails_at(&env, "checkpoint at tree size 15: bad signature");
    let mut a = Attacker::connect(&env, backend).await;
    sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = 15")
        .bind(note)
        .execute(&mut a.conn)
        .await
        .expect("restore");
    a.cover_tracks().await;
    verify_passes(&env);

    // A trigger re-created as a no-op under its own name (SQLite), or the shared
    // trigger function replaced by one that lets changes through (PostgreSQL).
    let mut a = Attacker::connect(&env, backend).await;
    match backend {
        Backend::Sqlite => {
            let original = a
                .triggers
                .iter()
                .position(|sql| sql.contains("audit_tree_no_update "))
                .expect("trigger");
            let original = a.triggers.remove(original);
            a.exec("CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree BEGIN SELECT 1; END")
                .await;
            a.cover_tracks().await;
            verify_fails_at(
                &env,
                "schema: trigger audit_tree_no_update is missing, disabled or altered",
            );
            let mut a = Attacker::connect(&env, backend).await;
            a.triggers
                .retain(|sql| !sql.contains("audit_tree_no_update "));
            a.triggers.push(original);
            a.cover_tracks().await;
        }
        Backend::Postgres => {
            a.exec(
                "CREATE OR REPLACE FUNCTION ward_audit_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            )
            .await;
            a.cover_tracks().await;
            verify_fails_at(
                &env,
                "schema: trigger audit_tree_no_update_delete is missing, disabled or altered",
            );
            let mut a = Attacker::connect(&env, backend).await;
            a.exec(
                "CREATE OR REPLACE FUNCTION ward_audit_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
            )
            .await;
            a.cover_tracks().await;
        }
    }
    verify_passes(&env);

    // A table re-created without its key (so it could hold two rows for one
    // index), the triggers put back on it.
    let mut a = Attacker::connect(&env, backend).await;
    match backend {
        Backend::Sqlite => {
            a.exec("CREATE TABLE loose (level INTEGER NOT NULL, node_index INTEGER NOT NULL, hash BLOB NOT NULL)")
                .await;
            a.exec("INSERT INTO loose SELECT level, node_index, hash FROM audit_tree")
                .await;
            a.exec("DROP TABLE audit_tree").await;
            a.exec("ALTER TABLE loose RENAME TO audit_tree").await;
        }
        Backend::Postgres => {
            a.exec("ALTER TABLE audit_tree DROP CONSTRAINT audit_tree_pkey")
                .await;
        }
    }
    a.cover_tracks().await;
    verify_fails_at(
        &env,
        "schema: table audit_tree has lost its primary key (level, node_index)",
    );
    let mut a = Attacker::connect(&env, backend).await;
    match backend {
        Backend::Sqlite => {
            a.exec(
                "CREATE TABLE keyed (level INTEGER NOT NULL, node_index INTEGER NOT NULL, \
                    hash BLOB NOT NULL, PRIMARY KEY (level, node_index)) WITHOUT ROWID",
            )
            .await;
            a.exec("INSERT INTO keyed SELECT level, node_index, hash FROM audit_tree")
                .await;
            a.exec("DROP TABLE audit_tree").await;
            a.exec("ALTER TABLE keyed RENAME TO audit_tree").await;
        }
        Backend::Postgres => {
            a.exec("ALTER TABLE audit_tree ADD PRIMARY KEY (level, node_index)")
                .await;
        }
    }
    a.cover_tracks().await;
    verify_passes(&env);

    // The protection itself switched off and left off.
    let mut a = Attacker::connect(&env, backend).await;
    match backend {
        Backend::Sqlite => {
            a.triggers.clear();
            a.conn.close().await.expect("close");
            verify_fails_at(&env, "schema: trigger audit_events_no_update is missing");
        }
        Backend::Postgres => {
            a.exec("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
                .await;
            a.cover_tracks().await;
            verify_fails_at(
                &env,
                "schema: trigger audit_events_no_update_delete is missing, disabled or altered",
            );
        }
    }

    // The log truncated: the last two events, their leaves and subtrees gone.
    let env2 = Env::new(backend).await;
    populated(&env2);
    let mut a = Attacker::connect(&env2, backend).await;
    a.exec("DELETE FROM audit_events WHERE seq IN (SELECT event_seq FROM audit_leaves WHERE leaf_index >= 13)")
        .await;
    a.exec("DELETE FROM audit_leaves WHERE leaf_index >= 13")
        .await;
    a.exec("DELETE FROM audit_tree WHERE (node_index + 1) * (CAST(1 AS BIGINT) << CAST(level AS INTEGER)) > 13").await;
    a.cover_tracks().await;
    verify_fails_at(
        &env2,
        "index 13: truncated (a signed checkpoint covers 15 events",
    );
}

/// `kill -9` of the server while the sequencer integrates a stream of events, at
/// varied points, ten times: after each restart the tree picks up where the
/// committed state left it, and at the end every event is a leaf and verifies.
async fn kill_9_during_integration(backend: Backend) {
    let env = Env::new(backend).await;
    acme_with_admin(&env);
    let http = http_client();
    for round in 0..10u64 {
        // The killed server's lease would lapse by itself after its TTL.
        super::expire_leases(&env).await;
        let (server, base) = start_server(
            &env,
            &[
                ("WARD_AUDIT__SEQUENCER_INTERVAL_MS", "10"),
                ("WARD_RATE_LIMIT__LOGIN_PER_MINUTE", "0"),
                ("WARD_RATE_LIMIT__REQUESTS_PER_SECOND", "0"),
                // After one failure every attempt is throttled: cheap, and audited.
                ("WARD_LOGIN_THROTTLE__MAX_FAILURES_PER_ACCOUNT", "1"),
            ],
        );
        let writer = {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                for _ in 0..400 {
                    let r = http
                        .post(format!("{base}/api/v1/auth/login"))
                        .json(&json!({"email": "admin@acme.example", "password": "wrong password"}))
                        .send()
                        .await;
                    if r.is_err() {
                        break;
                    }
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(
            150 + super::delay_ms(round, 400),
        ))
        .await;
        drop(server); // SIGKILL
        let _ = writer.await;
    }
    // One more start integrates whatever was committed but not yet a leaf (once
    // the last killed server's lease has lapsed: at most its 3-second TTL).
    let (server, _) = start_server(&env, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let store = ward_store::Store::connect(&env.db_url(), Default::default())
            .await
            .expect("connect");
        let pending = store.audit_pending_count().await.expect("pending");
        store.close().await;
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} events never integrated"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    server.stop();
    let report = verify_passes(&env);
    assert!(report.contains("0 events awaiting integration"), "{report}");
    let n: u64 = report
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        n > 50,
        "only {n} events: the server was killed before it did anything"
    );
}

ward_store::on_both_backends!(
    tampering_is_found_at_the_right_index,
    kill_9_during_integration
);
