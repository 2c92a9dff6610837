//! Forwarding the audit log to SIEMs: syslog (RFC 5424) over UDP, TCP with octet
//! counting (RFC 6587 §3.4.1) and TLS (RFC 5425), and HTTP JSON (Splunk HEC, or a
//! generic webhook signed with HMAC-SHA256). Each sink has a persisted cursor (the
//! tree size it acknowledged), so delivery is at-least-once and in leaf order
//! across restarts; every message carries its leaf index as a de-duplication id.
//! Failed deliveries retry with exponential backoff and full jitter; a sink failing
//! longer than a threshold writes an alert event, and one when it recovers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::egress::{Egress, EgressHttp, HttpOptions, Origin};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use ward_core::audit::{StoredAuditEvent, actions};
use ward_core::{Actor, AuditEvent, EventId, RequestContext, Timestamp};
use ward_crypto::{SecureRandom, SettingsContext, SettingsKey};
use ward_store::{Store, StoreError, StoredSink};
use zeroize::Zeroizing;

pub const LEASE_NAME: &str = "audit-forwarder";

/// What a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    SyslogUdp,
    SyslogTcp,
    SyslogTls,
    SplunkHec,
    Webhook,
}

impl SinkKind {
    pub const ALL: [SinkKind; 5] = [
        Self::SyslogUdp,
        Self::SyslogTcp,
        Self::SyslogTls,
        Self::SplunkHec,
        Self::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyslogUdp => "syslog-udp",
            Self::SyslogTcp => "syslog-tcp",
            Self::SyslogTls => "syslog-tls",
            Self::SplunkHec => "splunk-hec",
            Self::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the sink takes a secret (HEC token, webhook HMAC key).
    pub fn needs_secret(self) -> bool {
        matches!(self, Self::SplunkHec | Self::Webhook)
    }

    pub fn is_syslog(self) -> bool {
        matches!(self, Self::SyslogUdp | Self::SyslogTcp | Self::SyslogTls)
    }
}

/// A sink's public settings, stored as JSON beside its sealed secrets. Nothing in
/// here is secret: it is shown by `ward audit sink list` and lands in logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `host:port` for syslog sinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `scheme://host:port` of an HTTP sink: what may be shown. The full URL is
    /// sealed (`SinkSecrets::url`), since receivers often carry a secret in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The full URL of an HTTP sink added before URLs were sealed (read, never
    /// written: such a row's secret is the raw token, sealed as field `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM file of the CA(s) that sign the receiver's certificate (TLS and https);
    /// default: the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Name to verify in the receiver's certificate; default: the address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Events per delivery.
    pub batch_size: u32,
}

impl SinkConfig {
    /// Where the sink delivers, as may be shown: `host:port`, or scheme, host and
    /// port of an HTTP sink (never its path, query or credentials).
    pub fn target(&self) -> String {
        if let Some(a) = &self.address {
            return a.clone();
        }
        if let Some(e) = &self.endpoint {
            return e.clone();
        }
        self.url
            .as_deref()
            .and_then(|u| Origin::of(u).ok())
            .map_or_else(String::new, |o| o.to_string())
    }
}

/// What a sink keeps sealed under the settings key (field `credentials`): the full
/// URL of an HTTP sink, its HEC token or webhook HMAC key, and optional Basic
/// credentials. `Debug` names the fields only.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Zeroizing<String>>,
    /// HEC token or webhook HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_user: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_password: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for SinkSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSecrets")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field(
                "basic_user",
                &self.basic_user.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "basic_password",
                &self.basic_password.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl SinkSecrets {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.token.is_none()
            && self.basic_user.is_none()
            && self.basic_password.is_none()
    }
}

/// The settings-key field a sink's sealed bytes are bound to: `credentials` (a
/// `SinkSecrets` document) for sinks added since URLs are sealed, `secret` (the raw
/// token) for older rows, which are recognised by the URL in their public config.
pub fn sink_secret_field(s: &StoredSink) -> &'static str {
    let legacy = serde_json::from_str::<serde_json::Value>(&s.config)
        .ok()
        .is_some_and(|v| v.get("url").is_some());
    if legacy { "secret" } else { "credentials" }
}

