//! Configuration: one typed `Settings`, loaded from defaults, then a TOML file
//! (`--config`, or `ward.toml` if present), then `WARD_*` environment variables
//! (`__` separates sections: `WARD_SESSION__IDLE_TIMEOUT_MINUTES`), then command-line
//! flags. Unknown keys and invalid values are errors that name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize, Serializer};
use ward_core::session::SessionPolicy;
use ward_crypto::{MasterSecret, PasswordHashParams};
use ward_server::{
    LoginThrottleSettings, RateLimitSettings, ServerSettings, TlsFiles, WebAuthnSettings,
};

/// A configuration value that is a secret: `Debug` and serialisation redact it.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the SQLite database and a generated master key live.
    pub data_dir: PathBuf,
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...`; default `sqlite://<data_dir>/ward.db`.
    pub database_url: Option<SecretString>,
    /// Base64 of at least 32 random bytes.
    pub master_secret: Option<SecretString>,
    /// A file holding the base64 master secret.
    pub master_secret_file: Option<PathBuf>,
    /// During a master-secret rotation: the secret being replaced (base64).
    pub previous_master_secret: Option<SecretString>,
    /// During a master-secret rotation: a file holding the secret being replaced.
    pub previous_master_secret_file: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter, e.g. `info` or `ward=debug,info`.
    pub log_level: String,
    pub trusted_origins: Vec<String>,
    pub trusted_proxies: Vec<String>,
    /// TLS ends at a reverse proxy: mark cookies Secure and send HSTS anyway.
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub database_max_connections: u32,
    pub session: SessionSection,
    pub tls: TlsSection,
    pub rate_limit: RateLimitSection,
    pub login_throttle: LoginThrottleSection,
    pub password_hashing: PasswordHashingSection,
    pub key_maintenance: KeyMaintenanceSection,
    pub audit: AuditSection,
    /// Where browsers reach Ward (`https://ward.example.com`); default
    /// `http://localhost:<listen port>` (`https` with `[tls]`). Passkeys are bound
    /// to its host.
    pub public_url: Option<String>,
    pub passkeys: PasskeysSection,
    pub egress: EgressSection,
    pub metrics: MetricsSection,
    pub dns: DnsSection,
}

/// Where email-domain verification looks TXT records up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// A DNS server as `ip:port` (e.g. `10.0.0.53:53`); default: the system's
    /// resolvers (`/etc/resolv.conf`).
    pub resolver: Option<std::net::SocketAddr>,
}

/// Where outbound connections may go. Loopback, private, link-local, unique-local
/// and cloud-metadata addresses are refused unless listed here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSection {
    /// Networks (`10.1.2.0/24`, `127.0.0.1`), `address:port` and `host:port`
    /// (`siem.internal:8089`) Ward may connect to although they are internal.
    pub allow: Vec<String>,
}

