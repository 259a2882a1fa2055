//! Reading the whole journal back at open.
//!
//! Runs before the writer thread starts, so it sees a quiescent file and
//! needs no coordination with writes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableError};

use super::error::JournalError;
use super::records::{AddressRecord, QueueRecord, StoredMessage, decode};
use super::tables::{
    ADDRESSES, CONSUMER_OFFSETS, DUPLICATE_IDS, FORMAT_VERSION_KEY, KEY_VALUES, MAX_MESSAGE_ID_KEY,
    MESSAGES, META, QUEUES, REFCOUNTS, REFS, STREAM_BASES, STREAM_OFFSETS,
};

/// Everything durable, handed to the broker once at open so it can rebuild
/// its address model and queues before accepting connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Every persisted address, in name order.
    pub addresses: Vec<AddressRecord>,
    /// Every persisted queue, in name order.
    pub queues: Vec<QueueRecord>,
    /// One entry per queue that holds at least one message, in queue-name order.
    pub messages: Vec<RecoveredQueue>,
    /// The first id the broker may assign; above every id ever stored, so ids
    /// are never reused even after all messages were acked.
    pub next_message_id: u64,
    /// Every address's persisted duplicate-id cache, in address-name order,
    /// so a producer's retry after a restart is still recognised.
    pub duplicate_ids: Vec<RecoveredIdCache>,
    /// What the journal knows of each retained stream (offsets, where retention cut it,
    /// stored consumer offsets), in queue-name order; the messages are in
    /// [`Recovered::messages`] as for any queue.
    pub streams: Vec<RecoveredStream>,
    /// What [`super::JournalOp::PutKeyValue`] stored, in key order.
    pub key_values: Vec<(String, Bytes)>,
}

/// The offsets of one retained stream, so the broker gives every message back the offset
/// consumers saw, and named consumers their stored positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveredStream {
    /// The queue name.
    pub queue: String,
    /// The first offset retention kept (0 if it never cut).
    pub base: u64,
    /// `(offset, message_id)` in offset order. An offset whose message is gone (it was not
    /// persistent) still counts: it is never handed out again.
    pub offsets: Vec<(u64, u64)>,
    /// `(consumer name, highest offset acknowledged)` in name order.
    pub consumers: Vec<(String, u64)>,
}

/// One address's duplicate-id cache as stored, so the broker can rebuild its
/// ring (and its next write position) exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredIdCache {
    /// The address the cache belongs to.
    pub address: String,
    /// `(slot, id)` pairs in ascending slot order; slots never written are
    /// absent.
    pub ids: Vec<(u32, Bytes)>,
}

/// The messages of one queue, so the broker can refill it in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredQueue {
    /// The queue name (matches a [`QueueRecord::name`]).
    pub queue: String,
    /// The queue's messages in ascending message id order.
    pub refs: Vec<RecoveredRef>,
    /// The rest of the queue, left on disk because loading it would pass the
    /// [`LoadLimit`]: the queue reads it back as consumers need it.
    pub tail: Option<RecoveredTail>,
}

/// The refs of a queue that recovery left on disk: ids in `(after, upto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredTail {
    /// The last id loaded (0 if none was).
    pub after: u64,
    /// The highest id left on disk.
    pub upto: u64,
    /// How many refs are left on disk.
    pub count: u64,
}

/// How much of the messages recovery loads into memory, so a restart with a backlog larger
/// than memory does not load it all: per queue and in all. Queues of retained streams are
/// always loaded whole (their offsets index them in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimit {
    /// Most bytes of messages loaded for one queue.
    pub per_queue: u64,
    /// Most bytes of messages loaded in all.
    pub total: u64,
}

impl LoadLimit {
    /// Load everything.
    pub const UNLIMITED: LoadLimit = LoadLimit {
        per_queue: u64::MAX,
        total: u64::MAX,
    };
}

impl Default for LoadLimit {
    fn default() -> Self {
        LoadLimit::UNLIMITED
    }
}

/// One message on one queue, with its redelivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredRef {
    /// The message; the same `Arc` when the message is on several queues, so
    /// the broker keeps a single copy in memory as it did before the restart.
    pub message: Arc<StoredMessage>,
    /// How many times it had been delivered.
    pub delivery_count: u32,
    /// Milliseconds since the epoch before which the ref must not be offered
    /// again (a redelivery delay that was running at shutdown); 0 for none.
    /// Separate from [`StoredMessage::deliver_at`], which the producer set
    /// for the message on every queue.
    pub deliver_at: u64,
}

/// What the meta table says about the file's layout.
#[derive(Debug, Clone)]
pub(crate) enum VersionState {
    /// No table at all: a new (or never committed) database.
    Fresh,
    /// The recorded format version.
    Version(u64),
    /// Tables exist but no version record: not written by this journal.
    Missing,
}

