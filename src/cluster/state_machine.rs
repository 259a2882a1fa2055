//! The raft state machine of one node: its journal.
//!
//! Applying an entry is submitting its batch to the node's [`Journal`], the same journal a
//! single broker writes, so every node ends up with the file the leader's broker would have
//! written alone. With each batch goes one more op, [`JournalOp::PutKeyValue`] under
//! [`APPLIED_KEY`], recording the entry's log id and the membership: it commits in the same
//! journal transaction as the batch, so after a crash the journal says exactly which entry it
//! holds last, and raft re-applies from the next one. No entry is applied twice (refcounts and
//! delivery counts would drift) and none is skipped.
//!
//! A snapshot is a copy of the journal file ([`Journal::copy_to`]): consistent because the
//! journal's writer makes it between two commits, and self-describing because the copy holds
//! its own applied marker, which is read back to name the snapshot. Building one runs beside
//! applies (openraft builds snapshots on a task of their own), and the marker is what keeps
//! the name true whatever was applied meanwhile. Installing one replaces the journal file and
//! opens it again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::snapshot_file::SnapshotFile;
use super::types::{LogId, Node, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::journal::{self, Journal, JournalOp, JournalOptions, Recovered};

/// The key under which each applied batch records its entry.
pub const APPLIED_KEY: &str = "cluster.applied";

/// The key under which a leader announces where it serves clients ([`ClientAddresses`]), so
/// a follower knows where to forward a client without asking anyone.
pub const CLIENTS_KEY: &str = "cluster.clients";

/// Where a leader serves clients: per acceptor name, the address a follower connects to.
/// Replicated like any write, so every node learns it in log order, and stale once another
/// node leads (a follower forwards only when `node` is the leader it knows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAddresses {
    /// The node that announced it.
    pub node: NodeId,
    /// Acceptor name and `host:port`, in the leader's config order.
    pub acceptors: Vec<(String, String)>,
}

impl ClientAddresses {
    /// The op that announces `self`.
    pub fn op(&self) -> Result<JournalOp, postcard::Error> {
        Ok(JournalOp::PutKeyValue {
            key: Arc::from(CLIENTS_KEY),
            value: Bytes::from(postcard::to_stdvec(self)?),
        })
    }

    /// The announcement in `ops` (the last, if several), if any.
    fn find(ops: &[JournalOp]) -> Option<ClientAddresses> {
        ops.iter().rev().find_map(|op| match op {
            JournalOp::PutKeyValue { key, value } if &**key == CLIENTS_KEY => {
                postcard::from_bytes(value).ok()
            }
            _ => None,
        })
    }

    fn from_key_values(kv: &[(String, Bytes)]) -> Option<ClientAddresses> {
        kv.iter()
            .find(|(k, _)| k == CLIENTS_KEY)
            .and_then(|(_, v)| postcard::from_bytes(v).ok())
    }
}

/// What [`APPLIED_KEY`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The node's journal, shared by the state machine and whoever reads it (the broker on the
/// leader). Behind a lock because installing a snapshot swaps it for a new handle.
#[derive(Clone)]
pub struct SharedJournal {
    inner: Arc<std::sync::Mutex<Journal>>,
}

impl SharedJournal {
    /// The current handle. Cheap: journal handles are clones of one writer.
    pub fn get(&self) -> Journal {
        match self.inner.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, j: Journal) {
        match self.inner.lock() {
            Ok(mut g) => *g = j,
            Err(p) => *p.into_inner() = j,
        }
    }
}

/// One node's state machine.
pub struct StateMachine {
    journal: SharedJournal,
    options: JournalOptions,
    applied: Applied,
    snapshots: Arc<SnapshotDir>,
    clients: tokio::sync::watch::Sender<Option<ClientAddresses>>,
}

/// A snapshot's meta and the file holding it.
type SnapshotAt = (SnapshotMeta<NodeId, Node>, PathBuf);

/// Where a node keeps snapshots: the last one built or installed, and files being received.
struct SnapshotDir {
    dir: PathBuf,
    /// The current snapshot and its meta, if any; replaced whole.
    current: Mutex<Option<SnapshotAt>>,
    /// Makes file names unique within a run.
    seq: AtomicU64,
}

