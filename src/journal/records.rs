//! The plain-data records the broker hands to the journal, and their encoding.
//!
//! Records are encoded with [`postcard`]: a maintained, compact, serde-based
//! binary format with a documented, stable wire specification (1.x). It was
//! picked over `bincode` because bincode 2's serde support is an optional
//! side-API and its 1.x line is no longer developed, while postcard's
//! varint encoding keeps small headers and ids small on disk. Postcard is not
//! self-describing, so any change to these structs must bump
//! [`super::FORMAT_VERSION`]; the journal refuses files of another version
//! instead of misreading them.
//!
//! # Record checksums
//!
//! Every stored message, queue and address record, and every duplicate-id
//! cache entry, is framed as
//!
//! ```text
//! [crc32 of the postcard bytes, 4 bytes little-endian][postcard bytes]
//! ```
//!
//! redb verifies its page checksums only in `check_integrity` (a full scan
//! that may write), never on a normal read, so without this a flipped byte in
//! a message body would be recovered and delivered as if intact. The frame is
//! a plain prefix rather than a postcard struct with a `crc` field so the
//! checksum covers exactly the bytes postcard will decode, and is checked
//! before postcard sees them. CRC32 detects every single-bit error, every
//! burst up to 32 bits and all but ~2^-32 of other random damage, which is
//! what a storage checksum is for; it is not a defence against deliberate
//! tampering. A duplicate id is checksummed too although it is tiny: a
//! damaged id could match a later send and make the broker drop a message as
//! a duplicate. Refs (delivery count and redelivery time), refcounts and meta
//! are fixed-width integers in redb's own key/value encoding and carry no
//! checksum.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A message as it must survive a restart. Exists so the journal can persist
/// messages without depending on the broker's or STOMP's in-memory types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Broker-assigned id, unique for the life of the journal; refs and
    /// recovery order are keyed on it.
    pub id: u64,
    /// The address the message was routed through.
    pub address: String,
    /// The destination exactly as the producer wrote it, so redelivery after a
    /// restart shows the same `destination` header.
    pub destination: String,
    /// All headers in their original order (STOMP allows repeats).
    pub properties: Vec<(String, String)>,
    /// The message body.
    pub body: Bytes,
    /// Delivery priority.
    pub priority: u8,
    /// Expiry in milliseconds since the epoch; 0 means never.
    pub expires: u64,
    /// When the broker accepted the message, in milliseconds since the epoch.
    pub timestamp: u64,
    /// Milliseconds since the epoch before which the message must not be
    /// delivered (scheduled delivery, `AMQ_SCHEDULED_TIME` /
    /// `AMQ_SCHEDULED_DELAY`); 0 means at once. Part of the message rather
    /// than of each ref because the producer schedules the message itself, on
    /// every queue it reaches, and a scheduled message must stay invisible
    /// after a restart.
    pub deliver_at: u64,
    /// The file holding the body when it was too large to keep in memory (then `body` is
    /// empty). The file lives in the broker's large-message directory; the journal only
    /// names it.
    pub large: Option<LargeFile>,
}

/// A message body kept in a file of its own, as a stored message names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeFile {
    /// The file's name inside the large-message directory (no path).
    pub name: String,
    /// Its length in bytes, checked at recovery.
    pub len: u64,
}

/// What a queue paged to disk: a message the journal stores anyway (persistent, on a durable
/// queue: its `messages` row and `refs` entry already are the page), or a copy of one that
/// would otherwise live in memory only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageEntry {
    /// The message id; read back from `messages` and `refs`.
    Journaled(u64),
    /// The whole message, gone after a restart like the message itself.
    Transient {
        /// The message.
        message: Arc<StoredMessage>,
        /// Whether it was sent persistent (it is still not kept across a restart when its
        /// queue is not durable).
        persistent: bool,
    },
}

/// A page row as stored: the queue incarnation it was written for, then the entry.
#[derive(Serialize)]
pub(crate) struct PageRowRef {
    pub(crate) incarnation: u64,
    pub(crate) entry: PageEntryRef,
}

/// A page row's entry as stored: a message the journal keeps anyway, or one kept in the
/// `paged_messages` table, stored once however many queues page it.
#[derive(Serialize)]
pub(crate) enum PageEntryRef {
    Journaled(u64),
    Shared(u64),
}

