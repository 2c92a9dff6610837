//! The fast path of `ward audit verify` for a SQLite file: the log is cut into
//! aligned chunks of 2^16 leaves, verified on every core at once, each thread
//! reading its chunks through its own direct connection; the chunk roots are then
//! folded into the whole tree. It answers only "clean" or "not clean": a log that
//! is not clean is verified again by the page-by-page path in `audit_verify`,
//! which names the first bad index. So this path must be sound, not diagnostic.
//!
//! Clean means: every leaf's event recomputes to its stored leaf hash, every
//! stored subtree equals the one recomputed, every checkpoint root equals the
//! recomputed root at its size, the leaves map to events in strictly increasing
//! `seq` (so no event is in two leaves), and the events at or below the newest
//! integrated `seq` are exactly the leaves (so none sits outside the tree). A log
//! that is correct but breaks the `seq` order (one restored from PostgreSQL) is
//! simply handed to the slower path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ward_audit::{Frontier, Hash, NodeId, leaf_hash};
use ward_core::audit::{LeafDetails, LeafFields};
use ward_store::{DirectLeaf, DirectLogReader, StoreError};

use ward_jobs::audit_log::write_leaf_bytes;

/// Leaves per chunk: 2^16. Large enough that per-chunk queries cost nothing,
/// small enough that two threads stay busy to the end. (Tests pass smaller ones.)
pub const CHUNK_LEVEL: u8 = 16;

/// What a clean log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanLog {
    pub size: u64,
    pub root: Hash,
    /// Events after the newest one in the verified tree: awaiting integration
    /// (or integrated while verification ran, on a live server).
    pub pending: u64,
}

/// One verified chunk, for the fold.
struct ChunkOutcome {
    chunk: u64,
    /// The chunk's frontier: its root when full, its peaks when it is the last.
    peaks: Vec<Hash>,
    first_seq: i64,
    last_seq: i64,
    /// For each checkpoint size inside the chunk, the chunk's peaks at that size.
    checkpoints: Vec<(u64, Vec<Hash>)>,
}

/// Verifies the log of `size` leaves in the SQLite file `path` against the
/// checkpoint roots `checkpoints` (tree size, root), in chunks of
/// `2^chunk_level` leaves. `Ok(None)` means not clean.
pub async fn verify_sqlite_file(
    path: PathBuf,
    size: u64,
    checkpoints: Vec<(u64, Hash)>,
    chunk_level: u8,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<CleanLog>, StoreError> {
    if chunk_level > 32 {
        return Ok(None);
    }
    let chunk = Chunking { level: chunk_level };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let work = tokio::task::spawn_blocking(move || {
        verify_blocking(&path, size, &checkpoints, chunk, threads, &counter)
    });
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => {
                return outcome.map_err(|e| {
                    StoreError::Unavailable(format!("verification stopped: {e}"))
                })?;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                progress(done.load(Ordering::Relaxed), size);
            }
        }
    }
}

/// The size of the chunks a log is cut into.
#[derive(Debug, Clone, Copy)]
struct Chunking {
    level: u8,
}

impl Chunking {
    fn leaves(self) -> u64 {
        1 << self.level
    }

    /// Leaves `[start, end)` of chunk `n` in a tree of `size`.
    fn range(self, n: u64, size: u64) -> (u64, u64) {
        let start = n << self.level;
        (start, (start + self.leaves()).min(size))
    }
}

