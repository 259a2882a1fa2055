//! Rebuilding durable queues and their messages from what the journal recovered at start-up.

use super::{Broker, QueueOrigin, QueueTraits, Registry};
use crate::broker::Filter;
use crate::broker::persistence;
use crate::broker::persistence::Restored;
use crate::broker::{Queue, RoutingType};
use crate::journal::{JournalOp, Recovered, RecoveredStream};
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
        let mut restored = Restored::new(Arc::clone(&self.large));
        // Refs of messages that could not be rebuilt (their file is gone): deleted, so the
        // next start does not warn about them again.
        let mut unrecoverable = Vec::new();
        let mut count = 0usize;
        let mut streams: std::collections::HashMap<String, RecoveredStream> = recovered
            .streams
            .into_iter()
            .map(|s| (s.queue.clone(), s))
            .collect();
        // Messages recovery left on disk are not rebuilt now, so the files they name are not
        // known: cleaning waits for a start that loads every message.
        let left_on_disk = recovered.messages.iter().any(|q| q.tail.is_some());
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
                    .filter_map(|r| restored.message(&r.message, usage.as_ref()))
                    .collect();
                count += messages.len();
                recover_stream(&queue, messages, info);
                continue;
            }
            let tail = rq.tail;
            for r in rq.refs {
                let Some(message) = restored.message(&r.message, usage.as_ref()) else {
                    unrecoverable.push(JournalOp::DeleteRef {
                        queue: Arc::clone(&queue.name),
                        incarnation: queue.incarnation,
                        message_id: r.message.id,
                    });
                    continue;
                };
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
        // Files of messages that were not persistent, acknowledged, or never confirmed.
        if left_on_disk {
            tracing::info!(
                "part of the journal was left on disk: unreferenced large message files are deleted at a later start"
            );
        } else {
            self.large.remove_unreferenced(&restored.files());
        }
        if let Some(journal) = self.journal.as_ref().filter(|_| !unrecoverable.is_empty()) {
            journal.submit_detached(unrecoverable);
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
