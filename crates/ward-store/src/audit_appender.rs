//! Group commit of standalone audit events on a SQLite file: one thread with its
//! own connection writes each batch as one transaction through a prepared
//! statement, then answers every writer in it. SQLite serializes commits anyway;
//! through sqlx each one also paid a hop to the driver's worker thread and a
//! parameter-name lookup per bind, and that overhead, not the fsync, set the rate.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use ward_core::AuditEvent;

use crate::StoreError;
use crate::audit::{GATHER_AT_MOST, GROUP_COMMIT_MAX, INSERT_EVENTS, Waiter};

/// The queue into the writer thread. The thread ends when every sender is gone.
pub(crate) struct SqliteAppender {
    queue: Sender<(AuditEvent, Waiter)>,
}

impl SqliteAppender {
    /// Opens the writer's connection and starts its thread.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path).map_err(write_error)?;
        let (queue, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("ward-audit-append".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("starting the audit writer: {e}")))?;
        Ok(Self { queue })
    }

    /// Queues `e`; false if the writer thread is gone.
    pub(crate) fn send(&self, e: AuditEvent, waiter: Waiter) -> bool {
        self.queue.send((e, waiter)).is_ok()
    }
}

fn write_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("writing the audit log: {e}"))
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The same durability as the pool's connections: WAL, fsync on commit.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000;",
    )?;
    Ok(conn)
}

fn run(conn: Connection, rx: Receiver<(AuditEvent, Waiter)>) {
    let mut insert = match conn.prepare(&format!(
        "{INSERT_EVENTS}(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    )) {
        Ok(statement) => statement,
        // Without its statement the writer cannot work. Ending the thread closes
        // the queue, and every writer, waiting or later, appends through the pool.
        Err(e) => {
            tracing::warn!(error = %write_error(e), "audit writer thread not started");
            return;
        }
    };
    // How many writers the last batch served: the next one waits (briefly) for as
    // many, so writers answered by one commit, who are about to send again, share
    // the next commit instead of splitting into alternating half-full ones.
    let mut expected = 1usize;
    while let Ok(first) = rx.recv() {
        let batch = gather(&rx, first, expected);
        expected = batch.len();
        let events: Vec<&AuditEvent> = batch.iter().map(|(e, _)| e).collect();
        if write(&conn, &mut insert, &events).is_ok() {
            for (_, waiter) in batch {
                let _ = waiter.send(Ok(()));
            }
            continue;
        }
        // The shared transaction failed: one event must not fail the others, so
        // each is tried alone and answered with its own result.
        for (e, waiter) in batch {
            let _ = waiter
                .send(write(&conn, &mut insert, &[&e]).map_err(|e| write_error(e).to_string()));
        }
    }
}

fn gather(
    rx: &Receiver<(AuditEvent, Waiter)>,
    first: (AuditEvent, Waiter),
    expected: usize,
) -> Vec<(AuditEvent, Waiter)> {
    let mut batch = vec![first];
    let deadline = Instant::now() + GATHER_AT_MOST;
    while batch.len() < GROUP_COMMIT_MAX {
        let next = if batch.len() >= expected {
            match rx.try_recv() {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(next) => next,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        };
        batch.push(next);
    }
    batch
}

/// One transaction for the whole batch; nothing is written if any row fails.
fn write(
    conn: &Connection,
    insert: &mut rusqlite::Statement<'_>,
    events: &[&AuditEvent],
) -> rusqlite::Result<()> {
    // IMMEDIATE takes the write lock up front, so a busy database is waited for
    // (busy_timeout) instead of failing the upgrade from a read.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let inserted = events.iter().try_for_each(|e| {
        insert
            .execute(rusqlite::params![
                e.id.as_str(),
                e.occurred_at.millis(),
                e.tenant_id.as_ref().map(|t| t.as_str()),
                e.actor.kind.as_str(),
                e.actor.id.as_deref(),
                e.actor.label,
                e.context.ip,
                e.context.user_agent,
                e.context.request_id,
                e.action,
                e.target_kind,
                e.target_id.as_deref(),
                e.outcome.as_str(),
                e.details.to_string(),
            ])
            .map(drop)
    });
    match inserted.and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
