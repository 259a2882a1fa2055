//! Exactly-once bookkeeping: every message carries `wrenmq-perf: RUN.PRODUCER.SEQ.SENT_US`;
//! a [`Tracker`] counts how often each (producer, seq) of this run arrived.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The header every perf message carries.
pub const HEADER: &str = "wrenmq-perf";

/// What a received message's perf header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The run it belongs to (messages of other runs are counted as foreign).
    pub run: u32,
    /// Producer index.
    pub producer: u32,
    /// Sequence number within the producer, from 0.
    pub seq: u64,
    /// Microseconds since the run's epoch when it was (meant to be) sent.
    pub sent_us: u64,
}

impl Stamp {
    /// Writes the header value.
    pub fn write(&self, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        let _ = write!(
            out,
            "{:x}.{}.{}.{}",
            self.run, self.producer, self.seq, self.sent_us
        );
    }

    /// Parses a header value; `None` for anything malformed.
    pub fn parse(v: &str) -> Option<Stamp> {
        let mut it = v.split('.');
        let stamp = Stamp {
            run: u32::from_str_radix(it.next()?, 16).ok()?,
            producer: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
            sent_us: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(stamp)
    }
}

/// What [`Tracker::record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First arrival of a message of this run.
    First,
    /// A message already received.
    Duplicate,
    /// Not a message this run sent (another run, unknown producer or seq, no header).
    Foreign,
}

/// Arrival counts of every message one subscriber should get exactly once.
pub struct Tracker {
    run: u32,
    counts: Vec<Box<[AtomicU8]>>,
    expected: u64,
    unique: AtomicU64,
    duplicated: AtomicU64,
    foreign: AtomicU64,
}

impl Tracker {
    /// A tracker expecting `per_producer[p]` messages from producer `p`.
    pub fn new(run: u32, per_producer: &[u64]) -> Tracker {
        Tracker {
            run,
            counts: per_producer
                .iter()
                .map(|&n| (0..n).map(|_| AtomicU8::new(0)).collect())
                .collect(),
            expected: per_producer.iter().sum(),
            unique: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
        }
    }

    /// Records one arrival.
    pub fn record(&self, stamp: Option<Stamp>) -> Seen {
        let slot = stamp.filter(|s| s.run == self.run).and_then(|s| {
            self.counts
                .get(s.producer as usize)
                .and_then(|c| c.get(s.seq as usize))
        });
        let Some(slot) = slot else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return Seen::Foreign;
        };
        // Saturates at 255 so a flood of duplicates cannot wrap back to "never seen".
        let before = slot
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_add(1))
            })
            .unwrap_or(u8::MAX);
        if before == 0 {
            self.unique.fetch_add(1, Ordering::AcqRel);
            Seen::First
        } else {
            self.duplicated.fetch_add(1, Ordering::Relaxed);
            Seen::Duplicate
        }
    }

    /// Whether every expected message has arrived at least once.
    pub fn complete(&self) -> bool {
        self.unique.load(Ordering::Acquire) >= self.expected
    }

    /// Messages expected in total.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Distinct expected messages received.
    pub fn unique(&self) -> u64 {
        self.unique.load(Ordering::Acquire)
    }

    /// Expected messages never received.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.unique())
    }

    /// Extra arrivals of messages already received.
    pub fn duplicated(&self) -> u64 {
        self.duplicated.load(Ordering::Relaxed)
    }

    /// Arrivals that were not messages of this run.
    pub fn foreign(&self) -> u64 {
        self.foreign.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip_and_garbage() {
        let s = Stamp {
            run: 0xabc,
            producer: 3,
            seq: 99,
            sent_us: 12345,
        };
        let mut v = String::new();
        s.write(&mut v);
        assert_eq!(Stamp::parse(&v), Some(s));
        for bad in ["", "x.1.2.3", "1.2.3", "1.2.3.4.5", "1.-2.3.4"] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_first_duplicate_foreign_and_lost() {
        let t = Tracker::new(7, &[2, 1]);
        let st = |producer, seq| {
            Some(Stamp {
                run: 7,
                producer,
                seq,
                sent_us: 0,
            })
        };
        assert_eq!(t.record(st(0, 0)), Seen::First);
        assert_eq!(t.record(st(0, 0)), Seen::Duplicate);
        assert_eq!(t.record(st(1, 0)), Seen::First);
        assert_eq!(t.record(st(1, 1)), Seen::Foreign);
        assert_eq!(t.record(None), Seen::Foreign);
        assert!(!t.complete());
        assert_eq!((t.lost(), t.duplicated(), t.foreign()), (1, 1, 2));
        assert_eq!(t.record(st(0, 1)), Seen::First);
        assert!(t.complete());
    }
}
