//! What the server needs to know from configuration. The binary loads and validates
//! the file and environment, then hands this over; nothing here reads either.

use std::path::PathBuf;

use ipnet::IpNet;
use ward_core::session::SessionPolicy;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Origins (`scheme://host[:port]`) allowed to make cross-site state-changing
    /// requests with a session cookie, beyond same-origin ones.
    pub trusted_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, reverse proxies).
    pub trusted_proxies: Vec<IpNet>,
    pub session: SessionPolicy,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    pub rate_limit: RateLimitSettings,
    pub login_throttle: LoginThrottleSettings,
    /// How many Argon2 computations may run at once (each holds `memory_kib`).
    pub password_hash_concurrency: usize,
    /// TLS certificate and key; `None` serves plain HTTP (behind a TLS proxy, or local).
    pub tls: Option<TlsFiles>,
    /// Clients reach Ward over HTTPS even though Ward itself serves plain HTTP
    /// (TLS ends at a reverse proxy): mark the session cookie `Secure` (`__Host-`)
    /// and send HSTS. Implied when `tls` is set.
    pub secure_cookies: bool,
    /// The background key-maintenance job (rotation, re-encryption, destruction).
    pub key_maintenance: ward_jobs::key_maintenance::ReencryptSettings,
    /// Audit sequencer and checkpoint cadence.
    pub audit_sequencer: ward_jobs::audit_log::SequencerSettings,
    /// Audit forwarding cadence, backoff and alert threshold.
    pub audit_forwarding: ward_jobs::forwarding::ForwarderSettings,
    /// Where browsers reach Ward (`scheme://host[:port]`): the base of the
    /// OpenID Connect redirect URI.
    pub public_url: String,
    /// WebAuthn relying party: passkeys are bound to this id and these origins.
    pub web_authn: WebAuthnSettings,
    /// How recent a sign-in or re-authentication must be for sensitive actions.
    pub reauth: ward_core::mfa::ReauthWindow,
    /// The DNS server domain verification asks for TXT records (`dns.resolver`,
    /// `ip:port`); `None`: the system's (`/etc/resolv.conf`).
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Which addresses outbound connections may reach (`egress.allow`).
    pub egress: ward_core::egress::EgressPolicy,
    /// The bearer token of the `metrics` scope (`metrics.token_file`); `None`:
    /// `GET /metrics` on the main listener answers 403 to everyone.
    pub metrics_token: Option<crate::metrics::MetricsToken>,
}

/// The WebAuthn relying party. A passkey registered for one RP id cannot be used
/// for another, so the id is the registrable domain users reach Ward at.
#[derive(Debug, Clone)]
pub struct WebAuthnSettings {
    /// `localhost`, or a domain such as `ward.example.com`.
    pub rp_id: String,
    /// Shown by the authenticator when registering.
    pub rp_name: String,
    /// Origins (`scheme://host[:port]`) whose pages may use passkeys.
    pub origins: Vec<String>,
}

impl Default for WebAuthnSettings {
    fn default() -> Self {
        Self {
            rp_id: "localhost".to_owned(),
            rp_name: "Ward".to_owned(),
            origins: vec!["http://localhost:8080".to_owned()],
        }
    }
}

impl WebAuthnSettings {
    /// The relying party, or why this configuration cannot be one (an origin that
    /// is not a URL, or not on the RP id's domain).
    pub fn build(&self) -> Result<webauthn_rs::Webauthn, String> {
        use webauthn_rs::prelude::Url;
        let mut parsed = Vec::new();
        for o in &self.origins {
            parsed.push(Url::parse(o).map_err(|_| format!("webauthn origin {o:?} is not a URL"))?);
        }
        let Some(first) = parsed.first() else {
            return Err("webauthn needs at least one origin".to_owned());
        };
        let mut b = webauthn_rs::WebauthnBuilder::new(&self.rp_id, first)
            .map_err(|e| format!("webauthn relying party: {e}"))?
            .rp_name(&self.rp_name);
        for o in parsed.iter().skip(1) {
            b = b.append_allowed_origin(o);
        }
        b.build().map_err(|e| {
            format!(
                "webauthn relying party {:?} with origins {:?}: {e}",
                self.rp_id, self.origins
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Per-client-IP request rate limits (token bucket).
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub requests_per_second: u32,
    pub burst: u32,
    /// Sign-in attempts per minute per IP, successful or not.
    pub login_per_minute: u32,
}

/// How failed password sign-ins are slowed down (`ward_core::throttle`): growing
/// delays per (account, source), a ceiling of consecutive failures per account,
/// and a failure budget per client address.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottleSettings {
    /// Failures from one source on one account before delays (1 s, 2 s, 4 s…).
    pub free_failures_per_source: u32,
    /// The longest of those delays.
    pub max_delay_secs: i64,
    /// Consecutive failures from all sources that lock an account's password
    /// sign-in (a passkey sign-in still works and ends the lock).
    pub account_lock_failures: u32,
    pub account_lock_secs: i64,
    /// Failures per client address within `window_secs`, across all accounts.
    pub max_failures_per_ip: u32,
    pub window_secs: i64,
}

impl LoginThrottleSettings {
    /// The pure policy these settings describe.
    pub fn policy(&self) -> ward_core::throttle::SignInPolicy {
        ward_core::throttle::SignInPolicy {
            free_failures_per_source: self.free_failures_per_source,
            max_delay_secs: self.max_delay_secs,
            account_lock_failures: self.account_lock_failures,
            account_lock_secs: self.account_lock_secs,
            ..ward_core::throttle::SignInPolicy::default()
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            trusted_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            session: SessionPolicy::default(),
            max_body_bytes: 1024 * 1024,
            rate_limit: RateLimitSettings::default(),
            login_throttle: LoginThrottleSettings::default(),
            password_hash_concurrency: 4,
            tls: None,
            secure_cookies: false,
            key_maintenance: ward_jobs::key_maintenance::ReencryptSettings::default(),
            audit_sequencer: ward_jobs::audit_log::SequencerSettings::default(),
            audit_forwarding: ward_jobs::forwarding::ForwarderSettings::default(),
            public_url: "http://localhost:8080".to_owned(),
            web_authn: WebAuthnSettings::default(),
            reauth: ward_core::mfa::ReauthWindow::default(),
            dns_resolver: None,
            egress: ward_core::egress::EgressPolicy::default(),
            metrics_token: None,
        }
    }
}

impl ServerSettings {
    /// Whether browsers reach Ward over HTTPS (directly or through a TLS proxy).
    pub fn https(&self) -> bool {
        self.tls.is_some() || self.secure_cookies
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 50,
            burst: 100,
            login_per_minute: 20,
        }
    }
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        // The pure policy's defaults (OWASP: slow down rather than lock; NIST SP
        // 800-63B §5.2.2: at most 100 consecutive failures per account); a larger
        // budget per client address.
        let p = ward_core::throttle::SignInPolicy::default();
        Self {
            free_failures_per_source: p.free_failures_per_source,
            max_delay_secs: p.max_delay_secs,
            account_lock_failures: p.account_lock_failures,
            account_lock_secs: p.account_lock_secs,
            max_failures_per_ip: 50,
            window_secs: 15 * 60,
        }
    }
}
