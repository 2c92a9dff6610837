//! TLS to PostgreSQL: a URL's `sslmode` and `sslrootcert` checked before the first
//! connection, and a failed handshake worded as one line an operator can act on.
//!
//! sqlx does the TLS (rustls with ring). Two of its behaviours differ from libpq,
//! and this module refuses the URLs where the difference would weaken a check:
//! - it trusts the system's CAs *as well as* `sslrootcert` (libpq trusts only the
//!   file), so `verify-ca`, which skips the host name, would accept a certificate
//!   any public CA issued for any name;
//! - `require` never checks the certificate, even when `sslrootcert` is given
//!   (libpq then checks it against the file), so the file would be silently unused.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sqlx::ConnectOptions;
use sqlx::any::AnyConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The TLS settings of a PostgreSQL URL, kept to explain a failed connection.
#[derive(Debug)]
pub(crate) struct PgTls {
    mode: PgSslMode,
    root: Option<RootCert>,
    host: String,
}

/// Where the CA certificates named by `sslrootcert` (or `PGSSLROOTCERT`) come from.
#[derive(Debug)]
enum RootCert {
    File(PathBuf),
    /// PEM text in the URL itself; sqlx accepts it, and it is never printed.
    Inline,
}

/// The spellings sqlx accepts for the two parameters (`parse.rs` in sqlx-postgres).
const SSLMODE_KEYS: [&str; 2] = ["sslmode", "ssl-mode"];
const ROOT_CERT_KEYS: [&str; 3] = ["sslrootcert", "ssl-root-cert", "ssl-ca"];
const SSLMODES: &str = "disable, allow, prefer, require, verify-ca, verify-full";
/// How many of the certificate's names a wrong-host-name message lists.
const MAX_NAMES_SHOWN: usize = 5;

impl PgTls {
    /// Reads the URL's TLS settings and refuses those that would not check what they
    /// appear to ask for. Every message is one line and never includes the URL,
    /// which may hold a password.
    pub(crate) fn from_options(options: &AnyConnectOptions) -> Result<Self, String> {
        Self::read(options).map_err(|e| one_line(&e))
    }

    /// One line for a connection that failed in TLS, or `None` when the failure was
    /// not about TLS.
    pub(crate) fn describe(&self, e: &sqlx::Error) -> Option<String> {
        self.describe_any(e).map(|line| one_line(&line))
    }

