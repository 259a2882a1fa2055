//! The registry of addresses and queues, and the operations that route through it: send,
//! subscribe, and the consumer handle that acks and detaches.

use bytes::Bytes;
use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::error::BrokerError;
use super::flow::AddressUsage;
use super::message::{Message, now_millis};
use super::persistence::{self, Restored};
use super::queue::{
    AckTarget, Completed, ConsumerId, DeliverySink, Outcome, Queue, QueueSpec, Window,
};
use super::settings::{AddressSettings, FullPolicy, SettingsRepository};
use super::{AllowAll, Authorizer, RoutingType, wildcard};
use crate::config::Config;
use crate::journal::{Completion, Journal, JournalOp, Recovered};
use crate::security::Permission;

mod preflight;

/// Where a send or subscribe points, after the transport stripped its prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Address name.
    pub address: String,
    /// A specific queue (`address::queue`), if named.
    pub queue: Option<String>,
    /// Routing type asked for; `None` lets the address or its settings decide.
    pub routing: Option<RoutingType>,
}

impl Destination {
    /// Splits a fully qualified queue name `address::queue`.
    pub fn parse(name: &str, routing: Option<RoutingType>) -> Destination {
        match name.split_once("::") {
            Some((a, q)) => Destination {
                address: a.to_string(),
                queue: Some(q.to_string()),
                routing,
            },
            None => Destination {
                address: name.to_string(),
                queue: None,
                routing,
            },
        }
    }
}

/// A message as a producer hands it over, before the broker gives it an id.
#[derive(Debug, Clone)]
pub struct MessageDraft {
    /// The destination text the producer used, repeated in MESSAGE frames.
    pub destination: ByteString,
    /// Properties in order.
    pub properties: Vec<(ByteString, ByteString)>,
    /// Payload.
    pub body: Bytes,
    /// `None` takes the address's `default-persistent`.
    pub persistent: Option<bool>,
    /// 0–9.
    pub priority: u8,
    /// Expiry in ms since the epoch; 0 = never.
    pub expires: u64,
}

/// What a send did.
#[derive(Debug)]
pub struct SendReport {
    /// The routed message (absent when nothing took it).
    pub message: Option<Arc<Message>>,
    /// Queues that took a copy.
    pub queues: Vec<Arc<Queue>>,
}

/// Whether an address can take more messages now.
#[derive(Debug)]
pub enum Capacity {
    /// Room, or no limit.
    Available,
    /// Full with policy BLOCK: wait on this before sending.
    Blocked(Arc<AddressUsage>),
    /// Full with policy FAIL.
    Refused,
    /// Full with policy DROP.
    Dropped,
}

/// What a subscriber asks for.
pub struct SubscribeSpec {
    /// What to consume from.
    pub destination: Destination,
    /// How much it may hold unacknowledged.
    pub window: Window,
    /// Where its deliveries go.
    pub sink: Arc<dyn DeliverySink>,
    /// Queue name of a durable subscription (`client-id.name`), if durable.
    pub durable_name: Option<String>,
}

/// Where a send goes, with the settings and byte counter of its address.
type Targets = (Vec<Arc<Queue>>, Arc<AddressSettings>, Arc<AddressUsage>);

struct AddressEntry {
    anycast: bool,
    multicast: bool,
    auto_created: bool,
    settings: Arc<AddressSettings>,
    usage: Arc<AddressUsage>,
    queues: Vec<Arc<Queue>>,
    next_anycast: AtomicUsize,
}

#[derive(Default)]
struct Registry {
    addresses: HashMap<Arc<str>, AddressEntry>,
    queues: HashMap<Arc<str>, Arc<Queue>>,
    wildcard_addresses: Vec<Arc<str>>,
}

/// The broker core. Shared by every connection as `Arc<Broker>`.
pub struct Broker {
    registry: RwLock<Registry>,
    settings: SettingsRepository,
    next_message_id: AtomicU64,
    next_consumer_id: AtomicU64,
    journal: Option<Journal>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// An in-memory broker with the configured address settings, addresses and queues.
    pub fn new(config: &Config) -> Result<Arc<Broker>, BrokerError> {
        Self::with_journal(config, None)
    }

