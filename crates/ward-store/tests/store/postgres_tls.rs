//! PostgreSQL over TLS: a second cluster of its own (initdb into a temporary
//! directory, `ssl = on`, only `hostssl` connections allowed, a certificate from a
//! test CA that names `localhost` alone), and `Store::connect` against it with the
//! right CA, a wrong CA, a wrong host name and each `sslmode`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;
use ward_store::{ConnectSettings, Store};

/// In every URL, to show that no refusal ever prints it. Trust authentication
/// means the server never asks for it.
const PASSWORD: &str = "pw-must-not-leak-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_checks_the_ca_and_the_host_name() {
    let Some(cluster) = TlsCluster::start() else {
        return;
    };
    let ca = cluster.dir.join("tls/ca.pem");
    let other_ca = cluster.dir.join("tls/other-ca.pem");
    let port = cluster.port;
    let url = |host: &str, query: &str| {
        format!("postgres://postgres:{PASSWORD}@{host}:{port}/postgres?{query}")
    };

    // The right CA and the name the certificate carries: connected, over TLS.
    let good = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let store = connect(&good).await.expect("verify-full with the right CA");
    store.migrate().await.expect("migrations over TLS");
    store.close().await;
    assert!(uses_tls(&good).await, "verify-full connection is not TLS");

    // The CA file does not hold the server's issuer.
    check_refused(
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
        ),
        &format!(
            "the database server's certificate is not trusted: it is not issued by the CA in {} (sslrootcert)",
            other_ca.display()
        ),
    )
    .await;

    // The right CA, but the certificate names localhost and not 127.0.0.1.
    check_refused(
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
        "the database server's certificate is not valid for the host name 127.0.0.1: it names only localhost; connect with one of those names",
    )
    .await;

    // No CA file: the test CA is not among the system's.
    check_refused(
        &url("localhost", "sslmode=verify-full"),
        "the database server's certificate is not trusted: it is not issued by a CA the system trusts; name the server's CA with sslrootcert=PATH",
    )
    .await;

    // A CA file that is not there is named, not reported as an unreachable server.
    let missing = cluster.dir.join("tls/missing.pem");
    check_refused(
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={}", missing.display()),
        ),
        &format!(
            "cannot read the CA file {} (sslrootcert): No such file or directory (os error 2)",
            missing.display()
        ),
    )
    .await;

    // require encrypts without checking the certificate, whatever the host name.
    let require = url("127.0.0.1", "sslmode=require");
    connect(&require)
        .await
        .expect("sslmode=require")
        .close()
        .await;
    assert!(uses_tls(&require).await, "sslmode=require is not TLS");

    // require with a CA file would check nothing (sqlx, unlike libpq): refused.
    check_refused(
        &url(
            "localhost",
            &format!("sslmode=require&sslrootcert={}", ca.display()),
        ),
        "sslrootcert is set but sslmode=require does not check the server's certificate, so the CA file would be unused; use sslmode=verify-full",
    )
    .await;

    // verify-ca skips the host name, and sqlx trusts the system's CAs besides the
    // file: safe only where the system trusts none.
    let verify_ca = url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    );
    let system = rustls_native_certs::load_native_certs().certs.len();
    if system > 0 {
        check_refused(
            &verify_ca,
            &format!(
                "sslmode=verify-ca would accept a certificate for any host name from any of the system's {system} trusted CAs, not only sslrootcert; use sslmode=verify-full (or set SSL_CERT_FILE to the CA file so that only it is trusted)"
            ),
        )
        .await;
    } else {
        connect(&verify_ca)
            .await
            .expect("verify-ca with no system CAs")
            .close()
            .await;
    }

    // pg_hba.conf has only hostssl lines: a plain connection is the server's refusal.
    let plain = connect(&url("127.0.0.1", "sslmode=disable"))
        .await
        .expect_err("plain connection");
    let plain = plain.to_string();
    assert!(
        plain.starts_with("the database refused the connection: no pg_hba.conf entry")
            && plain.ends_with("no encryption"),
        "{plain}"
    );
    assert!(!plain.contains(PASSWORD), "{plain}");

    // A misspelt mode is named rather than reported as an invalid URL.
    check_refused(
        &url("localhost", "sslmode=verify_full"),
        "sslmode=verify_full is not a PostgreSQL TLS mode (one of disable, allow, prefer, require, verify-ca, verify-full)",
    )
    .await;
}

