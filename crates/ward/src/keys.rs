//! `ward keys`: rotate a company's key, show versions and re-encryption progress,
//! run a re-encryption pass now.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use ward_core::keys::KeyState;
use ward_core::tenant::Tenant;
use ward_core::{Actor, AuditEvent};
use ward_crypto::{OsRandom, PasswordHashing, SecureRandom};
use ward_jobs::key_maintenance::{LEASE_NAME, ReencryptSettings, run_pass};
use ward_server::{AppState, SystemClock};
use ward_store::ENCRYPTED_FIELDS;

use crate::bootstrap::{self, Installation, cli_context, new_event_id};
use crate::cli::KeysCommand;
use crate::config::Settings;

pub async fn run(settings: &Settings, inst: &Installation, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Rotate { tenant } => {
            let t = tenant_by(inst, &tenant).await?;
            let state = cli_state(settings, inst)?;
            let make = |action: &'static str| -> Option<AuditEvent> {
                Some(AuditEvent::new(
                    new_event_id().ok()?,
                    bootstrap::now(),
                    Some(t.id.clone()),
                    Actor::system("cli"),
                    cli_context().ok()?,
                    action,
                ))
            };
            let v = inst_keyring(&state)
                .rotate(&inst.store, &t.id, bootstrap::now(), &make)
                .await
                .map_err(|e| anyhow!("rotation failed: {e}"))?;
            println!(
                "{}: key version {v} is now active; older versions are decrypt-only until re-encrypted",
                t.slug
            );
            Ok(())
        }
        KeysCommand::Status { tenant } => {
            let tenants = match tenant {
                Some(s) => vec![tenant_by(inst, &s).await?],
                None => inst.store.list_tenants().await?,
            };
            let bars = std::io::stdout().is_terminal();
            for t in tenants {
                status(inst, &t, bars).await?;
            }
            Ok(())
        }
        KeysCommand::RotateMaster { new_secret_file } => {
            rotate_master(inst, &new_secret_file).await
        }
        KeysCommand::Verify => verify(settings, inst).await,
        KeysCommand::Reencrypt { tenant } => {
            let t = tenant_by(inst, &tenant).await?;
            let state = cli_state(settings, inst)?;
            let holder = format!("cli-{}", std::process::id());
            let now = bootstrap::now();
            if !inst
                .store
                .acquire_lease(LEASE_NAME, &holder, now, now.plus_seconds(60))
                .await?
            {
                bail!(
                    "a running ward serve holds the key-maintenance lease; it is already re-encrypting"
                );
            }
            let km = &settings.key_maintenance;
            let job = ReencryptSettings {
                batch_size: km.batch_size,
                max_rows_per_second: km.max_rows_per_second,
                ..Default::default()
            };
            let report = run_pass(&state.key_maintenance(job, &holder), &t.id)
                .await
                .map_err(|e| anyhow!("re-encryption failed: {e}"));
            inst.store.release_lease(LEASE_NAME, &holder).await?;
            let report = report?;
            println!(
                "{}: re-encrypted {} value(s), {} changed meanwhile (already current), destroyed {} version(s)",
                t.slug, report.moved, report.skipped_concurrent, report.destroyed
            );
            Ok(())
        }
    }
}

async fn tenant_by(inst: &Installation, slug_or_id: &str) -> Result<Tenant> {
    inst.store
        .find_tenant(slug_or_id)
        .await?
        .ok_or_else(|| anyhow!("no company with slug or id {slug_or_id:?}"))
}

fn inst_keyring(state: &AppState) -> &ward_jobs::keyring::Keyring {
    state.keyring()
}

/// The server state the key operations run on, built for one CLI command.
fn cli_state(settings: &Settings, inst: &Installation) -> Result<AppState> {
    let rng: Arc<dyn SecureRandom> = Arc::new(OsRandom);
    let hashing = PasswordHashing::new(settings.password_params()?, rng.as_ref())
        .context("password hashing")?;
    Ok(AppState::new(
        inst.store.clone(),
        settings.server_settings()?,
        inst.keys(),
        hashing,
        Arc::new(SystemClock),
        rng,
    ))
}

async fn status(inst: &Installation, t: &Tenant, bars: bool) -> Result<()> {
    let versions = inst.store.key_versions(&t.id).await?;
    let active = versions
        .iter()
        .find(|k| k.info.state == KeyState::Active)
        .map(|k| k.info.version);
    println!("{} ({})", t.slug, t.name);
    if versions.is_empty() {
        println!("  no key yet (created on the company's first encryption)");
        return Ok(());
    }
    for k in &versions {
        println!(
            "  version {:>3}  {:<12}  created {}{}",
            k.info.version,
            k.info.state.as_str(),
            k.info.created_at.to_rfc3339(),
            k.info
                .destroyed_at
                .map(|d| format!("  destroyed {}", d.to_rfc3339()))
                .unwrap_or_default()
        );
    }
    for f in ENCRYPTED_FIELDS {
        let counts = inst.store.ciphertext_counts(f, &t.id).await?;
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let current: i64 = counts
            .iter()
            .filter(|(v, _)| Some(*v) == active)
            .map(|(_, n)| n)
            .sum();
        let by: Vec<String> = counts.iter().map(|(v, n)| format!("v{v}: {n}")).collect();
        let pct = if total == 0 {
            100.0
        } else {
            100.0 * current as f64 / total as f64
        };
        let bar = if bars {
            let filled = (pct / 5.0).round() as usize;
            format!(
                "[{}{}] ",
                "#".repeat(filled),
                "-".repeat(20 - filled.min(20))
            )
        } else {
            String::new()
        };
        println!(
            "  {}.{}: {bar}{pct:.0}% on the active version ({current}/{total}; {})",
            f.entity,
            f.field,
            if by.is_empty() {
                "none".to_owned()
            } else {
                by.join(", ")
            }
        );
    }
    Ok(())
}