    /// A broker that records durable state in `journal`, starting from what it recovered.
    pub fn with_journal(
        config: &Config,
        journal: Option<(Journal, Recovered)>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let (journal, recovered) = match journal {
            Some((j, r)) => (Some(j), Some(r)),
            None => (None, None),
        };
        let broker = Arc::new(Broker {
            registry: RwLock::new(Registry::default()),
            settings: SettingsRepository::new(config.address_settings.clone()),
            next_message_id: AtomicU64::new(1),
            next_consumer_id: AtomicU64::new(1),
            journal,
        });
        {
            let mut reg = broker.write();
            for a in &config.addresses {
                let name: Arc<str> = Arc::from(a.name.as_str());
                let entry = broker.new_address_entry(&name, false);
                reg.insert_address(name.clone(), entry);
                for r in &a.routing_types {
                    broker.add_routing_type(&mut reg, &name, (*r).into());
                }
                for q in &a.queues {
                    broker.create_queue(
                        &mut reg,
                        &name,
                        Arc::from(q.name.as_str()),
                        q.routing_type.into(),
                        q.durable,
                        false,
                        false,
                    );
                }
            }
            if let Some(recovered) = recovered {
                broker.recover(&mut reg, recovered);
            }
        }
        Ok(broker)
    }

    /// Rebuilds durable queues and their messages, in order, with their delivery counts.
    fn recover(&self, reg: &mut Registry, recovered: Recovered) {
        self.next_message_id
            .fetch_max(recovered.next_message_id.max(1), Ordering::Relaxed);
        for rec in &recovered.queues {
            if reg.queues.contains_key(rec.name.as_str()) {
                continue;
            }
            let address: Arc<str> = Arc::from(rec.address.as_str());
            if !reg.addresses.contains_key(&address) {
                let entry = self.new_address_entry(&address, rec.auto_created);
                reg.insert_address(address.clone(), entry);
            }
            let routing = persistence::routing_of(rec.routing_type);
            self.add_routing_type(reg, &address, routing);
            self.create_queue_inner(
                reg,
                &address,
                Arc::from(rec.name.as_str()),
                routing,
                true,
                rec.auto_created && rec.durable_subscription.is_none(),
                false,
                false,
            );
        }
        let mut restored = Restored::new();
        let mut count = 0usize;
        for rq in recovered.messages {
            let Some(queue) = reg.queues.get(rq.queue.as_str()).cloned() else {
                tracing::warn!(queue = %rq.queue, "journal has messages for an unknown queue; skipped");
                continue;
            };
            let usage = reg
                .addresses
                .get(&queue.address)
                .map(|a| Arc::clone(&a.usage));
            for r in rq.refs {
                let message = restored
                    .entry(r.message.id)
                    .or_insert_with(|| {
                        let mut m = persistence::restored(&r.message);
                        m.usage = usage.as_ref().map(|u| u.charge(m.size() as u64));
                        Arc::new(m)
                    })
                    .clone();
                if queue.enqueue_with_count(message, r.delivery_count).is_ok() {
                    count += 1;
                }
            }
        }
        tracing::info!(
            queues = recovered.queues.len(),
            messages = count,
            "recovered durable state from the journal"
        );
    }

    /// Hands journal records to the writer; the completion resolves once they are stored.
    /// `None` when there is nothing to store (or persistence is off).
    pub fn persist(&self, ops: Vec<JournalOp>) -> Option<Completion> {
        match &self.journal {
            Some(j) if !ops.is_empty() => Some(j.submit(ops)),
            _ => None,
        }
    }