/// A `paged_messages` row: a message that would otherwise live in memory only, with whether
/// it was sent persistent.
#[derive(Serialize)]
pub(crate) struct PagedBodyRef<'a> {
    pub(crate) persistent: bool,
    pub(crate) message: &'a StoredMessage,
}

/// [`PagedBodyRef`] as decoded.
#[derive(Deserialize)]
pub(crate) struct PagedBody {
    pub(crate) persistent: bool,
    pub(crate) message: StoredMessage,
}

/// A page row as read back (same encoding as [`PageRowRef`]).
#[derive(Deserialize)]
pub(crate) struct PageRow {
    pub(crate) incarnation: u64,
    pub(crate) entry: PageEntryOwned,
}

/// [`PageEntry`] as decoded.
#[derive(Deserialize)]
pub(crate) enum PageEntryOwned {
    Journaled(u64),
    Shared(u64),
}

/// Routing semantics of a queue, owned by the journal so it does not depend
/// on the broker's address-model types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoutingKind {
    /// Point-to-point: one consumer of the queue gets each message.
    Anycast,
    /// Publish-subscribe: each subscription queue gets a copy.
    Multicast,
}

/// A queue definition that must be recreated at restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// Queue name; the key of the record and of its refs.
    pub name: String,
    /// The address that owns the queue.
    pub address: String,
    /// How the owning address routes into this queue.
    pub routing_type: RoutingKind,
    /// Optional selector applied when routing.
    pub filter: Option<String>,
    /// Whether the broker created it on demand (and may delete it when unused).
    pub auto_created: bool,
    /// `"clientid.subname"` for a durable topic subscription's queue.
    pub durable_subscription: Option<String>,
    /// Which life of the queue this is: a queue deleted and created again under the same name
    /// gets a higher number, so a ref written for its earlier life is never applied to the new
    /// one (see `writer`'s module docs).
    pub incarnation: u64,
    /// Who a durable subscription belongs to, so only that user may use it after a restart.
    pub owner: Option<OwnerRecord>,
}

/// The owner of a durable subscription, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The user name; `None` for an anonymous connection.
    pub user: Option<String>,
    /// The client-id of the connection that created it.
    pub client_id: Option<String>,
}

/// An address definition that must be recreated at restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    /// Address name; the key of the record.
    pub name: String,
    /// Whether the address supports anycast routing.
    pub anycast: bool,
    /// Whether the address supports multicast routing.
    pub multicast: bool,
    /// Whether the broker created it on demand.
    pub auto_created: bool,
}

