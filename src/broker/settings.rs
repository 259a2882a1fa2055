//! Address settings resolved for one address: every matching `[[address-settings]]` entry,
//! least specific first, each overriding the keys it sets. The configured entries are
//! converted to core types once, when the broker is built.

use super::RoutingType;
use crate::address::wildcard;
use crate::config::{AddressFullPolicyConfig, AddressSettingsEntry, RoutingTypeConfig};

/// What a full address does to a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Hold the producer (stop reading its socket) until space frees up.
    Block,
    /// Refuse the send.
    Fail,
    /// Drop the message.
    Drop,
}

/// Concrete settings for one address; no option left open.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressSettings {
    pub auto_create_addresses: bool,
    pub auto_create_queues: bool,
    pub auto_delete_addresses: bool,
    pub auto_delete_queues: bool,
    pub default_address_routing_type: RoutingType,
    pub default_queue_routing_type: RoutingType,
    pub default_persistent: bool,
    /// `None` means no limit.
    pub max_size_bytes: Option<u64>,
    pub full_policy: FullPolicy,
    /// `None` means unlimited redelivery.
    pub max_delivery_attempts: Option<u32>,
    pub dead_letter_address: Option<String>,
}

impl Default for AddressSettings {
    fn default() -> Self {
        AddressSettings {
            auto_create_addresses: true,
            auto_create_queues: true,
            auto_delete_addresses: true,
            auto_delete_queues: true,
            default_address_routing_type: RoutingType::Multicast,
            default_queue_routing_type: RoutingType::Multicast,
            default_persistent: true,
            max_size_bytes: None,
            full_policy: FullPolicy::Block,
            max_delivery_attempts: None,
            dead_letter_address: None,
        }
    }
}

/// One `[[address-settings]]` entry in the core's own terms, converted from the
/// configuration once when the broker is built: each field is `Some` when the entry sets
/// that key, holding the value it sets (so the core never reads config types at run time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsEntry {
    /// The address pattern (Artemis wildcards).
    pub pattern: String,
    pub auto_create_addresses: Option<bool>,
    pub auto_create_queues: Option<bool>,
    pub auto_delete_addresses: Option<bool>,
    pub auto_delete_queues: Option<bool>,
    pub default_address_routing_type: Option<RoutingType>,
    pub default_queue_routing_type: Option<RoutingType>,
    pub default_persistent: Option<bool>,
    /// `Some(None)`: the entry sets no limit.
    pub max_size_bytes: Option<Option<u64>>,
    pub full_policy: Option<FullPolicy>,
    /// `Some(None)`: the entry sets unlimited redelivery.
    pub max_delivery_attempts: Option<Option<u32>>,
    /// `Some(None)`: the entry sets no dead-letter address.
    pub dead_letter_address: Option<Option<String>>,
}

impl From<&AddressSettingsEntry> for SettingsEntry {
    /// Reads the configured entry once: a negative `max-size-bytes` means no limit, zero
    /// `max-delivery-attempts` unlimited redelivery, an empty `dead-letter-address` none.
    fn from(e: &AddressSettingsEntry) -> Self {
        SettingsEntry {
            pattern: e.pattern.clone(),
            auto_create_addresses: e.auto_create_addresses,
            auto_create_queues: e.auto_create_queues,
            auto_delete_addresses: e.auto_delete_addresses,
            auto_delete_queues: e.auto_delete_queues,
            default_address_routing_type: e.default_address_routing_type.map(Into::into),
            default_queue_routing_type: e.default_queue_routing_type.map(Into::into),
            default_persistent: e.default_persistent,
            max_size_bytes: e.max_size_bytes.map(|v| u64::try_from(v).ok()),
            full_policy: e.address_full_policy.map(|v| match v {
                AddressFullPolicyConfig::Block => FullPolicy::Block,
                AddressFullPolicyConfig::Fail => FullPolicy::Fail,
                AddressFullPolicyConfig::Drop => FullPolicy::Drop,
            }),
            max_delivery_attempts: e.max_delivery_attempts.map(|v| (v > 0).then_some(v)),
            dead_letter_address: e
                .dead_letter_address
                .as_ref()
                .map(|v| (!v.is_empty()).then(|| v.clone())),
        }
    }
}

/// All configured entries, ready to resolve an address name.
#[derive(Debug, Clone, Default)]
pub struct SettingsRepository {
    entries: Vec<SettingsEntry>,
}

impl SettingsRepository {
    /// Sorts entries least specific first once, so `resolve` is a single pass.
    pub fn new(mut entries: Vec<SettingsEntry>) -> Self {
        entries.sort_by_key(|e| wildcard::specificity(&e.pattern));
        SettingsRepository { entries }
    }

    /// The repository of the configured `[[address-settings]]`, converted to core types.
    pub fn from_config(entries: &[AddressSettingsEntry]) -> Self {
        Self::new(entries.iter().map(SettingsEntry::from).collect())
    }

    /// Merges every entry whose pattern matches `address` over the built-in defaults.
    pub fn resolve(&self, address: &str) -> AddressSettings {
        let mut s = AddressSettings::default();
        for e in self
            .entries
            .iter()
            .filter(|e| wildcard::matches(&e.pattern, address))
        {
            if let Some(v) = e.auto_create_addresses {
                s.auto_create_addresses = v;
            }
            if let Some(v) = e.auto_create_queues {
                s.auto_create_queues = v;
            }
            if let Some(v) = e.auto_delete_addresses {
                s.auto_delete_addresses = v;
            }
            if let Some(v) = e.auto_delete_queues {
                s.auto_delete_queues = v;
            }
            if let Some(v) = e.default_address_routing_type {
                s.default_address_routing_type = v;
            }
            if let Some(v) = e.default_queue_routing_type {
                s.default_queue_routing_type = v;
            }
            if let Some(v) = e.default_persistent {
                s.default_persistent = v;
            }
            if let Some(v) = e.max_size_bytes {
                s.max_size_bytes = v;
            }
            if let Some(v) = e.full_policy {
                s.full_policy = v;
            }
            if let Some(v) = e.max_delivery_attempts {
                s.max_delivery_attempts = v;
            }
            if let Some(v) = &e.dead_letter_address {
                s.dead_letter_address = v.clone();
            }
        }
        s
    }
}

impl From<RoutingTypeConfig> for RoutingType {
    fn from(r: RoutingTypeConfig) -> Self {
        match r {
            RoutingTypeConfig::Anycast => RoutingType::Anycast,
            RoutingTypeConfig::Multicast => RoutingType::Multicast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_specific_entry_overrides_only_what_it_sets() {
        let repo = SettingsRepository::from_config(&[
            AddressSettingsEntry {
                pattern: "orders.#".into(),
                auto_create_queues: Some(false),
                ..Default::default()
            },
            AddressSettingsEntry {
                pattern: "#".into(),
                auto_create_queues: Some(true),
                default_persistent: Some(false),
                ..Default::default()
            },
        ]);
        let s = repo.resolve("orders.eu");
        assert!(!s.auto_create_queues);
        assert!(!s.default_persistent);
        let other = repo.resolve("billing");
        assert!(other.auto_create_queues);
    }
}
