//! A queue: messages waiting by priority and arrival, messages not yet due (scheduled,
//! waiting out a redelivery delay), the consumers attached to it, and what each consumer holds
//! unacknowledged. All state sits behind one `std::sync::Mutex` that is never held across an
//! `.await`: every operation is a short synchronous critical section, and handing a message to
//! a connection is a non-blocking push bounded by the consumer's window.

mod arrival;
mod backlog;
mod browse;
mod consumer;
mod groups;
mod kind;
mod manage;
mod paging;
mod scheduled;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use self::backlog::Backlog;
use self::consumer::{ConsumerSlot, InFlight, Pick, pick};
use self::groups::{GroupKey, Groups};
use self::scheduled::Scheduled;
use super::RoutingType;
use super::clients::Owner;
use super::clock::Clock;
use super::filter::Filter;
use super::message::{Message, now_millis};
use super::policy::RedeliveryPolicy;
use super::stats::{BrokerStats, Depth, QueueStats, bump};
use crate::journal::{Journal, JournalOp};
use crate::security::{Authorizer, Permission};

pub use self::browse::{BrowseCursor, BrowsePage, Browsed};
pub use self::consumer::ConsumerSpec;
pub use self::kind::{GroupBuckets, QueueKind, QueueKindDefaults, QueueKindKeys, Retention};
pub use self::paging::{Pager, Placed};
use self::stream::Stream;
pub use self::stream::{SEGMENT_BYTES, SEGMENT_MESSAGES, StreamRequest, StreamStart};

/// Identifies one consumer broker-wide.
pub type ConsumerId = u64;

/// Where a queue hands messages for one consumer: the consumer's connection. The broker knows
/// nothing of STOMP; the session implements this to turn deliveries into MESSAGE frames.
pub trait DeliverySink: Send + Sync + 'static {
    /// Passes a delivery on without blocking. Returns false when the connection is gone.
    fn deliver(&self, delivery: Delivery) -> bool;
}

/// One message handed to one consumer, awaiting its acknowledgement.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The consumer it was given to.
    pub consumer: ConsumerId,
    /// Identifies this delivery within the queue; acks name it.
    pub tag: u64,
    /// The message, shared with other queues.
    pub message: Arc<Message>,
    /// 1 on first delivery; more means it was delivered before.
    pub delivery_count: u32,
    /// The queue it came from, so an ack can find its way back.
    pub queue: Arc<Queue>,
    /// Its offset when the queue is a retained stream (the MESSAGE's `x-stream-offset`),
    /// [`NOT_IN_STREAM`] otherwise; read through [`Delivery::stream_offset`]. A plain `u64`
    /// rather than an `Option` keeps a delivery, and so each slot of every connection's
    /// writer channel, 8 bytes smaller (32 slots are allocated per connection).
    offset: u64,
    /// The first message of its group this consumer gets (`JMSXGroupFirstForConsumer`):
    /// the group was just bound to it, so earlier messages of the group went elsewhere.
    pub group_first: bool,
}

/// [`Delivery`]'s offset when it does not come from a stream: no stream reaches it.
const NOT_IN_STREAM: u64 = u64::MAX;

impl Delivery {
    /// Its offset in the stream it came from; `None` when its queue is not a stream.
    pub fn stream_offset(&self) -> Option<u64> {
        (self.offset != NOT_IN_STREAM).then_some(self.offset)
    }
}

/// How much a consumer may hold unacknowledged. Whichever limit is hit first stops delivery;
/// one message always fits so a message larger than the byte window still flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Most unacknowledged messages; `None` = unlimited.
    pub messages: Option<u32>,
    /// Most unacknowledged bytes; `None` = unlimited.
    pub bytes: Option<u64>,
}

/// What an ACK or NACK names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckTarget {
    /// A delivery tag (STOMP 1.2 `ack` ids carry it).
    Tag(u64),
    /// A message id (STOMP 1.0/1.1 acks carry it).
    MessageId(u64),
}

/// What to do with settled deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Consumed: remove from the queue.
    Ack,
    /// Refused: put back for redelivery (after the redelivery delay), or dead-lettered once
    /// it reached `max-delivery-attempts`.
    Nack,
    /// Refused for good (a NACK with `requeue:false`): straight to the dead-letter address.
    Reject,
}

/// Why an ack could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Nothing matching awaits acknowledgement from this consumer.
    #[error("no delivery {0} awaits acknowledgement on this subscription")]
    NotPending(String),
}

/// A message leaving its queue for the dead-letter address, with how often it was delivered.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message.
    pub message: Arc<Message>,
    /// Deliveries it had.
    pub delivery_count: u32,
}

/// What completing deliveries removed, for the journal and the dead-letter address.
#[derive(Debug, Default)]
pub struct Completed {
    /// Messages consumed for good.
    pub acked: Vec<Arc<Message>>,
    /// Messages that reached `max-delivery-attempts` or were rejected.
    pub dead: Vec<DeadLetter>,
    /// Deliveries returned for redelivery: (message id, new delivery count).
    pub returned: Vec<(u64, u32)>,
    /// Records to store with the settlement (a stream consumer's stored offset).
    pub journal: Vec<JournalOp>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    message: Arc<Message>,
    delivery_count: u32,
    /// Whether the queue's reader was known to be allowed to consume the message's address
    /// when it was enqueued (always true outside wildcard subscriptions); an unchecked one is
    /// checked against the consumer before it is handed over.
    checked: bool,
}

/// Deliveries taken out of a consumer's hands for a transaction being committed: they no
/// longer count as the consumer's (closing it does not return them), and the commit settles
/// them once its journal batch is stored, or gives them back if it failed.
#[derive(Debug)]
pub struct Taken {
    queue: Arc<Queue>,
    entries: Vec<Entry>,
}

impl Taken {
    /// The messages taken, for the journal records of the commit.
    pub fn messages(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.entries.iter().map(|e| &e.message)
    }

    /// The queue they came from.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Applies the outcome: acked ones are gone, nacked ones go back to the queue.
    pub fn settle(self, outcome: Outcome) -> Completed {
        let queue = Arc::clone(&self.queue);
        queue.finish(self.entries, outcome)
    }

    /// Gives the deliveries back to the queue unsettled (the commit failed): they are
    /// redelivered like those of a consumer that left.
    pub fn restore(self) -> Completed {
        self.settle(Outcome::Nack)
    }
}

/// Most addresses whose consume permission a wildcard subscription remembers.
const READER_CACHE: usize = 4096;

