//! Request-time session lookups, batched. Every cookie-authenticated request reads
//! its session from the database *after* it arrived, so a revocation committed
//! before that read is always seen (revocation stays immediate). Under load, the
//! lookups of concurrent requests are gathered into one `IN (...)` query: one
//! database round trip (and, on SQLite, one hop to the connection's worker thread)
//! serves many requests instead of one each.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use ward_core::SessionId;
use ward_core::session::SessionWithUser;
use ward_store::Store;

/// Most lookups in one query.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Option<SessionWithUser>, LookupFailed>>;

/// The lookup could not be answered (database unavailable or failing).
#[derive(Debug, Clone, Copy)]
pub struct LookupFailed;

#[derive(Clone)]
pub struct SessionLookup {
    tx: mpsc::Sender<(SessionId, Reply)>,
}

impl SessionLookup {
    /// Starts the batching task on the current Tokio runtime.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    pub async fn get(&self, id: SessionId) -> Result<Option<SessionWithUser>, LookupFailed> {
        let (reply, wait) = oneshot::channel();
        self.tx.send((id, reply)).await.map_err(|_| LookupFailed)?;
        wait.await.map_err(|_| LookupFailed)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<(SessionId, Reply)>) {
    // One batch query at a time: while it runs, new lookups queue up and form the
    // next batch, so the batch size grows with the load.
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let mut ids: Vec<SessionId> = batch.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        match store.sessions_with_users(&ids).await {
            Ok(found) => {
                let mut by_id: HashMap<SessionId, SessionWithUser> = found
                    .into_iter()
                    .map(|s| (s.session.id.clone(), s))
                    .collect();
                // Waiters for the same id get clones; the last one takes the original.
                let mut waiting: HashMap<SessionId, usize> = HashMap::new();
                for (id, _) in &batch {
                    *waiting.entry(id.clone()).or_default() += 1;
                }
                for (id, reply) in batch {
                    let last = waiting.get_mut(&id).is_some_and(|n| {
                        *n -= 1;
                        *n == 0
                    });
                    let hit = if last {
                        by_id.remove(&id)
                    } else {
                        by_id.get(&id).cloned()
                    };
                    let _ = reply.send(Ok(hit));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(LookupFailed));
                }
            }
        }
    }
}
