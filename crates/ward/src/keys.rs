//! `ward keys`: rotate a company's key, show versions and re-encryption progress,
//! run a re-encryption pass now.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use ward_core::keys::KeyState;
use ward_core::tenant::Tenant;
use ward_core::{Actor, AuditEvent};
use ward_crypto::{OsRandom, PasswordHashing, SecureRandom};
use ward_server::reencrypt::{LEASE_NAME, ReencryptSettings, run_pass};
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
            let report = run_pass(&state, &t.id, &job, &holder)
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

fn inst_keyring(state: &AppState) -> &ward_server::keyring::Keyring {
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
