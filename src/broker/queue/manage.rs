//! What operators do to one queue: find and take out messages (purge, delete, move), and
//! pause dispatch. Only messages the queue holds in memory, waiting or scheduled, are
//! reached: those out with consumers are theirs until settled, and those paged to disk come
//! back into reach as they are read back.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Entry, Queue, QueueState};
use crate::broker::message::Message;

impl Queue {
    /// Up to `limit` messages `pred` selects, in offer order (waiting by priority and
    /// arrival, then scheduled by due time), without taking them.
    pub fn find_where(
        &self,
        mut pred: impl FnMut(&Message) -> bool,
        limit: usize,
    ) -> Vec<Arc<Message>> {
        if self.stream.is_some() || limit == 0 {
            return Vec::new();
        }
        let st = self.lock();
        in_offer_order(&st)
            .filter(|e| pred(&e.message))
            .take(limit)
            .map(|e| Arc::clone(&e.message))
            .collect()
    }

    /// Takes out up to `limit` messages `pred` selects, in offer order, and returns them.
    /// Their journal records stay: the caller forgets them (or puts them back).
    pub fn remove_where(
        &self,
        mut pred: impl FnMut(&Message) -> bool,
        limit: usize,
    ) -> Vec<Arc<Message>> {
        if self.stream.is_some() || limit == 0 {
            return Vec::new();
        }
        let mut st = self.lock();
        // What to take, in offer order: the seqs of the waiting ones and of the scheduled ones
        // (kept apart so each extraction tests only its own), and every id, to return them in
        // that order. Each costs one set lookup: a purge of 10,000 stays linear.
        let mut seqs = HashSet::new();
        let mut scheduled_ids = HashSet::new();
        let mut order = Vec::new();
        let waiting = st.backlog.len() + st.parked.len();
        for (i, e) in in_offer_order(&st)
            .enumerate()
            .filter(|(_, e)| pred(&e.message))
            .take(limit)
        {
            if i < waiting {
                seqs.insert(e.seq);
            } else {
                scheduled_ids.insert(e.seq);
            }
            order.push(e.message.id);
        }
        let st = &mut *st;
        let mut taken: Vec<Entry> = st.backlog.extract(|e| seqs.contains(&e.seq));
        taken.extend(st.parked.extract(|e| seqs.contains(&e.seq)));
        taken.extend(st.scheduled.extract(|e| scheduled_ids.contains(&e.seq)));
        // Back in offer order.
        let mut by_id: std::collections::HashMap<u64, Arc<Message>> = taken
            .into_iter()
            .map(|e| (e.message.id, e.message))
            .collect();
        order
            .into_iter()
            .filter_map(|id| by_id.remove(&id))
            .collect()
    }

    /// Pauses (or resumes) dispatch: a paused queue takes messages in but hands none out.
    /// False for a retained stream, whose readers each move on their own.
    pub fn set_paused(self: &Arc<Self>, paused: bool) -> bool {
        if self.stream.is_some() {
            return false;
        }
        let mut st = self.lock();
        st.paused = paused;
        self.stats
            .paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
        if !paused {
            self.dispatch(&mut st);
        }
        true
    }
}

/// What a queue holds in memory in the order it would offer it: waiting messages (backlog and
/// parked) by priority then arrival, then scheduled ones by due time.
fn in_offer_order(st: &QueueState) -> impl Iterator<Item = &Entry> {
    let mut waiting: Vec<&Entry> = st
        .backlog
        .iter_ordered()
        .chain(st.parked.iter_ordered())
        .collect();
    waiting.sort_by_key(|e| (std::cmp::Reverse(e.message.priority.min(9)), e.seq));
    waiting.into_iter().chain(st.scheduled.iter())
}