/// Most messages one dispatch passes over because every consumer that wants them is full,
/// before it stops: bounds the work one ack or send can cause on a queue with selective
/// consumers. Messages no attached consumer wants are set aside instead (`parked`).
const MAX_PASSED_OVER: usize = 1024;

#[derive(Default)]
struct QueueState {
    /// What can be offered now, by priority then arrival.
    backlog: Backlog,
    /// Messages no attached consumer wants (they all have selectors that refuse it): set
    /// aside so dispatch does not look at them again until the consumers change.
    parked: Backlog,
    /// Messages not yet due: scheduled deliveries and returned messages waiting out their
    /// redelivery delay.
    scheduled: Scheduled,
    /// The due time the broker's clock was last armed with for this queue.
    armed: Option<u64>,
    /// Expired messages found while dispatching, for the clock to move to the expiry address.
    expired: Vec<Arc<Message>>,
    /// Whose consume permission a wildcard subscription's copies are checked against (its
    /// subscriber), and the answers so far by address.
    reader: Option<Arc<dyn Authorizer>>,
    reader_cache: HashMap<Arc<str>, bool>,
    next_seq: u64,
    next_tag: u64,
    consumers: Vec<ConsumerSlot>,
    next_consumer: usize,
    /// Some consumer has a selector or no-local, or their priorities differ: dispatch must
    /// choose a consumer per message.
    selective: bool,
    /// Some message that entered since the last expiry scan can expire: a queue of messages
    /// without expiry (the usual case) is not walked every scan period.
    may_expire: bool,
    /// Which consumer each message group is bound to.
    groups: Groups,
    /// A last-value queue's waiting message per key: (priority level, seq). May name
    /// messages delivered since; `arrival.rs` checks before use and sweeps.
    last_values: HashMap<bytestring::ByteString, (usize, u64)>,
    /// Messages dropped by the ring bound.
    dropped_by_ring: u64,
    /// Messages replaced by a newer value of their key.
    replaced_by_last_value: u64,
    /// Messages paged to disk and how to read them back.
    paging: paging::PageState,
    /// `exclusive`: only the first attached consumer receives.
    exclusive_queue: bool,
    /// The one consumer that receives everything (on an exclusive queue the longest
    /// attached; otherwise the longest attached exclusive consumer), if any.
    active: Option<usize>,
    /// Deliveries out with consumers, over all of them (for the published depth).
    in_flight: usize,
    /// An operator paused dispatch: messages are taken in but not handed out.
    paused: bool,
    deleted: bool,
}

impl QueueState {
    /// What the queue holds now, for its published gauges: O(1) in what it holds.
    fn depth(&self) -> Depth {
        let oldest = match (
            self.backlog.oldest_timestamp(),
            self.parked.oldest_timestamp(),
        ) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        Depth {
            ready: (self.backlog.len() + self.parked.len()) as u64 + self.paging.on_disk,
            paged: self.paging.on_disk,
            in_flight: self.in_flight as u64,
            scheduled: self.scheduled.len() as u64,
            consumers: self.consumers.len() as u64,
            bytes: self.backlog.bytes() + self.parked.bytes(),
            oldest_ms: oldest,
        }
    }

    fn holds_nothing(&self) -> bool {
        self.backlog.is_empty()
            && self.parked.is_empty()
            && self.scheduled.is_empty()
            && self.expired.is_empty()
            && !self.paging.active()
    }

    fn refresh_selective(&mut self) {
        let first = self.consumers.first().map(|c| c.priority);
        self.active = if self.exclusive_queue {
            (!self.consumers.is_empty()).then_some(0)
        } else {
            self.consumers.iter().position(|c| c.exclusive)
        };
        self.selective = self.active.is_some()
            || self
                .consumers
                .iter()
                .any(|c| c.is_selective() || Some(c.priority) != first);
    }

    /// Which consumer should get `entry`, honouring an exclusive queue's one consumer and
    /// the consumer its group is bound to. Also returns the group binding to make when the
    /// pick binds a group afresh.
    fn choose(&self, entry: &Entry) -> (Pick, Option<GroupKey>) {
        if let Some(i) = self.active {
            let Some(c) = self.consumers.get(i) else {
                return (Pick::Nobody, None);
            };
            return match (c.wants(entry), c.has_room()) {
                (true, true) => (Pick::Consumer(i), None),
                (true, false) => (Pick::Busy, None),
                (false, _) => (Pick::Nobody, None),
            };
        }
        let Some(id) = entry
            .message
            .group
            .as_ref()
            .filter(|_| self.groups.enabled())
        else {
            return (pick(&self.consumers, self.next_consumer, entry), None);
        };
        let key = self.groups.key(id);
        if let Some(bound) = self.groups.bound(&key)
            && let Some(i) = self.consumers.iter().position(|c| c.id == bound)
        {
            let c = &self.consumers[i];
            if !c.wants(entry) {
                // Its selector refuses this one: another consumer may take it, but the
                // group stays bound where it is.
                return (pick(&self.consumers, self.next_consumer, entry), None);
            }
            // The group stays with its consumer, waiting for room rather than moving.
            return (
                if c.has_room() {
                    Pick::Consumer(i)
                } else {
                    Pick::Busy
                },
                None,
            );
        }
        (pick(&self.consumers, self.next_consumer, entry), Some(key))
    }
}

