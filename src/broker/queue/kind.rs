//! What kind of queue a queue is: the Artemis queue attributes that change how it holds and
//! hands out messages (exclusive, last-value, ring, message groups, non-destructive). They
//! come from the queue's own keys in the configuration, else from the `default-*` keys of
//! the address settings, so auto-created and subscription queues get them too.

use std::sync::Arc;

/// The header a last-value queue keys on unless `last-value-key` names another (Artemis's).
pub const DEFAULT_LAST_VALUE_KEY: &str = "_AMQ_LVQ_NAME";

/// How a queue binds message groups (`JMSXGroupID`) to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBuckets {
    /// `group-buckets = 0`: groups are ignored; messages go round-robin.
    Off,
    /// `group-buckets = N`: a group id hashes into one of N buckets and a bucket is bound to
    /// one consumer, so memory stays N entries however many group ids producers invent.
    Buckets(u32),
    /// `group-buckets = -1` (the default): each group id is bound on its own, in a table
    /// whose idle bindings are dropped once it is full (see `groups.rs`).
    #[default]
    PerGroup,
}

/// Retention of a non-destructive queue: how long and how much it keeps. Either limit may
/// be absent; with neither the queue keeps everything until it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// `retention-ms`: messages older than this go (by whole segments).
    pub max_age_ms: Option<u64>,
    /// `retention-bytes`: once the queue holds more, the oldest segments go.
    pub max_bytes: Option<u64>,
}

/// The resolved kind of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueKind {
    /// `exclusive`: one consumer at a time receives; the next takes over when it leaves.
    pub exclusive: bool,
    /// `last-value` with its `last-value-key`: a message replaces the waiting one that has
    /// the same value of this header.
    pub last_value_key: Option<Arc<str>>,
    /// `ring-size`: most messages the queue holds; the oldest waiting one is dropped.
    pub ring_size: Option<u64>,
    /// `group-rebalance`: a consumer joining unbinds every group so they spread again.
    pub group_rebalance: bool,
    /// `group-buckets`.
    pub group_buckets: GroupBuckets,
    /// `non-destructive`: consuming does not remove; `Some` holds its retention.
    pub retention: Option<Retention>,
}

/// The queue-kind keys one configuration entry sets (a queue's own keys, or the `default-*`
/// keys of an address-settings entry), in the core's terms: `None` = not set there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueKindKeys {
    pub exclusive: Option<bool>,
    pub last_value: Option<bool>,
    pub last_value_key: Option<String>,
    pub ring_size: Option<i64>,
    pub group_rebalance: Option<bool>,
    pub group_buckets: Option<i64>,
    pub non_destructive: Option<bool>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
}

/// The queue-kind keys merged over every matching entry, before they become a
/// [`QueueKind`]: kept apart because `last-value` and `last-value-key` (and
/// `non-destructive` and its retention) may be set by different entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKindDefaults {
    exclusive: bool,
    last_value: bool,
    last_value_key: String,
    ring_size: Option<u64>,
    group_rebalance: bool,
    group_buckets: GroupBuckets,
    non_destructive: bool,
    retention: Retention,
}

impl Default for QueueKindDefaults {
    fn default() -> Self {
        QueueKindDefaults {
            exclusive: false,
            last_value: false,
            last_value_key: DEFAULT_LAST_VALUE_KEY.to_string(),
            ring_size: None,
            group_rebalance: false,
            group_buckets: GroupBuckets::PerGroup,
            non_destructive: false,
            retention: Retention::default(),
        }
    }
}

/// A limit where -1 (any negative) or 0 means none.
fn limit(v: i64) -> Option<u64> {
    u64::try_from(v).ok().filter(|&v| v > 0)
}

impl QueueKindDefaults {
    /// Overrides what `keys` sets.
    pub fn apply(&mut self, keys: &QueueKindKeys) {
        if let Some(v) = keys.exclusive {
            self.exclusive = v;
        }
        if let Some(v) = keys.last_value {
            self.last_value = v;
        }
        if let Some(v) = &keys.last_value_key {
            self.last_value_key = v.clone();
        }
        if let Some(v) = keys.ring_size {
            self.ring_size = limit(v);
        }
        if let Some(v) = keys.group_rebalance {
            self.group_rebalance = v;
        }
        if let Some(v) = keys.group_buckets {
            self.group_buckets = match u32::try_from(v) {
                Ok(0) => GroupBuckets::Off,
                Ok(n) => GroupBuckets::Buckets(n),
                Err(_) => GroupBuckets::PerGroup,
            };
        }
        if let Some(v) = keys.non_destructive {
            self.non_destructive = v;
        }
        if let Some(v) = keys.retention_ms {
            self.retention.max_age_ms = limit(v);
        }
        if let Some(v) = keys.retention_bytes {
            self.retention.max_bytes = limit(v);
        }
    }

    /// These defaults with a queue's own keys over them.
    pub fn with(&self, keys: &QueueKindKeys) -> QueueKindDefaults {
        let mut d = self.clone();
        d.apply(keys);
        d
    }

    /// The queue kind. A non-destructive queue keeps every message for every consumer, so
    /// last-value replacement and the ring bound do not apply to it (the configuration
    /// refuses an entry that sets both).
    pub fn kind(&self) -> QueueKind {
        let stream = self.non_destructive;
        QueueKind {
            exclusive: self.exclusive,
            last_value_key: (self.last_value && !stream)
                .then(|| Arc::from(self.last_value_key.as_str())),
            ring_size: self.ring_size.filter(|_| !stream),
            group_rebalance: self.group_rebalance,
            group_buckets: self.group_buckets,
            retention: stream.then_some(self.retention),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_override_defaults_key_by_key() {
        let mut d = QueueKindDefaults::default();
        d.apply(&QueueKindKeys {
            last_value_key: Some("sym".into()),
            group_buckets: Some(16),
            ..Default::default()
        });
        assert_eq!(
            d.kind().last_value_key,
            None,
            "key alone does not make an LVQ"
        );
        let k = d
            .with(&QueueKindKeys {
                last_value: Some(true),
                ring_size: Some(-1),
                ..Default::default()
            })
            .kind();
        assert_eq!(k.last_value_key.as_deref(), Some("sym"));
        assert_eq!(k.ring_size, None);
        assert_eq!(k.group_buckets, GroupBuckets::Buckets(16));
        let off = d.with(&QueueKindKeys {
            group_buckets: Some(0),
            ..Default::default()
        });
        assert_eq!(off.kind().group_buckets, GroupBuckets::Off);
    }

    #[test]
    fn non_destructive_turns_off_last_value_and_ring() {
        let k = QueueKindDefaults::default()
            .with(&QueueKindKeys {
                non_destructive: Some(true),
                last_value: Some(true),
                ring_size: Some(5),
                retention_ms: Some(1000),
                ..Default::default()
            })
            .kind();
        assert_eq!(k.last_value_key, None);
        assert_eq!(k.ring_size, None);
        assert_eq!(
            k.retention,
            Some(Retention {
                max_age_ms: Some(1000),
                max_bytes: None
            })
        );
    }
}
