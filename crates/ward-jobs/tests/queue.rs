//! The durable job queue on both backends, driven by a manual clock: a job runs
//! once, failures back off and end dead, a killed worker's job resumes from its
//! recorded progress on another worker, and concurrent workers never share a job.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use ward_core::{Actor, AuditEvent, EventId, RequestContext, Timestamp};
use ward_crypto::{OsRandom, SecureRandom};
use ward_jobs::queue::{Enqueue, HandlerFuture, Ran};
use ward_jobs::{
    Clock, Handler, JobFailure, JobQueue, ManualClock, QueueSettings, QueueWorker, RunningJob,
};
use ward_store::testing::TestDatabase;
use ward_store::{AuditFilter, Backend, ConnectSettings, JobLock, JobState, Store};

ward_store::on_both_backends!(
    a_job_runs_once_with_its_audit_event_and_a_repeat_is_a_no_op,
    failures_back_off_exponentially_then_the_job_is_dead,
    a_permanent_failure_is_dead_at_once,
    a_killed_workers_job_resumes_from_its_progress_elsewhere,
    concurrent_workers_never_run_the_same_job,
);

const START: i64 = 1_800_000_000_000;

fn settings() -> QueueSettings {
    QueueSettings {
        poll_interval: Duration::from_millis(10),
        claim_ttl: Duration::from_secs(60),
        base_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(3600),
    }
}

async fn fresh(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn event(now: Timestamp) -> AuditEvent {
    AuditEvent::new(
        EventId::from_random(OsRandom.bytes().expect("random")),
        now,
        None,
        Actor::system("test"),
        RequestContext::cli("test".into()),
        "test.work_requested",
    )
}

fn job(kind: &'static str, n: u32, max_attempts: u32, key: Option<&str>) -> Enqueue<'static> {
    Enqueue {
        kind,
        tenant: None,
        payload: json!({ "n": n }),
        run_at: Timestamp::from_millis(START),
        max_attempts,
        dedupe_key: key.map(str::to_owned),
    }
}

/// Steps through `steps` units of work, recording each; can stop for ever after
/// a given step (the process "killed" mid-job) or fail every attempt.
struct Stepper {
    steps: u32,
    hang_after: Mutex<Option<u32>>,
    fail: Option<fn(u32) -> JobFailure>,
    done: Arc<Mutex<BTreeMap<String, Vec<u32>>>>,
}

impl Stepper {
    fn new(steps: u32) -> Self {
        Self {
            steps,
            hang_after: Mutex::new(None),
            fail: None,
            done: Arc::default(),
        }
    }
}

impl Handler for Stepper {
    fn kind(&self) -> &'static str {
        "stepper"
    }

    fn run<'a>(&'a self, job: &'a mut RunningJob) -> HandlerFuture<'a> {
        Box::pin(async move {
            if let Some(fail) = self.fail {
                return Err(fail(job.attempt()));
            }
            let from = job.progress::<u32>()?.map_or(0, |p| p + 1);
            for step in from..self.steps {
                self.done
                    .lock()
                    .expect("lock")
                    .entry(job.id().to_owned())
                    .or_default()
                    .push(step);
                job.save_progress(&step).await?;
                let hang = *self.hang_after.lock().expect("lock");
                if hang == Some(step) {
                    std::future::pending::<()>().await;
                }
            }
            Ok(())
        })
    }
}

fn worker(store: &Store, clock: &Arc<ManualClock>, holder: &str, h: Arc<Stepper>) -> QueueWorker {
    QueueWorker::new(
        store.clone(),
        clock.clone(),
        Arc::new(OsRandom),
        holder.to_owned(),
        settings(),
    )
    .with_handler(h)
}

async fn a_job_runs_once_with_its_audit_event_and_a_repeat_is_a_no_op(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START)));
    let queue = JobQueue::new(store.clone(), Arc::new(OsRandom));
    let id = queue
        .enqueue(
            job("stepper", 1, 3, Some("one")),
            clock.now(),
            &event(clock.now()),
        )
        .await
        .expect("enqueue")
        .expect("new job");
    // The same dedupe key while the first is pending: nothing is written.
    let again = queue
        .enqueue(
            job("stepper", 2, 3, Some("one")),
            clock.now(),
            &event(clock.now()),
        )
        .await
        .expect("enqueue");
    assert_eq!(again, None);
    let audited = store
        .list_audit(&AuditFilter {
            action: Some("test.work_requested".to_owned()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .len();
    assert_eq!(audited, 1, "one audit event per job actually enqueued");

    let stepper = Arc::new(Stepper::new(3));
    let w = worker(&store, &clock, "a", stepper.clone());
    assert_eq!(
        w.run_next().await.expect("run"),
        Some(Ran::Succeeded(id.clone()))
    );
    assert_eq!(w.run_next().await.expect("run"), None, "nothing left");
    let record = store.job(&id).await.expect("job").expect("stored");
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.locked_by, None);
    assert_eq!(stepper.done.lock().expect("lock")[&id], vec![0, 1, 2]);
    // Finished, the key is free again.
    assert!(
        queue
            .enqueue(
                job("stepper", 3, 3, Some("one")),
                clock.now(),
                &event(clock.now())
            )
            .await
            .expect("enqueue")
            .is_some()
    );
}

async fn failures_back_off_exponentially_then_the_job_is_dead(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START)));
    let queue = JobQueue::new(store.clone(), Arc::new(OsRandom));
    let id = queue
        .enqueue(job("stepper", 1, 3, None), clock.now(), &event(clock.now()))
        .await
        .expect("enqueue")
        .expect("new");
    let mut stepper = Stepper::new(1);
    stepper.fail =
        Some(|attempt| JobFailure::Retry(format!("the SIEM did not answer ({attempt})")));
    let w = worker(&store, &clock, "a", Arc::new(stepper));

    let mut planned = Duration::from_secs(10);
    for attempt in 1..=2u32 {
        let now = clock.now();
        let Some(Ran::Retrying(_, at)) = w.run_next().await.expect("run") else {
            panic!("attempt {attempt} should be retried later");
        };
        let wait = at.millis() - now.millis();
        let planned_ms = i64::try_from(planned.as_millis()).expect("fits");
        assert!(
            wait >= planned_ms / 2 && wait <= planned_ms,
            "attempt {attempt}: waits {wait} ms, planned {planned_ms} ms"
        );
        // Not due yet: nobody claims it.
        assert_eq!(w.run_next().await.expect("run"), None);
        let record = store.job(&id).await.expect("job").expect("stored");
        assert_eq!(record.state, JobState::Queued);
        assert_eq!(
            record.last_error.as_deref(),
            Some(format!("the SIEM did not answer ({attempt})").as_str())
        );
        clock.advance(Duration::from_millis(
            u64::try_from(wait).expect("positive"),
        ));
        planned *= 2;
    }
    assert_eq!(
        w.run_next().await.expect("run"),
        Some(Ran::Dead(id.clone()))
    );
    let record = store.job(&id).await.expect("job").expect("stored");
    assert_eq!(record.state, JobState::Dead);
    assert_eq!(record.attempts, 3);
    assert!(record.finished_at.is_some());
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        w.run_next().await.expect("run"),
        None,
        "dead jobs stay dead"
    );
}

