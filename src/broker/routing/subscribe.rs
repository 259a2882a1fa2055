//! Subscribing: finding or creating the queue a consumer reads from (an anycast queue, a
//! fully qualified queue, or a multicast subscription queue, durable or not), and deleting
//! durable subscriptions.

use super::plan::Purpose;
use super::{Broker, ConsumerHandle, SubscribeSpec};
use crate::broker::{AllowAll, Authorizer, BrokerError};
use crate::security::Permission;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
        let purpose = Purpose::Subscribe {
            durable_name: spec.durable_name.as_deref(),
        };
        let (plan, created) = self.plan_and_apply(dest, purpose, auth)?;
        let queue = created
            .or_else(|| plan.targets.into_iter().next())
            .ok_or_else(|| BrokerError::NoSuchQueue(dest.address.clone()))?;
        let id = self.next_consumer_id.fetch_add(1, Ordering::Relaxed);
        queue.add_consumer(id, spec.sink, spec.window, spec.reader);
        Ok(ConsumerHandle {
            id,
            queue,
            broker: Arc::clone(self),
        })
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
}
