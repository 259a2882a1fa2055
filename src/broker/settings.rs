//! Address settings resolved for one address: every matching `[[address-settings]]` entry,
//! least specific first, each overriding the keys it sets. The configured entries are
//! converted to core types once, when the broker is built.

use super::RoutingType;
use super::policy::{DivertPolicy, ExpiryPolicy, RedeliveryPolicy};
use super::queue::{QueueKindDefaults, QueueKindKeys};
use crate::address::wildcard;
use crate::config::{
    AddressFullPolicyConfig, AddressSettingsEntry, QueueConfig, RoutingTypeConfig,
};

/// What a full address does to a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Write further messages to disk (the journal's page storage) and read them back in
    /// order as consumers catch up; without a journal it holds the producer like `Block`.
    Page,
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
    /// `max-size-messages`; `None` means no limit.
    pub max_size_messages: Option<u64>,
    pub full_policy: FullPolicy,
    /// `page-size-bytes`: what a paging queue reads back at a time.
    pub page_size_bytes: u64,
    /// `None` means unlimited redelivery.
    pub max_delivery_attempts: Option<u32>,
    /// Where dead letters go, and whether a queue per original address is made there.
    pub dead_letter: DivertPolicy,
    /// Where expired messages go, and whether a queue per original address is made there.
    pub expiry: DivertPolicy,
    /// How long a returned message waits before it is offered again.
    pub redelivery: RedeliveryPolicy,
    /// What expiry an arriving message gets.
    pub expiry_delay: ExpiryPolicy,
    /// Recent `_AMQ_DUPL_ID`s remembered; 0 = no duplicate detection.
    pub id_cache_size: u32,
    /// The `default-*` queue-kind keys: what queues created on demand are, and what a
    /// configured queue's own keys override.
    pub queue_kind: QueueKindDefaults,
}

/// Artemis's default `id-cache-size`.
pub const DEFAULT_ID_CACHE_SIZE: u32 = 20_000;

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
            max_size_messages: None,
            full_policy: FullPolicy::Page,
            page_size_bytes: crate::config::DEFAULT_PAGE_SIZE_BYTES as u64,
            max_delivery_attempts: Some(10),
            dead_letter: DivertPolicy::with_prefix("DLQ."),
            expiry: DivertPolicy::with_prefix("EXP."),
            redelivery: RedeliveryPolicy::default(),
            expiry_delay: ExpiryPolicy::default(),
            id_cache_size: DEFAULT_ID_CACHE_SIZE,
            queue_kind: QueueKindDefaults::default(),
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
    /// `Some(None)`: the entry sets no limit.
    pub max_size_messages: Option<Option<u64>>,
    pub full_policy: Option<FullPolicy>,
    pub page_size_bytes: Option<u64>,
    /// `Some(None)`: the entry sets unlimited redelivery.
    pub max_delivery_attempts: Option<Option<u32>>,
    /// `Some(None)`: the entry sets no dead-letter address.
    pub dead_letter_address: Option<Option<String>>,
    pub auto_create_dead_letter_resources: Option<bool>,
    pub dead_letter_queue_prefix: Option<String>,
    pub dead_letter_queue_suffix: Option<String>,
    /// `Some(None)`: the entry sets no expiry address.
    pub expiry_address: Option<Option<String>>,
    pub auto_create_expiry_resources: Option<bool>,
    pub expiry_queue_prefix: Option<String>,
    pub expiry_queue_suffix: Option<String>,
    pub redelivery_delay: Option<u64>,
    pub redelivery_delay_multiplier: Option<f64>,
    pub max_redelivery_delay: Option<u64>,
    pub redelivery_collision_avoidance_factor: Option<f64>,
    /// `Some(None)`: the entry turns the setting off (-1).
    pub expiry_delay: Option<Option<u64>>,
    pub min_expiry_delay: Option<Option<u64>>,
    pub max_expiry_delay: Option<Option<u64>>,
    pub no_expiry: Option<bool>,
    pub id_cache_size: Option<u32>,
    /// The `default-*` queue-kind keys it sets.
    pub queue_kind: QueueKindKeys,
}

/// An optional address: empty means none (Artemis's `<dead-letter-address/>`).
fn address_or_none(v: &Option<String>) -> Option<Option<String>> {
    v.as_ref().map(|v| (!v.is_empty()).then(|| v.clone()))
}

/// An optional delay: -1 (any negative) means off.
fn delay_or_none(v: Option<i64>) -> Option<Option<u64>> {
    v.map(|v| u64::try_from(v).ok())
}

