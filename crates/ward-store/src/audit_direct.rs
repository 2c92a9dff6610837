//! A direct, read-only SQLite reader for verifying the audit log at full speed.
//! Verification reads every event and every stored subtree; through sqlx each row
//! is copied out of SQLite and handed across from its worker thread, which caps
//! it far below what hashing can do. Here each verifier thread owns a plain
//! connection and borrows the columns in place. Only verification uses it; every
//! write and every other read goes through sqlx.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use ward_audit::Hash;
use ward_core::audit::{LeafDetails, LeafFields};

use crate::{Store, StoreError};

/// One leaf as the direct reader sees it.
#[derive(Debug, Clone, Copy)]
pub struct DirectLeaf<'a> {
    pub index: u64,
    /// The `seq` of the event the leaf maps to.
    pub event_seq: i64,
    /// The event's columns, borrowed for the duration of the visit; `None` when
    /// the event is gone or a column has a type it never has when Ward writes it.
    /// `details` is `LeafDetails::StoredText`, not checked to be JSON.
    pub event: Option<LeafFields<'a>>,
}

/// A read-only connection to a SQLite audit log, for one thread.
pub struct DirectLogReader {
    conn: Connection,
}

fn read_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("reading the audit log: {e}"))
}

impl Store {
    /// The file of a SQLite store (`None` for PostgreSQL and in-memory SQLite),
    /// as SQLite itself reported it, for opening `DirectLogReader`s.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }
}

impl DirectLogReader {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(read_error)?;
        // A large page cache and the whole file memory-mapped (up to 1 TiB, the
        // ceiling set in .cargo/config.toml): verification streams the whole log
        // once, reading pages in place instead of copying each out of the kernel,
        // and the readers must not wait on a running server.
        conn.execute_batch(
            "PRAGMA query_only = ON; PRAGMA cache_size = -65536; \
             PRAGMA mmap_size = 1099511627776; PRAGMA busy_timeout = 10000;",
        )
        .map_err(read_error)?;
        Ok(Self { conn })
    }

    /// The stored subtree hashes at `level` with node indexes in `[from, to)`,
    /// in index order, appended to `out`; false unless there is exactly one
    /// 32-byte hash for every index.
    pub fn level_hashes(
        &self,
        level: u8,
        from: u64,
        to: u64,
        out: &mut Vec<Hash>,
    ) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT node_index, hash FROM audit_tree WHERE level = ?1 \
                 AND node_index >= ?2 AND node_index < ?3 ORDER BY node_index",
            )
            .map_err(read_error)?;
        let mut rows = stmt
            .query((i64::from(level), from as i64, to as i64))
            .map_err(read_error)?;
        let mut expected = from;
        while let Some(row) = rows.next().map_err(read_error)? {
            let (ValueRef::Integer(index), ValueRef::Blob(hash)) = (
                row.get_ref(0).map_err(read_error)?,
                row.get_ref(1).map_err(read_error)?,
            ) else {
                return Ok(false);
            };
            let Ok(hash) = Hash::try_from(hash) else {
                return Ok(false);
            };
            if index as u64 != expected {
                return Ok(false);
            }
            expected += 1;
            out.push(hash);
        }
        Ok(expected == to.max(from))
    }

    /// Calls `visit` for each leaf in `[from, to)`, in leaf order, until it
    /// returns false. Built for logs whose leaves map to events in increasing
    /// `seq` order (every SQLite log: its sequencer integrates in commit order,
    /// which is `seq` order): the leaves and the events are read as two
    /// sequential scans and merged, instead of one index lookup per leaf. Returns
    /// false, after visiting the leaves before it, at the first leaf that breaks
    /// that order or the first event between two leaves' `seq`s that is in
    /// neither; a leaf whose event is gone is visited with `event: None`.
    pub fn for_each_leaf(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(DirectLeaf<'_>) -> bool,
    ) -> Result<bool, StoreError> {
        let mut leaves: Vec<(u64, i64)> = Vec::with_capacity((to - from) as usize);
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT leaf_index, event_seq FROM audit_leaves \
                     WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index",
                )
                .map_err(read_error)?;
            let mut rows = stmt.query((from as i64, to as i64)).map_err(read_error)?;
            while let Some(row) = rows.next().map_err(read_error)? {
                let (ValueRef::Integer(index), ValueRef::Integer(seq)) = (
                    row.get_ref(0).map_err(read_error)?,
                    row.get_ref(1).map_err(read_error)?,
                ) else {
                    return Ok(false);
                };
                if leaves.last().is_some_and(|(_, last)| *last >= seq) {
                    return Ok(false);
                }
                leaves.push((index as u64, seq));
            }
        }
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return Ok(true);
        };
        // One packed text per event instead of fourteen columns: the per-column
        // cost of the binding, not SQL, dominates a scan of millions of rows.
        // `nulls` says which nullable columns are NULL (concat_ws skips them);
        // the separator is a byte no valid UTF-8 text holds (see `unpack`).
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, occurred_at, \
                 (tenant_id IS NULL) | ((actor_id IS NULL) << 1) | ((target_kind IS NULL) << 2) \
                 | ((target_id IS NULL) << 3) AS nulls, \
                 concat_ws(CAST(X'FF' AS TEXT), id, tenant_id, actor_kind, actor_id, actor_label, ip, \
                 user_agent, request_id, action, target_kind, target_id, outcome, details) \
                 FROM audit_events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
            )
            .map_err(read_error)?;
        let mut rows = stmt.query((first.1, last.1)).map_err(read_error)?;
        let mut next = leaves.iter().copied().peekable();
        while let Some(row) = rows.next().map_err(read_error)? {
            let col = |i: usize| row.get_ref(i).ok();
            let Some(ValueRef::Integer(seq)) = col(0) else {
                return Ok(false);
            };
            // Leaves whose event is gone come before this event.
            while let Some((index, event_seq)) = next.next_if(|(_, s)| *s < seq) {
                let gone = DirectLeaf {
                    index,
                    event_seq,
                    event: None,
                };
                if !visit(gone) {
                    return Ok(false);
                }
            }
            let Some((index, event_seq)) = next.next_if(|(_, s)| *s == seq) else {
                // An event in no leaf, between leaves.
                return Ok(false);
            };
            let event = match (col(1), col(2), col(3)) {
                (
                    Some(ValueRef::Integer(occurred_at)),
                    Some(ValueRef::Integer(nulls)),
                    Some(ValueRef::Text(packed)),
                ) => unpack(occurred_at, nulls, packed),
                _ => None,
            };
            let leaf = DirectLeaf {
                index,
                event_seq,
                event,
            };
            if !visit(leaf) {
                return Ok(false);
            }
        }
        for (index, event_seq) in next {
            let gone = DirectLeaf {
                index,
                event_seq,
                event: None,
            };
            if !visit(gone) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The `seq` of the event leaf `index` maps to, if that leaf exists.
    pub fn leaf_event_seq(&self, index: u64) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT event_seq FROM audit_leaves WHERE leaf_index = ?1")
            .map_err(read_error)?;
        let mut rows = stmt.query((index as i64,)).map_err(read_error)?;
        match rows.next().map_err(read_error)? {
            Some(row) => match row.get_ref(0).map_err(read_error)? {
                ValueRef::Integer(seq) => Ok(Some(seq)),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// How many events have a `seq` strictly between `after` and `before`
    /// (either end open when `None`): a range count on the table's key.
    pub fn events_between(
        &self,
        after: Option<i64>,
        before: Option<i64>,
    ) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM audit_events WHERE seq > ?1 AND seq < ?2",
                (after.unwrap_or(i64::MIN), before.unwrap_or(i64::MAX)),
                |r| r.get(0),
            )
            .map_err(read_error)?;
        Ok(n as u64)
    }
}