impl StateMachine {
    /// Opens the node's journal with `options` (its `dir` is the node's journal directory)
    /// and reads which entry it applied last. `snapshot_dir` holds snapshot files. Returns
    /// the journal's recovered contents too, for the broker that will run on it.
    pub fn open(
        options: JournalOptions,
        snapshot_dir: &Path,
    ) -> Result<(StateMachine, Recovered), String> {
        let (journal, recovered) = Journal::open(options.clone()).map_err(|e| e.to_string())?;
        let applied = applied_from(&recovered.key_values)
            .map_err(|e| format!("{}: {e}", options.dir.display()))?;
        std::fs::create_dir_all(snapshot_dir)
            .map_err(|e| format!("{}: {e}", snapshot_dir.display()))?;
        remove_unfinished(snapshot_dir)?;
        let snapshots = SnapshotDir {
            dir: snapshot_dir.to_path_buf(),
            current: Mutex::new(None),
            seq: AtomicU64::new(0),
        };
        let current = snapshots.find_current()?;
        *snapshots.current.try_lock().map_err(|e| e.to_string())? = current;
        Ok((
            StateMachine {
                journal: SharedJournal {
                    inner: Arc::new(std::sync::Mutex::new(journal)),
                },
                options,
                applied,
                snapshots: Arc::new(snapshots),
                clients: tokio::sync::watch::Sender::new(ClientAddresses::from_key_values(
                    &recovered.key_values,
                )),
            },
            recovered,
        ))
    }

    /// The node's journal.
    pub fn journal(&self) -> SharedJournal {
        self.journal.clone()
    }

    /// The last leader's [`ClientAddresses`] this node has applied, as it changes.
    pub fn clients(&self) -> tokio::sync::watch::Receiver<Option<ClientAddresses>> {
        self.clients.subscribe()
    }

    fn marker(&self) -> Result<JournalOp, postcard::Error> {
        let value = postcard::to_stdvec(&self.applied)?;
        Ok(JournalOp::PutKeyValue {
            key: Arc::from(APPLIED_KEY),
            value: Bytes::from(value),
        })
    }
}

fn applied_from(kv: &[(String, Bytes)]) -> Result<Applied, String> {
    match kv.iter().find(|(k, _)| k == APPLIED_KEY) {
        None => Ok(Applied::default()),
        Some((_, v)) => {
            postcard::from_bytes(v).map_err(|e| format!("cannot read {APPLIED_KEY}: {e}"))
        }
    }
}

fn sm_error(verb: ErrorVerb, e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(e)).into()
}

fn snapshot_error(verb: ErrorVerb, reason: String) -> StorageError {
    StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::error(reason)).into()
}

impl SnapshotDir {
    fn next_path(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{what}-{}-{n}.redb", std::process::id()))
    }

    /// The snapshot a previous run left (`current.redb`), named by its own applied marker.
    fn find_current(&self) -> Result<Option<SnapshotAt>, String> {
        let path = self.dir.join("current.redb");
        if !path.exists() {
            return Ok(None);
        }
        let meta = meta_of(&path)?;
        Ok(Some((meta, path)))
    }

    /// Makes `file` the current snapshot, replacing the previous one atomically.
    async fn make_current(
        &self,
        meta: SnapshotMeta<NodeId, Node>,
        file: PathBuf,
    ) -> Result<PathBuf, String> {
        let path = self.dir.join("current.redb");
        let dir = self.dir.clone();
        let to = path.clone();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::rename(&file, &to).map_err(|e| format!("{}: {e}", to.display()))?;
            sync_dir(&dir)
        })
        .await
        .map_err(|e| e.to_string())??;
        *self.current.lock().await = Some((meta, path.clone()));
        Ok(path)
    }
}