fn verify_blocking(
    path: &Path,
    size: u64,
    checkpoints: &[(u64, Hash)],
    chunk: Chunking,
    threads: usize,
    done: &AtomicU64,
) -> Result<Option<CleanLog>, StoreError> {
    if checkpoints.iter().any(|(s, _)| *s > size || *s == 0) {
        return Ok(None);
    }
    let reader = DirectLogReader::open(path)?;
    // The newest event of the tree being verified (`size` leaves), not of the
    // table: a running server may integrate more while this reads.
    let newest_seq = match size.checked_sub(1) {
        None => 0,
        Some(last) => match reader.leaf_event_seq(last)? {
            Some(seq) => seq,
            None => return Ok(None),
        },
    };
    let pending = reader.events_between(Some(newest_seq), None)?;
    let chunks = size.div_ceil(chunk.leaves());
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let outcomes: Mutex<Vec<ChunkOutcome>> = Mutex::new(Vec::with_capacity(chunks as usize));
    let mut cp_sizes: Vec<u64> = checkpoints.iter().map(|(s, _)| *s).collect();
    cp_sizes.sort_unstable();
    let errors: Vec<StoreError> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<(), StoreError> {
                    let reader = DirectLogReader::open(path)?;
                    let mut scratch = Scratch::default();
                    while !failed.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= chunks {
                            break;
                        }
                        let outcome =
                            verify_chunk(&reader, chunk, n, size, &cp_sizes, &mut scratch);
                        match outcome {
                            Ok(Some(o)) => {
                                let (start, end) = chunk.range(n, size);
                                done.fetch_add(end - start, Ordering::Relaxed);
                                outcomes.lock().map_err(|_| poisoned())?.push(o);
                            }
                            Ok(None) => failed.store(true, Ordering::Relaxed),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(StoreError::Unavailable(
                    "a verification thread stopped".into(),
                )),
            })
            .collect()
    });
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    if failed.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let mut outcomes = outcomes.into_inner().map_err(|_| poisoned())?;
    outcomes.sort_unstable_by_key(|o| o.chunk);
    let Some(upper) = upper_nodes(&reader, chunk, size)? else {
        return Ok(None);
    };
    // Each chunk's scan saw every event between its first and last `seq`; the
    // gaps before and between chunks must hold none either.
    let mut before: Option<i64> = None;
    for o in &outcomes {
        if reader.events_between(before, Some(o.first_seq))? != 0 {
            return Ok(None);
        }
        before = Some(o.last_seq);
    }
    let roots: HashMap<u64, Hash> = checkpoints.iter().copied().collect();
    Ok(
        fold(outcomes, chunk, chunks, size, &upper, &roots, newest_seq).map(|root| CleanLog {
            size,
            root,
            pending,
        }),
    )
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("a verification thread failed".into())
}

/// The stored subtrees above chunk level (a few hundred at most); `None` if one
/// is missing.
fn upper_nodes(
    reader: &DirectLogReader,
    chunk: Chunking,
    size: u64,
) -> Result<Option<HashMap<NodeId, Hash>>, StoreError> {
    let mut out = HashMap::new();
    let mut hashes = Vec::new();
    for level in chunk.level + 1..64 {
        let count = size >> level;
        if count == 0 {
            break;
        }
        hashes.clear();
        if !reader.level_hashes(level, 0, count, &mut hashes)? {
            return Ok(None);
        }
        out.extend(hashes.iter().enumerate().map(|(index, hash)| {
            (
                NodeId {
                    level,
                    index: index as u64,
                },
                *hash,
            )
        }));
    }
    Ok(Some(out))
}

/// Folds the chunk roots into the whole tree, checking the subtrees above chunk
/// level, every checkpoint root, and the `seq` order across chunks. Returns the
/// root, or `None` if anything differs.
fn fold(
    outcomes: Vec<ChunkOutcome>,
    chunk: Chunking,
    chunks: u64,
    size: u64,
    upper: &HashMap<NodeId, Hash>,
    roots: &HashMap<u64, Hash>,
    newest_seq: i64,
) -> Option<Hash> {
    if outcomes.len() as u64 != chunks {
        return None;
    }
    let mut tree = Frontier::new();
    let mut last_seq: Option<i64> = None;
    for o in outcomes {
        if last_seq.is_some_and(|s| s >= o.first_seq) {
            return None;
        }
        last_seq = Some(o.last_seq);
        let (start, end) = chunk.range(o.chunk, size);
        for (at, local) in &o.checkpoints {
            // At a full chunk's end the chunk root may merge with the tree's
            // peaks; that size is checked once the root is appended, below.
            if *at == start + chunk.leaves() {
                continue;
            }
            // Inside a chunk the tree's peaks (all above chunk level) and the
            // chunk's (all below) are the peaks of the tree at that size.
            let peaks = [tree.peaks(), local.as_slice()].concat();
            let root = Frontier::from_peaks(*at, peaks)?.root();
            if roots.get(at) != Some(&root) {
                return None;
            }
        }
        if end - start == chunk.leaves() {
            let [root] = o.peaks.as_slice() else {
                return None;
            };
            let mut altered = false;
            let aligned = tree.append_perfect(chunk.level, *root, |id, hash| {
                if id.level > chunk.level && upper.get(&id) != Some(hash) {
                    altered = true;
                }
            });
            if !aligned || altered {
                return None;
            }
            if let Some(root) = roots.get(&tree.size())
                && *root != tree.root()
            {
                return None;
            }
        } else {
            tree = Frontier::from_peaks(size, [tree.peaks(), o.peaks.as_slice()].concat())?;
        }
    }
    if size > 0 && last_seq != Some(newest_seq) {
        return None;
    }
    (tree.size() == size).then(|| tree.root())
}

