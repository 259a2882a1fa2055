//! Exactly-once bookkeeping: every message carries `wrenmq-perf: RUN.PRODUCER.SEQ.SENT_US`;
//! a [`Tracker`] counts how often each (producer, seq) of this run arrived.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::inbound::decimal;
use super::select::Expect;

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
        Stamp::parse_bytes(v.as_bytes())
    }

    /// Parses a header value as it is on the wire (the consumer's hot path reads it in place;
    /// a stamp has no character STOMP escapes).
    pub fn parse_bytes(v: &[u8]) -> Option<Stamp> {
        let mut it = v.split(|&b| b == b'.');
        let run = it.next().filter(|h| !h.is_empty() && h.len() <= 8)?;
        let run = run.iter().try_fold(0u32, |n, &b| {
            let d = (b as char).to_digit(16)?;
            Some(n << 4 | d)
        })?;
        let stamp = Stamp {
            run,
            producer: u32::try_from(decimal(it.next()?)?).ok()?,
            seq: decimal(it.next()?)?,
            sent_us: decimal(it.next()?)?,
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
    /// A message of this run that this subscriber's selector excludes.
    Excluded,
}

/// Arrival counts of every message one subscriber should get exactly once.
pub struct Tracker {
    run: u32,
    counts: Vec<Box<[AtomicU8]>>,
    expect: Expect,
    expected: u64,
    unique: AtomicU64,
    duplicated: AtomicU64,
    foreign: AtomicU64,
    excluded: AtomicU64,
}

impl Tracker {
    /// A tracker expecting `per_producer[p]` messages from producer `p`.
    pub fn new(run: u32, per_producer: &[u64]) -> Tracker {
        Tracker::with_expect(run, per_producer, Expect::all())
    }

    /// A tracker expecting, of producer `p`'s `per_producer[p]` messages, those `expect`
    /// wants (a subscriber with a selector); the others count as excluded if they arrive.
    pub fn with_expect(run: u32, per_producer: &[u64], expect: Expect) -> Tracker {
        let expected = if expect.is_all() {
            per_producer.iter().sum()
        } else {
            per_producer
                .iter()
                .map(|&n| (0..n).filter(|&s| expect.wants(s)).count() as u64)
                .sum()
        };
        Tracker {
            run,
            counts: per_producer
                .iter()
                .map(|&n| (0..n).map(|_| AtomicU8::new(0)).collect())
                .collect(),
            expect,
            expected,
            unique: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            excluded: AtomicU64::new(0),
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
        if stamp.is_some_and(|s| !self.expect.wants(s.seq)) {
            self.note_excluded();
            return Seen::Excluded;
        }
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

    /// Counts an arrival at a subscriber whose selector excludes it.
    pub fn note_excluded(&self) {
        self.excluded.fetch_add(1, Ordering::Relaxed);
    }

    /// Arrivals of this run's messages that the receiving subscriber's selector excludes.
    pub fn excluded(&self) -> u64 {
        self.excluded.load(Ordering::Relaxed)
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

    #[test]
    fn a_selector_narrows_what_is_expected_and_counts_the_rest_as_excluded() {
        let cycles = [crate::perf::select::parse_property_cycle("c=a,b").expect("cycle")];
        let expect = Expect::for_selector(Some("c = 'b'"), &cycles).expect("selector");
        let t = Tracker::with_expect(7, &[4], expect);
        let st = |seq| {
            Some(Stamp {
                run: 7,
                producer: 0,
                seq,
                sent_us: 0,
            })
        };
        assert_eq!(t.expected(), 2);
        assert_eq!(t.record(st(0)), Seen::Excluded);
        assert_eq!(t.record(st(1)), Seen::First);
        assert_eq!(t.record(st(3)), Seen::First);
        assert!(t.complete());
        assert_eq!((t.lost(), t.duplicated(), t.excluded()), (0, 0, 1));
    }
}