fn system_event(tenant: Option<&ward_core::TenantId>, action: &'static str) -> Result<AuditEvent> {
    Ok(AuditEvent::new(
        new_event_id()?,
        bootstrap::now(),
        tenant.cloned(),
        Actor::system("cli"),
        cli_context()?,
        action,
    ))
}

async fn rotate_master(inst: &Installation, new_secret_file: &std::path::Path) -> Result<()> {
    use ward_core::audit::actions;
    use ward_crypto::MasterCredentialKey;
    if inst.previous.is_some() {
        bail!(
            "a master-secret rotation is configured (previous_master_secret is set and the configured secret is \
             the new one); to resume it, configure the old secret as master_secret and run this command again"
        );
    }
    let new = bootstrap::read_secret_file(new_secret_file)?;
    if new
        .key_check(&inst.salt)
        .matches(&inst.master.key_check(&inst.salt))
    {
        bail!("the new master secret is the current one");
    }
    let old_version = inst.master_version;
    let new_version = old_version + 1;
    let ring = ward_jobs::keyring::Keyring::new(
        MasterCredentialKey::derive(&new, &inst.salt),
        new_version,
        Arc::new(OsRandom),
    )
    .with_previous(
        MasterCredentialKey::derive(&inst.master, &inst.salt),
        old_version,
    );
    let pending: i64 = inst
        .store
        .keys_per_master_version()
        .await?
        .iter()
        .filter(|(v, _)| *v == old_version)
        .map(|(_, n)| n)
        .sum();
    let started = system_event(None, actions::MASTER_ROTATION_STARTED)?
        .target("installation", "master_secret")
        .details(serde_json::json!({ "from_version": old_version, "to_version": new_version, "keys": pending }));
    inst.store.record_audit(&started).await?;
    let moved = ring
        .rewrap_from_previous(&inst.store, 100)
        .await
        .map_err(|e| anyhow!("re-wrapping failed (run the command again to resume): {e}"))?;
    // Settings secrets (forwarding sinks' tokens and HMAC keys) move to the new
    // "settings" key the same way: compare-and-swap, resumable.
    let resealed = reseal_settings_secrets(inst, &new, new_version).await?;
    // The checkpoint key is derived from the master secret too. A last checkpoint
    // under the old key covers everything so far; the event naming both keys is
    // then covered by checkpoints under the new one, which is how verification
    // trusts the old key afterwards.
    let old_signer = ward_jobs::audit_log::checkpoint_signer(&inst.master, &inst.salt);
    let new_signer = ward_jobs::audit_log::checkpoint_signer(&new, &inst.salt);
    ward_jobs::audit_log::sign_checkpoint(&inst.store, &old_signer, bootstrap::now()).await?;
    let finished = system_event(None, actions::MASTER_ROTATION_FINISHED)?
        .target("installation", "master_secret")
        .details(serde_json::json!({ "version": new_version, "rewrapped": moved, "settings_secrets_resealed": resealed }));
    let key_rotated = system_event(None, actions::AUDIT_SIGNING_KEY_ROTATED)?
        .target("installation", "audit_signing_key")
        .details(serde_json::json!({
            "previous_key": old_signer.verifier().encode(),
            "key": new_signer.verifier().encode(),
        }));
    inst.store
        .finish_master_rotation(
            new.key_check(&inst.salt).as_bytes(),
            new_version,
            &[finished, key_rotated],
        )
        .await
        .map_err(|e| {
            anyhow!("cannot finish the rotation (run the command again to resume): {e}")
        })?;
    // The first checkpoint under the new key covers the event naming the old one,
    // which is what lets verification trust the old key's checkpoints.
    crate::audit::integrate_if_free(&inst.store).await?;
    ward_jobs::audit_log::sign_checkpoint(&inst.store, &new_signer, bootstrap::now()).await?;
    println!(
        "the audit checkpoint key changed; checkpoints signed before now verify with the previous key: \
         ward audit verify --trusted-key '{}'",
        old_signer.verifier().encode()
    );
    println!(
        "master secret rotated to version {new_version}: {moved} company key(s) re-wrapped. Configure the new secret \
         now (WARD_MASTER_SECRET or master_secret_file; replace ward-data/master.key if you use it); the old secret \
         no longer opens this installation."
    );
    Ok(())
}

