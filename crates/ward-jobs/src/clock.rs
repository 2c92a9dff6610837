//! The clock is an input: handlers ask the state's clock for the time, jobs also
//! wait on it, and tests substitute one they move by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use ward_core::Timestamp;

/// A future a clock returns from [`Clock::sleep`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where time comes from. No job reads the wall clock or `Instant` directly.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Waits until `duration` of this clock's time has passed. The wall clock
    /// sleeps; a manual clock wakes when it is moved past the deadline.
    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis(ms)
    }
}

/// A clock that moves only when told to: `advance` wakes every sleeper whose
/// deadline it passes. Tests and simulations drive jobs with it.
pub struct ManualClock {
    now: Mutex<i64>,
    moved: watch::Sender<i64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        let (moved, _) = watch::channel(start.millis());
        Self {
            now: Mutex::new(start.millis()),
            moved,
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let step = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            *now = now.saturating_add(step);
            *now
        };
        self.moved.send_replace(now);
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(*self.now.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        let step = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let deadline = self.now().millis().saturating_add(step);
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current value first, so an advance between
            // reading `now` and subscribing is not missed.
            let _ = moved.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_passes_its_deadline() {
        let clock = std::sync::Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(10)).await })
        };
        // Let the sleeper start (its deadline counts from when it is called).
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "9 of 10 seconds have passed");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(clock.now(), Timestamp::from_millis(11_000));
    }
}
