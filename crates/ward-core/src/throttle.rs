//! Failed sign-in throttling: after `max_failures` failures within `window`, a key
//! (an account or a client IP) is locked out until the window passes. Pure: the
//! caller passes `now` and holds the state behind its own lock. Memory is bounded.

use std::collections::HashMap;

use crate::Timestamp;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window_secs: i64,
    pub max_keys: usize,
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Timestamp,
}

#[derive(Debug)]
pub struct FailureThrottle {
    policy: ThrottlePolicy,
    entries: HashMap<String, Entry>,
}

impl FailureThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, or `None` if it may try now.
    pub fn retry_after(&self, key: &str, now: Timestamp) -> Option<i64> {
        let e = self.entries.get(key)?;
        let elapsed = now.seconds_since(e.window_start);
        if e.failures >= self.policy.max_failures && elapsed < self.policy.window_secs {
            Some((self.policy.window_secs - elapsed).max(1))
        } else {
            None
        }
    }

    pub fn record_failure(&mut self, key: &str, now: Timestamp) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.policy.max_keys {
            self.evict(now);
        }
        let window = self.policy.window_secs;
        let e = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        if now.seconds_since(e.window_start) >= window {
            e.failures = 0;
            e.window_start = now;
        }
        e.failures = e.failures.saturating_add(1);
    }

    /// Takes back one counted attempt (a success counted before it was known).
    pub fn forgive_one(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.failures = e.failures.saturating_sub(1);
        }
    }

    pub fn record_success(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn evict(&mut self, now: Timestamp) {
        let window = self.policy.window_secs;
        self.entries
            .retain(|_, e| now.seconds_since(e.window_start) < window);
        if self.entries.len() >= self.policy.max_keys {
            // Never drop a locked key to make room: an attacker spraying new keys
            // would otherwise unlock the accounts they are guessing.
            let max = self.policy.max_failures;
            self.entries.retain(|_, e| e.failures >= max);
        }
        if self.entries.len() >= self.policy.max_keys {
            // Full of locked keys: drop the oldest windows first.
            let mut starts: Vec<(Timestamp, String)> = self
                .entries
                .iter()
                .map(|(k, e)| (e.window_start, k.clone()))
                .collect();
            starts.sort();
            let excess = self.entries.len() + 1 - self.policy.max_keys;
            for (_, k) in starts.into_iter().take(excess) {
                self.entries.remove(&k);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            max_keys: 10,
        });
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        for s in 0..3 {
            assert_eq!(t.retry_after("a", at(s)), None);
            t.record_failure("a", at(s));
        }
        assert_eq!(t.retry_after("a", at(10)), Some(50));
        assert_eq!(t.retry_after("b", at(10)), None);
        assert_eq!(t.retry_after("a", at(60)), None);
        t.record_failure("a", at(61));
        assert_eq!(t.retry_after("a", at(61)), None);
        t.record_success("a");
        assert!(t.is_empty());
    }

    #[test]
    fn spraying_new_keys_does_not_unlock_a_locked_one() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 600,
            max_keys: 10,
        });
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        for _ in 0..3 {
            t.record_failure("victim", at(0));
        }
        for i in 0..100 {
            t.record_failure(&format!("spray{i}"), at(1));
        }
        assert!(t.retry_after("victim", at(2)).is_some());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            max_keys: 100,
        });
        for i in 0..10_000 {
            t.record_failure(&format!("k{i}"), Timestamp::from_millis(i));
        }
        assert!(t.len() <= 100);
    }
}
