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

impl DirectLeaf<'_> {
    /// A leaf whose event is gone.
    fn gone(index: u64, event_seq: i64) -> Self {
        Self {
            index,
            event_seq,
            event: None,
        }
    }
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
    /// 32-byte hash for every index. Each row's index is read and checked, not
    /// inferred from a count: the key's uniqueness is only the schema's word,
    /// and a table re-created without it could hold a missing index and a
    /// duplicate that a count would not tell apart.
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
    /// neither, and without visiting any if a leaf in the range is missing; a
    /// leaf whose event is gone is visited with `event: None`.
    pub fn for_each_leaf(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(DirectLeaf<'_>) -> bool,
    ) -> Result<bool, StoreError> {
        let mut leaves: Vec<(u64, i64)> = Vec::with_capacity(to.saturating_sub(from) as usize);
        {
            // As in `level_hashes`, each index is read and checked.
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
                if index as u64 != from + leaves.len() as u64
                    || leaves.last().is_some_and(|(_, last)| *last >= seq)
                {
                    return Ok(false);
                }
                leaves.push((index as u64, seq));
            }
        }
        if leaves.len() as u64 != to.saturating_sub(from) {
            return Ok(false);
        }
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return Ok(true);
        };
        // Each column borrowed in place, as stored: no copy, no conversion.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, occurred_at, id, tenant_id, actor_kind, actor_id, actor_label, \
                 ip, user_agent, request_id, action, target_kind, target_id, outcome, details \
                 FROM audit_events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
            )
            .map_err(read_error)?;
        let mut rows = stmt.query((first.1, last.1)).map_err(read_error)?;
        let mut next = leaves.iter().copied().peekable();
        while let Some(row) = rows.next().map_err(read_error)? {
            let Ok(ValueRef::Integer(seq)) = row.get_ref(0) else {
                return Ok(false);
            };
            // Leaves whose event is gone come before this event.
            while let Some((index, event_seq)) = next.next_if(|(_, s)| *s < seq) {
                if !visit(DirectLeaf::gone(index, event_seq)) {
                    return Ok(false);
                }
            }
            let Some((index, event_seq)) = next.next_if(|(_, s)| *s == seq) else {
                // An event in no leaf, between leaves.
                return Ok(false);
            };
            let leaf = DirectLeaf {
                index,
                event_seq,
                event: leaf_fields(row),
            };
            if !visit(leaf) {
                return Ok(false);
            }
        }
        for (index, event_seq) in next {
            if !visit(DirectLeaf::gone(index, event_seq)) {
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

/// The columns of an event row (as selected in `for_each_leaf`), borrowed; `None`
/// if one has a type Ward never writes there. Text is not checked to be UTF-8:
/// the leaf encoding needs no such check (see `LeafFields`).
fn leaf_fields<'a>(row: &'a rusqlite::Row<'_>) -> Option<LeafFields<'a>> {
    let text = |i: usize| match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => Some(t),
        _ => None,
    };
    let nullable = |i: usize| match row.get_ref(i) {
        Ok(ValueRef::Text(t)) => Some(Some(t)),
        Ok(ValueRef::Null) => Some(None),
        _ => None,
    };
    let Ok(ValueRef::Integer(occurred_at)) = row.get_ref(1) else {
        return None;
    };
    Some(LeafFields {
        id: text(2)?,
        occurred_at,
        tenant_id: nullable(3)?,
        actor_kind: text(4)?,
        actor_id: nullable(5)?,
        actor_label: text(6)?,
        ip: text(7)?,
        user_agent: text(8)?,
        request_id: text(9)?,
        action: text(10)?,
        target_kind: nullable(11)?,
        target_id: nullable(12)?,
        outcome: text(13)?,
        details: LeafDetails::StoredText(text(14)?),
    })
}
