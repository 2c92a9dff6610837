//! The key-maintenance job: scheduled rotation, re-encryption of every registered
//! encrypted field onto the active key version, and destruction of versions that
//! no ciphertext uses any more.
//!
//! Safe beside live writes: each ciphertext is replaced by compare-and-swap on its
//! old bytes, so a value written meanwhile (already under the active version) is
//! never overwritten. Resumable: progress is the data itself (the key version of
//! each row), so a crash loses at most one batch of work. One worker at a time
//! across instances: the job runs only while it holds the `key-maintenance` lease.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use ward_core::audit::actions;
use ward_core::keys::{DEFAULT_ROTATION_DAYS, KeyState, rotation_due};
use ward_core::{Actor, AuditEvent, EventId, RequestContext, TenantId};
use ward_crypto::envelope;
use ward_crypto::{FieldContext, TenantKey};
use ward_store::{CiphertextSwap, ENCRYPTED_FIELDS, Store};

use std::sync::Arc;

use ward_crypto::SecureRandom;

use crate::Clock;
use crate::keyring::{KeyError, Keyring};

pub const LEASE_NAME: &str = "key-maintenance";

/// How the job runs.
#[derive(Debug, Clone, Copy)]
pub struct ReencryptSettings {
    /// Rows per batch.
    pub batch_size: u32,
    /// Most rows re-encrypted per second (throttle), 0 = unthrottled.
    pub max_rows_per_second: u32,
    /// Pause between passes when there is nothing to do.
    pub idle_interval: Duration,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
}

