//! Plan-then-apply: working out, without changing anything, what a send or subscribe reaches
//! and what it would have to create, so that permissions are checked for exactly what is
//! created and a refused plan leaves nothing behind.
//!
//! One resolution serves sends, subscriptions and transactional checks. It runs under a
//! registry lock that excludes other creators (an upgradable read lock, so sends on the fast
//! path keep flowing); only applying the plan's steps takes the write lock, and wildcard
//! matching never runs under it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::subscribe::check_owner;
use super::{Broker, Destination, QueueOrigin, QueueTraits, Registry};
use crate::address::wildcard;
use crate::broker::{
    AddressSettings, AddressUsage, BrokerError, Filter, Owner, Queue, RoutingType,
};
use crate::security::{Authorizer, Permission};

/// A change to the address model that a plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AddressStep {
    /// Create the address with this routing type.
    Create(RoutingType),
    /// Let the existing address route this way too.
    AddRoutingType(RoutingType),
}

/// A queue a plan creates.
#[derive(Debug, Clone)]
pub(super) struct NewQueue {
    pub name: Arc<str>,
    pub routing: RoutingType,
    pub origin: QueueOrigin,
    /// A durable subscription's owner, a subscription's selector and no-local.
    pub traits: QueueTraits,
}

impl NewQueue {
    fn permission(&self) -> Permission {
        match self.origin {
            QueueOrigin::Subscription => Permission::CreateNonDurableQueue,
            _ => Permission::CreateDurableQueue,
        }
    }
}

/// The registry's handles on an address: its name (shared by every message routed through
/// it rather than copied), its settings and its byte counter.
#[derive(Debug, Clone)]
pub(super) struct AddressRef {
    pub name: Arc<str>,
    pub settings: Arc<AddressSettings>,
    pub usage: Arc<AddressUsage>,
}

/// What an operation reaches and what it must create first.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub address_step: Option<AddressStep>,
    pub new_queue: Option<NewQueue>,
    /// Existing queues reached (for a subscription: the one to attach to, unless created).
    pub targets: Vec<Arc<Queue>>,
    /// The address, once it exists (after `apply` for one the plan creates).
    pub address: Option<AddressRef>,
}

impl Plan {
    /// Whether applying needs the write lock.
    pub fn creates(&self) -> bool {
        self.address_step.is_some() || self.new_queue.is_some()
    }

    /// Checks every permission the plan's creations need, before any is made.
    pub fn authorize(&self, address: &str, auth: &dyn Authorizer) -> Result<(), BrokerError> {
        super::temporary::check_creation(address, self)?;
        if self.address_step.is_some() {
            auth.authorize(Permission::CreateAddress, address)?;
        }
        if let Some(q) = &self.new_queue {
            auth.authorize(q.permission(), address)?;
        }
        Ok(())
    }
}

/// What is being resolved: a send (which reaches queues) or a subscription (which attaches
/// to one).
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose<'a> {
    Send,
    Subscribe {
        durable_name: Option<&'a str>,
        /// Who subscribes: must own an existing durable subscription (or have `manage`).
        subscriber: &'a Owner,
        /// The subscriber's selector: a new subscription queue filters with it.
        selector: Option<&'a Filter>,
        /// The subscribing connection, when it asked for `no-local`.
        no_local: Option<u64>,
    },
}

