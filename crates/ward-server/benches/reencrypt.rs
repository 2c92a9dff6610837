//! `cargo bench -p ward-server --bench reencrypt`: re-encryption throughput of
//! BENCH_ROWS encrypted fields (default 1,000,000) on BENCH_BACKEND (sqlite or
//! postgres, default sqlite), beside a plain UPDATE of the same rows with the same
//! batching in the same run.

use std::sync::Arc;
use std::time::Instant;

use ward_core::tenant::Tenant;
use ward_core::{Actor, AuditEvent, EventId, RequestContext, TenantId, Timestamp};
use ward_crypto::envelope::{self, FieldContext};
use ward_crypto::{
    InstallationSalt, MasterSecret, OsRandom, PasswordHashParams, PasswordHashing, SecureRandom,
};
use ward_jobs::key_maintenance::{LEASE_NAME, ReencryptSettings, run_pass};
use ward_server::{AppState, Keys, ServerSettings, SystemClock};
use ward_store::testing::TestDatabase;
use ward_store::{Backend, ConnectSettings, Store};

fn event(tenant: &TenantId, action: &'static str) -> Option<AuditEvent> {
    let b: [u8; 16] = OsRandom.bytes().ok()?;
    Some(AuditEvent::new(
        EventId::from_random(b),
        Timestamp::from_millis(1),
        Some(tenant.clone()),
        Actor::system("bench"),
        RequestContext::cli("bench".into()),
        action,
    ))
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let master = MasterSecret::generate(&OsRandom).expect("secret");
    let salt = InstallationSalt::generate(&OsRandom).expect("salt");
    let keys = Keys::derive(&master, &salt, 1, None);
    let hashing = PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
        .expect("hashing");
    let state = AppState::new(
        store.clone(),
        {
            let mut s = ServerSettings::default();
            // The load generator would trip the per-IP rate limit.
            s.rate_limit.requests_per_second = 0;
            s.rate_limit.login_per_minute = 0;
            s.key_maintenance.idle_interval = std::time::Duration::from_secs(86_400);
            s
        },
        keys,
        hashing,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
    );
    let tenant = Tenant {
        id: TenantId::from_random(OsRandom.bytes().expect("random")),
        name: "Bench".into(),
        slug: "bench".into(),
        created_at: Timestamp::from_millis(1),
    };
    let created = event(&tenant.id, "tenant.created").expect("event");
    store
        .create_tenant(&tenant, &created)
        .await
        .expect("tenant");
    let make = |a: &'static str| event(&tenant.id, a);
    let (v1, key) = state
        .keyring()
        .active(&store, &tenant.id, Timestamp::from_millis(1), &make)
        .await
        .expect("key");

    // Seed the rows in large transactions (setup, not measured).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    let seed_start = Instant::now();
    let mut i = 0;
    while i < rows {
        let mut tx = pool.begin().await.expect("tx");
        for j in i..(i + 10_000).min(rows) {
            let id = format!("{j:012}");
            let ctx = FieldContext {
                tenant_id: tenant.id.as_str(),
                entity: "connection",
                field: "credentials",
                row_id: &id,
            };
            let env = envelope::seal(
                &key,
                v1,
                ctx,
                br#"{"token":"bench-token-0123456789abcdef"}"#,
                &OsRandom,
            )
            .expect("seal");
            sqlx::query(
                "INSERT INTO connections (id, tenant_id, name, kind, base_url, credentials, credentials_key_version, \
                 credential_fields, credentials_changed_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'splunk', 'https://s.example', $4, $5, 'token', 1, 1, 1)",
            )
            .bind(id.clone())
            .bind(tenant.id.as_str().to_owned())
            .bind(id)
            .bind(env)
            .bind(i64::from(v1))
            .execute(&mut *tx)
            .await
            .expect("insert");
        }
        tx.commit().await.expect("commit");
        i += 10_000;
    }
    eprintln!(
        "seeded {rows} rows in {:.1} s",
        seed_start.elapsed().as_secs_f64()
    );

    // Baseline: a plain UPDATE of every row (same bytes), same batch size, one
    // transaction per batch.
    let batch = 1000usize;
    let base_start = Instant::now();
    let mut after = String::new();
    loop {
        let page = store
            .ciphertexts_page(
                &ward_store::ENCRYPTED_FIELDS[0],
                &tenant.id,
                &after,
                batch as u32,
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = last.row_id.clone();
        let mut tx = pool.begin().await.expect("tx");
        for c in &page {
            sqlx::query("UPDATE connections SET credentials = $1, credentials_key_version = $2 WHERE id = $3 AND tenant_id = $4")
                .bind(c.envelope.clone())
                .bind(i64::from(c.key_version))
                .bind(c.row_id.clone())
                .bind(tenant.id.as_str().to_owned())
                .execute(&mut *tx)
                .await
                .expect("update");
        }
        tx.commit().await.expect("commit");
    }
    let base_secs = base_start.elapsed().as_secs_f64();

    state
        .keyring()
        .rotate(&store, &tenant.id, Timestamp::from_millis(2), &make)
        .await
        .expect("rotate");
    let now = Timestamp::from_millis(i64::MAX / 4);
    assert!(
        store
            .acquire_lease(LEASE_NAME, "bench", now, now.plus_seconds(3600))
            .await
            .expect("lease")
    );
    let settings = ReencryptSettings {
        batch_size: batch as u32,
        max_rows_per_second: 0,
        ..Default::default()
    };
    let re_start = Instant::now();
    let report = run_pass(&state.key_maintenance(settings, "bench"), &tenant.id)
        .await
        .expect("pass");
    let re_secs = re_start.elapsed().as_secs_f64();
    assert_eq!(report.moved as usize, rows);
    pool.close().await;

    // API latency while re-encryption runs, against idle: an authenticated read of
    // a connection's metadata (session check + a read of the table being rewritten).
    let (idle, busy) = api_latency_during_reencryption(&state, &store, &tenant.id, &settings).await;

    let base_rate = rows as f64 / base_secs;
    let re_rate = rows as f64 / re_secs;
    println!(
        "\n## Re-encryption, {rows} fields, {} ({batch} rows per transaction)\n",
        backend.as_str()
    );
    println!("| operation | fields/s | total | relative to baseline |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: plain UPDATE of the same rows | {base_rate:.0} | {base_secs:.1} s | 100% |"
    );
    println!(
        "| re-encryption (read, unwrap, decrypt, encrypt, compare-and-swap) | {re_rate:.0} | {re_secs:.1} s | {:.0}% |",
        100.0 * re_rate / base_rate
    );
    println!(
        "\np99 of GET /api/v1/connections/{{id}} (wrk, 8 connections, 5 s): idle {idle}, during re-encryption {busy}"
    );
}

/// p99 of `GET /api/v1/connections/{id}` (wrk, 8 connections, 5 s) idle, then while
/// a second rotation's re-encryption pass runs.
async fn api_latency_during_reencryption(
    state: &AppState,
    store: &Store,
    tenant: &TenantId,
    settings: &ReencryptSettings,
) -> (String, String) {
    use ward_core::user::User;
    use ward_core::{Email, Role, UserId};
    let hashing = PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
        .expect("h");
    let phc = hashing
        .hash("benchmark passphrase", &OsRandom)
        .expect("hash");
    let user = User {
        id: UserId::from_random(OsRandom.bytes().expect("random")),
        tenant_id: tenant.clone(),
        email: Email::parse("bench@bench.example").expect("email"),
        display_name: "bench".into(),
        role: Role::Admin,
        disabled: false,
        created_at: Timestamp::from_millis(1),
        updated_at: Timestamp::from_millis(1),
    };
    store
        .create_user(
            &user,
            Some(phc.as_str()),
            &event(tenant, "user.created").expect("event"),
        )
        .await
        .expect("user");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_state = state.clone();
    tokio::spawn(async move {
        let _ = ward_server::serve(server_state, listener, std::future::pending()).await;
    });
    ward_server::install_crypto_provider();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "bench@bench.example", "password": "benchmark passphrase"}))
        .send()
        .await
        .expect("login");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let url = format!("http://{addr}/api/v1/connections/{:012}", 42);
    let wrk = |url: String, cookie: String| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("wrk")
                .args([
                    "-t1",
                    "-c8",
                    "-d5s",
                    "--latency",
                    "-H",
                    &format!("Cookie: {cookie}"),
                    &url,
                ])
                .output()
                .expect("wrk (Debian package) is required");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let p99 = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("99%"))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_owned();
            let non2xx = text.contains("Non-2xx");
            (p99, non2xx)
        })
    };
    let (idle, bad_idle) = wrk(url.clone(), cookie.clone()).await.expect("wrk");
    let make = |a: &'static str| event(tenant, a);
    state
        .keyring()
        .rotate(store, tenant, Timestamp::from_millis(3), &make)
        .await
        .expect("rotate");
    let pass_state = state.clone();
    let pass_tenant = tenant.clone();
    let pass_settings = *settings;
    let pass = tokio::spawn(async move {
        run_pass(
            &pass_state.key_maintenance(pass_settings, "bench"),
            &pass_tenant,
        )
        .await
    });
    let (busy, bad_busy) = wrk(url, cookie).await.expect("wrk");
    pass.await.expect("task").expect("pass");
    assert!(
        !bad_idle && !bad_busy,
        "API reads failed during the benchmark"
    );
    (idle, busy)
}