    /// Resolves once everything already handed to the journal, detached writes included (queue
    /// records, deletions), is stored: the journal commits in submission order. Lets a RECEIPT
    /// confirm changes the core records without waiting. `None` when persistence is off.
    pub fn journal_barrier(&self) -> Option<Completion> {
        self.journal.as_ref().map(|j| j.submit(Vec::new()))
    }

    /// Flushes and closes the journal (graceful shutdown).
    pub fn shutdown_journal(&self) {
        if let Some(j) = &self.journal {
            j.shutdown();
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings that apply to an address.
    pub fn settings_for(&self, address: &str) -> AddressSettings {
        self.settings.resolve(address)
    }

    /// Tells a producer whether `dest`'s address can take more now (its `max-size-bytes`).
    pub fn capacity(&self, dest: &Destination) -> Capacity {
        let reg = self.read();
        let Some(a) = reg.addresses.get(dest.address.as_str()) else {
            return Capacity::Available;
        };
        if !a.usage.is_full() {
            return Capacity::Available;
        }
        match a.settings.full_policy {
            FullPolicy::Block => Capacity::Blocked(Arc::clone(&a.usage)),
            FullPolicy::Fail => Capacity::Refused,
            FullPolicy::Drop => Capacity::Dropped,
        }
    }

    /// Routes a message: to one anycast queue, to every multicast queue (including wildcard
    /// subscriptions), or to the one queue a fully qualified name names.
    /// Journal records for the durable copies are appended to `journal`, for the caller to
    /// submit (so that a transaction's sends and acks are stored atomically).
    pub fn send(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        journal: &mut Vec<JournalOp>,
    ) -> Result<SendReport, BrokerError> {
        self.send_as(dest, draft, journal, &AllowAll)
    }

    /// [`Broker::send`] on behalf of someone whose rights `auth` checks: `send` on the address
    /// first, then, under the registry's write lock and before anything is created, every
    /// permission the auto-creation needs, so a refusal leaves nothing half-created.
    pub fn send_as(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        journal: &mut Vec<JournalOp>,
        auth: &dyn Authorizer,
    ) -> Result<SendReport, BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Send, &dest.address)?;
        let (targets, settings, usage) = self.resolve_targets(dest, auth)?;
        if targets.is_empty() {
            return Ok(SendReport {
                message: None,
                queues: Vec::new(),
            });
        }
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let mut message = Message {
            id,
            address: Arc::from(dest.address.as_str()),
            destination: draft.destination,
            properties: draft.properties,
            body: draft.body,
            persistent: draft.persistent.unwrap_or(settings.default_persistent),
            priority: draft.priority,
            expires: draft.expires,
            timestamp: now_millis(),
            usage: None,
        };
        message.usage = Some(usage.charge(message.size() as u64));
        let message = Arc::new(message);
        let mut queues = Vec::with_capacity(targets.len());
        for q in targets {
            match q.enqueue(Arc::clone(&message)) {
                Ok(()) => queues.push(q),
                Err(_) => {
                    // Auto-deleted between lookup and enqueue: route this copy again.
                    let (again, _, _) = self.resolve_targets(
                        &Destination {
                            address: dest.address.clone(),
                            queue: Some(q.name.to_string()),
                            routing: Some(q.routing),
                        },
                        auth,
                    )?;
                    for q2 in again {
                        if q2.enqueue(Arc::clone(&message)).is_ok() {
                            queues.push(q2);
                        }
                    }
                }
            }
        }
        let durable: Vec<&Arc<Queue>> = queues.iter().filter(|q| q.journals(&message)).collect();
        if !durable.is_empty() {
            journal.push(JournalOp::PutMessage(Arc::new(persistence::stored(
                &message,
            ))));
            for q in durable {
                journal.push(JournalOp::PutRef {
                    queue: q.name.to_string(),
                    message_id: message.id,
                });
            }
        }
        Ok(SendReport {
            message: Some(message),
            queues,
        })
    }

