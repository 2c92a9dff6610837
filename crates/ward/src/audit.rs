//! `ward audit`: the signing key, checkpoints, full verification of the stored
//! log, exports (plain and verifiable) and offline verification of an export.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use ward_audit::{CheckpointVerifier, ExportVerifier};
use ward_core::audit::actions;
use ward_core::audit_format::ExportFormat;
use ward_core::{AuditEvent, Timestamp};
use ward_jobs::audit_log::{LEASE_NAME, Sequencer, sign_checkpoint};
use ward_server::audit_export::{ExportRequest, run_export};
use ward_store::{AuditFilter, Store};

use crate::bootstrap::{self, Installation};
use crate::cli::AuditCommand;

/// Leaves read per page while verifying.
const VERIFY_PAGE: u64 = ward_server::audit_verify::VERIFY_PAGE;

/// A verifier key given on the command line, or a file holding one.
fn read_key(text_or_file: &str) -> Result<CheckpointVerifier> {
    let text = if Path::new(text_or_file).is_file() {
        std::fs::read_to_string(text_or_file)
            .with_context(|| format!("reading {}", Path::new(text_or_file).display()))?
    } else {
        text_or_file.to_owned()
    };
    CheckpointVerifier::parse(text.trim()).map_err(|e| anyhow!("{e}"))
}

/// Offline verification needs no database and no master secret.
pub fn verify_export_file(export: &Path, public_key: &str) -> Result<()> {
    let key = read_key(public_key)?;
    let file =
        std::fs::File::open(export).with_context(|| format!("cannot open {}", export.display()))?;
    let mut verifier = ExportVerifier::new(&key);
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", export.display()))?;
        if line.is_empty() {
            continue;
        }
        verifier
            .feed(&line)
            .map_err(|p| anyhow!("verification FAILED: {p}"))?;
    }
    let r = verifier
        .finish()
        .map_err(|p| anyhow!("verification FAILED: {p}"))?;
    let range = match r.first_index {
        Some(first) => format!("leaves {first}..{}", first + r.events + r.hashes_only),
        None => "no leaves".to_owned(),
    };
    println!(
        "verified export for {}: {} events with inclusion proofs, {} other leaves as hashes ({range}), \
         checkpoint tree size {} root {} signed by {}{}",
        if r.tenant == "*" {
            "every company".to_owned()
        } else {
            format!("company {}", r.tenant)
        },
        r.events,
        r.hashes_only,
        r.checkpoint.size,
        hex(&r.checkpoint.root),
        key.name(),
        if r.complete_tree {
            "; the whole tree was recomputed from the file"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn run(
    inst: &Installation,
    egress: &ward_core::egress::EgressPolicy,
    cmd: AuditCommand,
) -> Result<()> {
    let signer = ward_jobs::audit_log::checkpoint_signer(&inst.master, &inst.salt);
    match cmd {
        AuditCommand::PublicKey => {
            println!("{}", signer.verifier().encode());
            Ok(())
        }
        AuditCommand::Checkpoint => {
            integrate_if_free(&inst.store).await?;
            let c = sign_checkpoint(&inst.store, &signer, bootstrap::now()).await?;
            print!("{}", c.note);
            Ok(())
        }
        AuditCommand::Verify {
            export: Some(_), ..
        } => {
            unreachable!("offline verification is dispatched before opening the database")
        }
        AuditCommand::Verify {
            export: None,
            public_key,
            trusted_key,
        } => {
            if public_key.is_some() {
                bail!(
                    "--public-key applies to --export; the database is verified with this installation's key"
                );
            }
            verify_database(inst, &signer, &trusted_key).await
        }
        AuditCommand::Sink(cmd) => crate::audit_sinks::run(inst, egress, cmd).await,
        AuditCommand::Export {
            format,
            out,
            tenant,
            from,
            to,
            since,
            until,
            actor,
            action,
        } => {
            integrate_if_free(&inst.store).await?;
            let tenant = match tenant {
                Some(t) => Some(
                    inst.store
                        .find_tenant(&t)
                        .await?
                        .ok_or_else(|| anyhow!("no company with slug or id {t:?}"))?,
                ),
                None => None,
            };
            let time = |s: Option<String>, name: &str| -> Result<Option<Timestamp>> {
                s.map(|t| {
                    Timestamp::parse_rfc3339(&t)
                        .ok_or_else(|| anyhow!("--{name}: {t:?} is not an RFC 3339 time"))
                })
                .transpose()
            };
            let request = if format == "proofs" {
                if since.is_some() || until.is_some() || actor.is_some() || action.is_some() {
                    bail!(
                        "--format proofs selects leaves with --from and --to, not by time, actor or action"
                    );
                }
                ExportRequest::Verifiable {
                    tenant: tenant.as_ref().map(|t| t.id.clone()),
                    from: from.unwrap_or(0),
                    to,
                }
            } else {
                let f = ExportFormat::parse(&format).ok_or_else(|| {
                    anyhow!("--format: must be one of jsonl, ocsf, cef, csv, proofs")
                })?;
                if from.is_some() || to.is_some() {
                    bail!("--from and --to apply to --format proofs only");
                }
                ExportRequest::Events {
                    format: f,
                    filter: AuditFilter {
                        tenant_id: tenant.as_ref().map(|t| t.id.clone()),
                        action,
                        actor_id: actor,
                        since: time(since, "since")?,
                        until: time(until, "until")?,
                        ..AuditFilter::default()
                    },
                }
            };
            ward_server::audit_export::check_range(&inst.store, &request)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let e = AuditEvent::new(
                bootstrap::new_event_id()?,
                bootstrap::now(),
                tenant.as_ref().map(|t| t.id.clone()),
                ward_core::Actor::system("cli"),
                bootstrap::cli_context()?,
                actions::AUDIT_EXPORTED,
            )
            .details(serde_json::json!({ "format": format, "out": out.display().to_string() }));
            inst.store.record_audit(&e).await?;
            // Written to a temporary file and renamed: a failed export leaves nothing
            // that looks complete.
            let tmp = out.with_extension("partial");
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?,
            );
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
            let store = inst.store.clone();
            let job = tokio::spawn(async move {
                run_export(&store, &signer, request, bootstrap::now(), tx).await
            });
            while let Some(line) = rx.recv().await {
                file.write_all(line.as_bytes())
                    .with_context(|| format!("writing {}", tmp.display()))?;
            }
            let written = job
                .await
                .map_err(|e| anyhow!("export task failed: {e}"))?
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    anyhow!("export failed: {e}")
                })?;
            file.flush()?;
            drop(file);
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("cannot move the export to {}", out.display()))?;
            println!("exported {written} events to {}", out.display());
            Ok(())
        }
    }
}

