//! The figures operators read (the admin API, `/metrics`, the CLI): plain atomics that live in
//! the core objects they describe. The core writes them where it changes state anyway (under a
//! queue's own lock, or where a send is routed); a reader loads them without taking any lock
//! the delivery path holds, so looking never slows delivery.
//!
//! Counters only grow. Gauges (a queue's depth) are published by the queue whenever it
//! releases its lock, so they are always a state the queue was really in.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Loads with `Relaxed`: each figure is read on its own, and none orders anything else.
fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Adds one with `Relaxed` (see [`load`]).
pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` with `Relaxed` (see [`load`]).
pub(crate) fn add(a: &AtomicU64, n: u64) {
    if n != 0 {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// One queue's counters and depth.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Messages that entered (routed, moved or recovered into it).
    pub enqueued: AtomicU64,
    /// Deliveries handed to consumers (redeliveries included).
    pub delivered: AtomicU64,
    /// Deliveries of a message delivered before.
    pub redelivered: AtomicU64,
    /// Messages acknowledged (consumed for good).
    pub acknowledged: AtomicU64,
    /// Deliveries refused by NACK (given back or dead-lettered).
    pub nacked: AtomicU64,
    /// Messages that expired here.
    pub expired: AtomicU64,
    /// Messages that left for the dead-letter address.
    pub dead_lettered: AtomicU64,
    /// Messages an operator removed (purge, delete, move).
    pub removed: AtomicU64,
    /// Messages waiting to be offered, in memory or paged to disk (gauge).
    pub ready: AtomicU64,
    /// Of those, on disk (gauge).
    pub paged: AtomicU64,
    /// Delivered and not yet settled (gauge).
    pub in_flight: AtomicU64,
    /// Waiting for their delivery time or redelivery delay (gauge).
    pub scheduled: AtomicU64,
    /// Consumers attached (gauge).
    pub consumers: AtomicU64,
    /// Bytes of the messages waiting in memory (gauge).
    pub bytes: AtomicU64,
    /// Arrival time (ms since the epoch) of the oldest message waiting in memory; 0 = none.
    pub oldest_ms: AtomicU64,
    /// Dispatch is paused by an operator.
    pub paused: AtomicBool,
}

/// A snapshot of [`QueueStats`], each figure read once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// See [`QueueStats::enqueued`].
    pub enqueued: u64,
    /// See [`QueueStats::delivered`].
    pub delivered: u64,
    /// See [`QueueStats::redelivered`].
    pub redelivered: u64,
    /// See [`QueueStats::acknowledged`].
    pub acknowledged: u64,
    /// See [`QueueStats::nacked`].
    pub nacked: u64,
    /// See [`QueueStats::expired`].
    pub expired: u64,
    /// See [`QueueStats::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`QueueStats::removed`].
    pub removed: u64,
    /// See [`QueueStats::ready`].
    pub ready: u64,
    /// See [`QueueStats::paged`].
    pub paged: u64,
    /// See [`QueueStats::in_flight`].
    pub in_flight: u64,
    /// See [`QueueStats::scheduled`].
    pub scheduled: u64,
    /// See [`QueueStats::consumers`].
    pub consumers: u64,
    /// See [`QueueStats::bytes`].
    pub bytes: u64,
    /// See [`QueueStats::oldest_ms`].
    pub oldest_ms: u64,
    /// See [`QueueStats::paused`].
    pub paused: bool,
}

impl QueueFigures {
    /// Every message the queue holds: waiting, scheduled and out with consumers.
    pub fn messages(&self) -> u64 {
        self.ready + self.scheduled + self.in_flight
    }
}

impl QueueStats {
    /// Reads every figure.
    pub fn snapshot(&self) -> QueueFigures {
        QueueFigures {
            enqueued: load(&self.enqueued),
            delivered: load(&self.delivered),
            redelivered: load(&self.redelivered),
            acknowledged: load(&self.acknowledged),
            nacked: load(&self.nacked),
            expired: load(&self.expired),
            dead_lettered: load(&self.dead_lettered),
            removed: load(&self.removed),
            ready: load(&self.ready),
            paged: load(&self.paged),
            in_flight: load(&self.in_flight),
            scheduled: load(&self.scheduled),
            consumers: load(&self.consumers),
            bytes: load(&self.bytes),
            oldest_ms: load(&self.oldest_ms),
            paused: self.paused.load(Ordering::Relaxed),
        }
    }

    /// Publishes the depth gauges (the queue calls it as it releases its lock).
    pub(crate) fn publish(&self, depth: Depth) {
        let set = |a: &AtomicU64, v: u64| {
            // Most releases change nothing: skip the store so the line stays shared.
            if a.load(Ordering::Relaxed) != v {
                a.store(v, Ordering::Relaxed);
            }
        };
        set(&self.ready, depth.ready);
        set(&self.paged, depth.paged);
        set(&self.in_flight, depth.in_flight);
        set(&self.scheduled, depth.scheduled);
        set(&self.consumers, depth.consumers);
        set(&self.bytes, depth.bytes);
        set(&self.oldest_ms, depth.oldest_ms);
    }
}

/// What a queue holds at one moment, for [`QueueStats::publish`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Depth {
    pub ready: u64,
    pub paged: u64,
    pub in_flight: u64,
    pub scheduled: u64,
    pub consumers: u64,
    pub bytes: u64,
    pub oldest_ms: u64,
}

/// One address's counters.
#[derive(Debug, Default)]
pub struct AddressStats {
    /// Messages sent to it that reached at least one queue.
    pub routed: AtomicU64,
    /// Messages sent to it that no queue took.
    pub unroutable: AtomicU64,
}

/// Why a message went to a dead-letter or expiry address, for the broker-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// It reached `max-delivery-attempts`.
    MaxDeliveries,
    /// A consumer rejected it (NACK with `requeue:false`).
    Rejected,
    /// It expired.
    Expired,
}

/// A counter padded to its own cache line, so counters bumped by different cores do not
/// contend on one line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Padded(pub AtomicU64);

impl Padded {
    /// The current value.
    pub fn get(&self) -> u64 {
        load(&self.0)
    }
}

/// Broker-wide totals. They are counters of their own, never sums over live objects, so they
/// keep counting what queues and connections that are gone did.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Messages producers handed to the broker (SEND, API).
    pub received: Padded,
    /// Of those, messages that reached at least one queue.
    pub routed: Padded,
    /// Of those, messages that reached no queue.
    pub unroutable: Padded,
    /// Deliveries to consumers.
    pub delivered: Padded,
    /// Deliveries of messages delivered before.
    pub redelivered: Padded,
    /// Messages acknowledged.
    pub acknowledged: Padded,
    /// Deliveries refused by NACK.
    pub nacked: Padded,
    /// Messages that expired.
    pub expired: Padded,
    /// Dead-lettered after `max-delivery-attempts`.
    pub dead_max_deliveries: Padded,
    /// Dead-lettered by a rejecting NACK.
    pub dead_rejected: Padded,
    /// Queues created since start.
    pub queues_created: Padded,
    /// Queues deleted since start.
    pub queues_deleted: Padded,
}

impl BrokerStats {
    /// Counts a message leaving for a dead-letter or expiry address.
    pub(crate) fn dead(&self, reason: DeadReason) {
        match reason {
            DeadReason::MaxDeliveries => bump(&self.dead_max_deliveries.0),
            DeadReason::Rejected => bump(&self.dead_rejected.0),
            DeadReason::Expired => bump(&self.expired.0),
        }
    }
}
