//! `ward backup`: a consistent snapshot in an authenticated, encrypted archive
//! (key from the "backup" purpose), and restore into an empty database. Field
//! ciphertexts inside stay encrypted under the company keys; the archive adds a
//! second layer.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::{Actor, AuditEvent};
use ward_crypto::OsRandom;
use ward_crypto::backup::{open_backup, read_header, seal_backup};
use ward_store::{Conflict, StoreError};

use crate::bootstrap::{self, cli_context, new_event_id};
use crate::cli::BackupCommand;
use crate::config::Settings;

pub async fn run(settings: &Settings, cmd: BackupCommand) -> Result<()> {
    match cmd {
        BackupCommand::Create { out } => {
            let inst = bootstrap::open(settings).await?;
            let (snapshot, counts) = inst
                .store
                .export_snapshot()
                .await
                .context("reading the snapshot")?;
            let archive = seal_backup(
                &inst.master,
                &inst.salt,
                inst.master_version,
                &snapshot,
                &OsRandom,
            )
            .map_err(|e| anyhow!("encrypting the backup: {e}"))?;
            let tmp = out.with_extension("partial");
            {
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts
                    .open(&tmp)
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                f.write_all(&archive)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let rows: u64 = counts.0.iter().map(|(_, n)| n).sum();
            let e = AuditEvent::new(
                new_event_id()?,
                bootstrap::now(),
                None,
                Actor::system("cli"),
                cli_context()?,
                actions::BACKUP_CREATED,
            )
            .target("backup", out.display().to_string())
            .details(json!({ "rows": rows, "bytes": archive.len() }));
            inst.store.record_audit(&e).await?;
            println!(
                "wrote {} ({} bytes, {rows} rows)",
                out.display(),
                archive.len()
            );
            Ok(())
        }
        BackupCommand::Restore { file } => {
            let archive =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let header = read_header(&archive).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let key_file = settings.data_dir.join("master.key");
            let master = bootstrap::configured_secret(settings, &key_file)?.ok_or_else(|| {
                anyhow!("no master secret configured: set WARD_MASTER_SECRET or master_secret_file to the secret the backup was made with")
            })?;
            let snapshot =
                open_backup(&master, &archive).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let store = bootstrap::connect(settings).await?;
            if !store.is_empty_installation().await? {
                bail!(
                    "refusing to restore into a non-empty database; restore into an empty data directory or database"
                );
            }
            store
                .migrate()
                .await
                .map_err(|e| anyhow!("migration failed: {e}"))?;
            let e = AuditEvent::new(
                new_event_id()?,
                bootstrap::now(),
                None,
                Actor::system("cli"),
                cli_context()?,
                actions::BACKUP_RESTORED,
            )
            .target("backup", file.display().to_string())
            .details(json!({ "made_with_master_version": header.master_version }));
            let counts = match store.import_snapshot(&snapshot, &e).await {
                Ok(c) => c,
                Err(StoreError::Conflict(Conflict::AlreadyInitialized)) => {
                    bail!("refusing to restore into a non-empty database")
                }
                Err(e) => return Err(anyhow!("restore failed, nothing was written: {e}")),
            };
            let rows: u64 = counts.0.iter().map(|(_, n)| n).sum();
            println!(
                "restored {rows} rows from {}; run `ward keys verify` to check every key and value",
                file.display()
            );
            Ok(())
        }
    }
}
