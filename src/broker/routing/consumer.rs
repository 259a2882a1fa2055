//! The consumer handle: a session's grip on one consumer for acks and for leaving.

use super::Broker;
use crate::broker::{AckTarget, BrokerError, Completed, ConsumerId, Outcome, Queue, Stored};
use std::sync::Arc;

/// A consumer attached to a queue: the session's grip on it for acks and for leaving.
#[derive(Clone)]
pub struct ConsumerHandle {
    /// Broker-wide consumer id.
    pub id: ConsumerId,
    /// The queue it consumes from.
    pub queue: Arc<Queue>,
    pub(super) broker: Arc<Broker>,
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("id", &self.id)
            .field("queue", &self.queue.name)
            .finish()
    }
}

impl ConsumerHandle {
    /// Lets messages flow (after the subscription was confirmed).
    pub fn start(&self) {
        self.queue.start_consumer(self.id);
    }

    /// Stops dispatch to this consumer ahead of [`ConsumerHandle::close`]; see
    /// [`Queue::stop_consumer`].
    pub fn stop(&self) {
        self.queue.stop_consumer(self.id);
    }

    /// Whether an unsettled delivery that `target` names is held by this consumer.
    pub fn holds(&self, target: AckTarget) -> bool {
        self.queue.holds(self.id, target)
    }

    /// Resolves an ACK/NACK to delivery tags and frees window room for them; see
    /// [`Queue::settle`] for `refill`.
    pub fn settle(
        &self,
        target: AckTarget,
        cumulative: bool,
        refill: bool,
    ) -> Result<Vec<u64>, BrokerError> {
        Ok(self.queue.settle(self.id, target, cumulative, refill)?)
    }

    /// Acks or nacks deliveries now; nacked ones are redelivered (or dead-lettered at the
    /// limit). The result resolves once the acks are stored (what a RECEIPT waits for).
    pub fn complete(&self, tags: &[u64], outcome: Outcome) -> Stored {
        let mut done = self.queue.complete(self.id, tags, outcome);
        let mut ops = std::mem::take(&mut done.journal);
        self.queue.record_removals(&done.acked, &mut ops);
        self.after(&done);
        self.broker.store_settled(ops, outcome != Outcome::Ack)
    }

    /// Puts settled deliveries back under the window (aborted transaction).
    pub fn unsettle(&self, tags: &[u64]) {
        self.queue.unsettle(self.id, tags);
    }

    /// Detaches: unacked messages go back to the queue; a non-durable subscription queue is
    /// removed; an auto-created queue left unused is deleted.
    pub fn close(&self) -> Completed {
        let done = self.queue.remove_consumer(self.id);
        self.after(&done);
        if self.queue.exclusive_to_subscriber || self.queue.auto_delete() {
            self.broker.maybe_auto_delete(&self.queue);
        }
        done
    }

    /// Follows up on settled deliveries: dead letters go to their address, and an
    /// auto-created queue left empty goes.
    pub(super) fn after(&self, done: &Completed) {
        if !done.dead.is_empty() {
            self.broker.dead_letter(&self.queue, done.dead.clone());
        }
        if !done.acked.is_empty() && self.queue.auto_delete() && self.queue.is_unused() {
            self.broker.maybe_auto_delete(&self.queue);
        }
    }
}
