//! State shared by the tasks of one run: counters, trackers, the clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::select::Expect;
use super::tracker::Tracker;

/// Counters and trackers of one run.
pub struct Shared {
    /// Time zero of the run; message stamps count microseconds from it.
    pub epoch: Instant,
    /// This run's id, so messages left over from another run are recognised.
    pub run: u32,
    /// SEND frames written.
    pub sent: AtomicU64,
    /// MESSAGE frames read (all subscribers, duplicates included).
    pub received: AtomicU64,
    /// One tracker per subscriber group: one for a queue, one per fanout subscriber.
    pub trackers: Vec<Tracker>,
    /// Signalled when every tracker is complete.
    pub done: Notify,
    /// How long each RECEIPT took, from writing the SEND that asked for it to reading it
    /// (paced producers; one entry per receipt, not per message, so the lock is rare).
    pub receipts: Mutex<hdrhistogram::Histogram<u64>>,
    last_needed_us: AtomicU64,
}

impl Shared {
    /// State for a run with one subscriber group per entry of `expects`, each expecting
    /// what its selector picks of `per_producer` messages.
    pub fn with_expects(per_producer: &[u64], expects: Vec<Expect>) -> Shared {
        Shared::for_run(run_id(), per_producer, expects)
    }

    /// As [`Shared::with_expects`] for the messages of run `run`: a replay receives what an
    /// earlier phase of the same run sent.
    pub fn for_run(run: u32, per_producer: &[u64], expects: Vec<Expect>) -> Shared {
        let groups = expects
            .into_iter()
            .map(|e| (per_producer.to_vec(), e))
            .collect();
        Shared::for_run_groups(run, groups)
    }

    /// State for a run whose subscriber groups each expect their own producers' messages:
    /// entry `g` of `groups` holds group `g`'s messages per producer (0 for a producer that
    /// feeds another group) and what its selectors pick. Independent queues need this: a
    /// message of another queue's producer is foreign to a group, and missing from its own.
    pub fn with_groups(groups: Vec<(Vec<u64>, Expect)>) -> Shared {
        Shared::for_run_groups(run_id(), groups)
    }

    fn for_run_groups(run: u32, groups: Vec<(Vec<u64>, Expect)>) -> Shared {
        Shared {
            epoch: Instant::now(),
            run,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            trackers: groups
                .into_iter()
                .map(|(per_producer, e)| Tracker::with_expect(run, &per_producer, e))
                .collect(),
            done: Notify::new(),
            receipts: Mutex::new(super::report::histogram()),
            last_needed_us: AtomicU64::new(0),
        }
    }

    /// Microseconds since the epoch.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether every subscriber group has every message.
    pub fn all_complete(&self) -> bool {
        self.trackers.iter().all(Tracker::complete)
    }

    /// Called after a first arrival in group `g`: notes the time and wakes the runner when
    /// that arrival completed the whole run.
    pub fn check_complete(&self, g: usize) {
        if self.trackers.get(g).is_some_and(Tracker::complete) && self.all_complete() {
            self.last_needed_us
                .fetch_max(self.now_us(), Ordering::AcqRel);
            self.done.notify_one();
        }
    }

    /// When the last needed message arrived, if the run completed.
    pub fn completed_at(&self) -> Option<Instant> {
        match self.last_needed_us.load(Ordering::Acquire) {
            0 => None,
            us => Some(self.epoch + Duration::from_micros(us)),
        }
    }
}

/// A run id from the clock and process id: distinct across runs in practice.
fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::tracker::{Seen, Stamp};

    #[test]
    fn a_group_expects_only_its_own_producers_messages() {
        // Two queues, producer 0 feeding the first and producer 1 the second, 2 messages each.
        let s = Shared::with_groups(vec![
            (vec![2, 0], Expect::all()),
            (vec![0, 2], Expect::all()),
        ]);
        let st = |producer, seq| {
            Some(Stamp {
                run: s.run,
                producer,
                seq,
                sent_us: 0,
            })
        };
        let (q0, q1) = (&s.trackers[0], &s.trackers[1]);
        assert_eq!((q0.expected(), q1.expected()), (2, 2));
        assert_eq!(q0.record(st(0, 0)), Seen::First);
        assert_eq!(q0.record(st(0, 1)), Seen::First);
        // Producer 1's message delivered on the first queue: foreign there, lost on its own.
        assert_eq!(q0.record(st(1, 0)), Seen::Foreign);
        assert_eq!(q1.record(st(1, 1)), Seen::First);
        assert!(q0.complete() && !q1.complete() && !s.all_complete());
        assert_eq!((q1.lost(), q0.foreign()), (1, 1));
    }
}