/// A named queue bound to an address.
pub struct Queue {
    /// Unique broker-wide.
    pub name: Arc<str>,
    /// The address it is bound to (may be a wildcard address).
    pub address: Arc<str>,
    /// Anycast queues share messages among consumers; multicast ones are subscriptions.
    pub routing: RoutingType,
    /// Whether it (and its persistent messages) survive a restart.
    pub durable: bool,
    /// Created on demand rather than configured; such queues may be auto-deleted.
    pub auto_created: bool,
    /// Removed as soon as its last consumer leaves (non-durable subscription queues).
    pub exclusive_to_subscriber: bool,
    /// Delete when unused (no consumers, no messages); a reload of the address settings may
    /// change it, so it is read through [`Queue::auto_delete`].
    auto_delete: AtomicBool,
    /// `max-delivery-attempts`, 0 = unlimited; live (see [`Queue::set_delivery`]).
    max_delivery_attempts: AtomicU32,
    /// How long a returned message waits before it is offered again; read once per returned
    /// message, replaced whole by a reload.
    redelivery: ArcSwap<RedeliveryPolicy>,
    /// Only messages it matches are routed here (a configured `filter`, a subscription's
    /// `selector`): applied at routing, so other messages are never copied.
    pub filter: Option<Filter>,
    /// A subscription queue whose subscriber asked for `no-local`: that connection's messages
    /// are not routed here.
    pub no_local: Option<u64>,
    /// Which life of a queue of this name this is: the journal applies a ref only to the
    /// incarnation it was made for, so nothing of a deleted queue lands in its successor.
    pub incarnation: u64,
    /// Bound to a wildcard address: copies come from many addresses, each of which its
    /// reader must be allowed to consume.
    wildcard: bool,
    /// Who created it, for a durable subscription: only that user may consume from or
    /// delete it. `None`: anyone with the permissions.
    pub owner: Option<Owner>,
    /// Exclusive, last-value, ring, message groups, non-destructive: how it holds and hands
    /// out messages.
    pub kind: QueueKind,
    /// Where this queue's persistent messages are recorded; `None` for non-durable queues
    /// (and when persistence is off), which never touch the disk.
    pub(crate) journal: Option<Journal>,
    /// The broker's clock, woken for scheduled and delayed messages; `None` in a broker
    /// without a runtime (unit tests), where they are released when dispatch next runs.
    clock: Option<Clock>,
    /// The log of a non-destructive queue (`kind.retention` is set); it then holds the
    /// messages and readers instead of `state` (see `stream.rs`).
    stream: Option<Stream>,
    /// Where the queue pages to when its address is full; `None` without a journal.
    pager: Option<Pager>,
    /// Its figures for operators, published as its lock is released (see `Locked`).
    pub stats: Arc<QueueStats>,
    /// The broker-wide totals its deliveries and acknowledgements count in.
    totals: Arc<BrokerStats>,
    state: Mutex<QueueState>,
}

/// The queue's state while locked. Releasing it publishes the queue's depth to its
/// [`QueueStats`], so every critical section keeps the gauges true without each one having
/// to remember to.
struct Locked<'a> {
    st: MutexGuard<'a, QueueState>,
    stats: &'a QueueStats,
}

impl Deref for Locked<'_> {
    type Target = QueueState;
    fn deref(&self) -> &QueueState {
        &self.st
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut QueueState {
        &mut self.st
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.stats.publish(self.st.depth());
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("routing", &self.routing)
            .finish()
    }
}

/// Everything that defines a queue, for creating one.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: Arc<str>,
    pub address: Arc<str>,
    pub routing: RoutingType,
    pub durable: bool,
    pub auto_created: bool,
    pub exclusive_to_subscriber: bool,
    pub auto_delete: bool,
    pub max_delivery_attempts: Option<u32>,
    /// See [`Queue::redelivery`].
    pub redelivery: RedeliveryPolicy,
    /// See [`Queue::filter`].
    pub filter: Option<Filter>,
    /// See [`Queue::no_local`].
    pub no_local: Option<u64>,
    /// See [`Queue::incarnation`].
    pub incarnation: u64,
    /// The durable subscription's owner, if any.
    pub owner: Option<Owner>,
    /// See [`Queue::kind`].
    pub kind: QueueKind,
    /// The journal, for durable queues when persistence is on.
    pub journal: Option<Journal>,
    /// The broker's clock.
    pub clock: Option<Clock>,
    /// Where to page to (every queue of a broker with a journal, durable or not).
    pub pager: Option<Pager>,
    /// The broker-wide totals its deliveries count in.
    pub totals: Arc<BrokerStats>,
}

#[cfg(test)]
impl QueueSpec {
    /// A plain, non-durable anycast queue without journal or clock, for unit tests.
    pub(crate) fn for_test(name: &str, kind: QueueKind) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            address: name.into(),
            routing: RoutingType::Anycast,
            durable: false,
            auto_created: false,
            exclusive_to_subscriber: false,
            auto_delete: false,
            max_delivery_attempts: None,
            redelivery: RedeliveryPolicy::default(),
            filter: None,
            no_local: None,
            incarnation: 1,
            owner: None,
            kind,
            journal: None,
            clock: None,
            pager: None,
            totals: Arc::default(),
        }
    }
}

/// Why a queue did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue was deleted meanwhile; an anycast sender routes again.
    Deleted,
    /// A wildcard subscription whose subscriber may not consume the message's address.
    NotPermitted,
    /// The queue's filter (or no-local) does not let the message in.
    Filtered,
}

impl Queue {
    /// Whether the queue is deleted once unused (no consumers, no messages).
    pub fn auto_delete(&self) -> bool {
        self.auto_delete.load(Ordering::Relaxed)
    }

