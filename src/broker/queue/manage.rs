//! What operators do to one queue: find and take out messages (purge, delete, move), and
//! pause dispatch. Only messages the queue holds in memory, waiting or scheduled, are
//! reached: those out with consumers are theirs until settled, and those paged to disk come
//! back into reach as they are read back.

use std::collections::HashSet;
use std::sync::Arc;

use super::Queue;
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
        let mut waiting: Vec<&super::Entry> = st
            .backlog
            .iter_ordered()
            .chain(st.parked.iter_ordered())
            .collect();
        waiting.sort_by_key(|e| (std::cmp::Reverse(e.message.priority.min(9)), e.seq));
        waiting
            .into_iter()
            .chain(st.scheduled.iter())
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
        let mut waiting: Vec<(u8, u64, u64)> = st
            .backlog
            .iter_ordered()
            .chain(st.parked.iter_ordered())
            .filter(|e| pred(&e.message))
            .map(|e| (e.message.priority.min(9), e.seq, e.message.id))
            .collect();
        waiting.sort_by_key(|&(p, seq, _)| (std::cmp::Reverse(p), seq));
        waiting.truncate(limit);
        let mut seqs: HashSet<u64> = waiting.iter().map(|&(_, seq, _)| seq).collect();
        let mut order: Vec<u64> = waiting.iter().map(|&(_, _, id)| id).collect();
        let left = limit - seqs.len();
        let mut scheduled_ids = HashSet::new();
        if left > 0 {
            for e in st.scheduled.iter().filter(|e| pred(&e.message)).take(left) {
                scheduled_ids.insert(e.seq);
                order.push(e.message.id);
            }
        }
        let st = &mut *st;
        let mut taken: Vec<super::Entry> = st.backlog.extract(|e| seqs.contains(&e.seq));
        seqs.retain(|s| !taken.iter().any(|e| e.seq == *s));
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
