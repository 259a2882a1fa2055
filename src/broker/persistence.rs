//! Translation between the core's types and the journal's records, and recovery of the
//! core's state from what the journal returns at start-up.

use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::Arc;

use super::RoutingType;
use super::clients::Owner;
use super::message::Message;
use super::queue::Queue;
use crate::journal::{OwnerRecord, QueueRecord, RoutingKind, StoredMessage};

/// The journal's copy of a message.
pub fn stored(m: &Message) -> StoredMessage {
    StoredMessage {
        id: m.id,
        address: m.address.to_string(),
        destination: m.destination.to_string(),
        properties: m
            .properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: m.body.clone(),
        priority: m.priority,
        expires: m.expires,
        timestamp: m.timestamp,
        deliver_at: m.deliver_at,
    }
}

/// A recovered message, persistent by definition (only persistent ones are stored).
pub fn restored(s: &StoredMessage) -> Message {
    let mut m = Message {
        id: s.id,
        address: Arc::from(s.address.as_str()),
        destination: ByteString::from(s.destination.as_str()),
        properties: s
            .properties
            .iter()
            .map(|(k, v)| (ByteString::from(k.as_str()), ByteString::from(v.as_str())))
            .collect(),
        body: s.body.clone(),
        persistent: true,
        priority: s.priority,
        expires: s.expires,
        timestamp: s.timestamp,
        deliver_at: s.deliver_at,
        origin: None,
        group: None,
        usage: None,
    };
    m.group = Message::group_of(&m.properties);
    m
}

/// The journal's record of a durable queue.
pub fn queue_record(q: &Queue, durable_subscription: Option<&str>) -> QueueRecord {
    QueueRecord {
        name: q.name.to_string(),
        address: q.address.to_string(),
        routing_type: match q.routing {
            RoutingType::Anycast => RoutingKind::Anycast,
            RoutingType::Multicast => RoutingKind::Multicast,
        },
        filter: q.filter.as_ref().map(|f| f.text().to_string()),
        auto_created: q.auto_created,
        durable_subscription: durable_subscription.map(str::to_string),
        incarnation: q.incarnation,
        owner: q.owner.as_ref().map(|o| OwnerRecord {
            user: o.user.clone(),
            client_id: o.client_id.clone(),
        }),
    }
}

/// The core's owner for a recorded one.
pub fn owner_of(r: &OwnerRecord) -> Owner {
    Owner {
        user: r.user.clone(),
        client_id: r.client_id.clone(),
    }
}

/// The core's routing type for a recorded one.
pub fn routing_of(kind: RoutingKind) -> RoutingType {
    match kind {
        RoutingKind::Anycast => RoutingType::Anycast,
        RoutingKind::Multicast => RoutingType::Multicast,
    }
}

/// Recovered messages by id, so a message in several queues is rebuilt once and shared.
pub type Restored = HashMap<u64, Arc<Message>>;