impl Default for ReencryptSettings {
    fn default() -> Self {
        Self {
            batch_size: 200,
            max_rows_per_second: 2_000,
            idle_interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// What one pass over one company did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub rotated: bool,
    pub moved: u64,
    pub skipped_concurrent: u64,
    pub destroyed: u32,
}

/// Key maintenance: what it works with. A job of `ward serve` (one instance at a
/// time, lease `key-maintenance`), and run by hand by `ward keys`.
pub struct KeyMaintenance {
    pub store: Store,
    pub keyring: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn SecureRandom>,
    pub settings: ReencryptSettings,
    /// The lease holder this instance renews as it works (the runner's name).
    pub holder: String,
}

fn system_event(
    km: &KeyMaintenance,
    tenant: &TenantId,
    action: &'static str,
) -> Option<AuditEvent> {
    let mut id = [0u8; 16];
    km.rng.fill(&mut id).ok()?;
    Some(AuditEvent::new(
        EventId::from_random(id),
        km.clock.now(),
        Some(tenant.clone()),
        Actor::system("key-maintenance"),
        RequestContext {
            ip: "local".into(),
            user_agent: "ward-jobs".into(),
            request_id: "key-maintenance".into(),
        },
        action,
    ))
}

/// One pass for one company: rotate if due, re-encrypt stale rows (all of them,
/// batch by batch), destroy versions nothing uses. `holder` must hold the lease.
pub async fn run_pass(km: &KeyMaintenance, tenant: &TenantId) -> Result<PassReport, KeyError> {
    let store = &km.store;
    let settings = &km.settings;
    let holder = km.holder.as_str();
    let mut report = PassReport::default();
    let make = |action: &'static str| system_event(km, tenant, action);
    let Some(active) = store.active_key(tenant).await? else {
        return Ok(report); // No key yet: nothing encrypted.
    };
    let interval = store
        .rotation_interval_days(tenant)
        .await?
        .unwrap_or(DEFAULT_ROTATION_DAYS);
    let mut active_version = active.info.version;
    if rotation_due(active.info.created_at, interval, km.clock.now()) {
        active_version = km
            .keyring
            .rotate(store, tenant, km.clock.now(), &make)
            .await?;
        report.rotated = true;
    }
    let mut announced = false;
    for field in ENCRYPTED_FIELDS {
        let mut after = String::new();
        loop {
            let batch = store
                .stale_ciphertexts(field, tenant, active_version, &after, settings.batch_size)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.row_id.clone();
            if !announced {
                let remaining: i64 = store
                    .ciphertext_counts(field, tenant)
                    .await?
                    .iter()
                    .filter(|(v, _)| *v != active_version)
                    .map(|(_, n)| n)
                    .sum();
                if let Some(e) = make(actions::REENCRYPTION_STARTED) {
                    let e = e.details(
                        json!({ "active_version": active_version, "remaining": remaining }),
                    );
                    store.record_audit(&e).await?;
                }
                announced = true;
            }
            let started = km.clock.now();
            let (_, new_key) = km
                .keyring
                .active(store, tenant, km.clock.now(), &make)
                .await?;
            // Old versions' keys are unwrapped once per batch, not once per row.
            let mut old_keys: HashMap<u32, TenantKey> = HashMap::new();
            let mut swaps = Vec::with_capacity(batch.len());
            for row in &batch {
                let ctx = FieldContext {
                    tenant_id: tenant.as_str(),
                    entity: field.entity,
                    field: field.field,
                    row_id: &row.row_id,
                };
                let header = envelope::parse_header(&row.envelope)?;
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    old_keys.entry(header.key_version)
                {
                    slot.insert(
                        km.keyring
                            .version(store, tenant, header.key_version)
                            .await?,
                    );
                }
                let old_key = old_keys
                    .get(&header.key_version)
                    .ok_or(KeyError::Missing(header.key_version))?;
                let plain = envelope::open(old_key, ctx, &row.envelope)?;
                let fresh = envelope::seal(&new_key, active_version, ctx, &plain, km.rng.as_ref())?;
                swaps.push(CiphertextSwap {
                    row_id: row.row_id.clone(),
                    old: row.envelope.clone(),
                    new: fresh,
                });
            }
            let swapped = store
                .swap_ciphertexts(field, tenant, &swaps, active_version)
                .await?;
            report.moved += swapped;
            report.skipped_concurrent += swaps.len() as u64 - swapped;
            metrics::counter!("ward_reencrypted_fields_total", "entity" => field.entity, "field" => field.field)
                .increment(batch.len() as u64);
            // Keep the lease while working through a long backlog.
            let now = km.clock.now();
            let ttl = i64::try_from(settings.lease_ttl.as_secs()).unwrap_or(30);
            if !store
                .acquire_lease(LEASE_NAME, holder, now, now.plus_seconds(ttl))
                .await?
            {
                return Ok(report); // Lost the lease: another worker continues.
            }
            if settings.max_rows_per_second > 0 {
                let budget = Duration::from_secs_f64(
                    batch.len() as f64 / f64::from(settings.max_rows_per_second),
                );
                let elapsed = km.clock.now().millis().saturating_sub(started.millis());
                let elapsed = Duration::from_millis(u64::try_from(elapsed).unwrap_or(0));
                if let Some(rest) = budget.checked_sub(elapsed) {
                    km.clock.sleep(rest).await;
                }
            }
        }
    }
    if announced && let Some(e) = make(actions::REENCRYPTION_FINISHED) {
        let e = e.details(json!({ "active_version": active_version, "moved": report.moved }));
        store.record_audit(&e).await?;
    }
    for k in store.key_versions(tenant).await? {
        if k.info.state == KeyState::DecryptOnly {
            let Some(e) = make(actions::KEY_DESTROYED) else {
                continue;
            };
            let e = e
                .target("tenant_key", format!("{tenant}/v{}", k.info.version))
                .details(json!({ "version": k.info.version }));
            if store
                .destroy_key_version(tenant, k.info.version, km.clock.now(), &e)
                .await?
            {
                report.destroyed += 1;
            }
        }
    }
    update_gauges(store, tenant).await;
    Ok(report)
}

/// Prometheus gauges: ciphertexts per company, field and key version.
async fn update_gauges(store: &Store, tenant: &TenantId) {
    for field in ENCRYPTED_FIELDS {
        if let Ok(counts) = store.ciphertext_counts(field, tenant).await {
            for (version, n) in counts {
                metrics::gauge!("ward_encrypted_fields", "tenant" => tenant.to_string(), "entity" => field.entity,
                    "field" => field.field, "key_version" => version.to_string())
                .set(n as f64);
            }
        }
    }
}

impl crate::Job for KeyMaintenance {
    fn name(&self) -> &'static str {
        LEASE_NAME
    }

    fn schedule(&self) -> crate::Schedule {
        crate::Schedule {
            interval: self.settings.idle_interval,
            lease_ttl: self.settings.lease_ttl,
        }
    }

    /// A pass over every company; one company's failure does not stop the others.
    async fn pass(
        &mut self,
        _now: ward_core::Timestamp,
    ) -> Result<crate::Outcome, crate::JobError> {
        let mut failed = 0u32;
        for t in self.store.tenant_ids().await? {
            match run_pass(self, &t).await {
                Ok(r) if r.moved > 0 || r.destroyed > 0 || r.rotated => {
                    tracing::info!(tenant = %t, moved = r.moved, destroyed = r.destroyed, rotated = r.rotated, "key maintenance");
                }
                Ok(_) => {}
                Err(e) => {
                    failed += 1;
                    tracing::error!(tenant = %t, error = %e, "key maintenance failed");
                }
            }
        }
        if failed > 0 {
            return Err(crate::JobError(format!(
                "key maintenance failed for {failed} companies"
            )));
        }
        Ok(crate::Outcome::Idle)
    }
}
