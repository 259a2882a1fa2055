//! The messages a queue can offer now, by priority: ten buckets (JMS priorities 0–9), each
//! holding messages never delivered in arrival order and messages given back by consumers by
//! their original position. Enqueue and dispatch cost O(1) in the number of priorities (the
//! highest non-empty bucket comes from a bitmask), not a sort.

use std::collections::{BTreeMap, VecDeque};

use super::Entry;

/// Number of priority levels (JMS: 0–9).
pub(super) const LEVELS: usize = 10;

#[derive(Debug, Default)]
struct Level {
    /// Never delivered, in arrival (`seq`) order: appended at the back only.
    ready: VecDeque<Entry>,
    /// Given back (NACK, a consumer leaving, passed over by a selective dispatch) by `seq`, so
    /// they are offered again in their original place among `ready` without shifting it:
    /// returning k messages costs O(k log k), whatever the queue holds.
    returned: BTreeMap<u64, Entry>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.returned.is_empty()
    }
}

/// The offerable messages of one queue.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    levels: [Level; LEVELS],
    /// Bit p set when level p holds something.
    occupied: u16,
    len: usize,
    /// Bytes of the messages held (`Message::size`), so a paging queue knows when to read
    /// another page. Approximate only where a last-value replacement swaps a message in place
    /// (such queues never page).
    bytes: u64,
}

fn weight(e: &Entry) -> u64 {
    e.message.charged_size() as u64
}

/// The bucket of a message priority (values above 9 count as 9).
pub(super) fn level_of(priority: u8) -> usize {
    usize::from(priority).min(LEVELS - 1)
}

