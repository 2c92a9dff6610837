//! The `ward` binary as an operator uses it: first start, the master secret check,
//! configuration errors, tenant and user management, and `serve` end to end — on
//! SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use ward_store::Backend;
use ward_store::testing::{TempDir, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_ward");

#[path = "cli/audit_log.rs"]
mod audit_log;
#[path = "cli/domains.rs"]
mod domains;
#[path = "cli/forwarding.rs"]
mod forwarding;
#[path = "cli/rules.rs"]
mod rules;

struct Env {
    dir: TempDir,
    db: Option<TestDatabase>,
}

impl Env {
    async fn new(backend: Backend) -> Self {
        let label = format!("cli-{}-{}", std::process::id(), rand_suffix());
        let dir = TempDir::new(&label);
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::new(Backend::Postgres).await),
        };
        Self { dir, db }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path.join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .current_dir(&self.dir.path)
            .arg("--data-dir")
            .arg(self.data_dir());
        if let Some(db) = &self.db {
            c.arg("--database-url").arg(&db.url);
        }
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ward")
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}

/// Company "acme" with an Admin (admin@acme.example / "correct horse battery
/// staple"), made with the operator CLI.
fn acme_with_admin(env: &Env) {
    ok(&env.run(&["tenant", "create", "--name", "Acme"]));
    ok(&env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "admin@acme.example",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "correct horse battery staple",
    ));
}

