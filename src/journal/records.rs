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
#[derive(Debug, Clone, PartialEq, Eq)]
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
        queue: String,
        /// The message.
        message_id: u64,
    },
    /// Remove a message from a queue (an ack). The message record goes when
    /// its last ref goes. May arrive before its `PutRef`; see the module docs.
    DeleteRef {
        /// The queue.
        queue: String,
        /// The message.
        message_id: u64,
    },
    /// Persist a delivery count for redelivery after restart; ignored if the
    /// ref no longer exists.
    SetDeliveryCount {
        /// The queue.
        queue: String,
        /// The message.
        message_id: u64,
        /// The new count.
        count: u32,
    },
}

/// Encodes a record for a table value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(value)
}

/// Decodes a table value; a failure means the file is corrupt or was written
/// by an incompatible build.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
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
        };
        let bytes = encode(&m).unwrap();
        let back: StoredMessage = decode(&bytes).unwrap();
        assert_eq!(m, back);
    }
}
