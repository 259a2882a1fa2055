//! The broker core: addresses, queues, routing, consumers, acknowledgements and settings.
//! It knows nothing of STOMP; sessions translate frames into these calls.
//!
//! Concurrency: the address/queue registry sits behind one `RwLock` taken briefly to look up
//! or create; each queue has its own mutex. No lock is held across an `.await`, and the lock
//! order is always registry → queue.

mod clients;
mod clock;
mod disk;
mod duplicates;
mod error;
mod filter;
mod flow;
mod large;
mod memory;
mod message;
mod persistence;
mod policy;
mod queue;
mod routing;
mod settings;
mod stats;
mod stored;

#[cfg(test)]
mod tests;

pub use clients::{ClientIdClaim, ClientIds, Owner};
pub use clock::{Clock, ClockOwner};
pub use disk::{DiskMonitor, DiskUsage, read_usage};
pub use duplicates::{DUPLICATE_ID_HEADER, MAX_DUPLICATE_ID_LEN, check_duplicate_id};
pub use error::BrokerError;
pub use filter::Filter;
pub use flow::{AddressUsage, UsageToken};
pub use large::{Body, FILE_BODY_MEMORY, LARGE_MESSAGES_DIR, LargeBody, LargeStore};
pub use memory::{FALLBACK_GLOBAL_MAX_SIZE, available_memory, global_max_size};
pub use message::{Message, now_millis};
pub use policy::{DivertPolicy, ExpiryPolicy, RedeliveryPolicy};
pub use queue::{
    AckError, AckTarget, BrowseCursor, BrowsePage, Browsed, Completed, ConsumerId, ConsumerSpec,
    DeadLetter, Delivery, DeliverySink, GroupBuckets, Outcome, Queue, QueueKind, QueueKindKeys,
    QueueSpec, Refusal, Retention, SEGMENT_BYTES, SEGMENT_MESSAGES, StreamRequest, StreamStart,
    Taken, Window,
};
pub use routing::{
    AddressView, Broker, Browse, Capacity, ConsumerHandle, Destination, DiskRoom, ManageError,
    MessageDraft, MessageFilter, NewQueueSpec, SendReport, SubscribeSpec, TEMP_QUEUE_PREFIX,
    TEMP_TOPIC_PREFIX, TemporaryDestination, TemporaryKind, TxAck, is_temporary_name,
};
pub use settings::{AddressSettings, FullPolicy, SettingsEntry, SettingsRepository};
pub use stats::{AddressStats, BrokerStats, DeadReason, Padded, QueueFigures, QueueStats};
pub use stored::Stored;

use std::fmt;

/// How an address or queue distributes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingType {
    /// Point-to-point: each message to one consumer.
    Anycast,
    /// Publish-subscribe: each subscription gets a copy.
    Multicast,
}

impl fmt::Display for RoutingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingType::Anycast => "ANYCAST",
            RoutingType::Multicast => "MULTICAST",
        })
    }
}

impl RoutingType {
    /// Parses `ANYCAST`/`MULTICAST` (any case), as in `destination-type` headers.
    pub fn parse(s: &str) -> Option<RoutingType> {
        if s.eq_ignore_ascii_case("anycast") {
            Some(RoutingType::Anycast)
        } else if s.eq_ignore_ascii_case("multicast") {
            Some(RoutingType::Multicast)
        } else {
            None
        }
    }
}
