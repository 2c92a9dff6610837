//! Full verification of the stored audit log: every leaf recomputed from its
//! event, the tree rebuilt and compared with every stored subtree and every
//! checkpoint (root and signature), events outside the tree found, and the
//! tables' append-only protection checked. Reports the first bad index.

use std::collections::HashMap;

use ward_audit::{CheckpointVerifier, Frontier, Hash, NodeId, Problem};
use ward_store::{LeafRecord, Store, StoreError, StoredCheckpoint};

use crate::audit_verify_parallel::{CHUNK_LEVEL, verify_sqlite_file};
use ward_jobs::audit_log::event_leaf;

/// Leaves read per page.
pub const VERIFY_PAGE: u64 = 20_000;
/// Pages being read while one is checked.
const READ_AHEAD: usize = 2;
/// An event in no leaf counts as inserted once the sequencer has integrated later
/// events more than this long after it occurred (a late commit takes milliseconds).
const INSERTED_GRACE_MILLIS: i64 = 60_000;

#[derive(Debug)]
pub struct VerifyReport {
    pub size: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub pending: u64,
    /// Empty when the log verified. Schema problems first, then the first bad index.
    pub problems: Vec<Problem>,
}

type Page = Result<(Vec<LeafRecord>, HashMap<NodeId, Hash>), StoreError>;

fn fetch(store: &Store, start: u64, end: u64) -> tokio::task::JoinHandle<Page> {
    let store = store.clone();
    tokio::spawn(async move { store.audit_verify_page(start, end).await })
}

/// Verifies the whole log. `trusted` are the keys checkpoints may be signed with:
/// this installation's current key first, then any previous keys the operator
/// vouches for (never keys named by data in the database being verified). `progress` is called after each page with (done, total).
pub async fn verify_log(
    store: &Store,
    trusted: &[CheckpointVerifier],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    // A SQLite file is first verified on every core through direct reads; only a
    // log that is not clean takes the page-by-page path, which names the first
    // bad index.
    if let Some(path) = store.sqlite_file().map(|p| p.to_path_buf()) {
        let size = store.audit_tree_size().await?;
        let checkpoints = store.audit_checkpoints().await?;
        let roots = checkpoints.iter().map(|c| (c.tree_size, c.root)).collect();
        if let Some(clean) = verify_sqlite_file(path, size, roots, CHUNK_LEVEL, progress).await? {
            let mut problems = schema_problems(store).await?;
            problems.extend(checkpoint_problem(&checkpoints, size, trusted));
            progress(size, size);
            return Ok(VerifyReport {
                size,
                root: clean.root,
                checkpoints: checkpoints.len(),
                pending: clean.pending,
                problems,
            });
        }
    }
    verify_log_by_pages(store, trusted, progress).await
}

async fn schema_problems(store: &Store) -> Result<Vec<Problem>, StoreError> {
    Ok(store
        .audit_schema_problems()
        .await?
        .into_iter()
        .map(Problem::Schema)
        .collect())
}

