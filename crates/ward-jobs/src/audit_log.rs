//! The tamper-evident audit log at work: the sequencer that turns committed
//! events into Merkle leaves, checkpoint signing, and proofs served from stored
//! subtrees. Used by `ward serve` (one sequencer across instances, by lease) and by
//! the CLI.

use std::time::Duration;

use sha2::{Digest, Sha256};
use ward_audit::tree::{consistency_ranges, hash_ranges, inclusion_ranges, nodes_needed};
use ward_audit::{
    Checkpoint, CheckpointSigner, Frontier, Hash, leaf_hash, write_canonical, write_canonical_text,
};
use ward_core::Timestamp;
use ward_core::audit::{LeafDetails, LeafFields, StoredAuditEvent};
use ward_crypto::{InstallationSalt, MasterSecret, Purpose};
use ward_store::{Conflict, NewLeaf, Store, StoreError, StoredCheckpoint};

pub const LEASE_NAME: &str = "audit-sequencer";

/// How far below the newest integrated `seq` each pass looks for events whose
/// transaction committed late. Anything older is found by the periodic full sweep.
const LATE_COMMIT_WINDOW: i64 = 10_000;

/// The checkpoint key: Ed25519 from the master secret's "audit" purpose key. The
/// origin names this installation (from its salt), so two Ward logs never share one.
pub fn checkpoint_signer(master: &MasterSecret, salt: &InstallationSalt) -> CheckpointSigner {
    let fingerprint = Sha256::digest(salt.as_bytes());
    let origin = format!("ward/{}", hex(&fingerprint[..8]));
    let seed = master.derive(salt, Purpose::Audit).seed_bytes();
    CheckpointSigner::from_seed(&origin, *seed)
}

/// The leaf a stored event commits to: SHA-256(0x00 ‖ RFC 8785 canonical JSON of
/// `StoredAuditEvent::leaf_value`).
pub fn event_leaf(event: &StoredAuditEvent) -> Result<Hash, StoreError> {
    Ok(leaf_hash(&leaf_bytes(event)?))
}

/// The canonical bytes of `leaf_value()`, written member by member in canonical
/// (sorted) order without building a JSON tree — the verifier's hot path. A test
/// holds it equal to `canonical_json(&e.leaf_value())`.
pub fn leaf_bytes(e: &StoredAuditEvent) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(512);
    write_leaf_bytes(&e.leaf_fields(), &mut out)?;
    Ok(out)
}

