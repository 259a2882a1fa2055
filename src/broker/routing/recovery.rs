//! Rebuilding durable queues and their messages from what the journal recovered at start-up.

use super::{Broker, QueueOrigin, QueueTraits, Registry};
use crate::broker::Filter;
use crate::broker::persistence;
use crate::broker::persistence::Restored;
use crate::broker::{Queue, RoutingType};
use crate::journal::{Recovered, RecoveredStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Broker {
    /// Rebuilds durable queues and their messages, in order, with their delivery counts.
    pub(super) fn recover(&self, reg: &mut Registry, recovered: Recovered) {
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
            self.create_queue(
                reg,
                &address,
                Arc::from(rec.name.as_str()),
                routing,
                QueueOrigin::Recovered {
                    auto_created: rec.auto_created && rec.durable_subscription.is_none(),
                    incarnation: rec.incarnation,
                },
                QueueTraits {
                    owner: rec.owner.as_ref().map(persistence::owner_of),
                    filter: rec.filter.as_deref().and_then(|text| {
                        Filter::selector(text)
                            .inspect_err(|e| {
                                tracing::warn!(queue = %rec.name, error = %e, "stored filter no longer parses; queue recovered without it")
                            })
                            .ok()
                    }),
                    no_local: None,
                    // A durable subscription (it has an owner; a consumer group has none).
                    single_consumer: routing == RoutingType::Multicast && rec.owner.is_some(),
                    ..QueueTraits::default()
                },
            );
        }
        let mut restored = Restored::new();
        let mut count = 0usize;
        let mut streams: std::collections::HashMap<String, RecoveredStream> = recovered
            .streams
            .into_iter()
            .map(|s| (s.queue.clone(), s))
            .collect();
        for rq in recovered.messages {
            let Some(queue) = reg.queues.get(rq.queue.as_str()).cloned() else {
                tracing::warn!(queue = %rq.queue, "journal has messages for an unknown queue; skipped");
                continue;
            };
            let usage = reg
                .addresses
                .get(&queue.address)
                .map(|a| Arc::clone(&a.usage));
            if queue.is_stream() {
                let info = streams.remove(&rq.queue).unwrap_or_default();
                let messages: Vec<_> = rq
                    .refs
                    .iter()
                    .map(|r| {
                        restored
                            .entry(r.message.id)
                            .or_insert_with(|| {
                                let mut m = persistence::restored(&r.message);
                                m.usage = usage.as_ref().map(|u| u.charge_message(m.size() as u64));
                                Arc::new(m)
                            })
                            .clone()
                    })
                    .collect();
                count += messages.len();
                recover_stream(&queue, messages, info);
                continue;
            }
            let tail = rq.tail;
            for r in rq.refs {
                let message = restored
                    .entry(r.message.id)
                    .or_insert_with(|| {
                        let mut m = persistence::restored(&r.message);
                        m.usage = usage.as_ref().map(|u| u.charge_message(m.size() as u64));
                        Arc::new(m)
                    })
                    .clone();
                // A redelivery delay recorded for the ref, else the message's own schedule.
                let deliver_at = if r.deliver_at != 0 {
                    r.deliver_at
                } else if r.delivery_count == 0 {
                    message.deliver_at
                } else {
                    0
                };
                if queue.restore(message, r.delivery_count, deliver_at).is_ok() {
                    count += 1;
                }
            }
            if let Some(tail) = tail {
                queue.set_recovered_tail(tail);
            }
        }
        // Streams whose every message went (retention) still keep their offsets and
        // consumers' stored offsets.
        for (name, info) in streams {
            if let Some(queue) = reg.queues.get(name.as_str()).cloned() {
                recover_stream(&queue, Vec::new(), info);
            }
        }
        tracing::info!(
            queues = recovered.queues.len(),
            messages = count,
            "recovered durable state from the journal"
        );
    }
}

/// Hands a stream queue its recovered messages, offsets and consumers' stored offsets.
fn recover_stream(
    queue: &Arc<Queue>,
    messages: Vec<Arc<crate::broker::Message>>,
    info: RecoveredStream,
) {
    let consumers = info
        .consumers
        .into_iter()
        .map(|(name, offset)| (Arc::from(name.as_str()), offset))
        .collect();
    queue.recover_stream(messages, &info.offsets, info.base, consumers);
}
