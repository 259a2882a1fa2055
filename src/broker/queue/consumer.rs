//! One consumer as its queue sees it: its window, what it holds, and which messages it wants
//! (its selector, `no-local`, its priority among the queue's consumers).

use std::collections::VecDeque;
use std::sync::Arc;

use super::{ConsumerId, DeliverySink, Entry, Window};
use crate::broker::filter::Filter;
use crate::security::Authorizer;

/// Everything a subscriber asks of the queue it consumes from.
pub struct ConsumerSpec {
    /// Broker-wide consumer id.
    pub id: ConsumerId,
    /// Where its deliveries go.
    pub sink: Arc<dyn DeliverySink>,
    /// How much it may hold unacknowledged.
    pub window: Window,
    /// Whose rights a wildcard subscription's copies are checked against.
    pub reader: Option<Arc<dyn Authorizer>>,
    /// Higher-priority consumers get messages while they have room (`consumer-priority`,
    /// `x-priority`, `activemq.priority`); equal ones share round-robin. Default 0.
    pub priority: i32,
    /// Only messages it matches are offered to this consumer (the `selector` header).
    pub selector: Option<Filter>,
    /// Messages sent by this connection are not offered to it (`no-local`).
    pub no_local: Option<u64>,
    /// Where it starts on a retained stream, and its name there (ignored by other queues).
    pub stream: super::StreamRequest,
    /// An exclusive consumer (ActiveMQ's `activemq.exclusive`): while one is attached, the
    /// first of them gets every message, as on an `exclusive` queue.
    pub exclusive: bool,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) tag: u64,
    pub(super) entry: Entry,
    /// Acked or nacked inside an open transaction: no longer counts against the window.
    pub(super) settled: bool,
}

pub(super) struct ConsumerSlot {
    pub(super) id: ConsumerId,
    pub(super) sink: Arc<dyn DeliverySink>,
    pub(super) window: Window,
    pub(super) started: bool,
    pub(super) priority: i32,
    pub(super) selector: Option<Filter>,
    pub(super) no_local: Option<u64>,
    pub(super) exclusive: bool,
    pub(super) in_flight: VecDeque<InFlight>,
    pub(super) held_messages: u32,
    pub(super) held_bytes: u64,
}

impl ConsumerSlot {
    pub(super) fn new(spec: ConsumerSpec) -> ConsumerSlot {
        ConsumerSlot {
            id: spec.id,
            sink: spec.sink,
            window: spec.window,
            started: false,
            priority: spec.priority,
            selector: spec.selector,
            no_local: spec.no_local,
            exclusive: spec.exclusive,
            in_flight: VecDeque::new(),
            held_messages: 0,
            held_bytes: 0,
        }
    }

    pub(super) fn has_room(&self) -> bool {
        if !self.started {
            return false;
        }
        if self.held_messages == 0 {
            return true;
        }
        self.window.messages.is_none_or(|m| self.held_messages < m)
            && self.window.bytes.is_none_or(|b| self.held_bytes < b)
    }

    /// Whether it wants `entry` at all (room aside).
    pub(super) fn wants(&self, entry: &Entry) -> bool {
        let m = &entry.message;
        (self.no_local.is_none() || m.origin != self.no_local)
            && self.selector.as_ref().is_none_or(|f| f.matches(m))
    }

    /// Whether dispatch must look at each message for this consumer (a selector, no-local).
    pub(super) fn is_selective(&self) -> bool {
        self.selector.is_some() || self.no_local.is_some()
    }

    pub(super) fn hold(&mut self, size: u64) {
        self.held_messages += 1;
        self.held_bytes += size;
    }

    pub(super) fn release(&mut self, size: u64) {
        self.held_messages = self.held_messages.saturating_sub(1);
        self.held_bytes = self.held_bytes.saturating_sub(size);
    }
}

/// Which consumer should get a message.
pub(super) enum Pick {
    /// This one (an index into the queue's consumers).
    Consumer(usize),
    /// Some consumer wants it but none of those has room now.
    Busy,
    /// No attached consumer wants it.
    Nobody,
}

/// The consumer for `entry`: of those that want it and have room, the highest priority, and
/// among equals the next in round-robin order from `next`.
pub(super) fn pick(consumers: &[ConsumerSlot], next: usize, entry: &Entry) -> Pick {
    let n = consumers.len();
    let mut wanted = false;
    let mut best: Option<(i32, usize)> = None;
    for k in 0..n {
        let i = (next + k) % n;
        let c = &consumers[i];
        if !c.wants(entry) {
            continue;
        }
        wanted = true;
        if c.has_room() && best.is_none_or(|(p, _)| c.priority > p) {
            best = Some((c.priority, i));
        }
    }
    match best {
        Some((_, i)) => Pick::Consumer(i),
        None if wanted => Pick::Busy,
        None => Pick::Nobody,
    }
}
