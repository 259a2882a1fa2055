//! Temporary destinations (request/reply, RabbitMQ's and ActiveMQ's `/temp-queue/` and
//! `/temp-topic/`): an address private to one connection, named uniquely broker-wide, that
//! goes when its connection goes, with whatever waits in it.
//!
//! The names live under two reserved prefixes, [`TEMP_QUEUE_PREFIX`] and
//! [`TEMP_TOPIC_PREFIX`] (as RabbitMQ reserves `amq.`), which is what lets the routing plan
//! refuse, by name alone, to auto-create one that no longer exists: a reply sent after its
//! requester left would otherwise make a queue nobody will ever read. Security entries can
//! match them like any address (`temp-queue.#`).
//!
//! What a temporary destination is, in the address model:
//! - a temp queue: an anycast address with one non-durable queue of the same name;
//! - a temp topic: a multicast address whose subscriptions are its owner's non-durable ones.
//!
//! Anyone may send to one; only its connection may subscribe to it (or browse it). Nothing
//! of it is ever journaled, and nothing may be added to it but its owner's non-durable
//! subscriptions (no durable subscription, no other queue, no other routing type), and
//! wildcard subscriptions never see what is sent to it.

use std::sync::Arc;

use super::plan::Plan;
use super::{Broker, QueueOrigin, QueueTraits};
use crate::broker::{BrokerError, RoutingType};
use crate::security::{Authorizer, Permission};

/// Prefix of every temporary queue's address (and queue) name.
pub const TEMP_QUEUE_PREFIX: &str = "temp-queue.";
/// Prefix of every temporary topic's address name.
pub const TEMP_TOPIC_PREFIX: &str = "temp-topic.";

/// Longest part of the client's own name kept in the generated one (for people reading
/// names in logs; uniqueness comes from the uuid).
const MAX_LABEL: usize = 32;

/// Which kind of temporary destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporaryKind {
    /// `/temp-queue/NAME`: point-to-point.
    Queue,
    /// `/temp-topic/NAME`: fan-out to the owner's subscriptions.
    Topic,
}

impl TemporaryKind {
    /// How the generated address routes.
    pub fn routing(self) -> RoutingType {
        match self {
            TemporaryKind::Queue => RoutingType::Anycast,
            TemporaryKind::Topic => RoutingType::Multicast,
        }
    }
}

/// Whether `address` is under a prefix reserved for temporary destinations.
pub fn is_temporary_name(address: &str) -> bool {
    address.starts_with(TEMP_QUEUE_PREFIX) || address.starts_with(TEMP_TOPIC_PREFIX)
}

/// A temporary destination held by its connection: dropping it (the session closing, or its
/// future being dropped) deletes the address, its queues and the messages in them.
#[derive(Debug)]
pub struct TemporaryDestination {
    broker: Arc<Broker>,
    /// The generated address name (also the queue's, for a temp queue).
    pub name: Arc<str>,
    /// Queue or topic.
    pub kind: TemporaryKind,
}

impl Drop for TemporaryDestination {
    fn drop(&mut self) {
        self.broker.delete_temporary(&self.name);
    }
}

/// The generated name: the prefix, a fresh uuid, and the client's name made safe (no `.`,
/// wildcard or `::`, so the name is exactly two words and never a pattern).
fn generated_name(kind: TemporaryKind, label: &str) -> String {
    let prefix = match kind {
        TemporaryKind::Queue => TEMP_QUEUE_PREFIX,
        TemporaryKind::Topic => TEMP_TOPIC_PREFIX,
    };
    let safe: String = label
        .chars()
        .take(MAX_LABEL)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{}-{safe}", uuid::Uuid::new_v4().simple())
}

