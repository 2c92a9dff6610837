//! The durable job queue's rows: enqueue (with the audit event of the action that
//! asked for the work, in one transaction), claim, renew, record progress, finish,
//! retry later or bury.
//!
//! A claim sets `locked_by`/`locked_until` and raises `attempts`; every later
//! write names both the holder and the attempt it claimed, so a worker whose lock
//! expired (it stalled, or another instance reclaimed the job after a `kill -9`)
//! changes nothing any more. On PostgreSQL claims skip rows another claim holds
//! (`FOR UPDATE SKIP LOCKED`), so workers never queue behind each other; on
//! SQLite the write lock serializes them.

use sqlx::{AssertSqlSafe, Row};
use ward_core::{AuditEvent, TenantId, Timestamp};

use crate::audit::insert_audit;
use crate::{Backend, Store, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker (or by one that stopped: claimable again once its lock expires).
    Running,
    Succeeded,
    /// Failed `max_attempts` times; kept with its last error for an operator.
    Dead,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    /// Which handler runs it.
    pub kind: String,
    pub tenant: Option<TenantId>,
    /// The handler's input, JSON. Holds ids, never secrets (handlers read those
    /// from where they are sealed).
    pub payload: String,
    pub max_attempts: u32,
    pub run_at: Timestamp,
    /// At most one queued or running job per (kind, key): enqueuing again is a no-op.
    pub dedupe_key: Option<String>,
    pub created_at: Timestamp,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub tenant: Option<TenantId>,
    pub payload: String,
    /// What earlier attempts finished, as the handler recorded it (JSON).
    pub progress: Option<String>,
    pub state: JobState,
    /// Claims so far, this one included while running.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: Timestamp,
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// The claim a worker holds: every write names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLock {
    pub id: String,
    pub holder: String,
    /// The attempt this claim made (the fencing token).
    pub attempt: u32,
}

const COLUMNS: &str = "id, kind, tenant_id, payload, progress, state, attempts, max_attempts, \
     run_at, locked_by, locked_until, last_error, created_at, finished_at";

/// Stored errors are for an operator's eye; long ones are cut.
const MAX_ERROR_CHARS: usize = 1_000;

fn record(r: &sqlx::any::AnyRow) -> Result<JobRecord, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(JobRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        tenant: r
            .try_get::<Option<String>, _>("tenant_id")?
            .map(TenantId::from_stored),
        payload: r.try_get("payload")?,
        progress: r.try_get("progress")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(r.try_get::<i64, _>("max_attempts")?).unwrap_or(u32::MAX),
        run_at: Timestamp::from_millis(r.try_get("run_at")?),
        locked_by: r.try_get("locked_by")?,
        locked_until: r
            .try_get::<Option<i64>, _>("locked_until")?
            .map(Timestamp::from_millis),
        last_error: r.try_get("last_error")?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
        finished_at: r
            .try_get::<Option<i64>, _>("finished_at")?
            .map(Timestamp::from_millis),
    })
}

fn cut(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_owned(),
    }
}

impl Store {
    /// Enqueues `job` with the audit event of the action that asked for it. False
    /// if a queued or running job of the same kind already has its dedupe key
    /// (nothing is written then, the audit event neither).
    pub async fn enqueue_job(&self, job: &NewJob, audit: &AuditEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = enqueue_in(&mut tx, job).await?;
        if inserted {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Claims the job of one of `kinds` that has been due longest (or whose
    /// worker's lock expired), for `holder` until `lock_until`.
    pub async fn claim_job(
        &self,
        kinds: &[&str],
        holder: &str,
        now: Timestamp,
        lock_until: Timestamp,
    ) -> Result<Option<JobRecord>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let placeholders = (0..kinds.len())
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE job_queue SET state = 'running', locked_by = $1, locked_until = $2, \
             attempts = attempts + 1 \
             WHERE id = (SELECT id FROM job_queue WHERE kind IN ({placeholders}) AND \
               ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3)) \
               ORDER BY run_at, id LIMIT 1{skip_locked}) \
             RETURNING {COLUMNS}"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(holder.to_owned())
            .bind(lock_until.millis())
            .bind(now.millis());
        for k in kinds {
            q = q.bind((*k).to_owned());
        }
        let mut tx = self.begin().await?;
        let row = q.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        row.as_ref().map(record).transpose()
    }

    /// Extends a claim. False if the claim is no longer this worker's.
    pub async fn renew_job_lock(
        &self,
        lock: &JobLock,
        lock_until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.update_claimed(lock, "locked_until = $4", |q| q.bind(lock_until.millis()))
            .await
    }

    /// Records what the job has finished so far, so a later attempt resumes
    /// there, and extends the claim. False if the claim is no longer this worker's.
    pub async fn save_job_progress(
        &self,
        lock: &JobLock,
        progress: &str,
        lock_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let progress = progress.to_owned();
        self.update_claimed(lock, "progress = $4, locked_until = $5", move |q| {
            q.bind(progress).bind(lock_until.millis())
        })
        .await
    }

    /// The job is done.
    pub async fn finish_job(&self, lock: &JobLock, now: Timestamp) -> Result<bool, StoreError> {
        self.update_claimed(
            lock,
            "state = 'succeeded', locked_by = NULL, locked_until = NULL, finished_at = $4",
            |q| q.bind(now.millis()),
        )
        .await
    }

    /// The attempt failed; run again at `run_at`.
    pub async fn retry_job(
        &self,
        lock: &JobLock,
        error: &str,
        run_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let error = cut(error);
        self.update_claimed(
            lock,
            "state = 'queued', locked_by = NULL, locked_until = NULL, last_error = $4, run_at = $5",
            move |q| q.bind(error).bind(run_at.millis()),
        )
        .await
    }

    /// The job failed for good.
    pub async fn bury_job(
        &self,
        lock: &JobLock,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let error = cut(error);
        self.update_claimed(
            lock,
            "state = 'dead', locked_by = NULL, locked_until = NULL, last_error = $4, finished_at = $5",
            move |q| q.bind(error).bind(now.millis()),
        )
        .await
    }

    async fn update_claimed<'q>(
        &self,
        lock: &JobLock,
        set: &str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE job_queue SET {set} \
             WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'"
        );
        let q = sqlx::query(AssertSqlSafe(sql))
            .bind(lock.id.clone())
            .bind(lock.holder.clone())
            .bind(i64::from(lock.attempt));
        let n = bind(q).execute(&self.pool).await?.rows_affected();
        Ok(n == 1)
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_queue WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Jobs newest first, optionally in one state.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let rows = match state {
            Some(s) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM job_queue WHERE state = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                )))
                .bind(s.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM job_queue ORDER BY created_at DESC, id DESC LIMIT $1"
                )))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(record).collect()
    }
}

/// Enqueues inside a transaction another change is writing, so the work and the
/// change that asked for it commit together.
pub(crate) async fn enqueue_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job: &NewJob,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO job_queue (id, kind, tenant_id, payload, progress, state, attempts, \
         max_attempts, run_at, locked_by, locked_until, last_error, dedupe_key, created_at, finished_at) \
         VALUES ($1, $2, $3, $4, NULL, 'queued', 0, $5, $6, NULL, NULL, NULL, $7, $8, NULL) \
         ON CONFLICT DO NOTHING",
    )
    .bind(job.id.clone())
    .bind(job.kind.clone())
    .bind(job.tenant.as_ref().map(|t| t.as_str().to_owned()))
    .bind(job.payload.clone())
    .bind(i64::from(job.max_attempts.max(1)))
    .bind(job.run_at.millis())
    .bind(job.dedupe_key.clone())
    .bind(job.created_at.millis())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}
