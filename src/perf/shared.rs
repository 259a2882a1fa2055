//! State shared by the tasks of one run: counters, trackers, the clock.

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
        Shared {
            epoch: Instant::now(),
            run,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            trackers: expects
                .into_iter()
                .map(|e| Tracker::with_expect(run, per_producer, e))
                .collect(),
            done: Notify::new(),
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
