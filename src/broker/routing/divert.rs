//! Moving messages out of their queue to another address: dead letters (out of delivery
//! attempts, or rejected with `requeue:false`) to the `dead-letter-address`, expired messages
//! to the `expiry-address`. Each copy is a new message carrying where it came from
//! (`_AMQ_ORIG_ADDRESS`, `_AMQ_ORIG_QUEUE`, ...), so an operator can inspect it and send it
//! back. The copy's refs and the original's removal go to the journal in one batch: a crash
//! leaves the message in one place or the other, never both and never neither.

use bytestring::ByteString;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::send::record_puts;
use super::{Broker, QueueOrigin, QueueTraits, Registry};
use crate::broker::stats::{DeadReason, bump};
use crate::broker::{
    ClockOwner, DeadLetter, DivertPolicy, Filter, Message, Queue, RoutingType, now_millis,
};
use crate::config::Config;
use crate::journal::JournalOp;

/// Headers the broker sets on a moved message (replacing any the message already had).
const ORIG_ADDRESS: &str = "_AMQ_ORIG_ADDRESS";
const ORIG_QUEUE: &str = "_AMQ_ORIG_QUEUE";
const ORIG_MESSAGE_ID: &str = "_AMQ_ORIG_MESSAGE_ID";
const ORIG_DELIVERY_COUNT: &str = "_AMQ_ORIG_DELIVERY_COUNT";
const ACTUAL_EXPIRY: &str = "_AMQ_ACTUAL_EXPIRY";
const ORIGINAL_DESTINATION: &str = "original-destination";

/// Why a message is moved.
#[derive(Clone, Copy)]
enum Reason {
    DeadLetter { delivery_count: u32 },
    Expired { at: u64 },
}

impl Broker {
    /// Moves dead letters of `queue` to the dead-letter address of their own address (or
    /// drops them, with a warning, when it has none) and forgets them in `queue`.
    pub(super) fn dead_letter(&self, queue: &Queue, dead: Vec<DeadLetter>) {
        let mut ops = Vec::new();
        for d in dead {
            let exhausted = queue
                .max_delivery_attempts()
                .is_some_and(|max| d.delivery_count >= max);
            self.stats.dead(if exhausted {
                DeadReason::MaxDeliveries
            } else {
                DeadReason::Rejected
            });
            bump(&queue.stats.dead_lettered);
            let policy = self.settings.load().resolve(&d.message.address).dead_letter;
            let reason = Reason::DeadLetter {
                delivery_count: d.delivery_count,
            };
            if !self.divert(queue, &d.message, reason, &policy, &mut ops) {
                tracing::warn!(
                    message_id = d.message.id,
                    address = %d.message.address,
                    queue = %queue.name,
                    "message reached max-delivery-attempts (or was rejected) and has no dead-letter address to go to; dropped"
                );
            }
            queue.record_removals([&d.message], &mut ops);
        }
        self.submit_moves(ops);
    }

    /// Moves expired messages of `queue` to the expiry address of their own address (or
    /// drops them when it has none) and forgets them in `queue`.
    pub(super) fn expire_messages(&self, queue: &Queue, expired: Vec<Arc<Message>>, now: u64) {
        let mut ops = Vec::new();
        for m in expired {
            self.stats.dead(DeadReason::Expired);
            bump(&queue.stats.expired);
            let policy = self.settings.load().resolve(&m.address).expiry;
            self.divert(queue, &m, Reason::Expired { at: now }, &policy, &mut ops);
            queue.record_removals([&m], &mut ops);
        }
        self.submit_moves(ops);
    }

    fn submit_moves(&self, ops: Vec<JournalOp>) {
        if let Some(j) = &self.journal
            && !ops.is_empty()
        {
            j.submit_detached(ops);
        }
    }

