//! Translation between the core's types and the journal's records, and recovery of the
//! core's state from what the journal returns at start-up.

use bytes::Bytes;
use bytestring::ByteString;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::RoutingType;
use super::clients::Owner;
use super::flow::AddressUsage;
use super::large::{Body, LargeBody, LargeStore};
use super::message::Message;
use super::queue::Queue;
use crate::journal::{LargeFile, OwnerRecord, QueueRecord, RoutingKind, StoredMessage};

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
        body: m.body.inline().cloned().unwrap_or_default(),
        priority: m.priority,
        expires: m.expires,
        timestamp: m.timestamp,
        deliver_at: m.deliver_at,
        large: match &m.body {
            Body::Inline(_) => None,
            Body::File(f) => Some(LargeFile {
                name: f.name().to_string(),
                len: f.len(),
            }),
        },
    }
}

/// A recovered message, persistent by definition (only persistent ones are stored), with
/// `body` as its payload.
fn restored(s: &StoredMessage, body: Body) -> Message {
    let mut m = Message {
        id: s.id,
        address: Arc::from(s.address.as_str()),
        destination: ByteString::from(s.destination.as_str()),
        properties: s
            .properties
            .iter()
            .map(|(k, v)| (ByteString::from(k.as_str()), ByteString::from(v.as_str())))
            .collect(),
        body,
        persistent: true,
        priority: s.priority,
        expires: s.expires,
        timestamp: s.timestamp,
        deliver_at: s.deliver_at,
        origin: None,
        group: None,
        usage: None,
        encoded: None,
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

/// A message read back from a page: its body inline, or its large file from `held` (the
/// handle the queue kept while it was paged) or, for one recovery left on disk, from
/// `store`; `None` (after a warning) when that file is gone.
pub fn restored_from_page(
    s: &StoredMessage,
    held: Option<Arc<LargeBody>>,
    store: &Arc<LargeStore>,
) -> Option<Message> {
    let body = match (&s.large, held) {
        (None, _) => Body::Inline(Bytes::clone(&s.body)),
        (Some(_), Some(file)) => Body::File(file),
        (Some(f), None) => Body::File(store.recovered(&f.name, f.len, s.id)?),
    };
    Some(restored(s, body))
}

/// Rebuilds recovered messages: each once, however many queues hold it (by id), and each
/// large-message file once, however many messages name it (a dead-letter copy shares its
/// original's file).
pub struct Restored {
    store: Arc<LargeStore>,
    /// `None`: the message could not be rebuilt (its file is missing) and is skipped.
    messages: HashMap<u64, Option<Arc<Message>>>,
    files: HashMap<String, Arc<LargeBody>>,
}

impl Restored {
    /// Nothing rebuilt yet; large bodies are looked for in `store`.
    pub fn new(store: Arc<LargeStore>) -> Restored {
        Restored {
            store,
            messages: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// The message `s`, charged to `usage`; `None` (after a warning) when its body's file
    /// is missing or damaged.
    pub fn message(
        &mut self,
        s: &StoredMessage,
        usage: Option<&Arc<AddressUsage>>,
    ) -> Option<Arc<Message>> {
        if let Some(m) = self.messages.get(&s.id) {
            return m.clone();
        }
        let body = match &s.large {
            None => Some(Body::Inline(Bytes::clone(&s.body))),
            Some(f) => match self.files.get(&f.name) {
                Some(body) => Some(Body::File(Arc::clone(body))),
                None => self.store.recovered(&f.name, f.len, s.id).map(|body| {
                    self.files.insert(f.name.clone(), Arc::clone(&body));
                    Body::File(body)
                }),
            },
        };
        let message = body.map(|body| {
            let mut m = restored(s, body);
            m.usage = usage.map(|u| u.charge_message(m.memory_size() as u64));
            Arc::new(m)
        });
        self.messages.insert(s.id, message.clone());
        message
    }

    /// The names of the large-message files recovered messages use: every other file in
    /// the directory is garbage.
    pub fn files(&self) -> HashSet<String> {
        self.files.keys().cloned().collect()
    }
}