/// Integrates pending events unless a running server holds the sequencer lease
/// (then it integrates them within a second anyway).
pub(crate) async fn integrate_if_free(store: &Store) -> Result<()> {
    let holder = format!("cli-{}", std::process::id());
    let now = bootstrap::now();
    if store
        .acquire_lease(LEASE_NAME, &holder, now, now.plus_seconds(60))
        .await?
    {
        let result = Sequencer::new().integrate_all(store, now, 5_000).await;
        store.release_lease(LEASE_NAME, &holder).await?;
        result?;
    }
    Ok(())
}

/// Recomputes every leaf from the stored events, rebuilds the tree, compares every
/// stored subtree and every checkpoint, and checks the tables' protection.
async fn verify_database(
    inst: &Installation,
    signer: &ward_audit::CheckpointSigner,
    previous_keys: &[String],
) -> Result<()> {
    // The current key, then previous keys the operator vouches for (from before
    // a master-secret rotation) — never keys read from the database itself.
    let mut trusted = vec![signer.verifier()];
    for k in previous_keys {
        trusted.push(read_key(k).context("--trusted-key")?);
    }
    let total = inst.store.audit_tree_size().await?;
    let progress = Progress::new(total);
    let report = ward_server::audit_verify::verify_log(&inst.store, &trusted, &mut |done, _| {
        progress.show(done)
    })
    .await?;
    progress.done();
    if report.problems.is_empty() {
        println!(
            "verified {} events, tree size {}, root {}; {} signed checkpoints; {} events awaiting integration",
            report.size,
            report.size,
            hex(&report.root),
            report.checkpoints,
            report.pending
        );
        Ok(())
    } else {
        for p in &report.problems {
            eprintln!("audit log: {p}");
        }
        bail!(
            "verification FAILED: {}",
            report.problems[report.problems.len() - 1]
        )
    }
}

/// A progress line on a terminal, nothing otherwise.
struct Progress {
    total: u64,
    terminal: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal() && total > VERIFY_PAGE,
        }
    }

    fn show(&self, done: u64) {
        if self.terminal {
            let pct = done * 100 / self.total.max(1);
            let filled = (pct / 4) as usize;
            eprint!(
                "\rverifying [{}{}] {pct:>3}% {done}/{}",
                "#".repeat(filled),
                " ".repeat(25 - filled),
                self.total
            );
        }
    }

    fn done(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    ward_jobs::audit_log::hex(bytes)
}
