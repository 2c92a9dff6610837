//! The API contract check: Schemathesis (`schemathesis run --checks all`, every
//! phase, stateful included) against a real `ward serve` (the debug binary) on
//! SQLite and on PostgreSQL, with per-IP rate limits off. Any failure fails CI.
//! The deliberate exceptions are in `xtask/schemathesis.toml` and below, each
//! with its reason, and in docs/api.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::local_ward::LocalWard;
use crate::run_step;

/// The version `.ci/run` installs; another one may generate other cases.
pub(crate) const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Test cases per operation and phase: both backends together stay within
/// about five minutes on two cores.
const MAX_EXAMPLES: &str = "100";

const EMAIL: &str = "contract@acme.example";
const PASSWORD: &str = "contract passphrase 2026";

/// Operations left out of a run, with the reason. Selected by operation id.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "revoke_token",
        "`DELETE /api/v1/tokens/{id}`: the stateful phase finds the run's own token in \
         `GET /api/v1/tokens` and revokes it, which ends the run; revocation is covered by \
         crates/ward-server/tests/api/tokens.rs",
    ),
    (
        "logout",
        "`POST /api/v1/auth/logout` ends the session the session run signs in with; sign-out is \
         covered by crates/ward-server/tests/api/auth.rs",
    ),
];

/// The operations a browser session alone may call (their only security
/// requirement is the session cookie; `access::Access::SessionOnly`).
const SESSION_ONLY: &str = "/security/0/session_cookie == []";

pub(crate) fn run() -> Result<(), String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let version = Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(version) = version else {
        if ci {
            return Err("the API contract check needs schemathesis, which is missing".to_owned());
        }
        eprintln!(
            "==> API contract check skipped: schemathesis is not installed \
             (pip install schemathesis=={SCHEMATHESIS_VERSION})"
        );
        return Ok(());
    };
    if !version.ends_with(SCHEMATHESIS_VERSION) {
        eprintln!("==> note: {version}; the contract check is pinned to {SCHEMATHESIS_VERSION}");
    }
    run_step(
        "cargo build -p ward (for the API contract check)",
        crate::cargo().args(["build", "-p", "ward", "--locked"]),
    )?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = PathBuf::from(target).join("debug/ward");
    let started = Instant::now();
    for postgres in [false, true] {
        check_backend(&bin, postgres)?;
    }
    eprintln!(
        "==> API contract check passed on SQLite and PostgreSQL in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn check_backend(bin: &Path, postgres: bool) -> Result<(), String> {
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    let ward = LocalWard::new(bin.to_owned(), "contract", postgres, "")?;
    ward.bootstrap_admin(EMAIL, PASSWORD)?;
    let _server = ward.serve()?;
    // A token with the `sensitive` capability, minted from a fresh session, so
    // that the security-sensitive operations run to their end too.
    let cookie = ward
        .login(EMAIL, PASSWORD)?
        .1
        .ok_or("sign-in set no session cookie")?;
    let (status, resp) = ward.post_json(
        "/api/v1/tokens",
        Some(&cookie),
        r#"{"name":"schemathesis","sensitive":true}"#,
    )?;
    let token = resp
        .split_once(r#""secret":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(secret, _)| secret.to_owned())
        .filter(|_| status == 201)
        .ok_or_else(|| format!("minting the API token answered {status}"))?;
    let session = cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .ok_or("a session cookie without a value")?;

    // The session run first: none of its operations ends the session, while the
    // token run's stateful phase revokes sessions it finds (`DELETE
    // /api/v1/sessions/{id}`).
    let url = format!("http://127.0.0.1:{}/openapi.json", ward.port);
    let mut session_run = schemathesis(&url, &token, &session, &ward.dir);
    session_run.args(["--include-by", SESSION_ONLY]);
    run_step(
        &format!("schemathesis, session-only operations, on {backend}"),
        &mut session_run,
    )?;
    let mut token_run = schemathesis(&url, &token, &session, &ward.dir);
    token_run.args(["--exclude-by", SESSION_ONLY]);
    run_step(
        &format!("schemathesis, API token, on {backend}"),
        &mut token_run,
    )
}

/// `scratch`: where Schemathesis keeps its cache, not the working tree.
fn schemathesis(url: &str, token: &str, session: &str, scratch: &Path) -> Command {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("schemathesis");
    cmd.current_dir(scratch)
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .args([
            "run",
            url,
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            MAX_EXAMPLES,
            "--workers",
            "2",
            "--no-color",
            // Failures are reported by the run itself; no database of examples
            // carried from one CI run to the next.
            "--generation-database",
            "none",
        ])
        .env("SCHEMATHESIS_HOOKS", here.join("schemathesis_hooks.py"))
        .env("WARD_API_TOKEN", token)
        .env("WARD_SESSION", session);
    for (operation, _why) in EXCLUDED {
        cmd.args(["--exclude-operation-id", operation]);
    }
    cmd
}
