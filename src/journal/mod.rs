//! Persistence for WrenMQ behind a narrow, broker-agnostic interface.
//!
//! The broker describes every durable change as [`JournalOp`]s over plain
//! records ([`AddressRecord`], [`QueueRecord`], [`StoredMessage`]) and gets
//! everything back as a [`Recovered`] at [`Journal::open`]. The module knows
//! nothing of STOMP or of the broker's types, so either side can change
//! without the other.
//!
//! As in Artemis (see `persistence.adoc`), messages are stored once and
//! referenced from queues; a message record is deleted when its last ref is.
//! Beside the messages the journal keeps what delivery semantics need across
//! a restart: each message's scheduled time, each ref's delivery count and
//! redelivery time, and each address's duplicate-detection id cache.
//!
//! Storage is a single redb file, `dir/journal.redb`, written by one
//! dedicated thread that *group-commits*: it takes the first request, gathers
//! more for up to [`JournalOptions::buffer_timeout`] or
//! [`JournalOptions::max_batch`] ops, applies them in one write transaction
//! and fsyncs once (when [`JournalOptions::sync`]), then wakes every waiter.
//! This is Artemis's journal buffer timeout: many concurrent producers share
//! one fsync.
//!
//! Safety at open: a file that is not a redb database, is locked, is of
//! another format version or is damaged is refused with a [`JournalError`]
//! naming the file and the reason, and it is not modified. Damage includes a
//! message, queue or address record (or duplicate id) whose CRC32 does not match (see
//! `records`): redb itself does not verify page checksums on reads. The
//! whole file is read back through a read-only open before the read-write
//! one, because the latter writes to the file. The one case in which the
//! file is written before recovery is crash repair (a file that was not shut
//! down cleanly), which only the read-write open can do and which is the
//! point of a journal; a damaged record found after a repair is still
//! refused, with nothing of ours written.
//!
//! After a `Write` failure (a full disk, an I/O error) the batch's waiters
//! get the error and nothing of the batch is stored: redb commits a write
//! transaction whole or not at all. redb refuses further work on a handle
//! that saw an I/O error, so the writer drops it and, a second later, opens
//! the file again (redb repairs it to its last durable commit); meanwhile
//! every submit errors with [`JournalError::Failed`], so the broker never
//! acknowledges a message that is not stored, and once the file is open
//! again later commits work as before.

mod error;
mod open;
mod pages;
#[cfg(test)]
mod pages_tests;
#[cfg(test)]
mod power_cut;
mod records;
mod recovery;
mod stats;
mod storage;
mod tables;
mod writer;

pub use error::JournalError;
pub use pages::{PageBatch, PageFrom, PageRead, PagedMessage};
pub use records::{
    AddressRecord, JournalOp, LargeFile, OwnerRecord, PageEntry, QueueRecord, RESERVED_OFFSET,
    RoutingKind, StoredMessage,
};
pub use recovery::{
    LoadLimit, Recovered, RecoveredIdCache, RecoveredQueue, RecoveredRef, RecoveredStream,
    RecoveredTail,
};
pub use stats::{HistogramFigures, JournalStats};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use open::{PathClaim, guard_panic, open_rw, precheck, recover_after_open};
use storage::Storage;
use writer::{Request, Shared, Writer};

/// Version of the table layout and record encoding. Bump on any change to
/// the records or tables; older files are then refused rather than misread.
///
/// History:
/// - 1: postcard records.
/// - 2: message, queue and address records carry a CRC32 prefix (see
///   `records`), so a damaged record is refused at open instead of delivered.
/// - 3: queue records carry an incarnation, so refs written for a deleted
///   queue never land in a new queue of the same name, and the `owner` of a
///   durable subscription (user and client-id), so only its owner may use it
///   after a restart.
/// - 4: delivery semantics. Messages carry `deliver_at` (scheduled delivery),
///   a ref's value is `(delivery_count, deliver_at)` so a running redelivery
///   delay survives a restart, and the `duplicate_ids` table holds each
///   address's duplicate-detection cache.
/// - 5: retained streams. The `stream_offsets` table gives each message of a
///   non-destructive queue its offset, `stream_bases` where retention last cut
///   a stream, and `consumer_offsets` the stored offsets of named consumers.
/// - 6: large messages. A stored message may name the file holding its body
///   (`StoredMessage::large`) instead of carrying it. (The `pages` table of
///   paging came in the same version.) The `key_values` table
///   ([`JournalOp::PutKeyValue`]) came later without a bump: older builds never open it and
///   a file without it reads as holding no values, so files move both ways unharmed.
///
/// There is no migration: a journal of an older version is refused with
/// [`JournalError::FormatVersion`] (file left untouched), and the operator
/// drains it with the old build or starts from an empty directory. That is
/// acceptable while WrenMQ is 0.x; a 1.0 release must upgrade in place.
pub const FORMAT_VERSION: u64 = 6;

