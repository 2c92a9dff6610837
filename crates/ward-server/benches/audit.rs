//! `cargo xtask bench --audit` (or `cargo bench -p ward-server --bench audit`):
//! the tamper-evident log on BENCH_BACKEND (sqlite or postgres, default sqlite).
//!
//! 1. Durable append from BENCH_WRITERS (16) concurrent writers: group-committed
//!    `record_audit`, beside a plain INSERT of the same rows, one transaction
//!    each, in the same run (SQLite WAL with synchronous=FULL; PostgreSQL default
//!    synchronous_commit=on).
//! 2. A log of BENCH_EVENTS events (default 1,000,000): bulk load, integration
//!    by the sequencer, then full verification (events/s).
//! 3. Inclusion and consistency proof latency at that size, server-side
//!    (the store reads and hashing a request does), over 1,000 random requests.

use std::time::{Duration, Instant};

use ward_audit::CheckpointSigner;
use ward_core::{Actor, AuditEvent, EventId, RequestContext, Timestamp};
use ward_crypto::{OsRandom, SecureRandom};
use ward_jobs::audit_log::{Sequencer, consistency_proof, inclusion_proof, sign_checkpoint};
use ward_store::testing::TestDatabase;
use ward_store::{Backend, ConnectSettings, Store};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A realistic event: a failed sign-in with an email and a reason.
fn event(n: u64) -> AuditEvent {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&OsRandom.bytes::<8>().unwrap_or_default());
    AuditEvent::new(
        EventId::from_random(id),
        Timestamp::from_millis(1_790_000_000_000 + n as i64),
        None,
        Actor::system("bench"),
        RequestContext {
            ip: "192.0.2.7".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
            request_id: format!("{n:032x}"),
        },
        ward_core::audit::actions::AUTH_LOGIN_FAILED,
    )
    .failed()
    .details(serde_json::json!({ "email": format!("user{}@bench.example", n % 1000), "reason": "wrong_password" }))
}

async fn concurrent_appends(
    store: &Store,
    writers: u64,
    per_writer: u64,
    grouped: bool,
    base: u64,
) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let e = event(base + w * per_writer + i);
                if grouped {
                    store.record_audit(&e).await.expect("append");
                } else {
                    store.record_audit_alone(&e).await.expect("insert");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    (writers * per_writer) as f64 / started.elapsed().as_secs_f64()
}