/// Appends the canonical leaf bytes of `e` to `out` (cleared by the caller).
pub fn write_leaf_bytes(e: &LeafFields<'_>, out: &mut Vec<u8>) -> Result<(), StoreError> {
    fn opt(out: &mut Vec<u8>, v: Option<&[u8]>) {
        match v {
            Some(s) => write_canonical_text(s, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"{\"action\":");
    write_canonical_text(e.action, out);
    out.extend_from_slice(b",\"actor_id\":");
    opt(out, e.actor_id);
    out.extend_from_slice(b",\"actor_kind\":");
    write_canonical_text(e.actor_kind, out);
    out.extend_from_slice(b",\"actor_label\":");
    write_canonical_text(e.actor_label, out);
    out.extend_from_slice(b",\"details\":");
    match e.details {
        LeafDetails::Parsed(v) => write_canonical(v, out).map_err(|err| {
            StoreError::Corrupt(format!(
                "audit event {}: {err}",
                String::from_utf8_lossy(e.id)
            ))
        })?,
        LeafDetails::StoredText(text) => out.extend_from_slice(text),
    }
    out.extend_from_slice(b",\"id\":");
    write_canonical_text(e.id, out);
    out.extend_from_slice(b",\"ip\":");
    write_canonical_text(e.ip, out);
    out.extend_from_slice(b",\"occurred_at\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.occurred_at).as_bytes());
    out.extend_from_slice(b",\"outcome\":");
    write_canonical_text(e.outcome, out);
    out.extend_from_slice(b",\"request_id\":");
    write_canonical_text(e.request_id, out);
    out.extend_from_slice(b",\"target_id\":");
    opt(out, e.target_id);
    out.extend_from_slice(b",\"target_kind\":");
    opt(out, e.target_kind);
    out.extend_from_slice(b",\"tenant_id\":");
    opt(out, e.tenant_id);
    out.extend_from_slice(b",\"user_agent\":");
    write_canonical_text(e.user_agent, out);
    out.push(b'}');
    Ok(())
}

/// Rebuilds the frontier of the stored tree of `size` leaves.
pub async fn load_frontier(store: &Store, size: u64) -> Result<Frontier, StoreError> {
    let ids = Frontier::peak_nodes(size);
    let nodes = store.audit_nodes(&ids.iter().copied().collect()).await?;
    let peaks = ids
        .iter()
        .map(|id| {
            nodes.get(id).copied().ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "audit tree node (level {}, index {}) is missing",
                    id.level, id.index
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Frontier::from_peaks(size, peaks)
        .ok_or_else(|| StoreError::Corrupt("audit tree frontier".into()))
}

/// Integrates committed events into the tree. Holds the frontier between passes so
/// a pass costs one read of pending events and one write transaction.
#[derive(Debug, Default)]
pub struct Sequencer {
    frontier: Option<Frontier>,
    newest_seq: i64,
    /// While sweeping (looking at every event, not only recent ones): the `seq`
    /// the sweep has reached. Each pass continues from it, so a sweep over a large
    /// backlog is one ordered walk, not a rescan per batch.
    sweep_from: Option<i64>,
}

impl Sequencer {
    pub fn new() -> Self {
        Self {
            frontier: None,
            newest_seq: 0,
            // The first passes look at everything: events written while no
            // sequencer ran (the CLI, a crash) are integrated first.
            sweep_from: Some(-1),
        }
    }

    /// Asks the next pass to look at every event, not only recent ones.
    pub fn schedule_sweep(&mut self) {
        self.sweep_from = Some(-1);
    }

    /// One batch: returns how many events became leaves.
    pub async fn integrate(
        &mut self,
        store: &Store,
        now: Timestamp,
        batch: u32,
    ) -> Result<usize, StoreError> {
        let size = store.audit_tree_size().await?;
        let mut frontier = match self.frontier.take() {
            Some(f) if f.size() == size => f,
            _ => load_frontier(store, size).await?,
        };
        let floor = self
            .sweep_from
            .unwrap_or(self.newest_seq - LATE_COMMIT_WINDOW);
        let events = store.pending_audit_events(floor, batch).await?;
        // Where the sweep continues once this batch is stored (None: finished).
        let next_sweep = self.sweep_from.and_then(|_| {
            if events.len() < batch as usize {
                None
            } else {
                events.last().map(|e| e.seq)
            }
        });
        if events.is_empty() {
            if self.sweep_from.is_some() {
                // The sweep found nothing: later passes look only at a window
                // below the newest leaf, not at the whole table again.
                self.newest_seq = self
                    .newest_seq
                    .max(store.audit_newest_integrated_seq().await?);
            }
            self.sweep_from = next_sweep;
            self.frontier = Some(frontier);
            return Ok(0);
        }
        let mut leaves = Vec::with_capacity(events.len());
        for e in &events {
            leaves.push(NewLeaf {
                event_seq: e.seq,
                nodes: frontier.append(event_leaf(e)?),
            });
        }
        match store.append_audit_leaves(size, &leaves, now).await {
            Ok(()) => {
                self.frontier = Some(frontier);
                self.sweep_from = next_sweep;
                self.newest_seq = events.iter().map(|e| e.seq).fold(self.newest_seq, i64::max);
                Ok(events.len())
            }
            // Another writer got there first: reload next time. (A conflict
            // that repeats means rows the sequencer did not write; verify says
            // which.)
            Err(StoreError::Conflict(Conflict::Other)) => {
                tracing::warn!(size, "audit tree changed under the sequencer; reloading");
                self.frontier = None;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Integrates until nothing is pending.
    pub async fn integrate_all(
        &mut self,
        store: &Store,
        now: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = self.integrate(store, now, batch).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }
}

/// Signs a checkpoint of the current tree unless the newest one already covers it.
pub async fn sign_checkpoint(
    store: &Store,
    signer: &CheckpointSigner,
    now: Timestamp,
) -> Result<StoredCheckpoint, StoreError> {
    recent_checkpoint(store, signer, now, 0).await
}

/// The newest checkpoint if it covers the whole tree or is younger than
/// `max_age_secs`; otherwise a new one. Callers any signed-in Viewer can reach
/// use a non-zero age, so they cannot make Ward sign (and store, forever) a
/// checkpoint per request.
pub async fn recent_checkpoint(
    store: &Store,
    signer: &CheckpointSigner,
    now: Timestamp,
    max_age_secs: i64,
) -> Result<StoredCheckpoint, StoreError> {
    let size = store.audit_tree_size().await?;
    if let Some(latest) = store.latest_audit_checkpoint().await?
        && (latest.tree_size == size || now.seconds_since(latest.issued_at) < max_age_secs)
    {
        return Ok(latest);
    }
    let root = load_frontier(store, size).await?.root();
    let checkpoint = Checkpoint {
        origin: signer.verifier().name().to_owned(),
        size,
        root,
        time_millis: now.millis(),
    };
    let stored = StoredCheckpoint {
        tree_size: size,
        root,
        issued_at: now,
        note: signer.sign(&checkpoint),
    };
    store.insert_audit_checkpoint(&stored).await?;
    Ok(store.latest_audit_checkpoint().await?.unwrap_or(stored))
}

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The audit path of leaf `index` in the tree of `size` leaves.
pub async fn inclusion_proof(
    store: &Store,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    let ranges = inclusion_ranges(index, size)
        .ok_or_else(|| ProofError::OutOfRange(format!("index {index} is not below size {size}")))?;
    fetch(store, &ranges, size, "size").await
}

/// The consistency proof from the tree of `from` leaves to the tree of `to`.
pub async fn consistency_proof(store: &Store, from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    let ranges = consistency_ranges(from, to).ok_or_else(|| {
        ProofError::OutOfRange(format!("from must be between 1 and to ({to}), got {from}"))
    })?;
    fetch(store, &ranges, to, "to").await
}

/// The proof's subtrees, read with the tree size in one statement; a proof for
/// a tree larger than the stored one (`size`, named `what` in the request) is
/// out of range.
async fn fetch(
    store: &Store,
    ranges: &[ward_audit::LeafRange],
    size: u64,
    what: &str,
) -> Result<Vec<Hash>, ProofError> {
    let (tree, nodes) = store
        .audit_tree_size_and_nodes(&nodes_needed(ranges))
        .await?;
    if size > tree {
        return Err(ProofError::OutOfRange(format!(
            "{what} {size} is larger than the tree ({tree} leaves)"
        )));
    }
    hash_ranges(ranges, &nodes).map_err(|id| {
        ProofError::Store(StoreError::Corrupt(format!(
            "audit tree node (level {}, index {}) is missing",
            id.level, id.index
        )))
    })
}

/// Sequencer and checkpoint cadence.
#[derive(Debug, Clone, Copy)]
pub struct SequencerSettings {
    /// Pause between integration passes (bounds the delay before an event is a leaf).
    pub interval: Duration,
    /// How often a checkpoint is signed when the tree has grown.
    pub checkpoint_interval: Duration,
    /// Events per integration transaction.
    pub batch_size: u32,
    /// How often every event (not only recent ones) is checked for integration.
    pub sweep_interval: Duration,
    pub lease_ttl: Duration,
}

impl Default for SequencerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(200),
            checkpoint_interval: Duration::from_secs(60),
            batch_size: 5_000,
            sweep_interval: Duration::from_secs(3600),
            // A crashed sequencer's successor waits at most this long.
            lease_ttl: Duration::from_secs(3),
        }
    }
}

/// The sequencer as a job of `ward serve`: one instance at a time (lease
/// `audit-sequencer`) integrates committed events into the tree, sweeps every
/// event now and then, and signs a checkpoint every `checkpoint_interval`.
pub struct SequencerJob {
    store: Store,
    signer: std::sync::Arc<CheckpointSigner>,
    settings: SequencerSettings,
    sequencer: Sequencer,
    last_checkpoint: Option<Timestamp>,
    last_sweep: Option<Timestamp>,
}

impl SequencerJob {
    pub fn new(
        store: Store,
        signer: std::sync::Arc<CheckpointSigner>,
        settings: SequencerSettings,
    ) -> Self {
        Self {
            store,
            signer,
            settings,
            sequencer: Sequencer::new(),
            last_checkpoint: None,
            last_sweep: None,
        }
    }
}

fn due(last: &mut Option<Timestamp>, now: Timestamp, every: Duration) -> bool {
    match *last {
        // The first pass starts the count (the sequencer's first integration
        // already looks at everything).
        None => {
            *last = Some(now);
            false
        }
        Some(at) if now.millis().saturating_sub(at.millis()) >= crate::runner::millis(every) => {
            *last = Some(now);
            true
        }
        Some(_) => false,
    }
}

impl crate::Job for SequencerJob {
    fn name(&self) -> &'static str {
        LEASE_NAME
    }

    fn schedule(&self) -> crate::Schedule {
        crate::Schedule {
            interval: self.settings.interval,
            lease_ttl: self.settings.lease_ttl,
        }
    }

    async fn pass(&mut self, now: Timestamp) -> Result<crate::Outcome, crate::JobError> {
        if due(&mut self.last_sweep, now, self.settings.sweep_interval) {
            self.sequencer.schedule_sweep();
        }
        let n = self
            .sequencer
            .integrate_all(&self.store, now, self.settings.batch_size)
            .await?;
        if n > 0 {
            metrics::counter!("ward_audit_leaves_integrated_total").increment(n);
        }
        if due(
            &mut self.last_checkpoint,
            now,
            self.settings.checkpoint_interval,
        ) {
            let c = sign_checkpoint(&self.store, &self.signer, now).await?;
            metrics::gauge!("ward_audit_tree_size").set(c.tree_size as f64);
        }
        Ok(crate::Outcome::Idle)
    }

    fn lease_lost(&mut self) {
        // Another instance's frontier is not ours.
        self.sequencer = Sequencer::new();
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ward_core::audit::{Actor, ActorKind};
    use ward_core::{EventId, RequestContext, TenantId};

    #[test]
    fn the_fast_leaf_encoding_is_the_canonical_one() {
        let strings = [
            "",
            "plain",
            "quote\" back\\ slash",
            "ctl\u{1}\n\t",
            "ünï€😀",
            "<>&'",
        ];
        for (i, s) in strings.iter().enumerate() {
            let e = StoredAuditEvent {
                seq: i as i64,
                leaf_index: None,
                id: EventId::from_stored(format!("id-{s}")),
                occurred_at: ward_core::Timestamp::from_millis(-5 + i as i64 * 1_000_000_007),
                tenant_id: (i % 2 == 0).then(|| TenantId::from_stored((*s).into())),
                actor: Actor {
                    kind: [ActorKind::User, ActorKind::System][i % 2],
                    id: (i % 3 == 0).then(|| s.to_string()),
                    label: s.to_string(),
                },
                context: RequestContext {
                    ip: s.to_string(),
                    user_agent: s.to_string(),
                    request_id: s.to_string(),
                },
                action: format!("a.{s}"),
                target_kind: (i % 2 == 1).then(|| s.to_string()),
                target_id: Some(s.to_string()),
                outcome: "success".into(),
                details: json!({ "z": [s, i, null, true], "a": { s.to_string(): -1 } }),
            };
            let slow = ward_audit::canonical_json(&e.leaf_value()).expect("canonical");
            assert_eq!(leaf_bytes(&e).expect("fast"), slow, "{s:?}");
        }
    }
}