impl From<&AddressSettingsEntry> for SettingsEntry {
    /// Reads the configured entry once: a negative `max-size-bytes` means no limit, -1
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
            max_size_messages: e.max_size_messages.map(|v| u64::try_from(v).ok()),
            full_policy: e.address_full_policy.map(|v| match v {
                AddressFullPolicyConfig::Page => FullPolicy::Page,
                AddressFullPolicyConfig::Block => FullPolicy::Block,
                AddressFullPolicyConfig::Fail => FullPolicy::Fail,
                AddressFullPolicyConfig::Drop => FullPolicy::Drop,
            }),
            page_size_bytes: e.page_size_bytes.and_then(|v| u64::try_from(v).ok()),
            max_delivery_attempts: e
                .max_delivery_attempts
                .map(|v| u32::try_from(v).ok().filter(|&v| v > 0)),
            dead_letter_address: address_or_none(&e.dead_letter_address),
            auto_create_dead_letter_resources: e.auto_create_dead_letter_resources,
            dead_letter_queue_prefix: e.dead_letter_queue_prefix.clone(),
            dead_letter_queue_suffix: e.dead_letter_queue_suffix.clone(),
            expiry_address: address_or_none(&e.expiry_address),
            auto_create_expiry_resources: e.auto_create_expiry_resources,
            expiry_queue_prefix: e.expiry_queue_prefix.clone(),
            expiry_queue_suffix: e.expiry_queue_suffix.clone(),
            redelivery_delay: e.redelivery_delay,
            redelivery_delay_multiplier: e.redelivery_delay_multiplier,
            max_redelivery_delay: e.max_redelivery_delay,
            redelivery_collision_avoidance_factor: e.redelivery_collision_avoidance_factor,
            expiry_delay: delay_or_none(e.expiry_delay),
            min_expiry_delay: delay_or_none(e.min_expiry_delay),
            max_expiry_delay: delay_or_none(e.max_expiry_delay),
            no_expiry: e.no_expiry,
            id_cache_size: e.id_cache_size,
            queue_kind: QueueKindKeys {
                exclusive: e.default_exclusive_queue,
                last_value: e.default_last_value_queue,
                last_value_key: e.default_last_value_key.clone(),
                ring_size: e.default_ring_size,
                group_rebalance: e.default_group_rebalance,
                group_buckets: e.default_group_buckets,
                non_destructive: e.default_non_destructive,
                retention_ms: e.default_retention_ms,
                retention_bytes: e.default_retention_bytes,
            },
        }
    }
}

impl From<&QueueConfig> for QueueKindKeys {
    /// A configured queue's own queue-kind keys.
    fn from(q: &QueueConfig) -> Self {
        QueueKindKeys {
            exclusive: q.exclusive,
            last_value: q.last_value,
            last_value_key: q.last_value_key.clone(),
            ring_size: q.ring_size,
            group_rebalance: q.group_rebalance,
            group_buckets: q.group_buckets,
            non_destructive: q.non_destructive,
            retention_ms: q.retention_ms,
            retention_bytes: q.retention_bytes,
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
            if let Some(v) = e.max_size_messages {
                s.max_size_messages = v;
            }
            if let Some(v) = e.full_policy {
                s.full_policy = v;
            }
            if let Some(v) = e.page_size_bytes {
                s.page_size_bytes = v;
            }
            if let Some(v) = e.max_delivery_attempts {
                s.max_delivery_attempts = v;
            }
            if let Some(v) = &e.dead_letter_address {
                s.dead_letter.address = v.clone();
            }
            e.apply_delivery(&mut s);
        }
        s
    }
}

impl SettingsEntry {
    /// Overrides the redelivery, dead-letter, expiry and duplicate keys this entry sets.
    fn apply_delivery(&self, s: &mut AddressSettings) {
        fn set<T: Clone>(target: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *target = v.clone();
            }
        }
        set(
            &mut s.dead_letter.auto_create,
            &self.auto_create_dead_letter_resources,
        );
        set(
            &mut s.dead_letter.queue_prefix,
            &self.dead_letter_queue_prefix,
        );
        set(
            &mut s.dead_letter.queue_suffix,
            &self.dead_letter_queue_suffix,
        );
        set(&mut s.expiry.address, &self.expiry_address);
        set(
            &mut s.expiry.auto_create,
            &self.auto_create_expiry_resources,
        );
        set(&mut s.expiry.queue_prefix, &self.expiry_queue_prefix);
        set(&mut s.expiry.queue_suffix, &self.expiry_queue_suffix);
        set(&mut s.redelivery.delay_ms, &self.redelivery_delay);
        set(
            &mut s.redelivery.multiplier,
            &self.redelivery_delay_multiplier,
        );
        if let Some(v) = self.max_redelivery_delay {
            s.redelivery.max_delay_ms = Some(v);
        }
        set(
            &mut s.redelivery.collision_avoidance,
            &self.redelivery_collision_avoidance_factor,
        );
        set(&mut s.expiry_delay.delay_ms, &self.expiry_delay);
        set(&mut s.expiry_delay.min_delay_ms, &self.min_expiry_delay);
        set(&mut s.expiry_delay.max_delay_ms, &self.max_expiry_delay);
        set(&mut s.expiry_delay.no_expiry, &self.no_expiry);
        set(&mut s.id_cache_size, &self.id_cache_size);
        s.queue_kind.apply(&self.queue_kind);
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
