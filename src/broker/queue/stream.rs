//! A retained stream: what a non-destructive queue (`non-destructive = true`) holds instead
//! of a backlog. Messages are appended to a log of segments and given dense offsets
//! (0, 1, 2, …); consuming does not remove them. Each consumer reads with its own cursor
//! from where it chose (`x-stream-offset`), bounded by its window like any consumer.
//! Retention (`retention-bytes`, `retention-ms`) drops whole segments from the front: one
//! `pop_front` in memory and one journal record, whatever the number of messages.
//!
//! When the queue is journaled, an offset becomes visible to consumers only once its
//! `PutStreamOffset` record is committed (`Journal::submit_then`), so an offset a client
//! saw is never given to another message after a crash (see `docs/architecture.md`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{
    AckError, AckTarget, Completed, ConsumerId, ConsumerSpec, Delivery, DeliverySink, Outcome,
    Queue, Retention, Window, describe,
};
use crate::broker::message::Message;
use crate::broker::stats::{Depth, QueueStats, bump};
use crate::journal::JournalOp;

/// A segment closes once it holds this many messages. Public so tests can size their
/// retention checks by it.
pub const SEGMENT_MESSAGES: usize = 256;
/// … or this many bytes (message sizes as consumer windows count them).
pub const SEGMENT_BYTES: u64 = 1024 * 1024;

/// Offsets a journaled stream reserves at a time for messages that are not persistent,
/// with one journal record; the next block is asked for when half of one is used, so the
/// record is normally stored before its offsets are needed.
pub const RESERVE_BLOCK: u64 = 4096;

/// Where a stream consumer starts: RabbitMQ's `x-stream-offset` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The oldest message retained.
    First,
    /// The newest message at subscribe time (WrenMQ's "chunk" is one message), then on.
    Last,
    /// Only messages appended after the subscription (the default).
    Next,
    /// This offset (the oldest retained if it was dropped; the next if not reached yet).
    Offset(u64),
    /// The first message that arrived at or after this time, in ms since the epoch.
    Timestamp(u64),
}

impl StreamStart {
    /// Parses an `x-stream-offset` value: `first`, `last`, `next`, an offset, or
    /// `timestamp=<epoch seconds>`.
    pub fn parse(value: &str) -> Option<StreamStart> {
        let v = value.trim();
        match v {
            "first" => Some(StreamStart::First),
            "last" => Some(StreamStart::Last),
            "next" => Some(StreamStart::Next),
            _ => {
                if let Some(ts) = v.strip_prefix("timestamp=") {
                    let secs: u64 = ts.trim().parse().ok()?;
                    return Some(StreamStart::Timestamp(secs.checked_mul(1000)?));
                }
                v.parse().ok().map(StreamStart::Offset)
            }
        }
    }
}

/// What a consumer asks of a stream: where to start and, for a durable named consumer,
/// the name its acknowledged offset is stored under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequest {
    /// `x-stream-offset`; absent: after the stored offset for a named consumer that has
    /// one, else `next`.
    pub start: Option<StreamStart>,
    /// `client-id.subscription-name` of a durable named consumer.
    pub name: Option<Arc<str>>,
}

struct Record {
    offset: u64,
    message: Arc<Message>,
}

#[derive(Default)]
struct Segment {
    records: Vec<Record>,
    bytes: u64,
}

impl Segment {
    fn first(&self) -> u64 {
        self.records.first().map_or(u64::MAX, |r| r.offset)
    }

    fn newest_timestamp(&self) -> u64 {
        self.records.last().map_or(0, |r| r.message.timestamp)
    }

    fn is_full(&self) -> bool {
        self.records.len() >= SEGMENT_MESSAGES || self.bytes >= SEGMENT_BYTES
    }
}

struct Held {
    tag: u64,
    offset: u64,
    size: u64,
    /// Acked or nacked inside an open transaction: no longer counts against the window.
    settled: bool,
}