/// `host:port` or `[v6]:port` → host (without brackets) and port; a checked
/// address always has both, anything else yields port 0, which no peer listens on.
fn split_host_port(address: &str) -> (String, u16) {
    match address.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse().unwrap_or(0),
        ),
        None => (address.to_owned(), 0),
    }
}

/// Hosts an HTTP sink may reach over plain `http`: this machine only.
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ward_core::egress::canonical(ip).is_loopback())
}

/// Why a sink's settings are refused (the CLI shows it as one line). For an HTTP
/// sink the URL is `secrets.url`; it must not carry credentials or a secret-looking
/// query parameter (those are separate sealed fields), and it must be `https`
/// unless it points at this machine.
pub fn check_sink(kind: SinkKind, c: &SinkConfig, secrets: &SinkSecrets) -> Result<(), String> {
    if !(1..=10_000).contains(&c.batch_size) {
        return Err("batch size must be between 1 and 10000".into());
    }
    if c.url.is_some() {
        return Err("the URL of a sink is sealed, not part of its public settings".into());
    }
    if kind.is_syslog() {
        let a = c
            .address
            .as_deref()
            .ok_or("syslog sinks need --address host:port")?;
        let (host, port) = a.rsplit_once(':').ok_or("--address must be host:port")?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("--address must be host:port with a port from 1 to 65535".into());
        }
        if secrets.url.is_some() || c.endpoint.is_some() {
            return Err("syslog sinks take --address, not --url".into());
        }
        if !secrets.is_empty() {
            return Err(format!("{} sinks take no secret", kind.as_str()));
        }
    } else {
        let u = secrets.url.as_deref().ok_or("HTTP sinks need --url")?;
        if c.address.is_some() {
            return Err("HTTP sinks take --url, not --address".into());
        }
        let origin = Origin::of(u).map_err(|_| "--url must be an http:// or https:// URL")?;
        if let Some(why) = ward_core::egress::secret_in_url(u) {
            return Err(format!("--url {why}"));
        }
        if origin.scheme != "https" && !is_loopback_host(&origin.host) {
            return Err("--url must be https:// (plain http:// only to this machine)".into());
        }
        if c.endpoint.as_deref() != Some(origin.to_string().as_str()) {
            return Err("the sink's endpoint must be its URL's scheme, host and port".into());
        }
        if secrets.token.is_none() {
            return Err(format!(
                "{} sinks need a secret (--secret-file or --secret-stdin)",
                kind.as_str()
            ));
        }
        if secrets.basic_user.is_some() != secrets.basic_password.is_some() {
            return Err(
                "Basic credentials need both --basic-user and --basic-password-file".into(),
            );
        }
    }
    for v in [&secrets.token, &secrets.basic_user, &secrets.basic_password]
        .into_iter()
        .flatten()
    {
        if v.is_empty() || v.len() > 4096 || v.chars().any(char::is_control) {
            return Err(
                "each secret must be 1 to 4096 characters without control characters".into(),
            );
        }
    }
    if secrets
        .basic_user
        .as_deref()
        .is_some_and(|u| u.contains(':'))
    {
        return Err("--basic-user must not contain ':' (RFC 7617)".into());
    }
    if matches!(kind, SinkKind::SyslogUdp | SinkKind::SyslogTcp)
        && (c.ca_file.is_some() || c.server_name.is_some())
    {
        return Err("--ca-file and --server-name apply to TLS sinks only".into());
    }
    Ok(())
}

/// RFC 5424 message: facility 13 (log audit), severity informational (6) or
/// warning (4) for failures; MSGID the action; structured data `ward@32473` with
/// the leaf index, event id, company and outcome; MSG the event as JSON.
/// 32473 is the private enterprise number RFC 5612 reserves for documentation.
pub fn syslog_message(e: &StoredAuditEvent, leaf_index: u64, hostname: &str) -> String {
    let severity = if e.outcome == "success" { 6 } else { 4 };
    let pri = 13 * 8 + severity;
    let msgid: String = e
        .action
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let mut v = e.leaf_value();
    v["leaf_index"] = json!(leaf_index);
    format!(
        "<{pri}>1 {} {} ward - {} [ward@32473 leaf=\"{leaf_index}\" event=\"{}\" tenant=\"{}\" outcome=\"{}\"] {v}",
        e.occurred_at.to_rfc3339(),
        sd_safe_host(hostname),
        if msgid.is_empty() { "-".into() } else { msgid },
        sd_escape(e.id.as_str()),
        sd_escape(e.tenant_id.as_ref().map_or("", |t| t.as_str())),
        sd_escape(&e.outcome),
    )
}