/// One change to durable state. The broker expresses everything it persists
/// as a sequence of these, so the journal stays ignorant of broker logic.
///
/// Serializable so a cluster can carry a group-commit batch of them in one raft entry and
/// apply the same ops on every node (`cluster`); the journal itself stores tables, not ops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalOp {
    /// Create or replace an address.
    PutAddress(AddressRecord),
    /// Delete an address by name.
    DeleteAddress(String),
    /// Create or replace a queue.
    PutQueue(QueueRecord),
    /// Delete a queue by name, together with all its refs (and any message
    /// left without refs).
    DeleteQueue(String),
    /// Store a message body. It must be referenced by a `PutRef` in the same
    /// submitted batch, or it is dropped at the end of that batch.
    PutMessage(Arc<StoredMessage>),
    /// Place a stored message on a queue.
    PutRef {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation the ref was made for.
        incarnation: u64,
        /// The message.
        message_id: u64,
    },
    /// Remove a message from a queue (an ack). The message record goes when
    /// its last ref goes. May arrive before its `PutRef`; see the module docs.
    DeleteRef {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation the ack was made in.
        incarnation: u64,
        /// The message.
        message_id: u64,
    },
    /// Persist a delivery count for redelivery after restart; ignored if the
    /// ref no longer exists.
    SetDeliveryCount {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation the delivery was made in.
        incarnation: u64,
        /// The message.
        message_id: u64,
        /// The new count.
        count: u32,
    },
    /// Persist the time before which a ref must not be offered again (a
    /// NACKed or returned message waiting out its `redelivery-delay`), so the
    /// wait survives a restart instead of turning into an immediate
    /// redelivery. Stored beside the ref's delivery count and applied the
    /// same way: only to the named incarnation, kept in memory while its
    /// `PutRef` is still on the way, ignored once the ref is gone.
    SetDeliverAt {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation the return was made in.
        incarnation: u64,
        /// The message.
        message_id: u64,
        /// Milliseconds since the epoch; 0 clears the wait.
        at: u64,
    },
    /// Store one id of an address's duplicate-detection cache (Artemis's
    /// `_AMQ_DUPL_ID`), so a producer retrying after a restart is still
    /// recognised. The broker keeps the cache as a ring of `id-cache-size`
    /// slots and names the slot, so this overwrites whatever id was there and
    /// the stored cache never outgrows the ring. Not tied to any queue or
    /// incarnation; submit it in the same batch as the message's `PutMessage`
    /// and `PutRef` so the id and the message are stored atomically.
    PutDuplicateId {
        /// The address whose cache it belongs to.
        address: Arc<str>,
        /// Position in the address's ring.
        slot: u32,
        /// The id exactly as the producer sent it.
        id: Bytes,
    },
    /// Give a message on a retained stream (a non-destructive queue) its offset. Submitted
    /// when the message is appended, in offset order (under the stream's lock), and the
    /// stream shows an offset to consumers only once this record is committed; see
    /// `docs/architecture.md` for why that keeps offsets stable across a crash. A message
    /// that is not persistent gets none: its offset comes from a block the stream reserved
    /// with [`JournalOp::ReserveStreamOffsets`].
    PutStreamOffset {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation.
        incarnation: u64,
        /// The offset, dense per queue from 0.
        offset: u64,
        /// The message at that offset.
        message_id: u64,
    },
    /// A stream reserves the offsets below `upto` for messages that are not persistent:
    /// they are not written one by one, yet no offset a consumer saw may be handed out
    /// again after a crash, so recovery counts on from `upto`. Stored as an offset row
    /// naming message [`RESERVED_OFFSET`] (no message), so it is dropped with its segment.
    ReserveStreamOffsets {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation.
        incarnation: u64,
        /// Offsets below this are reserved.
        upto: u64,
    },
    /// Retention dropped a stream's oldest segments: every offset below `below` goes, with
    /// the refs (and messages left without refs) they name. One record whatever the number
    /// of messages, and it remembers `below` so offsets are not reused after a restart.
    DropStreamSegments {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation.
        incarnation: u64,
        /// The first offset kept.
        below: u64,
    },
    /// A named stream consumer acknowledged up to `offset` (server-side offset tracking):
    /// it resumes after it when it subscribes again.
    PutConsumerOffset {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation.
        incarnation: u64,
        /// The consumer's name (`client-id.subscription-name`).
        consumer: Arc<str>,
        /// The highest offset it acknowledged.
        offset: u64,
    },
    /// Page one message of a queue to disk: the queue holds nothing of it in memory until it
    /// reads it back ([`super::Journal::read_page`]) in `seq` order.
    PutPage {
        /// The queue.
        queue: Arc<str>,
        /// The queue's incarnation.
        incarnation: u64,
        /// The queue's page sequence number: pages are read back in this order.
        seq: u64,
        /// What was paged.
        entry: PageEntry,
    },
    /// Forget a queue's page rows below `below` (read back, or the queue went).
    DeletePages {
        /// The queue.
        queue: Arc<str>,
        /// Rows with a lower sequence number go; `u64::MAX` for all.
        below: u64,
    },
    /// Drop an address's whole duplicate-id cache (the address was deleted,
    /// or its cache was switched off), so ids of a gone address are not kept
    /// or recovered forever.
    DeleteDuplicateIds {
        /// The address.
        address: Arc<str>,
    },
    /// Store a value for a layer above the journal, atomically with the other ops of its
    /// batch, and give it back in [`super::Recovered::key_values`]. The cluster keeps its last
    /// applied raft entry here, so a restart re-applies exactly the entries after it: never
    /// one twice, never one missed, whether or not the commit that applied them was synced.
    PutKeyValue {
        /// The key; the journal gives it no meaning.
        key: Arc<str>,
        /// The value.
        value: Bytes,
    },
}

