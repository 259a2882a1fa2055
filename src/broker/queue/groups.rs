//! Message groups (JMS `JMSXGroupID`, Artemis `_AMQ_GROUP_ID`): every message of a group goes
//! to the one consumer the group is bound to while that consumer stays, so a group is
//! processed in order, like a Kafka partition key. A group is bound to a consumer when its
//! first message is handed out, and unbound when the consumer leaves, when a message with
//! `JMSXGroupSeq:-1` closes it, or (with `group-rebalance`) when a consumer joins.
//!
//! Memory is bounded whatever group ids producers invent: with `group-buckets = N` ids hash
//! into N buckets; by default each id is bound on its own up to [`MAX_GROUP_IDS`], and ids
//! beyond that share [`OVERFLOW_BUCKETS`] hashed buckets. A bucket is sticky like an id, so
//! the order of every group is kept either way; only how evenly groups spread changes.

use std::collections::HashMap;
use std::hash::BuildHasher;

use bytestring::ByteString;

use super::ConsumerId;
use super::kind::GroupBuckets;

/// Most group ids a queue binds one by one (`group-buckets = -1`).
pub(super) const MAX_GROUP_IDS: usize = 16_384;

/// Buckets the group ids beyond [`MAX_GROUP_IDS`] hash into.
pub(super) const OVERFLOW_BUCKETS: usize = 1_024;

/// Where a group's binding lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GroupKey {
    /// One binding per id.
    Id(ByteString),
    /// A hashed bucket of `group-buckets`.
    Bucket(usize),
    /// A hashed overflow bucket, once the per-id table is full.
    Overflow(usize),
}

/// The group bindings of one queue.
#[derive(Debug, Default)]
pub(super) struct Groups {
    mode: GroupBuckets,
    by_id: HashMap<ByteString, ConsumerId>,
    /// `group-buckets = N` buckets, or the overflow buckets; allocated on first use.
    buckets: Vec<Option<ConsumerId>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Groups {
    /// Bindings for a queue whose `group-buckets` is `mode`.
    pub(super) fn new(mode: GroupBuckets) -> Groups {
        Groups {
            mode,
            ..Groups::default()
        }
    }

    /// Whether this queue groups messages at all.
    pub(super) fn enabled(&self) -> bool {
        self.mode != GroupBuckets::Off
    }

    fn bucket_of(&self, id: &str, n: usize) -> usize {
        (self.hasher.hash_one(id) % n as u64) as usize
    }

    /// The binding slot of group `id`.
    pub(super) fn key(&self, id: &ByteString) -> GroupKey {
        if let GroupBuckets::Buckets(n) = self.mode {
            return GroupKey::Bucket(self.bucket_of(id, n as usize));
        }
        if self.by_id.contains_key(id) {
            return GroupKey::Id(id.clone());
        }
        // A group that went to an overflow bucket stays there while the bucket is bound,
        // even once the per-id table has room again, so it never has two consumers at once.
        let overflow = self.bucket_of(id, OVERFLOW_BUCKETS);
        if self.buckets.get(overflow).copied().flatten().is_none()
            && self.by_id.len() < MAX_GROUP_IDS
        {
            GroupKey::Id(id.clone())
        } else {
            GroupKey::Overflow(overflow)
        }
    }

    /// The consumer the group is bound to.
    pub(super) fn bound(&self, key: &GroupKey) -> Option<ConsumerId> {
        match key {
            GroupKey::Id(id) => self.by_id.get(id).copied(),
            GroupKey::Bucket(b) | GroupKey::Overflow(b) => self.buckets.get(*b).copied().flatten(),
        }
    }

    /// Binds the group to `consumer`.
    pub(super) fn bind(&mut self, key: GroupKey, consumer: ConsumerId) {
        match key {
            GroupKey::Id(id) => {
                self.by_id.insert(id, consumer);
            }
            GroupKey::Bucket(b) | GroupKey::Overflow(b) => {
                if self.buckets.is_empty() {
                    let n = match self.mode {
                        GroupBuckets::Buckets(n) => n as usize,
                        _ => OVERFLOW_BUCKETS,
                    };
                    self.buckets = vec![None; n];
                }
                if let Some(slot) = self.buckets.get_mut(b) {
                    *slot = Some(consumer);
                }
            }
        }
    }

    /// Closes a group (`JMSXGroupSeq:-1`): its next message binds afresh.
    pub(super) fn unbind(&mut self, key: &GroupKey) {
        match key {
            GroupKey::Id(id) => {
                self.by_id.remove(id);
            }
            GroupKey::Bucket(b) | GroupKey::Overflow(b) => {
                if let Some(slot) = self.buckets.get_mut(*b) {
                    *slot = None;
                }
            }
        }
    }

    /// Forgets every group bound to a consumer that left: they move to whoever gets their
    /// next message. O(bindings), once per departing consumer.
    pub(super) fn consumer_left(&mut self, consumer: ConsumerId) {
        self.by_id.retain(|_, c| *c != consumer);
        for slot in &mut self.buckets {
            if *slot == Some(consumer) {
                *slot = None;
            }
        }
    }

    /// Forgets every binding (`group-rebalance` when a consumer joins).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.buckets.clear();
    }

    /// Bindings held (for tests and inspection).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len() + self.buckets.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ByteString {
        ByteString::from(s)
    }

    #[test]
    fn per_id_bindings_stop_growing_at_the_bound() {
        let mut g = Groups::new(GroupBuckets::PerGroup);
        for i in 0..(MAX_GROUP_IDS + 5000) {
            let k = g.key(&id(&format!("g{i}")));
            g.bind(k, (i % 4) as u64);
        }
        assert!(g.by_id.len() == MAX_GROUP_IDS);
        assert!(g.buckets.len() == OVERFLOW_BUCKETS);
        // An overflow id keeps its bucket, so its messages keep going to one consumer.
        let k = g.key(&id("g20000"));
        assert!(matches!(k, GroupKey::Overflow(_)));
        assert_eq!(g.key(&id("g20000")), k);
        // A bound id stays in the per-id table.
        assert!(matches!(g.key(&id("g1")), GroupKey::Id(_)));
        assert_eq!(g.bound(&g.key(&id("g1"))), Some(1));
    }

    #[test]
    fn buckets_bound_memory_and_a_leaving_consumer_frees_its_groups() {
        let mut g = Groups::new(GroupBuckets::Buckets(8));
        for i in 0..1000 {
            let k = g.key(&id(&format!("g{i}")));
            if g.bound(&k).is_none() {
                g.bind(k, 7);
            }
        }
        assert_eq!(g.buckets.len(), 8);
        assert!(g.by_id.is_empty());
        g.consumer_left(7);
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn off_means_no_grouping() {
        assert!(!Groups::new(GroupBuckets::Off).enabled());
        assert!(Groups::new(GroupBuckets::PerGroup).enabled());
    }
}