/// The baseline the verify target is stated against: plain SHA-256 of 256-byte
/// messages on one core, hashes per second, measured in this run.
fn raw_sha256_rate() -> f64 {
    use sha2::{Digest, Sha256};
    let mut message = [0x5au8; 256];
    let count = 2_000_000u64;
    let mut fold = 0u8;
    let started = Instant::now();
    for i in 0..count {
        message[..8].copy_from_slice(&i.to_le_bytes());
        fold ^= Sha256::digest(message)[0];
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    std::hint::black_box(fold);
    rate
}

/// The bench's checkpoint key: fixed, so checkpoints signed by earlier runs on
/// a kept log verify.
fn bench_signer() -> CheckpointSigner {
    CheckpointSigner::from_seed("ward/bench", [7u8; 32])
}

/// Seconds `verify_log` takes; the log must come out clean.
async fn timed_verify(store: &Store, signer: &CheckpointSigner) -> f64 {
    let started = Instant::now();
    let report = ward_server::audit_verify::verify_log(store, &[signer.verifier()], &mut |_, _| {})
        .await
        .expect("verify");
    let secs = started.elapsed().as_secs_f64();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    secs
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let writers = env_num("BENCH_WRITERS", 16);
    let per_writer = env_num("BENCH_APPENDS", 20_000) / writers;
    let events = env_num("BENCH_EVENTS", 1_000_000);
    // BENCH_SQLITE_FILE keeps the SQLite log between runs (building a
    // 10,000,000-event log takes minutes); events already there are not reloaded.
    let kept = std::env::var("BENCH_SQLITE_FILE").ok();
    let db = TestDatabase::new(backend).await;
    let url = match (&kept, backend) {
        (Some(path), Backend::Sqlite) => format!("sqlite://{path}"),
        _ => db.url.clone(),
    };
    let store = Store::connect(&url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    println!("backend: {}, {writers} writers", backend.as_str());
    if std::env::var("BENCH_VERIFY_ONLY").is_ok() {
        // For profiling verification alone on a kept log.
        let size = store.audit_tree_size().await.expect("size");
        let secs = timed_verify(&store, &bench_signer()).await;
        let sha = raw_sha256_rate();
        println!(
            "verify_log: {size} events in {secs:.1} s, {:.0} events/s; baseline: raw SHA-256 \
             of 256-byte messages on one core {sha:.0}/s (verify = {:.0}% of it)",
            size as f64 / secs,
            size as f64 / secs / sha * 100.0
        );
        return;
    }

    // 1. Durable append.
    let plain = concurrent_appends(&store, writers, per_writer, false, 0).await;
    let grouped = concurrent_appends(&store, writers, per_writer, true, 1 << 40).await;
    println!();
    println!("| durable append, {writers} writers | events/s | vs plain INSERT |");
    println!("|---|---|---|");
    println!("| plain INSERT, one transaction each (baseline) | {plain:.0} | 100% |");
    println!(
        "| `record_audit` (group commit) | {grouped:.0} | {:.0}% |",
        grouped / plain * 100.0
    );

    // 2. A large log: load, integrate, verify.
    let loaded = store.audit_tree_size().await.expect("size");
    let pending_before = store.audit_pending_count().await.expect("pending");
    let to_load = events.saturating_sub(pending_before + loaded);
    let started = Instant::now();
    let chunk = 5_000u64;
    let mut n = 0;
    while n < to_load {
        let batch: Vec<AuditEvent> = (n..(n + chunk).min(to_load))
            .map(|i| event((2 << 40) + i))
            .collect();
        let refs: Vec<&AuditEvent> = batch.iter().collect();
        store.append_audit_batch(&refs).await.expect("load");
        n += batch.len() as u64;
    }
    let load_rate = to_load as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let integrated = Sequencer::new()
        .integrate_all(&store, Timestamp::from_millis(1_800_000_000_000), 5_000)
        .await
        .expect("integrate");
    let integrate_secs = started.elapsed().as_secs_f64();
    let signer = bench_signer();
    sign_checkpoint(&store, &signer, Timestamp::from_millis(1_800_000_000_000))
        .await
        .expect("checkpoint");
    let size = store.audit_tree_size().await.expect("size");
    let verify_secs = timed_verify(&store, &signer).await;
    // The ceiling the database read sits under: recomputing leaves (canonical
    // encoding + SHA-256) and appending them to a frontier, on one core, for
    // events already in memory.
    let sample: Vec<_> = store
        .audit_leaf_records(0, size.min(20_000))
        .await
        .expect("sample")
        .into_iter()
        .filter_map(|r| r.event)
        .collect();
    let started = Instant::now();
    let mut f = ward_audit::Frontier::new();
    for _ in 0..5 {
        for e in &sample {
            f.append(ward_jobs::audit_log::event_leaf(e).expect("leaf"));
        }
    }
    let compute_rate = (5 * sample.len()) as f64 / started.elapsed().as_secs_f64();
    println!();
    println!("| log of {size} events | events/s | seconds |");
    println!("|---|---|---|");
    if to_load == 0 {
        println!(
            "| bulk load (baseline: plain multi-row INSERT) | — (kept log, nothing to load) | — |"
        );
    } else {
        println!(
            "| bulk load (baseline: plain multi-row INSERT) | {load_rate:.0} | {:.1} |",
            to_load as f64 / load_rate
        );
    }
    println!(
        "| sequencer integration (leaves + subtrees) | {:.0} | {integrate_secs:.1} |",
        integrated as f64 / integrate_secs
    );
    println!(
        "| `verify_log` (recompute every leaf, rebuild, compare) | {:.0} | {verify_secs:.1} |",
        size as f64 / verify_secs
    );
    println!(
        "| leaf recompute + frontier only, events in memory, one core (ceiling) | {compute_rate:.0} | — |"
    );
    println!(
        "| raw SHA-256 of 256-byte messages, one core (baseline) | {:.0} | — |",
        raw_sha256_rate()
    );

    // 3. Proof latency at this size.
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for i in 0..1_000u64 {
        let r = u64::from_be_bytes(OsRandom.bytes::<8>().unwrap_or_default());
        let index = r % size;
        let started = Instant::now();
        let p = inclusion_proof(&store, index, size)
            .await
            .expect("inclusion");
        inclusion.push(started.elapsed());
        assert!(!p.is_empty() || size == 1);
        let from = 1 + (r >> 7) % size;
        let started = Instant::now();
        consistency_proof(&store, from, size)
            .await
            .expect("consistency");
        consistency.push(started.elapsed());
        if i == 0 {
            // Warm-up request not counted.
            inclusion.clear();
            consistency.clear();
        }
    }
    let started = Instant::now();
    for _ in 0..1_000 {
        store.ping().await.expect("ping");
    }
    let ping = started.elapsed() / 1_000;
    inclusion.sort();
    consistency.sort();
    println!();
    println!("| proofs at {size} leaves, server-side | p50 | p99 |");
    println!("|---|---|---|");
    println!("| `SELECT 1` round trip (baseline) | {} | — |", ms(ping));
    println!(
        "| inclusion proof | {} | {} |",
        ms(percentile(&inclusion, 0.5)),
        ms(percentile(&inclusion, 0.99))
    );
    println!(
        "| consistency proof | {} | {} |",
        ms(percentile(&consistency, 0.5)),
        ms(percentile(&consistency, 0.99))
    );
    store.close().await;
}
