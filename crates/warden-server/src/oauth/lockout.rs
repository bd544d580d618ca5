//! Slowing and then locking out repeated failed sign-ins, per account and per source.
//!
//! The per-source budget is several times the per-account one, so that one noisy account
//! behind a shared egress address does not lock everybody else out, while a password
//! spray from one source still hits a wall.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use warden_core::sync::lock_recovering;

/// Most keys tracked before stale ones are dropped.
const MAX_KEYS: usize = 100_000;
/// A source may fail this many times more than one account.
const SOURCE_FACTOR: u32 = 4;

#[derive(Clone, Copy, Default)]
struct Attempts {
    failures: u32,
    last: i64,
    locked_until: i64,
}

/// The sign-in throttle.
pub struct LoginThrottle {
    max_failures: u32,
    lockout: i64,
    keys: Mutex<HashMap<String, Attempts>>,
}

/// The throttle's verdict before a sign-in attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting this long (zero for a clean record).
    Proceed(Duration),
    /// Locked until this UNIX time.
    Locked(i64),
}

impl LoginThrottle {
    /// A throttle that locks after `max_failures` for `lockout` seconds.
    pub fn new(max_failures: u32, lockout: i64) -> Self {
        Self {
            max_failures,
            lockout,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, source: &str) -> [String; 2] {
        [
            format!("a:{}", account.to_ascii_lowercase()),
            format!("s:{source}"),
        ]
    }

    /// Checks `account` from `source` at `now`.
    pub fn check(&self, account: &str, source: &str, now: i64) -> Verdict {
        // Each entry changes by one map operation, so the map behind a poisoned lock is
        // consistent; skipping it would switch the lockout off for the process's life.
        let map = lock_recovering(&self.keys);
        let [a, s] = Self::keys(account, source);
        let mut worst = 0u32;
        for (k, limit) in [
            (a, self.max_failures),
            (s, self.max_failures * SOURCE_FACTOR),
        ] {
            if let Some(at) = map.get(&k) {
                if at.locked_until > now {
                    return Verdict::Locked(at.locked_until);
                }
                // Failures older than the lockout window are forgotten.
                if now - at.last < self.lockout {
                    worst = worst.max(at.failures * self.max_failures / limit.max(1));
                }
            }
        }
        // 0, 0.25, 0.5, 1, 2 s … doubling per failure, capped at 4 s.
        let delay = match worst {
            0 => Duration::ZERO,
            n => Duration::from_millis((125u64 << n.min(5)).min(4_000)),
        };
        Verdict::Proceed(delay)
    }

    /// Records a failure.
    pub fn failure(&self, account: &str, source: &str, now: i64) {
        let mut map = lock_recovering(&self.keys);
        if map.len() >= MAX_KEYS {
            let horizon = now - self.lockout;
            map.retain(|_, a| a.last > horizon || a.locked_until > now);
        }
        let [a, s] = Self::keys(account, source);
        for (k, limit) in [
            (a, self.max_failures),
            (s, self.max_failures * SOURCE_FACTOR),
        ] {
            let e = map.entry(k).or_default();
            if now - e.last >= self.lockout {
                e.failures = 0;
            }
            e.failures += 1;
            e.last = now;
            if e.failures >= limit {
                e.locked_until = now + self.lockout;
                e.failures = 0;
            }
        }
    }

    /// Clears the account's record after a success (the source's stays).
    pub fn success(&self, account: &str) {
        lock_recovering(&self.keys).remove(&format!("a:{}", account.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while the throttle's lock was held must not switch the lockout off.
    #[test]
    fn a_poisoned_lock_still_counts_and_locks() {
        let t = std::sync::Arc::new(LoginThrottle::new(2, 60));
        let held = std::sync::Arc::clone(&t);
        let _ = std::thread::spawn(move || {
            let _g = held.keys.lock();
            panic!("poison the throttle");
        })
        .join();
        assert!(t.keys.is_poisoned());
        t.failure("alice", "1.1.1.1", 0);
        t.failure("alice", "1.1.1.1", 1);
        assert_eq!(t.check("alice", "1.1.1.1", 2), Verdict::Locked(61));
        t.success("bob");
    }

    #[test]
    fn slows_then_locks_the_account_then_forgives() {
        let t = LoginThrottle::new(3, 60);
        assert_eq!(
            t.check("alice", "1.1.1.1", 0),
            Verdict::Proceed(Duration::ZERO)
        );
        t.failure("alice", "1.1.1.1", 0);
        assert!(
            matches!(t.check("alice", "1.1.1.1", 1), Verdict::Proceed(d) if d > Duration::ZERO)
        );
        t.failure("alice", "1.1.1.1", 1);
        t.failure("alice", "2.2.2.2", 2);
        assert_eq!(t.check("ALICE", "3.3.3.3", 3), Verdict::Locked(62));
        assert!(matches!(t.check("bob", "3.3.3.3", 3), Verdict::Proceed(_)));
        assert!(matches!(
            t.check("alice", "1.1.1.1", 63),
            Verdict::Proceed(_)
        ));
    }

    #[test]
    fn a_source_spraying_many_accounts_is_locked() {
        let t = LoginThrottle::new(3, 60);
        for i in 0..12 {
            t.failure(&format!("user{i}"), "9.9.9.9", 5);
        }
        assert_eq!(t.check("someone-else", "9.9.9.9", 6), Verdict::Locked(65));
        assert!(matches!(
            t.check("someone-else", "8.8.8.8", 6),
            Verdict::Proceed(_)
        ));
    }

    #[test]
    fn success_clears_the_account() {
        let t = LoginThrottle::new(3, 60);
        t.failure("alice", "1.1.1.1", 0);
        t.failure("alice", "1.1.1.2", 0);
        t.success("alice");
        assert_eq!(
            t.check("alice", "1.1.1.3", 1),
            Verdict::Proceed(Duration::ZERO)
        );
    }
}
