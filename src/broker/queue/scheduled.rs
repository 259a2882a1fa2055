//! Messages a queue holds but may not offer yet: scheduled deliveries (`AMQ_SCHEDULED_TIME`)
//! and returned messages waiting out their `redelivery-delay`. One ordered map by due time per
//! queue; the broker's single clock (`broker::clock`) is armed with each queue's earliest due
//! time, so a million scheduled messages cost a million map entries, not a million timers.

use std::collections::BTreeMap;

use super::Entry;

/// Entries by `(due, seq)`: the earliest first, arrival order among equal times.
#[derive(Debug, Default)]
pub(super) struct Scheduled {
    by_due: BTreeMap<(u64, u64), Entry>,
}

impl Scheduled {
    pub(super) fn len(&self) -> usize {
        self.by_due.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }

    /// Holds `entry` until `due` (ms since the epoch).
    pub(super) fn insert(&mut self, due: u64, entry: Entry) {
        self.by_due.insert((due, entry.seq), entry);
    }

    /// The earliest due time, if any.
    pub(super) fn next_due(&self) -> Option<u64> {
        self.by_due.keys().next().map(|(due, _)| *due)
    }

    /// Removes and returns the entries due at `now`, earliest first.
    pub(super) fn take_due(&mut self, now: u64) -> Vec<Entry> {
        let later = self.by_due.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut self.by_due, later);
        due.into_values().collect()
    }

    /// Removes and returns every entry `pred` selects (expiry scans).
    pub(super) fn extract(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> Vec<Entry> {
        let keys: Vec<(u64, u64)> = self
            .by_due
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_due.remove(&k))
            .collect()
    }

    /// Whether any entry satisfies `pred`.
    pub(super) fn any(&self, pred: impl FnMut(&Entry) -> bool) -> bool {
        self.by_due.values().any(pred)
    }

    /// Every entry, earliest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.by_due.values()
    }

    /// Entries after `key` (every entry when `None`), earliest first, with their keys: lets a
    /// browse page through the map from where it stopped.
    pub(super) fn after(
        &self,
        key: Option<(u64, u64)>,
    ) -> impl Iterator<Item = (&(u64, u64), &Entry)> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = match key {
            Some(k) => Excluded(k),
            None => Unbounded,
        };
        self.by_due.range((from, Unbounded))
    }

    pub(super) fn clear(&mut self) {
        self.by_due.clear();
    }
}
