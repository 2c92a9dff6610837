//! `cargo xtask ci`: formatting, clippy with warnings as errors, every test on
//! SQLite and PostgreSQL, the API contract check (Schemathesis against the
//! OpenAPI document, `contract.rs`) and the browser suite (Debian Chromium driven
//! by playwright-core) on both. PostgreSQL must be reachable (started if it is down).

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::{cargo, run_step};

pub fn run() -> Result<(), String> {
    ensure_postgres()?;
    run_step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run_step(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run_step(
        "cargo test (SQLite and PostgreSQL)",
        cargo().args(["test", "--workspace", "--locked"]),
    )?;
    crate::contract::run()?;
    browser_suite()?;
    eprintln!("==> all checks passed");
    Ok(())
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser suite in `e2e/`: a real Ward (the debug binary the tests built),
/// real Chromium, on SQLite and on PostgreSQL. Chromium and Node.js are required
/// under CI (`.ci/run` installs them); elsewhere the suite is skipped with a note
/// when they are missing.
fn browser_suite() -> Result<(), String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let node = Command::new("node").arg("--version").output().is_ok();
    if !node || !std::path::Path::new(CHROMIUM).exists() {
        let missing = if node { CHROMIUM } else { "node" };
        if ci {
            return Err(format!(
                "the browser suite needs {missing}, which is missing"
            ));
        }
        eprintln!(
            "==> browser suite skipped: {missing} is not installed (apt-get install chromium nodejs npm)"
        );
        return Ok(());
    }
    run_step(
        "cargo build -p ward (for the browser suite)",
        cargo().args(["build", "-p", "ward", "--locked"]),
    )?;
    let e2e = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e");
    // From the lock file every time: a few seconds, and never a stale tree.
    run_step(
        "npm ci (e2e)",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e),
    )?;
    for db in ["sqlite", "postgres"] {
        run_step(
            &format!("browser suite on {db}"),
            Command::new("node")
                .args(["--test", "--test-concurrency=1", "tests/"])
                .env("E2E_DB", db)
                .current_dir(&e2e),
        )?;
    }
    Ok(())
}

fn postgres_up() -> bool {
    let addr = "127.0.0.1:5432".parse().expect("static address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// The storage and API tests need PostgreSQL at 127.0.0.1:5432 (override with
/// TEST_POSTGRES_URL). Start the local cluster if it is down.
fn ensure_postgres() -> Result<(), String> {
    if std::env::var_os("TEST_POSTGRES_URL").is_some() || postgres_up() {
        return Ok(());
    }
    eprintln!("==> PostgreSQL is down; starting it");
    let versions = std::fs::read_dir("/etc/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for v in versions {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &v, "main", "start"])
            .status();
    }
    for _ in 0..30 {
        if postgres_up() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(
        "PostgreSQL is required at 127.0.0.1:5432 for the tests and could not be started"
            .to_owned(),
    )
}