impl Broker {
    /// Resolves `dest` against the registry as it is, changing nothing. `auth` decides
    /// whether a subscriber may use a durable subscription someone else owns.
    pub(super) fn resolve(
        &self,
        reg: &Registry,
        dest: &Destination,
        purpose: Purpose<'_>,
        auth: &dyn Authorizer,
    ) -> Result<Plan, BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        let found = reg.addresses.get_key_value(dest.address.as_str());
        if found.is_none() {
            // An address that exists passed this when it was made.
            self.check_address_words(&dest.address)?;
            super::temporary::refuse_missing(&dest.address)?;
        }
        let entry = found.map(|(_, a)| a);
        let resolved;
        let settings: &AddressSettings = match entry {
            Some(a) => &a.settings,
            None => {
                resolved = self.settings.load().resolve(&dest.address);
                &resolved
            }
        };
        let for_send = matches!(purpose, Purpose::Send);
        let mut plan = Plan {
            address: found.map(|(name, a)| AddressRef {
                name: Arc::clone(name),
                settings: Arc::clone(&a.settings),
                usage: Arc::clone(&a.usage),
            }),
            ..Plan::default()
        };
        // The address, and the routing type the operation settles on (`None`: a send to an
        // address with both types goes to both).
        let routing = match entry {
            Some(a) => match dest.routing {
                None => match (a.anycast, a.multicast) {
                    (true, false) => Some(RoutingType::Anycast),
                    (false, true) => Some(RoutingType::Multicast),
                    _ if for_send => None,
                    _ => Some(RoutingType::Multicast),
                },
                Some(r) => {
                    if !entry_has(a.anycast, a.multicast, r) {
                        if !settings.auto_create_addresses {
                            return Err(BrokerError::RoutingTypeMismatch {
                                address: dest.address.clone(),
                                routing: r,
                            });
                        }
                        plan.address_step = Some(AddressStep::AddRoutingType(r));
                    }
                    Some(r)
                }
            },
            None => {
                if !settings.auto_create_addresses {
                    return Err(BrokerError::NoSuchAddress(dest.address.clone()));
                }
                let r = dest
                    .routing
                    .unwrap_or(settings.default_address_routing_type);
                plan.address_step = Some(AddressStep::Create(r));
                Some(r)
            }
        };
        let queues: &[Arc<Queue>] = entry.map_or(&[], |a| &a.queues);

        if let Some(qname) = &dest.queue {
            match reg.queues.get(qname.as_str()) {
                Some(q) if *q.address != *dest.address => {
                    return Err(BrokerError::QueueAddressMismatch {
                        queue: qname.clone(),
                        actual: q.address.to_string(),
                        requested: dest.address.clone(),
                    });
                }
                Some(q) => {
                    if let Purpose::Subscribe {
                        subscriber,
                        durable_name,
                        ..
                    } = purpose
                    {
                        check_owner(q, subscriber, auth)?;
                        // A member asking for a durable group must not silently join one
                        // that loses messages while its members are away.
                        if durable_name.is_some()
                            && q.routing == RoutingType::Multicast
                            && !keeps_messages_unattended(q)
                        {
                            return Err(BrokerError::GroupNotDurable {
                                queue: qname.clone(),
                                address: dest.address.clone(),
                            });
                        }
                    }
                    plan.targets.push(Arc::clone(q))
                }
                None => {
                    if !settings.auto_create_queues {
                        return Err(BrokerError::NoSuchQueue(format!(
                            "{}::{qname}",
                            dest.address
                        )));
                    }
                    let r = routing.unwrap_or(settings.default_queue_routing_type);
                    if let Some(a) = entry
                        && !entry_has(a.anycast, a.multicast, r)
                        && plan.address_step.is_none()
                    {
                        plan.address_step = Some(AddressStep::AddRoutingType(r));
                    }
                    plan.new_queue = Some(NewQueue {
                        name: Arc::from(qname.as_str()),
                        routing: r,
                        origin: fqqn_origin(purpose, r),
                        traits: QueueTraits::default(),
                    });
                }
            }
            return Ok(plan);
        }