/// Buffers a verifier thread reuses from chunk to chunk.
#[derive(Default)]
struct Scratch {
    levels: Vec<Vec<Hash>>,
    bytes: Vec<u8>,
}

/// Verifies the leaves of chunk `n`; `None` if anything is wrong.
fn verify_chunk(
    reader: &DirectLogReader,
    chunk: Chunking,
    n: u64,
    size: u64,
    checkpoint_sizes: &[u64],
    scratch: &mut Scratch,
) -> Result<Option<ChunkOutcome>, StoreError> {
    let (start, end) = chunk.range(n, size);
    // Every stored subtree that lies inside the chunk, level by level.
    scratch
        .levels
        .resize_with(usize::from(chunk.level) + 1, Vec::new);
    for level in 0..=chunk.level {
        let (lo, hi) = (start >> level, end >> level);
        let stored = &mut scratch.levels[usize::from(level)];
        stored.clear();
        if !reader.level_hashes(level, lo, hi, stored)? {
            return Ok(None);
        }
    }
    let first_cp = checkpoint_sizes.partition_point(|s| *s <= start);
    let mut cps = checkpoint_sizes[first_cp..]
        .iter()
        .copied()
        .take_while(|s| *s <= end)
        .peekable();
    let mut checkpoints = Vec::new();
    let mut frontier = Frontier::new();
    let mut clean = true;
    let mut first_seq = None;
    let mut last_seq = i64::MIN;
    let levels = &scratch.levels;
    let bytes = &mut scratch.bytes;
    let merged = reader.for_each_leaf(start, end, |leaf: DirectLeaf<'_>| {
        let position = frontier.size();
        let ok = leaf.index == start + position
            && leaf.event_seq > last_seq
            && leaf
                .event
                .is_some_and(|fields| leaf_matches(&fields, bytes, &levels[0][position as usize]));
        if !ok {
            clean = false;
            return false;
        }
        first_seq.get_or_insert(leaf.event_seq);
        last_seq = leaf.event_seq;
        let leaf_hash = levels[0][position as usize];
        frontier.append_perfect(0, leaf_hash, |id, hash| {
            if id.level > 0 && levels[usize::from(id.level)].get(id.index as usize) != Some(hash) {
                clean = false;
            }
        });
        if cps.peek() == Some(&(start + frontier.size())) {
            cps.next();
            checkpoints.push((start + frontier.size(), frontier.peaks().to_vec()));
        }
        clean
    })?;
    if !merged || !clean || frontier.size() != end - start {
        return Ok(None);
    }
    Ok(Some(ChunkOutcome {
        chunk: n,
        peaks: frontier.peaks().to_vec(),
        first_seq: first_seq.unwrap_or(i64::MAX),
        last_seq,
        checkpoints,
    }))
}

/// Whether an event read directly hashes to the stored leaf. The stored details
/// are hashed as they are (Ward stores them canonically), which is sound whatever
/// they hold because the leaf encoding is injective (docs/audit.md): a match
/// means every column is the one committed. If that differs, the details are
/// parsed and canonicalized before the event counts as changed, so equivalent
/// JSON stored otherwise (spacing, key order) still verifies.
fn leaf_matches(fields: &LeafFields<'_>, bytes: &mut Vec<u8>, stored: &Hash) -> bool {
    let LeafDetails::StoredText(text) = fields.details else {
        return false;
    };
    bytes.clear();
    if write_leaf_bytes(fields, bytes).is_ok() && leaf_hash(bytes) == *stored {
        return true;
    }
    let Ok(details) = serde_json::from_slice::<serde_json::Value>(text) else {
        return false;
    };
    let parsed = LeafFields {
        details: LeafDetails::Parsed(&details),
        ..*fields
    };
    bytes.clear();
    write_leaf_bytes(&parsed, bytes).is_ok() && leaf_hash(bytes) == *stored
}
