//! `cargo xtask bench`: starts a release `ward serve` on loopback and measures, in
//! one run, authenticated `GET /api/v1/me` against the `GET /healthz` baseline, and
//! password sign-in latency and peak memory under 200 concurrent logins. The load
//! generator is `wrk` (Debian package), installed if missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::local_ward::LocalWard;
use crate::{cargo, run_step};

const PASSWORD: &str = "benchmark passphrase 2026";
const EMAIL: &str = "bench@bench.example";

pub fn run(args: &[String]) -> Result<(), String> {
    let postgres = args.iter().any(|a| a == "--postgres");
    if args.iter().any(|a| a == "--crypto") {
        return run_step(
            "field encryption benchmark",
            cargo().args([
                "bench",
                "--locked",
                "-p",
                "ward-crypto",
                "--bench",
                "envelope",
            ]),
        );
    }
    if args.iter().any(|a| a == "--rules") {
        // One core, as the targets are stated: taskset when available.
        return run_step(
            "rules benchmark (one core)",
            Command::new("taskset")
                .args(["-c", "0"])
                .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                .args(["bench", "--locked", "-p", "ward-rules", "--bench", "rules"]),
        );
    }
    if args.iter().any(|a| a == "--audit") {
        // BENCH_BACKEND, BENCH_EVENTS, BENCH_WRITERS and BENCH_APPENDS pass through.
        return run_step(
            "audit log benchmark",
            cargo().args(["bench", "--locked", "-p", "ward-server", "--bench", "audit"]),
        );
    }
    ensure_wrk()?;
    run_step(
        "build release ward",
        cargo().args(["build", "--release", "--locked", "-p", "ward"]),
    )?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = PathBuf::from(target).join("release/ward");
    let ward = LocalWard::new(
        bin,
        "bench",
        postgres,
        "[login_throttle]\nfree_failures_per_source = 1000000\nmax_failures_per_ip = 1000000\n",
    )?;
    ward.bootstrap_admin(EMAIL, PASSWORD)?;
    let mut server = ward.serve()?;
    let port = ward.port;
    let base = format!("http://127.0.0.1:{port}");
    let pid = server.pid();

    let cookie = ward
        .login(EMAIL, PASSWORD)?
        .1
        .ok_or("login returned no cookie")?;
    // Alternate baseline and measurement, three rounds each, and keep the median
    // round: the machine is shared, so both see the same noise.
    let cookie_header = format!("Cookie: {cookie}");
    let (healthz_url, me_url) = (format!("{base}/healthz"), format!("{base}/api/v1/me"));
    let (mut healthz_runs, mut me_runs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        healthz_runs.push(wrk(&["-t2", "-c32", "-d5s", "--latency", &healthz_url])?);
        me_runs.push(wrk(&[
            "-t2",
            "-c32",
            "-d5s",
            "--latency",
            "-H",
            &cookie_header,
            &me_url,
        ])?);
    }
    let healthz = median(healthz_runs);
    let me = median(me_runs);

    // One login at a time: the cost of a sign-in itself.
    let mut single = Vec::new();
    for _ in 0..20 {
        single.push(ward.login(EMAIL, PASSWORD)?.0);
    }
    single.sort();
    let single_p50 = single[single.len() / 2];

    // 200 concurrent logins.
    let script = ward.dir.join("login.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{{\"email\":\"{EMAIL}\",\"password\":\"{PASSWORD}\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let rss_before = peak_rss_kib(pid)?;
    let storm = wrk(&[
        "-t2",
        "-c200",
        "-d20s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        path_str(&script)?,
        &format!("{base}/api/v1/auth/login"),
    ])?;
    let rss_peak = peak_rss_kib(pid)?;
    server.stop();

    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!("\n## Ward benchmarks ({backend}, release build, wrk over loopback, 2 threads)\n");
    println!("| measurement | req/s | p50 | p99 | relative to baseline |");
    println!("|---|---|---|---|---|");
    println!(
        "| baseline: `GET /healthz` (32 connections, median of 3 × 5 s) | {:.0} | {} | {} | 100% |",
        healthz.rps, healthz.p50, healthz.p99
    );
    println!(
        "| `GET /api/v1/me`, cookie session checked in the DB (32 connections, median of 3 × 5 s) | {:.0} | {} | {} | {:.0}% of /healthz req/s |",
        me.rps,
        me.p50,
        me.p99,
        100.0 * me.rps / healthz.rps
    );
    println!(
        "| `POST /api/v1/auth/login`, one client, Argon2id m=64 MiB t=3 p=4 | — | {:.0} ms | — | — |",
        single_p50.as_secs_f64() * 1000.0
    );
    println!(
        "| `POST /api/v1/auth/login`, 200 concurrent connections | {:.1} | {} | {} | — |",
        storm.rps, storm.p50, storm.p99
    );
    println!(
        "\nPeak RSS of `ward serve`: {:.0} MiB before the login storm, {:.0} MiB peak during it (password_hashing.concurrency = 4).",
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    if storm.non_2xx > 0 {
        println!("Login storm non-2xx responses: {}", storm.non_2xx);
    }
    Ok(())
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| "non-UTF-8 path".to_owned())
}

fn ensure_wrk() -> Result<(), String> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("==> installing wrk (Debian package)");
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    run_step(
        "apt-get install wrk",
        Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]),
    )
}

/// The run with the median request rate.
fn median(mut runs: Vec<WrkResult>) -> WrkResult {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
}

fn wrk(args: &[&str]) -> Result<WrkResult, String> {
    eprintln!("==> wrk {}", args.join(" "));
    let out = Command::new("wrk")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}"));
    }
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output: {text}"))?;
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        rps,
        p50: field("50%").unwrap_or_else(|| "?".into()),
        p99: field("99%").unwrap_or_else(|| "?".into()),
        non_2xx,
    })
}

/// Peak resident set size (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmHWM in /proc status".to_owned())
}
