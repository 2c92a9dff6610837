//! The durable job queue: multi-step work that must finish even if the process
//! running it is killed — a deployment batch, a re-encryption pass, an erasure.
//!
//! Jobs are rows (`ward_store::job_queue`). The [`QueueWorker`] runs on every
//! instance and claims one due job at a time; while a handler runs, its claim is
//! renewed, and a handler records its progress so that a later attempt (after a
//! failure, or after another instance reclaims the job when this one's lock
//! expires) resumes where it stopped. A failed attempt runs again after a
//! jittered exponential backoff, up to the job's `max_attempts`; then the job is
//! kept as `dead` with its last error.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use ward_core::{AuditEvent, TenantId, Timestamp};
use ward_crypto::SecureRandom;
use ward_store::{JobLock, JobRecord, NewJob, Store, StoreError};

use crate::Clock;
use crate::runner::{Job, JobError, Outcome, Schedule, millis};

/// Why an attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// Worth trying again later (a SIEM that did not answer, a lock timeout).
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help (the payload names something that is gone).
    #[error("{0}")]
    Permanent(String),
    /// Another worker holds the job now; this one must stop touching it.
    #[error("the job's claim was lost")]
    ClaimLost,
}

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        Self::Retry(e.to_string())
    }
}

/// A future a handler returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send + 'a>>;

/// Runs the jobs of one kind.
pub trait Handler: Send + Sync + 'static {
    /// The `kind` its jobs are enqueued with.
    fn kind(&self) -> &'static str;

    /// One attempt. Long work calls [`RunningJob::save_progress`] after each
    /// step: it keeps the claim alive and lets a later attempt resume.
    fn run<'a>(&'a self, job: &'a mut RunningJob) -> HandlerFuture<'a>;
}

/// A claimed job, as a handler sees it.
pub struct RunningJob {
    record: JobRecord,
    lock: JobLock,
    store: Store,
    clock: Arc<dyn Clock>,
    claim_ttl: Duration,
}

impl RunningJob {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        self.record.tenant.as_ref()
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.lock.attempt
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, JobFailure> {
        serde_json::from_str(&self.record.payload)
            .map_err(|e| JobFailure::Permanent(format!("the job's payload is not valid: {e}")))
    }

    /// What earlier attempts recorded, if anything.
    pub fn progress<T: DeserializeOwned>(&self) -> Result<Option<T>, JobFailure> {
        self.record
            .progress
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| JobFailure::Permanent(format!("the job's progress is not valid: {e}")))
    }

    /// Records a finished step and extends the claim.
    pub async fn save_progress<T: Serialize>(&mut self, progress: &T) -> Result<(), JobFailure> {
        let text = serde_json::to_string(progress)
            .map_err(|e| JobFailure::Permanent(format!("cannot record progress: {e}")))?;
        let until = self.clock.now().plus_millis(millis(self.claim_ttl));
        if !self
            .store
            .save_job_progress(&self.lock, &text, until)
            .await?
        {
            return Err(JobFailure::ClaimLost);
        }
        self.record.progress = Some(text);
        Ok(())
    }
}

/// How long to wait before attempt `attempt + 1` after attempt `attempt` failed:
/// `base · 2^(attempt-1)` capped at `max`, then a uniformly random point in its
/// upper half ("equal jitter"), so that jobs failing together do not retry
/// together, yet never sooner than half the planned delay.
pub fn backoff(attempt: u32, base: Duration, max: Duration, random: u64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let planned = base.saturating_mul(1u32 << exp).min(max);
    let half = planned / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let extra = if spread == 0 {
        0
    } else {
        random % (spread + 1)
    };
    half + Duration::from_millis(extra)
}

/// How the worker runs jobs.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Pause between claims when nothing is due.
    pub poll_interval: Duration,
    /// How long a claim outlives a worker that stops renewing it (killed).
    pub claim_ttl: Duration,
    /// First retry delay; doubled per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            claim_ttl: Duration::from_secs(60),
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// Puts work on the queue.
#[derive(Clone)]
pub struct JobQueue {
    store: Store,
    rng: Arc<dyn SecureRandom>,
}

/// A job to put on the queue.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    pub kind: &'static str,
    pub tenant: Option<&'a TenantId>,
    pub payload: serde_json::Value,
    pub run_at: Timestamp,
    pub max_attempts: u32,
    pub dedupe_key: Option<String>,
}

impl JobQueue {
    pub fn new(store: Store, rng: Arc<dyn SecureRandom>) -> Self {
        Self { store, rng }
    }

    /// Enqueues with the audit event of the action that asked for the work.
    /// `None` if a pending job with the same kind and dedupe key exists.
    pub async fn enqueue(
        &self,
        job: Enqueue<'_>,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<String>, StoreError> {
        let mut id = [0u8; 16];
        self.rng
            .fill(&mut id)
            .map_err(|_| StoreError::Corrupt("the system random source failed".to_owned()))?;
        let id = format!("job_{}", hex(&id));
        let new = NewJob {
            id: id.clone(),
            kind: job.kind.to_owned(),
            tenant: job.tenant.cloned(),
            payload: job.payload.to_string(),
            max_attempts: job.max_attempts.max(1),
            run_at: job.run_at,
            dedupe_key: job.dedupe_key,
            created_at: now,
        };
        Ok(self.store.enqueue_job(&new, audit).await?.then_some(id))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims and runs queued jobs; one per instance, any number of instances.
pub struct QueueWorker {
    store: Store,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    holder: String,
    settings: QueueSettings,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
}

/// What one claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Succeeded(String),
    /// Failed; runs again at the given time.
    Retrying(String, Timestamp),
    Dead(String),
    /// Another worker took the job over meanwhile.
    ClaimLost(String),
}

impl QueueWorker {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn SecureRandom>,
        holder: String,
        settings: QueueSettings,
    ) -> Self {
        Self {
            store,
            clock,
            rng,
            holder,
            settings,
            handlers: HashMap::new(),
        }
    }

