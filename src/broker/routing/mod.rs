//! The registry of addresses and queues: the `Broker` itself, how addresses and queues are
//! created and removed, and the request types of the operations that route through it.
//! Sending, subscribing, consumers and recovery each live in a child module.

use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use parking_lot::{RwLock, RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard};

use super::RoutingType;
use super::clients::{ClientIds, Owner};
use super::clock::Clock;
use super::disk::DiskMonitor;
use super::duplicates::{DuplicateIds, MAX_ID_CACHES};
use super::error::BrokerError;
use super::filter::Filter;
use super::flow::AddressUsage;
use super::large::{Body, LARGE_MESSAGES_DIR, LargeStore};
use super::message::Message;
use super::persistence;
use super::queue::{DeliverySink, GroupBuckets, Pager, Queue, QueueKindKeys, QueueSpec, Window};
use super::settings::{AddressSettings, FullPolicy, SettingsRepository};
use super::stored::Stored;
use crate::address::wildcard;
use crate::config::Config;
use crate::journal::{Journal, JournalOp, Recovered};
use crate::security::Authorizer;

mod address_words;
mod browse;
mod commit;
mod consumer;
mod dedup;
mod disk_room;
mod divert;
mod draft;
mod manage;
mod plan;
mod recovery;
mod reload;
mod send;
mod subscribe;
mod temporary;

pub use browse::Browse;
pub use commit::TxAck;
pub use consumer::ConsumerHandle;
pub use disk_room::DiskRoom;
pub use manage::{AddressView, ManageError, MessageFilter, NewQueueSpec};
pub use temporary::{
    TEMP_QUEUE_PREFIX, TEMP_TOPIC_PREFIX, TemporaryDestination, TemporaryKind, is_temporary_name,
};

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
    /// Payload, in memory or (a large message) in a file.
    pub body: Body,
    /// `None` takes the address's `default-persistent`.
    pub persistent: Option<bool>,
    /// 0–9.
    pub priority: u8,
    /// Expiry in ms since the epoch; 0 = never (the address's expiry settings still apply).
    pub expires: u64,
    /// Not to be delivered before this time, ms since the epoch; 0 = at once (scheduled
    /// delivery, `AMQ_SCHEDULED_TIME` / `AMQ_SCHEDULED_DELAY`).
    pub deliver_at: u64,
    /// The connection that sent it, for `no-local` subscriptions; `None` for the broker's own.
    pub origin: Option<u64>,
}

/// What a send did.
#[derive(Debug)]
pub struct SendReport {
    /// The routed message (absent when nothing took it).
    pub message: Option<Arc<Message>>,
    /// Queues that took a copy.
    pub queues: Vec<Arc<Queue>>,
    /// Resolves once the durable copies are stored: what a RECEIPT waits for.
    pub stored: Stored,
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
    /// Queue name of a durable subscription (`client-id.name`), if durable; for a consumer
    /// group (`address::group` on a multicast address) the group's name, if durable.
    pub durable_name: Option<String>,
    /// Whose rights the copies a wildcard subscription receives are checked against, so a
    /// wildcard cannot read an address a more specific security entry forbids.
    pub reader: Option<Arc<dyn Authorizer>>,
    /// Who subscribes: becomes a new durable subscription's owner, and must be its owner
    /// (or have `manage`) to consume from an existing one.
    pub subscriber: Owner,
    /// Its priority among the queue's consumers (higher first while it has room).
    pub priority: i32,
    /// Only messages it matches reach it: a subscription queue filters with it at routing,
    /// an anycast consumer is offered only matching messages.
    pub selector: Option<Filter>,
    /// The subscribing connection's id, when it asked for `no-local`.
    pub no_local: Option<u64>,
    /// Where to start and under which name to store offsets, on a retained stream.
    pub stream: crate::broker::StreamRequest,
    /// The subscribing connection, if any: a temporary destination admits only its own.
    pub connection: Option<u64>,
    /// An exclusive consumer (`activemq.exclusive:true`).
    pub exclusive: bool,
}

/// What a queue carries beyond its kind: a durable subscription's owner, a filter, no-local.
#[derive(Debug, Clone, Default)]
pub(super) struct QueueTraits {
    pub owner: Option<Owner>,
    pub filter: Option<Filter>,
    pub no_local: Option<u64>,
    /// A configured queue's own queue-kind keys, over the address settings' `default-*`.
    pub kind_keys: QueueKindKeys,
    /// A topic subscription's queue, which only its one subscriber ever consumes: message
    /// groups would bind every group to that one consumer, so the queue keeps no bindings.
    pub single_consumer: bool,
}