fn sd_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(']', "\\]")
}

fn sd_safe_host(h: &str) -> String {
    let h: String = h
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() { "-".into() } else { h }
}

/// Exponential backoff with full jitter: a uniformly random delay in
/// [0, min(cap, base · 2^attempt)] (the AWS Architecture Blog's "full jitter").
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(cap);
    let fraction = f64::from(random) / f64::from(u32::MAX);
    ceiling.mul_f64(fraction).max(Duration::from_millis(50))
}

/// The HMAC-SHA256 signature header of a webhook body: `t=<ms>,v1=<hex>` over
/// `<ms>.<body>`, so a receiver can reject replays outside its tolerance.
pub fn webhook_signature(key: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp_ms},v1={hex}")
}

/// Forwarder cadence and thresholds.
#[derive(Debug, Clone, Copy)]
pub struct ForwarderSettings {
    pub interval: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A sink failing this long writes `audit.sink_failing`.
    pub alert_after: Duration,
    pub connect_timeout: Duration,
    pub lease_ttl: Duration,
}

impl Default for ForwarderSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            alert_after: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// An open connection to a sink, kept across batches.
enum Connection {
    None,
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Http(EgressHttp),
}

/// One sink's delivery state in this process.
struct SinkRunner {
    kind: SinkKind,
    config: SinkConfig,
    secrets: SinkSecrets,
    connection: Connection,
    attempt: u32,
    /// When this sink may be tried again (by the injected clock).
    next_attempt: Timestamp,
}

fn tls_client_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let path = ca_file
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CA file {} is not PEM: {e}", path.display()))?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("CA certificate in {} refused: {e}", path.display()))?;
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

impl SinkRunner {
    /// The full URL of an HTTP sink (sealed; only the request carries it).
    fn url(&self) -> Result<Zeroizing<String>, String> {
        self.secrets
            .url
            .clone()
            .ok_or_else(|| "the sink has no URL".to_owned())
    }