    pub fn with_handler(mut self, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(handler.kind(), handler);
        self
    }

    /// Claims the next due job, if any, and runs one attempt of it.
    pub async fn run_next(&self) -> Result<Option<Ran>, StoreError> {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let now = self.clock.now();
        let until = now.plus_millis(millis(self.settings.claim_ttl));
        let Some(record) = self
            .store
            .claim_job(&kinds, &self.holder, now, until)
            .await?
        else {
            return Ok(None);
        };
        metrics::gauge!("ward_job_queue_lag_seconds", "kind" => kind_label(&record.kind))
            .set(now.millis().saturating_sub(record.run_at.millis()) as f64 / 1000.0);
        let lock = JobLock {
            id: record.id.clone(),
            holder: self.holder.clone(),
            attempt: record.attempts,
        };
        let id = record.id.clone();
        if record.attempts > record.max_attempts {
            // The worker running the last attempt stopped without a word (killed).
            let error = "gave up: the last attempt's worker stopped without finishing";
            self.store.bury_job(&lock, error, now).await?;
            return Ok(Some(Ran::Dead(id)));
        }
        let Some(handler) = self.handlers.get(record.kind.as_str()).cloned() else {
            return Ok(None);
        };
        let kind = handler.kind();
        let mut job = RunningJob {
            record,
            lock: lock.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            claim_ttl: self.settings.claim_ttl,
        };
        let result = tokio::select! {
            r = handler.run(&mut job) => r,
            lost = self.keep_claim(&lock) => lost,
        };
        let now = self.clock.now();
        let ran = match result {
            Ok(()) => {
                if self.store.finish_job(&lock, now).await? {
                    Ran::Succeeded(id)
                } else {
                    Ran::ClaimLost(id)
                }
            }
            Err(JobFailure::ClaimLost) => Ran::ClaimLost(id),
            Err(failure) => {
                metrics::counter!("ward_job_queue_failures_total", "kind" => kind).increment(1);
                tracing::warn!(job = %id, kind, attempt = lock.attempt, error = %failure, "job attempt failed");
                let permanent = matches!(failure, JobFailure::Permanent(_));
                let message = failure.to_string();
                if permanent || lock.attempt >= job.record.max_attempts {
                    if self.store.bury_job(&lock, &message, now).await? {
                        tracing::error!(job = %id, kind, error = %message, "job failed for good");
                        Ran::Dead(id)
                    } else {
                        Ran::ClaimLost(id)
                    }
                } else {
                    let mut random = [0u8; 8];
                    let random = match self.rng.fill(&mut random) {
                        Ok(()) => u64::from_le_bytes(random),
                        Err(_) => 0,
                    };
                    let delay = backoff(
                        lock.attempt,
                        self.settings.base_backoff,
                        self.settings.max_backoff,
                        random,
                    );
                    let at = now.plus_millis(millis(delay));
                    if self.store.retry_job(&lock, &message, at).await? {
                        Ran::Retrying(id, at)
                    } else {
                        Ran::ClaimLost(id)
                    }
                }
            }
        };
        metrics::counter!("ward_job_queue_attempts_total", "kind" => kind, "result" => ran.label())
            .increment(1);
        Ok(Some(ran))
    }

    /// Renews the claim a third of its lifetime before it would lapse; ends only
    /// when the claim is lost.
    async fn keep_claim(&self, lock: &JobLock) -> Result<(), JobFailure> {
        loop {
            self.clock.sleep(self.settings.claim_ttl / 3).await;
            let until = self
                .clock
                .now()
                .plus_millis(millis(self.settings.claim_ttl));
            match self.store.renew_job_lock(lock, until).await {
                Ok(true) => {}
                Ok(false) => return Err(JobFailure::ClaimLost),
                // A database hiccup: try again; the claim lapses only after its TTL.
                Err(e) => {
                    tracing::warn!(job = %lock.id, error = %e, "cannot renew the job's claim")
                }
            }
        }
    }
}

impl Ran {
    fn label(&self) -> &'static str {
        match self {
            Self::Succeeded(_) => "succeeded",
            Self::Retrying(..) => "retrying",
            Self::Dead(_) => "dead",
            Self::ClaimLost(_) => "claim_lost",
        }
    }
}

/// Metric labels come from the handlers' own names, never from stored text.
fn kind_label(kind: &str) -> String {
    kind.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect()
}

impl Job for QueueWorker {
    fn name(&self) -> &'static str {
        "job-queue"
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.settings.poll_interval,
            lease_ttl: self.settings.claim_ttl,
        }
    }

    fn exclusive(&self) -> bool {
        false
    }

    async fn pass(&mut self, _now: Timestamp) -> Result<Outcome, JobError> {
        Ok(match self.run_next().await? {
            Some(_) => Outcome::Busy,
            None => Outcome::Idle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_upper_half_and_stops_at_the_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        for (attempt, planned) in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (40, 60)] {
            let planned = Duration::from_secs(planned);
            assert_eq!(backoff(attempt, base, max, 0), planned / 2);
            assert_eq!(backoff(attempt, base, max, u64::MAX), {
                // u64::MAX % (spread + 1) lands somewhere in the upper half.
                let d = backoff(attempt, base, max, u64::MAX);
                assert!(d >= planned / 2 && d <= planned, "{d:?} for {planned:?}");
                d
            });
            let spread = u64::try_from((planned / 2).as_millis()).expect("fits");
            assert_eq!(backoff(attempt, base, max, spread), planned);
        }
    }
}
