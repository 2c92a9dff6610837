//! The edge where key storage meets key cryptography: finds or lazily creates a
//! company's active key, unwraps the version an envelope names, rotates, and
//! encrypts/decrypts registered fields. Unwrapped keys live only for the call.

use std::sync::Arc;

use ward_core::{AuditEvent, TenantId, Timestamp};
use ward_crypto::envelope::{self, FieldContext};
use ward_crypto::{CryptoError, MasterCredentialKey, SecureRandom, TenantKey, WrapContext};
use ward_store::{Conflict, Store, StoreError};
use zeroize::Zeroizing;

/// Why a key operation failed. Messages name versions, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key version {0} of this company was destroyed; values it encrypted can no longer be read"
    )]
    Destroyed(u32),
    #[error("key version {0} of this company does not exist")]
    Missing(u32),
    #[error("key version {0} is decrypt-only and cannot encrypt")]
    NotActive(u32),
    #[error("the company's key version {0} does not unwrap under the configured master secret")]
    Unwrap(u32),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Builds the audit event for a key being created or rotated (the caller knows
/// the actor and request).
pub type EventFor<'a> = &'a (dyn Fn(&'static str) -> Option<AuditEvent> + Send + Sync);

pub struct Keyring {
    credentials: MasterCredentialKey,
    master_version: u32,
    /// During a master-secret rotation: the previous secret's key and version, so
    /// tenant keys not yet re-wrapped still open.
    previous: Option<(MasterCredentialKey, u32)>,
    rng: Arc<dyn SecureRandom>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("master_version", &self.master_version)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(
        credentials: MasterCredentialKey,
        master_version: u32,
        rng: Arc<dyn SecureRandom>,
    ) -> Self {
        Self {
            credentials,
            master_version,
            previous: None,
            rng,
        }
    }

    /// Also accepts tenant keys still wrapped under the previous master secret.
    pub fn with_previous(mut self, previous: MasterCredentialKey, previous_version: u32) -> Self {
        self.previous = Some((previous, previous_version));
        self
    }

    pub fn master_version(&self) -> u32 {
        self.master_version
    }

    /// Unwraps with whichever master credential key the row's master version names.
    pub fn unwrap_stored(
        &self,
        tenant: &TenantId,
        version: u32,
        master_version: u32,
        wrapped: &[u8],
    ) -> Result<TenantKey, KeyError> {
        let mck = if master_version == self.master_version {
            &self.credentials
        } else {
            match &self.previous {
                Some((prev, v)) if *v == master_version => prev,
                _ => return Err(KeyError::Unwrap(version)),
            }
        };
        let ctx = WrapContext {
            tenant_id: tenant.as_str(),
            key_version: version,
            master_version,
        };
        mck.unwrap(wrapped, ctx)
            .map_err(|_| KeyError::Unwrap(version))
    }

    /// The active version and key, creating version 1 on a company's first use.
    pub async fn active(
        &self,
        store: &Store,
        tenant: &TenantId,
        now: Timestamp,
        event: EventFor<'_>,
    ) -> Result<(u32, TenantKey), KeyError> {
        for _ in 0..3 {
            if let Some(k) = store.active_key(tenant).await? {
                let wrapped = k.wrapped.ok_or(KeyError::Destroyed(k.info.version))?;
                let key =
                    self.unwrap_stored(tenant, k.info.version, k.info.master_version, &wrapped)?;
                return Ok((k.info.version, key));
            }
            let key = TenantKey::generate(self.rng.as_ref())?;
            let ctx = WrapContext {
                tenant_id: tenant.as_str(),
                key_version: 1,
                master_version: self.master_version,
            };
            let wrapped = self.credentials.wrap(&key, ctx, self.rng.as_ref())?;
            let Some(audit) = event(ward_core::audit::actions::KEY_CREATED) else {
                return Err(KeyError::Crypto(CryptoError::Randomness));
            };
            let audit = audit
                .target("tenant_key", format!("{tenant}/v1"))
                .details(serde_json::json!({ "version": 1 }));
            match store
                .create_first_key(tenant, &wrapped, self.master_version, now, &audit)
                .await
            {
                Ok(()) => return Ok((1, key)),
                // Another request created it first: read theirs.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(KeyError::Store(StoreError::Conflict(Conflict::Other)))
    }

    /// The key of `version`, for decryption.
    pub async fn version(
        &self,
        store: &Store,
        tenant: &TenantId,
        version: u32,
    ) -> Result<TenantKey, KeyError> {
        let k = store
            .key_version(tenant, version)
            .await?
            .ok_or(KeyError::Missing(version))?;
        if !k.info.state.may_decrypt() {
            return Err(KeyError::Destroyed(version));
        }
        let wrapped = k.wrapped.ok_or(KeyError::Destroyed(version))?;
        self.unwrap_stored(tenant, version, k.info.master_version, &wrapped)
    }

    /// Encrypts a field value under the company's active key.
    pub async fn encrypt(
        &self,
        store: &Store,
        ctx: FieldContext<'_>,
        tenant: &TenantId,
        plaintext: &[u8],
        now: Timestamp,
        event: EventFor<'_>,
    ) -> Result<(Vec<u8>, u32), KeyError> {
        let (version, key) = self.active(store, tenant, now, event).await?;
        Ok((
            envelope::seal(&key, version, ctx, plaintext, self.rng.as_ref())?,
            version,
        ))
    }

    /// Decrypts a field value with the key version its envelope names.
    pub async fn decrypt(
        &self,
        store: &Store,
        ctx: FieldContext<'_>,
        tenant: &TenantId,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let header = envelope::parse_header(sealed)?;
        let key = self.version(store, tenant, header.key_version).await?;
        Ok(envelope::open(&key, ctx, sealed)?)
    }

    /// Creates a new active version; the previous one becomes decrypt-only.
    pub async fn rotate(
        &self,
        store: &Store,
        tenant: &TenantId,
        now: Timestamp,
        event: EventFor<'_>,
    ) -> Result<u32, KeyError> {
        // Make sure there is a version to rotate from (lazy creation).
        let (current, _) = self.active(store, tenant, now, event).await?;
        let next = current + 1;
        let key = TenantKey::generate(self.rng.as_ref())?;
        let ctx = WrapContext {
            tenant_id: tenant.as_str(),
            key_version: next,
            master_version: self.master_version,
        };
        let wrapped = self.credentials.wrap(&key, ctx, self.rng.as_ref())?;
        let audit = event(ward_core::audit::actions::KEY_ROTATED)
            .ok_or(KeyError::Crypto(CryptoError::Randomness))?
            .target("tenant_key", format!("{tenant}/v{next}"))
            .details(serde_json::json!({ "previous_version": current, "version": next }));
        store
            .rotate_key(
                tenant,
                current,
                next,
                &wrapped,
                self.master_version,
                now,
                &audit,
            )
            .await?;
        Ok(next)
    }
}

impl Keyring {
    /// Re-wraps every tenant key still under the previous master secret with the
    /// current one, `batch` at a time; compare-and-swap per key, so it is safe to
    /// run beside a server and to resume after an interruption. Returns how many.
    pub async fn rewrap_from_previous(&self, store: &Store, batch: u32) -> Result<u64, KeyError> {
        let Some((_, prev_version)) = &self.previous else {
            return Ok(0);
        };
        let mut moved = 0;
        loop {
            let keys = store.keys_under_master(*prev_version, batch).await?;
            if keys.is_empty() {
                return Ok(moved);
            }
            for k in &keys {
                let key = self.unwrap_stored(&k.tenant_id, k.version, *prev_version, &k.wrapped)?;
                let ctx = WrapContext {
                    tenant_id: k.tenant_id.as_str(),
                    key_version: k.version,
                    master_version: self.master_version,
                };
                let wrapped = self.credentials.wrap(&key, ctx, self.rng.as_ref())?;
                if store
                    .rewrap_key(k, *prev_version, &wrapped, self.master_version)
                    .await?
                {
                    moved += 1;
                }
            }
        }
    }
}
