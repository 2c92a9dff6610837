//! The application state every handler sees: store, keys, password hashing with its
//! concurrency bound, clock, randomness, throttles and rate limiters.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use ward_core::Timestamp;
use ward_core::throttle::{FailureThrottle, SignInThrottle, ThrottlePolicy};
use ward_crypto::{ApiTokenHasher, PasswordHashing, SecureRandom, SessionSealer};
use ward_store::Store;

use crate::{Clock, ServerSettings};

/// Keys derived from the master secret that the HTTP layer needs.
pub struct Keys {
    pub sessions: SessionSealer,
    pub api_tokens: ApiTokenHasher,
    /// Tenant keys: wrapping under the master credential key, field encryption.
    pub keyring: Arc<ward_jobs::keyring::Keyring>,
    /// Signs the audit log's checkpoints (Ed25519 from the "audit" purpose key).
    pub audit: Arc<ward_audit::CheckpointSigner>,
    /// Opens forwarding sinks' sealed secrets ("settings" purpose key).
    pub forwarding: Arc<ward_jobs::forwarding::ForwarderKeys>,
}

impl Keys {
    /// Every key the server derives from the master secret. `previous` is the
    /// secret being replaced during a master-secret rotation, with its version.
    pub fn derive(
        master: &ward_crypto::MasterSecret,
        salt: &ward_crypto::InstallationSalt,
        master_version: u32,
        previous: Option<(&ward_crypto::MasterSecret, u32)>,
    ) -> Self {
        use ward_crypto::{MasterCredentialKey, OsRandom, Purpose, SettingsKey};
        let ring = ward_jobs::keyring::Keyring::new(
            MasterCredentialKey::derive(master, salt),
            master_version,
            Arc::new(OsRandom),
        );
        Keys {
            sessions: SessionSealer::new(&master.derive(salt, Purpose::Sessions)),
            api_tokens: ApiTokenHasher::new(&master.derive(salt, Purpose::ApiTokens)),
            keyring: Arc::new(match previous {
                Some((prev, v)) => ring.with_previous(MasterCredentialKey::derive(prev, salt), v),
                None => ring,
            }),
            audit: Arc::new(ward_jobs::audit_log::checkpoint_signer(master, salt)),
            forwarding: Arc::new(ward_jobs::forwarding::ForwarderKeys {
                settings: SettingsKey::derive(master, salt),
                master_version,
                previous: previous.map(|(prev, v)| (SettingsKey::derive(prev, salt), v)),
            }),
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared state behind `AppState`.
pub struct Inner {
    pub(crate) store: Store,
    pub(crate) sessions: crate::session_lookup::SessionLookup,
    pub(crate) settings: ServerSettings,
    pub(crate) keys: Keys,
    pub(crate) hashing: PasswordHashing,
    /// Bounds concurrent Argon2 work, so memory stays at concurrency × m_cost
    /// however many sign-ins arrive at once.
    pub(crate) hash_permits: Semaphore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn SecureRandom>,
    /// Password failures per (account, source) and per account.
    pub(crate) sign_in_failures: Mutex<SignInThrottle>,
    pub(crate) ip_failures: Mutex<FailureThrottle>,
    pub(crate) request_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    pub(crate) login_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Re-encryption rate per (company, entity, field), measured by the job on this
    /// instance: (fields per second, when measured).
    pub(crate) reencryption_rates: Mutex<RateMap>,
    /// The WebAuthn relying party; `None` when its configuration is unusable
    /// (then passkey routes answer 503 and say why in the log).
    pub(crate) webauthn: Option<webauthn_rs::Webauthn>,
    /// Every outbound connection goes through this (identity providers, SIEMs,
    /// sinks): the egress policy checks each address after resolution.
    pub(crate) egress: ward_jobs::egress::Egress,
    /// Identity providers' discovery documents and key sets, for a few minutes.
    pub(crate) oidc_discovery: crate::sso_discovery::DiscoveryCache,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Re-encryption rates by (company, entity, field): (fields per second, measured at).
pub(crate) type RateMap =
    std::collections::HashMap<(String, &'static str, &'static str), (f64, ward_core::Timestamp)>;

/// Most distinct keys each failure throttle remembers (bounded memory under attack).
const THROTTLE_MAX_KEYS: usize = 100_000;

impl AppState {
    /// Must be called inside a Tokio runtime (it starts the session-lookup task).
    pub fn new(
        store: Store,
        settings: ServerSettings,
        keys: Keys,
        hashing: PasswordHashing,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn SecureRandom>,
    ) -> Self {
        // Install the metrics recorder before the first request is counted.
        let _ = crate::metrics::handle();
        let lt = settings.login_throttle;
        let rl = settings.rate_limit;
        let request_limiter = NonZeroU32::new(rl.requests_per_second).map(|rps| {
            let burst = NonZeroU32::new(rl.burst).unwrap_or(rps);
            RateLimiter::dashmap(Quota::per_second(rps).allow_burst(burst))
        });
        let login_limiter = NonZeroU32::new(rl.login_per_minute)
            .map(|per_min| RateLimiter::dashmap(Quota::per_minute(per_min)));
        let webauthn = match settings.web_authn.build() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "passkeys are unavailable");
                None
            }
        };
        Self(Arc::new(Inner {
            webauthn,
            egress: ward_jobs::egress::Egress::new(settings.egress.clone()),
            oidc_discovery: Default::default(),
            sessions: crate::session_lookup::SessionLookup::spawn(store.clone()),
            store,
            hash_permits: Semaphore::new(settings.password_hash_concurrency.max(1)),
            sign_in_failures: Mutex::new(SignInThrottle::new(ward_core::throttle::SignInPolicy {
                max_keys: THROTTLE_MAX_KEYS,
                ..lt.policy()
            })),
            ip_failures: Mutex::new(FailureThrottle::new(ThrottlePolicy {
                max_failures: lt.max_failures_per_ip,
                window_secs: lt.window_secs,
                max_keys: THROTTLE_MAX_KEYS,
            })),
            settings,
            keys,
            hashing,
            clock,
            rng,
            request_limiter,
            login_limiter,
            reencryption_rates: Mutex::new(std::collections::HashMap::new()),
        }))
    }

    /// The tenant-key operations (rotation, field encryption).
    pub fn keyring(&self) -> &ward_jobs::keyring::Keyring {
        &self.0.keys.keyring
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.0.settings
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Key maintenance over this state's store, keyring, clock and randomness,
    /// renewing its lease as `holder`.
    pub fn key_maintenance(
        &self,
        settings: ward_jobs::key_maintenance::ReencryptSettings,
        holder: &str,
    ) -> ward_jobs::key_maintenance::KeyMaintenance {
        ward_jobs::key_maintenance::KeyMaintenance {
            store: self.0.store.clone(),
            keyring: self.0.keys.keyring.clone(),
            clock: self.0.clock.clone(),
            rng: self.0.rng.clone(),
            settings,
            holder: holder.to_owned(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// 16 random bytes for a new id.
    pub(crate) fn random_id_bytes(&self) -> Result<[u8; 16], crate::ApiError> {
        let mut b = [0u8; 16];
        self.rng
            .fill(&mut b)
            .map_err(|_| crate::ApiError::internal())?;
        Ok(b)
    }

    /// Drops rate-limiter entries that have fully recovered (bounded memory).
    pub fn housekeeping(&self) {
        if let Some(l) = &self.request_limiter {
            l.retain_recent();
        }
        if let Some(l) = &self.login_limiter {
            l.retain_recent();
        }
    }

    pub(crate) fn cookie_name(&self) -> &'static str {
        // `__Host-` (RFC 6265bis §4.1.3.2) forces Secure, Path=/ and no Domain, but
        // browsers only accept it over HTTPS.
        if self.settings.https() {
            "__Host-ward_session"
        } else {
            "ward_session"
        }
    }
}
