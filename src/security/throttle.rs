//! Limits password guessing per source: each failed login from an IP waits longer before its
//! ERROR (exponential, capped), and once an IP has `limit` failures within the decay period,
//! further logins from it are refused at once, without hashing, until the period passes
//! without failures. So the guess rate of one source is bounded by `limit` per decay period,
//! not only slowed by the answer delay (which parallel connections would sidestep).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sources tracked at once. A flood from many addresses (an IPv6 attacker has plenty)
/// first drops stale entries, then the least recently failed ones, so memory stays bounded.
const MAX_TRACKED: usize = 10_000;

/// The unit a limit applies to: an IPv4 address, or an IPv6 /64 (one host's usual allocation,
/// so rotating addresses within it does not reset the count).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Per-source failed-login counter.
#[derive(Debug)]
pub struct LoginThrottle {
    base: Duration,
    max: Duration,
    decay: Duration,
    limit: u32,
    failures: Mutex<HashMap<IpAddr, Record>>,
}

impl LoginThrottle {
    /// `base` delay for the first failure, doubling up to `max`; logins refused outright after
    /// `limit` failures; everything forgotten after `decay` without a failure.
    pub fn new(base: Duration, max: Duration, decay: Duration, limit: u32) -> LoginThrottle {
        LoginThrottle {
            base,
            max,
            decay,
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether logins from `ip` are refused without being checked: it used up its failures.
    pub fn locked(&self, ip: IpAddr) -> bool {
        self.failures(ip) >= self.limit
    }

    /// Records a failure from `ip` and returns how long to wait before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let key = source_key(ip);
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
            let decay = self.decay;
            map.retain(|_, r| now.duration_since(r.last) < decay);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let slot = map.entry(key).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.duration_since(slot.last) >= self.decay {
            slot.failures = 0;
        }
        slot.failures = slot.failures.saturating_add(1);
        slot.last = now;
        let shift = (slot.failures - 1).min(20);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }

    /// Failures currently counted for `ip` (for the lock, tests and logs).
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&source_key(ip))
            .filter(|r| r.last.elapsed() < self.decay)
            .map_or(0, |r| r.failures)
    }

    /// Sources currently tracked (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(limit: u32) -> LoginThrottle {
        LoginThrottle::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_secs(60),
            limit,
        )
    }

    #[test]
    fn doubles_up_to_the_cap_per_ip() {
        let t = throttle(100);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(t.record_failure(a), Duration::from_millis(100));
        assert_eq!(t.record_failure(a), Duration::from_millis(200));
        assert_eq!(t.record_failure(a), Duration::from_millis(350));
        assert_eq!(t.record_failure(a), Duration::from_millis(350));
        assert_eq!(t.record_failure(b), Duration::from_millis(100));
        assert_eq!(t.failures(a), 4);
    }

    #[test]
    fn locks_a_source_after_the_limit() {
        let t = throttle(3);
        let a: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..2 {
            t.record_failure(a);
        }
        assert!(!t.locked(a));
        t.record_failure(a);
        assert!(t.locked(a));
        assert!(!t.locked([10, 0, 0, 2].into()));
        // An IPv6 /64 counts as one source, and an IPv4-mapped address as its IPv4 one.
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for i in 0..3 {
            t.record_failure(v6(i));
        }
        assert!(t.locked(v6(99)));
        assert!(t.locked("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forgets_after_the_decay() {
        let t = LoginThrottle::new(
            Duration::from_millis(10),
            Duration::from_secs(1),
            Duration::from_millis(0),
            1,
        );
        let a: IpAddr = [10, 0, 0, 1].into();
        t.record_failure(a);
        assert_eq!(t.record_failure(a), Duration::from_millis(10));
        assert_eq!(t.failures(a), 0);
        assert!(!t.locked(a));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = throttle(3);
        for i in 0..(MAX_TRACKED as u32 + 50) {
            t.record_failure(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // The newest source is still tracked.
        assert_eq!(
            t.failures(IpAddr::from((MAX_TRACKED as u32 + 49).to_be_bytes())),
            1
        );
    }
}
