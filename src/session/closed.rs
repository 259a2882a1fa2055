//! Subscriptions this connection recently unsubscribed, so that an ACK or NACK of a message
//! received before the UNSUBSCRIBE is accepted rather than closing the connection.
//!
//! Such an ACK is a no-op: at UNSUBSCRIBE every message the subscription still held went back
//! to its queue (marked redelivered), and another consumer may already have it. Bounded: the
//! last [`MAX_CLOSED`] subscriptions and at most [`MAX_MESSAGE_IDS`] message ids over them.

use std::collections::VecDeque;

use bytestring::ByteString;

use crate::broker::ConsumerId;

/// Unsubscribed subscriptions remembered per connection.
const MAX_CLOSED: usize = 64;
/// Message ids remembered over all of them (for 1.0/1.1 ACKs that name only a message id).
const MAX_MESSAGE_IDS: usize = 4096;

struct Closed {
    consumer: ConsumerId,
    id: ByteString,
    /// Sorted ids of the messages it held when it was closed.
    messages: Vec<u64>,
}

/// The recently unsubscribed subscriptions of one connection.
#[derive(Default)]
pub(super) struct RecentlyClosed {
    entries: VecDeque<Closed>,
    message_ids: usize,
}

impl RecentlyClosed {
    /// Remembers a subscription just closed and the ids of the messages it held.
    pub(super) fn remember(
        &mut self,
        consumer: ConsumerId,
        id: ByteString,
        mut messages: Vec<u64>,
    ) {
        messages.sort_unstable();
        if messages.len() > MAX_MESSAGE_IDS {
            // Keep the newest: a late ACK most likely names one of the last received.
            messages.drain(..messages.len() - MAX_MESSAGE_IDS);
        }
        self.message_ids += messages.len();
        self.entries.push_back(Closed {
            consumer,
            id,
            messages,
        });
        while self.entries.len() > MAX_CLOSED || self.message_ids > MAX_MESSAGE_IDS {
            match self.entries.pop_front() {
                Some(old) => self.message_ids -= old.messages.len(),
                None => break,
            }
        }
    }

    /// Whether an ack id's consumer belonged to a recently closed subscription.
    pub(super) fn has_consumer(&self, consumer: ConsumerId) -> bool {
        self.entries.iter().any(|c| c.consumer == consumer)
    }

    /// Whether a recently closed subscription had this `id`.
    pub(super) fn has_subscription(&self, id: &str) -> bool {
        self.entries.iter().any(|c| c.id == id)
    }

    /// Whether a recently closed subscription held this message when it was closed.
    pub(super) fn held_message(&self, message_id: u64) -> bool {
        self.entries
            .iter()
            .any(|c| c.messages.binary_search(&message_id).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_forgets_the_oldest() {
        let mut r = RecentlyClosed::default();
        for c in 0..(MAX_CLOSED as u64 + 10) {
            r.remember(c, ByteString::from(format!("s{c}")), vec![c]);
        }
        assert_eq!(r.entries.len(), MAX_CLOSED);
        assert!(!r.has_consumer(0) && !r.has_subscription("s0") && !r.held_message(0));
        let last = MAX_CLOSED as u64 + 9;
        assert!(r.has_consumer(last) && r.has_subscription(&format!("s{last}")));
        assert!(r.held_message(last));

        r.remember(
            1000,
            "big".into(),
            (0..(MAX_MESSAGE_IDS as u64 * 2)).collect(),
        );
        assert!(r.message_ids <= MAX_MESSAGE_IDS);
        assert!(r.held_message(MAX_MESSAGE_IDS as u64 * 2 - 1));
        assert!(!r.held_message(0));
    }
}