async fn connect(url: &str) -> Result<Store, ward_store::StoreError> {
    Store::connect(
        url,
        ConnectSettings {
            max_connections: 2,
            connect_timeout: Duration::from_secs(10),
        },
    )
    .await
}

/// The connection is refused with exactly `expected`: one line, no password.
async fn check_refused(url: &str, expected: &str) {
    let err = match connect(url).await {
        Ok(store) => {
            store.close().await;
            panic!("connected, but expected: {expected}");
        }
        Err(e) => e.to_string(),
    };
    assert_eq!(err, expected);
    assert!(!err.contains('\n') && !err.contains(PASSWORD), "{err}");
}

/// Whether the server sees this connection as TLS (`pg_stat_ssl`).
async fn uses_tls(url: &str) -> bool {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_ssl");
    let _ = conn.close().await;
    ssl
}

/// A PostgreSQL cluster on a loopback port, stopped and deleted on drop, so a
/// failed assertion leaves no server behind.
struct TlsCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl TlsCluster {
    /// `None` (with a note) where PostgreSQL's server programs or openssl are not
    /// installed; under CI they are required.
    fn start() -> Option<Self> {
        let Some(bin) = postgres_bin_dir() else {
            skip_or_fail("PostgreSQL's initdb and pg_ctl are not installed");
            return None;
        };
        if Command::new("openssl").arg("version").output().is_err() {
            skip_or_fail("openssl is not installed");
            return None;
        }
        // PostgreSQL refuses to run as root; the tests may run as root (containers).
        let as_postgres = run_output(Command::new("id").arg("-u")).trim() == "0";
        let dir = std::env::temp_dir().join(format!(
            "ward-pgtls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(dir.join("tls")).expect("create cluster directory");
        // From here on, drop stops whatever started and removes the directory.
        let mut cluster = Self {
            dir,
            port: 0,
            bin,
            as_postgres,
        };
        make_certificates(&cluster.dir.join("tls"));
        if as_postgres {
            run_output(Command::new("chown").args(["-R", "postgres:", &cluster.dir_str()]));
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "--no-instructions",
            ],
        );
        std::fs::write(
            cluster.dir.join("data/pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        // A port another process takes between our probe and the server's bind is
        // possible; a few tries make that harmless.
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = free_port();
            let tls = cluster.dir.join("tls");
            let conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\nmax_connections = 20\n",
                cluster.port,
                cluster.dir.display(),
                tls.join("server.pem").display(),
                tls.join("server.key").display(),
            );
            std::fs::write(cluster.dir.join("data/postgresql.auto.conf"), conf)
                .expect("write postgresql.auto.conf");
            let log = cluster.dir.join("server.log");
            let started = cluster.pg_status(
                "pg_ctl",
                &[
                    "-D",
                    &cluster.data(),
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if started {
                return Some(cluster);
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 3 && log.contains("could not bind"),
                "the TLS PostgreSQL cluster did not start:\n{log}"
            );
        }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_status(&self, program: &str, args: &[&str]) -> bool {
        self.command(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = self.pg_status(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` (Debian), else the directory of
/// an `initdb` on PATH.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
    })
}

fn skip_or_fail(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; the PostgreSQL TLS test needs them in CI"
    );
    eprintln!("note: PostgreSQL TLS test skipped: {why}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

fn run_output(command: &mut Command) -> String {
    let out = command.output().expect("run a helper program");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server's CA, a second CA that issued nothing here, and a server certificate
/// naming only `localhost` (so 127.0.0.1 is a wrong host name), with openssl.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run_output(Command::new("openssl").args(args).current_dir(dir));
    };
    for (name, subject) in [("ca", "/CN=Ward test CA"), ("other-ca", "/CN=Other CA")] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            subject,
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").expect("ext.cnf");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    // PostgreSQL refuses a key others can read.
    run_output(
        Command::new("chmod")
            .args(["600", "server.key"])
            .current_dir(dir),
    );
}