/// Verifies the log page by page through the pool, naming the first bad index.
/// Works on both backends; `verify_log` uses it for PostgreSQL and whenever the
/// parallel path finds a SQLite log not clean.
pub async fn verify_log_by_pages(
    store: &Store,
    trusted: &[CheckpointVerifier],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    let mut problems = schema_problems(store).await?;
    let size = store.audit_tree_size().await?;
    let checkpoints = store.audit_checkpoints().await?;
    let by_size: HashMap<u64, Hash> = checkpoints.iter().map(|c| (c.tree_size, c.root)).collect();
    let mut frontier = Frontier::new();
    let mut first_bad: Option<Problem> = None;
    // Reading the next pages overlaps with hashing this one: SQLite builds each
    // page's document on its own connection, so two readers run side by side.
    let mut ahead: std::collections::VecDeque<_> = std::collections::VecDeque::new();
    let mut fetched_to = 0u64;
    let mut start = 0u64;
    'pages: while start < size {
        while ahead.len() < READ_AHEAD && fetched_to < size {
            let to = (fetched_to + VERIFY_PAGE).min(size);
            ahead.push_back(fetch(store, fetched_to, to));
            fetched_to = to;
        }
        let Some(pending_page) = ahead.pop_front() else {
            break;
        };
        let end = (start + VERIFY_PAGE).min(size);
        let (records, stored_nodes) = pending_page
            .await
            .map_err(|e| StoreError::Unavailable(format!("verification reader stopped: {e}")))??;
        let mut expected = start;
        for r in records {
            if r.index != expected {
                first_bad = Some(Problem::Missing { index: expected });
                break 'pages;
            }
            expected += 1;
            let Some(event) = r.event else {
                first_bad = Some(Problem::Missing { index: r.index });
                break 'pages;
            };
            let leaf = event_leaf(&event)?;
            match r.leaf_hash {
                Some(stored) if stored == leaf => {}
                Some(_) => {
                    first_bad = Some(match find_leaf(store, &leaf, size).await? {
                        Some(holds) if holds != r.index => Problem::Reordered {
                            index: r.index,
                            holds,
                        },
                        _ => Problem::Modified { index: r.index },
                    });
                    break 'pages;
                }
                None => {
                    first_bad = Some(Problem::NodeAltered {
                        node: NodeId {
                            level: 0,
                            index: r.index,
                        },
                    });
                    break 'pages;
                }
            }
            for (id, hash) in frontier.append(leaf).into_iter().skip(1) {
                if stored_nodes.get(&id) != Some(&hash) {
                    first_bad = Some(Problem::NodeAltered { node: id });
                    break 'pages;
                }
            }
            if let Some(root) = by_size.get(&frontier.size())
                && *root != frontier.root()
            {
                first_bad = Some(Problem::CheckpointRoot {
                    size: frontier.size(),
                });
                break 'pages;
            }
        }
        if expected < end {
            first_bad = Some(Problem::Missing { index: expected });
            break;
        }
        progress(end, size);
        start = end;
    }
    for h in ahead {
        h.abort();
    }
    if let Some((index, event_id)) = store.audit_inserted_event(INSERTED_GRACE_MILLIS).await? {
        let inserted = Problem::Inserted { index, event_id };
        first_bad = Some(match first_bad {
            Some(p) if problem_index(&p).unwrap_or(u64::MAX) <= index => p,
            _ => inserted,
        });
    }
    if let Some(p) = first_bad {
        problems.push(p);
    } else {
        problems.extend(checkpoint_problem(&checkpoints, size, trusted));
    }
    Ok(VerifyReport {
        size,
        root: frontier.root(),
        checkpoints: checkpoints.len(),
        pending: store.audit_pending_count().await?,
        problems,
    })
}

/// The first checkpoint beyond the log (truncation) or not signed by a trusted
/// key over its stored size and root.
fn checkpoint_problem(
    checkpoints: &[StoredCheckpoint],
    size: u64,
    trusted: &[CheckpointVerifier],
) -> Option<Problem> {
    for c in checkpoints {
        if c.tree_size > size {
            return Some(Problem::Truncated {
                checkpoint_size: c.tree_size,
                tree_size: size,
            });
        }
        let verified = trusted.iter().any(|k| {
            k.verify(&c.note)
                .is_ok_and(|cp| cp.size == c.tree_size && cp.root == c.root)
        });
        if !verified {
            let reason = trusted
                .first()
                .and_then(|k| k.verify(&c.note).err())
                .map_or(
                    "the note does not match the stored size and root".to_owned(),
                    |e| e.to_string(),
                );
            return Some(Problem::BadSignature {
                size: c.tree_size,
                reason,
            });
        }
    }
    None
}

fn problem_index(p: &Problem) -> Option<u64> {
    match p {
        Problem::Modified { index }
        | Problem::Missing { index }
        | Problem::Reordered { index, .. }
        | Problem::Inserted { index, .. } => Some(*index),
        Problem::NodeAltered { node } => Some(node.index << node.level),
        _ => None,
    }
}

/// Where a leaf hash sits among the stored leaves (for naming a moved event).
async fn find_leaf(store: &Store, leaf: &Hash, size: u64) -> Result<Option<u64>, StoreError> {
    let mut start = 0;
    while start < size {
        let end = (start + VERIFY_PAGE).min(size);
        for (i, h) in store.audit_leaf_hashes(start, end).await? {
            if &h == leaf {
                return Ok(Some(i));
            }
        }
        start = end;
    }
    Ok(None)
}