    /// `max-delivery-attempts`; `None` = unlimited.
    pub fn max_delivery_attempts(&self) -> Option<u32> {
        Some(self.max_delivery_attempts.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    /// The redelivery delays in force.
    pub fn redelivery(&self) -> RedeliveryPolicy {
        **self.redelivery.load()
    }

    /// Applies reloaded address settings to an existing queue: they count from the next
    /// message returned or acknowledged (a message already waiting out a delay keeps it).
    pub(crate) fn set_delivery(
        &self,
        auto_delete: bool,
        max_delivery_attempts: Option<u32>,
        redelivery: RedeliveryPolicy,
    ) {
        self.auto_delete.store(auto_delete, Ordering::Relaxed);
        self.max_delivery_attempts
            .store(max_delivery_attempts.unwrap_or(0), Ordering::Relaxed);
        self.redelivery.store(Arc::new(redelivery));
    }

    /// A new, empty queue.
    pub fn new(spec: QueueSpec) -> Arc<Queue> {
        let groups = Groups::new(spec.kind.group_buckets);
        let exclusive = spec.kind.exclusive;
        let stats = Arc::new(QueueStats::default());
        Arc::new(Queue {
            wildcard: crate::address::wildcard::is_wildcard(&spec.address),
            name: spec.name,
            address: spec.address,
            routing: spec.routing,
            durable: spec.durable,
            auto_created: spec.auto_created,
            exclusive_to_subscriber: spec.exclusive_to_subscriber,
            auto_delete: AtomicBool::new(spec.auto_delete),
            max_delivery_attempts: AtomicU32::new(spec.max_delivery_attempts.unwrap_or(0)),
            redelivery: ArcSwap::from_pointee(spec.redelivery),
            filter: spec.filter,
            no_local: spec.no_local,
            incarnation: spec.incarnation,
            owner: spec.owner,
            stream: spec
                .kind
                .retention
                .map(|r| Stream::new(r, Arc::clone(&stats))),
            kind: spec.kind,
            journal: spec.journal,
            clock: spec.clock,
            pager: spec.pager,
            stats,
            totals: spec.totals,
            state: Mutex::new(QueueState {
                next_seq: 1,
                next_tag: 1,
                groups,
                exclusive_queue: exclusive,
                selective: exclusive,
                ..Default::default()
            }),
        })
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than stopping the broker would, so recover the guard.
        Locked {
            st: self.state.lock().unwrap_or_else(|e| e.into_inner()),
            stats: &self.stats,
        }
    }

    /// Whether the queue's filter and no-local let `message` in.
    pub fn admits(&self, message: &Message) -> bool {
        (self.no_local.is_none() || message.origin != self.no_local)
            && self.filter.as_ref().is_none_or(|f| f.matches(message))
    }

    /// Appends a message and hands it to a consumer if one has room (or holds it until its
    /// scheduled time). Refuses it when the queue was deleted meanwhile, when its filter
    /// does not match, or when it is a wildcard subscription whose subscriber may not read
    /// the message's address.
    pub fn enqueue(self: &Arc<Self>, message: Arc<Message>) -> Result<(), Refusal> {
        if !self.admits(&message) {
            return Err(Refusal::Filtered);
        }
        let deliver_at = message.deliver_at;
        self.restore(message, 0, deliver_at)
    }

    /// Like [`Queue::enqueue`] for a producer's message whose address may be full (`page`):
    /// the queue then pages it, and the caller stores the page (see [`Placed::Paged`]).
    pub fn offer(self: &Arc<Self>, message: Arc<Message>, page: bool) -> Result<Placed, Refusal> {
        if !self.admits(&message) {
            return Err(Refusal::Filtered);
        }
        let deliver_at = message.deliver_at;
        self.place(message, 0, deliver_at, page)
    }

    /// Appends a message that was delivered `delivery_count` times before and may not be
    /// offered before `deliver_at` (0: at once). Recovery uses it directly.
    pub fn restore(
        self: &Arc<Self>,
        message: Arc<Message>,
        delivery_count: u32,
        deliver_at: u64,
    ) -> Result<(), Refusal> {
        let paged = Arc::clone(&message);
        if let Placed::Paged(seq) = self.place(message, delivery_count, deliver_at, false)? {
            // Nobody stores this page for the queue: it does so itself.
            self.page_alone(&paged, seq);
        }
        Ok(())
    }

    fn place(
        self: &Arc<Self>,
        message: Arc<Message>,
        delivery_count: u32,
        deliver_at: u64,
        page: bool,
    ) -> Result<Placed, Refusal> {
        if let Some(stream) = &self.stream {
            return self
                .append_to_stream(stream, message)
                .map(|()| Placed::Memory);
        }
        let mut st = self.lock();
        if st.deleted {
            return Err(Refusal::Deleted);
        }
        let checked = match self.may_read(&mut st, &message.address) {
            Some(true) => true,
            Some(false) => return Err(Refusal::NotPermitted),
            None => false,
        };
        bump(&self.stats.enqueued);
        if delivery_count == 0
            && let Some(seq) = self.page_if_needed(&mut st, page, &message)
        {
            return Ok(Placed::Paged(seq));
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.may_expire |= message.expires != 0;
        let entry = Entry {
            seq,
            message,
            delivery_count,
            checked,
        };
        if deliver_at != 0 && deliver_at > now_millis() {
            self.hold_until(&mut st, deliver_at, entry);
            return Ok(Placed::Memory);
        }
        if delivery_count == 0 {
            self.push_arrival(&mut st, entry);
        } else {
            // Recovered after a delivery: it keeps its place, like any returned message.
            match self.returning_last_value(&mut st, entry) {
                Some(entry) => st.backlog.push_returned(entry),
                None => return Ok(Placed::Memory),
            }
            self.enforce_ring(&mut st);
        }
        self.dispatch(&mut st);
        Ok(Placed::Memory)
    }

    /// Holds `entry` until `due` and makes sure the clock wakes the queue then.
    fn hold_until(self: &Arc<Self>, st: &mut QueueState, due: u64, entry: Entry) {
        st.scheduled.insert(due, entry);
        if st.armed.is_none_or(|a| due < a) {
            st.armed = Some(due);
            if let Some(clock) = &self.clock {
                clock.arm(due, self);
            }
        }
    }

    /// The clock's call: offers what fell due by `now`. `alarm` is the due time the clock
    /// was armed with; returns the next due time to arm, unless that alarm was superseded
    /// (the alarm for the earlier time re-arms instead, so alarms never multiply).
    pub fn release_due(self: &Arc<Self>, now: u64, alarm: u64) -> Option<u64> {
        let mut st = self.lock();
        if st.deleted {
            return None;
        }
        self.move_due(&mut st, now);
        self.dispatch(&mut st);
        if st.armed != Some(alarm) {
            return None;
        }
        st.armed = st.scheduled.next_due();
        st.armed
    }

    /// Moves scheduled entries due by `now` to the backlog: a scheduled delivery arrives
    /// then (behind what is already waiting), a delayed redelivery takes its old place.
    fn move_due(self: &Arc<Self>, st: &mut QueueState, now: u64) {
        if st.scheduled.next_due().is_none_or(|d| d > now) {
            return;
        }
        for mut e in st.scheduled.take_due(now) {
            if e.delivery_count == 0 {
                e.seq = st.next_seq;
                st.next_seq += 1;
                self.push_arrival(st, e);
            } else if let Some(e) = self.returning_last_value(st, e) {
                st.backlog.push_returned(e);
                self.enforce_ring(st);
            }
        }
    }

    /// Whether the reader may consume `address`: `None` when there is no reader to ask.
    fn may_read(&self, st: &mut QueueState, address: &Arc<str>) -> Option<bool> {
        if !self.wildcard || **address == *self.address {
            return Some(true);
        }
        let reader = st.reader.as_ref()?;
        if let Some(known) = st.reader_cache.get(address) {
            return Some(*known);
        }
        let allowed = reader.authorize(Permission::Consume, address).is_ok();
        if st.reader_cache.len() >= READER_CACHE {
            st.reader_cache.clear();
        }
        st.reader_cache.insert(Arc::clone(address), allowed);
        Some(allowed)
    }

    /// Attaches a consumer that receives nothing until [`Queue::start_consumer`], so the
    /// caller can confirm the subscription before the first message goes out. The spec's
    /// `reader` is whose rights the copies of a wildcard subscription are checked against.
    pub fn add_consumer(&self, spec: ConsumerSpec) {
        if let Some(stream) = &self.stream {
            return self.add_stream_reader(stream, spec);
        }
        let mut st = self.lock();
        if self.wildcard && spec.reader.is_some() {
            st.reader = spec.reader.clone();
            st.reader_cache.clear();
        }
        if self.kind.group_rebalance {
            st.groups.clear();
        }
        st.consumers.push(ConsumerSlot::new(spec));
        st.refresh_selective();
        // A new consumer may want what the others refused.
        if !st.parked.is_empty() {
            let QueueState {
                parked, backlog, ..
            } = &mut *st;
            parked.drain_into(backlog);
        }
    }

    /// Lets a consumer receive messages.
    pub fn start_consumer(self: &Arc<Self>, id: ConsumerId) {
        if let Some(stream) = &self.stream {
            return stream.set_started(self, id, true);
        }
        let mut st = self.lock();
        if let Some(c) = st.consumers.iter_mut().find(|c| c.id == id) {
            c.started = true;
        }
        self.dispatch(&mut st);
    }

    /// Halts dispatch to a consumer that is leaving, while it stays attached: what it already
    /// holds can still be written and acknowledged (UNSUBSCRIBE lets its connection flush
    /// before [`Queue::remove_consumer`], so an `auto` delivery in flight is either consumed
    /// or returned, never both). Nothing is handed to it once this returns.
    pub fn stop_consumer(self: &Arc<Self>, id: ConsumerId) {
        if let Some(stream) = &self.stream {
            return stream.set_started(self, id, false);
        }
        let mut st = self.lock();
        if let Some(c) = st.consumers.iter_mut().find(|c| c.id == id) {
            c.started = false;
        }
    }

    /// Whether a consumer holds an unsettled delivery that `target` names, without settling
    /// it: lets a session find out whether an ACK naming only a message id is ambiguous.
    pub fn holds(&self, id: ConsumerId, target: AckTarget) -> bool {
        if let Some(stream) = &self.stream {
            return stream.holds(id, target);
        }
        let st = self.lock();
        st.consumers.iter().find(|c| c.id == id).is_some_and(|c| {
            c.in_flight.iter().any(|f| {
                !f.settled
                    && match target {
                        AckTarget::Tag(t) => f.tag == t,
                        AckTarget::MessageId(m) => f.entry.message.id == m,
                    }
            })
        })
    }

    /// Detaches a consumer; whatever it held unacknowledged goes back, in order, marked as
    /// delivered before. Returns what was returned and what went dead. O(k log k) for k held.
    pub fn remove_consumer(self: &Arc<Self>, id: ConsumerId) -> Completed {
        if let Some(stream) = &self.stream {
            return stream.remove_reader(id);
        }
        let mut st = self.lock();
        let mut done = Completed::default();
        let Some(pos) = st.consumers.iter().position(|c| c.id == id) else {
            return done;
        };
        let slot = st.consumers.remove(pos);
        if st.next_consumer > pos {
            st.next_consumer -= 1;
        }
        st.groups.consumer_left(id);
        st.refresh_selective();
        let now = now_millis();
        st.in_flight = st.in_flight.saturating_sub(slot.in_flight.len());
        for f in slot.in_flight {
            self.put_back(&mut st, f.entry, Outcome::Nack, now, &mut done);
        }
        if st.consumers.is_empty() && !st.parked.is_empty() {
            // Nobody left to refuse them: they wait with the rest for whoever comes next.
            let QueueState {
                parked, backlog, ..
            } = &mut *st;
            parked.drain_into(backlog);
        }
        self.dispatch(&mut st);
        done
    }

    /// Resolves an ACK/NACK to delivery tags and marks them settled, freeing window room.
    /// `cumulative` (STOMP `client` mode) covers every earlier unsettled delivery too.
    /// `refill` offers the freed room to waiting messages at once (an ACK inside a
    /// transaction); an immediate ACK/NACK refills when it completes, so that nacked messages
    /// go back in their place before newer ones take the room.
    pub fn settle(
        self: &Arc<Self>,
        id: ConsumerId,
        target: AckTarget,
        cumulative: bool,
        refill: bool,
    ) -> Result<Vec<u64>, AckError> {
        if let Some(stream) = &self.stream {
            return stream.settle(self, id, target, cumulative, refill);
        }
        let mut st = self.lock();
        let slot = st
            .consumers
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| AckError::NotPending(describe(target)))?;
        let pos = match target {
            // Tags are handed out in increasing order, so in-flight is sorted by tag.
            AckTarget::Tag(t) => slot
                .in_flight
                .binary_search_by_key(&t, |f| f.tag)
                .ok()
                .filter(|&p| !slot.in_flight[p].settled),
            AckTarget::MessageId(m) => slot
                .in_flight
                .iter()
                .position(|f| !f.settled && f.entry.message.id == m),
        }
        .ok_or_else(|| AckError::NotPending(describe(target)))?;
        let start = if cumulative { 0 } else { pos };
        let mut tags = Vec::new();
        let mut freed = 0u64;
        let mut count = 0u32;
        for f in slot.in_flight.range_mut(start..=pos) {
            if !f.settled {
                f.settled = true;
                tags.push(f.tag);
                freed += f.entry.message.size() as u64;
                count += 1;
            }
        }
        slot.held_messages = slot.held_messages.saturating_sub(count);
        slot.held_bytes = slot.held_bytes.saturating_sub(freed);
        if refill {
            self.dispatch(&mut st);
        }
        Ok(tags)
    }

    /// Removes the deliveries `tags` (ascending) from a consumer's hands. One pass over what
    /// it holds; tags no longer held (the consumer left meanwhile) are skipped: their
    /// messages were already returned.
    fn take_entries(st: &mut QueueState, id: ConsumerId, tags: &[u64]) -> Vec<Entry> {
        let Some(slot) = st.consumers.iter_mut().find(|c| c.id == id) else {
            return Vec::new();
        };
        let mut taken = Vec::with_capacity(tags.len());
        // The common case, acks in delivery order: pop from the front.
        let mut rest = tags;
        while let (Some(&t), Some(front)) = (rest.first(), slot.in_flight.front()) {
            if front.tag != t {
                break;
            }
            if let Some(f) = slot.in_flight.pop_front() {
                if !f.settled {
                    slot.release(f.entry.message.size() as u64);
                }
                taken.push(f.entry);
            }
            rest = &rest[1..];
        }
        if !rest.is_empty() {
            let mut kept = VecDeque::with_capacity(slot.in_flight.len());
            let mut wanted = rest.iter().peekable();
            for f in slot.in_flight.drain(..) {
                while wanted.peek().is_some_and(|&&t| t < f.tag) {
                    wanted.next();
                }
                if wanted.peek() == Some(&&f.tag) {
                    wanted.next();
                    if !f.settled {
                        slot.held_messages = slot.held_messages.saturating_sub(1);
                        slot.held_bytes = slot
                            .held_bytes
                            .saturating_sub(f.entry.message.size() as u64);
                    }
                    taken.push(f.entry);
                } else {
                    kept.push_back(f);
                }
            }
            slot.in_flight = kept;
        }
        st.in_flight = st.in_flight.saturating_sub(taken.len());
        taken
    }

    /// Applies the outcome to settled (or unsettled) deliveries of a consumer. Tags no longer
    /// held (the consumer left meanwhile) are skipped: their messages were already returned.
    pub fn complete(self: &Arc<Self>, id: ConsumerId, tags: &[u64], outcome: Outcome) -> Completed {
        if let Some(stream) = &self.stream {
            return stream.complete(self, id, &sorted(tags), outcome);
        }
        let mut st = self.lock();
        let taken = Self::take_entries(&mut st, id, &sorted(tags));
        self.finish_locked(&mut st, taken, outcome)
    }

    /// Takes deliveries out of a consumer's hands for a transaction being committed; see
    /// [`Taken`].
    pub fn take(self: &Arc<Self>, id: ConsumerId, tags: &[u64]) -> Taken {
        if let Some(stream) = &self.stream {
            // Nothing to remove from a stream: the deliveries leave the consumer's hands now
            // and the commit has nothing to settle (the stored offset does not move).
            stream.complete(self, id, &sorted(tags), Outcome::Nack);
            return Taken {
                queue: Arc::clone(self),
                entries: Vec::new(),
            };
        }
        let mut st = self.lock();
        let entries = Self::take_entries(&mut st, id, &sorted(tags));
        self.dispatch(&mut st);
        Taken {
            queue: Arc::clone(self),
            entries,
        }
    }

    fn finish(self: &Arc<Self>, entries: Vec<Entry>, outcome: Outcome) -> Completed {
        let mut st = self.lock();
        self.finish_locked(&mut st, entries, outcome)
    }

    fn finish_locked(
        self: &Arc<Self>,
        st: &mut QueueState,
        entries: Vec<Entry>,
        outcome: Outcome,
    ) -> Completed {
        let mut done = Completed::default();
        let now = now_millis();
        let n = entries.len() as u64;
        match outcome {
            Outcome::Ack => {
                super::stats::add(&self.stats.acknowledged, n);
                super::stats::add(&self.totals.acknowledged.0, n);
            }
            Outcome::Nack | Outcome::Reject => {
                super::stats::add(&self.stats.nacked, n);
                super::stats::add(&self.totals.nacked.0, n);
            }
        }
        for entry in entries {
            match outcome {
                Outcome::Ack => done.acked.push(entry.message),
                Outcome::Nack | Outcome::Reject => {
                    self.put_back(st, entry, outcome, now, &mut done)
                }
            }
        }
        self.dispatch(st);
        done
    }

    /// Undoes [`Queue::settle`] for an aborted transaction: the deliveries count against the
    /// window again and await a new ACK/NACK.
    pub fn unsettle(&self, id: ConsumerId, tags: &[u64]) {
        let tags = sorted(tags);
        if let Some(stream) = &self.stream {
            return stream.unsettle(id, &tags);
        }
        let mut st = self.lock();
        if let Some(slot) = st.consumers.iter_mut().find(|c| c.id == id) {
            let mut sizes = Vec::new();
            for f in slot.in_flight.iter_mut() {
                if f.settled && tags.binary_search(&f.tag).is_ok() {
                    f.settled = false;
                    sizes.push(f.entry.message.size() as u64);
                }
            }
            for s in sizes {
                slot.hold(s);
            }
        }
    }

    /// Messages waiting (not counting those out with consumers), due or not.
    pub fn ready_count(&self) -> usize {
        if let Some(stream) = &self.stream {
            return stream.len();
        }
        let st = self.lock();
        st.backlog.len() + st.parked.len() + st.scheduled.len() + st.paging.on_disk as usize
    }

    /// Messages held back until their scheduled time or the end of a redelivery delay.
    pub fn scheduled_count(&self) -> usize {
        self.lock().scheduled.len()
    }

    /// Messages waiting plus those delivered and unacknowledged.
    pub fn message_count(&self) -> usize {
        if let Some(stream) = &self.stream {
            return stream.len();
        }
        let st = self.lock();
        st.backlog.len()
            + st.parked.len()
            + st.scheduled.len()
            + st.paging.on_disk as usize
            + st.consumers
                .iter()
                .map(|c| c.in_flight.len())
                .sum::<usize>()
    }

    /// Consumers attached.
    pub fn consumer_count(&self) -> usize {
        if let Some(stream) = &self.stream {
            return stream.reader_count();
        }
        self.lock().consumers.len()
    }

    /// Marks the queue deleted if it is unused (no consumers, no messages) or `force`; returns
    /// whether it is now deleted. Later enqueues are refused so senders route again.
    pub fn mark_deleted(&self, force: bool) -> bool {
        if let Some(stream) = &self.stream {
            return stream.mark_deleted(force);
        }
        let mut st = self.lock();
        if st.deleted {
            return true;
        }
        let unused = st.consumers.is_empty() && st.holds_nothing();
        if unused || force {
            st.deleted = true;
            if st.paging.active()
                && let Some(p) = &self.pager
            {
                p.journal.submit_detached(vec![JournalOp::DeletePages {
                    queue: Arc::clone(&self.name),
                    below: u64::MAX,
                }]);
            }
            st.backlog.clear();
            st.parked.clear();
            st.scheduled.clear();
            st.expired.clear();
        }
        st.deleted
    }

    /// Whether nothing uses the queue any more, so auto-delete may remove it.
    pub fn is_unused(&self) -> bool {
        if let Some(stream) = &self.stream {
            return stream.is_unused();
        }
        let st = self.lock();
        !st.deleted && st.consumers.is_empty() && st.holds_nothing()
    }

    /// Messages waiting, in offer order (priority, then arrival), then those not yet due,
    /// with their delivery counts (for inspection and tests).
    pub fn snapshot(&self) -> Vec<(Arc<Message>, u32)> {
        if let Some(stream) = &self.stream {
            return stream.snapshot();
        }
        let st = self.lock();
        let mut waiting: Vec<&Entry> = st.backlog.iter_ordered().collect();
        let mut parked: Vec<&Entry> = st.parked.iter_ordered().collect();
        waiting.append(&mut parked);
        waiting.sort_by_key(|e| (std::cmp::Reverse(e.message.priority.min(9)), e.seq));
        waiting
            .into_iter()
            .chain(st.scheduled.iter())
            .map(|e| (Arc::clone(&e.message), e.delivery_count))
            .collect()
    }

    /// Whether this queue records `message` in the journal.
    pub fn journals(&self, message: &Message) -> bool {
        message.persistent && self.journal.is_some()
    }

    /// The journal record that places `message` on this queue.
    pub(crate) fn put_ref(&self, message: &Message) -> JournalOp {
        JournalOp::PutRef {
            queue: Arc::clone(&self.name),
            incarnation: self.incarnation,
            message_id: message.id,
        }
    }

    fn delete_ref(&self, message: &Message) -> JournalOp {
        JournalOp::DeleteRef {
            queue: Arc::clone(&self.name),
            incarnation: self.incarnation,
            message_id: message.id,
        }
    }

    /// Adds the journal records that forget these messages in this queue.
    pub fn record_removals<'a>(
        &self,
        messages: impl IntoIterator<Item = &'a Arc<Message>>,
        ops: &mut Vec<JournalOp>,
    ) {
        for m in messages.into_iter().filter(|m| self.journals(m)) {
            ops.push(self.delete_ref(m));
        }
    }

    /// Acks deliveries that were written to an `ack:auto` subscriber and records it, with
    /// nobody waiting: the client asked for no confirmation.
    pub fn ack_written(self: &Arc<Self>, consumer: ConsumerId, tags: &[u64]) {
        let done = self.complete(consumer, tags, Outcome::Ack);
        if let Some(j) = &self.journal {
            let mut ops = done.journal;
            self.record_removals(&done.acked, &mut ops);
            if !ops.is_empty() {
                j.submit_detached(ops);
            }
        }
    }

    /// Gives a delivered message back: dead-lettered when rejected or out of attempts,
    /// otherwise offered again in its place, after the redelivery delay if there is one.
    fn put_back(
        self: &Arc<Self>,
        st: &mut QueueState,
        entry: Entry,
        outcome: Outcome,
        now: u64,
        done: &mut Completed,
    ) {
        let exhausted = self
            .max_delivery_attempts()
            .is_some_and(|max| entry.delivery_count >= max);
        if outcome == Outcome::Reject || exhausted {
            done.dead.push(DeadLetter {
                delivery_count: entry.delivery_count,
                message: entry.message,
            });
            return;
        }
        let Some(entry) = self.returning_last_value(st, entry) else {
            return;
        };
        done.returned.push((entry.message.id, entry.delivery_count));
        st.may_expire |= entry.message.expires != 0;
        let delay = self.redelivery.load().delay_for(
            entry.delivery_count,
            fastrand::f64(),
            fastrand::bool(),
        );
        if delay > 0 {
            let due = now.saturating_add(delay);
            if let Some(j) = self.journal.as_ref().filter(|_| entry.message.persistent) {
                // So that the wait survives a restart rather than starting over (or vanishing).
                j.submit_detached(vec![JournalOp::SetDeliverAt {
                    queue: Arc::clone(&self.name),
                    incarnation: self.incarnation,
                    message_id: entry.message.id,
                    at: due,
                }]);
            }
            self.hold_until(st, due, entry);
        } else {
            // Returned deliveries keep their place (their seq), so order per producer is kept.
            st.backlog.push_returned(entry);
            self.enforce_ring(st);
        }
    }

    /// Removes every message expired at `now` (the reaper's scan), with those dispatch found
    /// expired earlier. The caller moves them to the expiry address and forgets their refs.
    pub fn take_expired(&self, now: u64) -> Vec<Arc<Message>> {
        if let Some(stream) = &self.stream {
            // Messages on a stream do not expire one by one; this scan applies its age
            // retention instead (whole segments).
            stream.retain_by_age(self, now);
            return Vec::new();
        }
        let mut st = self.lock();
        let mut out = std::mem::take(&mut st.expired);
        if !st.may_expire {
            return out;
        }
        let expired = |e: &Entry| e.message.is_expired(now);
        let st = &mut *st;
        for e in st
            .backlog
            .extract(expired)
            .into_iter()
            .chain(st.parked.extract(expired))
            .chain(st.scheduled.extract(expired))
        {
            out.push(e.message);
        }
        // Messages out with consumers set the flag again if they come back.
        let expiring = |e: &Entry| e.message.expires != 0;
        st.may_expire =
            st.backlog.any(expiring) || st.parked.any(expiring) || st.scheduled.any(expiring);
        out
    }

    /// Only what dispatch already found expired (no scan).
    pub fn take_found_expired(&self) -> Vec<Arc<Message>> {
        std::mem::take(&mut self.lock().expired)
    }

    /// Sets aside a message dispatch found expired: the clock moves it to the expiry
    /// address. Without a clock (no runtime) it is forgotten at once.
    fn expire(self: &Arc<Self>, st: &mut QueueState, entry: Entry) {
        match &self.clock {
            Some(clock) => {
                if st.expired.is_empty() {
                    clock.report_expired(self);
                }
                st.expired.push(entry.message);
            }
            None => self.forget(&entry),
        }
    }

    /// Drops an entry that may not be delivered, and its ref.
    fn forget(&self, entry: &Entry) {
        if let Some(j) = self.journal.as_ref().filter(|_| entry.message.persistent) {
            j.submit_detached(vec![self.delete_ref(&entry.message)]);
        }
    }

    /// Whether `entry` must not be delivered: expired (set aside for the expiry address) or
    /// unreadable by a wildcard subscription's subscriber (dropped).
    fn unfit(
        self: &Arc<Self>,
        st: &mut QueueState,
        entry: Entry,
        now: &mut Option<u64>,
    ) -> Option<Entry> {
        // Most messages never expire: only those that can are worth a clock read.
        if entry.message.expires != 0
            && entry
                .message
                .is_expired(*now.get_or_insert_with(now_millis))
        {
            self.expire(st, entry);
            return None;
        }
        if !entry.checked && self.may_read(st, &entry.message.address) == Some(false) {
            self.forget(&entry);
            return None;
        }
        Some(entry)
    }

    /// Hands `entry` to consumer `ci`, binding its group there when `bind` says so (and
    /// closing the group when the message ends it); gives it back if the connection is gone.
    fn hand_over_grouped(
        self: &Arc<Self>,
        st: &mut QueueState,
        ci: usize,
        entry: Entry,
        bind: Option<GroupKey>,
    ) -> bool {
        let closes = entry.message.group.is_some() && entry.message.closes_group();
        let fresh = bind.is_some();
        let key = match bind {
            Some(key) => {
                st.groups.bind(key.clone(), st.consumers[ci].id);
                Some(key)
            }
            None if closes => entry.message.group.as_ref().map(|id| st.groups.key(id)),
            None => None,
        };
        let handed = self.hand_over_as(st, ci, entry, fresh);
        if let Some(key) = key.filter(|_| closes || !handed) {
            st.groups.unbind(&key);
        }
        handed
    }

    /// Hands `entry` to consumer `ci`; gives it back if the connection is gone.
    fn hand_over(self: &Arc<Self>, st: &mut QueueState, ci: usize, entry: Entry) -> bool {
        self.hand_over_as(st, ci, entry, false)
    }

    fn hand_over_as(
        self: &Arc<Self>,
        st: &mut QueueState,
        ci: usize,
        mut entry: Entry,
        group_first: bool,
    ) -> bool {
        if self.kind.last_value_key.is_some() {
            self.left_waiting(st, &entry);
        }
        entry.delivery_count += 1;
        if let Some(j) = self.journal.as_ref().filter(|_| entry.message.persistent) {
            // So that a crash after delivery brings the message back marked redelivered.
            j.submit_detached(vec![JournalOp::SetDeliveryCount {
                queue: Arc::clone(&self.name),
                incarnation: self.incarnation,
                message_id: entry.message.id,
                count: entry.delivery_count,
            }]);
        }
        let tag = st.next_tag;
        st.next_tag += 1;
        let delivery = Delivery {
            consumer: st.consumers[ci].id,
            tag,
            message: Arc::clone(&entry.message),
            delivery_count: entry.delivery_count,
            queue: Arc::clone(self),
            group_first,
            offset: NOT_IN_STREAM,
        };
        let n = st.consumers.len();
        let slot = &mut st.consumers[ci];
        if slot.sink.deliver(delivery) {
            bump(&self.stats.delivered);
            bump(&self.totals.delivered.0);
            if entry.delivery_count > 1 {
                bump(&self.stats.redelivered);
                bump(&self.totals.redelivered.0);
            }
            slot.hold(entry.message.size() as u64);
            slot.in_flight.push_back(InFlight {
                tag,
                entry,
                settled: false,
            });
            st.next_consumer = (ci + 1) % n;
            st.in_flight += 1;
            true
        } else {
            // The connection is gone; its session will remove the consumer shortly.
            slot.started = false;
            entry.delivery_count -= 1;
            st.backlog.unpop(entry);
            false
        }
    }

    /// Offers what waits to consumers with room, then reads a page back if the queue pages
    /// and little waits in memory.
    fn dispatch(self: &Arc<Self>, st: &mut QueueState) {
        self.dispatch_memory(st);
        if self.pager.is_some() {
            self.maybe_read_page(st);
        }
    }

    fn dispatch_memory(self: &Arc<Self>, st: &mut QueueState) {
        if st.consumers.is_empty() || st.paused {
            return;
        }
        let mut now = None;
        if let Some(due) = st.scheduled.next_due() {
            let now_ms = *now.get_or_insert_with(now_millis);
            if due <= now_ms {
                self.move_due(st, now_ms);
            }
        }
        if st.selective {
            return self.dispatch_selective(st, now);
        }
        while !st.backlog.is_empty() {
            let n = st.consumers.len();
            let Some(ci) = (0..n)
                .map(|i| (st.next_consumer + i) % n)
                .find(|&i| st.consumers[i].has_room())
            else {
                return;
            };
            let Some(entry) = st.backlog.pop() else {
                return;
            };
            if entry.message.group.is_some() && st.groups.enabled() {
                // A grouped message may have to wait for its consumer: the selective path
                // knows how to pass it over without reordering its group.
                st.backlog.unpop(entry);
                return self.dispatch_selective(st, now);
            }
            if let Some(entry) = self.unfit(st, entry, &mut now) {
                self.hand_over(st, ci, entry);
            }
        }
    }

    /// Dispatch when consumers differ (selectors, no-local, priorities): each message goes
    /// to the highest-priority consumer with room that wants it. A message only full
    /// consumers want is passed over (it keeps its place) for at most `MAX_PASSED_OVER` per
    /// call; one nobody wants is parked until the consumers change.
    fn dispatch_selective(self: &Arc<Self>, st: &mut QueueState, mut now: Option<u64>) {
        let mut passed_over = Vec::new();
        while st.consumers.iter().any(ConsumerSlot::has_room) {
            let Some(entry) = st.backlog.pop() else {
                break;
            };
            let Some(entry) = self.unfit(st, entry, &mut now) else {
                continue;
            };
            let (choice, bind) = st.choose(&entry);
            match choice {
                Pick::Consumer(ci) => {
                    self.hand_over_grouped(st, ci, entry, bind);
                }
                Pick::Busy => {
                    passed_over.push(entry);
                    if passed_over.len() >= MAX_PASSED_OVER {
                        break;
                    }
                }
                Pick::Nobody => st.parked.push_returned(entry),
            }
        }
        for e in passed_over {
            st.backlog.push_returned(e);
        }
    }
}

/// `tags` in ascending order (they usually are already).
fn sorted(tags: &[u64]) -> std::borrow::Cow<'_, [u64]> {
    if tags.is_sorted() {
        std::borrow::Cow::Borrowed(tags)
    } else {
        let mut v = tags.to_vec();
        v.sort_unstable();
        std::borrow::Cow::Owned(v)
    }
}

fn describe(target: AckTarget) -> String {
    match target {
        AckTarget::Tag(t) => format!("with ack id {t}"),
        AckTarget::MessageId(m) => format!("of message {m}"),
    }
}
