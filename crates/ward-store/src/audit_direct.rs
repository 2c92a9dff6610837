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

use crate::sqlite_btree::{DbPages, Layout, PageSource, Scanner};
use crate::{Store, StoreError};

/// The audit tables whose pages the reader decodes, exactly as Ward's
/// migrations create them. The reader takes a table's b-tree to hold what this
/// text declares (column order, `seq` and `leaf_index` as rowids, the tree's
/// key), so it reads a table only when SQLite holds this text for it: SQLite
/// itself reads the table as its stored text declares. Anything else (a column
/// added, a key changed, a table re-created otherwise) is refused, and the
/// verifier takes the slow path through SQL. The parallel verifier's tests
/// (`ward-server/tests/api/audit_log.rs`) fail if these drift from the
/// migrations: a freshly migrated log would no longer be read directly.
pub const EVENTS_TABLE_SQL: &str = "CREATE TABLE audit_events (\n    seq          INTEGER PRIMARY KEY AUTOINCREMENT,\n    id           TEXT    NOT NULL UNIQUE,\n    occurred_at  INTEGER NOT NULL,\n    tenant_id    TEXT,\n    actor_kind   TEXT    NOT NULL,\n    actor_id     TEXT,\n    actor_label  TEXT    NOT NULL,\n    ip           TEXT    NOT NULL,\n    user_agent   TEXT    NOT NULL,\n    request_id   TEXT    NOT NULL,\n    action       TEXT    NOT NULL,\n    target_kind  TEXT,\n    target_id    TEXT,\n    outcome      TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),\n    details      TEXT    NOT NULL\n)";
pub const LEAVES_TABLE_SQL: &str = "CREATE TABLE audit_leaves (\n    leaf_index     INTEGER PRIMARY KEY,\n    event_seq      INTEGER NOT NULL UNIQUE REFERENCES audit_events(seq),\n    integrated_at  INTEGER NOT NULL\n)";
pub const TREE_TABLE_SQL: &str = "CREATE TABLE audit_tree (\n    level       INTEGER NOT NULL,\n    node_index  INTEGER NOT NULL,\n    hash        BLOB    NOT NULL,\n    PRIMARY KEY (level, node_index)\n) WITHOUT ROWID";

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

    /// Runs `read` in one read transaction, so that every page it reads comes
    /// from one snapshot of the file however a running server writes meanwhile.
    fn in_snapshot<T>(
        &self,
        read: impl FnOnce(&mut Tables<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN").map_err(read_error)?;
        let outcome = self.find_tables().and_then(|found| {
            read(&mut Tables {
                conn: &self.conn,
                found,
            })
        });
        let ended = self.conn.execute_batch("ROLLBACK").map_err(read_error);
        let value = outcome?;
        ended?;
        Ok(value)
    }

    /// The page layout and the audit tables' root pages, if the tables are the
    /// ones the reader knows. Its first read starts the snapshot.
    fn find_tables(&self) -> Result<Option<(Layout, Roots)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, type, rootpage, sql FROM sqlite_schema \
                 WHERE name IN ('audit_events', 'audit_leaves', 'audit_tree')",
            )
            .map_err(read_error)?;
        let mut rows = stmt.query(()).map_err(read_error)?;
        let mut roots = [None; 3];
        while let Some(row) = rows.next().map_err(read_error)? {
            let (
                Ok(ValueRef::Text(name)),
                Ok(ValueRef::Text(b"table")),
                Ok(ValueRef::Integer(root)),
                Ok(ValueRef::Text(sql)),
            ) = (
                row.get_ref(0),
                row.get_ref(1),
                row.get_ref(2),
                row.get_ref(3),
            )
            else {
                return Ok(None);
            };
            let (slot, expected) = match name {
                b"audit_events" => (0, EVENTS_TABLE_SQL),
                b"audit_leaves" => (1, LEAVES_TABLE_SQL),
                _ => (2, TREE_TABLE_SQL),
            };
            let Ok(root) = u32::try_from(root) else {
                return Ok(None);
            };
            if sql != expected.as_bytes() || roots[slot].replace(root).is_some() {
                return Ok(None);
            }
        }
        let [Some(events), Some(leaves), Some(tree)] = roots else {
            return Ok(None);
        };
        let mut pages = DbPages::new(&self.conn)?;
        let mut first = Vec::new();
        if !pages.read_page(1, &mut first)? {
            return Ok(None);
        }
        Ok(Layout::from_first_page(&first).map(|layout| {
            (
                layout,
                Roots {
                    events,
                    leaves,
                    tree,
                },
            )
        }))
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
        let level = i64::from(level);
        self.in_snapshot(|tables| {
            let mut expected = from;
            let walked = tables.scan(|scanner, roots| {
                scanner.index_range::<3>(
                    roots.tree,
                    (level, from as i64),
                    (level, to as i64),
                    &mut |row| {
                        let [
                            ValueRef::Integer(_),
                            ValueRef::Integer(index),
                            ValueRef::Blob(hash),
                        ] = *row
                        else {
                            return false;
                        };
                        let Ok(hash) = Hash::try_from(hash) else {
                            return false;
                        };
                        if index as u64 != expected {
                            return false;
                        }
                        expected += 1;
                        out.push(hash);
                        true
                    },
                )
            })?;
            Ok(walked && expected == to.max(from))
        })
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
        if to <= from {
            return Ok(true);
        }
        self.in_snapshot(|tables| {
            let mut leaves: Vec<(u64, i64)> = Vec::with_capacity((to - from) as usize);
            // As in `level_hashes`, each index is read and checked.
            let walked = tables.scan(|scanner, roots| {
                scanner.table_range::<3>(
                    roots.leaves,
                    from as i64,
                    to as i64 - 1,
                    &mut |index, row| {
                        // `leaf_index` is the rowid, so its column is stored as NULL.
                        let [ValueRef::Null, ValueRef::Integer(seq), ValueRef::Integer(_)] = *row
                        else {
                            return false;
                        };
                        if index as u64 != from + leaves.len() as u64
                            || leaves.last().is_some_and(|(_, last)| *last >= seq)
                        {
                            return false;
                        }
                        leaves.push((index as u64, seq));
                        true
                    },
                )
            })?;
            if !walked || leaves.len() as u64 != to - from {
                return Ok(false);
            }
            let (Some(&(_, first)), Some(&(_, last))) = (leaves.first(), leaves.last()) else {
                return Ok(true);
            };
            let mut next = leaves.iter().copied().peekable();
            let mut stopped = false;
            let walked = tables.scan(|scanner, roots| {
                scanner.table_range::<15>(roots.events, first, last, &mut |seq, row| {
                    // Leaves whose event is gone come before this event.
                    while let Some((index, event_seq)) = next.next_if(|(_, s)| *s < seq) {
                        if !visit(DirectLeaf::gone(index, event_seq)) {
                            stopped = true;
                            return false;
                        }
                    }
                    let Some((index, event_seq)) = next.next_if(|(_, s)| *s == seq) else {
                        // An event in no leaf, between leaves.
                        return false;
                    };
                    let leaf = DirectLeaf {
                        index,
                        event_seq,
                        event: leaf_fields(row),
                    };
                    if !visit(leaf) {
                        stopped = true;
                        return false;
                    }
                    true
                })
            })?;
            if !walked || stopped {
                return Ok(false);
            }
            for (index, event_seq) in next {
                if !visit(DirectLeaf::gone(index, event_seq)) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
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

/// The root pages of the audit tables in one snapshot.
struct Roots {
    events: u32,
    leaves: u32,
    tree: u32,
}

/// One snapshot's view of the audit tables for the page reader.
struct Tables<'c> {
    conn: &'c Connection,
    found: Option<(Layout, Roots)>,
}

impl Tables<'_> {
    /// Runs `scan` over this snapshot's pages; false (not clean) without
    /// running it if the tables are not the ones the reader knows.
    fn scan(
        &mut self,
        scan: impl FnOnce(&mut Scanner<'_, DbPages<'_>>, &Roots) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let Some((layout, roots)) = &self.found else {
            return Ok(false);
        };
        let mut pages = DbPages::new(self.conn)?;
        let mut scanner = Scanner::new(&mut pages, *layout);
        scan(&mut scanner, roots)
    }
}

/// The columns of an event record (in the table's column order, `seq` first and
/// stored as NULL because it is the rowid), borrowed; `None` if one has a type
/// Ward never writes there. Text is not checked to be UTF-8: the leaf encoding
/// needs no such check (see `LeafFields`).
fn leaf_fields<'a>(row: &[ValueRef<'a>; 15]) -> Option<LeafFields<'a>> {
    let text = |v: ValueRef<'a>| match v {
        ValueRef::Text(t) => Some(t),
        _ => None,
    };
    let nullable = |v: ValueRef<'a>| match v {
        ValueRef::Text(t) => Some(Some(t)),
        ValueRef::Null => Some(None),
        _ => None,
    };
    let [
        ValueRef::Null,
        id,
        ValueRef::Integer(occurred_at),
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
        details,
    ] = *row
    else {
        return None;
    };
    Some(LeafFields {
        id: text(id)?,
        occurred_at,
        tenant_id: nullable(tenant_id)?,
        actor_kind: text(actor_kind)?,
        actor_id: nullable(actor_id)?,
        actor_label: text(actor_label)?,
        ip: text(ip)?,
        user_agent: text(user_agent)?,
        request_id: text(request_id)?,
        action: text(action)?,
        target_kind: nullable(target_kind)?,
        target_id: nullable(target_id)?,
        outcome: text(outcome)?,
        details: LeafDetails::StoredText(text(details)?),
    })
}
