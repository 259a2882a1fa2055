//! Slows password guessing: each failed login from an IP waits longer before its ERROR
//! (exponential, capped), and an IP's count is forgotten after a quiet period.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tracked IPs before stale entries are pruned, so spoofed or many-source floods cannot grow
/// the map without bound.
const PRUNE_ABOVE: usize = 10_000;

/// Per-IP failed-login counter.
#[derive(Debug)]
pub struct LoginThrottle {
    base: Duration,
    max: Duration,
    decay: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `base` delay for the first failure, doubling up to `max`; forgotten after `decay`.
    pub fn new(base: Duration, max: Duration, decay: Duration) -> LoginThrottle {
        LoginThrottle {
            base,
            max,
            decay,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure from `ip` and returns how long to wait before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PRUNE_ABOVE {
            let decay = self.decay;
            map.retain(|_, (_, last)| now.duration_since(*last) < decay);
        }
        let slot = map.entry(ip).or_insert((0, now));
        if now.duration_since(slot.1) >= self.decay {
            slot.0 = 0;
        }
        slot.0 = slot.0.saturating_add(1);
        slot.1 = now;
        let shift = (slot.0 - 1).min(20);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }

    /// Failures currently counted for `ip` (for tests and logs).
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip)
            .filter(|(_, last)| last.elapsed() < self.decay)
            .map_or(0, |(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_per_ip() {
        let t = LoginThrottle::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_secs(60),
        );
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
    fn forgets_after_the_decay() {
        let t = LoginThrottle::new(
            Duration::from_millis(10),
            Duration::from_secs(1),
            Duration::from_millis(0),
        );
        let a: IpAddr = [10, 0, 0, 1].into();
        t.record_failure(a);
        assert_eq!(t.record_failure(a), Duration::from_millis(10));
        assert_eq!(t.failures(a), 0);
    }
}