/// Reads the format version without changing anything.
pub(crate) fn format_version(txn: &ReadTransaction) -> Result<VersionState, redb::Error> {
    match txn.open_table(META) {
        Ok(meta) => Ok(match meta.get(FORMAT_VERSION_KEY)? {
            Some(v) => VersionState::Version(v.value()),
            None => VersionState::Missing,
        }),
        Err(TableError::TableDoesNotExist(_)) => {
            if txn.list_tables()?.next().is_some() {
                Ok(VersionState::Missing)
            } else {
                Ok(VersionState::Fresh)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Loads every record, verifying each message, queue and address record's
/// (and each duplicate id's) checksum: the first damaged one fails the whole recovery with
/// [`JournalError::Corrupt`] naming it (e.g. "message 12: checksum
/// mismatch …"), because delivering a damaged body as intact, or silently
/// dropping a message a producer was told is stored, are both worse than
/// refusing to start. Reads only, so the caller decides what may be written.
///
/// Dangling refs (to a message that is not stored) are
/// skipped with a warning rather than failing the start-up, because the
/// broker can run without them and refusing to start would lose the rest.
pub(crate) fn recover(
    db: &impl ReadableDatabase,
    path: &Path,
    limit: LoadLimit,
) -> Result<Recovered, JournalError> {
    let storage = |e: redb::Error| JournalError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let corrupt = |what: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        reason: what,
    };
    let txn = db.begin_read().map_err(|e| storage(e.into()))?;
    let mut out = Recovered::default();

    let addresses = txn.open_table(ADDRESSES).map_err(|e| storage(e.into()))?;
    for entry in addresses.iter().map_err(|e| storage(e.into()))? {
        let (k, v) = entry.map_err(|e| storage(e.into()))?;
        let rec: AddressRecord = decode(v.value())
            .map_err(|e| corrupt(format!("address record {:?}: {e}", k.value())))?;
        if rec.name != k.value() {
            return Err(corrupt(format!(
                "address record stored under key {:?} is named {:?}",
                k.value(),
                rec.name
            )));
        }
        out.addresses.push(rec);
    }

    let queues = txn.open_table(QUEUES).map_err(|e| storage(e.into()))?;
    for entry in queues.iter().map_err(|e| storage(e.into()))? {
        let (k, v) = entry.map_err(|e| storage(e.into()))?;
        let rec: QueueRecord =
            decode(v.value()).map_err(|e| corrupt(format!("queue record {:?}: {e}", k.value())))?;
        if rec.name != k.value() {
            return Err(corrupt(format!(
                "queue record stored under key {:?} is named {:?}",
                k.value(),
                rec.name
            )));
        }
        out.queues.push(rec);
    }

    // Streams are loaded whole, whatever the limit: their offsets index them in memory.
    read_streams(&txn, &mut out.streams).map_err(storage)?;
    let streams: std::collections::HashSet<&str> =
        out.streams.iter().map(|s| s.queue.as_str()).collect();

    let mut messages: HashMap<u64, Arc<StoredMessage>> = HashMap::new();
    let table = txn.open_table(MESSAGES).map_err(|e| storage(e.into()))?;
    let mut max_id = match table.last().map_err(|e| storage(e.into()))? {
        Some((k, _)) => k.value(),
        None => 0,
    };
    let mut load = |id: u64| -> Result<Option<Arc<StoredMessage>>, JournalError> {
        if let Some(m) = messages.get(&id) {
            return Ok(Some(Arc::clone(m)));
        }
        let Some(v) = table.get(id).map_err(|e| storage(e.into()))? else {
            return Ok(None);
        };
        let msg: StoredMessage =
            decode(v.value()).map_err(|e| corrupt(format!("message {id}: {e}")))?;
        if msg.id != id {
            return Err(corrupt(format!(
                "message stored under key {id} has id {}",
                msg.id
            )));
        }
        let msg = Arc::new(msg);
        messages.insert(id, Arc::clone(&msg));
        Ok(Some(msg))
    };

    let mut total = 0u64;
    let mut queue_bytes = 0u64;
    let refs = txn.open_table(REFS).map_err(|e| storage(e.into()))?;
    for entry in refs.iter().map_err(|e| storage(e.into()))? {
        let (k, v) = entry.map_err(|e| storage(e.into()))?;
        let (queue, id) = k.value();
        let same = out.messages.last().is_some_and(|q| q.queue == queue);
        if !same {
            queue_bytes = 0;
            out.messages.push(RecoveredQueue {
                queue: queue.to_string(),
                refs: Vec::new(),
                tail: None,
            });
        }
        let Some(q) = out.messages.last_mut() else {
            continue;
        };
        let over = queue_bytes >= limit.per_queue || total >= limit.total;
        if q.tail.is_some() || (over && !streams.contains(queue)) {
            let after = q.refs.last().map_or(0, |r| r.message.id);
            let tail = q.tail.get_or_insert(RecoveredTail {
                after,
                upto: id,
                count: 0,
            });
            tail.upto = id;
            tail.count += 1;
            continue;
        }
        let Some(message) = load(id)? else {
            tracing::warn!(journal = %path.display(), queue, id, "skipping ref to a message that is not stored");
            continue;
        };
        let (delivery_count, deliver_at) = v.value();
        let size = message.body.len() as u64 + 64;
        queue_bytes += size;
        total += size;
        q.refs.push(RecoveredRef {
            message,
            delivery_count,
            deliver_at,
        });
    }
    out.messages
        .retain(|q| !q.refs.is_empty() || q.tail.is_some());

    let dups = txn
        .open_table(DUPLICATE_IDS)
        .map_err(|e| storage(e.into()))?;
    for entry in dups.iter().map_err(|e| storage(e.into()))? {
        let (k, v) = entry.map_err(|e| storage(e.into()))?;
        let (address, slot) = k.value();
        let id: Bytes = decode(v.value())
            .map_err(|e| corrupt(format!("duplicate id {slot} of address {address:?}: {e}")))?;
        match out.duplicate_ids.last_mut() {
            Some(c) if c.address == address => c.ids.push((slot, id)),
            _ => out.duplicate_ids.push(RecoveredIdCache {
                address: address.to_string(),
                ids: vec![(slot, id)],
            }),
        }
    }

    out.key_values = read_key_values(&txn).map_err(storage)?;

    let meta = txn.open_table(META).map_err(|e| storage(e.into()))?;
    if let Some(v) = meta
        .get(MAX_MESSAGE_ID_KEY)
        .map_err(|e| storage(e.into()))?
    {
        max_id = max_id.max(v.value());
    }
    out.next_message_id = max_id.saturating_add(1);
    Ok(out)
}

/// Every [`super::JournalOp::PutKeyValue`] value of the database, in key order.
pub(crate) fn key_values(db: &impl ReadableDatabase) -> Result<Vec<(String, Bytes)>, redb::Error> {
    read_key_values(&db.begin_read()?)
}

fn read_key_values(txn: &ReadTransaction) -> Result<Vec<(String, Bytes)>, redb::Error> {
    let mut out = Vec::new();
    match txn.open_table(KEY_VALUES) {
        Ok(kv) => {
            for entry in kv.iter()? {
                let (k, v) = entry?;
                out.push((k.value().to_string(), Bytes::copy_from_slice(v.value())));
            }
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

/// Reads the three stream tables into one [`RecoveredStream`] per queue.
fn read_streams(txn: &ReadTransaction, out: &mut Vec<RecoveredStream>) -> Result<(), redb::Error> {
    let mut by_queue: std::collections::BTreeMap<String, RecoveredStream> = Default::default();
    fn get<'m>(
        m: &'m mut std::collections::BTreeMap<String, RecoveredStream>,
        q: &str,
    ) -> &'m mut RecoveredStream {
        m.entry(q.to_string()).or_insert_with(|| RecoveredStream {
            queue: q.to_string(),
            ..Default::default()
        })
    }
    for entry in txn.open_table(STREAM_OFFSETS)?.iter()? {
        let (k, v) = entry?;
        let (q, offset) = k.value();
        get(&mut by_queue, q).offsets.push((offset, v.value()));
    }
    for entry in txn.open_table(STREAM_BASES)?.iter()? {
        let (k, v) = entry?;
        get(&mut by_queue, k.value()).base = v.value();
    }
    for entry in txn.open_table(CONSUMER_OFFSETS)?.iter()? {
        let (k, v) = entry?;
        let (q, name) = k.value();
        get(&mut by_queue, q)
            .consumers
            .push((name.to_string(), v.value()));
    }
    out.extend(by_queue.into_values());
    Ok(())
}

/// Cheap summary of a file's content (table lengths and the id high-water
/// mark), so [`super::Journal::open`] can confirm that the file it opened
/// read-write is the one it recovered read-only a moment earlier, without
/// reading everything twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    lens: [u64; 9],
    max_message_id: Option<u64>,
}

/// Reads the [`Fingerprint`] of `db`; `None` when it cannot be read (the
/// caller then recovers again rather than trust an earlier read).
pub(crate) fn fingerprint(db: &impl ReadableDatabase) -> Option<Fingerprint> {
    let txn = db.begin_read().ok()?;
    let len = |t: Result<u64, redb::StorageError>| t.ok();
    Some(Fingerprint {
        lens: [
            len(txn.open_table(MESSAGES).ok()?.len())?,
            len(txn.open_table(REFS).ok()?.len())?,
            len(txn.open_table(REFCOUNTS).ok()?.len())?,
            len(txn.open_table(QUEUES).ok()?.len())?,
            len(txn.open_table(ADDRESSES).ok()?.len())?,
            len(txn.open_table(DUPLICATE_IDS).ok()?.len())?,
            len(txn.open_table(STREAM_OFFSETS).ok()?.len())?,
            len(txn.open_table(STREAM_BASES).ok()?.len())?,
            len(txn.open_table(CONSUMER_OFFSETS).ok()?.len())?,
        ],
        max_message_id: txn
            .open_table(META)
            .ok()?
            .get(MAX_MESSAGE_ID_KEY)
            .ok()?
            .map(|v| v.value()),
    })
}
