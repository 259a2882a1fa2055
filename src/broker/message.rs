//! The core's message: what a producer sent, with its properties, shared by every queue it
//! was routed to. Bodies are `Bytes` or a shared file, so multicast copies share one body.

use bytes::Bytes;
use bytestring::ByteString;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::flow::UsageToken;
use super::large::Body;

/// The header a JMS client puts a message group's id in, and Artemis's own name for it.
pub const GROUP_ID_HEADERS: [&str; 2] = ["JMSXGroupID", "_AMQ_GROUP_ID"];

/// The header numbering a group's messages; `-1` closes the group.
pub const GROUP_SEQ_HEADER: &str = "JMSXGroupSeq";

/// One message as the broker holds it. Immutable once routed; per-queue state (delivery
/// count, sequence) lives in the queue entry that points at it.
#[derive(Debug)]
pub struct Message {
    /// Broker-assigned id, unique across restarts.
    pub id: u64,
    /// The address it was routed to (no prefix).
    pub address: Arc<str>,
    /// The destination string the producer used, prefix included; MESSAGE frames repeat it.
    pub destination: ByteString,
    /// Every header the producer set, in order, minus transport-only ones.
    pub properties: Vec<(ByteString, ByteString)>,
    /// The payload, in memory or in a file.
    pub body: Body,
    /// Whether it must survive a restart when routed to a durable queue.
    pub persistent: bool,
    /// 0–9, as JMS; carried through.
    pub priority: u8,
    /// Expiry time in ms since the epoch; 0 = never.
    pub expires: u64,
    /// Arrival time in ms since the epoch.
    pub timestamp: u64,
    /// Not to be delivered before this time (ms since the epoch); 0 = at once.
    pub deliver_at: u64,
    /// The connection that sent it (in memory only: after a restart nobody is local).
    pub origin: Option<u64>,
    /// Its message group (`JMSXGroupID` / `_AMQ_GROUP_ID`), found once when the message is
    /// made so that dispatch does not scan properties for it on every queue.
    pub group: Option<ByteString>,
    /// Holds this message's bytes against its address's limit until the last copy is dropped.
    pub(crate) usage: Option<UsageToken>,
    /// Present when the message was routed to more than one queue: the protocol layer's
    /// encoding of the headers every copy shares, made by the first copy written and reused
    /// by the others, so a fan-out to N subscribers encodes and escapes them once, not N
    /// times. Opaque to the core; tagged with the encoding's dialect (a protocol version),
    /// and a copy in another dialect encodes its own. Absent for a single copy, which gains
    /// nothing from it and pays no memory for it.
    pub encoded: Option<Box<SharedEncoding>>,
}

/// Bytes a protocol layer encoded once for every copy of a message, and the dialect they
/// are in ([`Message::encoded`]).
pub type SharedEncoding = OnceLock<(u8, Bytes)>;

impl Message {
    /// Bytes this message is on the wire: what consumer windows count (and `AMQSize`).
    pub fn size(&self) -> usize {
        size_of(self.body.len(), &self.properties)
    }

    /// Bytes this message holds in memory: what address and broker memory limits charge. A
    /// body in a file counts a small constant instead of its length.
    pub fn memory_size(&self) -> usize {
        size_of(self.body.in_memory(), &self.properties)
    }

    /// [`Message::memory_size`] without walking the headers again: what its usage token
    /// charged, for the per-message memory bookkeeping of the hot path.
    pub fn charged_size(&self) -> usize {
        match &self.usage {
            Some(t) => t.size() as usize,
            None => self.size(),
        }
    }

    /// [`Message::size`] without walking the headers again: the usage token charged the
    /// memory size, which differs from the wire size only by the body (a body in a file
    /// holds a small constant in memory). For figures per MESSAGE on the hot path.
    pub fn wire_size(&self) -> usize {
        match &self.usage {
            Some(t) => (t.size() as usize).saturating_sub(self.body.in_memory()) + self.body.len(),
            None => self.size(),
        }
    }

    /// Whether the message has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires != 0 && self.expires <= now_ms
    }

    /// The message group named by `properties`, if any.
    pub fn group_of(properties: &[(ByteString, ByteString)]) -> Option<ByteString> {
        properties
            .iter()
            .find(|(k, _)| GROUP_ID_HEADERS.contains(&&**k))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }

    /// Whether this message closes its group (`JMSXGroupSeq:-1`).
    pub fn closes_group(&self) -> bool {
        self.property(GROUP_SEQ_HEADER)
            .is_some_and(|v| v.trim() == "-1")
    }

    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }
}

/// Bytes a message of a `body`-byte body and these properties accounts for (each header
/// line with its `:` and newline).
pub fn size_of(body: usize, properties: &[(ByteString, ByteString)]) -> usize {
    body + properties
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>()
}

/// Milliseconds since the Unix epoch, for timestamps and expiry.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