    /// Opens the sink's connection through the egress edge (policy checked after
    /// resolution, on the address connected to).
    async fn connect(&mut self, egress: &Egress, timeout: Duration) -> Result<(), String> {
        if !matches!(self.connection, Connection::None) {
            return Ok(());
        }
        let address = self.config.address.clone().unwrap_or_default();
        let (host, port) = split_host_port(&address);
        self.connection = match self.kind {
            SinkKind::SyslogUdp => Connection::Udp(
                egress
                    .connect_udp(&host, port)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            SinkKind::SyslogTcp => Connection::Tcp(
                egress
                    .connect_tcp(&host, port, timeout)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            SinkKind::SyslogTls => {
                let config = tls_client_config(self.config.ca_file.as_ref())?;
                let name_text = self.config.server_name.clone().unwrap_or(host.clone());
                let name = rustls::pki_types::ServerName::try_from(name_text.clone())
                    .map_err(|_| format!("{name_text:?} is not a valid TLS server name"))?;
                let tcp = egress
                    .connect_tcp(&host, port, timeout)
                    .await
                    .map_err(|e| e.to_string())?;
                let tls = tokio::time::timeout(
                    timeout,
                    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
                )
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|e| format!("TLS handshake with {address} failed: {e}"))?;
                Connection::Tls(Box::new(tls))
            }
            SinkKind::SplunkHec | SinkKind::Webhook => {
                let url = self.url()?;
                let tls = if url.starts_with("https://") {
                    Some(tls_client_config(self.config.ca_file.as_ref())?)
                } else {
                    None
                };
                let options = HttpOptions {
                    connect_timeout: timeout,
                    timeout: Duration::from_secs(30),
                    tls,
                };
                Connection::Http(
                    egress
                        .http_client(&url, options)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
        };
        Ok(())
    }

    /// Whether a stream connection's receiver has closed it (a read would return
    /// end-of-file or an error now). A receiver never sends syslog data back, so
    /// anything else means the connection is alive.
    async fn receiver_closed(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        // `timeout` polls the read once before looking at the (zero) deadline.
        let read = match &mut self.connection {
            Connection::Tcp(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await,
            Connection::Tls(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await,
            _ => return false,
        };
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    }

    /// Delivers one batch; an error leaves nothing acknowledged.
    async fn deliver(
        &mut self,
        egress: &Egress,
        batch: &[(u64, StoredAuditEvent)],
        hostname: &str,
        now: Timestamp,
        timeout: Duration,
    ) -> Result<(), String> {
        // Syslog over TCP and TLS has no acknowledgement: a write into a
        // connection the receiver already closed "succeeds" into the kernel buffer
        // and is lost. So before each batch, check that the receiver has not closed
        // its end (it sends FIN or close_notify when it stops) and reconnect if so.
        if self.receiver_closed().await {
            self.connection = Connection::None;
        }
        self.connect(egress, timeout).await?;
        let result = match &mut self.connection {
            Connection::None => Err("not connected".to_owned()),
            Connection::Udp(s) => {
                for (i, e) in batch {
                    let m = syslog_message(e, *i, hostname);
                    s.send(m.as_bytes())
                        .await
                        .map_err(|e| format!("UDP send failed: {e}"))?;
                }
                Ok(())
            }
            Connection::Tcp(_) | Connection::Tls(_) => {
                let mut frames = Vec::new();
                for (i, e) in batch {
                    let m = syslog_message(e, *i, hostname);
                    frames.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
                }
                let write = async {
                    match &mut self.connection {
                        Connection::Tcp(s) => {
                            s.write_all(&frames).await?;
                            s.flush().await
                        }
                        Connection::Tls(s) => {
                            s.write_all(&frames).await?;
                            s.flush().await
                        }
                        _ => Ok(()),
                    }
                };
                tokio::time::timeout(timeout, write)
                    .await
                    .map_err(|_| "write timed out".to_owned())?
                    .map_err(|e| format!("write failed: {e}"))
            }
            Connection::Http(client) => {
                let url = self.secrets.url.clone().unwrap_or_default();
                let secret = self
                    .secrets
                    .token
                    .as_ref()
                    .map(|s| s.as_bytes())
                    .unwrap_or_default();
                let post = |client: &EgressHttp| {
                    let mut r = client
                        .request(reqwest::Method::POST, &url)
                        .map_err(|e| e.to_string())?;
                    if let (Some(u), Some(p)) =
                        (&self.secrets.basic_user, &self.secrets.basic_password)
                    {
                        r = r.basic_auth(u.as_str(), Some(p.as_str()));
                    }
                    Ok::<_, String>(r)
                };
                let request = match self.kind {
                    SinkKind::SplunkHec => {
                        // HEC takes concatenated event objects in one body.
                        let mut body = String::new();
                        for (i, e) in batch {
                            let mut v = e.leaf_value();
                            v["leaf_index"] = json!(i);
                            body.push_str(
                                &json!({
                                    "time": e.occurred_at.millis() as f64 / 1000.0,
                                    "host": hostname,
                                    "source": "ward",
                                    "sourcetype": "ward:audit",
                                    "event": v,
                                })
                                .to_string(),
                            );
                        }
                        post(client)?
                            .header(
                                "authorization",
                                format!("Splunk {}", String::from_utf8_lossy(secret)),
                            )
                            .header("content-type", "application/json")
                            .body(body)
                    }
                    _ => {
                        let events: Vec<_> = batch
                            .iter()
                            .map(|(i, e)| {
                                let mut v = e.leaf_value();
                                v["leaf_index"] = json!(i);
                                v
                            })
                            .collect();
                        let body = json!({
                            "first_leaf_index": batch.first().map(|(i, _)| i),
                            "events": events,
                        })
                        .to_string();
                        post(client)?
                            .header("content-type", "application/json")
                            .header(
                                "x-ward-signature",
                                webhook_signature(secret, now.millis(), body.as_bytes()),
                            )
                            .body(body)
                    }
                };
                match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!(
                        "the receiver answered HTTP {}",
                        r.status().as_u16()
                    )),
                    // reqwest's error text names the URL, never the headers.
                    Err(e) => Err(format!("HTTP delivery failed: {}", e.without_url())),
                }
            }
        };
        if result.is_err() {
            // Reconnect next time: a half-written frame must not be continued.
            self.connection = Connection::None;
        }
        result
    }
}

fn system_event(
    rng: &dyn SecureRandom,
    now: Timestamp,
    action: &'static str,
) -> Option<AuditEvent> {
    let mut id = [0u8; 16];
    rng.fill(&mut id).ok()?;
    Some(AuditEvent::new(
        EventId::from_random(id),
        now,
        None,
        Actor::system("ward"),
        RequestContext {
            ip: "local".into(),
            user_agent: "ward-forwarder".into(),
            request_id: String::new(),
        },
        action,
    ))
}

/// Keys the forwarder needs to open sink secrets.
pub struct ForwarderKeys {
    pub settings: SettingsKey,
    pub master_version: u32,
    /// During a master-secret rotation: the previous secret's key and version.
    pub previous: Option<(SettingsKey, u32)>,
}

impl ForwarderKeys {
    pub fn for_version(&self, v: u32) -> Option<&SettingsKey> {
        if v == self.master_version {
            return Some(&self.settings);
        }
        self.previous
            .as_ref()
            .filter(|(_, pv)| *pv == v)
            .map(|(k, _)| k)
    }
}

/// The settings-key context of a sink's sealed bytes.
pub fn sink_secret_context(s: &StoredSink, master_version: u32) -> SettingsContext<'_> {
    SettingsContext {
        owner_kind: "audit_sink",
        owner_id: &s.id,
        field: sink_secret_field(s),
        master_version,
    }
}

/// Opens a sink's sealed secrets (also used by `ward keys verify`). An older row's
/// raw token and plaintext URL come back in the same shape.
pub fn open_sink_secrets(
    keys: &ForwarderKeys,
    s: &StoredSink,
) -> Result<Option<SinkSecrets>, String> {
    let legacy_url = || {
        serde_json::from_str::<SinkConfig>(&s.config)
            .ok()
            .and_then(|c| c.url)
            .map(Zeroizing::new)
    };
    let (sealed, v) = match (&s.secret, s.secret_master_version) {
        (None, _) => {
            return Ok(legacy_url().map(|url| SinkSecrets {
                url: Some(url),
                ..Default::default()
            }));
        }
        (Some(sealed), Some(v)) => (sealed, v),
        (Some(_), None) => {
            return Err(format!(
                "the secret of sink {} has no master version",
                s.name
            ));
        }
    };
    let plain = keys
        .for_version(v)
        .ok_or_else(|| {
            format!(
                "the secret of sink {} is sealed under master version {v}, which is not configured",
                s.name
            )
        })?
        .open(sealed, sink_secret_context(s, v))
        .map_err(|_| {
            format!(
                "the secret of sink {} does not open under this master secret",
                s.name
            )
        })?;
    let unreadable = || format!("the sealed secret of sink {} is not readable", s.name);
    if sink_secret_field(s) == "secret" {
        let token = String::from_utf8(plain.to_vec()).map_err(|_| unreadable())?;
        return Ok(Some(SinkSecrets {
            url: legacy_url(),
            token: Some(Zeroizing::new(token)),
            ..Default::default()
        }));
    }
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|_| unreadable())
}

/// Audit forwarding as a job of `ward serve`: one forwarder across instances
/// (lease `audit-forwarder`), keeping each sink's connection between passes.
pub struct ForwarderJob {
    store: Store,
    keys: Arc<ForwarderKeys>,
    egress: Egress,
    clock: Arc<dyn crate::Clock>,
    rng: Arc<dyn SecureRandom>,
    settings: ForwarderSettings,
    holder: String,
    hostname: String,
    runners: HashMap<String, (String, SinkRunner)>,
}

impl ForwarderJob {
    /// `holder` is the runner's instance name: delivery renews the lease under it.
    pub fn new(
        store: Store,
        keys: Arc<ForwarderKeys>,
        egress: Egress,
        clock: Arc<dyn crate::Clock>,
        rng: Arc<dyn SecureRandom>,
        settings: ForwarderSettings,
        holder: String,
    ) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "ward".to_owned());
        Self {
            store,
            keys,
            egress,
            clock,
            rng,
            settings,
            holder,
            hostname,
            runners: HashMap::new(),
        }
    }
}

