//! The raft log of one node, in its own redb file (`raft-log.redb`).
//!
//! Kept apart from the journal because the two are written differently: every append here
//! is synced before it is reported (a follower's vote for an entry, and the leader's count of
//! the majority, mean "on disk"), while the journal that applies the entries can commit
//! without syncing, since a crash only sends it back to an applied entry the log still holds.
//! One file per concern also keeps the journal's format free of raft's types.
//!
//! redb is synchronous, so every call runs on tokio's blocking pool: openraft drives this
//! store from its own task, which must not stall while a write syncs.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::types::{LogId, NodeId, StorageError, TypeConfig};

/// Entry index to postcard-encoded entry.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// The few values raft keeps beside its entries, postcard-encoded, under [`VOTE`],
/// [`COMMITTED`] and [`PURGED`].
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last-purged";

/// Name of the log file inside a node's data directory.
pub const FILE_NAME: &str = "raft-log.redb";

/// One node's raft log. Cheap to clone; clones share the database, which is how openraft's
/// replication tasks get their readers.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

impl LogStore {
    /// Opens (creating if needed) the log in `dir`. A file that is not a redb database is
    /// refused with the path and redb's reason.
    pub fn open(dir: &Path) -> Result<LogStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let store = LogStore {
            db: Arc::new(db),
            path: Arc::new(path),
        };
        store
            .write(Durability::Immediate, |txn| {
                txn.open_table(LOG)?;
                txn.open_table(STATE)?;
                Ok(())
            })
            .map_err(|e| format!("{}: {e}", store.path.display()))?;
        Ok(store)
    }

    /// Runs `f` in one write transaction and commits it with `durability`.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs blocking `f` on tokio's blocking pool with a clone of this store.
    async fn blocking<T: Send + 'static>(
        &self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
        f: impl FnOnce(&LogStore) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, StorageError> {
        let me = self.clone();
        let res = tokio::task::spawn_blocking(move || f(&me)).await;
        let err = |e: AnyError| StorageError::from(StorageIOError::new(subject.clone(), verb, e));
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(err(AnyError::new(&e))),
            Err(e) => Err(err(AnyError::error(format!("log store task failed: {e}")))),
        }
    }

    fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        match table.get(key)? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(v.value())
                .map(Some)
                .map_err(|e| corrupt(format!("raft state {key:?}: {e}"))),
        }
    }

    fn put_state<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), redb::Error> {
        let bytes = postcard::to_stdvec(value).map_err(|e| corrupt(e.to_string()))?;
        self.write(durability, |txn| {
            txn.open_table(STATE)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        match table.last()? {
            None => Ok(None),
            Some((_, v)) => {
                let e: openraft::Entry<TypeConfig> = decode_entry(v.value())?;
                Ok(Some(e.log_id))
            }
        }
    }

    fn entries(
        &self,
        range: (Bound<u64>, Bound<u64>),
    ) -> Result<Vec<openraft::Entry<TypeConfig>>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let mut out = Vec::new();
        for item in table.range::<u64>(range)? {
            let (_, v) = item?;
            out.push(decode_entry(v.value())?);
        }
        Ok(out)
    }
}

fn decode_entry(bytes: &[u8]) -> Result<openraft::Entry<TypeConfig>, redb::Error> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(format!("raft log entry: {e}")))
}

/// A damaged or undecodable value, reported through redb's error type so every failure of
/// this store takes one path to openraft (which stops the node: it must not go on with a log
/// it cannot read).
fn corrupt(reason: String) -> redb::Error {
    redb::Error::Corrupted(reason)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<openraft::Entry<TypeConfig>>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.blocking(ErrorSubject::Logs, ErrorVerb::Read, move |s| {
            s.entries(range)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.blocking(ErrorSubject::Logs, ErrorVerb::Read, |s| {
            let last_purged_log_id: Option<LogId> = s.get_state(PURGED)?;
            let last_log_id = s.last_entry_id()?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let vote = *vote;
        self.blocking(ErrorSubject::Vote, ErrorVerb::Write, move |s| {
            s.put_state(VOTE, &vote, Durability::Immediate)
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.blocking(ErrorSubject::Vote, ErrorVerb::Read, |s| s.get_state(VOTE))
            .await
    }

    // Not synced: a committed index lost in a crash is learnt again from the leader, and
    // knowing it only lets a restart re-apply sooner.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.blocking(ErrorSubject::Store, ErrorVerb::Write, move |s| {
            s.put_state(COMMITTED, &committed, Durability::None)
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.blocking(ErrorSubject::Store, ErrorVerb::Read, |s| {
            Ok(s.get_state::<Option<LogId>>(COMMITTED)?.flatten())
        })
        .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for e in entries {
            match postcard::to_stdvec(&e) {
                Ok(b) => encoded.push((e.log_id.index, b)),
                Err(err) => {
                    let io =
                        std::io::Error::other(format!("cannot encode entry {}: {err}", e.log_id));
                    callback.log_io_completed(Err(std::io::Error::other(io.to_string())));
                    return Err(StorageIOError::write_logs(AnyError::new(&io)).into());
                }
            }
        }
        let res = self
            .blocking(ErrorSubject::Logs, ErrorVerb::Write, move |s| {
                s.write(Durability::Immediate, |txn| {
                    let mut log = txn.open_table(LOG)?;
                    for (index, bytes) in &encoded {
                        log.insert(*index, bytes.as_slice())?;
                    }
                    Ok(())
                })
            })
            .await;
        // Reported only after the sync: raft counts this node's copy from here on.
        match &res {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        res
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(ErrorSubject::Logs, ErrorVerb::Delete, move |s| {
            s.write(Durability::Immediate, |txn| {
                txn.open_table(LOG)?
                    .retain_in(log_id.index.., |_, _| false)?;
                Ok(())
            })
        })
        .await
    }

    // Not synced: entries that come back after a crash are below the purge point again and
    // are purged again; nothing depends on their absence.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(ErrorSubject::Logs, ErrorVerb::Delete, move |s| {
            let bytes = postcard::to_stdvec(&log_id).map_err(|e| corrupt(e.to_string()))?;
            s.write(Durability::None, |txn| {
                txn.open_table(LOG)?
                    .retain_in(..=log_id.index, |_, _| false)?;
                txn.open_table(STATE)?.insert(PURGED, bytes.as_slice())?;
                Ok(())
            })
        })
        .await
    }
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.path)
            .finish()
    }
}
