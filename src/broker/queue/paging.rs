//! Paging (`address-full-policy = PAGE`): once its address is full, a queue keeps further
//! messages on disk instead of in memory and reads them back, in order, as its consumers
//! catch up. The page store is the journal (`JournalOp::PutPage`, one row per paged message
//! per queue, numbered by the queue), so paging needs no files of its own, a persistent
//! message on a durable queue is not written twice (its row names the stored message), a
//! message many subscriptions page is written once (the journal shares the copy), and
//! a restart needs no page recovery: the page rows are dropped at open and persistent
//! messages come back from the journal's refs, which recovery loads only up to its limit
//! and leaves the rest on disk as the queue's *tail*, read back the same way.
//!
//! Order: while a queue pages, every new message of it pages too, and what is read back is
//! appended behind what waits in memory, so consumers see arrival order. A page row is
//! read only once it is known to be stored: rows are numbered under the queue's lock and
//! the writer reports each commit, so a read never passes a row still on its way.
//!
//! Memory: a queue reads another page (`page-size-bytes`) only while it has consumers and
//! fewer than `page-size-bytes` of its messages wait in memory (offerable, or set aside as
//! wanted by no consumer's selector), and fewer than 4,096 read-back scheduled messages wait
//! for their time, so at most about two pages wait per queue, plus what its consumers hold
//! unacknowledged (bounded by their windows).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{Entry, Queue, QueueState};
use crate::broker::flow::AddressUsage;
use crate::broker::large::{Body, LargeBody, LargeStore};
use crate::broker::message::{Message, now_millis};
use crate::broker::persistence;
use crate::journal::{
    Journal, JournalError, JournalOp, PageBatch, PageEntry, PageFrom, PageRead, RecoveredTail,
};

/// Most messages one read brings back, whatever their size.
const MAX_READ_MESSAGES: usize = 4096;

/// What a queue needs to page: the journal it pages to, the address counter read-back
/// messages are charged to, and how much to read back at a time.
#[derive(Clone)]
pub struct Pager {
    /// Where pages are written and read.
    pub journal: Journal,
    /// The address's counter (which charges the broker's).
    pub usage: Arc<AddressUsage>,
    /// `page-size-bytes`.
    pub page_size: u64,
    /// Where the files of large messages are, for those read back.
    pub large: Arc<LargeStore>,
}

impl std::fmt::Debug for Pager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Where a message offered to a queue went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Into memory, offered to consumers.
    Memory,
    /// To disk, as page `seq` of the queue: the caller stores [`Queue::page_op`] (after the
    /// message's own journal records) and reports the commit with [`Queue::page_stored`].
    Paged(u64),
}

/// A queue's paging state.
#[derive(Debug, Default)]
pub(super) struct PageState {
    /// Messages on disk not read back yet (the tail's included).
    pub(super) on_disk: u64,
    /// What recovery left on disk: refs with ids in `(after, upto]`, read before any page.
    tail: Option<(u64, u64)>,
    /// The sequence number the next paged message gets.
    next_seq: u64,
    /// The first sequence number not read back.
    read_seq: u64,
    /// Pages handed to the journal and not yet reported committed.
    pending: BTreeSet<u64>,
    /// A read is on its way.
    reading: bool,
    /// Times the queue started paging; start and stop are logged the 1st, 2nd, 4th, 8th…
    /// time only, so a queue going in and out of paging does not flood the log.
    started: u64,
    /// The files of paged large messages, by message id: the message leaves memory but its
    /// body must stay on disk until it is read back (a handle is a few bytes).
    files: HashMap<u64, Arc<LargeBody>>,
}

impl PageState {
    /// Whether the queue pages: it has messages on disk, or on their way there.
    pub(super) fn active(&self) -> bool {
        self.on_disk > 0 || self.tail.is_some() || !self.pending.is_empty()
    }
}

impl Queue {
    /// Whether this queue can page at all: it has a journal, and its kind does not need all
    /// its messages in memory (a last-value queue replaces waiting values, a ring drops the
    /// oldest, a stream indexes its log).
    pub(super) fn pageable(&self) -> bool {
        self.pager.is_some()
            && self.stream.is_none()
            && self.kind.last_value_key.is_none()
            && self.kind.ring_size.is_none()
    }