struct Reader {
    id: ConsumerId,
    sink: Arc<dyn DeliverySink>,
    window: Window,
    started: bool,
    /// The next offset to hand over.
    cursor: u64,
    name: Option<Arc<str>>,
    held: VecDeque<Held>,
    held_messages: u32,
    held_bytes: u64,
}

impl Reader {
    fn has_room(&self) -> bool {
        self.started
            && (self.held_messages == 0
                || (self.window.messages.is_none_or(|m| self.held_messages < m)
                    && self.window.bytes.is_none_or(|b| self.held_bytes < b)))
    }
}

#[derive(Default)]
struct StreamState {
    segments: VecDeque<Segment>,
    /// The offset the next append gets.
    next_offset: u64,
    /// Offsets below this may be handed to consumers (their offset record is stored).
    visible: u64,
    /// Persistent messages' offsets whose record is not stored yet, ascending.
    unstored: VecDeque<u64>,
    /// Offsets below this are reserved in the journal for messages that are not persistent.
    reserved: u64,
    /// The reservation asked for (stored or not).
    reserving: u64,
    /// Offsets of messages that are not persistent beyond the stored reservation, ascending.
    unreserved: VecDeque<u64>,
    /// Retained bytes.
    bytes: u64,
    readers: Vec<Reader>,
    next_tag: u64,
    /// Highest acknowledged offset per named consumer.
    stored: HashMap<Arc<str>, u64>,
    deleted: bool,
}

impl StreamState {
    /// Every offset below the first one still waiting for the journal may be read.
    fn refresh_visible(&mut self) {
        let waiting = [self.unstored.front(), self.unreserved.front()];
        self.visible = waiting
            .into_iter()
            .flatten()
            .copied()
            .fold(self.next_offset, u64::min);
    }

    fn retained(&self) -> usize {
        self.segments.iter().map(|s| s.records.len()).sum()
    }

    fn first_offset(&self) -> u64 {
        self.segments
            .front()
            .map_or(self.next_offset, |s| s.first())
    }

    /// The first record at or after `offset`: (segment, index).
    fn locate(&self, offset: u64) -> Option<(usize, usize)> {
        let after = self.segments.partition_point(|s| s.first() <= offset);
        let si = after.saturating_sub(1);
        let seg = self.segments.get(si)?;
        let ri = seg.records.partition_point(|r| r.offset < offset);
        if ri < seg.records.len() {
            Some((si, ri))
        } else {
            self.segments
                .get(si + 1)
                .filter(|s| !s.records.is_empty())
                .map(|_| (si + 1, 0))
        }
    }

    fn start_of(&self, start: StreamStart) -> u64 {
        match start {
            StreamStart::First => self.first_offset(),
            StreamStart::Next => self.next_offset,
            StreamStart::Last => self
                .segments
                .back()
                .and_then(|s| s.records.last())
                .map_or(self.next_offset, |r| r.offset),
            StreamStart::Offset(n) => n.clamp(self.first_offset(), self.next_offset),
            StreamStart::Timestamp(ms) => {
                let si = self.segments.partition_point(|s| s.newest_timestamp() < ms);
                self.segments
                    .get(si)
                    .and_then(|s| s.records.iter().find(|r| r.message.timestamp >= ms))
                    .map_or(self.next_offset, |r| r.offset)
            }
        }
    }

