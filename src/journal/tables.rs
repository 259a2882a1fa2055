//! The redb table layout.
//!
//! Keys are chosen so that recovery is a plain ordered scan: refs are keyed
//! `(queue, message_id)` so each queue's refs come out contiguous and in
//! ascending id order, which is the order the broker must redeliver in.
//! Duplicate ids are keyed `(address, slot)` for the same reason: one
//! address's cache comes out contiguous and in ring order, and dropping it is
//! one range removal.
//!
//! A ref's value is `(delivery_count, deliver_at)`, both fixed-width, rather
//! than a table of its own for redelivery times: every ref has both, they are
//! written by the same kinds of op, and one table means one lookup per op and
//! no second table to keep in step when a ref or queue is deleted.

use redb::{TableDefinition, WriteTransaction};

/// `message_id → postcard(StoredMessage)`.
pub(crate) const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// `(queue, message_id) → (delivery_count, deliver_at)`; `deliver_at` is
/// the epoch-ms time before which the ref must not be offered again, 0 for
/// none.
pub(crate) const REFS: TableDefinition<(&str, u64), RefValue> = TableDefinition::new("refs");
/// The value type of [`REFS`]: `(delivery_count, deliver_at)`.
pub(crate) type RefValue = (u32, u64);
/// `(address, slot) → crc32-framed id bytes`: the persisted duplicate-id
/// ring of each address (see `records` for the framing).
pub(crate) const DUPLICATE_IDS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("duplicate_ids");
/// `(queue, offset) → message_id`: the offsets of a retained stream's messages (see
/// `JournalOp::PutStreamOffset`). Keyed by offset so a segment drop is one range and
/// recovery reads a stream in order.
pub(crate) const STREAM_OFFSETS: TableDefinition<(&str, u64), u64> =
    TableDefinition::new("stream_offsets");
/// `queue → first offset kept`: where retention last cut a stream, so its offsets keep
/// counting from there after a restart even when every message was dropped.
pub(crate) const STREAM_BASES: TableDefinition<&str, u64> = TableDefinition::new("stream_bases");
/// `(queue, consumer name) → highest offset acknowledged`: server-side stored offsets of
/// named stream consumers.
pub(crate) const CONSUMER_OFFSETS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("consumer_offsets");
/// `(queue, page sequence) → crc32-framed postcard(page row)`: the messages a queue paged
/// to disk (see `JournalOp::PutPage`), in the order the queue paged them. Transient: the
/// table is emptied at every open, because what a row stands for either did not survive the
/// restart (a message that is not persistent) or is recovered from `refs` anyway (a
/// persistent one on a durable queue).
pub(crate) const PAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pages");
/// `message_id → crc32-framed postcard(paged body)`: a paged message that is not stored in
/// `messages` (not persistent, or paged by a non-durable queue), written once however many
/// queues page it. Transient like [`PAGES`].
pub(crate) const PAGED_MESSAGES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("paged_messages");
/// `message_id → number of page rows naming it` in [`PAGED_MESSAGES`].
pub(crate) const PAGED_REFCOUNTS: TableDefinition<u64, u32> =
    TableDefinition::new("paged_refcounts");
/// `message_id → number of refs`. Kept so an ack can tell whether it removed
/// the last ref without scanning every queue.
pub(crate) const REFCOUNTS: TableDefinition<u64, u32> = TableDefinition::new("refcounts");
/// `queue name → postcard(QueueRecord)`.
pub(crate) const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
/// `address name → postcard(AddressRecord)`.
pub(crate) const ADDRESSES: TableDefinition<&str, &[u8]> = TableDefinition::new("addresses");
/// `key → u64` bookkeeping: format version and the message-id high-water mark.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Values a layer above the journal stores atomically with its ops without the journal
/// knowing what they mean ([`super::JournalOp::PutKeyValue`]): the cluster's last applied
/// raft entry and membership. Added without a format-version bump: an older build never
/// opens it, and a file made before it existed reads as having none.
pub(crate) const KEY_VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("key_values");

/// Meta key of the record-layout version.
pub(crate) const FORMAT_VERSION_KEY: &str = "format-version";
/// Meta key of the highest message id ever stored, so ids are not reused
/// after every message has been acked and deleted.
pub(crate) const MAX_MESSAGE_ID_KEY: &str = "max-message-id";

/// All tables opened once per write transaction, because opening a table
/// per op would dominate the cost of small ops.
pub(crate) struct Tables<'txn> {
    pub(crate) messages: redb::Table<'txn, u64, &'static [u8]>,
    pub(crate) refs: redb::Table<'txn, (&'static str, u64), RefValue>,
    pub(crate) duplicate_ids: redb::Table<'txn, (&'static str, u32), &'static [u8]>,
    pub(crate) refcounts: redb::Table<'txn, u64, u32>,
    pub(crate) queues: redb::Table<'txn, &'static str, &'static [u8]>,
    pub(crate) addresses: redb::Table<'txn, &'static str, &'static [u8]>,
    pub(crate) meta: redb::Table<'txn, &'static str, u64>,
    pub(crate) stream_offsets: redb::Table<'txn, (&'static str, u64), u64>,
    pub(crate) stream_bases: redb::Table<'txn, &'static str, u64>,
    pub(crate) consumer_offsets: redb::Table<'txn, (&'static str, &'static str), u64>,
    pub(crate) pages: redb::Table<'txn, (&'static str, u64), &'static [u8]>,
    pub(crate) paged_messages: redb::Table<'txn, u64, &'static [u8]>,
    pub(crate) paged_refcounts: redb::Table<'txn, u64, u32>,
    pub(crate) key_values: redb::Table<'txn, &'static str, &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    /// Opens (creating if needed) every table in `txn`.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Tables {
            messages: txn.open_table(MESSAGES)?,
            refs: txn.open_table(REFS)?,
            duplicate_ids: txn.open_table(DUPLICATE_IDS)?,
            refcounts: txn.open_table(REFCOUNTS)?,
            queues: txn.open_table(QUEUES)?,
            addresses: txn.open_table(ADDRESSES)?,
            meta: txn.open_table(META)?,
            stream_offsets: txn.open_table(STREAM_OFFSETS)?,
            stream_bases: txn.open_table(STREAM_BASES)?,
            consumer_offsets: txn.open_table(CONSUMER_OFFSETS)?,
            pages: txn.open_table(PAGES)?,
            paged_messages: txn.open_table(PAGED_MESSAGES)?,
            paged_refcounts: txn.open_table(PAGED_REFCOUNTS)?,
            key_values: txn.open_table(KEY_VALUES)?,
        })
    }
}