    /// Checks that `dest` can be routed to, creating its address and queue when the settings
    /// allow, without sending anything. A transaction checks every send this way before
    /// routing any, so a COMMIT is applied whole or not at all.
    pub fn prepare(&self, dest: &Destination) -> Result<(), BrokerError> {
        self.prepare_as(dest, &AllowAll)
    }

    /// [`Broker::prepare`] on behalf of someone whose rights `auth` checks, as
    /// [`Broker::send_as`] does.
    pub fn prepare_as(&self, dest: &Destination, auth: &dyn Authorizer) -> Result<(), BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Send, &dest.address)?;
        self.resolve_targets(dest, auth).map(|_| ())
    }

    fn resolve_targets(
        &self,
        dest: &Destination,
        auth: &dyn Authorizer,
    ) -> Result<Targets, BrokerError> {
        // Fast path: everything exists, a read lock suffices.
        {
            let reg = self.read();
            if let Some(found) = self.lookup_targets(&reg, dest)? {
                return Ok(found);
            }
        }
        let mut reg = self.write();
        for perm in self.send_creates(&reg, dest) {
            auth.authorize(perm, &dest.address)?;
        }
        let routing = self.ensure_address(&mut reg, &dest.address, dest.routing, true)?;
        if let Some(qname) = &dest.queue {
            self.ensure_fqqn_queue(&mut reg, &dest.address, qname, routing)?;
        } else if routing != Some(RoutingType::Multicast) {
            let has_anycast = reg
                .addresses
                .get(dest.address.as_str())
                .is_some_and(|a| a.queues.iter().any(|q| q.routing == RoutingType::Anycast));
            if !has_anycast {
                let settings = self.settings.resolve(&dest.address);
                if !settings.auto_create_queues {
                    return Err(BrokerError::NoSuchQueue(dest.address.clone()));
                }
                let name: Arc<str> = Arc::from(dest.address.as_str());
                if reg.queues.contains_key(&name) {
                    return Err(BrokerError::QueueAddressMismatch {
                        queue: dest.address.clone(),
                        actual: reg.queues[&name].address.to_string(),
                        requested: dest.address.clone(),
                    });
                }
                let addr: Arc<str> = Arc::from(dest.address.as_str());
                self.create_queue(
                    &mut reg,
                    &addr,
                    name,
                    RoutingType::Anycast,
                    true,
                    true,
                    false,
                );
            }
        }
        let dest = Destination {
            routing: routing.or(dest.routing),
            ..dest.clone()
        };
        match self.lookup_targets(&reg, &dest)? {
            Some(found) => Ok(found),
            None => Err(BrokerError::NoSuchAddress(dest.address.clone())),
        }
    }

    /// Looks up targets without creating anything; `Ok(None)` means something must be created.
    fn lookup_targets(
        &self,
        reg: &Registry,
        dest: &Destination,
    ) -> Result<Option<Targets>, BrokerError> {
        let Some(a) = reg.addresses.get(dest.address.as_str()) else {
            return Ok(None);
        };
        let settings = Arc::clone(&a.settings);
        let usage = Arc::clone(&a.usage);
        if let Some(qname) = &dest.queue {
            return match reg.queues.get(qname.as_str()) {
                Some(q) if *q.address != *dest.address => Err(BrokerError::QueueAddressMismatch {
                    queue: qname.clone(),
                    actual: q.address.to_string(),
                    requested: dest.address.clone(),
                }),
                Some(q) => Ok(Some((vec![Arc::clone(q)], settings, usage))),
                None => Ok(None),
            };
        }
        let (anycast, multicast) = match dest.routing {
            Some(RoutingType::Anycast) => (true, false),
            Some(RoutingType::Multicast) => (false, true),
            None => (a.anycast, a.multicast),
        };
        if (anycast && !a.anycast) || (multicast && !a.multicast) {
            return Ok(None);
        }
        let mut targets = Vec::new();
        if anycast {
            let candidates: Vec<&Arc<Queue>> = a
                .queues
                .iter()
                .filter(|q| q.routing == RoutingType::Anycast)
                .collect();
            if candidates.is_empty() {
                return Ok(None);
            }
            let i = a.next_anycast.fetch_add(1, Ordering::Relaxed) % candidates.len();
            targets.push(Arc::clone(candidates[i]));
        }
        if multicast {
            targets.extend(
                a.queues
                    .iter()
                    .filter(|q| q.routing == RoutingType::Multicast)
                    .cloned(),
            );
            for w in &reg.wildcard_addresses {
                if **w != *dest.address
                    && wildcard::matches(w, &dest.address)
                    && let Some(wa) = reg.addresses.get(w)
                {
                    targets.extend(
                        wa.queues
                            .iter()
                            .filter(|q| q.routing == RoutingType::Multicast)
                            .cloned(),
                    );
                }
            }
        }
        Ok(Some((targets, settings, usage)))
    }

    /// Makes sure the address exists with the routing type; returns the routing type to use.
    fn ensure_address(
        &self,
        reg: &mut Registry,
        address: &str,
        routing: Option<RoutingType>,
        for_send: bool,
    ) -> Result<Option<RoutingType>, BrokerError> {
        if address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        let name: Arc<str> = Arc::from(address);
        match reg.addresses.get(address) {
            Some(a) => {
                let Some(r) = routing else {
                    // Let the address decide: a single type is unambiguous; with both, a send
                    // goes to both and a subscription is a multicast one.
                    return Ok(match (a.anycast, a.multicast) {
                        (true, false) => Some(RoutingType::Anycast),
                        (false, true) => Some(RoutingType::Multicast),
                        _ if for_send => None,
                        _ => Some(RoutingType::Multicast),
                    });
                };
                let has = match r {
                    RoutingType::Anycast => a.anycast,
                    RoutingType::Multicast => a.multicast,
                };
                if !has {
                    if !a.settings.auto_create_addresses {
                        return Err(BrokerError::RoutingTypeMismatch {
                            address: address.to_string(),
                            routing: r,
                        });
                    }
                    self.add_routing_type(reg, &name, r);
                }
                Ok(Some(r))
            }
            None => {
                let settings = self.settings.resolve(address);
                if !settings.auto_create_addresses {
                    return Err(BrokerError::NoSuchAddress(address.to_string()));
                }
                let r = routing.unwrap_or(settings.default_address_routing_type);
                let entry = self.new_address_entry(&name, true);
                reg.insert_address(name.clone(), entry);
                self.add_routing_type(reg, &name, r);
                Ok(Some(r))
            }
        }
    }

    fn ensure_fqqn_queue(
        &self,
        reg: &mut Registry,
        address: &str,
        qname: &str,
        routing: Option<RoutingType>,
    ) -> Result<Arc<Queue>, BrokerError> {
        if let Some(q) = reg.queues.get(qname) {
            if *q.address != *address {
                return Err(BrokerError::QueueAddressMismatch {
                    queue: qname.to_string(),
                    actual: q.address.to_string(),
                    requested: address.to_string(),
                });
            }
            return Ok(Arc::clone(q));
        }
        let settings = self.settings.resolve(address);
        if !settings.auto_create_queues {
            return Err(BrokerError::NoSuchQueue(format!("{address}::{qname}")));
        }
        let r = routing.unwrap_or(settings.default_queue_routing_type);
        let addr: Arc<str> = Arc::from(address);
        self.add_routing_type(reg, &addr, r);
        Ok(self.create_queue(reg, &addr, Arc::from(qname), r, true, true, false))
    }

    fn new_address_entry(&self, name: &str, auto_created: bool) -> AddressEntry {
        let settings = self.settings.resolve(name);
        AddressEntry {
            anycast: false,
            multicast: false,
            auto_created,
            usage: AddressUsage::new(settings.max_size_bytes),
            settings: Arc::new(settings),
            queues: Vec::new(),
            next_anycast: AtomicUsize::new(0),
        }
    }

    fn add_routing_type(&self, reg: &mut Registry, address: &Arc<str>, r: RoutingType) {
        if let Some(a) = reg.addresses.get_mut(address) {
            match r {
                RoutingType::Anycast => a.anycast = true,
                RoutingType::Multicast => a.multicast = true,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_queue(
        &self,
        reg: &mut Registry,
        address: &Arc<str>,
        name: Arc<str>,
        routing: RoutingType,
        durable: bool,
        auto_created: bool,
        exclusive_to_subscriber: bool,
    ) -> Arc<Queue> {
        self.create_queue_inner(
            reg,
            address,
            name,
            routing,
            durable,
            auto_created,
            exclusive_to_subscriber,
            true,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn create_queue_inner(
        &self,
        reg: &mut Registry,
        address: &Arc<str>,
        name: Arc<str>,
        routing: RoutingType,
        durable: bool,
        auto_created: bool,
        exclusive_to_subscriber: bool,
        record: bool,
    ) -> Arc<Queue> {
        let settings = reg
            .addresses
            .get(address)
            .map(|a| Arc::clone(&a.settings))
            .unwrap_or_else(|| Arc::new(self.settings.resolve(address)));
        let q = Queue::new(QueueSpec {
            name: name.clone(),
            address: address.clone(),
            routing,
            durable,
            auto_created,
            exclusive_to_subscriber,
            auto_delete: auto_created && settings.auto_delete_queues,
            max_delivery_attempts: settings.max_delivery_attempts,
            journal: if durable { self.journal.clone() } else { None },
        });
        if record && let Some(j) = &q.journal {
            let subscription = (routing == RoutingType::Multicast).then(|| q.name.to_string());
            j.submit_detached(vec![JournalOp::PutQueue(persistence::queue_record(
                &q,
                subscription.as_deref(),
            ))]);
        }
        reg.queues.insert(name, Arc::clone(&q));
        if let Some(a) = reg.addresses.get_mut(address) {
            a.queues.push(Arc::clone(&q));
        }
        q
    }

    /// Attaches a consumer. It receives nothing until [`ConsumerHandle::start`].
    pub fn subscribe(self: &Arc<Self>, spec: SubscribeSpec) -> Result<ConsumerHandle, BrokerError> {
        self.subscribe_as(spec, &AllowAll)
    }

    /// [`Broker::subscribe`] on behalf of someone whose rights `auth` checks: `consume` on the
    /// address, then (under the write lock, before creating anything) what auto-creation needs.
    pub fn subscribe_as(
        self: &Arc<Self>,
        spec: SubscribeSpec,
        auth: &dyn Authorizer,
    ) -> Result<ConsumerHandle, BrokerError> {
        let dest = &spec.destination;
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Consume, &dest.address)?;
        let queue = {
            let mut reg = self.write();
            for perm in self.subscribe_creates(&reg, dest, spec.durable_name.as_deref()) {
                auth.authorize(perm, &dest.address)?;
            }
            let routing = self.ensure_address(&mut reg, &dest.address, dest.routing, false)?;
            let addr: Arc<str> = Arc::from(dest.address.as_str());
            if let Some(qname) = &dest.queue {
                self.ensure_fqqn_queue(&mut reg, &dest.address, qname, routing)?
            } else if routing == Some(RoutingType::Anycast) {
                match reg.queues.get(dest.address.as_str()) {
                    Some(q) if q.address == addr => Arc::clone(q),
                    Some(q) => {
                        return Err(BrokerError::QueueAddressMismatch {
                            queue: dest.address.clone(),
                            actual: q.address.to_string(),
                            requested: dest.address.clone(),
                        });
                    }
                    None => {
                        let settings = self.settings.resolve(&dest.address);
                        if !settings.auto_create_queues {
                            return Err(BrokerError::NoSuchQueue(dest.address.clone()));
                        }
                        self.create_queue(
                            &mut reg,
                            &addr,
                            addr.clone(),
                            RoutingType::Anycast,
                            true,
                            true,
                            false,
                        )
                    }
                }
            } else {
                self.subscription_queue(&mut reg, &addr, spec.durable_name.as_deref())?
            }
        };
        let id = self.next_consumer_id.fetch_add(1, Ordering::Relaxed);
        queue.add_consumer(id, spec.sink, spec.window);
        Ok(ConsumerHandle {
            id,
            queue,
            broker: Arc::clone(self),
        })
    }

    fn subscription_queue(
        &self,
        reg: &mut Registry,
        address: &Arc<str>,
        durable_name: Option<&str>,
    ) -> Result<Arc<Queue>, BrokerError> {
        if wildcard::is_wildcard(address) && !reg.wildcard_addresses.contains(address) {
            reg.wildcard_addresses.push(address.clone());
        }
        match durable_name {
            Some(name) => {
                if let Some(q) = reg.queues.get(name) {
                    if q.address != *address {
                        return Err(BrokerError::QueueAddressMismatch {
                            queue: name.to_string(),
                            actual: q.address.to_string(),
                            requested: address.to_string(),
                        });
                    }
                    if q.consumer_count() > 0 {
                        return Err(BrokerError::SubscriptionInUse(name.to_string()));
                    }
                    return Ok(Arc::clone(q));
                }
                Ok(self.create_queue(
                    reg,
                    address,
                    Arc::from(name),
                    RoutingType::Multicast,
                    true,
                    false,
                    false,
                ))
            }
            None => {
                let name: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string().as_str());
                Ok(self.create_queue(
                    reg,
                    address,
                    name,
                    RoutingType::Multicast,
                    false,
                    true,
                    true,
                ))
            }
        }
    }

    /// Deletes a durable subscription queue (UNSUBSCRIBE of a durable subscriber).
    pub fn delete_subscription(&self, queue_name: &str) -> bool {
        let mut reg = self.write();
        let Some(q) = reg.queues.get(queue_name).cloned() else {
            return false;
        };
        q.mark_deleted(true);
        self.unregister_queue(&mut reg, &q);
        true
    }

    /// Looks up a queue by name.
    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.read().queues.get(name).cloned()
    }

    /// Names of all addresses, sorted (for inspection and tests).
    pub fn address_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .read()
            .addresses
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Names of all queues bound to an address.
    pub fn queues_of(&self, address: &str) -> Vec<Arc<Queue>> {
        self.read()
            .addresses
            .get(address)
            .map(|a| a.queues.clone())
            .unwrap_or_default()
    }

    /// Removes an auto-deletable queue once nothing uses it.
    fn maybe_auto_delete(&self, queue: &Arc<Queue>) {
        let exclusive = queue.exclusive_to_subscriber;
        if !(exclusive || queue.auto_delete && queue.is_unused()) {
            return;
        }
        let mut reg = self.write();
        let still_registered = reg
            .queues
            .get(&queue.name)
            .is_some_and(|q| Arc::ptr_eq(q, queue));
        if !still_registered {
            return;
        }
        if exclusive {
            if queue.consumer_count() > 0 {
                return;
            }
            queue.mark_deleted(true);
        } else if !queue.mark_deleted(false) {
            return;
        }
        self.unregister_queue(&mut reg, queue);
    }

    fn unregister_queue(&self, reg: &mut Registry, queue: &Arc<Queue>) {
        reg.queues.remove(&queue.name);
        if let Some(j) = &queue.journal {
            j.submit_detached(vec![JournalOp::DeleteQueue(queue.name.to_string())]);
        }
        let mut drop_address = false;
        if let Some(a) = reg.addresses.get_mut(&queue.address) {
            a.queues.retain(|q| !Arc::ptr_eq(q, queue));
            drop_address =
                a.queues.is_empty() && a.auto_created && a.settings.auto_delete_addresses;
        }
        if drop_address {
            reg.addresses.remove(&queue.address);
            reg.wildcard_addresses.retain(|w| *w != queue.address);
        }
    }

    fn dead_letter(&self, messages: Vec<Arc<Message>>) {
        for m in messages {
            let settings = self.settings.resolve(&m.address);
            let Some(dla) = settings.dead_letter_address else {
                tracing::warn!(
                    message_id = m.id,
                    address = %m.address,
                    "message reached max-delivery-attempts and no dead-letter-address is set; dropped"
                );
                continue;
            };
            let mut properties = m.properties.clone();
            properties.push(("original-destination".into(), m.destination.clone()));
            let draft = MessageDraft {
                destination: ByteString::from(dla.clone()),
                properties,
                body: m.body.clone(),
                persistent: Some(m.persistent),
                priority: m.priority,
                expires: m.expires,
            };
            let dest = Destination::parse(&dla, Some(RoutingType::Anycast));
            let mut ops = Vec::new();
            match self.send(&dest, draft, &mut ops) {
                Ok(_) => {
                    if let Some(j) = &self.journal
                        && !ops.is_empty()
                    {
                        j.submit_detached(ops);
                    }
                }
                Err(e) => {
                    tracing::warn!(message_id = m.id, error = %e, "could not dead-letter message")
                }
            }
        }
    }
}

impl Registry {
    fn insert_address(&mut self, name: Arc<str>, entry: AddressEntry) {
        if wildcard::is_wildcard(&name) && !self.wildcard_addresses.contains(&name) {
            self.wildcard_addresses.push(name.clone());
        }
        self.addresses.insert(name, entry);
    }
}

/// A consumer attached to a queue: the session's grip on it for acks and for leaving.
#[derive(Clone)]
pub struct ConsumerHandle {
    /// Broker-wide consumer id.
    pub id: ConsumerId,
    /// The queue it consumes from.
    pub queue: Arc<Queue>,
    broker: Arc<Broker>,
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("id", &self.id)
            .field("queue", &self.queue.name)
            .finish()
    }
}