    fn push(&mut self, offset: u64, message: Arc<Message>) {
        let size = message.size() as u64;
        if self.segments.back().is_none_or(Segment::is_full) {
            self.segments.push_back(Segment::default());
        }
        if let Some(seg) = self.segments.back_mut() {
            seg.records.push(Record { offset, message });
            seg.bytes += size;
        }
        self.bytes += size;
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Drops whole segments from the front as retention says: by size, closed segments
    /// while the rest still holds `max_bytes`; by age, segments whose newest message is
    /// older than `max_age_ms` (the last one too: everything in it is old). Returns the
    /// first offset kept when something went.
    fn retain(&mut self, retention: Retention, now: u64) -> Option<u64> {
        let mut dropped = false;
        while let Some(front) = self.segments.front() {
            let by_bytes = retention.max_bytes.is_some_and(|max| {
                self.segments.len() > 1 && self.bytes.saturating_sub(front.bytes) >= max
            });
            let by_age = retention
                .max_age_ms
                .is_some_and(|age| front.newest_timestamp().saturating_add(age) <= now);
            if !(by_bytes || by_age) {
                break;
            }
            if let Some(seg) = self.segments.pop_front() {
                self.bytes = self.bytes.saturating_sub(seg.bytes);
                dropped = true;
            }
        }
        dropped.then(|| self.first_offset())
    }
}

/// The stream of one non-destructive queue.
pub(super) struct Stream {
    retention: Retention,
    /// The queue's figures: the stream publishes its length and readers to them.
    stats: Arc<QueueStats>,
    state: Mutex<StreamState>,
}

/// The stream's state while locked; releasing it publishes what the stream retains, as the
/// queue's own lock does (see `queue::Locked`).
struct LockedStream<'a> {
    st: MutexGuard<'a, StreamState>,
    stats: &'a QueueStats,
}

impl std::ops::Deref for LockedStream<'_> {
    type Target = StreamState;
    fn deref(&self) -> &StreamState {
        &self.st
    }
}

impl std::ops::DerefMut for LockedStream<'_> {
    fn deref_mut(&mut self) -> &mut StreamState {
        &mut self.st
    }
}

impl Drop for LockedStream<'_> {
    fn drop(&mut self) {
        let st = &self.st;
        self.stats.publish(Depth {
            // Offsets are dense: what is retained is the span from the first to the next.
            ready: st.next_offset.saturating_sub(st.first_offset()),
            in_flight: st.readers.iter().map(|r| r.held.len() as u64).sum(),
            consumers: st.readers.len() as u64,
            bytes: st.bytes,
            oldest_ms: st
                .segments
                .front()
                .and_then(|s| s.records.first())
                .map_or(0, |r| r.message.timestamp),
            ..Depth::default()
        });
    }
}

