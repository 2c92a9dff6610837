//! Failed sign-in throttling. Pure: the caller passes `now` and holds the state
//! behind its own lock; memory is bounded.
//!
//! A hard lock after a few failures per account lets anyone lock anyone out
//! (issue 15). So password guesses are slowed per *(account, source)* pair with
//! growing delays, which costs the guesser and not the owner signing in from
//! elsewhere; each account also has a ceiling of consecutive failures from all
//! sources (NIST SP 800-63B §5.2.2: at most 100 before the account's password
//! is locked), after which password sign-in waits for a passkey sign-in, an
//! Admin's password reset or the lock's end; and each source address keeps an
//! overall budget of failures (`FailureThrottle`).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::Timestamp;

/// How password failures are slowed down.
#[derive(Debug, Clone, Copy)]
pub struct SignInPolicy {
    /// Failures from one source on one account before delays start.
    pub free_failures_per_source: u32,
    /// The first delay; each further failure doubles it.
    pub base_delay_secs: i64,
    /// The longest delay between two attempts of one pair.
    pub max_delay_secs: i64,
    /// Consecutive failures on an account, from any source, that lock its
    /// password sign-in. NIST SP 800-63B §5.2.2 allows at most 100.
    pub account_lock_failures: u32,
    /// How long that lock lasts unless a passkey sign-in or a reset ends it.
    pub account_lock_secs: i64,
    /// A pair or account with no failure for this long is forgotten.
    pub forget_after_secs: i64,
    /// Most pairs and accounts remembered (bounded memory under attack).
    pub max_keys: usize,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        Self {
            // OWASP Authentication Cheat Sheet: slow down after a few failures
            // rather than lock the account.
            free_failures_per_source: 5,
            base_delay_secs: 1,
            max_delay_secs: 15 * 60,
            // NIST SP 800-63B §5.2.2.
            account_lock_failures: 100,
            account_lock_secs: 60 * 60,
            forget_after_secs: 24 * 60 * 60,
            max_keys: 100_000,
        }
    }
}

/// Whether a password attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    /// This source has failed too often on this account: wait.
    SourceDelayed {
        retry_after_secs: i64,
    },
    /// The account's password sign-in is locked; a passkey still signs in.
    AccountLocked {
        retry_after_secs: i64,
    },
}

/// A change a failure made that the audit trail records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// The pair's delays start now: the first is `delay_secs`.
    SourceThrottled { failures: u32, delay_secs: i64 },
    /// The account reached the ceiling; its password sign-in is locked.
    AccountLocked { failures: u32, lock_secs: i64 },
}

/// The source of an attempt as throttling sees it: an IPv4 address, or the
/// /64 an IPv6 address is in (one host commonly holds a whole /64, so counting
/// single IPv6 addresses would give a guesser 2^64 fresh sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[derive(Debug)]
struct Pair {
    failures: u32,
    last_failure: Timestamp,
}

#[derive(Debug)]
struct Account {
    consecutive: u32,
    last_failure: Timestamp,
    locked_at: Option<Timestamp>,
}

/// The per-pair delays and the per-account ceiling. Accounts are keyed by the
/// normalised name typed (whether or not such an account exists, so the
/// answer does not tell which exist).
#[derive(Debug)]
pub struct SignInThrottle {
    policy: SignInPolicy,
    pairs: HashMap<(String, Source), Pair>,
    accounts: HashMap<String, Account>,
}