/// The `name=value` pair of a sign-in response's session cookie.
fn cookie_of(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

/// An HTTP client; rustls needs its provider installed first (Ward uses ring).
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ward failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A failure: non-zero exit and exactly one `error:` line on stderr.
fn one_line_error(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected, got: {stderr}");
    errors[0].to_owned()
}

ward_store::on_both_backends!(
    backup_and_restore_elsewhere,
    kill_9_during_reencryption_and_master_rotation,
    master_secret_rotation_and_verify,
    keys_rotate_status_and_reencrypt,
    first_start_generates_key_and_wrong_secret_touches_nothing,
    operator_manages_tenants_and_users,
    serve_end_to_end
);

async fn first_start_generates_key_and_wrong_secret_touches_nothing(backend: Backend) {
    let env = Env::new(backend).await;
    let out = env.run(&["migrate"]);
    let latest = ward_store::MIGRATIONS.last().map_or(0, |m| m.version);
    assert!(ok(&out).contains(&format!("schema version {latest}")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("generated a new master secret"),
        "warns: {stderr}"
    );
    let key = env.data_dir().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("master.key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    ok(&env.run_with_stdin(&["tenant", "create", "--name", "Acme"], ""));
    let before = ok(&env.run(&["tenant", "list"]));

    // The wrong secret: one clear line, and nothing written.
    let wrong = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
    let out = env
        .cmd(&["tenant", "create", "--name", "Other"])
        .env("WARD_MASTER_SECRET", wrong)
        .output()
        .expect("run");
    let line = one_line_error(&out);
    assert!(line.contains("master secret does not match"), "{line}");
    assert_eq!(ok(&env.run(&["tenant", "list"])), before, "nothing changed");

    // The key file gone while the database remains: refuse, do not make a new one.
    let saved = std::fs::read(&key).expect("read key");
    std::fs::remove_file(&key).expect("rm key");
    let line = one_line_error(&env.run(&["migrate"]));
    assert!(line.contains("no master secret"), "{line}");
    assert!(
        !key.exists(),
        "no new key generated over an existing installation"
    );
    std::fs::write(&key, saved).expect("restore");
    ok(&env.run(&["migrate"]));
}

async fn operator_manages_tenants_and_users(backend: Backend) {
    let env = Env::new(backend).await;
    assert!(ok(&env.run(&["tenant", "create", "--name", "Acme Corp"])).contains("acme-corp"));
    let line = one_line_error(&env.run(&["tenant", "create", "--name", "Acme Corp"]));
    assert!(line.contains("already exists"), "{line}");
    let create = |email: &str, role: &str, pw: &str| {
        env.run_with_stdin(
            &[
                "user",
                "create",
                "--tenant",
                "acme-corp",
                "--email",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            pw,
        )
    };
    ok(&create(
        "admin@acme.example",
        "admin",
        "correct horse battery staple\n",
    ));
    assert!(
        one_line_error(&create("weak@acme.example", "user", "password1234\n")).contains("password")
    );
    assert!(
        one_line_error(&create(
            "admin@acme.example",
            "user",
            "another long passphrase\n"
        ))
        .contains("already exists")
    );
    assert!(
        one_line_error(&create(
            "x@acme.example",
            "root",
            "another long passphrase\n"
        ))
        .contains("role")
    );
    assert!(one_line_error(&create("x@acme.example", "user", "")).contains("no password"));
    let line = one_line_error(&env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "nope",
            "--email",
            "y@acme.example",
            "--role",
            "user",
            "--password-stdin",
        ],
        "another long passphrase",
    ));
    assert!(line.contains("no company"), "{line}");
    let list = ok(&env.run(&["user", "list", "--tenant", "acme-corp"]));
    assert!(list.contains("admin@acme.example\tadmin\tactive"), "{list}");
    ok(&env.run_with_stdin(
        &[
            "user",
            "reset-password",
            "--email",
            "admin@acme.example",
            "--password-stdin",
        ],
        "a different passphrase\n",
    ));
    let line = one_line_error(&env.run(&["user", "disable", "--email", "admin@acme.example"]));
    assert!(line.contains("last enabled Admin"), "{line}");
    ok(&create(
        "second@acme.example",
        "admin",
        "second admin passphrase",
    ));
    assert!(
        ok(&env.run(&["user", "disable", "--email", "admin@acme.example"])).contains("disabled")
    );
}

/// A running `ward serve`, killed and reaped on drop.
struct Server(std::process::Child);

impl Server {
    /// Graceful stop (SIGTERM), as an operator's service manager does.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ward serve` on a free port and returns it and its base URL.
fn start_server(env: &Env, extra_env: &[(&str, &str)]) -> (Server, String) {
    let mut cmd = env.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = Server(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read log");
        assert!(n > 0, "ward serve exited before listening");
        if let Some(i) = line.find("address=http") {
            let addr = line[i + "address=".len()..]
                .split_whitespace()
                .next()
                .expect("addr")
                .to_owned();
            // Keep draining logs so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, addr);
        }
    }
}

async fn serve_end_to_end(backend: Backend) {
    let env = Env::new(backend).await;
    acme_with_admin(&env);
    let (server, base) = start_server(&env, &[]);
    let http = http_client();
    let login = |email: &'static str, pw: &'static str| {
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": pw}))
            .send()
    };
    let r = login("admin@acme.example", "correct horse battery staple")
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let cookie = cookie_of(&r);
    let r = http
        .post(format!("{base}/api/v1/users"))
        .header("cookie", &cookie)
        .json(&json!({"email": "viewer@acme.example", "role": "viewer", "password": "viewer passphrase 1"}))
        .send()
        .await
        .expect("create viewer");
    assert_eq!(r.status(), 201);
    let r = login("viewer@acme.example", "viewer passphrase 1")
        .await
        .expect("login");
    let vcookie = cookie_of(&r);
    let r = http
        .post(format!("{base}/api/v1/users"))
        .header("cookie", &vcookie)
        .json(&json!({"email": "x@acme.example", "role": "viewer", "password": "viewer passphrase 2"}))
        .send()
        .await
        .expect("viewer write");
    assert_eq!(r.status(), 403);
    let audit: Value = http
        .get(format!("{base}/api/v1/audit/events"))
        .header("cookie", &vcookie)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["tenant.created", "user.created", "auth.login"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    drop(server);
}

#[test]
fn config_errors_name_the_key() {
    let dir = TempDir::new(&format!("cfg-{}-{}", std::process::id(), rand_suffix()));
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.env_clear().current_dir(&dir.path).args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("run")
    };
    let cfg = dir.path.join("ward.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:9999\"\n[session]\nidle_timeout_minuts = 5\n",
    )
    .expect("write");
    let line = one_line_error(&run(&["config", "check"], &[]));
    assert!(line.contains("idle_timeout_minuts"), "{line}");
    std::fs::write(&cfg, "listen = \"not an address\"\n").expect("write");
    assert!(one_line_error(&run(&["config", "check"], &[])).contains("listen"));
    std::fs::remove_file(&cfg).expect("rm");
    let line = one_line_error(&run(
        &["config", "check"],
        &[("WARD_RATE_LIMIT__BURST", "lots")],
    ));
    assert!(line.contains("rate_limit.burst"), "{line}");
    let line = one_line_error(&run(
        &["config", "check"],
        &[("WARD_PASSWORD_HASHING__MEMORY_KIB", "1024")],
    ));
    assert!(line.contains("password_hashing"), "{line}");
    let line = one_line_error(&run(
        &["config", "check"],
        &[("WARD_MASTER_SECRET", "c2hvcnQ=")],
    ));
    assert!(line.contains("master_secret"), "{line}");
    let line = one_line_error(&run(&["--config", "missing.toml", "config", "check"], &[]));
    assert!(line.contains("missing.toml"), "{line}");
    // Secrets are redacted in the effective settings.
    let secret = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
    let out = run(
        &[
            "--database-url",
            "postgres://ward:pg-password-123@db.internal/ward",
            "config",
            "check",
        ],
        &[("WARD_MASTER_SECRET", secret)],
    );
    let text = ok(&out);
    assert!(
        !text.contains(secret) && !text.contains("pg-password-123"),
        "{text}"
    );
    assert!(text.contains("[redacted]") && text.contains("configuration is valid"));
}

#[test]
fn unreachable_postgres_is_one_line() {
    let dir = TempDir::new(&format!("pgdown-{}-{}", std::process::id(), rand_suffix()));
    let out = Command::new(BIN)
        .env_clear()
        .current_dir(&dir.path)
        .args([
            "--database-url",
            "postgres://ward:hunter2-secret@127.0.0.1:1/ward",
            "migrate",
        ])
        .output()
        .expect("run");
    let line = one_line_error(&out);
    assert!(line.contains("cannot reach the database"), "{line}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2-secret"));
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(args)
        .output()
        .expect("curl is required for the TLS test (Debian package curl)")
}

#[tokio::test]
async fn tls_serves_aead_only_with_secure_cookies() {
    let env = Env::new(Backend::Sqlite).await;
    let cert = env.dir.path.join("cert.pem");
    let key = env.dir.path.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is required for the TLS test (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    acme_with_admin(&env);
    let (cert_s, key_s) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let (server, base) = start_server(
        &env,
        &[("WARD_TLS__CERT", &cert_s), ("WARD_TLS__KEY", &key_s)],
    );
    assert!(base.starts_with("https://"), "{base}");
    let out = curl(&[
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--cacert",
        &cert_s,
        &format!("{base}/healthz"),
    ]);
    let headers = ok(&out).to_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("strict-transport-security: max-age=63072000"),
        "{headers}"
    );
    // TLS 1.2 with an AEAD suite works; CBC suites and TLS 1.1 do not.
    let aead = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "--cacert",
        &cert_s,
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        &format!("{base}/healthz"),
    ]);
    assert!(
        aead.status.success(),
        "{}",
        String::from_utf8_lossy(&aead.stderr)
    );
    let cbc = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "--cacert",
        &cert_s,
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA",
        &format!("{base}/healthz"),
    ]);
    assert!(!cbc.status.success(), "a CBC suite must be refused");
    let old = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-k",
        "--tls-max",
        "1.1",
        &format!("{base}/healthz"),
    ]);
    assert!(!old.status.success(), "TLS 1.1 must be refused");
    // The session cookie is __Host- and Secure over TLS.
    let out = curl(&[
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--cacert",
        &cert_s,
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"email":"admin@acme.example","password":"correct horse battery staple"}"#,
        &format!("{base}/api/v1/auth/login"),
    ]);
    let headers = ok(&out);
    let cookie = headers
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .expect("set-cookie");
    assert!(
        cookie.contains("__Host-ward_session=")
            && cookie.contains("; Secure")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    drop(server);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let env = Env::new(Backend::Sqlite).await;
    let out = env.run(&["--log-format", "json", "migrate"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        lines += 1;
    }
    assert!(
        lines >= 2,
        "expected the key warning and the migration: {stderr}"
    );
}

async fn keys_rotate_status_and_reencrypt(backend: Backend) {
    let env = Env::new(backend).await;
    acme_with_admin(&env);
    assert!(ok(&env.run(&["keys", "status", "--tenant", "acme"])).contains("no key yet"));
    let (server, base) = start_server(&env, &[]);
    let http = http_client();
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@acme.example", "password": "correct horse battery staple"}))
        .send()
        .await
        .expect("login");
    let cookie = cookie_of(&r);
    let r = http
        .post(format!("{base}/api/v1/connections"))
        .header("cookie", &cookie)
        .json(
            &json!({"name": "splunk", "kind": "splunk", "base_url": "https://splunk.example:8089",
            "credentials": {"token": "cli-test-secret-token"}}),
        )
        .send()
        .await
        .expect("create connection");
    assert_eq!(r.status(), 201);
    server.stop();
    let status = ok(&env.run(&["keys", "status", "--tenant", "acme"]));
    assert!(
        status.contains("version   1  active") && status.contains("(1/1; v1: 1)"),
        "{status}"
    );
    assert!(
        ok(&env.run(&["keys", "rotate", "--tenant", "acme"]))
            .contains("key version 2 is now active")
    );
    let status = ok(&env.run(&["keys", "status", "--tenant", "acme"]));
    assert!(
        status.contains("decrypt_only") && status.contains("0% on the active version (0/1; v1: 1)"),
        "{status}"
    );
    // A graceful stop hands the key-maintenance lease back at once.
    let mut out = env.run(&["keys", "reencrypt", "--tenant", "acme"]);
    for _ in 0..40 {
        if out.status.success() {
            break;
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("lease"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
        out = env.run(&["keys", "reencrypt", "--tenant", "acme"]);
    }
    let text = ok(&out);
    assert!(
        text.contains("re-encrypted 1 value(s)") && text.contains("destroyed 1 version(s)"),
        "{text}"
    );
    let status = ok(&env.run(&["keys", "status", "--tenant", "acme"]));
    assert!(
        status.contains("destroyed") && status.contains("100% on the active version (1/1; v2: 1)"),
        "{status}"
    );
    assert!(
        one_line_error(&env.run(&["keys", "rotate", "--tenant", "nope"])).contains("no company")
    );
}

async fn master_secret_rotation_and_verify(backend: Backend) {
    let env = Env::new(backend).await;
    acme_with_admin(&env);
    let login_and_create = |base: String, name: &'static str| async move {
        let http = http_client();
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(
                &json!({"email": "admin@acme.example", "password": "correct horse battery staple"}),
            )
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200);
        let cookie = cookie_of(&r);
        let r = http
            .post(format!("{base}/api/v1/connections"))
            .header("cookie", &cookie)
            .json(
                &json!({"name": name, "kind": "splunk", "base_url": "https://splunk.example",
                "credentials": {"token": "rotation-test-token"}}),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let r = http
            .post(format!("{base}/api/v1/connections/{id}/test"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("test");
        assert_eq!(r.status(), 200, "credentials decrypt");
    };
    let (server, base) = start_server(&env, &[]);
    login_and_create(base, "first").await;
    server.stop();
    ok(&env.run(&["keys", "rotate", "--tenant", "acme"]));
    // A settings secret: a webhook sink's HMAC key, sealed with the "settings" key.
    std::fs::write(env.dir.path.join("hook.key"), "hmac-key-for-rotation").expect("secret");
    ok(&env.run(&[
        "audit",
        "sink",
        "add",
        "--name",
        "hook",
        "--kind",
        "webhook",
        "--url",
        "http://127.0.0.1:9/hook",
        "--secret-file",
        env.dir.path.join("hook.key").to_str().expect("utf8"),
    ]));
    assert!(
        ok(&env.run(&["keys", "verify"]))
            .contains("verified 2 wrapped key(s), 1 encrypted value(s) and 1 settings secret(s)")
    );
    ok(&env.run(&["audit", "checkpoint"]));

    let old = std::fs::read_to_string(env.data_dir().join("master.key")).expect("old key");
    let new = "TkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXTkVXTkU=";
    let new_file = env.dir.path.join("new.key");
    std::fs::write(&new_file, new).expect("write new");
    // During the migration the server runs with both secrets.
    let (server, base) = start_server(
        &env,
        &[
            ("WARD_MASTER_SECRET", new),
            ("WARD_PREVIOUS_MASTER_SECRET", old.trim()),
        ],
    );
    login_and_create(base, "second").await;
    server.stop();
    // The rotation itself, with the old secret configured.
    let line =
        one_line_error(&env.run(&["keys", "rotate-master", "--new-secret-file", "missing.key"]));
    assert!(line.contains("missing.key"), "{line}");
    let out = ok(&env.run(&[
        "keys",
        "rotate-master",
        "--new-secret-file",
        new_file.to_str().expect("utf8"),
    ]));
    assert!(out.contains("rotated to version 2"), "{out}");
    let rotated = out.clone();
    // The old secret no longer opens the installation; the new one does, and everything decrypts.
    assert!(one_line_error(&env.run(&["keys", "verify"])).contains("does not match"));
    let out = env
        .cmd(&["keys", "verify"])
        .env("WARD_MASTER_SECRET", new)
        .output()
        .expect("verify");
    let text = ok(&out);
    // (The server's key-maintenance pass may meanwhile have moved the old value to
    // version 2 and destroyed version 1: either way every value decrypts.)
    assert!(
        text.contains("2 encrypted value(s) and 1 settings secret(s) under master version 2"),
        "{text}"
    );
    // The audit log verifies across the change of checkpoint key: checkpoints
    // signed with the old key are trusted through the event naming it.
    let out = env
        .cmd(&["audit", "checkpoint"])
        .env("WARD_MASTER_SECRET", new)
        .output()
        .expect("checkpoint");
    ok(&out);
    // Checkpoints signed with the previous key fail unless the operator vouches
    // for that key (it is printed by rotate-master); a key named by data in the
    // database is never trusted on its own.
    let out = env
        .cmd(&["audit", "verify"])
        .env("WARD_MASTER_SECRET", new)
        .output()
        .expect("audit verify");
    assert!(
        one_line_error(&out).contains("bad signature"),
        "{}",
        one_line_error(&out)
    );
    let previous = rotated
        .lines()
        .find_map(|l| l.split("--trusted-key '").nth(1))
        .and_then(|k| k.split('\'').next())
        .expect("previous key printed")
        .to_owned();
    let out = env
        .cmd(&["audit", "verify", "--trusted-key", &previous])
        .env("WARD_MASTER_SECRET", new)
        .output()
        .expect("audit verify");
    let text = ok(&out);
    assert!(text.contains("signed checkpoints"), "{text}");
    let (server, base) = start_server(&env, &[("WARD_MASTER_SECRET", new)]);
    login_and_create(base, "third").await;
    server.stop();
}

/// Deterministic pseudo-random delays (no RNG dependency; varied enough).
fn delay_ms(i: u64, max: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761) >> 7) % max
}

/// Runs `args` and SIGKILLs it after `ms` milliseconds (if still running).
fn run_killed_after(env: &Env, args: &[&str], envs: &[(&str, &str)], ms: u64) {
    let mut cmd = env.cmd(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = Server(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let _ = child.0.kill(); // SIGKILL: no cleanup, like a crash
    let _ = child.0.wait();
}

async fn expire_leases(env: &Env) {
    // A killed worker's lease would expire by itself; make it so now.
    let url = match &env.db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}/ward.db", env.data_dir().display()),
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    sqlx::query("UPDATE job_leases SET expires_at = 0")
        .execute(&pool)
        .await
        .expect("expire");
    pool.close().await;
}

async fn kill_9_during_reencryption_and_master_rotation(backend: Backend) {
    let env = Env::new(backend).await;
    let weak = [
        ("WARD_PASSWORD_HASHING__MEMORY_KIB", "64"),
        ("WARD_PASSWORD_HASHING__ITERATIONS", "1"),
        ("WARD_PASSWORD_HASHING__PARALLELISM", "1"),
        ("WARD_PASSWORD_HASHING__DANGER_ALLOW_WEAK", "true"),
    ];
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut c = env.cmd(args);
        for (k, v) in weak.iter().chain(extra) {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().expect("run")
    };
    ok(&run(&["tenant", "create", "--name", "Acme"], &[]));
    ok(&env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "admin@acme.example",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "correct horse battery staple",
    ));
    let (server, base) = start_server(
        &env,
        &[
            ("WARD_KEY_MAINTENANCE__INTERVAL_SECONDS", "86400"),
            ("WARD_RATE_LIMIT__REQUESTS_PER_SECOND", "0"),
        ],
    );
    let http = http_client();
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@acme.example", "password": "correct horse battery staple"}))
        .send()
        .await
        .expect("login");
    let cookie = cookie_of(&r);
    for i in 0..200 {
        let r = http
            .post(format!("{base}/api/v1/connections"))
            .header("cookie", &cookie)
            .json(
                &json!({"name": format!("c{i}"), "kind": "splunk", "base_url": "https://s.example",
                "credentials": {"token": format!("token-{i}")}}),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
    }
    server.stop();
    let slow = [
        ("WARD_KEY_MAINTENANCE__BATCH_SIZE", "10"),
        ("WARD_KEY_MAINTENANCE__MAX_ROWS_PER_SECOND", "2000"),
    ];
    let mut interrupted_reencryptions = 0;
    for i in 0..20u64 {
        ok(&run(&["keys", "rotate", "--tenant", "acme"], &[]));
        let mut args: Vec<(&str, &str)> = weak.to_vec();
        args.extend_from_slice(&slow);
        run_killed_after(
            &env,
            &["keys", "reencrypt", "--tenant", "acme"],
            &args,
            delay_ms(i, 150),
        );
        expire_leases(&env).await;
        let status = ok(&run(&["keys", "status", "--tenant", "acme"], &[]));
        if !status.contains("100% on the active version") {
            interrupted_reencryptions += 1;
        }
        let out = run(&["keys", "verify"], &[]);
        assert!(
            ok(&out).contains("200 encrypted value(s)"),
            "iteration {i}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let text = ok(&run(&["keys", "reencrypt", "--tenant", "acme"], &[]));
    assert!(text.contains("destroyed"), "{text}");
    let status = ok(&run(&["keys", "status", "--tenant", "acme"], &[]));
    assert!(
        status.contains("100% on the active version (200/200"),
        "{status}"
    );

    // Master-secret rotation, killed at random points, resumed with the same new secret.
    for n in 0..30 {
        ok(&run(
            &["tenant", "create", "--name", &format!("Company {n}")],
            &[],
        ));
        ok(&run(
            &["keys", "rotate", "--tenant", &format!("company-{n}")],
            &[],
        ));
    }
    let mut old = std::fs::read_to_string(env.data_dir().join("master.key"))
        .expect("key")
        .trim()
        .to_owned();
    let secrets: Vec<String> = (0..20u8)
        .map(|i| base64_of(&[i.wrapping_mul(37).wrapping_add(11); 32]))
        .collect();
    let mut next = 0usize;
    let mut interrupted_rotations = 0;
    for i in 0..20u64 {
        let new = secrets[next].clone();
        let new_file = env.dir.path.join("next.key");
        std::fs::write(&new_file, &new).expect("write");
        run_killed_after(
            &env,
            &[
                "keys",
                "rotate-master",
                "--new-secret-file",
                new_file.to_str().expect("utf8"),
            ],
            &[weak.as_slice(), &[("WARD_MASTER_SECRET", old.as_str())]].concat(),
            delay_ms(i + 100, 120),
        );
        // Finished: the new secret alone opens everything. Interrupted: new + previous does.
        let alone = run(&["keys", "verify"], &[("WARD_MASTER_SECRET", &new)]);
        if alone.status.success() {
            old = new;
            next += 1;
            continue;
        }
        interrupted_rotations += 1;
        let both = run(
            &["keys", "verify"],
            &[
                ("WARD_MASTER_SECRET", &new),
                ("WARD_PREVIOUS_MASTER_SECRET", &old),
            ],
        );
        assert!(
            both.status.success(),
            "iteration {i}: {}",
            String::from_utf8_lossy(&both.stderr)
        );
        // Resume to completion with the same new secret.
        ok(&run(
            &[
                "keys",
                "rotate-master",
                "--new-secret-file",
                new_file.to_str().expect("utf8"),
            ],
            &[("WARD_MASTER_SECRET", &old)],
        ));
        ok(&run(&["keys", "verify"], &[("WARD_MASTER_SECRET", &new)]));
        old = new;
        next += 1;
    }
    assert!(
        ok(&run(&["keys", "verify"], &[("WARD_MASTER_SECRET", &old)]))
            .contains("200 encrypted value(s)")
    );
    eprintln!(
        "interrupted: {interrupted_reencryptions}/20 re-encryptions, {interrupted_rotations}/20 master rotations"
    );
    // The kills must really land mid-way some of the time, or this proves nothing.
    assert!(interrupted_reencryptions > 0 && interrupted_rotations > 0);
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn backup_and_restore_elsewhere(backend: Backend) {
    let a = Env::new(backend).await;
    acme_with_admin(&a);
    let (server, base) = start_server(&a, &[]);
    let http = http_client();
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@acme.example", "password": "correct horse battery staple"}))
        .send()
        .await
        .expect("login");
    let cookie = cookie_of(&r);
    let r = http
        .post(format!("{base}/api/v1/connections"))
        .header("cookie", &cookie)
        .json(&json!({"name": "s", "kind": "splunk", "base_url": "https://s.example", "credentials": {"token": "backup-test-secret"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    server.stop();
    ok(&a.run(&["keys", "rotate", "--tenant", "acme"]));
    let archive = a.dir.path.join("ward.backup");
    let out = ok(&a.run(&["backup", "create", "--out", archive.to_str().expect("utf8")]));
    assert!(out.contains("wrote"), "{out}");
    let bytes = std::fs::read(&archive).expect("archive");
    assert!(
        !String::from_utf8_lossy(&bytes).contains("admin@acme.example"),
        "the archive is encrypted"
    );
    let secret = std::fs::read_to_string(a.data_dir().join("master.key"))
        .expect("key")
        .trim()
        .to_owned();

    let b = Env::new(backend).await;
    let restore = |env: &Env, file: &std::path::Path, secret: &str| {
        env.cmd(&["backup", "restore", file.to_str().expect("utf8")])
            .env("WARD_MASTER_SECRET", secret)
            .stdin(Stdio::null())
            .output()
            .expect("restore")
    };
    // One flipped byte anywhere: refused, nothing written.
    for at in [20usize, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let bad_file = b.dir.path.join("bad.backup");
        std::fs::write(&bad_file, &bad).expect("write");
        let line = one_line_error(&restore(&b, &bad_file, &secret));
        assert!(
            line.contains("damaged")
                || line.contains("not a Ward backup")
                || line.contains("master secret"),
            "{line}"
        );
    }
    let other = "T1RIRVJPVEhFUk9USEVST1RIRVJPVEhFUk9USEVST1Q=";
    assert!(
        one_line_error(&restore(&b, &archive, other))
            .contains("not the one this backup was made with")
    );
    let out = restore(&b, &archive, &secret);
    assert!(ok(&out).contains("restored"));
    let verify = b
        .cmd(&["keys", "verify"])
        .env("WARD_MASTER_SECRET", &secret)
        .output()
        .expect("verify");
    assert!(
        ok(&verify).contains("1 encrypted value(s)"),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let users = b
        .cmd(&["user", "list", "--tenant", "acme"])
        .env("WARD_MASTER_SECRET", &secret)
        .output()
        .expect("users");
    assert!(ok(&users).contains("admin@acme.example"));
    // Restoring again into the now non-empty database is refused.
    assert!(one_line_error(&restore(&b, &archive, &secret)).contains("non-empty"));
}

/// The former `login_throttle.max_failures_per_account` key is still read (a
/// serde alias failed against the defaults layer with "duplicate field"); the
/// NIST ceiling and the metrics token are checked, and the token never printed.
#[test]
fn login_throttle_and_metrics_settings_are_checked() {
    let dir = TempDir::new(&format!("thr-{}-{}", std::process::id(), rand_suffix()));
    let run = |toml: &str| {
        std::fs::write(dir.path.join("ward.toml"), toml).expect("write");
        Command::new(BIN)
            .env_clear()
            .current_dir(&dir.path)
            .args(["config", "check"])
            .output()
            .expect("run")
    };
    let out = run("[login_throttle]\nmax_failures_per_account = 7\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = one_line_error(&run("[login_throttle]\naccount_lock_failures = 101\n"));
    assert!(
        line.contains("login_throttle.account_lock_failures"),
        "{line}"
    );
    let token = dir.path.join("metrics.token");
    std::fs::write(&token, "too-short-secret").expect("write");
    let cfg = format!(
        "[metrics]\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    let line = one_line_error(&run(&cfg));
    assert!(line.contains("metrics.token_file"), "{line}");
    assert!(!line.contains("too-short-secret"), "{line}");
    std::fs::write(&token, "a-long-enough-metrics-scrape-token-0123456789").expect("write");
    let out = run(&format!("{cfg}listen = \"127.0.0.1:9464\"\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a-long-enough"));
}