async fn a_permanent_failure_is_dead_at_once(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START)));
    let queue = JobQueue::new(store.clone(), Arc::new(OsRandom));
    let id = queue
        .enqueue(job("stepper", 1, 5, None), clock.now(), &event(clock.now()))
        .await
        .expect("enqueue")
        .expect("new");
    let mut stepper = Stepper::new(1);
    stepper.fail = Some(|_| JobFailure::Permanent("the rule is gone".to_owned()));
    let w = worker(&store, &clock, "a", Arc::new(stepper));
    assert_eq!(
        w.run_next().await.expect("run"),
        Some(Ran::Dead(id.clone()))
    );
    let record = store.job(&id).await.expect("job").expect("stored");
    assert_eq!((record.state, record.attempts), (JobState::Dead, 1));
    assert_eq!(record.last_error.as_deref(), Some("the rule is gone"));
}

async fn a_killed_workers_job_resumes_from_its_progress_elsewhere(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START)));
    let queue = JobQueue::new(store.clone(), Arc::new(OsRandom));
    let id = queue
        .enqueue(job("stepper", 1, 3, None), clock.now(), &event(clock.now()))
        .await
        .expect("enqueue")
        .expect("new");

    // Worker A does steps 0..=2 and is then killed: its task is aborted mid-job,
    // so nothing after step 2 is written — as with `kill -9`.
    let stepper = Arc::new(Stepper::new(6));
    *stepper.hang_after.lock().expect("lock") = Some(2);
    let a = worker(&store, &clock, "instance-a", stepper.clone());
    let task = tokio::spawn(async move { a.run_next().await });
    wait_for(|| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            store
                .job(&id)
                .await
                .expect("job")
                .is_some_and(|j| j.progress.as_deref() == Some("2"))
        }
    })
    .await;
    task.abort();
    let _ = task.await;
    let record = store.job(&id).await.expect("job").expect("stored");
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.locked_by.as_deref(), Some("instance-a"));

    // Until its claim lapses nobody else takes the job.
    *stepper.hang_after.lock().expect("lock") = None;
    let b = worker(&store, &clock, "instance-b", stepper.clone());
    assert_eq!(b.run_next().await.expect("run"), None);
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        b.run_next().await.expect("run"),
        Some(Ran::Succeeded(id.clone()))
    );
    assert_eq!(
        stepper.done.lock().expect("lock")[&id],
        vec![0, 1, 2, 3, 4, 5],
        "B resumed after A's last recorded step"
    );
    let record = store.job(&id).await.expect("job").expect("stored");
    assert_eq!((record.state, record.attempts), (JobState::Succeeded, 2));
    // A's stale claim (attempt 1) can no longer change the row.
    let stale = JobLock {
        id: id.clone(),
        holder: "instance-a".to_owned(),
        attempt: 1,
    };
    assert!(!store.finish_job(&stale, clock.now()).await.expect("write"));
    assert!(
        !store
            .retry_job(&stale, "late", clock.now())
            .await
            .expect("write")
    );
}

async fn concurrent_workers_never_run_the_same_job(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START)));
    let queue = JobQueue::new(store.clone(), Arc::new(OsRandom));
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(
            queue
                .enqueue(job("stepper", n, 3, None), clock.now(), &event(clock.now()))
                .await
                .expect("enqueue")
                .expect("new"),
        );
    }
    let stepper = Arc::new(Stepper::new(2));
    let mut tasks = Vec::new();
    for holder in ["w1", "w2", "w3"] {
        let w = worker(&store, &clock, holder, stepper.clone());
        tasks.push(tokio::spawn(async move {
            let mut ran = 0;
            while let Some(r) = w.run_next().await.expect("run") {
                assert!(matches!(r, Ran::Succeeded(_)), "{r:?}");
                ran += 1;
            }
            ran
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("join");
    }
    assert_eq!(total, 30);
    let done = stepper.done.lock().expect("lock");
    for id in &ids {
        assert_eq!(done[id], vec![0, 1], "job {id} ran exactly once");
    }
}

async fn wait_for<F: Future<Output = bool>>(mut done: impl FnMut() -> F) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out");
}