    /// Routes a copy of `m` to the policy's address; false when there is nowhere to go.
    fn divert(
        &self,
        queue: &Queue,
        m: &Message,
        reason: Reason,
        policy: &DivertPolicy,
        ops: &mut Vec<JournalOp>,
    ) -> bool {
        let Some(target) = policy.address.as_deref() else {
            return false;
        };
        if *queue.address == *target {
            // A message dying on the dead-letter (or expiry) address itself: moving it there
            // again would loop, so it goes (as Artemis drops it).
            return false;
        }
        let auto_queue = policy.auto_create.then(|| policy.queue_for(&m.address));
        let Some((address, settings_expiry, usage, queues)) =
            self.divert_targets(target, auto_queue.as_deref(), &m.address)
        else {
            return false;
        };
        let mut properties: Vec<(ByteString, ByteString)> = m
            .properties
            .iter()
            // An expired copy sheds the producer's expiry: it lives by the expiry address's
            // settings now, and a client that enforces `expires` itself must not drop it.
            .filter(|(k, _)| {
                !(matches!(reason, Reason::Expired { .. })
                    && matches!(&**k, "expires" | "expiration"))
            })
            .filter(|(k, _)| {
                ![
                    ORIG_ADDRESS,
                    ORIG_QUEUE,
                    ORIG_MESSAGE_ID,
                    ORIG_DELIVERY_COUNT,
                    ACTUAL_EXPIRY,
                    ORIGINAL_DESTINATION,
                ]
                .contains(&&**k)
            })
            .cloned()
            .collect();
        let mut add = |k: &str, v: String| properties.push((k.into(), v.into()));
        add(ORIG_ADDRESS, m.address.to_string());
        add(ORIG_QUEUE, queue.name.to_string());
        add(ORIG_MESSAGE_ID, m.id.to_string());
        add(ORIGINAL_DESTINATION, m.destination.to_string());
        let expires = match reason {
            Reason::DeadLetter { delivery_count } => {
                add(ORIG_DELIVERY_COUNT, delivery_count.to_string());
                m.expires
            }
            Reason::Expired { at } => {
                add(ACTUAL_EXPIRY, at.to_string());
                // The copy must not expire at once; the expiry address's own settings apply.
                let expires = settings_expiry.apply(0, now_millis());
                if expires != 0 {
                    add("expires", expires.to_string());
                }
                expires
            }
        };
        let mut copy = Message {
            id: self.next_message_id.fetch_add(1, Ordering::Relaxed),
            address: Arc::clone(&address),
            destination: ByteString::from(target),
            properties,
            body: m.body.clone(),
            persistent: m.persistent,
            priority: m.priority,
            expires,
            timestamp: now_millis(),
            deliver_at: 0,
            origin: None,
            group: m.group.clone(),
            usage: None,
            encoded: None,
        };
        copy.usage = Some(usage.charge_message(copy.memory_size() as u64));
        let copy = Arc::new(copy);
        let took: Vec<Arc<Queue>> = queues
            .into_iter()
            .filter(|q| q.enqueue(Arc::clone(&copy)).is_ok())
            .collect();
        record_puts(&copy, &took, ops);
        !took.is_empty()
    }

    /// The queues of `target` a moved message of `original` goes to (every multicast queue
    /// whose filter lets it in, one anycast queue), creating the per-origin queue
    /// `auto_queue` first if asked. `None`: the address does not exist.
    #[allow(clippy::type_complexity)]
    fn divert_targets(
        &self,
        target: &str,
        auto_queue: Option<&str>,
        original: &str,
    ) -> Option<(
        Arc<str>,
        crate::broker::ExpiryPolicy,
        Arc<crate::broker::AddressUsage>,
        Vec<Arc<Queue>>,
    )> {
        let missing = |reg: &Registry| {
            !reg.addresses.contains_key(target)
                || auto_queue.is_some_and(|q| !reg.queues.contains_key(q))
        };
        if missing(&self.read()) {
            let mut reg = self.write();
            if missing(&reg) {
                self.create_divert_resources(&mut reg, target, auto_queue, original);
            }
        }
        let reg = self.read();
        let (name, a) = reg.addresses.get_key_value(target)?;
        let mut queues: Vec<Arc<Queue>> = a
            .queues
            .iter()
            .filter(|q| q.routing == RoutingType::Multicast)
            .cloned()
            .collect();
        let anycast: Vec<&Arc<Queue>> = a
            .queues
            .iter()
            .filter(|q| q.routing == RoutingType::Anycast)
            .collect();
        if !anycast.is_empty() {
            let i = a.next_anycast.fetch_add(1, Ordering::Relaxed) % anycast.len();
            queues.push(Arc::clone(anycast[i]));
        }
        Some((
            Arc::clone(name),
            a.settings.expiry_delay,
            Arc::clone(&a.usage),
            queues,
        ))
    }