    fn read(options: &AnyConnectOptions) -> Result<Self, String> {
        let url = &options.database_url;
        let mut root_in_url = None;
        for (key, value) in url.query_pairs() {
            if SSLMODE_KEYS.contains(&&*key) && value.parse::<PgSslMode>().is_err() {
                return Err(format!(
                    "sslmode={value} is not a PostgreSQL TLS mode (one of {SSLMODES})"
                ));
            }
            if ROOT_CERT_KEYS.contains(&&*key) {
                root_in_url = Some(value.into_owned());
            }
        }
        let pg = PgConnectOptions::from_url(url)
            .map_err(|_| "the database URL is not valid".to_owned())?;
        let mode = pg.get_ssl_mode();
        let verifies = matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull);
        if root_in_url.is_some() && !verifies {
            return Err(format!(
                "sslrootcert is set but sslmode={} does not check the server's certificate, so the CA file would be unused; use sslmode=verify-full",
                mode_name(mode)
            ));
        }
        // The environment variable is sqlx's default for the parameter, as in libpq;
        // it only matters where the certificate is checked.
        let root_text = root_in_url.or_else(|| {
            verifies
                .then(|| std::env::var("PGSSLROOTCERT").ok())
                .flatten()
        });
        let root = match root_text {
            None => None,
            Some(text) if text.trim_start().starts_with("-----BEGIN") => {
                count_certificates(text.as_bytes())
                    .map_err(|e| format!("sslrootcert holds no usable PEM certificate: {e}"))?;
                Some(RootCert::Inline)
            }
            Some(text) => {
                let path = PathBuf::from(text);
                check_ca_file(&path)?;
                Some(RootCert::File(path))
            }
        };
        if matches!(mode, PgSslMode::VerifyCa) {
            let system = rustls_native_certs::load_native_certs().certs.len();
            if system > 0 {
                return Err(format!(
                    "sslmode=verify-ca would accept a certificate for any host name from any of the system's {system} trusted CAs, not only sslrootcert; use sslmode=verify-full (or set SSL_CERT_FILE to the CA file so that only it is trusted)"
                ));
            }
        }
        Ok(Self {
            mode,
            root,
            host: pg.get_host().to_owned(),
        })
    }

    fn describe_any(&self, e: &sqlx::Error) -> Option<String> {
        match e {
            // rustls reports a failed handshake as an I/O error wrapping its own.
            sqlx::Error::Io(io) => {
                let tls = io.get_ref()?.downcast_ref::<rustls::Error>()?;
                Some(self.describe_rustls(tls))
            }
            sqlx::Error::Tls(inner) => {
                let text = inner.to_string();
                Some(if text.contains("does not support TLS") {
                    format!(
                        "the database server does not offer TLS, and sslmode={} requires it",
                        mode_name(self.mode)
                    )
                } else {
                    format!("TLS with the database server failed: {text}")
                })
            }
            _ => None,
        }
    }

    fn describe_rustls(&self, e: &rustls::Error) -> String {
        use rustls::CertificateError as C;
        let rustls::Error::InvalidCertificate(cert) = e else {
            return format!("TLS with the database server failed: {e}");
        };
        let host = &self.host;
        match cert {
            C::UnknownIssuer | C::BadSignature => match &self.root {
                Some(RootCert::File(path)) => format!(
                    "the database server's certificate is not trusted: it is not issued by the CA in {} (sslrootcert)",
                    path.display()
                ),
                Some(RootCert::Inline) => "the database server's certificate is not trusted: it is not issued by the CA given in sslrootcert".to_owned(),
                None => "the database server's certificate is not trusted: it is not issued by a CA the system trusts; name the server's CA with sslrootcert=PATH".to_owned(),
            },
            C::NotValidForName => {
                format!("the database server's certificate is not valid for the host name {host}")
            }
            C::NotValidForNameContext { presented, .. } => {
                if presented.is_empty() {
                    return format!(
                        "the database server's certificate is not valid for the host name {host}: it names no host (no subjectAltName)"
                    );
                }
                // The names come from the server: a few are enough to act on.
                let mut names = presented
                    .iter()
                    .take(MAX_NAMES_SHOWN)
                    .map(|n| presented_name(n).to_owned())
                    .collect::<Vec<_>>();
                if presented.len() > MAX_NAMES_SHOWN {
                    names.push(format!("{} more", presented.len() - MAX_NAMES_SHOWN));
                }
                format!(
                    "the database server's certificate is not valid for the host name {host}: it names only {}; connect with one of those names",
                    names.join(", ")
                )
            }
            C::Expired | C::ExpiredContext { .. } => {
                "the database server's certificate has expired".to_owned()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the database server's certificate is not valid yet (check the clocks)".to_owned()
            }
            C::Revoked => "the database server's certificate is revoked".to_owned(),
            other => format!("the database server's certificate was refused: {other}"),
        }
    }
}

/// Checks that the CA file can be read and holds at least one certificate, so that a
/// wrong path is not reported later as an unreachable server.
fn check_ca_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the CA file {} (sslrootcert): {e}",
            path.display()
        )
    })?;
    count_certificates(&bytes).map_err(|e| {
        format!(
            "the CA file {} (sslrootcert) holds no usable PEM certificate: {e}",
            path.display()
        )
    })?;
    Ok(())
}

fn count_certificates(pem: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| e.to_string())?;
        n += 1;
    }
    if n == 0 {
        return Err("no BEGIN CERTIFICATE block".to_owned());
    }
    Ok(n)
}

/// webpki lists the certificate's names in their `Debug` form
/// (`DnsName("localhost")`, `IpAddress(127.0.0.1)`); an operator wants the name.
fn presented_name(debug: &str) -> &str {
    for prefix in ["DnsName(\"", "IpAddress(", "UniformResourceIdentifier(\""] {
        if let Some(rest) = debug.strip_prefix(prefix) {
            return rest.trim_end_matches(')').trim_end_matches('"');
        }
    }
    debug
}

/// Control characters escaped, so that a message stays one log line whatever a URL
/// parameter, a file name or the server's certificate holds.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer (the default)",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_webpki_presents_are_shown_bare() {
        assert_eq!(presented_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("IpAddress(::1)"), "::1");
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(one_line("/etc/ward/db-ca.pem"), "/etc/ward/db-ca.pem");
    }

    // A server without TLS is not easy to come by in the integration test (the
    // cluster it starts exists to offer TLS), so sqlx's error is made here.
    #[test]
    fn a_server_without_tls_is_named_as_such() {
        let tls = PgTls {
            mode: PgSslMode::VerifyFull,
            root: None,
            host: "db.internal".to_owned(),
        };
        let e = sqlx::Error::Tls("server does not support TLS".into());
        assert_eq!(
            tls.describe(&e).as_deref(),
            Some("the database server does not offer TLS, and sslmode=verify-full requires it")
        );
        assert_eq!(tls.describe(&sqlx::Error::PoolTimedOut), None);
    }
}