/// Reads the values [`JournalOp::PutKeyValue`] stored in the journal file at `path`, which
/// must not be open: the cluster asks a snapshot (a copy made by [`Journal::copy_to`]) which
/// raft entry it holds. Opens the file read-write, because a copy of a journal that was open
/// looks like one not shut down cleanly and only a read-write open repairs that; the repair
/// changes nothing that was committed.
pub fn read_key_values(path: &Path) -> Result<Vec<(String, bytes::Bytes)>, JournalError> {
    let fail = |reason: String| JournalError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let db = open::guard_panic(path, || {
        redb::Database::builder()
            .open(path)
            .map_err(|e| fail(e.to_string()))
    })?;
    recovery::key_values(&db).map_err(|e| fail(e.to_string()))
}

/// Who a [`Journal::read_page`] answers.
pub type PageReply = Box<dyn FnOnce(Result<PageBatch, JournalError>) + Send>;

/// A read of paged messages on its way to the writer thread.
pub(crate) struct PageReadRequest {
    pub(crate) read: PageRead,
    pub(crate) reply: PageReply,
}

/// Name of the database file inside [`JournalOptions::dir`].
pub const FILE_NAME: &str = "journal.redb";

/// The first bytes of every redb file. Checked before redb sees the file so
/// a foreign file is refused by us with a clear message.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// How to open the journal. Exists so the broker's config can choose the
/// durability/throughput trade-off without knowing redb.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Directory holding the journal; created if missing.
    pub dir: PathBuf,
    /// fsync every group commit (`Durability::Immediate`). When false commits
    /// are made durable at most ~0.5 s later, trading a window of loss on
    /// power failure for throughput.
    pub sync: bool,
    /// How long the writer waits for more requests to join a group commit.
    pub buffer_timeout: Duration,
    /// Most ops per group commit (a request is never split). 1 gives one
    /// commit per request, for benchmarks.
    pub max_batch: usize,
    /// How much of the stored messages recovery loads into memory; the rest stays on disk
    /// and queues read it back as they need it.
    pub load_limit: LoadLimit,
    /// Bytes of the file redb caches in memory.
    pub cache_size: usize,
}

impl JournalOptions {
    /// Durable defaults for `dir`: sync on, 1 ms buffer, 4096 ops per commit.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalOptions {
            dir: dir.into(),
            sync: true,
            buffer_timeout: Duration::from_millis(1),
            max_batch: 4096,
            load_limit: LoadLimit::UNLIMITED,
            cache_size: 64 << 20,
        }
    }
}

/// Handle to an open journal. Cheap to clone; every clone talks to the same
/// writer thread. The journal shuts down when the last handle is dropped.
///
/// A *replicated* handle ([`Journal::replicated`]) hands its writes to a [`Replicator`]
/// instead of the writer: the cluster, which commits them on a majority of nodes and applies
/// them to this journal through a plain handle. The broker holds whichever it was given and
/// cannot tell them apart, which is the point: it does not change for a cluster.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
    route: Option<Arc<dyn Replicator>>,
}

/// Where a replicated journal's writes go: something that makes them durable elsewhere
/// first (a raft log on a majority of nodes) and then applies them to this journal, in
/// submission order, telling each [`Done`] once applied. Defined here, implemented by the
/// cluster, so the journal knows nothing of raft.
pub trait Replicator: Send + Sync + 'static {
    /// Replicate `ops` atomically; tell `done` (if any) the outcome once they are applied.
    fn submit(&self, ops: Vec<JournalOp>, done: Option<Done>);
    /// Serve `read` once everything submitted before it is applied; false if it never will.
    fn read_page(&self, read: PageRead, reply: PageReply) -> bool;
}

/// Whoever waits for a replicated write: the same waiter a plain submit would have.
pub struct Done(writer::Waiter);

impl Done {
    /// Reports the outcome: `Ok` only once the ops are durable and applied.
    pub fn tell(self, result: Result<(), JournalError>) {
        self.0.tell(result)
    }
}

struct Inner {
    tx: Sender<Request>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Journal {
    /// Opens (creating if needed) the journal in `opts.dir`, reads everything
    /// back, and starts the writer thread.
    pub fn open(opts: JournalOptions) -> Result<(Journal, Recovered), JournalError> {
        Journal::open_on(opts, Storage::File)
    }

    /// [`Journal::open`] on a file behind a simulated power switch (the crash tests).
    #[cfg(test)]
    pub(crate) fn open_power_cut(
        opts: JournalOptions,
        cut: Arc<power_cut::PowerCut>,
    ) -> Result<(Journal, Recovered), JournalError> {
        Journal::open_on(opts, Storage::PowerCut(cut))
    }

    fn open_on(
        opts: JournalOptions,
        storage: Storage,
    ) -> Result<(Journal, Recovered), JournalError> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| JournalError::Directory {
            path: opts.dir.clone(),
            reason: e.to_string(),
        })?;
        let dir = opts
            .dir
            .canonicalize()
            .map_err(|e| JournalError::Directory {
                path: opts.dir.clone(),
                reason: e.to_string(),
            })?;
        let path = dir.join(FILE_NAME);
        let claim = PathClaim::take(&path)?;

