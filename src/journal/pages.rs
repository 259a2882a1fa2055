//! Reading a queue's paged messages back: the rows `JournalOp::PutPage` wrote, in page
//! order, or (right after a restart) the refs recovery left on disk.
//!
//! Runs on the writer thread between group commits, so a read sees every row submitted
//! before it, and the database needs no second owner.

use redb::ReadableDatabase;

use super::records::{PageEntryOwned, PageRow, PagedBody, StoredMessage, decode};
use super::tables::{MESSAGES, PAGED_MESSAGES, PAGES, REFS};

/// Which of a queue's paged messages to read back, and how many at most.
#[derive(Debug, Clone)]
pub struct PageRead {
    /// The queue.
    pub queue: std::sync::Arc<str>,
    /// Its incarnation: rows of an earlier life of the name are skipped.
    pub incarnation: u64,
    /// Where to read.
    pub from: PageFrom,
    /// Stop once the messages read hold this many bytes (at least one is read).
    pub max_bytes: u64,
    /// Stop after this many messages.
    pub max_messages: usize,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFrom {
    /// What recovery left on disk: the queue's refs with ids in `(after, upto]`.
    Tail {
        /// The last id already read.
        after: u64,
        /// The highest id of the tail.
        upto: u64,
    },
    /// Page rows with sequence numbers in `[from, before)`.
    Pages {
        /// The first sequence number to read.
        from: u64,
        /// Rows from here on are not known to be stored yet.
        before: u64,
    },
}

/// What a read found.
#[derive(Debug, Default)]
pub struct PageBatch {
    /// The messages, in page order.
    pub messages: Vec<PagedMessage>,
    /// Where the next read starts: the last id read (`Tail`), or the next sequence number
    /// (`Pages`). Rows found but skipped (acked, or of another incarnation) are passed too.
    pub resume: u64,
    /// The whole requested range was read.
    pub exhausted: bool,
}

/// One message read back.
#[derive(Debug)]
pub struct PagedMessage {
    /// The message.
    pub message: StoredMessage,
    /// How often it was delivered before.
    pub delivery_count: u32,
    /// Not to be offered before this time (a redelivery delay), 0 for none.
    pub deliver_at: u64,
    /// The journal keeps it (a ref on this queue): acknowledging it must delete the ref.
    pub journaled: bool,
    /// It was sent persistent.
    pub persistent: bool,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadFailure {
    #[error("{0}")]
    Db(#[from] redb::Error),
    #[error("damaged record: {0}")]
    Record(String),
}

macro_rules! via_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for ReadFailure {
            fn from(e: $t) -> Self {
                ReadFailure::Db(e.into())
            }
        }
    )*};
}
via_redb!(redb::StorageError, redb::TableError, redb::TransactionError);

/// Bytes a read-back message counts against [`PageRead::max_bytes`].
fn weight(m: &StoredMessage) -> u64 {
    (m.body.len()
        + m.properties
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
        + 64) as u64
}

/// Reads what `read` asks for.
pub(crate) fn read(db: &impl ReadableDatabase, read: &PageRead) -> Result<PageBatch, ReadFailure> {
    let txn = db.begin_read()?;
    let refs = txn.open_table(REFS)?;
    let messages = txn.open_table(MESSAGES)?;
    let q: &str = &read.queue;
    let mut out = PageBatch::default();
    let mut bytes = 0u64;
    let full = |out: &PageBatch, bytes: u64| {
        out.messages.len() >= read.max_messages.max(1) || bytes >= read.max_bytes
    };
    let stored = |id: u64| -> Result<Option<StoredMessage>, ReadFailure> {
        let Some(v) = messages.get(id)? else {
            return Ok(None);
        };
        decode(v.value())
            .map(Some)
            .map_err(|e| ReadFailure::Record(format!("message {id}: {e}")))
    };
    match read.from {
        PageFrom::Tail { after, upto } => {
            out.resume = after;
            out.exhausted = true;
            if after >= upto {
                return Ok(out);
            }
            for entry in refs.range((q, after + 1)..=(q, upto))? {
                if full(&out, bytes) {
                    out.exhausted = false;
                    break;
                }
                let (k, v) = entry?;
                let id = k.value().1;
                out.resume = id;
                let (delivery_count, deliver_at) = v.value();
                if let Some(message) = stored(id)? {
                    bytes += weight(&message);
                    out.messages.push(PagedMessage {
                        message,
                        delivery_count,
                        deliver_at,
                        journaled: true,
                        persistent: true,
                    });
                }
            }
        }
        PageFrom::Pages { from, before } => {
            let (pages, shared) = match (txn.open_table(PAGES), txn.open_table(PAGED_MESSAGES)) {
                (Ok(p), Ok(s)) => (p, s),
                (Err(redb::TableError::TableDoesNotExist(_)), _)
                | (_, Err(redb::TableError::TableDoesNotExist(_))) => {
                    out.resume = from;
                    out.exhausted = true;
                    return Ok(out);
                }
                (Err(e), _) | (_, Err(e)) => return Err(e.into()),
            };
            out.resume = from;
            out.exhausted = true;
            if from >= before {
                return Ok(out);
            }
            for entry in pages.range((q, from)..(q, before))? {
                if full(&out, bytes) {
                    out.exhausted = false;
                    break;
                }
                let (k, v) = entry?;
                let seq = k.value().1;
                out.resume = seq + 1;
                let row: PageRow = decode(v.value())
                    .map_err(|e| ReadFailure::Record(format!("page {seq} of {q:?}: {e}")))?;
                if row.incarnation != read.incarnation {
                    continue;
                }
                let paged = match row.entry {
                    PageEntryOwned::Shared(id) => {
                        let Some(v) = shared.get(id)? else {
                            continue;
                        };
                        let body: PagedBody = decode(v.value())
                            .map_err(|e| ReadFailure::Record(format!("paged message {id}: {e}")))?;
                        PagedMessage {
                            message: body.message,
                            delivery_count: 0,
                            deliver_at: 0,
                            journaled: false,
                            persistent: body.persistent,
                        }
                    }
                    PageEntryOwned::Journaled(id) => {
                        // Gone from the queue meanwhile (the queue was purged): skip it.
                        let Some(r) = refs.get((q, id))? else {
                            continue;
                        };
                        let (delivery_count, deliver_at) = r.value();
                        let Some(message) = stored(id)? else {
                            continue;
                        };
                        PagedMessage {
                            message,
                            delivery_count,
                            deliver_at,
                            journaled: true,
                            persistent: true,
                        }
                    }
                };
                bytes += weight(&paged.message);
                out.messages.push(paged);
            }
        }
    }
    Ok(out)
}
