//! Subscribing: finding or creating the queue a consumer reads from (an anycast queue, a
//! fully qualified queue, or a multicast subscription queue, durable or not), and deleting
//! durable subscriptions. A durable subscription belongs to the user who created it: another
//! user may neither consume from it (by re-subscribing or by `address::queue`) nor delete it,
//! unless it has `manage` on the address (an administrator draining or removing one left
//! behind).

use super::plan::Purpose;
use super::{Broker, ConsumerHandle, SubscribeSpec};
use crate::broker::{BrokerError, ConsumerSpec, Owner, Queue, RoutingType};
use crate::security::{AllowAll, Authorizer, Permission};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How often a subscriber plans again when the queue it found was deleted before it could
/// attach: each retry needs another consumer to leave in that instant, so a few suffice.
const MAX_ATTACH_ATTEMPTS: u32 = 8;

impl Broker {
    /// Attaches a consumer. It receives nothing until [`ConsumerHandle::start`].
    pub fn subscribe(self: &Arc<Self>, spec: SubscribeSpec) -> Result<ConsumerHandle, BrokerError> {
        self.subscribe_as(spec, &AllowAll)
    }

    /// [`Broker::subscribe`] on behalf of someone whose rights `auth` checks: `consume` on the
    /// address, then, before anything is created, every creation the plan needs.
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
        self.check_temporary_reader(&dest.address, spec.connection)?;
        let purpose = Purpose::Subscribe {
            durable_name: spec.durable_name.as_deref(),
            subscriber: &spec.subscriber,
            selector: spec.selector.as_ref(),
            no_local: spec.no_local,
        };
        let id = self.next_consumer_id.fetch_add(1, Ordering::Relaxed);
        let mut attempts = 0;
        let queue = loop {
            let (plan, created) = self.plan_and_apply(dest, purpose, auth)?;
            let queue = created
                .or_else(|| plan.targets.into_iter().next())
                .ok_or_else(|| BrokerError::NoSuchQueue(dest.address.clone()))?;
            // A shared queue found by name (a consumer group, an auto-created queue) may lose
            // its last consumer and be deleted between planning and attaching; attaching
            // under the registry lock, only to a queue still registered, means the deletion
            // either came first (plan again) or sees this consumer and keeps the queue.
            let reg = self.read();
            if !reg
                .queues
                .get(&queue.name)
                .is_some_and(|q| Arc::ptr_eq(q, &queue))
            {
                drop(reg);
                attempts += 1;
                if attempts < MAX_ATTACH_ATTEMPTS {
                    continue;
                }
                return Err(BrokerError::NoSuchQueue(format!(
                    "{} (deleted while subscribing)",
                    queue.name
                )));
            }
            // What the queue already filters at routing, the consumer need not check again.
            let selector = spec.selector.filter(|s| queue.filter.as_ref() != Some(s));
            let no_local = spec.no_local.filter(|c| queue.no_local != Some(*c));
            if queue.is_stream() && (selector.is_some() || no_local.is_some()) {
                return Err(BrokerError::NotOnStream(format!(
                    "queue '{}' is a retained stream (non-destructive): a consumer there may not have a {}",
                    queue.name,
                    if selector.is_some() {
                        "selector"
                    } else {
                        "no-local"
                    }
                )));
            }
            queue.add_consumer(ConsumerSpec {
                id,
                sink: spec.sink,
                window: spec.window,
                reader: spec.reader,
                priority: spec.priority,
                selector,
                no_local,
                stream: spec.stream,
                exclusive: spec.exclusive,
            });
            drop(reg);
            break queue;
        };
        Ok(ConsumerHandle {
            id,
            queue,
            broker: Arc::clone(self),
        })
    }

    /// Deletes a durable subscription queue (UNSUBSCRIBE of a durable subscriber, or of the
    /// last member of a durable consumer group) on behalf of `subscriber`, who must own it or
    /// have `manage`. `Ok(false)`: there was none, it is not a subscription (multicast) queue,
    /// or another consumer still uses it.
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
        // Only a subscription goes this way, never an anycast queue; and a consumer group
        // stays while other members still consume from it (the last one to leave with the
        // durable header deletes it).
        if q.routing != RoutingType::Multicast || q.consumer_count() > 0 {
            return Ok(false);
        }
        q.mark_deleted(true);
        self.unregister_queue(&mut reg, &q);
        Ok(true)
    }
}

/// Refuses `subscriber` on a queue another user owns, unless it may `manage` the address.
pub(super) fn check_owner(
    q: &Queue,
    subscriber: &Owner,
    auth: &dyn Authorizer,
) -> Result<(), BrokerError> {
    match &q.owner {
        Some(owner) if !owner.same_user(subscriber) => auth
            .authorize(Permission::Manage, &q.address)
            .map_err(|_| BrokerError::NotOwner(q.name.to_string())),
        _ => Ok(()),
    }
}