impl crate::Job for ForwarderJob {
    fn name(&self) -> &'static str {
        LEASE_NAME
    }

    fn schedule(&self) -> crate::Schedule {
        crate::Schedule {
            interval: self.settings.interval,
            lease_ttl: self.settings.lease_ttl,
        }
    }

    async fn pass(&mut self, _now: Timestamp) -> Result<crate::Outcome, crate::JobError> {
        let pass = Pass {
            store: &self.store,
            keys: &self.keys,
            egress: &self.egress,
            clock: &*self.clock,
            rng: &*self.rng,
            settings: &self.settings,
            hostname: &self.hostname,
            holder: &self.holder,
        };
        forward_once(&pass, &mut self.runners).await?;
        Ok(crate::Outcome::Idle)
    }

    fn lease_lost(&mut self) {
        // Another instance delivers now; our connections and backoffs are stale.
        self.runners.clear();
    }
}

/// One pass over every sink: deliver what each has not acknowledged, as far as the
/// tree goes, stopping a sink at its first failure.
/// What one forwarding pass works with.
struct Pass<'a> {
    store: &'a Store,
    keys: &'a ForwarderKeys,
    egress: &'a Egress,
    clock: &'a dyn crate::Clock,
    rng: &'a dyn SecureRandom,
    settings: &'a ForwarderSettings,
    hostname: &'a str,
    /// This instance's lease holder id, renewed after every delivered batch.
    holder: &'a str,
}