/// The message id an offset row names when it only marks reserved offsets
/// ([`JournalOp::ReserveStreamOffsets`]); broker message ids start at 1.
pub const RESERVED_OFFSET: u64 = 0;

/// Bytes of the checksum prefix in front of every encoded record.
const CRC_LEN: usize = 4;

/// Encodes a record for a table value: the CRC32 of the postcard bytes,
/// then the bytes (see the module docs). One allocation, one pass of
/// `crc32fast`, which uses SIMD (PCLMULQDQ / ARMv8 CRC) where available.
///
/// `crc32fast` is the maintained, dependency-light (only `cfg-if`) CRC32
/// implementation the Rust ecosystem standardised on (it backs `flate2`
/// and `zip`); a hand-rolled table-driven CRC would be several times slower
/// on large bodies and one more thing to get wrong.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut out = postcard::to_extend(value, vec![0u8; CRC_LEN])?;
    let crc = crc32fast::hash(&out[CRC_LEN..]);
    out[..CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Why a stored record could not be read back. Every case means the file is
/// damaged (or was written by an incompatible build, which the format
/// version normally rules out).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// Shorter than the checksum prefix.
    #[error("record is {0} bytes, too short to hold its 4-byte checksum")]
    TooShort(usize),
    /// The bytes do not match their checksum.
    #[error(
        "checksum mismatch (stored crc32 {stored:#010x}, computed {computed:#010x}): the record was damaged on disk"
    )]
    Checksum {
        /// The CRC32 stored in front of the record.
        stored: u32,
        /// The CRC32 of the bytes as read.
        computed: u32,
    },
    /// The checksum matched but postcard could not decode the bytes.
    #[error("cannot decode record: {0}")]
    Decode(#[from] postcard::Error),
}

/// Verifies a table value's checksum and decodes it; a failure means the
/// file is corrupt.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RecordError> {
    if bytes.len() < CRC_LEN {
        return Err(RecordError::TooShort(bytes.len()));
    }
    let (head, payload) = bytes.split_at(CRC_LEN);
    let stored = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok(postcard::from_bytes(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_through_postcard() {
        let m = StoredMessage {
            id: 7,
            address: "a".into(),
            destination: "/queue/a".into(),
            properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            body: Bytes::from_static(b"\x00hello\xff"),
            priority: 4,
            expires: 0,
            timestamp: 123,
            deliver_at: 1_700_000_000_500,
            large: Some(LargeFile {
                name: "msg-1.body".into(),
                len: 1 << 30,
            }),
        };
        let bytes = encode(&m).unwrap();
        let back: StoredMessage = decode(&bytes).unwrap();
        assert_eq!(m, back);
    }

    fn sample() -> StoredMessage {
        StoredMessage {
            id: 7,
            address: "a".into(),
            destination: "/queue/a".into(),
            properties: vec![("k".into(), "v".into())],
            body: Bytes::from(vec![b'y'; 100]),
            priority: 4,
            expires: 0,
            timestamp: 123,
            deliver_at: 0,
            large: None,
        }
    }

    #[test]
    fn record_is_crc32_of_postcard_bytes_then_the_bytes() {
        let m = sample();
        let bytes = encode(&m).unwrap();
        let plain = postcard::to_stdvec(&m).unwrap();
        assert_eq!(&bytes[4..], plain.as_slice());
        assert_eq!(bytes[..4], crc32fast::hash(&plain).to_le_bytes());
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let bytes = encode(&sample()).unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            let err = decode::<StoredMessage>(&damaged).unwrap_err();
            assert!(
                matches!(err, RecordError::Checksum { .. }),
                "byte {i}: {err}"
            );
            assert!(err.to_string().contains("checksum mismatch"), "{err}");
        }
    }

    #[test]
    fn truncated_record_is_refused() {
        let err = decode::<StoredMessage>(&[1, 2, 3]).unwrap_err();
        assert!(matches!(err, RecordError::TooShort(3)), "{err}");
        let bytes = encode(&sample()).unwrap();
        let err = decode::<StoredMessage>(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, RecordError::Checksum { .. }), "{err}");
    }
}