    /// Creates the per-origin queue on a dead-letter or expiry address (and the address,
    /// when it is missing), as `auto-create-dead-letter-resources` asks.
    fn create_divert_resources(
        &self,
        reg: &mut Registry,
        target: &str,
        auto_queue: Option<&str>,
        original: &str,
    ) {
        let Some(queue) = auto_queue else {
            return;
        };
        let name: Arc<str> = Arc::from(target);
        if !reg.addresses.contains_key(target) {
            let entry = self.new_address_entry(&name, true);
            reg.insert_address(name.clone(), entry);
        }
        self.add_routing_type(reg, &name, RoutingType::Multicast);
        let text = format!("{ORIG_ADDRESS} = '{}'", original.replace('\'', "''"));
        let filter = match Filter::selector(&text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "could not build the filter of an auto-created dead-letter queue");
                return;
            }
        };
        self.create_queue(
            reg,
            &name,
            Arc::from(queue),
            RoutingType::Multicast,
            QueueOrigin::AutoCreated,
            QueueTraits {
                filter: Some(filter),
                ..QueueTraits::default()
            },
        );
    }

    /// Makes every plain dead-letter and expiry address the settings name exist, as an
    /// anycast address with one anycast queue of the same name (Artemis's shipped `DLQ` and
    /// `ExpiryQueue`), unless the configuration or the journal already has it.
    pub(super) fn create_divert_addresses(&self, reg: &mut Registry, config: &Config) {
        let mut names: Vec<&str> = config
            .address_settings
            .iter()
            .flat_map(|e| {
                [
                    e.dead_letter_address.as_deref(),
                    e.expiry_address.as_deref(),
                ]
            })
            .flatten()
            .filter(|a| !a.is_empty())
            .collect();
        names.sort_unstable();
        names.dedup();
        for target in names {
            if reg.addresses.contains_key(target) || reg.queues.contains_key(target) {
                continue;
            }
            let name: Arc<str> = Arc::from(target);
            let entry = self.new_address_entry(&name, false);
            reg.insert_address(name.clone(), entry);
            self.add_routing_type(reg, &name, RoutingType::Anycast);
            self.create_queue(
                reg,
                &name,
                name.clone(),
                RoutingType::Anycast,
                QueueOrigin::Configured {
                    durable: true,
                    incarnation: None,
                },
                QueueTraits::default(),
            );
        }
    }

    /// Starts the broker's clock on the current tokio runtime (none in plain unit tests).
    pub(super) fn start_clock(self: &Arc<Self>, config: &Config) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let scan = u64::try_from(config.broker.message_expiry_scan_period)
            .ok()
            .filter(|&ms| ms > 0)
            .map(std::time::Duration::from_millis);
        let owner: std::sync::Weak<dyn ClockOwner> = Arc::downgrade(self) as _;
        runtime.spawn(self.clock.clone().run(owner, scan));
    }
}

impl ClockOwner for Broker {
    fn expired(&self, queue: &Arc<Queue>, now: u64) {
        let found = queue.take_found_expired();
        if !found.is_empty() {
            self.expire_messages(queue, found, now);
        }
    }

    fn scan_expired(&self, now: u64) {
        let queues: Vec<Arc<Queue>> = self.read().queues.values().cloned().collect();
        for q in queues {
            let expired = q.take_expired(now);
            if !expired.is_empty() {
                self.expire_messages(&q, expired, now);
            }
        }
    }
}