impl SignInThrottle {
    pub fn new(policy: SignInPolicy) -> Self {
        Self {
            policy,
            pairs: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &SignInPolicy {
        &self.policy
    }

    /// Whether `source` may try a password on `account` now.
    pub fn check(&self, account: &str, source: Source, now: Timestamp) -> Attempt {
        if let Some(a) = self.accounts.get(account)
            && let Some(at) = a.locked_at
        {
            let left = self.policy.account_lock_secs - now.seconds_since(at);
            if left > 0 {
                return Attempt::AccountLocked {
                    retry_after_secs: left,
                };
            }
        }
        if let Some(p) = self.pairs.get(&(account.to_owned(), source)) {
            let delay = self.delay_after(p.failures);
            let left = delay - now.seconds_since(p.last_failure);
            if delay > 0 && left > 0 {
                return Attempt::SourceDelayed {
                    retry_after_secs: left,
                };
            }
        }
        Attempt::Allowed
    }

    /// Counts an attempt against its pair as a failure, before the slow
    /// password check (so concurrent guesses from one source cannot all slip
    /// under its delays); `record_success` takes it back. Returns the
    /// escalation when the pair's delays start with it.
    pub fn record_failure(
        &mut self,
        account: &str,
        source: Source,
        now: Timestamp,
    ) -> Vec<Escalation> {
        let forget = self.policy.forget_after_secs;
        if self.pairs.len() >= self.policy.max_keys || self.accounts.len() >= self.policy.max_keys {
            self.evict(now);
        }
        let mut out = Vec::new();
        let pair = self
            .pairs
            .entry((account.to_owned(), source))
            .or_insert(Pair {
                failures: 0,
                last_failure: now,
            });
        if now.seconds_since(pair.last_failure) >= forget {
            pair.failures = 0;
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.last_failure = now;
        let failures = pair.failures;
        if failures == self.policy.free_failures_per_source {
            out.push(Escalation::SourceThrottled {
                failures,
                delay_secs: self.delay_after(failures),
            });
        }
        out
    }

    /// Counts a password that turned out wrong against the account's ceiling.
    /// Only confirmed failures count here: correct passwords in flight at the
    /// same moment (a script signing in 200 times at once) must not lock the
    /// account. Returns the escalation when the account locks with it.
    pub fn record_wrong_password(&mut self, account: &str, now: Timestamp) -> Vec<Escalation> {
        let forget = self.policy.forget_after_secs;
        if self.accounts.len() >= self.policy.max_keys {
            self.evict(now);
        }
        let mut out = Vec::new();
        let lock_secs = self.policy.account_lock_secs;
        let ceiling = self.policy.account_lock_failures;
        let acct = self.accounts.entry(account.to_owned()).or_insert(Account {
            consecutive: 0,
            last_failure: now,
            locked_at: None,
        });
        let lock_over = acct
            .locked_at
            .is_some_and(|at| now.seconds_since(at) >= lock_secs);
        if lock_over || now.seconds_since(acct.last_failure) >= forget {
            acct.consecutive = 0;
            acct.locked_at = None;
        }
        acct.consecutive = acct.consecutive.saturating_add(1);
        acct.last_failure = now;
        if acct.consecutive >= ceiling && acct.locked_at.is_none() {
            acct.locked_at = Some(now);
            out.push(Escalation::AccountLocked {
                failures: acct.consecutive,
                lock_secs,
            });
        }
        out
    }

    /// The password was right: the pair starts afresh and the account's run of
    /// consecutive failures ends. (A lock in force refuses before the password
    /// is checked, so a lock seen here was set by this very attempt's count.)
    pub fn record_success(&mut self, account: &str, source: Source) {
        self.pairs.remove(&(account.to_owned(), source));
        self.accounts.remove(account);
    }

    /// A passkey sign-in or an Admin's password reset: the owner is back in
    /// control, so the account's lock and counts end (pairs of other sources
    /// keep their delays: those are the guessers).
    pub fn clear_account(&mut self, account: &str) {
        self.accounts.remove(account);
    }

    /// Whether the account's password sign-in is locked now.
    pub fn is_locked(&self, account: &str, now: Timestamp) -> bool {
        matches!(
            self.check(account, Source(IpAddr::from([0, 0, 0, 0])), now),
            Attempt::AccountLocked { .. }
        )
    }

    /// The wait after `failures` failures of one pair: none while they are
    /// free, then base, 2×base, 4×base… up to the cap.
    fn delay_after(&self, failures: u32) -> i64 {
        let free = self.policy.free_failures_per_source;
        if failures < free {
            return 0;
        }
        let doublings = (failures - free).min(62);
        self.policy
            .base_delay_secs
            .saturating_mul(1i64 << doublings)
            .min(self.policy.max_delay_secs)
    }

    fn evict(&mut self, now: Timestamp) {
        let forget = self.policy.forget_after_secs;
        let lock = self.policy.account_lock_secs;
        self.pairs
            .retain(|_, p| now.seconds_since(p.last_failure) < forget);
        self.accounts.retain(|_, a| {
            now.seconds_since(a.last_failure) < forget
                || a.locked_at.is_some_and(|at| now.seconds_since(at) < lock)
        });
        // Still full: drop the pairs that are not delayed (no protection is
        // lost), then the oldest. A locked account is never dropped to make
        // room, or spraying new names would unlock it.
        if self.pairs.len() >= self.policy.max_keys {
            let free = self.policy.free_failures_per_source;
            self.pairs.retain(|_, p| p.failures >= free);
        }
        if self.pairs.len() >= self.policy.max_keys {
            // A tenth more than needed, so a sustained spray sorts the map once
            // per max_keys/10 new pairs rather than on every request.
            let excess = self.pairs.len() + 1 - self.policy.max_keys + self.policy.max_keys / 10;
            let mut by_age: Vec<_> = self
                .pairs
                .iter()
                .map(|(k, p)| (p.last_failure, k.clone()))
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(excess) {
                self.pairs.remove(&k);
            }
        }
        if self.accounts.len() >= self.policy.max_keys {
            let excess = self.accounts.len() + 1 - self.policy.max_keys + self.policy.max_keys / 10;
            let mut by_age: Vec<_> = self
                .accounts
                .iter()
                .filter(|(_, a)| a.locked_at.is_none())
                .map(|(k, a)| (a.last_failure, k.clone()))
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(excess) {
                self.accounts.remove(&k);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len() + self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.accounts.is_empty()
    }
}

/// A plain failure budget per key (the per-address limit): after
/// `max_failures` failures within `window`, the key is refused until the window
/// passes.
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

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn src(last: u8) -> Source {
        Source::of(IpAddr::from([203, 0, 113, last]))
    }

    #[test]
    fn a_guesser_is_slowed_and_the_owner_elsewhere_is_not() {
        let mut t = SignInThrottle::new(SignInPolicy::default());
        let (attacker, owner) = (src(1), src(2));
        let mut escalations = Vec::new();
        for _ in 0..5 {
            assert_eq!(t.check("victim", attacker, at(0)), Attempt::Allowed);
            escalations.extend(t.record_failure("victim", attacker, at(0)));
        }
        assert_eq!(
            escalations,
            [Escalation::SourceThrottled {
                failures: 5,
                delay_secs: 1
            }]
        );
        assert_eq!(
            t.check("victim", attacker, at(0)),
            Attempt::SourceDelayed {
                retry_after_secs: 1
            }
        );
        // The delays double: 1 s, 2 s, 4 s…
        let mut now = 0;
        for want in [1, 2, 4, 8, 16] {
            now += want;
            assert!(
                matches!(
                    t.check("victim", attacker, at(now - 1)),
                    Attempt::SourceDelayed { .. }
                ),
                "{want}"
            );
            assert_eq!(
                t.check("victim", attacker, at(now)),
                Attempt::Allowed,
                "{want}"
            );
            t.record_failure("victim", attacker, at(now));
        }
        // The owner, from another address, is not slowed at all.
        assert_eq!(t.check("victim", owner, at(now)), Attempt::Allowed);
        t.record_success("victim", owner);
        // Another account from the attacker's address is not slowed either.
        assert_eq!(t.check("other", attacker, at(now)), Attempt::Allowed);
    }

    #[test]
    fn delays_are_capped() {
        let mut t = SignInThrottle::new(SignInPolicy::default());
        for _ in 0..60 {
            t.record_failure("a", src(1), at(0));
        }
        assert!(!t.is_locked("a", at(0)), "pair counts alone never lock");
        assert_eq!(
            t.check("a", src(1), at(0)),
            Attempt::SourceDelayed {
                retry_after_secs: 15 * 60
            }
        );
    }

    #[test]
    fn the_account_ceiling_locks_passwords_until_a_passkey_or_the_lock_ends() {
        let mut t = SignInThrottle::new(SignInPolicy::default());
        let mut locked = Vec::new();
        // 100 sources, one failure each: no pair is slowed, the account is.
        for i in 0..100u32 {
            let s = Source::of(IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
            assert_eq!(t.check("victim", s, at(1)), Attempt::Allowed, "{i}");
            t.record_failure("victim", s, at(1));
            locked.extend(t.record_wrong_password("victim", at(1)));
        }
        assert_eq!(
            locked,
            [Escalation::AccountLocked {
                failures: 100,
                lock_secs: 3600
            }]
        );
        assert_eq!(
            t.check("victim", src(9), at(61)),
            Attempt::AccountLocked {
                retry_after_secs: 3540
            }
        );
        assert!(t.is_locked("victim", at(61)));
        // The lock ends with its time…
        assert_eq!(t.check("victim", src(9), at(3601)), Attempt::Allowed);
        // …or when the owner signs in with a passkey.
        assert!(t.is_locked("victim", at(100)));
        t.clear_account("victim");
        assert!(!t.is_locked("victim", at(100)));
    }

    #[test]
    fn a_correct_password_ends_the_run_of_failures() {
        let mut t = SignInThrottle::new(SignInPolicy::default());
        for _ in 0..99 {
            t.record_failure("a", src(1), at(0));
            t.record_wrong_password("a", at(0));
            t.record_success("a", src(1));
        }
        assert!(t.is_empty());
        // Correct passwords in flight together lock nothing.
        for i in 0..200u32 {
            t.record_failure(
                "svc",
                Source::of(IpAddr::from((0x0a00_0000 + i).to_be_bytes())),
                at(1),
            );
        }
        assert!(!t.is_locked("svc", at(1)));
    }

    #[test]
    fn ipv6_sources_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:203.0.113.1".parse().expect("ip");
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(mapped), src(1));
        assert_eq!(Source::of(b).to_string(), "2001:db8:1:2::/64");
        assert_eq!(src(1).to_string(), "203.0.113.1");
    }

    #[test]
    fn spraying_names_does_not_unlock_an_account_and_memory_is_bounded() {
        let mut t = SignInThrottle::new(SignInPolicy {
            account_lock_failures: 3,
            max_keys: 50,
            ..SignInPolicy::default()
        });
        for i in 0..3 {
            t.record_failure("victim", src(i), at(0));
            t.record_wrong_password("victim", at(0));
        }
        for i in 0..10_000 {
            t.record_failure(&format!("spray{i}"), src(7), at(1));
            t.record_wrong_password(&format!("spray{i}"), at(1));
        }
        assert!(t.is_locked("victim", at(2)));
        assert!(t.len() <= 2 * 50 + 2, "{}", t.len());
    }

    #[test]
    fn address_budget_locks_after_max_failures_and_unlocks_after_window() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            max_keys: 10,
        });
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
    fn address_budget_memory_is_bounded() {
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
