//! Works out, without changing anything, which permissions a send or subscribe would need for
//! what it is about to auto-create. Runs under the same write lock as the creation itself, so
//! the answer cannot go stale and a refusal leaves no half-created address or queue behind.
//! Mirrors the creation paths of `resolve_targets`, `ensure_address`, `ensure_fqqn_queue`,
//! `subscribe` and `subscription_queue`: keep them in step.

use super::{Broker, Destination, Registry};
use crate::broker::RoutingType;
use crate::security::Permission;

impl Broker {
    /// Permissions a send to `dest` needs for what it would create.
    pub(super) fn send_creates(&self, reg: &Registry, dest: &Destination) -> Vec<Permission> {
        let mut need = Vec::new();
        let routing = self.address_creates(reg, dest, true, &mut need);
        let settings = self.settings.resolve(&dest.address);
        if !settings.auto_create_queues {
            return need;
        }
        if let Some(q) = &dest.queue {
            if !reg.queues.contains_key(q.as_str()) {
                need.push(Permission::CreateDurableQueue);
            }
        } else if routing != Some(RoutingType::Multicast) {
            let has_anycast = reg
                .addresses
                .get(dest.address.as_str())
                .is_some_and(|a| a.queues.iter().any(|q| q.routing == RoutingType::Anycast));
            if !has_anycast && !reg.queues.contains_key(dest.address.as_str()) {
                need.push(Permission::CreateDurableQueue);
            }
        }
        need
    }

    /// Permissions a subscription to `dest` needs for what it would create.
    pub(super) fn subscribe_creates(
        &self,
        reg: &Registry,
        dest: &Destination,
        durable_name: Option<&str>,
    ) -> Vec<Permission> {
        let mut need = Vec::new();
        let routing = self.address_creates(reg, dest, false, &mut need);
        let auto_queues = self.settings.resolve(&dest.address).auto_create_queues;
        if let Some(q) = &dest.queue {
            if auto_queues && !reg.queues.contains_key(q.as_str()) {
                need.push(Permission::CreateDurableQueue);
            }
        } else if routing == Some(RoutingType::Anycast) {
            if auto_queues && !reg.queues.contains_key(dest.address.as_str()) {
                need.push(Permission::CreateDurableQueue);
            }
        } else {
            match durable_name {
                Some(name) if !reg.queues.contains_key(name) => {
                    need.push(Permission::CreateDurableQueue)
                }
                Some(_) => {}
                None => need.push(Permission::CreateNonDurableQueue),
            }
        }
        need
    }

    /// Whether the address (or a routing type on it) would be created, and the routing type
    /// `ensure_address` would settle on.
    fn address_creates(
        &self,
        reg: &Registry,
        dest: &Destination,
        for_send: bool,
        need: &mut Vec<Permission>,
    ) -> Option<RoutingType> {
        match reg.addresses.get(dest.address.as_str()) {
            Some(a) => match dest.routing {
                None => match (a.anycast, a.multicast) {
                    (true, false) => Some(RoutingType::Anycast),
                    (false, true) => Some(RoutingType::Multicast),
                    _ if for_send => None,
                    _ => Some(RoutingType::Multicast),
                },
                Some(r) => {
                    let has = match r {
                        RoutingType::Anycast => a.anycast,
                        RoutingType::Multicast => a.multicast,
                    };
                    if !has && a.settings.auto_create_addresses {
                        need.push(Permission::CreateAddress);
                    }
                    Some(r)
                }
            },
            None => {
                let settings = self.settings.resolve(&dest.address);
                if settings.auto_create_addresses {
                    need.push(Permission::CreateAddress);
                }
                Some(
                    dest.routing
                        .unwrap_or(settings.default_address_routing_type),
                )
            }
        }
    }
}