/// Who reads `/metrics`. The metrics are the whole instance's and carry every
/// company's ids, so they are never public.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// A second address serving only `GET /metrics`, without a token, in plain
    /// HTTP (`127.0.0.1:9464`). Firewall it so that only Prometheus reaches it.
    pub listen: Option<String>,
    /// A file holding the bearer token of the `metrics` scope, which the main
    /// listener's `GET /metrics` requires (at least 32 characters; generate it
    /// with `openssl rand -hex 32`). Unset: the main listener refuses everyone.
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeysSection {
    /// WebAuthn relying-party id; default the host of `public_url`. A passkey
    /// works only for the RP id it was registered with: set it once.
    pub rp_id: Option<String>,
    /// More origins allowed to use passkeys, besides `public_url`.
    pub extra_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Milliseconds between sequencer passes: the most an event waits to become a
    /// Merkle leaf (plus the pass itself).
    pub sequencer_interval_ms: u64,
    /// Seconds between signed checkpoints (when the tree has grown).
    pub checkpoint_interval_seconds: u64,
    /// A forwarding sink failing this long writes an `audit.sink_failing` alert event.
    pub sink_alert_after_seconds: u64,
    /// Longest pause between retries of a failing sink (backoff cap).
    pub sink_max_backoff_seconds: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        let d = ward_jobs::audit_log::SequencerSettings::default();
        let f = ward_jobs::forwarding::ForwarderSettings::default();
        Self {
            sequencer_interval_ms: d.interval.as_millis() as u64,
            checkpoint_interval_seconds: d.checkpoint_interval.as_secs(),
            sink_alert_after_seconds: f.alert_after.as_secs(),
            sink_max_backoff_seconds: f.backoff_cap.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyMaintenanceSection {
    /// Ciphertexts re-encrypted per batch.
    pub batch_size: u32,
    /// Throttle: most ciphertexts re-encrypted per second (0 = unthrottled).
    pub max_rows_per_second: u32,
    /// Seconds between passes.
    pub interval_seconds: u64,
}

impl Default for KeyMaintenanceSection {
    fn default() -> Self {
        let d = ward_jobs::key_maintenance::ReencryptSettings::default();
        Self {
            batch_size: d.batch_size,
            max_rows_per_second: d.max_rows_per_second,
            interval_seconds: d.idle_interval.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    pub idle_timeout_minutes: i64,
    pub absolute_timeout_hours: i64,
    /// Sensitive actions (key rotation, role changes, SSO and MFA settings) need a
    /// sign-in or re-authentication within this many minutes.
    pub reauth_window_minutes: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// 0 turns the general limit off.
    pub requests_per_second: u32,
    pub burst: u32,
    /// 0 turns the sign-in attempt limit off.
    pub login_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginThrottleSection {
    /// Wrong passwords from one source on one account before delays (1 s, 2 s,
    /// 4 s…) start.
    pub free_failures_per_source: u32,
    /// The former key, which locked the account for everyone after this many
    /// failures; still read, as `free_failures_per_source` (a separate field
    /// rather than a serde alias, because the defaults layer already names the
    /// new key and an alias would make the two a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failures_per_account: Option<u32>,
    /// The longest delay between two attempts from one source on one account.
    pub max_delay_seconds: i64,
    /// Consecutive wrong passwords from all sources that lock an account's
    /// password sign-in (NIST SP 800-63B §5.2.2: at most 100).
    pub account_lock_failures: u32,
    pub account_lock_minutes: i64,
    pub max_failures_per_ip: u32,
    pub window_minutes: i64,
}

impl LoginThrottleSection {
    /// The free failures per source, from the former key when a file still uses it.
    pub fn free_failures(&self) -> u32 {
        self.max_failures_per_account
            .unwrap_or(self.free_failures_per_source)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashingSection {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once; memory use peaks at concurrency × memory_kib.
    pub concurrency: usize,
    /// Accept parameters below the OWASP minimum. Tests and benchmarks only.
    pub danger_allow_weak: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("ward-data"),
            listen: "127.0.0.1:8080".to_owned(),
            database_url: None,
            master_secret: None,
            master_secret_file: None,
            previous_master_secret: None,
            previous_master_secret_file: None,
            log_format: "text".to_owned(),
            log_level: "info".to_owned(),
            trusted_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
            max_body_bytes: 1024 * 1024,
            database_max_connections: 16,
            session: SessionSection::default(),
            tls: TlsSection::default(),
            rate_limit: RateLimitSection::default(),
            login_throttle: LoginThrottleSection::default(),
            password_hashing: PasswordHashingSection::default(),
            key_maintenance: KeyMaintenanceSection::default(),
            audit: AuditSection::default(),
            public_url: None,
            passkeys: PasskeysSection::default(),
            egress: EgressSection::default(),
            metrics: MetricsSection::default(),
            dns: DnsSection::default(),
        }
    }
}

impl Default for SessionSection {
    fn default() -> Self {
        let p = SessionPolicy::default();
        Self {
            idle_timeout_minutes: p.idle_timeout_secs / 60,
            absolute_timeout_hours: p.absolute_timeout_secs / 3600,
            reauth_window_minutes: ward_core::mfa::ReauthWindow::default().secs / 60,
        }
    }
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let r = RateLimitSettings::default();
        Self {
            requests_per_second: r.requests_per_second,
            burst: r.burst,
            login_per_minute: r.login_per_minute,
        }
    }
}

impl Default for LoginThrottleSection {
    fn default() -> Self {
        let l = LoginThrottleSettings::default();
        Self {
            free_failures_per_source: l.free_failures_per_source,
            max_failures_per_account: None,
            max_delay_seconds: l.max_delay_secs,
            account_lock_failures: l.account_lock_failures,
            account_lock_minutes: l.account_lock_secs / 60,
            max_failures_per_ip: l.max_failures_per_ip,
            window_minutes: l.window_secs / 60,
        }
    }
}

impl Default for PasswordHashingSection {
    fn default() -> Self {
        let p = PasswordHashParams::RECOMMENDED;
        Self {
            memory_kib: p.memory_kib,
            iterations: p.iterations,
            parallelism: p.parallelism,
            // 4 × 64 MiB = 256 MiB at most in hashing, on any login storm.
            concurrency: 4,
            danger_allow_weak: false,
        }
    }
}

/// Command-line overrides, applied last.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads and validates. `config` is an explicit file (must exist); without one,
    /// `ward.toml` in the working directory is read if present.
    pub fn load(config: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match config {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                fig = fig.merge(Toml::file_exact(path));
            }
            None if Path::new("ward.toml").is_file() => {
                fig = fig.merge(Toml::file_exact("ward.toml"))
            }
            None => {}
        }
        fig = fig
            .merge(Env::prefixed("WARD_").split("__"))
            .merge(Serialized::defaults(overrides));
        let settings: Settings = fig
            .extract()
            .map_err(|e| anyhow!(describe_figment_error(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        self.listen_addr()?;
        match self.log_format.as_str() {
            "text" | "json" => {}
            _ => bail!("log_format: must be \"text\" or \"json\""),
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| anyhow!("log_level: not a valid filter: {e}"))?;
        self.proxies()?;
        self.egress_policy()?;
        for o in &self.trusted_origins {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && o.split_once("://")
                    .is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains('/'));
            if !ok {
                bail!("trusted_origins: {o:?} must be scheme://host[:port] with no path");
            }
        }
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                bail!("database_url: must start with sqlite:// or postgres://");
            }
        }
        if self.master_secret.is_some() && self.master_secret_file.is_some() {
            bail!("master_secret and master_secret_file: set one, not both");
        }
        if self.previous_master_secret.is_some() && self.previous_master_secret_file.is_some() {
            bail!("previous_master_secret and previous_master_secret_file: set one, not both");
        }
        if let Some(s) = &self.previous_master_secret {
            MasterSecret::from_base64(s.expose()).map_err(|_| {
                anyhow!("previous_master_secret: must be base64 of at least 32 bytes")
            })?;
        }
        if let Some(s) = &self.master_secret {
            MasterSecret::from_base64(s.expose())
                .map_err(|_| anyhow!("master_secret: must be base64 of at least 32 bytes"))?;
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            bail!("max_body_bytes: must be between 1024 and 67108864");
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            bail!("database_max_connections: must be between 1 and 1000");
        }
        let s = &self.session;
        if s.idle_timeout_minutes < 1 {
            bail!("session.idle_timeout_minutes: must be at least 1");
        }
        if s.absolute_timeout_hours < 1 || s.absolute_timeout_hours > 24 * 30 {
            bail!("session.absolute_timeout_hours: must be between 1 and 720");
        }
        if s.idle_timeout_minutes > s.absolute_timeout_hours * 60 {
            bail!("session.idle_timeout_minutes: must not exceed the absolute timeout");
        }
        match (&self.tls.cert, &self.tls.key) {
            (None, None) => {}
            (Some(c), Some(k)) => {
                for (name, p) in [("tls.cert", c), ("tls.key", k)] {
                    if !p.is_file() {
                        bail!("{name}: {} is not a readable file", p.display());
                    }
                }
            }
            _ => bail!("tls.cert and tls.key: set both or neither"),
        }
        let l = &self.login_throttle;
        if l.free_failures() == 0 || l.max_failures_per_ip == 0 || l.window_minutes < 1 {
            bail!("login_throttle: failures must be at least 1 and window_minutes at least 1");
        }
        if !(1..=86_400).contains(&l.max_delay_seconds) {
            bail!("login_throttle.max_delay_seconds: must be between 1 and 86400");
        }
        if !(1..=100).contains(&l.account_lock_failures) {
            bail!(
                "login_throttle.account_lock_failures: must be between 1 and 100 \
                 (NIST SP 800-63B §5.2.2 allows at most 100)"
            );
        }
        if !(1..=7 * 24 * 60).contains(&l.account_lock_minutes) {
            bail!("login_throttle.account_lock_minutes: must be between 1 and 10080");
        }
        self.metrics_listen_addr()?;
        self.metrics_token()?;
        let km = &self.key_maintenance;
        if !(1..=10_000).contains(&km.batch_size) {
            bail!("key_maintenance.batch_size: must be between 1 and 10000");
        }
        if !(1..=86_400).contains(&km.interval_seconds) {
            bail!("key_maintenance.interval_seconds: must be between 1 and 86400");
        }
        if !(10..=60_000).contains(&self.audit.sequencer_interval_ms) {
            bail!("audit.sequencer_interval_ms: must be between 10 and 60000");
        }
        if !(1..=86_400).contains(&self.audit.checkpoint_interval_seconds) {
            bail!("audit.checkpoint_interval_seconds: must be between 1 and 86400");
        }
        if !(1..=86_400).contains(&self.audit.sink_alert_after_seconds) {
            bail!("audit.sink_alert_after_seconds: must be between 1 and 86400");
        }
        if !(1..=3_600).contains(&self.audit.sink_max_backoff_seconds) {
            bail!("audit.sink_max_backoff_seconds: must be between 1 and 3600");
        }
        let ph = &self.password_hashing;
        self.password_params()?;
        if !(1..=64).contains(&ph.concurrency) {
            bail!("password_hashing.concurrency: must be between 1 and 64");
        }
        Ok(())
    }

    /// The metrics-only listener's address, if one is configured.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>> {
        self.metrics
            .listen
            .as_deref()
            .map(|l| {
                l.parse().map_err(|_| {
                    anyhow!("metrics.listen: {l:?} is not an address like 127.0.0.1:9464")
                })
            })
            .transpose()
    }

    /// The metrics token read from `metrics.token_file`. The file's content is
    /// never echoed in an error.
    fn metrics_token(&self) -> Result<Option<ward_server::metrics::MetricsToken>> {
        let Some(path) = &self.metrics.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("metrics.token_file: cannot read {}", path.display()))?;
        let token = ward_server::metrics::MetricsToken::from_secret(&text).ok_or_else(|| {
            anyhow!(
                "metrics.token_file: the token in {} is shorter than {} characters",
                path.display(),
                ward_server::metrics::MetricsToken::MIN_LEN
            )
        })?;
        Ok(Some(token))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            anyhow!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )
        })
    }

    pub fn proxies(&self) -> Result<Vec<IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| anyhow!("trusted_proxies: {p:?} is not an IP address or CIDR"))
            })
            .collect()
    }

    pub fn egress_policy(&self) -> Result<ward_core::egress::EgressPolicy> {
        ward_core::egress::EgressPolicy::with_allow_list(&self.egress.allow)
            .map_err(|e| anyhow!("egress.allow: {e}"))
    }

    pub fn password_params(&self) -> Result<PasswordHashParams> {
        let ph = &self.password_hashing;
        let p = PasswordHashParams {
            memory_kib: ph.memory_kib,
            iterations: ph.iterations,
            parallelism: ph.parallelism,
        };
        if !(1..=16).contains(&ph.parallelism) {
            bail!("password_hashing.parallelism: must be between 1 and 16");
        }
        if ph.memory_kib < 8 * ph.parallelism || ph.memory_kib > 4 * 1024 * 1024 {
            bail!("password_hashing.memory_kib: must be between 8 × parallelism and 4194304");
        }
        if ph.iterations < 1 || ph.iterations > 100 {
            bail!("password_hashing.iterations: must be between 1 and 100");
        }
        if !p.meets_owasp_minimum() && !ph.danger_allow_weak {
            bail!(
                "password_hashing: below the OWASP minimum (memory_kib >= 19456, iterations >= 2); \
                 set password_hashing.danger_allow_weak = true only for tests"
            );
        }
        Ok(p)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("ward.db").display()),
        }
    }

    /// Where browsers reach Ward.
    pub fn public_url(&self) -> Result<String> {
        let url = match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://localhost:{}", self.listen_addr()?.port())
            }
        };
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !url[url.find("://").map_or(0, |i| i + 3)..].contains('/');
        if !ok {
            bail!("public_url: {url:?} must be scheme://host[:port], with no path");
        }
        Ok(url)
    }

    pub fn web_authn(&self) -> Result<WebAuthnSettings> {
        let public = self.public_url()?;
        let host = public
            .split("://")
            .nth(1)
            .and_then(|h| h.rsplit_once(':').map_or(Some(h), |(host, _)| Some(host)))
            .unwrap_or_default()
            .to_owned();
        let mut origins = vec![public];
        origins.extend(self.passkeys.extra_origins.iter().cloned());
        let w = WebAuthnSettings {
            rp_id: self.passkeys.rp_id.clone().unwrap_or(host),
            rp_name: "Ward".to_owned(),
            origins,
        };
        w.build().map_err(|e| anyhow!("passkeys: {e}"))?;
        Ok(w)
    }

    pub fn server_settings(&self) -> Result<ServerSettings> {
        if !(1..=24 * 60).contains(&self.session.reauth_window_minutes) {
            bail!("session.reauth_window_minutes: must be between 1 and 1440");
        }
        Ok(ServerSettings {
            public_url: self.public_url()?,
            web_authn: self.web_authn()?,
            reauth: ward_core::mfa::ReauthWindow {
                secs: self.session.reauth_window_minutes * 60,
            },
            trusted_origins: self.trusted_origins.clone(),
            trusted_proxies: self.proxies()?,
            egress: self.egress_policy()?,
            dns_resolver: self.dns.resolver,
            metrics_token: self.metrics_token()?,
            session: SessionPolicy {
                idle_timeout_secs: self.session.idle_timeout_minutes * 60,
                absolute_timeout_secs: self.session.absolute_timeout_hours * 3600,
            },
            max_body_bytes: self.max_body_bytes,
            secure_cookies: self.secure_cookies,
            rate_limit: RateLimitSettings {
                requests_per_second: self.rate_limit.requests_per_second,
                burst: self.rate_limit.burst,
                login_per_minute: self.rate_limit.login_per_minute,
            },
            login_throttle: LoginThrottleSettings {
                free_failures_per_source: self.login_throttle.free_failures(),
                max_delay_secs: self.login_throttle.max_delay_seconds,
                account_lock_failures: self.login_throttle.account_lock_failures,
                account_lock_secs: self.login_throttle.account_lock_minutes * 60,
                max_failures_per_ip: self.login_throttle.max_failures_per_ip,
                window_secs: self.login_throttle.window_minutes * 60,
            },
            password_hash_concurrency: self.password_hashing.concurrency,
            tls: match (&self.tls.cert, &self.tls.key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            key_maintenance: ward_jobs::key_maintenance::ReencryptSettings {
                batch_size: self.key_maintenance.batch_size,
                max_rows_per_second: self.key_maintenance.max_rows_per_second,
                idle_interval: std::time::Duration::from_secs(
                    self.key_maintenance.interval_seconds,
                ),
                ..Default::default()
            },
            audit_sequencer: ward_jobs::audit_log::SequencerSettings {
                interval: std::time::Duration::from_millis(self.audit.sequencer_interval_ms),
                checkpoint_interval: std::time::Duration::from_secs(
                    self.audit.checkpoint_interval_seconds,
                ),
                ..Default::default()
            },
            audit_forwarding: ward_jobs::forwarding::ForwarderSettings {
                alert_after: std::time::Duration::from_secs(self.audit.sink_alert_after_seconds),
                backoff_cap: std::time::Duration::from_secs(self.audit.sink_max_backoff_seconds),
                ..Default::default()
            },
        })
    }

    /// The effective settings as JSON with secrets redacted, for `ward config check`.
    pub fn redacted_json(&self) -> Result<String> {
        let mut v = serde_json::to_value(self).context("serialising settings")?;
        // A PostgreSQL URL may carry a password: show it without.
        if let Some(url) = &self.database_url {
            v["database_url"] = serde_json::Value::String(redact_url(url.expose()));
        }
        Ok(serde_json::to_string_pretty(&v)?)
    }
}

