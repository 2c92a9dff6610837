//! The job runner: every background job has one shape — take its lease (when one
//! instance at a time must run it), run one pass, wait on the injected clock,
//! and on shutdown stop and hand the lease over at once — and one set of
//! metrics (passes, failures, pass duration, time of the last success).
//!
//! A job is a value with a `pass`; tests call `pass` by hand instead of waiting
//! for the loop, and the loop itself is driven by whichever [`Clock`] it is given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use ward_core::Timestamp;
use ward_store::{Store, StoreError};

use crate::Clock;

/// How often a job runs and how long its lease lasts without renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Pause between passes (after a pass that found nothing to do).
    pub interval: Duration,
    /// How long the lease outlives a holder that stops renewing it (crashed):
    /// another instance takes over after this. Renewed at every pass, so it
    /// must exceed `interval` and the longest pass.
    pub lease_ttl: Duration,
}

/// What a pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing (more) to do: wait `interval` before the next pass.
    Idle,
    /// Did work and there may be more: run the next pass at once.
    Busy,
}

/// A pass that failed. The message is logged and must name no secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

/// A background job.
pub trait Job: Send + 'static {
    /// The job's name: its lease, its log field and its metrics label.
    fn name(&self) -> &'static str;

    fn schedule(&self) -> Schedule;

    /// Whether at most one instance runs it at a time (under the lease named
    /// after the job). The queue worker is not: it claims jobs one by one.
    fn exclusive(&self) -> bool {
        true
    }

    /// One pass, at `now` by the runner's clock.
    fn pass(&mut self, now: Timestamp) -> impl Future<Output = Result<Outcome, JobError>> + Send;

    /// The lease went to another instance: forget what was cached while
    /// holding it (another holder may have moved on since).
    fn lease_lost(&mut self) {}
}

/// Starts jobs and stops them together.
pub struct Runner {
    store: Store,
    clock: Arc<dyn Clock>,
    holder: String,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Runner {
    /// `holder` names this instance in leases and job locks (random per process).
    pub fn new(store: Store, clock: Arc<dyn Clock>, holder: String) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            store,
            clock,
            holder,
            stop,
            tasks: Vec::new(),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs `job` in the background until [`Runner::shutdown`].
    pub fn spawn<J: Job>(&mut self, job: J) {
        let name = job.name();
        let task = tokio::spawn(run(
            job,
            self.store.clone(),
            self.clock.clone(),
            self.holder.clone(),
            self.stop.subscribe(),
        ));
        self.tasks.push((name, task));
    }

    /// Stops every job: a pass in progress is dropped at its next await (each
    /// job's work is transactional or resumable, so nothing is half-written),
    /// and leases are released so another instance takes over at once.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for (name, task) in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(job = name, error = %e, "job task ended abnormally"),
                Err(_) => tracing::warn!(job = name, "job did not stop within 10 s"),
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Dropped without `shutdown` (a test's app going away): stop the loops.
        self.stop.send_replace(true);
    }
}

/// The loop every job runs in.
async fn run<J: Job>(
    mut job: J,
    store: Store,
    clock: Arc<dyn Clock>,
    holder: String,
    mut stop: watch::Receiver<bool>,
) {
    let name = job.name();
    let mut held = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let schedule = job.schedule();
        let now = clock.now();
        let may_run = if job.exclusive() {
            let until = now.plus_millis(millis(schedule.lease_ttl));
            match store.acquire_lease(name, &holder, now, until).await {
                Ok(true) => {
                    held = true;
                    true
                }
                Ok(false) => {
                    if held {
                        job.lease_lost();
                        held = false;
                    }
                    false
                }
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "cannot take the job's lease");
                    false
                }
            }
        } else {
            true
        };
        let mut busy = false;
        if may_run {
            let pass = tokio::select! {
                r = job.pass(now) => Some(r),
                _ = stop.changed() => None,
            };
            let Some(result) = pass else { break };
            let took = clock.now().millis().saturating_sub(now.millis());
            record(name, &result, took, clock.now());
            busy = matches!(result, Ok(Outcome::Busy));
        }
        if !busy {
            tokio::select! {
                () = clock.sleep(schedule.interval) => {}
                _ = stop.changed() => break,
            }
        }
    }
    if held {
        // Hand the job over at once instead of when the lease expires.
        if let Err(e) = store.release_lease(name, &holder).await {
            tracing::warn!(job = name, error = %e, "cannot release the job's lease");
        }
    }
}

fn record(name: &'static str, result: &Result<Outcome, JobError>, took_ms: i64, now: Timestamp) {
    metrics::counter!("ward_job_passes_total", "job" => name).increment(1);
    metrics::histogram!("ward_job_pass_duration_seconds", "job" => name)
        .record(took_ms as f64 / 1000.0);
    match result {
        Ok(_) => {
            metrics::gauge!("ward_job_last_success_timestamp_seconds", "job" => name)
                .set(now.millis() as f64 / 1000.0);
        }
        Err(e) => {
            metrics::counter!("ward_job_failures_total", "job" => name).increment(1);
            tracing::error!(job = name, error = %e, "job pass failed");
        }
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
