//! Streaming audit exports, shared by `GET /api/v1/audit/export` and `ward audit
//! export`: plain formats (JSON Lines, OCSF, CEF, CSV) page through the events
//! oldest first; the verifiable format writes a signed checkpoint and then every
//! leaf of an index range — the company's events in full with inclusion proofs,
//! everyone else's as leaf hashes. Memory stays constant: pages of events go to a
//! bounded channel the caller drains.

use tokio::sync::mpsc::Sender;
use ward_audit::verify::hex;
use ward_audit::{CheckpointSigner, ExportLine, ExportManifest, IndexDigest};
use ward_core::audit_format::ExportFormat;
use ward_core::{TenantId, Timestamp};
use ward_store::{AuditFilter, Store, StoreError};

use ward_audit::tree::{hash_ranges, inclusion_ranges, nodes_needed};
use ward_jobs::audit_log::{ProofError, event_leaf, sign_checkpoint};

const PAGE: u32 = 1_000;

/// What to export.
#[derive(Debug, Clone)]
pub enum ExportRequest {
    /// Events matching the filter, in a plain format.
    Events {
        format: ExportFormat,
        filter: AuditFilter,
    },
    /// Leaves `[from, to)` (to defaults to the tree size) with proofs; `tenant`
    /// selects whose events appear in full (None: everyone's, an operator export).
    Verifiable {
        tenant: Option<TenantId>,
        from: u64,
        to: Option<u64>,
    },
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The receiver went away (client disconnected).
    #[error("export receiver closed")]
    Closed,
}

impl From<ProofError> for ExportError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::OutOfRange(m) => Self::OutOfRange(m),
            ProofError::Store(s) => Self::Store(s),
        }
    }
}

/// Checks a verifiable request's range before anything is sent, so a bad range is
/// a clean 400 rather than a truncated stream.
pub async fn check_range(store: &Store, request: &ExportRequest) -> Result<(), ExportError> {
    if let ExportRequest::Verifiable { from, to, .. } = request {
        let size = store.audit_tree_size().await?;
        let to = to.unwrap_or(size);
        if to > size {
            return Err(ExportError::OutOfRange(format!(
                "to {to} is larger than the tree ({size} leaves)"
            )));
        }
        if *from > to {
            return Err(ExportError::OutOfRange(format!(
                "from {from} is larger than to {to}"
            )));
        }
    }
    Ok(())
}

/// Writes the export to `out`, line by line. Returns the number of events written
/// in full.
pub async fn run_export(
    store: &Store,
    signer: &CheckpointSigner,
    request: ExportRequest,
    now: Timestamp,
    out: Sender<String>,
) -> Result<u64, ExportError> {
    let send = |line: String| {
        let out = out.clone();
        async move { out.send(line).await.map_err(|_| ExportError::Closed) }
    };
    match request {
        ExportRequest::Events { format, mut filter } => {
            filter.oldest_first = true;
            filter.before_seq = None;
            filter.limit = PAGE;
            if let Some(h) = format.header() {
                send(h).await?;
            }
            let mut written = 0u64;
            loop {
                let page = store.list_audit(&filter).await?;
                for e in &page {
                    send(format.line(e, e.leaf_index)).await?;
                    written += 1;
                }
                match page.last() {
                    Some(last) if page.len() == PAGE as usize => filter.after_seq = Some(last.seq),
                    _ => return Ok(written),
                }
            }
        }
        ExportRequest::Verifiable { tenant, from, to } => {
            let checkpoint = sign_checkpoint(store, signer, now).await?;
            let size = checkpoint.tree_size;
            let to = to.unwrap_or(size);
            if to > size || from > to {
                return Err(ExportError::OutOfRange(format!(
                    "range {from}..{to} is outside the tree ({size} leaves)"
                )));
            }
            send(line(&ExportLine::Checkpoint {
                note: checkpoint.note.clone(),
            }))
            .await?;
            let mut written = 0u64;
            let mut digest = IndexDigest::default();
            let mut start = from;
            while start < to {
                let end = (start + u64::from(PAGE)).min(to);
                let records = store.audit_leaf_records(start, end).await?;
                // One batched read of every stored subtree the page's proofs need,
                // instead of a query per event.
                let mut plans = std::collections::HashMap::new();
                for r in &records {
                    if r.event
                        .as_ref()
                        .is_some_and(|e| tenant.is_none() || e.tenant_id == tenant)
                    {
                        let ranges = inclusion_ranges(r.index, size).ok_or_else(|| {
                            ExportError::OutOfRange(format!("leaf {} is outside the tree", r.index))
                        })?;
                        plans.insert(r.index, ranges);
                    }
                }
                let needed: std::collections::BTreeSet<_> =
                    plans.values().flat_map(|r| nodes_needed(r)).collect();
                let nodes = store.audit_nodes(&needed).await?;
                for record in records {
                    let Some(event) = record.event else {
                        return Err(StoreError::Corrupt(format!(
                            "audit leaf {} has no event; run `ward audit verify`",
                            record.index
                        ))
                        .into());
                    };
                    let l = if let Some(ranges) = plans.get(&record.index) {
                        let proof = hash_ranges(ranges, &nodes).map_err(|id| {
                            StoreError::Corrupt(format!(
                                "audit tree node (level {}, index {}) is missing",
                                id.level, id.index
                            ))
                        })?;
                        written += 1;
                        digest.add(record.index);
                        ExportLine::Event {
                            index: record.index,
                            event: event.leaf_value(),
                            inclusion: proof.iter().map(hex).collect(),
                        }
                    } else {
                        ExportLine::Leaf {
                            index: record.index,
                            leaf_hash: hex(&event_leaf(&event)?),
                        }
                    };
                    send(line(&l)).await?;
                }
                start = end;
            }
            // The signed manifest closes the file: a verifier refuses a file cut
            // short, extended, or with one of the company's events hidden as a hash.
            let manifest = ExportManifest {
                origin: signer.verifier().name().to_owned(),
                tenant: tenant
                    .as_ref()
                    .map_or("*".to_owned(), |t| t.as_str().to_owned()),
                from,
                to,
                tree_size: size,
                events: written,
                digest: digest.finish(),
            };
            send(line(&ExportLine::Manifest {
                note: signer.sign_note(&manifest.body()),
            }))
            .await?;
            Ok(written)
        }
    }
}

fn line(l: &ExportLine) -> String {
    // Serializing these plain structs cannot fail. Unicode line breaks are
    // escaped so a line reader cannot split an event (the verifier parses JSON,
    // which reads the escape as the same character).
    let mut s =
        ward_core::audit_format::json_line_safe(serde_json::to_string(l).unwrap_or_default());
    s.push('\n');
    s
}
