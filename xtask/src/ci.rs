//! `cargo xtask ci`: formatting, clippy with warnings as errors, and every test on
//! SQLite and PostgreSQL. PostgreSQL must be reachable (started if it is down).

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
    eprintln!("==> all checks passed");
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
