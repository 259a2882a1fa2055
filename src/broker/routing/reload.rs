//! What a configuration reload changes in the core: the address settings of every existing
//! address and queue, and the declared addresses and queues that are new. Each is applied
//! under one registry write lock, so no operation sees half of a reload.

use std::sync::Arc;

use super::{Broker, QueueOrigin, QueueTraits, configured_filter};
use crate::broker::BrokerError;
use crate::broker::queue::QueueKindKeys;
use crate::broker::settings::{FullPolicy, SettingsRepository};
use crate::config::{AddressConfig, Config};

impl Broker {
    /// Replaces the `[[address-settings]]` with `config`'s and resolves every existing
    /// address again: its limits, full policy, expiry and auto-delete rules take effect at
    /// once, its queues' delivery attempts and redelivery delays from the next message they
    /// give back, and dead-letter and expiry addresses named for the first time are created.
    /// The `default-*` queue-kind keys describe queues created on demand, so they apply to
    /// queues created from now on.
    pub fn replace_address_settings(&self, config: &Config) {
        let repo = Arc::new(SettingsRepository::from_config(&config.address_settings));
        let mut reg = self.write();
        // Stored under the write lock so that no address is created from the old settings
        // after the pass below has run.
        self.settings.store(Arc::clone(&repo));
        let pages_possible = self.journal.is_some();
        for (name, entry) in reg.addresses.iter_mut() {
            let settings = repo.resolve(name);
            entry.usage.set_limits(
                settings.max_size_bytes,
                settings.full_policy == FullPolicy::Page && pages_possible,
            );
            for q in &entry.queues {
                q.set_delivery(
                    q.auto_created && settings.auto_delete_queues,
                    settings.max_delivery_attempts,
                    settings.redelivery,
                );
            }
            entry.settings = Arc::new(settings);
        }
        self.create_divert_addresses(&mut reg, config);
    }

    /// Why the declared queues of `addresses` cannot be added as they are: a queue of the
    /// same name already exists on another address or with another routing type (created on
    /// demand, or declared elsewhere). Keys are the configuration's (`addresses[a].queues[q]`).
    pub fn declaration_conflicts(&self, addresses: &[AddressConfig]) -> Vec<(String, String)> {
        let reg = self.read();
        let mut conflicts = Vec::new();
        for a in addresses {
            for q in &a.queues {
                let Some(existing) = reg.queues.get(q.name.as_str()) else {
                    continue;
                };
                let routing = q.routing_type.into();
                if *existing.address != *a.name || existing.routing != routing {
                    conflicts.push((
                        format!("addresses[{}].queues[{}]", a.name, q.name),
                        format!(
                            "queue \"{}\" already exists on address \"{}\" ({:?}); it cannot also be declared on \"{}\" ({:?}) without a restart",
                            q.name, existing.address, existing.routing, a.name, routing
                        ),
                    ));
                }
            }
        }
        conflicts
    }

    /// Adds what `addresses` declares and the broker lacks: addresses, routing types and
    /// queues. Nothing is removed or changed: an address that exists already (also one made
    /// on demand) gains the declared routing types and queues and is no longer auto-deleted,
    /// and a queue that exists already is left as it is. Returns the names of the queues
    /// created.
    pub fn declare(&self, addresses: &[AddressConfig]) -> Result<Vec<String>, BrokerError> {
        // Compiled before the lock is taken: a bad filter changes nothing.
        let mut filters = Vec::new();
        for a in addresses {
            for q in &a.queues {
                filters.push(configured_filter(&q.filter)?);
            }
        }
        let mut filters = filters.into_iter();
        let mut created = Vec::new();
        let mut reg = self.write();
        for a in addresses {
            let name: Arc<str> = Arc::from(a.name.as_str());
            match reg.addresses.get_mut(&name) {
                Some(entry) => entry.auto_created = false,
                None => {
                    let entry = self.new_address_entry(&name, false);
                    reg.insert_address(name.clone(), entry);
                }
            }
            for r in &a.routing_types {
                self.add_routing_type(&mut reg, &name, (*r).into());
            }
            for q in &a.queues {
                let filter = filters.next().flatten();
                if reg.queues.contains_key(q.name.as_str()) {
                    continue;
                }
                self.create_queue(
                    &mut reg,
                    &name,
                    Arc::from(q.name.as_str()),
                    q.routing_type.into(),
                    QueueOrigin::Configured {
                        durable: q.durable,
                        incarnation: None,
                    },
                    QueueTraits {
                        filter,
                        kind_keys: QueueKindKeys::from(q),
                        ..QueueTraits::default()
                    },
                );
                created.push(q.name.clone());
            }
        }
        Ok(created)
    }
}