/// Removes snapshot files a crashed run was building or receiving: never finished, never
/// named current, so nothing refers to them.
fn remove_unfinished(dir: &Path) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("building-") || name.starts_with("receiving-") {
            std::fs::remove_file(e.path())
                .map_err(|err| format!("{}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Names a snapshot file by the applied marker inside it.
fn meta_of(path: &Path) -> Result<SnapshotMeta<NodeId, Node>, String> {
    let kv = journal::read_key_values(path).map_err(|e| e.to_string())?;
    let applied = applied_from(&kv).map_err(|e| format!("{}: {e}", path.display()))?;
    let id = match applied.last_applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "empty".into(),
    };
    Ok(SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership,
        snapshot_id: id,
    })
}

/// Builds snapshots beside the state machine.
pub struct SnapshotBuilder {
    journal: Journal,
    snapshots: Arc<SnapshotDir>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let tmp = self.snapshots.next_path("building");
        self.journal
            .copy_to(tmp.clone())
            .await
            .map_err(|e| sm_error(ErrorVerb::Read, &e))?;
        let probe = tmp.clone();
        let meta = tokio::task::spawn_blocking(move || meta_of(&probe))
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Read, e.to_string()))?
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        let path = self
            .snapshots
            .make_current(meta.clone(), tmp)
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        let file = SnapshotFile::open(path.clone())
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Read, format!("{}: {e}", path.display())))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let journal = self.journal.get();
        let mut waits = Vec::new();
        let mut out = Vec::new();
        for entry in entries {
            self.applied.last_applied = Some(entry.log_id);
            let mut ops = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(batch) => {
                    if let Some(found) = ClientAddresses::find(&batch.ops) {
                        self.clients.send_replace(Some(found));
                    }
                    batch.ops
                }
                EntryPayload::Membership(m) => {
                    self.applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            ops.push(self.marker().map_err(|e| sm_error(ErrorVerb::Write, &e))?);
            // Submitted one after another and awaited together, so the journal's group
            // commit takes them in one transaction where it can.
            waits.push(journal.submit(ops));
            out.push(());
        }
        for w in waits {
            w.await.map_err(|e| sm_error(ErrorVerb::Write, &e))?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            journal: self.journal.get(),
            snapshots: Arc::clone(&self.snapshots),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let path = self.snapshots.next_path("receiving");
        let file = SnapshotFile::create(path.clone())
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Write, format!("{}: {e}", path.display())))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let fail = |e: String| snapshot_error(ErrorVerb::Write, e);
        let received = snapshot.finish().await.map_err(|e| fail(e.to_string()))?;
        let found = {
            let p = received.clone();
            tokio::task::spawn_blocking(move || meta_of(&p))
                .await
                .map_err(|e| fail(e.to_string()))?
                .map_err(fail)?
        };
        if found.last_log_id != meta.last_log_id {
            return Err(fail(format!(
                "received snapshot holds entry {:?}, the leader named {:?}",
                found.last_log_id, meta.last_log_id
            )));
        }
        let current = self
            .snapshots
            .make_current(meta.clone(), received)
            .await
            .map_err(fail)?;

        // Swap the journal for the snapshot: close it, copy the snapshot over its file
        // (through a temporary name and a rename, so a crash leaves one or the other), open.
        let old = self.journal.get();
        let options = self.options.clone();
        let journal_file = options.dir.join(journal::FILE_NAME);
        let (journal, recovered) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            old.shutdown();
            drop(old);
            let tmp = journal_file.with_extension("installing");
            std::fs::copy(&current, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &journal_file)
                .map_err(|e| format!("{}: {e}", journal_file.display()))?;
            sync_dir(&options.dir)?;
            Journal::open(options).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(fail)?;
        self.applied = applied_from(&recovered.key_values).map_err(fail)?;
        self.clients
            .send_replace(ClientAddresses::from_key_values(&recovered.key_values));
        self.journal.set(journal);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.snapshots.current.lock().await.clone();
        match current {
            None => Ok(None),
            Some((meta, path)) => {
                let file = SnapshotFile::open(path.clone()).await.map_err(|e| {
                    snapshot_error(ErrorVerb::Read, format!("{}: {e}", path.display()))
                })?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(file),
                }))
            }
        }
    }
}
