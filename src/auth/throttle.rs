//! Throttling of failed credentials, per account and client address.
//!
//! A few failures are free; after that each failure blocks the pair for a
//! doubling delay, capped. A quiet period forgets the history. Time is passed
//! in so tests control it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before any delay.
const FREE_FAILURES: u32 = 5;
/// Longest block after repeated failures.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(30 * 60);
/// Most tracked pairs; stale ones are pruned first when it fills, and if it
/// is still full only blocked pairs are kept, so memory stays bounded.
const CAPACITY: usize = 100_000;
/// Account names are cut to this many bytes before they become keys: valid
/// names are shorter, and a flood of huge names must not cost memory.
const MAX_ACCOUNT_KEY: usize = 64;

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Tracks failures for (account, address) pairs.
#[derive(Default)]
pub struct Throttle {
    records: Mutex<HashMap<(String, IpAddr), Record>>,
}

impl Throttle {
    /// How long the pair must still wait, if it is blocked now.
    pub fn blocked_for(&self, account: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let records = self.records.lock().expect("throttle lock");
        let until = records.get(&key(account, addr))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failure; returns the block it caused, if any.
    pub fn fail(&self, account: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let mut records = self.records.lock().expect("throttle lock");
        if records.len() >= CAPACITY {
            records.retain(|_, r| now.duration_since(r.last) < WINDOW);
        }
        if records.len() >= CAPACITY {
            records.retain(|_, r| r.blocked_until.is_some_and(|until| until > now));
            tracing::warn!(
                tracked = records.len(),
                "failed-credential tracker full; kept blocked pairs only"
            );
        }
        let record = records.entry(key(account, addr)).or_insert(Record {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(record.last) >= WINDOW {
            record.failures = 0;
        }
        record.failures += 1;
        record.last = now;
        if record.failures <= FREE_FAILURES {
            return None;
        }
        let exponent = (record.failures - FREE_FAILURES - 1).min(16);
        let delay = Duration::from_secs(1u64 << exponent).min(MAX_DELAY);
        record.blocked_until = Some(now + delay);
        Some(delay)
    }

    /// Forgets the pair's failures after a success.
    pub fn succeed(&self, account: &str, addr: IpAddr) {
        self.records
            .lock()
            .expect("throttle lock")
            .remove(&key(account, addr));
    }
}

fn key(account: &str, addr: IpAddr) -> (String, IpAddr) {
    let mut end = account.len().min(MAX_ACCOUNT_KEY);
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    (account[..end].to_owned(), addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn delay_grows_after_free_failures_and_is_capped() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.fail("alice", ADDR, now), None);
            assert_eq!(t.blocked_for("alice", ADDR, now), None);
        }
        assert_eq!(t.fail("alice", ADDR, now), Some(Duration::from_secs(1)));
        assert_eq!(t.fail("alice", ADDR, now), Some(Duration::from_secs(2)));
        assert_eq!(t.fail("alice", ADDR, now), Some(Duration::from_secs(4)));
        assert_eq!(
            t.blocked_for("alice", ADDR, now),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            t.blocked_for("alice", OTHER, now),
            None,
            "other address unaffected"
        );
        assert_eq!(
            t.blocked_for("bob", ADDR, now),
            None,
            "other account unaffected"
        );
        for _ in 0..30 {
            t.fail("alice", ADDR, now);
        }
        assert_eq!(t.blocked_for("alice", ADDR, now), Some(MAX_DELAY));
        assert_eq!(
            t.blocked_for("alice", ADDR, now + MAX_DELAY),
            None,
            "block ends"
        );
    }

    #[test]
    fn long_account_names_share_a_bounded_key() {
        let t = Throttle::default();
        let now = Instant::now();
        let long = "é".repeat(200);
        for _ in 0..=FREE_FAILURES {
            t.fail(&long, ADDR, now);
        }
        let prefix: String = long.chars().take(32).collect();
        assert!(
            t.blocked_for(&prefix, ADDR, now).is_some(),
            "cut to 64 bytes"
        );
    }

    #[test]
    fn success_and_quiet_period_forget() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..=FREE_FAILURES {
            t.fail("alice", ADDR, now);
        }
        t.succeed("alice", ADDR);
        assert_eq!(t.blocked_for("alice", ADDR, now), None);
        for _ in 0..FREE_FAILURES {
            t.fail("alice", ADDR, now);
        }
        assert_eq!(
            t.fail("alice", ADDR, now + WINDOW),
            None,
            "old failures forgotten"
        );
    }
}