        match purpose {
            Purpose::Send => {
                let (anycast, multicast) = match routing {
                    Some(RoutingType::Anycast) => (true, false),
                    Some(RoutingType::Multicast) => (false, true),
                    None => (true, true),
                };
                if anycast {
                    let candidates: Vec<&Arc<Queue>> = queues
                        .iter()
                        .filter(|q| q.routing == RoutingType::Anycast)
                        .collect();
                    if candidates.is_empty() {
                        self.plan_anycast_queue(reg, dest, settings, &mut plan)?;
                    } else if let Some(a) = entry {
                        let i = a.next_anycast.fetch_add(1, Ordering::Relaxed) % candidates.len();
                        plan.targets.push(Arc::clone(candidates[i]));
                    }
                }
                if multicast {
                    plan.targets.extend(
                        queues
                            .iter()
                            .filter(|q| q.routing == RoutingType::Multicast)
                            .cloned(),
                    );
                    // A temporary topic is private: no wildcard subscription sees it.
                    let private = super::temporary::is_temporary_name(&dest.address);
                    for w in reg.wildcard_addresses.iter().filter(|_| !private) {
                        if **w != *dest.address
                            && wildcard::matches(w, &dest.address)
                            && let Some(wa) = reg.addresses.get(w)
                        {
                            plan.targets.extend(
                                wa.queues
                                    .iter()
                                    .filter(|q| q.routing == RoutingType::Multicast)
                                    .cloned(),
                            );
                        }
                    }
                }
            }
            Purpose::Subscribe { .. } if routing == Some(RoutingType::Anycast) => {
                match reg.queues.get(dest.address.as_str()) {
                    Some(q) if *q.address == *dest.address => plan.targets.push(Arc::clone(q)),
                    Some(q) => {
                        return Err(BrokerError::QueueAddressMismatch {
                            queue: dest.address.clone(),
                            actual: q.address.to_string(),
                            requested: dest.address.clone(),
                        });
                    }
                    None => self.plan_anycast_queue(reg, dest, settings, &mut plan)?,
                }
            }
            Purpose::Subscribe {
                durable_name,
                subscriber,
                selector,
                no_local,
            } => match durable_name {
                Some(name) => match reg.queues.get(name) {
                    Some(q) if *q.address != *dest.address => {
                        return Err(BrokerError::QueueAddressMismatch {
                            queue: name.to_string(),
                            actual: q.address.to_string(),
                            requested: dest.address.clone(),
                        });
                    }
                    Some(q) => {
                        check_owner(q, subscriber, auth)?;
                        if q.consumer_count() > 0 {
                            return Err(BrokerError::SubscriptionInUse(name.to_string()));
                        }
                        let existing = q.filter.as_ref().map(|f| f.text().to_string());
                        let requested = selector.map(|f| f.text().to_string());
                        if existing != requested {
                            return Err(BrokerError::SubscriptionSelectorChanged {
                                name: name.to_string(),
                                existing,
                                requested,
                            });
                        }
                        plan.targets.push(Arc::clone(q))
                    }
                    None => {
                        plan.new_queue = Some(NewQueue {
                            name: Arc::from(name),
                            routing: RoutingType::Multicast,
                            origin: QueueOrigin::DurableSubscription,
                            // No-local is the consumer's: a durable queue outlives the
                            // connection it would name.
                            traits: QueueTraits {
                                owner: Some(subscriber.clone()),
                                filter: selector.cloned(),
                                no_local: None,
                                single_consumer: true,
                                ..QueueTraits::default()
                            },
                        })
                    }
                },
                None => {
                    plan.new_queue = Some(NewQueue {
                        name: Arc::from(uuid::Uuid::new_v4().to_string().as_str()),
                        routing: RoutingType::Multicast,
                        origin: QueueOrigin::Subscription,
                        traits: QueueTraits {
                            owner: None,
                            filter: selector.cloned(),
                            no_local,
                            single_consumer: true,
                            ..QueueTraits::default()
                        },
                    })
                }
            },
        }
        Ok(plan)
    }

    /// The auto-created anycast queue named after its address, if the settings allow it.
    fn plan_anycast_queue(
        &self,
        reg: &Registry,
        dest: &Destination,
        settings: &AddressSettings,
        plan: &mut Plan,
    ) -> Result<(), BrokerError> {
        if !settings.auto_create_queues {
            return Err(BrokerError::NoSuchQueue(dest.address.clone()));
        }
        if let Some(q) = reg.queues.get(dest.address.as_str()) {
            return Err(BrokerError::QueueAddressMismatch {
                queue: dest.address.clone(),
                actual: q.address.to_string(),
                requested: dest.address.clone(),
            });
        }
        plan.new_queue = Some(NewQueue {
            name: Arc::from(dest.address.as_str()),
            routing: RoutingType::Anycast,
            origin: QueueOrigin::AutoCreated,
            traits: QueueTraits::default(),
        });
        Ok(())
    }

    /// Makes the plan's creations (under the write lock); returns the queue it created.
    pub(super) fn apply(
        &self,
        reg: &mut Registry,
        address: &str,
        plan: &mut Plan,
    ) -> Option<Arc<Queue>> {
        let name: Arc<str> = match reg.addresses.get_key_value(address) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(address),
        };
        match plan.address_step {
            Some(AddressStep::Create(r)) => {
                if !reg.addresses.contains_key(&name) {
                    let entry = self.new_address_entry(&name, true);
                    reg.insert_address(name.clone(), entry);
                }
                self.add_routing_type(reg, &name, r);
            }
            Some(AddressStep::AddRoutingType(r)) => self.add_routing_type(reg, &name, r),
            None => {}
        }
        if plan.address.is_none()
            && let Some(a) = reg.addresses.get(&name)
        {
            plan.address = Some(AddressRef {
                name: name.clone(),
                settings: Arc::clone(&a.settings),
                usage: Arc::clone(&a.usage),
            });
        }
        let q = plan.new_queue.as_ref()?;
        self.add_routing_type(reg, &name, q.routing);
        Some(self.create_queue(
            reg,
            &name,
            q.name.clone(),
            q.routing,
            q.origin,
            q.traits.clone(),
        ))
    }

    /// Resolves `dest` and makes whatever it needs, after `auth` allowed every creation.
    /// Returns the plan (its targets) and the queue it created, if any.
    pub(super) fn plan_and_apply(
        &self,
        dest: &Destination,
        purpose: Purpose<'_>,
        auth: &dyn Authorizer,
    ) -> Result<(Plan, Option<Arc<Queue>>), BrokerError> {
        {
            let reg = self.read();
            let plan = self.resolve(&reg, dest, purpose, auth)?;
            if !plan.creates() {
                return Ok((plan, None));
            }
        }
        // Creators take turns; readers (sends that create nothing) keep flowing.
        let reg = self.upgradable();
        let mut plan = self.resolve(&reg, dest, purpose, auth)?;
        plan.authorize(&dest.address, auth)?;
        if !plan.creates() {
            return Ok((plan, None));
        }
        let mut reg = parking_lot::RwLockUpgradableReadGuard::upgrade(reg);
        let created = self.apply(&mut reg, &dest.address, &mut plan);
        Ok((plan, created))
    }

    /// Whether `dest` could be reached by `auth` now, creating nothing: a transaction's SEND
    /// is checked this way, so an aborted transaction leaves nothing behind.
    pub(super) fn check(
        &self,
        dest: &Destination,
        purpose: Purpose<'_>,
        auth: &dyn Authorizer,
    ) -> Result<(), BrokerError> {
        let reg = self.read();
        self.resolve(&reg, dest, purpose, auth)?
            .authorize(&dest.address, auth)
    }
}