/// Takes apart the packed text columns of an event; `None` unless there are
/// exactly as many parts as present columns. The separator is the byte 0xFF,
/// which no UTF-8 text contains, so a column as Ward writes it is never split.
/// The parts are not checked to be UTF-8: the leaf encoding needs no such check
/// (see `LeafFields`), and a column split by a forged 0xFF changes the count or
/// the leaf.
fn unpack(occurred_at: i64, nulls: i64, packed: &[u8]) -> Option<LeafFields<'_>> {
    // Split with memchr: a byte-at-a-time split costs as much as all the rest.
    let mut start = 0;
    let mut separators = memchr::memchr_iter(0xFF, packed).chain(std::iter::once(packed.len()));
    let mut parts = std::iter::from_fn(|| {
        let end = separators.next()?;
        let part = packed.get(start..end)?;
        start = end + 1;
        Some(part)
    });
    let mut optional = |bit: i64| -> Option<Option<&[u8]>> {
        if nulls & bit != 0 {
            Some(None)
        } else {
            parts.next().map(Some)
        }
    };
    let id = optional(0)??;
    let tenant_id = optional(1)?;
    let actor_kind = optional(0)??;
    let actor_id = optional(2)?;
    let actor_label = optional(0)??;
    let ip = optional(0)??;
    let user_agent = optional(0)??;
    let request_id = optional(0)??;
    let action = optional(0)??;
    let target_kind = optional(4)?;
    let target_id = optional(8)?;
    let outcome = optional(0)??;
    let details = optional(0)??;
    if parts.next().is_some() {
        return None;
    }
    Some(LeafFields {
        id,
        occurred_at,
        tenant_id,
        actor_kind,
        actor_id,
        actor_label,
        ip,
        user_agent,
        request_id,
        action,
        target_kind,
        target_id,
        outcome,
        details: LeafDetails::StoredText(details),
    })
}