impl Stream {
    pub(super) fn new(retention: Retention, stats: Arc<QueueStats>) -> Stream {
        Stream {
            retention,
            stats,
            state: Mutex::new(StreamState {
                next_tag: 1,
                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> LockedStream<'_> {
        LockedStream {
            st: self.state.lock().unwrap_or_else(|e| e.into_inner()),
            stats: &self.stats,
        }
    }

    /// Appends a message at the next offset, drops what retention no longer keeps, and
    /// hands the message to caught-up readers (at once, or once its offset is stored).
    pub(super) fn append(&self, q: &Arc<Queue>, message: Arc<Message>) -> Result<(), ()> {
        let mut st = self.lock();
        if st.deleted {
            return Err(());
        }
        let offset = st.next_offset;
        let message_id = message.id;
        let now = message.timestamp.max(crate::broker::message::now_millis());
        let persistent = message.persistent;
        bump(&self.stats.enqueued);
        st.push(offset, message);
        match &q.journal {
            Some(j) if persistent => {
                let weak: Weak<Queue> = Arc::downgrade(q);
                st.unstored.push_back(offset);
                // Submitted under the lock, so the records reach the writer in offset order.
                j.submit_then(
                    vec![JournalOp::PutStreamOffset {
                        queue: Arc::clone(&q.name),
                        incarnation: q.incarnation,
                        offset,
                        message_id,
                    }],
                    Box::new(move |stored| {
                        if let Some(q) = weak.upgrade().filter(|_| stored) {
                            q.stream_offset_stored(offset);
                        }
                    }),
                );
            }
            Some(j) => {
                if offset >= st.reserved {
                    st.unreserved.push_back(offset);
                }
                if offset + RESERVE_BLOCK / 2 >= st.reserving {
                    let upto = st.reserving.max(offset + 1) + RESERVE_BLOCK;
                    st.reserving = upto;
                    let weak: Weak<Queue> = Arc::downgrade(q);
                    j.submit_then(
                        vec![JournalOp::ReserveStreamOffsets {
                            queue: Arc::clone(&q.name),
                            incarnation: q.incarnation,
                            upto,
                        }],
                        Box::new(move |stored| {
                            if let Some(q) = weak.upgrade().filter(|_| stored) {
                                q.stream_offsets_reserved(upto);
                            }
                        }),
                    );
                }
            }
            None => {}
        }
        st.refresh_visible();
        self.retain_locked(q, &mut st, now);
        self.dispatch(q, &mut st);
        Ok(())
    }

    /// The journal stored offsets up to `offset`: they may be read now.
    pub(super) fn stored(&self, q: &Arc<Queue>, offset: u64) {
        let mut st = self.lock();
        // Records are stored in the order they were submitted, which is offset order.
        while st.unstored.front().is_some_and(|&o| o <= offset) {
            st.unstored.pop_front();
        }
        st.refresh_visible();
        self.dispatch(q, &mut st);
    }

    /// The journal stored the reservation of the offsets below `upto`.
    pub(super) fn reserved(&self, q: &Arc<Queue>, upto: u64) {
        let mut st = self.lock();
        st.reserved = st.reserved.max(upto);
        while st.unreserved.front().is_some_and(|&o| o < upto) {
            st.unreserved.pop_front();
        }
        st.refresh_visible();
        self.dispatch(q, &mut st);
    }

    /// Age retention between appends, from the broker clock's periodic scan.
    pub(super) fn retain_by_age(&self, q: &Queue, now: u64) {
        if self.retention.max_age_ms.is_none() {
            return;
        }
        let mut st = self.lock();
        self.retain_locked(q, &mut st, now);
    }

    fn retain_locked(&self, q: &Queue, st: &mut StreamState, now: u64) {
        let Some(below) = st.retain(self.retention, now) else {
            return;
        };
        for r in &mut st.readers {
            r.cursor = r.cursor.max(below);
        }
        if let Some(j) = &q.journal {
            j.submit_detached(vec![JournalOp::DropStreamSegments {
                queue: Arc::clone(&q.name),
                incarnation: q.incarnation,
                below,
            }]);
        }
    }

    /// Rebuilds the stream at start-up: `records` with the offsets they had (ascending),
    /// offsets counting on from `next` (above every offset ever handed out), and the
    /// stored offsets of named consumers. Recovered offsets are stored, so visible at once.
    pub(super) fn recover(
        &self,
        records: Vec<(u64, Arc<Message>)>,
        next: u64,
        consumers: Vec<(Arc<str>, u64)>,
    ) {
        let mut st = self.lock();
        for (offset, m) in records {
            st.push(offset, m);
        }
        st.next_offset = st.next_offset.max(next);
        st.visible = st.next_offset;
        // Every offset up to here is accounted for in the journal; a new reservation starts.
        st.reserved = st.next_offset;
        st.reserving = st.next_offset;
        st.stored.extend(consumers);
    }

    pub(super) fn add_reader(&self, spec: ConsumerSpec) {
        let mut st = self.lock();
        let name = spec.stream.name;
        let cursor = match (
            spec.stream.start,
            name.as_ref().and_then(|n| st.stored.get(n)),
        ) {
            (Some(start), _) => st.start_of(start),
            (None, Some(&acked)) => st.start_of(StreamStart::Offset(acked.saturating_add(1))),
            (None, None) => st.next_offset,
        };
        st.readers.push(Reader {
            id: spec.id,
            sink: spec.sink,
            window: spec.window,
            started: false,
            cursor,
            name,
            held: VecDeque::new(),
            held_messages: 0,
            held_bytes: 0,
        });
    }

    pub(super) fn set_started(&self, q: &Arc<Queue>, id: ConsumerId, started: bool) {
        let mut st = self.lock();
        if let Some(r) = st.readers.iter_mut().find(|r| r.id == id) {
            r.started = started;
        }
        if started {
            self.dispatch(q, &mut st);
        }
    }

    pub(super) fn holds(&self, id: ConsumerId, target: AckTarget) -> bool {
        let st = self.lock();
        st.readers.iter().find(|r| r.id == id).is_some_and(|r| {
            r.held.iter().any(|h| {
                !h.settled
                    && match target {
                        AckTarget::Tag(t) => h.tag == t,
                        AckTarget::MessageId(m) => self.message_id_at(&st, h.offset) == Some(m),
                    }
            })
        })
    }

    fn message_id_at(&self, st: &StreamState, offset: u64) -> Option<u64> {
        let (si, ri) = st.locate(offset)?;
        let r = &st.segments[si].records[ri];
        (r.offset == offset).then_some(r.message.id)
    }

    /// Detaches a reader. Nothing goes back anywhere: the messages stay in the stream.
    pub(super) fn remove_reader(&self, id: ConsumerId) -> Completed {
        self.lock().readers.retain(|r| r.id != id);
        Completed::default()
    }

    /// As [`Queue::settle`]: marks deliveries settled and frees their window room.
    pub(super) fn settle(
        &self,
        q: &Arc<Queue>,
        id: ConsumerId,
        target: AckTarget,
        cumulative: bool,
        refill: bool,
    ) -> Result<Vec<u64>, AckError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let by_id = match target {
            AckTarget::MessageId(m) => Some(m),
            AckTarget::Tag(_) => None,
        };
        let ids: Vec<Option<u64>> = match by_id {
            Some(_) => {
                let r = st.readers.iter().find(|r| r.id == id);
                r.map(|r| {
                    r.held
                        .iter()
                        .map(|h| self.message_id_at(st, h.offset))
                        .collect()
                })
                .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let r = st
            .readers
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| AckError::NotPending(describe(target)))?;
        let pos = match target {
            AckTarget::Tag(t) => r
                .held
                .binary_search_by_key(&t, |h| h.tag)
                .ok()
                .filter(|&p| !r.held[p].settled),
            AckTarget::MessageId(m) => r
                .held
                .iter()
                .zip(&ids)
                .position(|(h, mid)| !h.settled && *mid == Some(m)),
        }
        .ok_or_else(|| AckError::NotPending(describe(target)))?;
        let start = if cumulative { 0 } else { pos };
        let mut tags = Vec::new();
        for h in r.held.range_mut(start..=pos) {
            if !h.settled {
                h.settled = true;
                tags.push(h.tag);
                r.held_messages = r.held_messages.saturating_sub(1);
                r.held_bytes = r.held_bytes.saturating_sub(h.size);
            }
        }
        if refill {
            self.dispatch(q, st);
        }
        Ok(tags)
    }

    /// Undoes [`Stream::settle`] for an aborted transaction.
    pub(super) fn unsettle(&self, id: ConsumerId, tags: &[u64]) {
        let mut st = self.lock();
        if let Some(r) = st.readers.iter_mut().find(|r| r.id == id) {
            for h in r.held.iter_mut() {
                if h.settled && tags.binary_search(&h.tag).is_ok() {
                    h.settled = false;
                    r.held_messages += 1;
                    r.held_bytes += h.size;
                }
            }
        }
    }

    /// Completes deliveries: they leave the reader's hands (the messages stay in the
    /// stream). An ACK by a named reader stores the highest offset it covers; a NACK does
    /// nothing more (nothing is requeued or dead-lettered: the next read of that offset is
    /// the reader's choice). Returns the journal record of a stored offset in
    /// `Completed::journal`.
    pub(super) fn complete(
        &self,
        q: &Arc<Queue>,
        id: ConsumerId,
        tags: &[u64],
        outcome: Outcome,
    ) -> Completed {
        let mut st = self.lock();
        let mut done = Completed::default();
        let Some(r) = st.readers.iter_mut().find(|r| r.id == id) else {
            return done;
        };
        let mut acked: Option<u64> = None;
        let (mut freed_messages, mut freed_bytes) = (0u32, 0u64);
        r.held.retain(|h| {
            if tags.binary_search(&h.tag).is_err() {
                return true;
            }
            if !h.settled {
                freed_messages += 1;
                freed_bytes += h.size;
            }
            acked = acked.max(Some(h.offset));
            false
        });
        r.held_messages = r.held_messages.saturating_sub(freed_messages);
        r.held_bytes = r.held_bytes.saturating_sub(freed_bytes);
        let name = r.name.clone();
        if let (Outcome::Ack, Some(name), Some(offset)) = (outcome, name, acked) {
            let stored = st.stored.entry(Arc::clone(&name)).or_insert(offset);
            *stored = (*stored).max(offset);
            if q.journal.is_some() {
                done.journal.push(JournalOp::PutConsumerOffset {
                    queue: Arc::clone(&q.name),
                    incarnation: q.incarnation,
                    consumer: name,
                    offset: *stored,
                });
            }
        }
        self.dispatch(q, &mut st);
        done
    }

    /// Messages retained.
    pub(super) fn len(&self) -> usize {
        self.lock().retained()
    }

    pub(super) fn reader_count(&self) -> usize {
        self.lock().readers.len()
    }

    /// Whether nothing uses the stream (for auto-delete): no readers, nothing retained, and
    /// no named consumer's stored offset, which deleting the queue would lose.
    pub(super) fn is_unused(&self) -> bool {
        let st = self.lock();
        !st.deleted && st.readers.is_empty() && st.segments.is_empty() && st.stored.is_empty()
    }

    pub(super) fn mark_deleted(&self, force: bool) -> bool {
        let mut st = self.lock();
        if !st.deleted && (force || (st.readers.is_empty() && st.segments.is_empty())) {
            st.deleted = true;
            st.segments.clear();
            st.bytes = 0;
        }
        st.deleted
    }

    /// The retained messages in offset order, each with delivery count 0.
    pub(super) fn snapshot(&self) -> Vec<(Arc<Message>, u32)> {
        let st = self.lock();
        st.segments
            .iter()
            .flat_map(|s| s.records.iter())
            .map(|r| (Arc::clone(&r.message), 0))
            .collect()
    }

    /// Up to `max` retained messages from offset `from` on, for a browse, and the offset the
    /// next page starts at (`None`: that was the end). One short lock per page.
    pub(super) fn page(&self, from: u64, max: usize) -> (Vec<Arc<Message>>, Option<u64>) {
        let st = self.lock();
        let mut out = Vec::new();
        let Some((mut si, mut ri)) = st.locate(from) else {
            return (out, None);
        };
        while let Some(seg) = st.segments.get(si) {
            if let Some(r) = seg.records.get(ri) {
                if out.len() == max {
                    return (out, Some(r.offset));
                }
                out.push(Arc::clone(&r.message));
                ri += 1;
            } else {
                si += 1;
                ri = 0;
            }
        }
        (out, None)
    }

    /// Offsets retained: (first, next), for inspection and tests.
    pub(super) fn bounds(&self) -> (u64, u64) {
        let st = self.lock();
        (st.first_offset(), st.next_offset)
    }

    /// Hands each started reader with room what it has not read yet, up to the visible end.
    /// Work is bounded by the readers' windows.
    fn dispatch(&self, q: &Arc<Queue>, st: &mut StreamState) {
        let end = st.visible.min(st.next_offset);
        for ri in 0..st.readers.len() {
            while st.readers[ri].has_room() && st.readers[ri].cursor < end {
                let Some((si, i)) = st.locate(st.readers[ri].cursor) else {
                    st.readers[ri].cursor = end;
                    break;
                };
                let record = &st.segments[si].records[i];
                if record.offset >= end {
                    st.readers[ri].cursor = end;
                    break;
                }
                let (offset, message) = (record.offset, Arc::clone(&record.message));
                let tag = st.next_tag;
                st.next_tag += 1;
                let r = &mut st.readers[ri];
                let size = message.size() as u64;
                let delivery = Delivery {
                    consumer: r.id,
                    tag,
                    message,
                    delivery_count: 1,
                    queue: Arc::clone(q),
                    offset,
                    group_first: false,
                };
                if !r.sink.deliver(delivery) {
                    // The connection is gone; its session removes the consumer shortly.
                    r.started = false;
                    break;
                }
                bump(&self.stats.delivered);
                r.cursor = offset + 1;
                r.held_messages += 1;
                r.held_bytes += size;
                r.held.push_back(Held {
                    tag,
                    offset,
                    size,
                    settled: false,
                });
            }
        }
    }
}

impl Queue {
    /// Whether this is a non-destructive queue (a retained stream).
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// The offsets a stream retains, `(first, next)`; `None` for other queues.
    pub fn stream_bounds(&self) -> Option<(u64, u64)> {
        self.stream.as_ref().map(Stream::bounds)
    }

    pub(super) fn append_to_stream(
        self: &Arc<Self>,
        stream: &Stream,
        message: Arc<Message>,
    ) -> Result<(), super::Refusal> {
        if self.wildcard && self.may_read(&mut self.lock(), &message.address) == Some(false) {
            return Err(super::Refusal::NotPermitted);
        }
        stream
            .append(self, message)
            .map_err(|()| super::Refusal::Deleted)
    }

    pub(super) fn add_stream_reader(&self, stream: &Stream, spec: ConsumerSpec) {
        if self.wildcard && spec.reader.is_some() {
            let mut st = self.lock();
            st.reader = spec.reader.clone();
            st.reader_cache.clear();
        }
        stream.add_reader(spec);
    }

    /// The journal stored the offset record of `offset` (the writer thread calls this).
    pub(super) fn stream_offset_stored(self: &Arc<Self>, offset: u64) {
        if let Some(stream) = &self.stream {
            stream.stored(self, offset);
        }
    }

    /// The journal stored a reservation of the offsets below `upto` (the writer thread calls
    /// this).
    pub(super) fn stream_offsets_reserved(self: &Arc<Self>, upto: u64) {
        if let Some(stream) = &self.stream {
            stream.reserved(self, upto);
        }
    }

    /// Rebuilds a stream from the journal at start-up. `refs`: its recovered messages (in
    /// message-id order); `offsets`: the stored `(offset, message id)` pairs; `base`: where
    /// retention last cut it. A message with an offset gets it back; one without (its
    /// offset record was not stored before a crash, so no consumer ever saw it) is
    /// appended after every offset ever stored, in message-id order, like a new message.
    pub fn recover_stream(
        self: &Arc<Self>,
        refs: Vec<Arc<Message>>,
        offsets: &[(u64, u64)],
        base: u64,
        consumers: Vec<(Arc<str>, u64)>,
    ) {
        let Some(stream) = &self.stream else {
            return;
        };
        // Reservation rows name no message; they only count for where offsets go on.
        let by_id: HashMap<u64, u64> = offsets
            .iter()
            .filter(|&&(_, id)| id != crate::journal::RESERVED_OFFSET)
            .map(|&(o, id)| (id, o))
            .collect();
        let next = offsets.last().map_or(0, |&(o, _)| o + 1).max(base);
        let mut placed = Vec::new();
        let mut unplaced = Vec::new();
        for m in refs {
            match by_id.get(&m.id) {
                Some(&o) if o >= base => placed.push((o, m)),
                Some(_) => {}
                None => unplaced.push(m),
            }
        }
        placed.sort_by_key(|(o, _)| *o);
        stream.recover(placed, next, consumers);
        for m in unplaced {
            let _ = stream.append(self, m);
        }
    }
}

#[cfg(test)]
mod tests;
