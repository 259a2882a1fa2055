//! The single writer thread: group commit, ref bookkeeping, idle upkeep.
//!
//! A dedicated OS thread (not a tokio worker) owns the redb `Database`,
//! because a commit with `Durability::Immediate` blocks on fsync and must not
//! stall the async runtime. Owning the database outright also lets it call
//! `compact`, which needs `&mut Database`.
//!
//! Out-of-order acks: the broker submits from many threads, so a `DeleteRef`
//! can reach this thread before the request carrying its `PutRef`. Such a
//! `DeleteRef` leaves a tombstone in memory; the `PutRef`, when it arrives,
//! consumes the tombstone and is not written. Tombstones are in memory only:
//! the reordering window is the channel, which does not survive a restart.
//!
//! Consumed within one batch: a message whose `PutRef` and `DeleteRef` reach
//! the same group commit was sent and acknowledged before it could be stored.
//! Both are dropped, with its delivery counts and, when no other queue keeps
//! it, its `PutMessage`: with a consumer keeping up, most messages are never
//! written at all, and a commit costs little more than its fsync.
//!
//! Queue incarnations: a queue can be deleted and created again under the
//! same name while refs for its earlier life are still in the channel (a
//! durable subscription removed and re-made, an auto-created queue deleted
//! when empty and re-created by the next send). Every ref op names the
//! incarnation it was made for, and the writer applies it only to that
//! incarnation: a late `PutRef` for a deleted queue is dropped instead of
//! resurrecting an acked or deleted message in the new queue. The writer
//! knows each live queue's incarnation (from recovery and `PutQueue`) and,
//! bounded, the last incarnation of queues deleted since it started.
//!
//! Early delivery counts: for the same reason a `SetDeliveryCount` can arrive
//! before its `PutRef`. This is the normal case when a consumer is waiting:
//! the queue hands the message over (and records the delivery) while the send
//! is being routed, before the producer's session submits the `PutRef`. The
//! count is kept in memory and written with the `PutRef`, so a crash after
//! the delivery still brings the message back marked redelivered. A
//! `SetDeliverAt` (the consumer NACKed that early delivery) is kept the same
//! way, beside the count, and both follow the incarnation rules above.
//!
//! Duplicate ids: `PutDuplicateId` and `DeleteDuplicateIds` belong to an
//! address, not to a queue's life, so incarnations do not apply, and they are
//! never cancelled with a message consumed within its batch: the id was
//! seen, and a retry of that send must still be recognised. They apply in
//! batch order like every op, in the same transaction as the message they
//! came with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::error::JournalError;
use super::records::{JournalOp, encode};
use super::tables::{MAX_MESSAGE_ID_KEY, RefValue, Tables};

/// How long the writer may sit on non-durable commits (sync = false) before
/// it forces a durable one. redb only reuses pages freed by non-durable
/// commits after a durable commit, so without this the file would grow.
const NONSYNC_DURABLE_INTERVAL: Duration = Duration::from_millis(500);
/// Idle time after which the writer considers compacting the file.
const IDLE_COMPACT_AFTER: Duration = Duration::from_secs(5);
/// Files smaller than this are never worth compacting.
pub(crate) const COMPACT_MIN_FILE: u64 = 8 * 1024 * 1024;
/// How long after a failed write the writer waits before it opens the file again. A full
/// disk stays full for a while: retrying at every batch would repeat redb's repair (a read
/// of the whole file) for nothing.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
/// Above this many remembered out-of-order acks (or delivery counts and
/// redelivery times) the oldest are forgotten, so ops for refs that never
/// arrive cannot grow memory without bound.
const MAX_TOMBSTONES: usize = 1_000_000;

/// A unit of work for the writer.
pub(crate) enum Request {
    /// Ops to apply atomically with their group, and who to tell.
    Ops {
        ops: Vec<JournalOp>,
        done: Option<Waiter>,
    },
    /// Read back some of a queue's paged messages, after committing everything before it.
    Read(super::PageReadRequest),
    /// Copy the file, as of a durable commit of everything before this (a cluster snapshot).
    Copy {
        to: PathBuf,
        done: oneshot::Sender<Result<u64, JournalError>>,
    },
    /// Read everything back as a start would, after committing everything before this (a
    /// cluster node taking over as leader), and forget the page rows as a start does.
    Recover {
        limit: super::LoadLimit,
        done: oneshot::Sender<Result<super::Recovered, JournalError>>,
    },
    /// Commit everything before this, then stop.
    Shutdown,
}

/// A request served once the group being gathered is committed.
enum Deferred {
    Copy(PathBuf, oneshot::Sender<Result<u64, JournalError>>),
    Recover(
        super::LoadLimit,
        oneshot::Sender<Result<super::Recovered, JournalError>>,
    ),
}

/// State shared between the writer and the handles.
pub(crate) struct Shared {
    pub(crate) path: PathBuf,
    /// redb's cache size, for opening the file again after a write failure.
    pub(crate) cache_size: usize,
    pub(crate) commits: AtomicU64,
    /// Commit times and sizes, for operators.
    pub(crate) stats: super::stats::JournalStats,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// What a reopen after a failed write opens the file on.
    pub(crate) storage: super::storage::Storage,
}