/// `postgres://user:pw@host/db?password=x` → `postgres://user:[redacted]@host/db?password=[redacted]`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = redact_userinfo(base);
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

/// One line naming the key and the source.
fn describe_figment_error(e: &figment::Error) -> String {
    let mut out = String::from("configuration: ");
    if !e.path.is_empty() {
        out.push_str(&e.path.join("."));
        out.push_str(": ");
    }
    out.push_str(&e.kind.to_string());
    if let Some(md) = &e.metadata {
        out.push_str(&format!(" (from {})", md.name));
        if let Some(src) = &md.source {
            out.push_str(&format!(" {src}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("postgres://ward:s3cret@db:5432/ward"),
            "postgres://ward:[redacted]@db:5432/ward"
        );
        assert_eq!(redact_url("postgres://db/ward"), "postgres://db/ward");
        assert_eq!(
            redact_url("postgres://u@db/ward?sslmode=require&password=s3cret"),
            "postgres://u@db/ward?sslmode=require&password=[redacted]"
        );
        assert_eq!(
            redact_url("sqlite://ward-data/ward.db"),
            "sqlite://ward-data/ward.db"
        );
    }

    #[test]
    fn egress_allow_entries_are_checked_at_start_up() {
        let mut s = Settings::default();
        s.egress.allow = vec!["10.1.2.0/24".into(), "siem.internal:8089".into()];
        s.validate().expect("valid allow-list");
        s.egress.allow.push("siem.internal".into());
        let e = s.validate().expect_err("a host without a port");
        assert!(
            e.to_string().starts_with("egress.allow: \"siem.internal\""),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }
}