async fn forward_once(
    pass: &Pass<'_>,
    runners: &mut HashMap<String, (String, SinkRunner)>,
) -> Result<(), StoreError> {
    let Pass {
        store,
        keys,
        egress,
        clock,
        rng,
        settings,
        hostname,
        holder,
    } = *pass;
    let sinks = store.list_audit_sinks().await?;
    runners.retain(|id, _| sinks.iter().any(|s| &s.id == id));
    let size = store.audit_tree_size().await?;
    for sink in sinks {
        metrics::gauge!("ward_audit_sink_lag", "sink" => sink.name.clone())
            .set(size.saturating_sub(sink.delivered_size) as f64);
        // A changed configuration (remove + add under one name gets a new id)
        // means a new runner; the fingerprint catches edits in place too.
        let fingerprint = format!("{}|{}", sink.kind, sink.config);
        let fresh = runners.get(&sink.id).is_none_or(|(f, _)| *f != fingerprint);
        if fresh {
            let runner = match build_runner(keys, &sink) {
                Ok(r) => r,
                Err(e) => {
                    store.audit_sink_failed(&sink.id, clock.now(), &e).await?;
                    continue;
                }
            };
            runners.insert(sink.id.clone(), (fingerprint, runner));
        }
        let (_, runner) = runners.get_mut(&sink.id).expect("inserted above");
        if clock.now() < runner.next_attempt {
            continue;
        }
        let mut delivered = sink.delivered_size;
        let mut failing_since = sink.failing_since;
        while delivered < size {
            let end = (delivered + u64::from(runner.config.batch_size)).min(size);
            let records = store.audit_leaf_records(delivered, end).await?;
            let batch: Vec<(u64, StoredAuditEvent)> = records
                .into_iter()
                .filter_map(|r| r.event.map(|e| (r.index, e)))
                .collect();
            let now = clock.now();
            match runner
                .deliver(egress, &batch, hostname, now, settings.connect_timeout)
                .await
            {
                Ok(()) => {
                    // Recovery is an event only after an alert: a brief failure
                    // that never alerted is not news, and a flapping sink must not
                    // flood the log.
                    let recovered = match failing_since.filter(|_| sink.alerted) {
                        Some(since) => {
                            system_event(rng, now, actions::AUDIT_SINK_RECOVERED).map(|e| {
                                e.target("audit_sink", sink.id.clone()).details(json!({
                                    "sink": sink.name,
                                    "failed_for_seconds": now.seconds_since(since),
                                }))
                            })
                        }
                        None => None,
                    };
                    if !store
                        .advance_audit_sink(&sink.id, delivered, end, recovered.as_ref())
                        .await?
                    {
                        // Another forwarder moved the cursor; start over next pass.
                        break;
                    }
                    metrics::counter!("ward_audit_sink_delivered_total", "sink" => sink.name.clone())
                        .increment(end - delivered);
                    delivered = end;
                    failing_since = None;
                    runner.attempt = 0;
                    // Keep the lease for as long as this pass runs; if another
                    // instance took it (this one stalled), stop delivering.
                    let now = clock.now();
                    let ttl = i64::try_from(settings.lease_ttl.as_secs()).unwrap_or(5);
                    if !store
                        .acquire_lease(LEASE_NAME, holder, now, now.plus_seconds(ttl))
                        .await?
                    {
                        return Ok(());
                    }
                }
                Err(e) => {
                    metrics::counter!("ward_audit_sink_failures_total", "sink" => sink.name.clone())
                        .increment(1);
                    tracing::warn!(sink = %sink.name, error = %e, "audit sink delivery failed");
                    store.audit_sink_failed(&sink.id, now, &e).await?;
                    let since = failing_since.unwrap_or(now);
                    let failing_for = now.seconds_since(since);
                    if !sink.alerted
                        && failing_for
                            >= i64::try_from(settings.alert_after.as_secs()).unwrap_or(300)
                        && let Some(alert) = system_event(rng, now, actions::AUDIT_SINK_FAILING)
                    {
                        let alert = alert
                            .failed()
                            .target("audit_sink", sink.id.clone())
                            .details(json!({
                                "sink": sink.name,
                                "since": since.to_rfc3339(),
                                "error": e,
                                "lag": size - delivered,
                            }));
                        store.audit_sink_alert(&sink.id, &alert).await?;
                    }
                    let mut r = [0u8; 4];
                    let _ = rng.fill(&mut r);
                    let wait = backoff(
                        runner.attempt,
                        settings.backoff_base,
                        settings.backoff_cap,
                        u32::from_be_bytes(r),
                    );
                    runner.next_attempt = clock.now().plus_millis(crate::runner::millis(wait));
                    runner.attempt = runner.attempt.saturating_add(1);
                    break;
                }
            }
        }
    }
    Ok(())
}

