//! A queue: messages waiting in order, the consumers attached to it, and what each consumer
//! holds unacknowledged. All state sits behind one `std::sync::Mutex` that is never held
//! across an `.await`: every operation is a short synchronous critical section, and handing a
//! message to a connection is a non-blocking push bounded by the consumer's window.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::RoutingType;
use super::clients::Owner;
use super::message::{Message, now_millis};
use crate::journal::{Journal, JournalOp};
use crate::security::{Authorizer, Permission};

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
    /// Refused: put back for redelivery.
    Nack,
}

/// Why an ack could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Nothing matching awaits acknowledgement from this consumer.
    #[error("no delivery {0} awaits acknowledgement on this subscription")]
    NotPending(String),
}

/// What completing deliveries removed, for the journal and the dead-letter address.
#[derive(Debug, Default)]
pub struct Completed {
    /// Messages consumed for good.
    pub acked: Vec<Arc<Message>>,
    /// Messages that reached `max-delivery-attempts`.
    pub dead: Vec<Arc<Message>>,
    /// Deliveries returned for redelivery: (message id, new delivery count).
    pub returned: Vec<(u64, u32)>,
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

#[derive(Debug)]
struct InFlight {
    tag: u64,
    entry: Entry,
    /// Acked or nacked inside an open transaction: no longer counts against the window.
    settled: bool,
}

struct ConsumerSlot {
    id: ConsumerId,
    sink: Arc<dyn DeliverySink>,
    window: Window,
    started: bool,
    in_flight: VecDeque<InFlight>,
    held_messages: u32,
    held_bytes: u64,
}

impl ConsumerSlot {
    fn has_room(&self) -> bool {
        if !self.started {
            return false;
        }
        if self.held_messages == 0 {
            return true;
        }
        self.window.messages.is_none_or(|m| self.held_messages < m)
            && self.window.bytes.is_none_or(|b| self.held_bytes < b)
    }

    fn hold(&mut self, size: u64) {
        self.held_messages += 1;
        self.held_bytes += size;
    }

    fn release(&mut self, size: u64) {
        self.held_messages = self.held_messages.saturating_sub(1);
        self.held_bytes = self.held_bytes.saturating_sub(size);
    }
}

/// Most addresses whose consume permission a wildcard subscription remembers.
const READER_CACHE: usize = 4096;

#[derive(Default)]
struct QueueState {
    /// Messages never delivered, in arrival (`seq`) order: appended at the back only.
    ready: VecDeque<Entry>,
    /// Messages given back by consumers (NACK, a consumer leaving), by `seq`, so they are
    /// offered again in their original place among `ready` without shifting it: returning
    /// k messages costs O(k log k), whatever the queue holds.
    returned: BTreeMap<u64, Entry>,
    /// Whose consume permission a wildcard subscription's copies are checked against (its
    /// subscriber), and the answers so far by address.
    reader: Option<Arc<dyn Authorizer>>,
    reader_cache: HashMap<Arc<str>, bool>,
    next_seq: u64,
    next_tag: u64,
    consumers: Vec<ConsumerSlot>,
    next_consumer: usize,
    deleted: bool,
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
    /// Delete when unused (no consumers, no messages).
    pub auto_delete: bool,
    /// `max-delivery-attempts`; `None` = unlimited.
    pub max_delivery_attempts: Option<u32>,
    /// Which life of a queue of this name this is: the journal applies a ref only to the
    /// incarnation it was made for, so nothing of a deleted queue lands in its successor.
    pub incarnation: u64,
    /// Bound to a wildcard address: copies come from many addresses, each of which its
    /// reader must be allowed to consume.
    wildcard: bool,
    /// Who created it, for a durable subscription: only that user may consume from or
    /// delete it. `None`: anyone with the permissions.
    pub owner: Option<Owner>,
    /// Where this queue's persistent messages are recorded; `None` for non-durable queues
    /// (and when persistence is off), which never touch the disk.
    pub(crate) journal: Option<Journal>,
    state: Mutex<QueueState>,
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
    /// See [`Queue::incarnation`].
    pub incarnation: u64,
    /// The durable subscription's owner, if any.
    pub owner: Option<Owner>,
    /// The journal, for durable queues when persistence is on.
    pub journal: Option<Journal>,
}

/// Why a queue did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue was deleted meanwhile; an anycast sender routes again.
    Deleted,
    /// A wildcard subscription whose subscriber may not consume the message's address.
    NotPermitted,
}