impl Broker {
    /// Creates a temporary destination for connection `connection`. Authorized like the
    /// auto-creation of a non-durable queue: `create-address` and `create-non-durable-queue`
    /// on the generated name (security entries match it, e.g. `temp-queue.#`).
    pub fn create_temporary(
        self: &Arc<Self>,
        kind: TemporaryKind,
        label: &str,
        connection: u64,
        auth: &dyn Authorizer,
    ) -> Result<TemporaryDestination, BrokerError> {
        let name = generated_name(kind, label);
        self.check_address_words(&name)?;
        auth.authorize(Permission::CreateAddress, &name)?;
        auth.authorize(Permission::CreateNonDurableQueue, &name)?;
        let name: Arc<str> = Arc::from(name);
        let mut reg = self.write();
        // Not auto-created: the address stays while its connection lives, even when its last
        // subscription queue goes, so that sends to it are not refused as gone meanwhile.
        let entry = self.new_address_entry(&name, false);
        reg.insert_address(Arc::clone(&name), entry);
        self.add_routing_type(&mut reg, &name, kind.routing());
        if kind == TemporaryKind::Queue {
            self.create_queue(
                &mut reg,
                &name,
                Arc::clone(&name),
                RoutingType::Anycast,
                QueueOrigin::Temporary,
                QueueTraits::default(),
            );
        }
        reg.temporary.insert(Arc::clone(&name), connection);
        Ok(TemporaryDestination {
            broker: Arc::clone(self),
            name,
            kind,
        })
    }

    /// Removes a temporary destination: its queues (with their messages) and its address.
    fn delete_temporary(&self, name: &str) {
        let mut reg = self.write();
        if reg.temporary.remove(name).is_none() {
            return;
        }
        let Some(address) = reg.addresses.remove(name) else {
            return;
        };
        for q in &address.queues {
            q.mark_deleted(true);
            if reg.queues.get(&q.name).is_some_and(|r| Arc::ptr_eq(r, q)) {
                reg.queues.remove(&q.name);
            }
        }
    }

    /// The connection a live temporary destination belongs to; `None` for any other address.
    pub fn temporary_owner(&self, address: &str) -> Option<u64> {
        if !is_temporary_name(address) {
            return None;
        }
        self.read().temporary.get(address).copied()
    }

    /// Refuses a subscriber (or browser) on another connection's temporary destination.
    pub(super) fn check_temporary_reader(
        &self,
        address: &str,
        connection: Option<u64>,
    ) -> Result<(), BrokerError> {
        match self.temporary_owner(address) {
            Some(owner) if Some(owner) != connection => {
                Err(BrokerError::TemporaryPrivate(address.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// A plan for an address missing from the registry: a reserved name means a temporary
/// destination whose connection has gone, never one to auto-create.
pub(super) fn refuse_missing(address: &str) -> Result<(), BrokerError> {
    if is_temporary_name(address) {
        return Err(BrokerError::TemporaryGone(address.to_string()));
    }
    Ok(())
}

/// A plan that creates something on a temporary address: only a non-durable subscription
/// queue (its owner subscribing to a temp topic) may be added; anything else would outlive
/// the rules above (a durable subscription would be journaled) or make a queue nobody reads.
pub(super) fn check_creation(address: &str, plan: &Plan) -> Result<(), BrokerError> {
    if !is_temporary_name(address) {
        return Ok(());
    }
    let subscription_only = plan.address_step.is_none()
        && plan
            .new_queue
            .as_ref()
            .is_none_or(|q| q.origin == QueueOrigin::Subscription);
    if subscription_only {
        Ok(())
    } else {
        Err(BrokerError::TemporaryFixed(address.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_two_safe_words_and_unique() {
        let a = generated_name(TemporaryKind::Queue, "re.ply::*#/x");
        let b = generated_name(TemporaryKind::Queue, "re.ply::*#/x");
        assert_ne!(a, b);
        assert!(
            a.starts_with(TEMP_QUEUE_PREFIX) && a.ends_with("-re_ply_____x"),
            "{a}"
        );
        assert_eq!(a.split('.').count(), 2, "{a}");
        assert!(!crate::address::wildcard::is_wildcard(&a));
        let long = generated_name(TemporaryKind::Topic, &"x".repeat(10_000));
        assert!(long.starts_with(TEMP_TOPIC_PREFIX));
        assert!(long.len() < TEMP_TOPIC_PREFIX.len() + 33 + MAX_LABEL + 1);
        assert!(is_temporary_name(&a) && is_temporary_name(&long));
        assert!(!is_temporary_name("orders") && !is_temporary_name("temp-queue"));
    }
}