fn build_runner(keys: &ForwarderKeys, sink: &StoredSink) -> Result<SinkRunner, String> {
    let kind =
        SinkKind::parse(&sink.kind).ok_or_else(|| format!("unknown sink kind {}", sink.kind))?;
    let config: SinkConfig =
        serde_json::from_str(&sink.config).map_err(|e| format!("sink configuration: {e}"))?;
    Ok(SinkRunner {
        kind,
        config,
        secrets: open_sink_secrets(keys, sink)?.unwrap_or_default(),
        connection: Connection::None,
        attempt: 0,
        next_attempt: Timestamp::from_millis(i64::MIN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_core::audit::{ActorKind, StoredAuditEvent};
    use ward_core::{EventId, TenantId};

    fn event() -> StoredAuditEvent {
        StoredAuditEvent {
            seq: 1,
            leaf_index: Some(7),
            id: EventId::from_stored("evt-1".into()),
            occurred_at: Timestamp::from_millis(1_790_000_000_000),
            tenant_id: Some(TenantId::from_stored("ten\"]1".into())),
            actor: Actor {
                kind: ActorKind::User,
                id: Some("u".into()),
                label: "a@b".into(),
            },
            context: RequestContext {
                ip: "192.0.2.1".into(),
                user_agent: "x".into(),
                request_id: "r".into(),
            },
            action: "auth.login_failed".into(),
            target_kind: None,
            target_id: None,
            outcome: "failure".into(),
            details: json!({}),
        }
    }

    #[test]
    fn syslog_messages_follow_rfc_5424() {
        let m = syslog_message(&event(), 7, "host one");
        // PRI: facility 13 × 8 + severity 4 (failure).
        assert!(m.starts_with("<108>1 2026-09-21T"), "{m}");
        assert!(m.contains(" hostone ward - auth.login_failed [ward@32473 leaf=\"7\" event=\"evt-1\" tenant=\"ten\\\"\\]1\" outcome=\"failure\"] {"));
        assert!(m.ends_with('}'));
        assert!(!m.contains('\n'));
    }

    #[test]
    fn backoff_grows_to_its_cap_with_full_jitter() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(0, base, cap, u32::MAX), base);
        assert_eq!(backoff(3, base, cap, u32::MAX), Duration::from_secs(4));
        assert_eq!(backoff(30, base, cap, u32::MAX), cap);
        assert_eq!(backoff(30, base, cap, 0), Duration::from_millis(50));
        let mid = backoff(4, base, cap, u32::MAX / 2);
        assert!(mid > Duration::from_millis(3900) && mid < Duration::from_millis(4100));
    }

    #[test]
    fn webhook_signatures_are_hmac_sha256_over_time_and_body() {
        // Expected value from Python's hmac module over b"0.what do ya want for nothing?".
        let sig = webhook_signature(b"Jefe", 0, b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
        // Different body, different tag.
        assert_ne!(
            sig,
            webhook_signature(b"Jefe", 0, b"what do ya want for something?")
        );
    }

    #[test]
    fn sink_settings_are_checked() {
        // `check(kind, address, url, token)`: `Ok` or the refusal.
        let check = |kind: SinkKind, address: Option<&str>, url: Option<&str>, token: bool| {
            let endpoint = url.and_then(|u| Origin::of(u).ok()).map(|o| o.to_string());
            let c = SinkConfig {
                address: address.map(str::to_owned),
                endpoint,
                url: None,
                ca_file: None,
                server_name: None,
                batch_size: 100,
            };
            let secrets = SinkSecrets {
                url: url.map(|u| Zeroizing::new(u.to_owned())),
                token: token.then(|| Zeroizing::new("t0ken".to_owned())),
                ..Default::default()
            };
            check_sink(kind, &c, &secrets)
        };
        use SinkKind::*;
        assert!(check(SyslogTcp, Some("127.0.0.1:514"), None, false).is_ok());
        assert!(check(SyslogTcp, Some("127.0.0.1"), None, false).is_err());
        assert!(check(SyslogTcp, Some("h:0"), None, false).is_err());
        assert!(check(SyslogTcp, None, Some("http://x"), false).is_err());
        assert!(check(Webhook, None, Some("https://siem.example/hook"), true).is_ok());
        assert!(check(Webhook, None, Some("https://siem.example/hook"), false).is_err());
        assert!(check(SplunkHec, None, Some("ftp://x.example"), true).is_err());
        assert!(check(SyslogUdp, Some("h:514"), None, true).is_err());
        // Plain http only to this machine.
        assert!(check(Webhook, None, Some("http://127.0.0.1:9/hook"), true).is_ok());
        assert!(check(Webhook, None, Some("http://localhost:9/hook"), true).is_ok());
        assert!(check(Webhook, None, Some("http://[::1]:9/hook"), true).is_ok());
        let e = check(Webhook, None, Some("http://siem.example/hook"), true).expect_err("http");
        assert!(e.contains("https"), "{e}");
        // Credentials and secret-looking parameters are refused, never echoed.
        let e = check(
            Webhook,
            None,
            Some("https://admin:S3cretPw@siem.example/"),
            true,
        )
        .expect_err("userinfo");
        assert!(e.contains("credentials") && !e.contains("S3cretPw"), "{e}");
        let e = check(
            SplunkHec,
            None,
            Some("https://siem.example/?token=S3cret"),
            true,
        )
        .expect_err("query");
        assert!(!e.contains("S3cret"), "{e}");
    }

    #[test]
    fn secrets_debug_redacted() {
        let s = SinkSecrets {
            url: Some(Zeroizing::new("https://h/hooks/T0/S3cret".to_owned())),
            token: Some(Zeroizing::new("tok3n".to_owned())),
            ..Default::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("S3cret") && !d.contains("tok3n"), "{d}");
    }
}
