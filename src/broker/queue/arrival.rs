//! What happens as a message starts waiting in a queue of a special kind: a last-value queue
//! replaces the waiting message with the same key, and a ring queue drops its oldest waiting
//! message once it holds more than `ring-size`. Both run inside the queue's lock, in O(1)
//! (plus a binary search) per message.

use std::sync::Arc;

use bytestring::ByteString;

use super::backlog::level_of;
use super::{Entry, Queue, QueueState};

impl Queue {
    /// The key of `entry` in this last-value queue, if it is one and the message has it.
    fn last_value_of(&self, entry: &Entry) -> Option<ByteString> {
        let key = self.kind.last_value_key.as_deref()?;
        entry
            .message
            .properties
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v.clone())
    }

    /// Adds a message that was never delivered to the waiting messages: on a last-value
    /// queue it takes the place of the waiting message with the same key (which is gone for
    /// good, its journal ref with it); on a ring queue the oldest waiting message goes once
    /// the ring is over its size.
    pub(super) fn push_arrival(self: &Arc<Self>, st: &mut QueueState, entry: Entry) {
        if let Some(value) = self.last_value_of(&entry) {
            self.replace_last_value(st, value, entry);
        } else {
            st.backlog.push_new(entry);
        }
        self.enforce_ring(st);
    }

    fn replace_last_value(self: &Arc<Self>, st: &mut QueueState, value: ByteString, new: Entry) {
        let level = level_of(new.message.priority);
        if let Some(&(old_level, old_seq)) = st.last_values.get(&value) {
            if old_level == level
                && let Some(slot) = st.backlog.get_mut(level, old_seq)
            {
                // In place: the newest value is offered where the old one waited.
                let old = std::mem::replace(
                    slot,
                    Entry {
                        seq: old_seq,
                        ..new
                    },
                );
                st.replaced_by_last_value += 1;
                self.forget(&old);
                return;
            }
            // Another priority, or set aside as unwanted (the new value may be wanted):
            // the old one goes and the new one queues as a new arrival.
            if let Some(old) = st
                .backlog
                .remove(old_level, old_seq)
                .or_else(|| st.parked.remove(old_level, old_seq))
            {
                st.replaced_by_last_value += 1;
                self.forget(&old);
            }
        }
        st.last_values.insert(value, (level, new.seq));
        st.backlog.push_new(new);
        self.prune_last_values(st);
    }

    /// A delivered message of a last-value queue coming back (NACK, its consumer left):
    /// dropped when a newer value of its key waits already, so consumers never go back to
    /// an older value. Returns the entry when it should be put back.
    pub(super) fn returning_last_value(
        self: &Arc<Self>,
        st: &mut QueueState,
        entry: Entry,
    ) -> Option<Entry> {
        let Some(value) = self.last_value_of(&entry) else {
            return Some(entry);
        };
        if let Some(&(level, seq)) = st.last_values.get(&value)
            && seq != entry.seq
            && (st.backlog.get_mut(level, seq).is_some() || st.parked.get_mut(level, seq).is_some())
        {
            st.replaced_by_last_value += 1;
            self.forget(&entry);
            return None;
        }
        st.last_values
            .insert(value, (level_of(entry.message.priority), entry.seq));
        self.prune_last_values(st);
        Some(entry)
    }

    /// A last-value queue's message leaves the waiting messages (it is handed to a
    /// consumer): its key leaves the index at once, so the index holds only what waits and
    /// no delivered message's header keeps its frame's buffer alive.
    pub(super) fn left_waiting(&self, st: &mut QueueState, entry: &Entry) {
        if let Some(value) = self.last_value_of(entry)
            && st
                .last_values
                .get(&value)
                .is_some_and(|&(_, seq)| seq == entry.seq)
        {
            st.last_values.remove(&value);
        }
    }

    /// Keys whose message left otherwise (expired, dropped) stay in the index until a sweep: one runs when the
    /// index outgrows twice what waits, so it stays O(waiting) in size, amortised O(1).
    fn prune_last_values(&self, st: &mut QueueState) {
        let waiting = st.backlog.len() + st.parked.len();
        if st.last_values.len() <= 2 * waiting + 64 {
            return;
        }
        let QueueState {
            last_values,
            backlog,
            parked,
            ..
        } = &mut *st;
        last_values.retain(|_, &mut (level, seq)| {
            backlog.get_mut(level, seq).is_some() || parked.get_mut(level, seq).is_some()
        });
    }

    /// Drops the oldest waiting messages while a ring queue holds more than its size. The
    /// newest waiting message always stays, and messages out with consumers cannot be taken
    /// back, so a ring whose consumers hold `ring-size` messages holds one more until they
    /// settle.
    pub(super) fn enforce_ring(self: &Arc<Self>, st: &mut QueueState) {
        let Some(size) = self.kind.ring_size else {
            return;
        };
        let out: usize = st.consumers.iter().map(|c| c.in_flight.len()).sum();
        let mut held = st.backlog.len() + st.parked.len() + st.scheduled.len() + out;
        while held as u64 > size && st.backlog.len() + st.parked.len() > 1 {
            let oldest = match (st.backlog.oldest(), st.parked.oldest()) {
                (Some(a), Some(b)) if b.1 < a.1 => st.parked.remove(b.0, b.1),
                (Some(a), _) => st.backlog.remove(a.0, a.1),
                (None, Some(b)) => st.parked.remove(b.0, b.1),
                (None, None) => None,
            };
            let Some(entry) = oldest else {
                break;
            };
            st.dropped_by_ring += 1;
            tracing::debug!(queue = %self.name, message = entry.message.id, "ring full: oldest message dropped");
            self.forget(&entry);
            held -= 1;
        }
    }

    /// Messages a ring queue dropped to stay within `ring-size`.
    pub fn dropped_by_ring(&self) -> u64 {
        self.lock().dropped_by_ring
    }

    /// Messages a last-value queue replaced with a newer value of their key.
    pub fn replaced_by_last_value(&self) -> u64 {
        self.lock().replaced_by_last_value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use bytestring::ByteString;

    use crate::broker::message::{Message, now_millis};
    use crate::broker::queue::{Queue, QueueKind, QueueSpec};

    fn queue(kind: QueueKind) -> Arc<Queue> {
        Queue::new(QueueSpec::for_test("k", kind))
    }

    fn message(id: u64, priority: u8, key: Option<&str>) -> Arc<Message> {
        Arc::new(Message {
            id,
            address: "k".into(),
            destination: "k".into(),
            properties: key
                .map(|k| vec![(ByteString::from("_AMQ_LVQ_NAME"), ByteString::from(k))])
                .unwrap_or_default(),
            body: Bytes::new().into(),
            persistent: false,
            priority,
            expires: 0,
            timestamp: now_millis(),
            deliver_at: 0,
            origin: None,
            group: None,
            usage: None,
            encoded: None,
        })
    }

    fn ids(q: &Queue) -> Vec<u64> {
        q.snapshot().iter().map(|(m, _)| m.id).collect()
    }

    #[test]
    fn ring_drops_the_oldest_whatever_its_priority_and_counts_it() {
        let q = queue(QueueKind {
            ring_size: Some(3),
            ..Default::default()
        });
        for (id, prio) in [(1, 9), (2, 0), (3, 4), (4, 4), (5, 9)] {
            q.enqueue(message(id, prio, None)).unwrap();
        }
        assert_eq!(ids(&q), [5, 3, 4]);
        assert_eq!(q.dropped_by_ring(), 2);
    }

    #[test]
    fn last_value_replaces_in_place_or_requeues_at_another_priority_and_counts_it() {
        let q = queue(QueueKind {
            last_value_key: Some("_AMQ_LVQ_NAME".into()),
            ..Default::default()
        });
        q.enqueue(message(1, 4, Some("a"))).unwrap();
        q.enqueue(message(2, 4, Some("b"))).unwrap();
        q.enqueue(message(3, 4, Some("a"))).unwrap();
        assert_eq!(ids(&q), [3, 2], "same priority: in a's old place");
        q.enqueue(message(4, 9, Some("b"))).unwrap();
        assert_eq!(ids(&q), [4, 3], "another priority: b moved with it");
        q.enqueue(message(5, 4, None)).unwrap();
        assert_eq!(ids(&q), [4, 3, 5]);
        assert_eq!(q.replaced_by_last_value(), 2);
        assert_eq!(q.ready_count(), 3);
    }

    #[test]
    fn last_value_index_stays_bounded_by_what_waits() {
        let q = queue(QueueKind {
            last_value_key: Some("_AMQ_LVQ_NAME".into()),
            ring_size: Some(10),
            ..Default::default()
        });
        for id in 0..10_000u64 {
            q.enqueue(message(id, 4, Some(&format!("k{id}")))).unwrap();
        }
        assert_eq!(q.ready_count(), 10);
        assert!(q.lock().last_values.len() <= 2 * 10 + 64 + 1);
    }

    struct Accept;
    impl crate::broker::queue::DeliverySink for Accept {
        fn deliver(&self, _: crate::broker::queue::Delivery) -> bool {
            true
        }
    }

    #[test]
    fn a_delivered_value_leaves_the_index_at_once() {
        let q = queue(QueueKind {
            last_value_key: Some("_AMQ_LVQ_NAME".into()),
            ..Default::default()
        });
        q.add_consumer(crate::broker::queue::ConsumerSpec {
            id: 1,
            sink: Arc::new(Accept),
            window: crate::broker::queue::Window {
                messages: None,
                bytes: None,
            },
            reader: None,
            priority: 0,
            selector: None,
            no_local: None,
            exclusive: false,
            stream: Default::default(),
        });
        q.start_consumer(1);
        for id in 0..50u64 {
            q.enqueue(message(id, 4, Some(&format!("k{id}")))).unwrap();
        }
        assert_eq!(q.ready_count(), 0);
        assert!(
            q.lock().last_values.is_empty(),
            "delivered keys are not kept"
        );
    }
}
