//! Sending: resolving a destination to target queues (creating what the address settings
//! allow), routing one message to them, checking an address's capacity, and re-routing
//! dead letters.

use super::{
    Broker, Capacity, Destination, MessageDraft, QueueOrigin, Registry, SendReport, Targets,
};
use crate::broker::{
    AllowAll, Authorizer, BrokerError, FullPolicy, Message, Queue, RoutingType, now_millis,
    persistence, wildcard,
};
use crate::journal::JournalOp;
use crate::security::Permission;
use bytestring::ByteString;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Broker {
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
        self.check_address_words(&dest.address)?;
        auth.authorize(Permission::Send, &dest.address)?;
        let (targets, settings, usage, address) = self.resolve_targets(dest, auth)?;
        if targets.is_empty() {
            return Ok(SendReport {
                message: None,
                queues: Vec::new(),
            });
        }
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let mut message = Message {
            id,
            address,
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
                    let (again, ..) = self.resolve_targets(
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
        self.check_address_words(&dest.address)?;
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
                    QueueOrigin::AutoCreated,
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
        let Some((name, a)) = reg.addresses.get_key_value(dest.address.as_str()) else {
            return Ok(None);
        };
        let name = Arc::clone(name);
        let settings = Arc::clone(&a.settings);
        let usage = Arc::clone(&a.usage);
        if let Some(qname) = &dest.queue {
            return match reg.queues.get(qname.as_str()) {
                Some(q) if *q.address != *dest.address => Err(BrokerError::QueueAddressMismatch {
                    queue: qname.clone(),
                    actual: q.address.to_string(),
                    requested: dest.address.clone(),
                }),
                Some(q) => Ok(Some((vec![Arc::clone(q)], settings, usage, name))),
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
        Ok(Some((targets, settings, usage, name)))
    }

    pub(super) fn dead_letter(&self, messages: Vec<Arc<Message>>) {
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