/// Re-seals every settings secret still under an older master version.
async fn reseal_settings_secrets(
    inst: &Installation,
    new: &ward_crypto::MasterSecret,
    new_version: u32,
) -> Result<u64> {
    use ward_crypto::{SettingsContext, SettingsKey};
    let old_key = SettingsKey::derive(&inst.master, &inst.salt);
    let new_key = SettingsKey::derive(new, &inst.salt);
    let mut n = 0;
    for sink in inst.store.list_audit_sinks().await? {
        let (Some(sealed), Some(v)) = (&sink.secret, sink.secret_master_version) else {
            continue;
        };
        if v == new_version {
            continue;
        }
        // Older sinks seal a raw token as `secret`, newer ones a document as
        // `credentials`; the field stays what it was.
        let ctx = |master_version| SettingsContext {
            owner_kind: "audit_sink",
            owner_id: &sink.id,
            field: ward_jobs::forwarding::sink_secret_field(&sink),
            master_version,
        };
        let secret = old_key.open(sealed, ctx(v)).map_err(|_| {
            anyhow!(
                "the secret of sink {} does not open under the current master secret",
                sink.name
            )
        })?;
        let resealed = new_key
            .seal(&secret, ctx(new_version), &OsRandom)
            .map_err(|e| anyhow!("sealing: {e}"))?;
        if inst
            .store
            .reseal_audit_sink_secret(&sink.id, sealed, &resealed, new_version)
            .await?
        {
            n += 1;
        }
    }
    for p in inst.store.list_sso_providers(None).await? {
        let Some(sealed) = &p.secret else { continue };
        if sealed.master_version == new_version {
            continue;
        }
        let id = &p.provider.id;
        let secret = old_key
            .open(
                &sealed.bytes,
                ward_server::sso::secret_context(id, sealed.master_version),
            )
            .map_err(|_| {
                anyhow!(
                    "the client secret of SSO provider {} does not open under the current master secret",
                    p.provider.name
                )
            })?;
        let resealed = ward_store::SealedSecret {
            bytes: new_key
                .seal(
                    &secret,
                    ward_server::sso::secret_context(id, new_version),
                    &OsRandom,
                )
                .map_err(|e| anyhow!("sealing: {e}"))?,
            master_version: new_version,
        };
        if inst
            .store
            .reseal_sso_secret(id, &sealed.bytes, &resealed)
            .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

async fn verify(settings: &Settings, inst: &Installation) -> Result<()> {
    use ward_crypto::FieldContext;
    let state = cli_state(settings, inst)?;
    let ring = state.keyring();
    let (mut keys_ok, mut values_ok, mut destroyed) = (0u64, 0u64, 0u64);
    let mut problems: Vec<String> = Vec::new();
    for t in inst.store.list_tenants().await? {
        for k in inst.store.key_versions(&t.id).await? {
            match &k.wrapped {
                None => destroyed += 1,
                Some(w) => {
                    match ring.unwrap_stored(&t.id, k.info.version, k.info.master_version, w) {
                        Ok(_) => keys_ok += 1,
                        Err(e) => problems
                            .push(format!("{}: key version {}: {e}", t.slug, k.info.version)),
                    }
                }
            }
        }
        for f in ENCRYPTED_FIELDS {
            let mut after = String::new();
            loop {
                let page = inst.store.ciphertexts_page(f, &t.id, &after, 500).await?;
                let Some(last) = page.last() else { break };
                after = last.row_id.clone();
                for c in &page {
                    let ctx = FieldContext {
                        tenant_id: t.id.as_str(),
                        entity: f.entity,
                        field: f.field,
                        row_id: &c.row_id,
                    };
                    match ring.decrypt(&inst.store, ctx, &t.id, &c.envelope).await {
                        Ok(_) => values_ok += 1,
                        Err(e) => problems.push(format!(
                            "{}: {}.{} {}: {e}",
                            t.slug, f.entity, f.field, c.row_id
                        )),
                    }
                }
            }
        }
    }
    // Settings secrets: every one opens under the configured master secret.
    let forwarding = inst.keys().forwarding;
    let mut settings_ok = 0u64;
    for sink in inst.store.list_audit_sinks().await? {
        match ward_jobs::forwarding::open_sink_secrets(&forwarding, &sink) {
            Ok(Some(_)) => settings_ok += 1,
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    for p in inst.store.list_sso_providers(None).await? {
        match ward_server::sso::open_provider_secret(&forwarding, &p) {
            Ok(Some(_)) => settings_ok += 1,
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    println!(
        "verified {keys_ok} wrapped key(s), {values_ok} encrypted value(s) and {settings_ok} settings secret(s) under master version {}; {destroyed} destroyed key version(s)",
        inst.master_version
    );
    if let Some(first) = problems.first() {
        bail!(
            "verification failed: {} problem(s); first: {first}",
            problems.len()
        );
    }
    Ok(())
}
