//! Writing and reading the audit trail. Writes happen inside the transaction of
//! the change they describe; the table itself refuses UPDATE and DELETE.

use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use ward_core::audit::{Actor, ActorKind, StoredAuditEvent};
use ward_core::{AuditEvent, EventId, RequestContext, TenantId, Timestamp};

use crate::audit_appender::SqliteAppender;
use crate::{Store, StoreError};

pub(crate) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    e: &AuditEvent,
) -> Result<(), StoreError> {
    insert_events_statement(&[e]).execute(&mut **tx).await?;
    Ok(())
}

/// Which events to read. The tenant is mandatory for API reads: it comes from the
/// authenticated principal, never from the request.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant_id: Option<TenantId>,
    pub action: Option<String>,
    /// Any of these actions (empty: no restriction), e.g. the Security page's
    /// sign-in changes in one read.
    pub any_action: Vec<String>,
    pub actor_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Keyset pagination: only events with `seq` below this (newest first).
    pub before_seq: Option<i64>,
    /// Keyset pagination: only events with `seq` above this (oldest first).
    pub after_seq: Option<i64>,
    /// Oldest first (exports) instead of newest first (browsing).
    pub oldest_first: bool,
    pub limit: u32,
}

/// Most events one group commit writes.
pub(crate) const GROUP_COMMIT_MAX: usize = 500;
/// Longest a group commit waits for the writers it expects (a lone writer after
/// a burst pays at most this once; the next batch expects only itself).
pub(crate) const GATHER_AT_MOST: std::time::Duration = std::time::Duration::from_micros(500);
/// The start of every audit event INSERT, followed by 14 values per row.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO audit_events (id, occurred_at, tenant_id, \
     actor_kind, actor_id, actor_label, ip, user_agent, request_id, action, target_kind, target_id, \
     outcome, details) VALUES ";
/// Rows per multi-row INSERT (14 parameters each).
const ROWS_PER_STATEMENT: usize = 16;

/// Answers one writer: `Ok` once its event is durable.
pub(crate) type Waiter = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Group commit: concurrent standalone appends (a burst of refused sign-ins, say)
/// share one transaction and one fsync instead of paying one each. Every caller
/// still returns only after its event is durable. A SQLite file gets its own
/// writer thread (`audit_appender`); PostgreSQL and in-memory SQLite batch
/// through the pool.
pub(crate) enum GroupCommit {
    Pool(PoolAppender),
    Sqlite(SqliteAppender),
}

pub(crate) struct PoolAppender {
    queue: tokio::sync::mpsc::Sender<(AuditEvent, Waiter)>,
}