/// Why a queue exists, which decides whether it is durable, may be auto-deleted, goes with
/// its one subscriber, and is recorded in the journal when created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueueOrigin {
    /// Declared in the configuration; keeps the incarnation it had before a restart.
    Configured {
        durable: bool,
        incarnation: Option<u64>,
    },
    /// Created on first use (`/queue/x`, `address::queue`): durable, auto-deletable.
    AutoCreated,
    /// A durable topic subscription (`client-id.name`): kept while its subscriber is away.
    DurableSubscription,
    /// A non-durable topic subscription: removed with its subscriber.
    Subscription,
    /// The queue of a temporary destination: non-durable, never journaled, deleted with its
    /// connection (not when unused: a reply may arrive before its requester subscribes).
    Temporary,
    /// Rebuilt from the journal at start-up, so not recorded again.
    Recovered {
        auto_created: bool,
        incarnation: u64,
    },
}

struct AddressEntry {
    anycast: bool,
    multicast: bool,
    auto_created: bool,
    settings: Arc<AddressSettings>,
    usage: Arc<AddressUsage>,
    queues: Vec<Arc<Queue>>,
    next_anycast: AtomicUsize,
}

/// A map keyed by names clients choose, on the message path (see `foldhash` in Cargo.toml).
type NameMap<V> = HashMap<Arc<str>, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Registry {
    addresses: NameMap<AddressEntry>,
    queues: NameMap<Arc<Queue>>,
    wildcard_addresses: Vec<Arc<str>>,
    /// Live temporary destinations' addresses and the connection each belongs to.
    temporary: NameMap<u64>,
}

/// The broker core. Shared by every connection as `Arc<Broker>`.
pub struct Broker {
    registry: RwLock<Registry>,
    /// The `[[address-settings]]`, replaced whole by a configuration reload; an address
    /// resolves them once into its entry, and a reload resolves every entry again.
    settings: ArcSwap<SettingsRepository>,
    next_message_id: AtomicU64,
    next_consumer_id: AtomicU64,
    /// Incarnations for new queues: above every recovered one (see [`Queue::incarnation`]).
    next_incarnation: AtomicU64,
    journal: Option<Journal>,
    /// `limits.max-address-words`, see [`Broker::check_address_words`].
    max_address_words: usize,
    clients: ClientIds,
    /// Wakes queues for scheduled and delayed messages and runs the expiry scan.
    clock: Clock,
    /// Every address's recent `_AMQ_DUPL_ID`s, kept apart from the addresses themselves.
    duplicates: DuplicateIds,
    /// The journal directory's disk against `max-disk-usage` (see `disk_room`).
    disk: Arc<DiskMonitor>,
    /// Bytes of messages held over all addresses, against `[broker] global-max-size`; every
    /// address's counter charges it too.
    memory: Arc<AddressUsage>,
    /// Where bodies over `large-message-threshold` are kept.
    large: Arc<LargeStore>,
    /// Broker-wide totals for operators (see `broker::stats`).
    stats: Arc<super::stats::BrokerStats>,
}