    /// Pages a new message if the queue pages (or `page` says its address is full).
    pub(super) fn page_if_needed(
        &self,
        st: &mut QueueState,
        page: bool,
        message: &Message,
    ) -> Option<u64> {
        if !(page || st.paging.active()) || !self.pageable() {
            return None;
        }
        let p = &mut st.paging;
        if let Body::File(file) = &message.body {
            p.files.insert(message.id, Arc::clone(file));
        }
        if !p.active() {
            p.started += 1;
            if p.started == 1 || p.started.is_power_of_two() {
                tracing::info!(queue = %self.name, times = p.started, "queue started paging messages to disk");
            }
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        p.pending.insert(seq);
        p.on_disk += 1;
        Some(seq)
    }

    /// The journal record that pages `message` as page `seq` of this queue: a reference
    /// when the journal stores the message anyway, else a copy.
    pub fn page_op(&self, message: &Message, seq: u64) -> JournalOp {
        JournalOp::PutPage {
            queue: Arc::clone(&self.name),
            incarnation: self.incarnation,
            seq,
            entry: if self.journals(message) {
                PageEntry::Journaled(message.id)
            } else {
                PageEntry::Transient {
                    message: Arc::new(persistence::stored(message)),
                    persistent: message.persistent,
                }
            },
        }
    }

    /// Pages `message` with nobody to store it for the queue (a message routed by a path
    /// other than a producer's send, while the queue pages): submits a copy itself.
    pub(super) fn page_alone(self: &Arc<Self>, message: &Message, seq: u64) {
        let Some(pager) = &self.pager else {
            return;
        };
        let op = JournalOp::PutPage {
            queue: Arc::clone(&self.name),
            incarnation: self.incarnation,
            seq,
            entry: PageEntry::Transient {
                message: Arc::new(persistence::stored(message)),
                persistent: message.persistent,
            },
        };
        let q = Arc::clone(self);
        pager
            .journal
            .submit_then(vec![op], Box::new(move |ok| q.page_stored(seq, ok)));
    }

    /// The journal committed (or failed to commit) page `seq`: it may be read back now.
    pub fn page_stored(self: &Arc<Self>, seq: u64, ok: bool) {
        let mut st = self.lock();
        if !st.paging.pending.remove(&seq) {
            return;
        }
        if !ok {
            // Not stored: the producer was told (its RECEIPT failed); nothing to read back.
            st.paging.on_disk = st.paging.on_disk.saturating_sub(1);
            tracing::warn!(queue = %self.name, seq, "a page could not be stored");
        }
        self.maybe_read_page(&mut st);
    }

    /// Leaves recovery's tail on disk, to be read back before anything paged later.
    pub fn set_recovered_tail(self: &Arc<Self>, tail: RecoveredTail) {
        let mut st = self.lock();
        if tail.count == 0 || tail.upto <= tail.after {
            return;
        }
        st.paging.tail = Some((tail.after, tail.upto));
        st.paging.on_disk += tail.count;
        tracing::info!(queue = %self.name, on_disk = tail.count, "left part of the queue on disk at recovery; it is read back as consumers need it");
    }

    /// Whether the queue pages now: it has messages on disk or on their way there, so its
    /// next message goes there too.
    pub fn is_paging(&self) -> bool {
        self.lock().paging.active()
    }

    /// Messages on disk, not in memory (counted in [`Queue::message_count`]).
    pub fn paged_count(&self) -> u64 {
        self.lock().paging.on_disk
    }

    /// Starts a read of the next page if the queue has consumers and little waiting in
    /// memory. Called after every dispatch.
    pub(super) fn maybe_read_page(self: &Arc<Self>, st: &mut QueueState) {
        let Some(pager) = &self.pager else {
            return;
        };
        let p = &st.paging;
        // Messages no consumer wants (parked) and scheduled ones read back wait in memory
        // too: they count, so selective consumers or far-off schedules cannot pull a whole
        // backlog in (Artemis: a restrictive selector waits for what is ahead of it).
        if p.reading
            || st.deleted
            || st.consumers.is_empty()
            || (p.on_disk == 0 && p.tail.is_none())
            || st.backlog.bytes() + st.parked.bytes() >= pager.page_size
            || st.scheduled.len() >= MAX_READ_MESSAGES
        {
            return;
        }
        let from = match p.tail {
            Some((after, upto)) => PageFrom::Tail { after, upto },
            None => {
                let before = p.pending.first().copied().unwrap_or(p.next_seq);
                if before <= p.read_seq {
                    return;
                }
                PageFrom::Pages {
                    from: p.read_seq,
                    before,
                }
            }
        };
        let read = PageRead {
            queue: Arc::clone(&self.name),
            incarnation: self.incarnation,
            from,
            max_bytes: pager.page_size,
            max_messages: MAX_READ_MESSAGES,
        };
        let q = Arc::clone(self);
        st.paging.reading = pager
            .journal
            .read_page(read, Box::new(move |res| q.page_read(from, res)));
    }

    /// A read came back (on the journal's thread): the messages join the queue behind what
    /// waits, and are offered.
    fn page_read(self: &Arc<Self>, from: PageFrom, res: Result<PageBatch, JournalError>) {
        let batch = match res {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(queue = %self.name, error = %e, "cannot read paged messages back; retrying when the queue next changes");
                self.lock().paging.reading = false;
                return;
            }
        };
        let Some(pager) = self.pager.as_ref() else {
            return;
        };
        let mut held: HashMap<u64, Arc<LargeBody>> = {
            let mut st = self.lock();
            batch
                .messages
                .iter()
                .filter(|pm| pm.message.large.is_some())
                .filter_map(|pm| {
                    let id = pm.message.id;
                    st.paging.files.remove(&id).map(|f| (id, f))
                })
                .collect()
        };
        let messages: Vec<(Arc<Message>, u32, u64)> = batch
            .messages
            .into_iter()
            .filter_map(|pm| {
                // A large message's file: the handle kept while it was paged, else (left on
                // disk at recovery) found again in the large-message directory.
                let held = held.remove(&pm.message.id);
                let mut m = persistence::restored_from_page(&pm.message, held, &pager.large)?;
                m.persistent = pm.persistent;
                m.usage = Some(pager.usage.charge_message(m.memory_size() as u64));
                Some((Arc::new(m), pm.delivery_count, pm.deliver_at))
            })
            .collect();
        let mut st = self.lock();
        st.paging.reading = false;
        if st.deleted {
            return;
        }
        let read = messages.len() as u64;
        match from {
            PageFrom::Tail { upto, .. } => {
                st.paging.tail = (!batch.exhausted).then_some((batch.resume, upto));
            }
            PageFrom::Pages { .. } => st.paging.read_seq = batch.resume,
        }
        let p = &mut st.paging;
        p.on_disk = p.on_disk.saturating_sub(read);
        if p.tail.is_none() && p.pending.is_empty() && p.read_seq >= p.next_seq {
            // Everything written was read back (some rows may have been skipped).
            p.on_disk = 0;
        }
        let now = now_millis();
        for (message, delivery_count, deliver_at) in messages {
            let seq = st.next_seq;
            st.next_seq += 1;
            st.may_expire |= message.expires != 0;
            let due = if deliver_at != 0 {
                deliver_at
            } else if delivery_count == 0 {
                message.deliver_at
            } else {
                0
            };
            let entry = Entry {
                seq,
                message,
                delivery_count,
                checked: !self.wildcard,
            };
            if due > now {
                self.hold_until(&mut st, due, entry);
            } else if delivery_count == 0 {
                // As any arrival: a last-value or ring queue left with a recovered tail
                // applies its rule to what comes back.
                self.push_arrival(&mut st, entry);
            } else {
                st.backlog.push_returned(entry);
            }
        }
        let p = &st.paging;
        if !p.active() && (p.started == 1 || p.started.is_power_of_two()) {
            tracing::info!(queue = %self.name, times = p.started, "queue stopped paging: every paged message was read back");
        }
        self.dispatch(&mut st);
        let below = st.paging.read_seq;
        drop(st);
        if matches!(from, PageFrom::Pages { .. })
            && let Some(p) = &self.pager
        {
            p.journal.submit_detached(vec![JournalOp::DeletePages {
                queue: Arc::clone(&self.name),
                below,
            }]);
        }
    }
}