impl Queue {
    /// A new, empty queue.
    pub fn new(spec: QueueSpec) -> Arc<Queue> {
        Arc::new(Queue {
            wildcard: crate::address::wildcard::is_wildcard(&spec.address),
            name: spec.name,
            address: spec.address,
            routing: spec.routing,
            durable: spec.durable,
            auto_created: spec.auto_created,
            exclusive_to_subscriber: spec.exclusive_to_subscriber,
            auto_delete: spec.auto_delete,
            max_delivery_attempts: spec.max_delivery_attempts,
            incarnation: spec.incarnation,
            owner: spec.owner,
            journal: spec.journal,
            state: Mutex::new(QueueState {
                next_seq: 1,
                next_tag: 1,
                ..Default::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than stopping the broker would, so recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a message and hands it to a consumer if one has room. Refuses it when the
    /// queue was deleted meanwhile, or when it is a wildcard subscription whose subscriber
    /// may not read the message's address.
    pub fn enqueue(self: &Arc<Self>, message: Arc<Message>) -> Result<(), Refusal> {
        self.enqueue_with_count(message, 0)
    }

    /// Appends a message that was delivered `delivery_count` times before (recovery).
    pub fn enqueue_with_count(
        self: &Arc<Self>,
        message: Arc<Message>,
        delivery_count: u32,
    ) -> Result<(), Refusal> {
        let mut st = self.lock();
        if st.deleted {
            return Err(Refusal::Deleted);
        }
        let checked = match self.may_read(&mut st, &message.address) {
            Some(true) => true,
            Some(false) => return Err(Refusal::NotPermitted),
            None => false,
        };
        let seq = st.next_seq;
        st.next_seq += 1;
        st.ready.push_back(Entry {
            seq,
            message,
            delivery_count,
            checked,
        });
        self.dispatch(&mut st);
        Ok(())
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
    /// caller can confirm the subscription before the first message goes out. `reader` is
    /// whose rights the copies of a wildcard subscription are checked against.
    pub fn add_consumer(
        &self,
        id: ConsumerId,
        sink: Arc<dyn DeliverySink>,
        window: Window,
        reader: Option<Arc<dyn Authorizer>>,
    ) {
        let mut st = self.lock();
        if self.wildcard && reader.is_some() {
            st.reader = reader;
            st.reader_cache.clear();
        }
        st.consumers.push(ConsumerSlot {
            id,
            sink,
            window,
            started: false,
            in_flight: VecDeque::new(),
            held_messages: 0,
            held_bytes: 0,
        });
    }

    /// Lets a consumer receive messages.
    pub fn start_consumer(self: &Arc<Self>, id: ConsumerId) {
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
    pub fn stop_consumer(&self, id: ConsumerId) {
        let mut st = self.lock();
        if let Some(c) = st.consumers.iter_mut().find(|c| c.id == id) {
            c.started = false;
        }
    }

    /// Whether a consumer holds an unsettled delivery that `target` names, without settling
    /// it: lets a session find out whether an ACK naming only a message id is ambiguous.
    pub fn holds(&self, id: ConsumerId, target: AckTarget) -> bool {
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
        let mut st = self.lock();
        let mut done = Completed::default();
        let Some(pos) = st.consumers.iter().position(|c| c.id == id) else {
            return done;
        };
        let slot = st.consumers.remove(pos);
        if st.next_consumer > pos {
            st.next_consumer -= 1;
        }
        for f in slot.in_flight {
            self.put_back(&mut st, f.entry, &mut done);
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
        taken
    }

    /// Applies the outcome to settled (or unsettled) deliveries of a consumer. Tags no longer
    /// held (the consumer left meanwhile) are skipped: their messages were already returned.
    pub fn complete(self: &Arc<Self>, id: ConsumerId, tags: &[u64], outcome: Outcome) -> Completed {
        let mut st = self.lock();
        let taken = Self::take_entries(&mut st, id, &sorted(tags));
        self.finish_locked(&mut st, taken, outcome)
    }

    /// Takes deliveries out of a consumer's hands for a transaction being committed; see
    /// [`Taken`].
    pub fn take(self: &Arc<Self>, id: ConsumerId, tags: &[u64]) -> Taken {
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
        for entry in entries {
            match outcome {
                Outcome::Ack => done.acked.push(entry.message),
                Outcome::Nack => self.put_back(st, entry, &mut done),
            }
        }
        self.dispatch(st);
        done
    }

    /// Undoes [`Queue::settle`] for an aborted transaction: the deliveries count against the
    /// window again and await a new ACK/NACK.
    pub fn unsettle(&self, id: ConsumerId, tags: &[u64]) {
        let tags = sorted(tags);
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

    /// Messages waiting (not counting those out with consumers).
    pub fn ready_count(&self) -> usize {
        let st = self.lock();
        st.ready.len() + st.returned.len()
    }

    /// Messages waiting plus those delivered and unacknowledged.
    pub fn message_count(&self) -> usize {
        let st = self.lock();
        st.ready.len()
            + st.returned.len()
            + st.consumers
                .iter()
                .map(|c| c.in_flight.len())
                .sum::<usize>()
    }

    /// Consumers attached.
    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len()
    }

    /// Marks the queue deleted if it is unused (no consumers, no messages) or `force`; returns
    /// whether it is now deleted. Later enqueues are refused so senders route again.
    pub fn mark_deleted(&self, force: bool) -> bool {
        let mut st = self.lock();
        if st.deleted {
            return true;
        }
        let unused = st.consumers.is_empty() && st.ready.is_empty() && st.returned.is_empty();
        if unused || force {
            st.deleted = true;
            st.ready.clear();
            st.returned.clear();
        }
        st.deleted
    }

    /// Whether nothing uses the queue any more, so auto-delete may remove it.
    pub fn is_unused(&self) -> bool {
        let st = self.lock();
        !st.deleted && st.consumers.is_empty() && st.ready.is_empty() && st.returned.is_empty()
    }

    /// Messages waiting, in order, with their delivery counts (for inspection and tests).
    pub fn snapshot(&self) -> Vec<(Arc<Message>, u32)> {
        let st = self.lock();
        let mut all: Vec<&Entry> = st.ready.iter().chain(st.returned.values()).collect();
        all.sort_by_key(|e| e.seq);
        all.into_iter()
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
            let mut ops = Vec::new();
            self.record_removals(&done.acked, &mut ops);
            if !ops.is_empty() {
                j.submit_detached(ops);
            }
        }
    }

    fn put_back(&self, st: &mut QueueState, entry: Entry, done: &mut Completed) {
        if let Some(max) = self.max_delivery_attempts
            && entry.delivery_count >= max
        {
            done.dead.push(entry.message);
            return;
        }
        done.returned.push((entry.message.id, entry.delivery_count));
        // Returned deliveries keep their place (their seq), so order per producer is kept.
        st.returned.insert(entry.seq, entry);
    }

    /// The next message to offer: the lower seq of the first returned and the first ready.
    fn next_entry(st: &mut QueueState) -> Option<Entry> {
        let returned_first = match (st.returned.keys().next(), st.ready.front()) {
            (Some(r), Some(f)) => *r < f.seq,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if returned_first {
            st.returned.pop_first().map(|(_, e)| e)
        } else {
            st.ready.pop_front()
        }
    }

    /// Puts back an entry just taken by [`Queue::next_entry`] but not handed over.
    fn unpop(st: &mut QueueState, entry: Entry) {
        if st.ready.front().is_none_or(|f| entry.seq < f.seq) && st.returned.is_empty() {
            st.ready.push_front(entry);
        } else {
            st.returned.insert(entry.seq, entry);
        }
    }

    fn dispatch(self: &Arc<Self>, st: &mut QueueState) {
        let mut now = None;
        while !st.ready.is_empty() || !st.returned.is_empty() {
            let n = st.consumers.len();
            let Some(ci) = (0..n)
                .map(|i| (st.next_consumer + i) % n)
                .find(|&i| st.consumers[i].has_room())
            else {
                return;
            };
            let Some(mut entry) = Self::next_entry(st) else {
                return;
            };
            let now_ms = *now.get_or_insert_with(now_millis);
            let forbidden =
                !entry.checked && self.may_read(st, &entry.message.address) == Some(false);
            if entry.message.is_expired(now_ms) || forbidden {
                if let Some(j) = self.journal.as_ref().filter(|_| entry.message.persistent) {
                    j.submit_detached(vec![self.delete_ref(&entry.message)]);
                }
                continue;
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
            };
            let slot = &mut st.consumers[ci];
            if slot.sink.deliver(delivery) {
                slot.hold(entry.message.size() as u64);
                slot.in_flight.push_back(InFlight {
                    tag,
                    entry,
                    settled: false,
                });
                st.next_consumer = (ci + 1) % n;
            } else {
                // The connection is gone; its session will remove the consumer shortly.
                slot.started = false;
                entry.delivery_count -= 1;
                Self::unpop(st, entry);
            }
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