impl Backlog {
    /// Messages held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The arrival time of the oldest message held (0 when empty): the first of each level's
    /// two orders, so at most twenty looks whatever the backlog holds.
    pub(super) fn oldest_timestamp(&self) -> u64 {
        let mut oldest = u64::MAX;
        let mut bits = self.occupied;
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let level = &self.levels[l];
            for e in level
                .ready
                .front()
                .into_iter()
                .chain(level.returned.values().next())
            {
                oldest = oldest.min(e.message.timestamp);
            }
        }
        if oldest == u64::MAX { 0 } else { oldest }
    }

    fn took(&mut self, e: &Entry) {
        self.len -= 1;
        self.bytes = self.bytes.saturating_sub(weight(e));
    }

    fn mark(&mut self, level: usize) {
        if self.levels[level].is_empty() {
            self.occupied &= !(1 << level);
        } else {
            self.occupied |= 1 << level;
        }
    }

    /// Appends a message never delivered; `seq` must be above every `seq` it holds.
    pub(super) fn push_new(&mut self, entry: Entry) {
        let l = level_of(entry.message.priority);
        self.bytes += weight(&entry);
        self.levels[l].ready.push_back(entry);
        self.occupied |= 1 << l;
        self.len += 1;
    }

    /// Puts a message back in its original place.
    pub(super) fn push_returned(&mut self, entry: Entry) {
        let l = level_of(entry.message.priority);
        self.bytes += weight(&entry);
        self.levels[l].returned.insert(entry.seq, entry);
        self.occupied |= 1 << l;
        self.len += 1;
    }

    /// The next message to offer: the highest priority first, then the lowest `seq`.
    pub(super) fn pop(&mut self) -> Option<Entry> {
        if self.occupied == 0 {
            return None;
        }
        let l = 15 - self.occupied.leading_zeros() as usize;
        let level = &mut self.levels[l];
        let returned_first = match (level.returned.keys().next(), level.ready.front()) {
            (Some(r), Some(f)) => *r < f.seq,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let entry = if returned_first {
            level.returned.pop_first().map(|(_, e)| e)
        } else {
            level.ready.pop_front()
        };
        self.mark(l);
        if let Some(e) = &entry {
            self.took(e);
        }
        entry
    }

    /// Puts back an entry just taken by [`Backlog::pop`] but not handed over.
    pub(super) fn unpop(&mut self, entry: Entry) {
        let l = level_of(entry.message.priority);
        let level = &mut self.levels[l];
        if level.returned.is_empty() && level.ready.front().is_none_or(|f| entry.seq < f.seq) {
            self.bytes += weight(&entry);
            level.ready.push_front(entry);
            self.occupied |= 1 << l;
            self.len += 1;
        } else {
            self.push_returned(entry);
        }
    }

    /// Removes and returns every entry `pred` selects, in no particular order (expiry scans).
    pub(super) fn extract(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> Vec<Entry> {
        let mut out = Vec::new();
        for l in 0..LEVELS {
            let level = &mut self.levels[l];
            if level.is_empty() {
                continue;
            }
            if level.ready.iter().any(&mut pred) {
                let mut kept = VecDeque::with_capacity(level.ready.len());
                for e in level.ready.drain(..) {
                    if pred(&e) {
                        out.push(e);
                    } else {
                        kept.push_back(e);
                    }
                }
                level.ready = kept;
            }
            let gone: Vec<u64> = level
                .returned
                .values()
                .filter(|e| pred(e))
                .map(|e| e.seq)
                .collect();
            for seq in gone {
                if let Some(e) = level.returned.remove(&seq) {
                    out.push(e);
                }
            }
            self.mark(l);
        }
        for e in &out {
            self.took(e);
        }
        out
    }

    /// Whether any entry satisfies `pred`.
    pub(super) fn any(&self, mut pred: impl FnMut(&Entry) -> bool) -> bool {
        self.levels
            .iter()
            .any(|l| l.ready.iter().any(&mut pred) || l.returned.values().any(&mut pred))
    }

    /// Moves everything into `other` (as returned messages, in place), leaving this empty.
    pub(super) fn drain_into(&mut self, other: &mut Backlog) {
        for level in &mut self.levels {
            for e in level.ready.drain(..) {
                other.push_returned(e);
            }
            for (_, e) in std::mem::take(&mut level.returned) {
                other.push_returned(e);
            }
        }
        self.occupied = 0;
        self.len = 0;
        self.bytes = 0;
    }

    /// The waiting entry `seq` of priority level `level`, if it is here: binary search, since
    /// `ready` is in `seq` order.
    pub(super) fn get_mut(&mut self, level: usize, seq: u64) -> Option<&mut Entry> {
        let l = self.levels.get_mut(level)?;
        match l.ready.binary_search_by_key(&seq, |e| e.seq) {
            Ok(i) => l.ready.get_mut(i),
            Err(_) => l.returned.get_mut(&seq),
        }
    }

    /// Removes the waiting entry `seq` of level `level`, if it is here.
    pub(super) fn remove(&mut self, level: usize, seq: u64) -> Option<Entry> {
        let l = self.levels.get_mut(level)?;
        let e = match l.ready.binary_search_by_key(&seq, |e| e.seq) {
            Ok(i) => l.ready.remove(i),
            Err(_) => l.returned.remove(&seq),
        }?;
        self.mark(level);
        self.took(&e);
        Some(e)
    }

    /// The lowest `seq` held (the oldest arrival), whatever its priority.
    pub(super) fn oldest(&self) -> Option<(usize, u64)> {
        self.levels
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let r = l.returned.keys().next().copied();
                let f = l.ready.front().map(|e| e.seq);
                match (r, f) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
                .map(|s| (i, s))
            })
            .min_by_key(|&(_, s)| s)
    }

    /// Drops everything (the queue was deleted).
    pub(super) fn clear(&mut self) {
        *self = Backlog::default();
    }

    /// One priority level's never-delivered entries (ascending `seq`) and returned ones (by
    /// `seq`), read-only: lets a browse page through a level from a `seq` on.
    pub(super) fn level(&self, l: usize) -> (&VecDeque<Entry>, &BTreeMap<u64, Entry>) {
        let level = &self.levels[l.min(LEVELS - 1)];
        (&level.ready, &level.returned)
    }

    /// Every entry, in offer order (highest priority first, then `seq`).
    pub(super) fn iter_ordered(&self) -> impl Iterator<Item = &Entry> {
        self.levels.iter().rev().flat_map(|level| {
            let mut v: Vec<&Entry> = level.ready.iter().chain(level.returned.values()).collect();
            v.sort_by_key(|e| e.seq);
            v
        })
    }
}
