//! Why the core refused an operation. The texts reach clients in ERROR frames, so each names
//! the thing and the reason.

use super::RoutingType;
use super::queue::AckError;
use crate::security::Denied;

/// A refused core operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The address is missing and may not be auto-created.
    #[error("address '{0}' does not exist and auto-create-addresses is off for it")]
    NoSuchAddress(String),
    /// The queue is missing and may not be auto-created.
    #[error("queue '{0}' does not exist and auto-create-queues is off for it")]
    NoSuchQueue(String),
    /// The address exists without the routing type asked for.
    #[error("address '{address}' does not support {routing} routing")]
    RoutingTypeMismatch {
        address: String,
        routing: RoutingType,
    },
    /// A fully qualified queue name whose queue is bound elsewhere.
    #[error("queue '{queue}' is bound to address '{actual}', not '{requested}'")]
    QueueAddressMismatch {
        queue: String,
        actual: String,
        requested: String,
    },
    /// An empty address name.
    #[error("destination names no address")]
    EmptyAddress,
    /// An address longer than `limits.max-address-words`.
    #[error(
        "destination address has {words} '.'-separated words, more than the limit of {limit} (max-address-words)"
    )]
    TooManyAddressWords { words: usize, limit: usize },
    /// The address is full and its policy is FAIL.
    #[error(
        "address '{0}' is full (its max-size-bytes or the broker's global-max-size is reached)"
    )]
    AddressFull(String),
    /// A durable subscription that already has its one subscriber.
    #[error("durable subscription '{0}' already has an active subscriber")]
    SubscriptionInUse(String),
    /// A selector or filter that does not parse; says where and what was expected.
    #[error("{0}")]
    BadSelector(String),

    /// What a consumer asked for cannot be had on a retained stream.
    #[error("{0}")]
    NotOnStream(String),
    /// A durable subscription re-subscribed with another selector: it keeps the one it was
    /// created with (its stored messages were chosen by it), so the subscriber must
    /// UNSUBSCRIBE it first.
    #[error(
        "durable subscription '{name}' was created with selector {existing:?}, not {requested:?}; unsubscribe it first to change it"
    )]
    SubscriptionSelectorChanged {
        name: String,
        existing: Option<String>,
        requested: Option<String>,
    },
    /// A subscriber asked for a durable consumer group whose queue exists but is not kept
    /// while its members are away (a non-durable group, or an auto-deletable queue).
    #[error(
        "consumer group '{queue}' on address '{address}' exists and is not durable: its queue goes when unused, so it cannot keep messages while its members are away; join it without durable:true, or use another group name"
    )]
    GroupNotDurable { queue: String, address: String },
    /// A second live connection with the same client-id (JMS requires them unique).
    #[error("client-id '{0}' is already in use by another connection")]
    ClientIdInUse(String),
    /// A durable subscription of another user: neither consumed from nor deleted by others.
    #[error("durable subscription '{0}' belongs to another user")]
    NotOwner(String),
    /// An ack that matches nothing pending.
    #[error(transparent)]
    Ack(#[from] AckError),
    /// The caller's rights do not allow the operation; the text names who, what and where.
    #[error("{0}")]
    NotAuthorized(String),
    /// An `_AMQ_DUPL_ID` too long to remember (see `broker::duplicates`).
    #[error(
        "header '_AMQ_DUPL_ID' is {len} bytes long, more than the limit of {limit} bytes for a duplicate id"
    )]
    DuplicateIdTooLong { len: usize, limit: usize },
    /// A temporary destination whose connection closed (or a reserved name never created).
    #[error(
        "temporary destination '{0}' does not exist: the connection that created it has closed, and temporary destinations are never auto-created"
    )]
    TemporaryGone(String),
    /// Another connection's temporary destination.
    #[error(
        "temporary destination '{0}' belongs to another connection: only the connection that created it may subscribe to or browse it"
    )]
    TemporaryPrivate(String),
    /// Something to be added to a temporary destination other than its owner's non-durable
    /// subscriptions.
    #[error(
        "temporary destination '{0}' cannot be extended: nothing but its owner's non-durable subscriptions may be added to it (no other queue, routing type or durable subscription)"
    )]
    TemporaryFixed(String),
    /// A browse of a multicast address: its messages are in its subscriptions' queues.
    #[error(
        "address '{0}' is multicast and has no queue of its own to browse; browse one of its subscription queues by name (address::queue)"
    )]
    NothingToBrowse(String),
    /// The journal failed to store or load.
    #[error("journal: {0}")]
    Journal(String),
    /// The large-message directory could not be used.
    #[error("{0}")]
    LargeMessages(String),
}

/// A refusal by the caller's [`crate::security::Authorizer`] becomes the core's own error,
/// its text unchanged.
impl From<Denied> for BrokerError {
    fn from(denied: Denied) -> Self {
        BrokerError::NotAuthorized(denied.0)
    }
}