/// What a queue created on first use of `address::queue` is. A subscriber to a multicast
/// address names a consumer group: a queue of its own on the address, shared round-robin by
/// its members. A durable group (its members asked with `durable:true` or a durable
/// subscription name, see `session::subscribe`) is kept, with its messages, while all its
/// members are away and across restarts, like a JMS 2.0 shared durable subscription; any
/// other goes with its last member, like a shared non-durable one. Sends and anycast
/// subscribers get an auto-created queue, which auto-delete removes once it is unused.
fn fqqn_origin(purpose: Purpose<'_>, routing: RoutingType) -> QueueOrigin {
    match purpose {
        Purpose::Subscribe { durable_name, .. } if routing == RoutingType::Multicast => {
            if durable_name.is_some() {
                QueueOrigin::DurableSubscription
            } else {
                QueueOrigin::Subscription
            }
        }
        _ => QueueOrigin::AutoCreated,
    }
}

/// Whether a queue keeps what reaches it while nobody consumes: durable, and neither removed
/// with its last consumer nor auto-deleted once empty.
fn keeps_messages_unattended(q: &Queue) -> bool {
    q.durable && !q.auto_delete() && !q.exclusive_to_subscriber
}

fn entry_has(anycast: bool, multicast: bool, r: RoutingType) -> bool {
    match r {
        RoutingType::Anycast => anycast,
        RoutingType::Multicast => multicast,
    }
}
