//! The runner on both backends, driven by a manual clock: an exclusive job runs
//! on one instance at a time, passes follow the injected clock (not the wall
//! clock), and shutting one instance down hands its job to another at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ward_core::Timestamp;
use ward_jobs::{Job, JobError, ManualClock, Outcome, Runner, Schedule};
use ward_store::testing::TestDatabase;
use ward_store::{Backend, ConnectSettings, Store};

ward_store::on_both_backends!(one_instance_runs_an_exclusive_job_and_hands_it_over_on_shutdown);

struct Counter(Arc<AtomicU32>);

impl Job for Counter {
    fn name(&self) -> &'static str {
        "test-counter"
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(30),
        }
    }

    async fn pass(&mut self, _now: Timestamp) -> Result<Outcome, JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Idle)
    }
}

async fn settle() {
    // Real time only for the tasks to reach their next await.
    tokio::time::sleep(Duration::from_millis(150)).await;
}

async fn one_instance_runs_an_exclusive_job_and_hands_it_over_on_shutdown(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let (a_runs, b_runs) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut a = Runner::new(store.clone(), clock.clone(), "instance-a".into());
    a.spawn(Counter(a_runs.clone()));
    settle().await;
    let mut b = Runner::new(store.clone(), clock.clone(), "instance-b".into());
    b.spawn(Counter(b_runs.clone()));
    settle().await;
    assert_eq!(a_runs.load(Ordering::SeqCst), 1, "A took the lease first");
    assert_eq!(b_runs.load(Ordering::SeqCst), 0);

    // Passes follow the injected clock: nothing happens until it moves.
    settle().await;
    assert_eq!(a_runs.load(Ordering::SeqCst), 1);
    for n in 2..=4 {
        clock.advance(Duration::from_secs(10));
        settle().await;
        assert_eq!(a_runs.load(Ordering::SeqCst), n);
    }
    assert_eq!(
        b_runs.load(Ordering::SeqCst),
        0,
        "B never runs while A holds it"
    );

    // A stops and releases its lease: B's next pass takes over, well before
    // the lease would have expired.
    a.shutdown().await;
    clock.advance(Duration::from_secs(10));
    settle().await;
    assert_eq!(b_runs.load(Ordering::SeqCst), 1);
    b.shutdown().await;
}
