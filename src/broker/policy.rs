//! The delivery policies an address's settings give its queues: how long a returned message
//! waits before it is offered again, what expiry a new message gets, and the queues created on
//! a dead-letter or expiry address. Plain values, resolved once per address, so the message
//! path only does arithmetic.

/// `redelivery-delay` and its companions (Artemis names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedeliveryPolicy {
    /// Milliseconds before the first redelivery; 0 = at once.
    pub delay_ms: u64,
    /// Factor applied to the delay on each further redelivery.
    pub multiplier: f64,
    /// Cap of the delay; `None` = 10 × `delay_ms`, as Artemis.
    pub max_delay_ms: Option<u64>,
    /// Random spread, 0.0–1.0, of each delay.
    pub collision_avoidance: f64,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        RedeliveryPolicy {
            delay_ms: 0,
            multiplier: 1.0,
            max_delay_ms: None,
            collision_avoidance: 0.0,
        }
    }
}

impl RedeliveryPolicy {
    /// Milliseconds a message delivered `delivery_count` times (and returned) waits before it
    /// is offered again: `delay × multiplier^(count-1)`, capped, then spread by up to ±factor.
    /// `spread` is a random number in 0.0..1.0 and `sign` a random choice, passed in so the
    /// policy stays a pure function.
    pub fn delay_for(&self, delivery_count: u32, spread: f64, negative: bool) -> u64 {
        if self.delay_ms == 0 {
            return 0;
        }
        let cap = self
            .max_delay_ms
            .unwrap_or(self.delay_ms.saturating_mul(10)) as f64;
        let exponent = delivery_count.saturating_sub(1).min(1024) as i32;
        let mut delay = (self.delay_ms as f64 * self.multiplier.powi(exponent)).min(cap);
        if self.collision_avoidance > 0.0 {
            let factor = self.collision_avoidance * spread.clamp(0.0, 1.0);
            delay += delay * if negative { -factor } else { factor };
        }
        delay.max(0.0) as u64
    }
}

/// `expiry-delay`, `min-expiry-delay`, `max-expiry-delay` and `no-expiry` (Artemis names),
/// applied to a message as it arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Time to live of a message that has none.
    pub delay_ms: Option<u64>,
    /// Shortest time to live.
    pub min_delay_ms: Option<u64>,
    /// Longest time to live (also given to a message that has none, when `delay_ms` is not
    /// set).
    pub max_delay_ms: Option<u64>,
    /// Messages never expire.
    pub no_expiry: bool,
}

impl ExpiryPolicy {
    /// The expiry (epoch ms, 0 = never) a message that asked for `expires` gets when it
    /// arrives at `now`: `no-expiry` first, then `expiry-delay` for one without expiry, then
    /// the min/max range, in Artemis's order of precedence.
    pub fn apply(&self, expires: u64, now: u64) -> u64 {
        if self.no_expiry {
            return 0;
        }
        if expires == 0 {
            if let Some(d) = self.delay_ms {
                return now.saturating_add(d);
            }
            return match (self.max_delay_ms, self.min_delay_ms) {
                (Some(max), _) => now.saturating_add(max),
                (None, Some(min)) => now.saturating_add(min),
                (None, None) => 0,
            };
        }
        let ttl = expires.saturating_sub(now);
        if let Some(max) = self.max_delay_ms
            && ttl > max
        {
            return now.saturating_add(max);
        }
        if let Some(min) = self.min_delay_ms
            && ttl < min
        {
            return now.saturating_add(min);
        }
        expires
    }
}

/// Where a dead or expired message goes: an address, and whether a queue per original
/// address is created there (`auto-create-dead-letter-resources` and its expiry twin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivertPolicy {
    /// The address; `None` = the message is dropped (with a warning for dead letters).
    pub address: Option<String>,
    /// Create `prefix + original address + suffix` on it, filtered on `_AMQ_ORIG_ADDRESS`.
    pub auto_create: bool,
    /// Queue name prefix for auto-created queues.
    pub queue_prefix: String,
    /// Queue name suffix for auto-created queues.
    pub queue_suffix: String,
}

impl DivertPolicy {
    /// The policy with Artemis's default prefix (`DLQ.` or `EXP.`).
    pub fn with_prefix(prefix: &str) -> Self {
        DivertPolicy {
            address: None,
            auto_create: false,
            queue_prefix: prefix.to_string(),
            queue_suffix: String::new(),
        }
    }

    /// The name of the auto-created queue for messages of `original`.
    pub fn queue_for(&self, original: &str) -> String {
        format!("{}{original}{}", self.queue_prefix, self.queue_suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_delay_grows_by_the_multiplier_up_to_the_cap() {
        let p = RedeliveryPolicy {
            delay_ms: 5000,
            multiplier: 2.0,
            max_delay_ms: Some(15000),
            collision_avoidance: 0.0,
        };
        assert_eq!(p.delay_for(1, 0.0, false), 5000);
        assert_eq!(p.delay_for(2, 0.0, false), 10000);
        assert_eq!(p.delay_for(3, 0.0, false), 15000);
        assert_eq!(p.delay_for(u32::MAX, 0.0, false), 15000);
        let default_cap = RedeliveryPolicy {
            max_delay_ms: None,
            ..p
        };
        assert_eq!(default_cap.delay_for(10, 0.0, false), 50000);
    }

    #[test]
    fn collision_avoidance_spreads_the_delay_both_ways() {
        let p = RedeliveryPolicy {
            delay_ms: 1000,
            multiplier: 1.0,
            max_delay_ms: Some(15000),
            collision_avoidance: 0.5,
        };
        assert_eq!(p.delay_for(1, 0.25, true), 875);
        assert_eq!(p.delay_for(1, 0.75, false), 1375);
        assert_eq!(RedeliveryPolicy::default().delay_for(3, 0.9, false), 0);
    }

    #[test]
    fn expiry_settings_apply_in_artemis_order() {
        let now = 1_000_000;
        let none = ExpiryPolicy::default();
        assert_eq!(none.apply(0, now), 0);
        assert_eq!(none.apply(now + 5, now), now + 5);
        let never = ExpiryPolicy {
            no_expiry: true,
            delay_ms: Some(10),
            ..none
        };
        assert_eq!(never.apply(now + 5, now), 0);
        let delay = ExpiryPolicy {
            delay_ms: Some(10),
            ..none
        };
        assert_eq!(delay.apply(0, now), now + 10);
        assert_eq!(delay.apply(now + 20, now), now + 20);
        let range = ExpiryPolicy {
            min_delay_ms: Some(10),
            max_delay_ms: Some(100),
            ..none
        };
        assert_eq!(range.apply(0, now), now + 100);
        assert_eq!(range.apply(now + 1000, now), now + 100);
        assert_eq!(range.apply(now + 1, now), now + 10);
        assert_eq!(range.apply(now + 50, now), now + 50);
        let min_only = ExpiryPolicy {
            min_delay_ms: Some(10),
            ..none
        };
        assert_eq!(min_only.apply(0, now), now + 10);
    }
}