impl Shared {
    pub(crate) fn new(path: PathBuf, cache_size: usize, storage: super::storage::Storage) -> Self {
        Shared {
            path,
            cache_size,
            storage,
            commits: AtomicU64::new(0),
            stats: Default::default(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// The error to give a caller if an earlier write failed.
    pub(crate) fn failed_error(&self) -> Option<JournalError> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        let reason = match self.failure.lock() {
            Ok(g) => g.clone().unwrap_or_default(),
            Err(p) => p.into_inner().clone().unwrap_or_default(),
        };
        Some(JournalError::Failed {
            path: self.path.clone(),
            reason,
        })
    }

    /// Clears the failed state once the file has been opened again after a write error.
    pub(crate) fn clear_failed(&self) {
        match self.failure.lock() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
        self.failed.store(false, Ordering::Release);
    }

    pub(crate) fn set_failed(&self, reason: String) {
        match self.failure.lock() {
            Ok(mut g) => {
                g.get_or_insert(reason);
            }
            Err(p) => {
                p.into_inner().get_or_insert(reason);
            }
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// Out-of-order acks waiting for their `PutRef`.
#[derive(Default)]
struct Tombstones {
    set: HashSet<(String, u64)>,
    order: VecDeque<(String, u64)>,
}

impl Tombstones {
    fn insert(&mut self, key: (String, u64)) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.set.len() > MAX_TOMBSTONES {
            match self.order.pop_front() {
                Some(old) => {
                    if self.set.remove(&old) {
                        tracing::warn!(queue = %old.0, id = old.1, "forgetting an ack whose message never arrived");
                    }
                }
                None => break,
            }
        }
        // The order queue keeps consumed keys until they reach the front; trim
        // it when it is mostly stale so it stays proportional to the set.
        if self.order.len() > 2 * self.set.len() + 1024 {
            let set = &self.set;
            self.order.retain(|k| set.contains(k));
        }
    }

    fn take(&mut self, queue: &str, id: u64) -> bool {
        // Only allocate the key when there is something to find.
        !self.set.is_empty() && self.set.remove(&(queue.to_string(), id))
    }

    fn drop_queue(&mut self, queue: &str) {
        self.set.retain(|(q, _)| q != queue);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
    }
}

/// Redelivery state of a ref that arrived before its `PutRef`: the highest
/// delivery count, and the latest redelivery time. The time is last-wins
/// rather than highest because it is the broker's current answer (0 clears
/// it), exactly as `SetDeliverAt` on a stored ref overwrites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Early {
    count: u32,
    deliver_at: u64,
}

impl Early {
    /// The value the ref is stored with.
    fn value(self) -> RefValue {
        (self.count, self.deliver_at)
    }
}

/// Delivery counts and redelivery times that arrived before their `PutRef`.
#[derive(Default)]
struct EarlyCounts {
    map: HashMap<(String, u64), Early>,
    order: VecDeque<(String, u64)>,
}

impl EarlyCounts {
    fn insert_count(&mut self, queue: &str, id: u64, count: u32) {
        let e = self.entry(queue, id);
        e.count = e.count.max(count);
        self.bound();
    }

    fn insert_deliver_at(&mut self, queue: &str, id: u64, at: u64) {
        self.entry(queue, id).deliver_at = at;
        self.bound();
    }

    fn entry(&mut self, queue: &str, id: u64) -> &mut Early {
        let key = (queue.to_string(), id);
        if !self.map.contains_key(&key) {
            self.order.push_back(key.clone());
        }
        self.map.entry(key).or_default()
    }

    fn bound(&mut self) {
        while self.map.len() > MAX_TOMBSTONES {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn take(&mut self, queue: &str, id: u64) -> Option<Early> {
        if self.map.is_empty() {
            return None;
        }
        self.map.remove(&(queue.to_string(), id))
    }

    fn drop_queue(&mut self, queue: &str) {
        self.map.retain(|(q, _), _| q != queue);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Which incarnation of each queue is live, and which were retired, so ref ops
/// for an earlier life of a queue are dropped (see the module docs).
#[derive(Default)]
pub(crate) struct Incarnations {
    live: HashMap<String, u64>,
    retired: HashMap<String, u64>,
    retired_order: VecDeque<String>,
}

impl Incarnations {
    /// Starts from the queues recovered at open.
    pub(crate) fn new(live: impl IntoIterator<Item = (String, u64)>) -> Self {
        Incarnations {
            live: live.into_iter().collect(),
            ..Default::default()
        }
    }

    fn put(&mut self, name: &str, incarnation: u64) {
        self.live.insert(name.to_string(), incarnation);
    }

    fn delete(&mut self, name: &str) {
        let Some(inc) = self.live.remove(name) else {
            return;
        };
        if self.retired.insert(name.to_string(), inc).is_none() {
            self.retired_order.push_back(name.to_string());
        }
        while self.retired.len() > MAX_TOMBSTONES {
            match self.retired_order.pop_front() {
                Some(old) => {
                    self.retired.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Whether an op made for `incarnation` of `queue` still applies: to the live
    /// incarnation, or to a queue the writer knows nothing about (records written directly).
    fn admits(&self, queue: &str, incarnation: u64) -> bool {
        match self.live.get(queue) {
            Some(live) => *live == incarnation,
            None => self.retired.get(queue).is_none_or(|r| incarnation > *r),
        }
    }
}

/// Ops that reached the writer before the `PutRef` they refer to.
#[derive(Default)]
struct OutOfOrder {
    tombstones: Tombstones,
    counts: EarlyCounts,
}

/// The writer thread's state.
pub(crate) struct Writer {
    /// `None` after a write failed until the file is opened again (see [`Writer::recover`]).
    pub(crate) db: Option<Database>,
    /// When the last write failed, while `db` is `None`.
    broken_since: Option<Instant>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sync: bool,
    pub(crate) buffer_timeout: Duration,
    pub(crate) max_batch: usize,
    pub(crate) max_message_id: u64,
    early: OutOfOrder,
    incarnations: Incarnations,
    last_durable: Instant,
    durable_pending: bool,
    changed_since_compact_check: bool,
}

impl Writer {
    pub(crate) fn new(
        db: Database,
        shared: Arc<Shared>,
        sync: bool,
        buffer_timeout: Duration,
        max_batch: usize,
        max_message_id: u64,
        incarnations: Incarnations,
    ) -> Self {
        Writer {
            db: Some(db),
            broken_since: None,
            shared,
            sync,
            buffer_timeout,
            max_batch: max_batch.max(1),
            max_message_id,
            early: OutOfOrder::default(),
            incarnations,
            last_durable: Instant::now(),
            durable_pending: false,
            changed_since_compact_check: false,
        }
    }

    /// The thread body: gather, commit, repeat until shutdown or until every
    /// handle is gone.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        loop {
            let wait = if self.broken_since.is_some() {
                REOPEN_AFTER
            } else if self.durable_pending {
                NONSYNC_DURABLE_INTERVAL
            } else {
                IDLE_COMPACT_AFTER
            };
            let first = match rx.recv_timeout(wait) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    self.idle();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = Vec::new();
            let mut reads = Vec::new();
            let mut copies = Vec::new();
            let mut stop = false;
            let mut ops = 0usize;
            match first {
                Request::Ops { ops: o, done } => {
                    ops += o.len();
                    batch.push((o, done));
                }
                // A read alone does not wait for a group to gather.
                Request::Read(r) => {
                    self.serve_read(r);
                    continue;
                }
                Request::Copy { to, done } => {
                    let _ = done.send(self.copy_file(&to));
                    continue;
                }
                Request::Recover { limit, done } => {
                    let _ = done.send(self.recover_now(limit));
                    continue;
                }
                Request::Shutdown => stop = true,
            }
            if !stop {
                // Gather until the window closes, or earlier once the channel has been quiet
                // for a moment: a producer blocked on its RECEIPT sends nothing more, and
                // waiting out the whole window would only add to its latency. The writer
                // sleeps between looks instead of blocking on the channel: a thread blocked
                // in `recv` is woken (a futex call on each side) by every single submit, and
                // with a producer streaming that was a wake-up per SEND and per ACK; asleep,
                // it is woken once per look and takes whatever queued up meanwhile.
                let deadline = Instant::now() + self.buffer_timeout;
                let quiet = self.buffer_timeout / 8;
                let mut looked = false;
                'gather: while ops < self.max_batch {
                    let mut got = false;
                    while ops < self.max_batch {
                        match rx.try_recv() {
                            Ok(Request::Ops { ops: o, done }) => {
                                ops += o.len();
                                batch.push((o, done));
                                got = true;
                            }
                            Ok(Request::Read(r)) => reads.push(r),
                            Ok(Request::Copy { to, done }) => {
                                copies.push(Deferred::Copy(to, done));
                                // Whatever comes after the copy must not be in it.
                                break 'gather;
                            }
                            Ok(Request::Recover { limit, done }) => {
                                copies.push(Deferred::Recover(limit, done));
                                break 'gather;
                            }
                            Ok(Request::Shutdown) => {
                                stop = true;
                                break 'gather;
                            }
                            Err(_) => break,
                        }
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || (looked && !got) || quiet.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(quiet));
                    looked = true;
                }
            }
            if !batch.is_empty() {
                self.commit_batch(batch);
            }
            // After the commit, so a read sees every page row submitted before it.
            for r in reads {
                self.serve_read(r);
            }
            for d in copies {
                match d {
                    Deferred::Copy(to, done) => {
                        let _ = done.send(self.copy_file(&to));
                    }
                    Deferred::Recover(limit, done) => {
                        let _ = done.send(self.recover_now(limit));
                    }
                }
            }
            if stop {
                // Anything sent after the shutdown marker raced with shutdown;
                // tell its waiter rather than leave it hanging or ack it.
                while let Ok(r) = rx.try_recv() {
                    let shut = JournalError::ShutDown {
                        path: self.shared.path.clone(),
                    };
                    match r {
                        Request::Ops { done: Some(w), .. } => w.tell(Err(shut)),
                        Request::Read(r) => (r.reply)(Err(shut)),
                        Request::Copy { done, .. } => {
                            let _ = done.send(Err(shut));
                        }
                        Request::Recover { done, .. } => {
                            let _ = done.send(Err(shut));
                        }
                        _ => {}
                    }
                }
                break;
            }
        }
        self.finish();
    }

    /// Reads what a queue asked for from its pages and calls it back, on this thread.
    fn serve_read(&mut self, r: super::PageReadRequest) {
        let super::PageReadRequest { read, reply } = r;
        let Some(db) = self.db.as_ref() else {
            return reply(Err(self.shared.failed_error().unwrap_or(
                JournalError::Failed {
                    path: self.shared.path.clone(),
                    reason: "the journal is not open".into(),
                },
            )));
        };
        let result = super::pages::read(db, &read).map_err(|e| JournalError::Read {
            path: self.shared.path.clone(),
            reason: e.to_string(),
        });
        reply(result);
    }

    /// Copies the journal file to `to` once everything committed so far is durable, and syncs
    /// the copy: a consistent image of the database, because this thread is its only writer
    /// and writes nothing while it copies. Returns the bytes copied.
    fn copy_file(&mut self, to: &Path) -> Result<u64, JournalError> {
        let fail = |reason: String| JournalError::Write {
            path: to.to_path_buf(),
            reason,
        };
        if self.db.is_none() {
            return Err(self
                .shared
                .failed_error()
                .unwrap_or_else(|| fail("the journal is not open".into())));
        }
        self.flush_durable();
        if self.durable_pending || self.db.is_none() {
            return Err(self
                .shared
                .failed_error()
                .unwrap_or_else(|| fail("durable flush failed".into())));
        }
        let bytes = std::fs::copy(&self.shared.path, to).map_err(|e| fail(e.to_string()))?;
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail(e.to_string()))?;
        Ok(bytes)
    }

    /// What a start would recover, read now between two commits; the page rows are dropped
    /// as a start drops them, since the broker that wrote them keeps their state in memory
    /// and the one taking over starts without it.
    fn recover_now(&mut self, limit: super::LoadLimit) -> Result<super::Recovered, JournalError> {
        let Some(db) = self.db.as_ref() else {
            return Err(self.shared.failed_error().unwrap_or(JournalError::Failed {
                path: self.shared.path.clone(),
                reason: "the journal is not open".into(),
            }));
        };
        let recovered = super::recovery::recover(db, &self.shared.path, limit)?;
        super::open::clear_pages(db, &self.shared.path)?;
        Ok(recovered)
    }

    /// Work for quiet periods: make non-durable commits durable, compact.
    fn idle(&mut self) {
        if self.broken_since.is_some() {
            self.recover();
        } else if self.durable_pending {
            self.flush_durable();
        } else if self.changed_since_compact_check {
            self.changed_since_compact_check = false;
            if let Some(db) = self.db.as_mut() {
                maybe_compact(db, &self.shared.path);
            }
        }
    }

    fn finish(&mut self) {
        if self.durable_pending {
            self.flush_durable();
        }
    }

    /// An empty durable commit, which also persists every earlier
    /// non-durable one.
    fn flush_durable(&mut self) {
        let Some(db) = self.db.as_ref() else {
            return;
        };
        let res = (|| -> Result<(), redb::Error> {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.commit()?;
            Ok(())
        })();
        match res {
            Ok(()) => {
                self.durable_pending = false;
                self.last_durable = Instant::now();
            }
            Err(e) => {
                tracing::error!(journal = %self.shared.path.display(), error = %e, "journal durable flush failed");
                self.broke(e.to_string());
            }
        }
    }

    /// A write failed: redb refuses every later operation on a database that saw an I/O
    /// error, so the handle is dropped (nothing half-written is ever committed: the failed
    /// transaction is not) and the file opened again after [`REOPEN_AFTER`]. Until then every
    /// submit is refused with the reason.
    fn broke(&mut self, reason: String) {
        self.db = None;
        self.broken_since = Some(Instant::now());
        self.shared.set_failed(reason);
    }

    /// Opens the file again after a failed write, once [`REOPEN_AFTER`] has passed. redb
    /// repairs the file to its last durable commit (which needs a little space itself, so this
    /// may fail again while the disk is full; it is retried). Non-durable commits not yet
    /// made durable (`sync = false`) are lost with the dropped handle, as on power loss.
    fn recover(&mut self) {
        let Some(since) = self.broken_since else {
            return;
        };
        if since.elapsed() < REOPEN_AFTER {
            return;
        }
        match super::open::open_rw(
            &self.shared.path,
            self.shared.cache_size,
            &self.shared.storage,
        ) {
            Ok(db) => {
                tracing::warn!(journal = %self.shared.path.display(), "journal reopened after a write failure; accepting writes again");
                self.db = Some(db);
                self.broken_since = None;
                self.durable_pending = false;
                self.last_durable = Instant::now();
                self.shared.clear_failed();
            }
            Err(e) => {
                tracing::warn!(journal = %self.shared.path.display(), error = %e, "journal still cannot be reopened after a write failure; retrying");
                self.broken_since = Some(Instant::now());
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<(Vec<JournalOp>, Option<Waiter>)>) {
        self.recover();
        let result = match self.shared.failed_error() {
            Some(e) => Err(e),
            None => {
                let durable = self.sync || self.last_durable.elapsed() >= NONSYNC_DURABLE_INTERVAL;
                let started = Instant::now();
                match self.apply(&batch, durable) {
                    Ok(()) => {
                        self.shared.commits.fetch_add(1, Ordering::Relaxed);
                        let stats = &self.shared.stats;
                        stats
                            .commit_seconds
                            .observe(started.elapsed().as_secs_f64());
                        stats
                            .commit_ops
                            .observe(batch.iter().map(|(ops, _)| ops.len()).sum::<usize>() as f64);
                        self.changed_since_compact_check = true;
                        if durable {
                            self.last_durable = Instant::now();
                            self.durable_pending = false;
                        } else {
                            self.durable_pending = true;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                        let reason = e.to_string();
                        tracing::error!(journal = %self.shared.path.display(), error = %reason, "journal group commit failed; its producers get an ERROR, the journal is reopened");
                        self.broke(reason.clone());
                        Err(JournalError::Write {
                            path: self.shared.path.clone(),
                            reason,
                        })
                    }
                }
            }
        };
        for (_, done) in batch {
            if let Some(w) = done {
                w.tell(result.clone());
            }
        }
    }

    /// Applies every request of the batch in one transaction and commits it.
    fn apply(
        &mut self,
        batch: &[(Vec<JournalOp>, Option<Waiter>)],
        durable: bool,
    ) -> Result<(), WriteFailure> {
        let Some(db) = self.db.as_ref() else {
            return Err(WriteFailure::Closed);
        };
        let mut txn: WriteTransaction = db.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let mut max_id = self.max_message_id;
        {
            let mut t = Tables::open(&txn)?;
            let consumed = consumed_in_batch(batch);
            for (ops, _) in batch {
                let mut put = Vec::new();
                for op in ops {
                    if consumed.skips(op) {
                        match op {
                            JournalOp::PutMessage(m) => max_id = max_id.max(m.id),
                            JournalOp::PutRef {
                                queue, message_id, ..
                            } => {
                                self.early.counts.take(queue, *message_id);
                            }
                            _ => {}
                        }
                        continue;
                    }
                    let mut state = OpState {
                        early: &mut self.early,
                        incarnations: &mut self.incarnations,
                        put: &mut put,
                        max_id: &mut max_id,
                    };
                    apply_op(&mut t, &mut state, op)?;
                }
                // A message is only kept if something references it by the
                // end of its own request; otherwise it would be an orphan no
                // ack could ever remove.
                for id in put {
                    if t.refcounts.get(id)?.is_none() {
                        t.messages.remove(id)?;
                    }
                }
            }
            if max_id != self.max_message_id {
                t.meta.insert(MAX_MESSAGE_ID_KEY, max_id)?;
            }
        }
        txn.commit()?;
        // Only once stored: a failed commit must not keep a later one from writing the id.
        self.max_message_id = max_id;
        Ok(())
    }
}

/// Who learns the outcome of a request: an awaiting caller, or a function run on this
/// thread once the commit is done (a stream making an appended offset visible: it must not
/// wait for a task to be scheduled, and it needs no runtime).
pub(crate) enum Waiter {
    /// A caller awaiting a [`super::Completion`].
    Channel(oneshot::Sender<Result<(), JournalError>>),
    /// Called with whether the commit succeeded.
    Call(Box<dyn FnOnce(bool) + Send>),
}

impl Waiter {
    pub(crate) fn tell(self, result: Result<(), JournalError>) {
        match self {
            Waiter::Channel(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Call(f) => f(result.is_ok()),
        }
    }
}

/// Refs put and deleted within one batch, and the messages only they referenced.
struct Consumed<'a> {
    refs: HashSet<(&'a str, u64)>,
    messages: HashSet<u64>,
}

impl Consumed<'_> {
    /// Whether `op` has no effect once the batch is applied, so it need not be written.
    fn skips(&self, op: &JournalOp) -> bool {
        match op {
            JournalOp::PutRef {
                queue, message_id, ..
            }
            | JournalOp::DeleteRef {
                queue, message_id, ..
            }
            | JournalOp::SetDeliveryCount {
                queue, message_id, ..
            }
            | JournalOp::SetDeliverAt {
                queue, message_id, ..
            } => self.refs.contains(&(&**queue, *message_id)),
            JournalOp::PutMessage(m) => self.messages.contains(&m.id),
            // Duplicate ids outlive their message: a message sent and acked within one batch
            // was still seen, and a retry of it must still be recognised.
            JournalOp::PutDuplicateId { .. }
            | JournalOp::DeleteDuplicateIds { .. }
            | JournalOp::PutKeyValue { .. }
            | JournalOp::PutStreamOffset { .. }
            | JournalOp::ReserveStreamOffsets { .. }
            | JournalOp::DropStreamSegments { .. }
            | JournalOp::PutConsumerOffset { .. }
            | JournalOp::PutPage { .. }
            | JournalOp::DeletePages { .. }
            | JournalOp::PutAddress(_)
            | JournalOp::DeleteAddress(_)
            | JournalOp::PutQueue(_)
            | JournalOp::DeleteQueue(_) => false,
        }
    }
}

/// Finds the refs a batch both puts and deletes. A ref is put at most once (message ids are
/// never reused), so a put and a delete of the same ref in one batch cancel whatever their
/// order. A message whose every put ref cancels is not stored either.
fn consumed_in_batch(batch: &[(Vec<JournalOp>, Option<Waiter>)]) -> Consumed<'_> {
    let mut puts = HashSet::new();
    let mut deletes = HashSet::new();
    for (ops, _) in batch {
        for op in ops {
            match op {
                JournalOp::PutRef {
                    queue, message_id, ..
                } => {
                    puts.insert((&**queue, *message_id));
                }
                JournalOp::DeleteRef {
                    queue, message_id, ..
                } => {
                    deletes.insert((&**queue, *message_id));
                }
                _ => {}
            }
        }
    }
    let refs: HashSet<(&str, u64)> = puts.intersection(&deletes).copied().collect();
    let mut messages = HashSet::new();
    if !refs.is_empty() {
        let kept: HashSet<u64> = puts
            .iter()
            .filter(|k| !refs.contains(*k))
            .map(|(_, id)| *id)
            .collect();
        messages.extend(
            refs.iter()
                .map(|(_, id)| *id)
                .filter(|id| !kept.contains(id)),
        );
    }
    Consumed { refs, messages }
}

/// Why a group commit failed: storage, or a record that cannot be encoded.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error("{0}")]
    Db(#[from] redb::Error),
    #[error("cannot encode record: {0}")]
    Encode(#[from] postcard::Error),
    #[error("the journal file is not open after an earlier write failure")]
    Closed,
}

macro_rules! via_redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for WriteFailure {
            fn from(e: $t) -> Self {
                WriteFailure::Db(e.into())
            }
        }
    )*};
}
via_redb_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// What applying one op may change besides the tables.
struct OpState<'a> {
    early: &'a mut OutOfOrder,
    incarnations: &'a mut Incarnations,
    /// Messages put by the current request, checked for a ref at its end.
    put: &'a mut Vec<u64>,
    max_id: &'a mut u64,
}

fn apply_op(t: &mut Tables<'_>, st: &mut OpState<'_>, op: &JournalOp) -> Result<(), WriteFailure> {
    match op {
        JournalOp::PutAddress(a) => {
            t.addresses.insert(a.name.as_str(), encode(a)?.as_slice())?;
        }
        JournalOp::DeleteAddress(name) => {
            t.addresses.remove(name.as_str())?;
        }
        JournalOp::PutQueue(q) => {
            t.queues.insert(q.name.as_str(), encode(q)?.as_slice())?;
            st.incarnations.put(&q.name, q.incarnation);
        }
        JournalOp::DeleteQueue(name) => {
            t.queues.remove(name.as_str())?;
            let mut ids = Vec::new();
            for entry in t
                .refs
                .range((name.as_str(), 0)..=(name.as_str(), u64::MAX))?
            {
                ids.push(entry?.0.value().1);
            }
            for id in ids {
                t.refs.remove((name.as_str(), id))?;
                release(t, id)?;
            }
            let q = name.as_str();
            t.stream_offsets
                .retain_in((q, 0)..=(q, u64::MAX), |_, _| false)?;
            t.stream_bases.remove(q)?;
            let mut names = Vec::new();
            for entry in t.consumer_offsets.range((q, "")..)? {
                let (k, _) = entry?;
                let (kq, name) = k.value();
                if kq != q {
                    break;
                }
                names.push(name.to_string());
            }
            for name in names {
                t.consumer_offsets.remove((q, name.as_str()))?;
            }
            delete_pages(t, q, u64::MAX)?;
            st.early.tombstones.drop_queue(name);
            st.early.counts.drop_queue(name);
            st.incarnations.delete(name);
        }
        JournalOp::PutMessage(m) => {
            t.messages.insert(m.id, encode(m.as_ref())?.as_slice())?;
            *st.max_id = (*st.max_id).max(m.id);
            st.put.push(m.id);
        }
        JournalOp::PutRef {
            queue,
            incarnation,
            message_id,
        } => {
            let count = st.early.counts.take(queue, *message_id);
            if st.early.tombstones.take(queue, *message_id)
                || !st.incarnations.admits(queue, *incarnation)
            {
                return Ok(());
            }
            let key = (&**queue, *message_id);
            if t.refs.get(key)?.is_none() {
                t.refs.insert(key, count.unwrap_or_default().value())?;
                let n = t.refcounts.get(*message_id)?.map_or(0, |g| g.value());
                t.refcounts.insert(*message_id, n.saturating_add(1))?;
            }
        }
        JournalOp::DeleteRef {
            queue,
            incarnation,
            message_id,
        } => {
            if !st.incarnations.admits(queue, *incarnation) {
                return Ok(());
            }
            if t.refs.remove((&**queue, *message_id))?.is_some() {
                release(t, *message_id)?;
            } else {
                st.early.counts.take(queue, *message_id);
                st.early.tombstones.insert((queue.to_string(), *message_id));
            }
        }
        JournalOp::SetDeliveryCount {
            queue,
            incarnation,
            message_id,
            count,
        } => {
            if !st.incarnations.admits(queue, *incarnation) {
                return Ok(());
            }
            let key = (&**queue, *message_id);
            let stored = t.refs.get(key)?.map(|g| g.value());
            match stored {
                Some((_, at)) => {
                    t.refs.insert(key, (*count, at))?;
                }
                // Usually its `PutRef` is still on the way (see the module docs).
                None => st.early.counts.insert_count(queue, *message_id, *count),
            }
        }
        JournalOp::SetDeliverAt {
            queue,
            incarnation,
            message_id,
            at,
        } => {
            if !st.incarnations.admits(queue, *incarnation) {
                return Ok(());
            }
            let key = (&**queue, *message_id);
            let stored = t.refs.get(key)?.map(|g| g.value());
            match stored {
                Some((count, _)) => {
                    t.refs.insert(key, (count, *at))?;
                }
                // As for delivery counts: a consumer can NACK a message before the sender's
                // `PutRef` reaches the writer.
                None => st.early.counts.insert_deliver_at(queue, *message_id, *at),
            }
        }
        JournalOp::PutStreamOffset {
            queue,
            incarnation,
            offset,
            message_id,
        } => {
            if st.incarnations.admits(queue, *incarnation) {
                t.stream_offsets.insert((&**queue, *offset), *message_id)?;
            }
        }
        JournalOp::ReserveStreamOffsets {
            queue,
            incarnation,
            upto,
        } => {
            if st.incarnations.admits(queue, *incarnation) && *upto > 0 {
                let q: &str = queue;
                let key = (q, *upto - 1);
                // A message's own row at that offset says more; keep it.
                if t.stream_offsets.get(key)?.is_none() {
                    t.stream_offsets
                        .insert(key, super::records::RESERVED_OFFSET)?;
                }
            }
        }
        JournalOp::DropStreamSegments {
            queue,
            incarnation,
            below,
        } => {
            if !st.incarnations.admits(queue, *incarnation) {
                return Ok(());
            }
            let q: &str = queue;
            let mut dropped = Vec::new();
            for entry in t.stream_offsets.range((q, 0)..(q, *below))? {
                let (k, v) = entry?;
                dropped.push((k.value().1, v.value()));
            }
            for (offset, id) in dropped {
                t.stream_offsets.remove((q, offset))?;
                if t.refs.remove((q, id))?.is_some() {
                    release(t, id)?;
                }
            }
            let base = t.stream_bases.get(q)?.map_or(0, |g| g.value());
            t.stream_bases.insert(q, base.max(*below))?;
        }
        JournalOp::PutConsumerOffset {
            queue,
            incarnation,
            consumer,
            offset,
        } => {
            if st.incarnations.admits(queue, *incarnation) {
                t.consumer_offsets
                    .insert((&**queue, &**consumer), *offset)?;
            }
        }
        JournalOp::PutPage {
            queue,
            incarnation,
            seq,
            entry,
        } => {
            if st.incarnations.admits(queue, *incarnation) {
                use super::records::{PageEntry, PageEntryRef, PageRowRef, PagedBodyRef};
                let entry = match entry {
                    PageEntry::Journaled(id) => PageEntryRef::Journaled(*id),
                    PageEntry::Transient {
                        message,
                        persistent,
                    } => {
                        // One copy for every queue that pages it (a topic's subscriptions).
                        let id = message.id;
                        let n = t.paged_refcounts.get(id)?.map_or(0, |g| g.value());
                        if n == 0 {
                            let body = PagedBodyRef {
                                persistent: *persistent,
                                message,
                            };
                            t.paged_messages.insert(id, encode(&body)?.as_slice())?;
                        }
                        t.paged_refcounts.insert(id, n.saturating_add(1))?;
                        PageEntryRef::Shared(id)
                    }
                };
                let row = PageRowRef {
                    incarnation: *incarnation,
                    entry,
                };
                let key = (&**queue, *seq);
                let old = t
                    .pages
                    .insert(key, encode(&row)?.as_slice())?
                    .map(|g| g.value().to_vec());
                // A page number is never reused while its row lives; should it happen, the
                // row it replaced must not keep its message forever.
                if let Some(old) = old {
                    release_paged(t, &old)?;
                }
            }
        }
        JournalOp::DeletePages { queue, below } => {
            delete_pages(t, queue, *below)?;
        }
        JournalOp::PutDuplicateId { address, slot, id } => {
            t.duplicate_ids
                .insert((&**address, *slot), encode(id)?.as_slice())?;
        }
        JournalOp::DeleteDuplicateIds { address } => {
            let address: &str = address;
            t.duplicate_ids
                .retain_in((address, 0)..=(address, u32::MAX), |_, _| false)?;
        }
        JournalOp::PutKeyValue { key, value } => {
            t.key_values.insert(&**key, &value[..])?;
        }
    }
    Ok(())
}

/// Deletes a queue's page rows below `below`, with the paged messages only they named.
fn delete_pages(t: &mut Tables<'_>, q: &str, below: u64) -> Result<(), WriteFailure> {
    let mut rows = Vec::new();
    for entry in t.pages.extract_from_if((q, 0)..(q, below), |_, _| true)? {
        let (_, v) = entry?;
        rows.push(v.value().to_vec());
    }
    for row in rows {
        release_paged(t, &row)?;
    }
    Ok(())
}

/// Gives back the paged message a deleted page row named, if it was a shared one.
fn release_paged(t: &mut Tables<'_>, row: &[u8]) -> Result<(), WriteFailure> {
    let Ok(row) = super::records::decode::<super::records::PageRow>(row) else {
        // A damaged row names nothing we can find; the table is emptied at the next open.
        return Ok(());
    };
    if let super::records::PageEntryOwned::Shared(id) = row.entry {
        let n = t.paged_refcounts.get(id)?.map_or(0, |g| g.value());
        if n <= 1 {
            t.paged_refcounts.remove(id)?;
            t.paged_messages.remove(id)?;
        } else {
            t.paged_refcounts.insert(id, n - 1)?;
        }
    }
    Ok(())
}

/// Drops one ref from a message's count, deleting the message with its last.
fn release(t: &mut Tables<'_>, id: u64) -> Result<(), WriteFailure> {
    let n = t.refcounts.get(id)?.map_or(0, |g| g.value());
    if n <= 1 {
        t.refcounts.remove(id)?;
        t.messages.remove(id)?;
    } else {
        t.refcounts.insert(id, n - 1)?;
    }
    Ok(())
}

/// Compacts when the file is big and mostly free space. redb reuses freed
/// pages, so this is about returning disk after a large backlog drained, not
/// about correctness; failures are logged and ignored.
pub(crate) fn maybe_compact(db: &mut Database, path: &std::path::Path) {
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
        return;
    };
    if len < COMPACT_MIN_FILE {
        return;
    }
    let used = match db.begin_write().and_then(|txn| {
        let s = txn.stats().map_err(redb::TransactionError::Storage);
        let _ = txn.abort();
        s
    }) {
        Ok(s) => s.allocated_pages().saturating_mul(s.page_size() as u64),
        Err(e) => {
            tracing::warn!(journal = %path.display(), error = %e, "cannot read journal stats");
            return;
        }
    };
    if used.saturating_mul(2) > len {
        return;
    }
    let started = Instant::now();
    match db.compact() {
        Ok(_) => {
            let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(len);
            tracing::info!(journal = %path.display(), before = len, after, took_ms = started.elapsed().as_millis() as u64, "compacted journal");
        }
        Err(e) => {
            tracing::warn!(journal = %path.display(), error = %e, "journal compaction failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_consumed_and_bounded_per_queue() {
        let mut t = Tombstones::default();
        t.insert(("q".into(), 1));
        t.insert(("q".into(), 1));
        t.insert(("r".into(), 2));
        assert_eq!(t.len(), 2);
        assert!(t.take("q", 1));
        assert!(!t.take("q", 1));
        t.drop_queue("r");
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn early_counts_keep_the_highest_and_are_consumed_once() {
        let mut c = EarlyCounts::default();
        c.insert_count("q", 1, 2);
        c.insert_count("q", 1, 1);
        c.insert_count("r", 2, 1);
        assert_eq!(c.len(), 2);
        assert_eq!(c.take("q", 1).map(Early::value), Some((2, 0)));
        assert_eq!(c.take("q", 1), None);
        c.drop_queue("r");
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn early_redelivery_time_is_last_wins_and_kept_beside_the_count() {
        let mut c = EarlyCounts::default();
        c.insert_deliver_at("q", 1, 500);
        c.insert_count("q", 1, 3);
        c.insert_deliver_at("q", 1, 200);
        assert_eq!(c.len(), 1);
        assert_eq!(c.take("q", 1).map(Early::value), Some((3, 200)));
        c.insert_deliver_at("q", 2, 500);
        c.insert_deliver_at("q", 2, 0);
        assert_eq!(c.take("q", 2).map(Early::value), Some((0, 0)));
    }
}