impl ConsumerHandle {
    /// Lets messages flow (after the subscription was confirmed).
    pub fn start(&self) {
        self.queue.start_consumer(self.id);
    }

    /// Resolves an ACK/NACK to delivery tags and frees window room for them.
    pub fn settle(&self, target: AckTarget, cumulative: bool) -> Result<Vec<u64>, BrokerError> {
        Ok(self.queue.settle(self.id, target, cumulative)?)
    }

    /// Acks or nacks deliveries; nacked ones are redelivered (or dead-lettered at the limit).
    /// Journal records of what was consumed are appended to `journal`.
    pub fn complete(
        &self,
        tags: &[u64],
        outcome: Outcome,
        journal: &mut Vec<JournalOp>,
    ) -> Completed {
        let done = self.queue.complete(self.id, tags, outcome);
        self.queue.record_removals(&done.acked, journal);
        self.after(&done);
        done
    }

    /// Puts settled deliveries back under the window (aborted transaction).
    pub fn unsettle(&self, tags: &[u64]) {
        self.queue.unsettle(self.id, tags);
    }

    /// Detaches: unacked messages go back to the queue; a non-durable subscription queue is
    /// removed; an auto-created queue left unused is deleted.
    pub fn close(&self) -> Completed {
        let done = self.queue.remove_consumer(self.id);
        self.after(&done);
        if self.queue.exclusive_to_subscriber || self.queue.auto_delete {
            self.broker.maybe_auto_delete(&self.queue);
        }
        done
    }

    fn after(&self, done: &Completed) {
        if !done.dead.is_empty() {
            let mut ops = Vec::new();
            self.queue.record_removals(&done.dead, &mut ops);
            // The dead-letter copy is recorded first so a crash in between cannot lose it.
            self.broker.dead_letter(done.dead.clone());
            if let Some(j) = &self.queue.journal
                && !ops.is_empty()
            {
                j.submit_detached(ops);
            }
        }
        if !done.acked.is_empty() && self.queue.auto_delete && self.queue.is_unused() {
            self.broker.maybe_auto_delete(&self.queue);
        }
    }
}