/// A broker dropped without a shutdown (in tests, or a failed start) leaves its large
/// message files for the next start too: dropping the registry must not delete the bodies of
/// persistent messages.
impl Drop for Broker {
    fn drop(&mut self) {
        self.large.keep_files();
    }
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
        let (journal, mut recovered) = match journal {
            Some((j, r)) => (Some(j), Some(r)),
            None => (None, None),
        };
        let settings = SettingsRepository::from_config(&config.address_settings);
        let duplicates = DuplicateIds::new(
            journal.clone(),
            MAX_ID_CACHES,
            recovered
                .as_mut()
                .map(|r| std::mem::take(&mut r.duplicate_ids))
                .unwrap_or_default(),
            |address| settings.resolve(address).id_cache_size,
        );
        let large_dir = journal
            .as_ref()
            .map(|_| config.journal.data_dir.join(LARGE_MESSAGES_DIR));
        let large = LargeStore::open(
            large_dir.as_deref(),
            config.broker.large_message_threshold,
            config.journal.sync,
        )
        .map_err(|e| {
            BrokerError::LargeMessages(format!(
                "cannot open the large-message directory {}: {e}",
                large_dir
                    .as_deref()
                    .map_or_else(|| "(temporary)".into(), |d| d.display().to_string())
            ))
        })?;
        let disk = disk_room::monitor(
            config.broker.max_disk_usage,
            config.broker.disk_scan_period,
            journal.as_ref(),
        );
        let broker = Arc::new(Broker {
            registry: RwLock::new(Registry::default()),
            settings: ArcSwap::from_pointee(settings),
            next_message_id: AtomicU64::new(1),
            next_consumer_id: AtomicU64::new(1),
            next_incarnation: AtomicU64::new(
                recovered
                    .as_ref()
                    .and_then(|r| r.queues.iter().map(|q| q.incarnation).max())
                    .unwrap_or(0)
                    + 1,
            ),
            journal,
            max_address_words: config.limits.max_address_words,
            clients: ClientIds::default(),
            clock: Clock::default(),
            duplicates,
            disk,
            memory: AddressUsage::named(
                "global-max-size",
                Some(super::memory::global_max_size(
                    config.broker.global_max_size,
                )),
                None,
            ),
            large,
            stats: Arc::default(),
        });
        tracing::info!(
            bytes = broker.memory.limit().unwrap_or(0),
            configured = config.broker.global_max_size,
            "messages may use up to global-max-size bytes of memory"
        );
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
                    let incarnation = recovered
                        .as_ref()
                        .and_then(|r| r.queues.iter().find(|rq| rq.name == q.name))
                        .map(|rq| rq.incarnation);
                    broker.create_queue(
                        &mut reg,
                        &name,
                        Arc::from(q.name.as_str()),
                        q.routing_type.into(),
                        QueueOrigin::Configured {
                            durable: q.durable,
                            incarnation,
                        },
                        QueueTraits {
                            filter: configured_filter(&q.filter)?,
                            kind_keys: QueueKindKeys::from(q),
                            ..QueueTraits::default()
                        },
                    );
                }
            }
            if let Some(recovered) = recovered {
                broker.recover(&mut reg, recovered);
            }
            broker.create_divert_addresses(&mut reg, config);
        }
        broker.start_clock(config);
        Ok(broker)
    }

    /// Hands journal records to the writer; the result resolves once they are stored.
    fn store(&self, ops: Vec<JournalOp>) -> Stored {
        match &self.journal {
            Some(j) if !ops.is_empty() => {
                let bytes = Stored::bytes_of(&ops);
                Stored::journal(j.submit(ops), bytes)
            }
            _ => Stored::done(),
        }
    }

    /// Stores `ops` like [`Broker::store`]; after a NACK (`refused`) it resolves only once the
    /// records the NACK handed to the journal detached (a redelivery delay, a dead letter's
    /// move, a new delivery count) are stored too, so that its RECEIPT is not sent before a
    /// crash could still undo them and bring the message back at once, in its old queue.
    fn store_settled(&self, ops: Vec<JournalOp>, refused: bool) -> Stored {
        if ops.is_empty() && refused {
            self.stored_barrier()
        } else {
            self.store(ops)
        }
    }

    /// Resolves once everything already handed to the journal, detached writes included (queue
    /// records, deletions), is stored: the journal commits in submission order. Lets a RECEIPT
    /// confirm changes the core records without waiting.
    pub fn stored_barrier(&self) -> Stored {
        match &self.journal {
            Some(j) => Stored::journal(j.submit(Vec::new()), 0),
            None => Stored::done(),
        }
    }

    /// The client-ids of live connections, unique broker-wide.
    pub fn client_ids(&self) -> &ClientIds {
        &self.clients
    }

    /// Flushes and closes the journal (graceful shutdown).
    pub fn shutdown_journal(&self) {
        // Whatever is dropped from here on keeps its file for the next start.
        self.large.keep_files();
        if let Some(j) = &self.journal {
            j.shutdown();
        }
    }

    /// Where large message bodies are kept, and the threshold above which a body is.
    pub fn large_store(&self) -> &Arc<LargeStore> {
        &self.large
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read()
    }

    /// Excludes other creators and writers but not readers: for resolving a plan that will
    /// create something, so it can be upgraded to apply it without anyone changing the
    /// registry in between.
    fn upgradable(&self) -> RwLockUpgradableReadGuard<'_, Registry> {
        self.registry.upgradable_read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write()
    }

    /// The journal directory's disk against `max-disk-usage`.
    pub fn disk(&self) -> &super::disk::DiskMonitor {
        &self.disk
    }

    /// The journal, for its figures (commits, file size); `None` when persistence is off.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Whether the broker keeps a journal.
    pub fn persistent(&self) -> bool {
        self.journal.is_some()
    }

    /// Broker-wide totals for operators.
    pub fn stats(&self) -> &super::stats::BrokerStats {
        &self.stats
    }

    /// The broker-wide counter of bytes held for messages (`global-max-size`).
    pub fn memory(&self) -> &Arc<AddressUsage> {
        &self.memory
    }

    /// The settings that apply to an address.
    pub fn settings_for(&self, address: &str) -> AddressSettings {
        self.settings.load().resolve(address)
    }

    fn new_address_entry(&self, name: &str, auto_created: bool) -> AddressEntry {
        let settings = self.settings.load().resolve(name);
        AddressEntry {
            anycast: false,
            multicast: false,
            auto_created,
            usage: AddressUsage::address(
                name,
                settings.max_size_bytes,
                settings.max_size_messages,
                Arc::clone(&self.memory),
                settings.full_policy == FullPolicy::Page && self.journal.is_some(),
            ),
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

    /// Creates and registers a queue (recording it in the journal when durable and not
    /// recovered).
    fn create_queue(
        &self,
        reg: &mut Registry,
        address: &Arc<str>,
        name: Arc<str>,
        routing: RoutingType,
        origin: QueueOrigin,
        traits: QueueTraits,
    ) -> Arc<Queue> {
        let (durable, auto_created, exclusive_to_subscriber, record) = match origin {
            QueueOrigin::Configured { durable, .. } => (durable, false, false, true),
            QueueOrigin::AutoCreated => (true, true, false, true),
            QueueOrigin::DurableSubscription => (true, false, false, true),
            QueueOrigin::Subscription => (false, true, true, true),
            QueueOrigin::Temporary => (false, false, false, false),
            QueueOrigin::Recovered { auto_created, .. } => (true, auto_created, false, false),
        };
        let incarnation = match origin {
            QueueOrigin::Recovered { incarnation, .. }
            | QueueOrigin::Configured {
                incarnation: Some(incarnation),
                ..
            } => incarnation,
            _ => self.next_incarnation.fetch_add(1, Ordering::Relaxed),
        };
        let settings = reg
            .addresses
            .get(address)
            .map(|a| Arc::clone(&a.settings))
            .unwrap_or_else(|| Arc::new(self.settings.load().resolve(address)));
        let q = Queue::new(QueueSpec {
            name: name.clone(),
            address: address.clone(),
            routing,
            durable,
            auto_created,
            exclusive_to_subscriber,
            auto_delete: auto_created && settings.auto_delete_queues,
            max_delivery_attempts: settings.max_delivery_attempts,
            redelivery: settings.redelivery,
            filter: traits.filter,
            no_local: traits.no_local,
            incarnation,
            owner: traits.owner,
            kind: {
                let mut kind = settings.queue_kind.with(&traits.kind_keys).kind();
                if traits.single_consumer {
                    kind.group_buckets = GroupBuckets::Off;
                }
                kind
            },
            journal: if durable { self.journal.clone() } else { None },
            clock: Some(self.clock.clone()),
            pager: match (&self.journal, reg.addresses.get(address)) {
                (Some(j), Some(a)) => Some(Pager {
                    journal: j.clone(),
                    usage: Arc::clone(&a.usage),
                    page_size: settings.page_size_bytes,
                    large: Arc::clone(&self.large),
                }),
                _ => None,
            },
            totals: Arc::clone(&self.stats),
        });
        super::stats::bump(&self.stats.queues_created.0);
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
        if !(exclusive || queue.auto_delete() && queue.is_unused()) {
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
        super::stats::bump(&self.stats.queues_deleted.0);
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
}

/// A configured queue's `filter`, compiled (validation already parsed it once).
fn configured_filter(text: &Option<String>) -> Result<Option<Filter>, BrokerError> {
    text.as_deref()
        .map(|t| Filter::selector(t).map_err(|e| BrokerError::BadSelector(e.to_string())))
        .transpose()
}

impl Registry {
    fn insert_address(&mut self, name: Arc<str>, entry: AddressEntry) {
        if wildcard::is_wildcard(&name) && !self.wildcard_addresses.contains(&name) {
            self.wildcard_addresses.push(name.clone());
        }
        self.addresses.insert(name, entry);
    }
}