        // Everything that can refuse the file runs before redb's read-write
        // open, which writes to it; see `open::precheck`.
        let mut pre = precheck(&path, opts.load_limit, opts.cache_size)?;
        if matches!(pre, open::Precheck::New) {
            open::create_atomically(&path, opts.cache_size, &storage)?;
            pre = precheck(&path, opts.load_limit, opts.cache_size)?;
        }
        let mut db = open_rw(&path, opts.cache_size, &storage)?;
        let recovered = guard_panic(&path, || {
            recover_after_open(&db, &path, pre, opts.load_limit)
        })?;
        open::clear_pages(&db, &path)?;
        writer::maybe_compact(&mut db, &path);

        let shared = Arc::new(Shared::new(path.clone(), opts.cache_size, storage));
        let max_id = recovered.next_message_id.saturating_sub(1);
        let w = Writer::new(
            db,
            Arc::clone(&shared),
            opts.sync,
            opts.buffer_timeout,
            opts.max_batch,
            max_id,
            writer::Incarnations::new(
                recovered
                    .queues
                    .iter()
                    .map(|q| (q.name.clone(), q.incarnation)),
            ),
        );
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("wrenmq-journal".into())
            .spawn(move || {
                w.run(rx);
                // Released only after the writer (and so the database) is
                // dropped, so a reopen cannot race the file lock.
                drop(claim);
            })
            .map_err(|e| JournalError::Open {
                path: path.clone(),
                reason: format!("cannot start writer thread: {e}"),
            })?;
        let journal = Journal {
            inner: Arc::new(Inner {
                tx,
                shared,
                thread: Mutex::new(Some(thread)),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
            route: None,
        };
        Ok((journal, recovered))
    }

    /// A handle on the same journal whose writes and page reads go through `replicator`
    /// (see [`Replicator`]); everything else (stats, paths, shutdown) is this journal's.
    pub fn replicated(&self, replicator: Arc<dyn Replicator>) -> Journal {
        Journal {
            inner: Arc::clone(&self.inner),
            route: Some(replicator),
        }
    }

    /// Reads everything back as [`Journal::open`] would, as of a commit of everything
    /// submitted before, without closing the file: a cluster node taking over as leader
    /// starts its broker from what the journal holds at that moment. Page rows are dropped,
    /// as at open.
    pub async fn recover_now(&self, limit: LoadLimit) -> Result<Recovered, JournalError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Request::Recover { limit, done: tx })
            .is_err()
        {
            return Err(self.shut_down());
        }
        rx.await.unwrap_or_else(|_| Err(self.shut_down()))
    }

    /// Queues `ops` to be committed atomically (with whatever else shares the
    /// group commit). Never blocks, so it may be called while holding a lock;
    /// await the returned [`Completion`] before acknowledging the client.
    pub fn submit(&self, ops: Vec<JournalOp>) -> Completion {
        if let Some(e) = self.refusal() {
            return Completion::ready(Err(e));
        }
        let (tx, rx) = oneshot::channel();
        if let Some(r) = &self.route {
            r.submit(ops, Some(Done(writer::Waiter::Channel(tx))));
            return Completion {
                state: CompletionState::Waiting(rx, self.inner.shared.path.clone()),
            };
        }
        match self.inner.tx.send(Request::Ops {
            ops,
            done: Some(writer::Waiter::Channel(tx)),
        }) {
            Ok(()) => Completion {
                state: CompletionState::Waiting(rx, self.inner.shared.path.clone()),
            },
            Err(_) => Completion::ready(Err(self.shut_down())),
        }
    }

    /// Queues `ops` with nobody waiting, for writes whose loss in a crash is
    /// harmless (acks lead to redelivery, delivery counts to a lower count).
    /// They are still committed in submission order relative to other
    /// submits from the same thread.
    pub fn submit_detached(&self, ops: Vec<JournalOp>) {
        if let Some(e) = self.refusal() {
            tracing::warn!(error = %e, "journal op dropped");
            return;
        }
        if let Some(r) = &self.route {
            return r.submit(ops, None);
        }
        if self
            .inner
            .tx
            .send(Request::Ops { ops, done: None })
            .is_err()
        {
            tracing::warn!(journal = %self.inner.shared.path.display(), "journal op dropped: journal shut down");
        }
    }

    /// Queues `ops` and has the writer thread call `then` with whether they were committed,
    /// right after the commit (or with `false` if they never will be). For a stream, which
    /// makes an offset visible only once its record is stored and must not need a task per
    /// append for that. `then` runs on the writer thread: keep it short and never block.
    pub fn submit_then(&self, ops: Vec<JournalOp>, then: Box<dyn FnOnce(bool) + Send>) {
        if let Some(e) = self.refusal() {
            tracing::warn!(error = %e, "journal op dropped");
            then(false);
            return;
        }
        if let Some(r) = &self.route {
            return r.submit(ops, Some(Done(writer::Waiter::Call(then))));
        }
        if let Err(mpsc::SendError(Request::Ops { done: Some(w), .. })) =
            self.inner.tx.send(Request::Ops {
                ops,
                done: Some(writer::Waiter::Call(then)),
            })
        {
            w.tell(Err(self.shut_down()));
        }
    }

    /// Reads some of a queue's paged messages back, after everything submitted before this
    /// call is committed, and calls `reply` with them on the writer thread (keep it short;
    /// never block in it). Never blocks the caller, and never calls `reply` on the caller's
    /// thread, so it may be called under a lock `reply` takes. Returns false (and drops
    /// `reply` uncalled) when the journal is shut down.
    pub fn read_page(&self, read: PageRead, reply: PageReply) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        if let Some(r) = &self.route {
            return r.read_page(read, reply);
        }
        self.inner
            .tx
            .send(Request::Read(PageReadRequest { read, reply }))
            .is_ok()
    }

    /// Copies the journal file to `to` as of a durable commit of everything submitted before
    /// this call, and syncs the copy; resolves with its size. The cluster's snapshot: a
    /// consistent image another node can open as its journal. The writer does nothing else
    /// while it copies, so this stalls commits for as long as the copy takes.
    pub async fn copy_to(&self, to: PathBuf) -> Result<u64, JournalError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Request::Copy { to, done: tx }).is_err() {
            return Err(self.shut_down());
        }
        rx.await.unwrap_or_else(|_| Err(self.shut_down()))
    }

    /// Commits everything queued so far, stops the writer thread and closes
    /// the file. Idempotent; later submits fail with
    /// [`JournalError::ShutDown`]. Blocks until the writer has finished.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Current size of the journal file in bytes, for metrics and tests.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.inner.shared.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Number of write transactions committed since open, so tests and
    /// metrics can see how well group commit is batching.
    pub fn commit_count(&self) -> u64 {
        self.inner.shared.commits.load(Ordering::Relaxed)
    }

    /// Group-commit times and sizes, for metrics.
    pub fn stats(&self) -> &JournalStats {
        &self.inner.shared.stats
    }

    /// Path of the journal file, for logs.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    fn refusal(&self) -> Option<JournalError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Some(self.shut_down());
        }
        self.inner.shared.failed_error()
    }

    fn shut_down(&self) -> JournalError {
        JournalError::ShutDown {
            path: self.inner.shared.path.clone(),
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let handle = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle {
            let _ = self.tx.send(Request::Shutdown);
            if h.join().is_err() {
                tracing::error!(journal = %self.shared.path.display(), "journal writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Resolves when a submitted batch is committed (durably, if `sync`), or with
/// the reason it was not. Exists so `submit` can return immediately while
/// async callers still wait for durability before acknowledging.
#[derive(Debug)]
#[must_use = "a Completion does nothing unless awaited; use submit_detached to not wait"]
pub struct Completion {
    state: CompletionState,
}

#[derive(Debug)]
enum CompletionState {
    Ready(Option<Result<(), JournalError>>),
    Waiting(oneshot::Receiver<Result<(), JournalError>>, PathBuf),
}

impl Completion {
    fn ready(r: Result<(), JournalError>) -> Self {
        Completion {
            state: CompletionState::Ready(Some(r)),
        }
    }

    /// Blocks the current thread until the batch is committed, for
    /// synchronous callers. Must not be called from inside an async task.
    pub fn wait(self) -> Result<(), JournalError> {
        match self.state {
            CompletionState::Ready(r) => r.unwrap_or(Ok(())),
            CompletionState::Waiting(rx, path) => rx
                .blocking_recv()
                .unwrap_or(Err(JournalError::ShutDown { path })),
        }
    }
}

impl Future for Completion {
    type Output = Result<(), JournalError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            // Polling again after completion is a caller bug; answering Ok
            // would be a silent ack, so it repeats nothing and reports done.
            CompletionState::Ready(r) => Poll::Ready(r.take().unwrap_or(Ok(()))),
            CompletionState::Waiting(rx, path) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| Err(JournalError::ShutDown { path: path.clone() }))),
        }
    }
}

#[cfg(test)]
mod full_disk_tests;
#[cfg(test)]
mod power_cut_tests;
#[cfg(test)]
mod tests;