impl PoolAppender {
    fn start(store: Store) -> Self {
        let (queue, mut rx) =
            tokio::sync::mpsc::channel::<(AuditEvent, Waiter)>(4 * GROUP_COMMIT_MAX);
        tokio::spawn(async move {
            // How many writers the last batch served: the next one waits (briefly)
            // for as many, so writers answered by one commit, who are about to
            // send again, share the next commit instead of splitting into
            // alternating half-full ones.
            let mut expected = 1usize;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = std::time::Instant::now() + GATHER_AT_MOST;
                loop {
                    while batch.len() < GROUP_COMMIT_MAX {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    if batch.len() >= expected.min(GROUP_COMMIT_MAX)
                        || std::time::Instant::now() >= deadline
                    {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                expected = batch.len();
                let events: Vec<&AuditEvent> = batch.iter().map(|(e, _)| e).collect();
                if store.append_audit_batch(&events).await.is_ok() {
                    for (_, waiter) in batch {
                        let _ = waiter.send(Ok(()));
                    }
                    continue;
                }
                // The shared transaction failed: one event must not fail the
                // others, so each is tried alone and answered with its own result.
                for (e, waiter) in batch {
                    let result = store
                        .record_audit_alone(&e)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = waiter.send(result);
                }
            }
        });
        Self { queue }
    }
}

impl Store {
    /// Records an event that accompanies no other change (e.g. a refused sign-in),
    /// durably, committed together with whatever other such events arrive at the
    /// same moment.
    pub async fn record_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let appender = self.appender.get_or_init(|| {
            let on_file = self.sqlite_file.as_deref().map(SqliteAppender::start);
            match on_file {
                Some(Ok(thread)) => GroupCommit::Sqlite(thread),
                failed => {
                    if let Some(Err(e)) = failed {
                        tracing::warn!(error = %e, "audit writer thread not started; batching through the pool");
                    }
                    GroupCommit::Pool(PoolAppender::start(Store {
                        pool: self.pool.clone(),
                        backend: self.backend,
                        sqlite_file: None,
                        appender: Default::default(),
                    }))
                }
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        // If the appender is gone (its runtime or thread ended), append directly:
        // the event is never dropped for want of a batch.
        let queued = match appender {
            GroupCommit::Pool(p) => p.queue.send((e.clone(), tx)).await.is_ok(),
            GroupCommit::Sqlite(t) => t.send(e.clone(), tx),
        };
        if !queued {
            return self.record_audit_alone(e).await;
        }
        match rx.await {
            Ok(result) => result.map_err(StoreError::Unavailable),
            Err(_) => self.record_audit_alone(e).await,
        }
    }

    /// Appends many events in one transaction (group commit's write; also bulk
    /// loads in benchmarks).
    pub async fn append_audit_batch(&self, events: &[&AuditEvent]) -> Result<(), StoreError> {
        // Small statements: sqlx's SQLite driver looks up every parameter's name
        // per bind, which is quadratic in the parameters of one statement.
        if events.len() <= ROWS_PER_STATEMENT {
            // One statement is its own transaction (atomic and, on commit,
            // durable): one round trip instead of BEGIN, INSERT, COMMIT.
            insert_events_statement(events).execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            insert_events_statement(chunk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends one event in its own transaction, without group commit (the
    /// benchmark's comparison point).
    pub async fn record_audit_alone(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events matching `filter`, newest first.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        // Only fixed SQL fragments are concatenated; every value is a bound parameter.
        let mut sql = String::from(
            "SELECT e.seq, l.leaf_index, e.id, e.occurred_at, e.tenant_id, e.actor_kind, e.actor_id, \
             e.actor_label, e.ip, e.user_agent, e.request_id, e.action, e.target_kind, e.target_id, \
             e.outcome, e.details FROM audit_events e \
             LEFT JOIN audit_leaves l ON l.event_seq = e.seq WHERE 1 = 1",
        );
        let mut n = 0;
        let mut param = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace('?', &format!("${n}")));
        };
        if filter.tenant_id.is_some() {
            param(&mut sql, " AND e.tenant_id = ?");
        }
        if filter.action.is_some() {
            param(&mut sql, " AND e.action = ?");
        }
        if !filter.any_action.is_empty() {
            sql.push_str(" AND e.action IN (");
            for i in 0..filter.any_action.len() {
                param(&mut sql, if i == 0 { "?" } else { ", ?" });
            }
            sql.push(')');
        }
        if filter.actor_id.is_some() {
            param(&mut sql, " AND e.actor_id = ?");
        }
        if filter.since.is_some() {
            param(&mut sql, " AND e.occurred_at >= ?");
        }
        if filter.until.is_some() {
            param(&mut sql, " AND e.occurred_at < ?");
        }
        if filter.before_seq.is_some() {
            param(&mut sql, " AND e.seq < ?");
        }
        if filter.after_seq.is_some() {
            param(&mut sql, " AND e.seq > ?");
        }
        if filter.oldest_first {
            param(&mut sql, " ORDER BY e.seq LIMIT ?");
        } else {
            param(&mut sql, " ORDER BY e.seq DESC LIMIT ?");
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(t) = &filter.tenant_id {
            q = q.bind(t.as_str().to_owned());
        }
        if let Some(a) = &filter.action {
            q = q.bind(a.clone());
        }
        for a in &filter.any_action {
            q = q.bind(a.clone());
        }
        if let Some(a) = &filter.actor_id {
            q = q.bind(a.clone());
        }
        if let Some(t) = filter.since {
            q = q.bind(t.millis());
        }
        if let Some(t) = filter.until {
            q = q.bind(t.millis());
        }
        if let Some(s) = filter.before_seq {
            q = q.bind(s);
        }
        if let Some(s) = filter.after_seq {
            q = q.bind(s);
        }
        q = q.bind(i64::from(filter.limit));
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }
}

pub(crate) fn audit_from_row(r: &sqlx::any::AnyRow) -> Result<StoredAuditEvent, StoreError> {
    let kind: String = r.try_get("actor_kind")?;
    let details: String = r.try_get("details")?;
    Ok(StoredAuditEvent {
        seq: r.try_get("seq")?,
        // Present only in reads that join the leaves.
        leaf_index: r
            .try_get::<Option<i64>, _>("leaf_index")
            .ok()
            .flatten()
            .map(|i| i as u64),
        id: EventId::from_stored(r.try_get("id")?),
        occurred_at: Timestamp::from_millis(r.try_get("occurred_at")?),
        tenant_id: r
            .try_get::<Option<String>, _>("tenant_id")?
            .map(TenantId::from_stored),
        actor: Actor {
            kind: ActorKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("actor kind {kind}")))?,
            id: r.try_get("actor_id")?,
            label: r.try_get("actor_label")?,
        },
        context: RequestContext {
            ip: r.try_get("ip")?,
            user_agent: r.try_get("user_agent")?,
            request_id: r.try_get("request_id")?,
        },
        action: r.try_get("action")?,
        target_kind: r.try_get("target_kind")?,
        target_id: r.try_get("target_id")?,
        outcome: r.try_get("outcome")?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

/// One multi-row INSERT of `events` into the trail.
fn insert_events_statement<'q>(
    events: &[&'q AuditEvent],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    let mut sql = String::from(INSERT_EVENTS);
    for i in 0..events.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..14 {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * 14 + c + 1));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        q = q
            .bind(e.id.as_str().to_owned())
            .bind(e.occurred_at.millis())
            .bind(e.tenant_id.as_ref().map(|t| t.as_str().to_owned()))
            .bind(e.actor.kind.as_str())
            .bind(e.actor.id.clone())
            .bind(e.actor.label.clone())
            .bind(e.context.ip.clone())
            .bind(e.context.user_agent.clone())
            .bind(e.context.request_id.clone())
            .bind(e.action)
            .bind(e.target_kind)
            .bind(e.target_id.clone())
            .bind(e.outcome.as_str())
            .bind(e.details.to_string());
    }
    q
}
