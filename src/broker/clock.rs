//! The broker's one clock. Queues arm it with the earliest time one of their held messages
//! falls due (a scheduled delivery, a redelivery delay), report expired messages they found
//! while dispatching, and it runs the periodic expiry scan (`message-expiry-scan-period`).
//! One task and one heap for the whole broker: a queue has one live alarm (its earliest due
//! time); alarms it superseded by asking for an earlier one are pruned from the heap once they
//! outnumber the live ones, so the heap stays a few entries per queue, never one per message,
//! whatever order the due times arrive in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::message::now_millis;
use super::queue::Queue;

/// One wake-up request.
struct Alarm {
    due: u64,
    seq: u64,
    queue: Weak<Queue>,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Alarm {}
impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

#[derive(Default)]
struct Pending {
    alarms: BinaryHeap<Reverse<Alarm>>,
    /// Each queue's live alarm (by the queue's address): the earliest it asked for since its
    /// last alarm fired. Other alarms of the queue in the heap are superseded. The heap entry
    /// keeps the queue's allocation (a `Weak`), so the address is not reused meanwhile.
    live: HashMap<usize, u64>,
    next_seq: u64,
    /// Queues holding expired messages found at dispatch, for the clock to move on.
    expired: Vec<Weak<Queue>>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
}

/// A handle on the broker's clock, shared by every queue.
#[derive(Clone, Default)]
pub struct Clock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").finish_non_exhaustive()
    }
}

/// What the clock asks of its owner (the broker) when it fires.
pub trait ClockOwner: Send + Sync + 'static {
    /// Moves on messages a queue found expired (to the expiry address, or away).
    fn expired(&self, queue: &Arc<Queue>, now: u64);
    /// Scans every queue for expired messages.
    fn scan_expired(&self, now: u64);
}

impl Clock {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes `queue` at `due` (ms since the epoch) to release what fell due.
    pub fn arm(&self, due: u64, queue: &Arc<Queue>) {
        let mut p = self.lock();
        let earliest = p.alarms.peek().is_none_or(|Reverse(a)| due < a.due);
        let live = p.live.entry(Arc::as_ptr(queue) as usize).or_insert(due);
        *live = (*live).min(due);
        if p.alarms.len() >= 2 * p.live.len() + 64 {
            // Drop superseded alarms: each rebuild follows at least as many pushes as it
            // removes, so this costs O(1) per arm.
            let Pending { alarms, live, .. } = &mut *p;
            alarms.retain(|Reverse(a)| live.get(&(a.queue.as_ptr() as usize)) == Some(&a.due));
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        p.alarms.push(Reverse(Alarm {
            due,
            seq,
            queue: Arc::downgrade(queue),
        }));
        drop(p);
        if earliest {
            self.inner.wake.notify_one();
        }
    }

    /// Tells the clock `queue` holds expired messages to move on.
    pub fn report_expired(&self, queue: &Arc<Queue>) {
        self.lock().expired.push(Arc::downgrade(queue));
        self.inner.wake.notify_one();
    }

    /// Alarms waiting (for tests and the memory benchmark's accounting).
    pub fn alarms(&self) -> usize {
        self.lock().alarms.len()
    }

    /// Releases whatever fell due by `now`; returns when the next alarm is due.
    fn fire(&self, now: u64) -> Option<u64> {
        loop {
            let mut p = self.lock();
            let due = match p.alarms.peek() {
                Some(Reverse(a)) if a.due <= now => p.alarms.pop(),
                Some(Reverse(a)) => return Some(a.due),
                None => return None,
            };
            if let Some(Reverse(a)) = &due {
                let key = a.queue.as_ptr() as usize;
                if p.live.get(&key) == Some(&a.due) {
                    // The queue re-arms (below) with its next due time, if any.
                    p.live.remove(&key);
                }
            }
            drop(p);
            if let Some(Reverse(alarm)) = due
                && let Some(q) = alarm.queue.upgrade()
                && let Some(next) = q.release_due(now, alarm.due)
            {
                self.arm(next, &q);
            }
        }
    }

    fn take_expired(&self) -> Vec<Weak<Queue>> {
        std::mem::take(&mut self.lock().expired)
    }

    /// Runs the clock until `owner` is gone. `scan_every`: the expiry scan period, if any.
    pub async fn run(self, owner: Weak<dyn ClockOwner>, scan_every: Option<Duration>) {
        let mut next_scan = scan_every.map(|d| tokio::time::Instant::now() + d);
        loop {
            let Some(o) = owner.upgrade() else { return };
            let now = now_millis();
            for q in self.take_expired().iter().filter_map(Weak::upgrade) {
                o.expired(&q, now);
            }
            if let (Some(at), Some(every)) = (next_scan, scan_every)
                && tokio::time::Instant::now() >= at
            {
                o.scan_expired(now);
                next_scan = Some(tokio::time::Instant::now() + every);
            }
            drop(o);
            let next_alarm = self.fire(now_millis());
            // Wake at the next alarm, the next scan, or when a queue arms an earlier alarm;
            // at least once a second so a broker that went away is noticed.
            let mut wait = Duration::from_secs(1);
            if let Some(due) = next_alarm {
                wait = wait.min(Duration::from_millis(due.saturating_sub(now_millis())));
            }
            if let Some(at) = next_scan {
                wait = wait.min(at.saturating_duration_since(tokio::time::Instant::now()));
            }
            if !wait.is_zero() {
                let _ = tokio::time::timeout(wait, self.inner.wake.notified()).await;
            }
        }
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
