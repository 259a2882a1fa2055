//! Subscribing: finding or creating the queue a consumer reads from (an anycast queue, a
//! fully qualified queue, or a multicast subscription queue, durable or not), and deleting
//! durable subscriptions. A durable subscription belongs to the user who created it: another
//! user may neither consume from it (by re-subscribing or by `address::queue`) nor delete it,
//! unless it has `manage` on the address (an administrator draining or removing one left
//! behind).

use super::{Broker, ConsumerHandle, QueueOrigin, Registry, SubscribeSpec};
use crate::broker::{AllowAll, Authorizer, BrokerError, Owner, Queue, RoutingType, wildcard};
use crate::security::Permission;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Broker {
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
                let q = self.ensure_fqqn_queue(&mut reg, &dest.address, qname, routing)?;
                check_owner(&q, &spec.subscriber, auth)?;
                q
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
                            QueueOrigin::AutoCreated,
                        )
                    }
                }
            } else {
                self.subscription_queue(
                    &mut reg,
                    &addr,
                    spec.durable_name.as_deref(),
                    &spec.subscriber,
                    auth,
                )?
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
        subscriber: &Owner,
        auth: &dyn Authorizer,
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
                    check_owner(q, subscriber, auth)?;
                    if q.consumer_count() > 0 {
                        return Err(BrokerError::SubscriptionInUse(name.to_string()));
                    }
                    return Ok(Arc::clone(q));
                }
                Ok(self.create_owned_queue(
                    reg,
                    address,
                    Arc::from(name),
                    RoutingType::Multicast,
                    QueueOrigin::DurableSubscription,
                    Some(subscriber.clone()),
                ))
            }
            None => {
                let name: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string().as_str());
                Ok(self.create_queue(
                    reg,
                    address,
                    name,
                    RoutingType::Multicast,
                    QueueOrigin::Subscription,
                ))
            }
        }
    }

    /// Deletes a durable subscription queue (UNSUBSCRIBE of a durable subscriber) on behalf
    /// of `subscriber`, who must own it or have `manage`. `Ok(false)`: there was none.
    pub fn delete_subscription(
        &self,
        queue_name: &str,
        subscriber: &Owner,
        auth: &dyn Authorizer,
    ) -> Result<bool, BrokerError> {
        let mut reg = self.write();
        let Some(q) = reg.queues.get(queue_name).cloned() else {
            return Ok(false);
        };
        check_owner(&q, subscriber, auth)?;
        q.mark_deleted(true);
        self.unregister_queue(&mut reg, &q);
        Ok(true)
    }
}

/// Refuses `subscriber` on a queue another user owns, unless it may `manage` the address.
fn check_owner(q: &Queue, subscriber: &Owner, auth: &dyn Authorizer) -> Result<(), BrokerError> {
    match &q.owner {
        Some(owner) if !owner.same_user(subscriber) => auth
            .authorize(Permission::Manage, &q.address)
            .map_err(|_| BrokerError::NotOwner(q.name.to_string())),
        _ => Ok(()),
    }
}
