//! Duplicate detection (Artemis's `_AMQ_DUPL_ID`): each address remembers the last
//! `id-cache-size` duplicate ids its producers sent, so a SEND repeating one is dropped
//! (though still answered) and a producer that retries after a lost connection never
//! creates a second copy.
//!
//! Each address's cache is a ring of `id-cache-size` slots plus a hash index, so a check is
//! O(1) and the oldest id is the one overwritten. The journal keeps the same ring: a
//! `PutDuplicateId` names the slot it overwrites, so the stored cache never outgrows it. The
//! value stored is the id behind an 8-byte sequence number (big-endian), which is what lets
//! a restart tell the oldest id from the newest and resume the ring exactly where it was.
//!
//! The caches are keyed by address name and live apart from the address itself: an
//! auto-created address deleted when empty and created again by a producer's retry must
//! still know the ids it saw, or the retry would be a duplicate. So that addresses that come
//! and go cannot grow them without bound, at most [`MAX_ID_CACHES`] caches are kept; beyond
//! that the least recently used whole cache is forgotten, in memory and in the journal
//! (caches in use at that moment are skipped, so the bound may be passed by as many caches
//! as there are sends in progress).
//!
//! Locks: the map of caches has one short mutex; under it a cache's own mutex is taken only
//! to forget a cache nobody else can reach, so it never waits. A cache's mutex is held by a send from its check until its
//! journal records are submitted, so a duplicate arriving meanwhile waits and its RECEIPT
//! can follow the original's write (see `routing/dedup.rs`). Lock order: a cache (several in
//! address-name order) → registry → queue; nothing takes a cache while holding the
//! registry or a queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use parking_lot::{Mutex, MutexGuard};

use super::BrokerError;
use crate::journal::{Journal, JournalOp, RecoveredIdCache};

/// The SEND header (message property) carrying a duplicate id, as in Artemis.
pub const DUPLICATE_ID_HEADER: &str = "_AMQ_DUPL_ID";
/// Longest duplicate id accepted, in bytes: every id is kept in memory and in the journal
/// for as long as the cache remembers it, so one must not cost more than this.
pub const MAX_DUPLICATE_ID_LEN: usize = 1024;
/// Most address caches kept at once (see the module docs).
pub const MAX_ID_CACHES: usize = 4096;

/// Bytes of the sequence number in front of a stored id.
const SEQ_LEN: usize = 8;

/// The duplicate id a message's properties carry (the first `_AMQ_DUPL_ID`), copied out of
/// the frame so the cache does not pin the connection's read buffer. Refuses one longer
/// than [`MAX_DUPLICATE_ID_LEN`].
pub fn duplicate_id(properties: &[(ByteString, ByteString)]) -> Result<Option<Bytes>, BrokerError> {
    let Some((_, v)) = properties.iter().find(|(k, _)| k == DUPLICATE_ID_HEADER) else {
        return Ok(None);
    };
    if v.len() > MAX_DUPLICATE_ID_LEN {
        return Err(BrokerError::DuplicateIdTooLong {
            len: v.len(),
            limit: MAX_DUPLICATE_ID_LEN,
        });
    }
    Ok(Some(Bytes::copy_from_slice(v.as_bytes())))
}

/// Refuses a draft whose duplicate id is too long: for a transactional SEND, checked when
/// the SEND arrives rather than at COMMIT.
pub fn check_duplicate_id(draft: &super::MessageDraft) -> Result<(), BrokerError> {
    duplicate_id(&draft.properties).map(|_| ())
}

/// One address's ring of recent ids.
#[derive(Debug)]
pub struct Ring {
    address: Arc<str>,
    capacity: u32,
    /// Slot `i` holds `slots[i]`. Either not yet full (`next_slot == slots.len()`) or full,
    /// with `next_slot` at the oldest id.
    slots: Vec<Bytes>,
    index: HashMap<Bytes, u32>,
    next_slot: u32,
    next_seq: u64,
}

impl Ring {
    fn new(address: Arc<str>, capacity: u32) -> Ring {
        Ring {
            address,
            capacity: capacity.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            next_slot: 0,
            next_seq: 0,
        }
    }

    /// Whether the ring holds `id`.
    pub fn contains(&self, id: &[u8]) -> bool {
        self.index.contains_key(id)
    }

    /// Remembers `id` unless it is already there. `None` for a duplicate; otherwise the
    /// record that stores it, to go in the same journal batch as its message.
    pub fn first_time(&mut self, id: &Bytes) -> Option<JournalOp> {
        if self.contains(id) {
            return None;
        }
        let slot = self.next_slot;
        match self.slots.get_mut(slot as usize) {
            Some(old) => {
                let old = std::mem::replace(old, id.clone());
                self.index.remove(&old);
            }
            None => self.slots.push(id.clone()),
        }
        self.index.insert(id.clone(), slot);
        self.next_slot = (slot + 1) % self.capacity;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(self.put_op(slot, seq, id))
    }

    fn put_op(&self, slot: u32, seq: u64, id: &[u8]) -> JournalOp {
        let mut v = BytesMut::with_capacity(SEQ_LEN + id.len());
        v.put_u64(seq);
        v.put_slice(id);
        JournalOp::PutDuplicateId {
            address: Arc::clone(&self.address),
            slot,
            id: v.freeze(),
        }
    }

    /// Rebuilds a ring from its stored slots. Returns the records that rewrite it when the
    /// stored layout is not the one this ring would have made (`id-cache-size` changed,
    /// damaged entries): then the newest ids are kept, at slots 0, 1, ….
    fn restore(
        address: Arc<str>,
        capacity: u32,
        stored: Vec<(u32, Bytes)>,
    ) -> (Ring, Vec<JournalOp>) {
        let mut ring = Ring::new(address, capacity);
        let total = stored.len();
        let mut entries: Vec<(u64, u32, Bytes)> = stored
            .into_iter()
            .filter_map(|(slot, v)| {
                let seq = u64::from_be_bytes(v.get(..SEQ_LEN)?.try_into().ok()?);
                Some((seq, slot, v.slice(SEQ_LEN..)))
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        // The same id twice cannot be made by a ring; keep its newest.
        let mut seen = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            seen.insert(e.2.clone(), i);
        }
        let mut exact = entries.len() == total && seen.len() == entries.len();
        let unique: Vec<_> = entries
            .into_iter()
            .enumerate()
            .filter(|(i, e)| seen.get(&e.2) == Some(i))
            .map(|(_, e)| e)
            .collect();
        ring.next_seq = unique.last().map_or(0, |e| e.0 + 1);
        let n = unique.len();
        let cap = ring.capacity as usize;
        if exact && n < cap {
            exact = unique.iter().enumerate().all(|(i, e)| e.1 as usize == i);
        } else if exact && n == cap {
            let first = unique[0].1;
            exact = unique
                .iter()
                .enumerate()
                .all(|(i, e)| e.1 as usize == (first as usize + i) % cap);
        } else {
            exact = false;
        }
        if exact {
            let mut slots = vec![Bytes::new(); n];
            for (_, slot, id) in &unique {
                slots[*slot as usize] = id.clone();
                ring.index.insert(id.clone(), *slot);
            }
            ring.slots = slots;
            ring.next_slot = if n < cap { n as u32 } else { unique[0].1 };
            return (ring, Vec::new());
        }
        let mut ops = vec![JournalOp::DeleteDuplicateIds {
            address: Arc::clone(&ring.address),
        }];
        let keep = &unique[n.saturating_sub(cap)..];
        for (i, (seq, _, id)) in keep.iter().enumerate() {
            let slot = i as u32;
            ring.slots.push(id.clone());
            ring.index.insert(id.clone(), slot);
            ops.push(ring.put_op(slot, *seq, id));
        }
        ring.next_slot = (keep.len() % cap) as u32;
        (ring, ops)
    }
}

struct Entry {
    ring: Arc<Mutex<Ring>>,
    used: u64,
}

#[derive(Default)]
struct Caches {
    map: HashMap<Arc<str>, Entry>,
    /// Last use → address, oldest first.
    lru: BTreeMap<u64, Arc<str>>,
    tick: u64,
}

/// Every address's duplicate-id cache, broker-wide and bounded (see the module docs).
pub struct DuplicateIds {
    caches: Mutex<Caches>,
    journal: Option<Journal>,
    max_caches: usize,
}

impl std::fmt::Debug for DuplicateIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuplicateIds")
            .field("caches", &self.caches.lock().map.len())
            .finish_non_exhaustive()
    }
}

impl DuplicateIds {
    /// Caches rebuilt from what the journal recovered; `capacity_of` gives an address's
    /// `id-cache-size` (0: its stored ids are deleted).
    pub fn new(
        journal: Option<Journal>,
        max_caches: usize,
        recovered: Vec<RecoveredIdCache>,
        capacity_of: impl Fn(&str) -> u32,
    ) -> DuplicateIds {
        let dups = DuplicateIds {
            caches: Mutex::new(Caches::default()),
            journal,
            max_caches: max_caches.max(1),
        };
        let mut ops = Vec::new();
        {
            let mut c = dups.caches.lock();
            for rec in recovered {
                let address: Arc<str> = Arc::from(rec.address.as_str());
                let capacity = capacity_of(&address);
                if capacity == 0 {
                    ops.push(JournalOp::DeleteDuplicateIds { address });
                    continue;
                }
                let (ring, rewrite) = Ring::restore(Arc::clone(&address), capacity, rec.ids);
                ops.extend(rewrite);
                c.insert(address, ring);
            }
            ops.extend(c.evict(dups.max_caches));
        }
        dups.submit(ops);
        dups
    }

    /// The cache of `address`, made with `capacity` slots if it has none. Counts as a use:
    /// the least recently used cache goes when there are too many.
    pub fn ring(&self, address: &str, capacity: u32) -> Arc<Mutex<Ring>> {
        let (ring, evicted) = {
            let mut c = self.caches.lock();
            let ring = match c.touch(address) {
                Some(r) => r,
                None => c.insert(Arc::from(address), Ring::new(Arc::from(address), capacity)),
            };
            // Taken inside the lock so the eviction below sees it in use.
            let evicted = c.evict(self.max_caches);
            (ring, evicted)
        };
        self.submit(evicted);
        ring
    }

    /// Holds the caches of several addresses for a transaction's sends, to be locked
    /// together in address order.
    pub fn hold<'a>(&self, addresses: impl IntoIterator<Item = (&'a str, u32)>) -> Held {
        let mut wanted: Vec<(&str, u32)> = addresses.into_iter().collect();
        wanted.sort_by(|a, b| a.0.cmp(b.0));
        wanted.dedup_by(|a, b| a.0 == b.0);
        Held {
            rings: wanted
                .into_iter()
                .map(|(a, cap)| (Arc::<str>::from(a), self.ring(a, cap)))
                .collect(),
        }
    }

    fn submit(&self, ops: Vec<JournalOp>) {
        if let Some(j) = &self.journal
            && !ops.is_empty()
        {
            j.submit_detached(ops);
        }
    }
}

impl Caches {
    fn touch(&mut self, address: &str) -> Option<Arc<Mutex<Ring>>> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(address)?;
        let name = self.lru.remove(&e.used)?;
        e.used = tick;
        self.lru.insert(tick, name);
        Some(Arc::clone(&e.ring))
    }

    fn insert(&mut self, address: Arc<str>, ring: Ring) -> Arc<Mutex<Ring>> {
        self.tick += 1;
        let ring = Arc::new(Mutex::new(ring));
        self.lru.insert(self.tick, Arc::clone(&address));
        self.map.insert(
            address,
            Entry {
                ring: Arc::clone(&ring),
                used: self.tick,
            },
        );
        ring
    }

    /// Forgets least recently used caches until at most `max` remain, skipping any held by
    /// a send in progress; returns the records that delete them from the journal.
    fn evict(&mut self, max: usize) -> Vec<JournalOp> {
        let mut ops = Vec::new();
        if self.map.len() <= max {
            return ops;
        }
        let mut gone = Vec::new();
        let excess = self.map.len() - max;
        for (tick, address) in &self.lru {
            if gone.len() == excess {
                break;
            }
            let Some(e) = self.map.get(address) else {
                continue;
            };
            if Arc::strong_count(&e.ring) == 1 {
                // Nobody else can reach it now; taking its lock orders this delete after the
                // last writer's records.
                drop(e.ring.lock());
                gone.push((*tick, Arc::clone(address)));
            }
        }
        for (tick, address) in gone {
            self.lru.remove(&tick);
            self.map.remove(&address);
            ops.push(JournalOp::DeleteDuplicateIds { address });
        }
        ops
    }
}

/// The caches a transaction's sends need, not yet locked.
pub struct Held {
    rings: Vec<(Arc<str>, Arc<Mutex<Ring>>)>,
}

impl Held {
    /// Locks every held cache, in address order, until the result is dropped.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            rings: self.rings.iter().map(|(a, r)| (&**a, r.lock())).collect(),
            saw_duplicate: false,
        }
    }
}

/// Held caches, locked: a transaction checks its sends against them and keeps them locked
/// until its journal batch is submitted.
pub struct Locked<'a> {
    rings: Vec<(&'a str, MutexGuard<'a, Ring>)>,
    saw_duplicate: bool,
}

impl Locked<'_> {
    /// False when the message is a duplicate and must be dropped; otherwise adds the
    /// record of its id (if it has one and its address keeps a cache) to `ops`.
    pub fn admit(
        &mut self,
        address: &str,
        properties: &[(ByteString, ByteString)],
        ops: &mut Vec<JournalOp>,
    ) -> bool {
        let Ok(Some(id)) = duplicate_id(properties) else {
            return true;
        };
        let Ok(i) = self.rings.binary_search_by(|(a, _)| (*a).cmp(address)) else {
            return true;
        };
        match self.rings[i].1.first_time(&id) {
            Some(op) => {
                ops.push(op);
                true
            }
            None => {
                self.saw_duplicate = true;
                false
            }
        }
    }

    /// Whether any message was dropped as a duplicate: its original may still be on its way
    /// to the journal, so the answer must wait for the journal to pass this point.
    pub fn saw_duplicate(&self) -> bool {
        self.saw_duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn stored(ops: &[JournalOp]) -> Vec<(u32, Bytes)> {
        ops.iter()
            .filter_map(|op| match op {
                JournalOp::PutDuplicateId { slot, id, .. } => Some((*slot, id.clone())),
                _ => None,
            })
            .collect()
    }

    /// Applies ops to a model of the journal's table for one address.
    fn apply(table: &mut BTreeMap<u32, Bytes>, ops: &[JournalOp]) {
        for op in ops {
            match op {
                JournalOp::PutDuplicateId { slot, id, .. } => {
                    table.insert(*slot, id.clone());
                }
                JournalOp::DeleteDuplicateIds { .. } => table.clear(),
                _ => {}
            }
        }
    }

    #[test]
    fn a_repeat_is_refused_and_the_oldest_id_is_overwritten() {
        let mut r = Ring::new(Arc::from("a"), 3);
        let ops: Vec<_> = ["1", "2", "3"]
            .iter()
            .filter_map(|s| r.first_time(&id(s)))
            .collect();
        assert_eq!(ops.len(), 3);
        assert!(r.first_time(&id("2")).is_none());
        let op = r.first_time(&id("4")).unwrap();
        assert_eq!(stored(&[op])[0].0, 0, "the fourth id overwrites slot 0");
        assert!(!r.contains(b"1"));
        assert!(r.contains(b"2") && r.contains(b"3") && r.contains(b"4"));
        assert!(
            r.first_time(&id("1")).is_some(),
            "an evicted id is new again"
        );
    }

    #[test]
    fn a_restored_ring_resumes_where_it_was() {
        let mut r = Ring::new(Arc::from("a"), 3);
        let mut table = BTreeMap::new();
        for s in ["1", "2", "3", "4", "5"] {
            let op = r.first_time(&id(s)).unwrap();
            apply(&mut table, &[op]);
        }
        let (mut back, rewrite) =
            Ring::restore(Arc::from("a"), 3, table.clone().into_iter().collect());
        assert!(rewrite.is_empty(), "an unchanged layout is not rewritten");
        for s in ["3", "4", "5"] {
            assert!(back.contains(s.as_bytes()));
        }
        // Both go on in step: the next id overwrites the oldest, "3".
        let a = r.first_time(&id("6")).unwrap();
        let b = back.first_time(&id("6")).unwrap();
        assert_eq!(stored(&[a]), stored(&[b]));
        assert!(!back.contains(b"3") && back.contains(b"4"));
    }

    #[test]
    fn a_partly_filled_ring_restores_its_next_slot() {
        let mut r = Ring::new(Arc::from("a"), 5);
        let mut table = BTreeMap::new();
        for s in ["1", "2"] {
            apply(&mut table, &[r.first_time(&id(s)).unwrap()]);
        }
        let (mut back, rewrite) = Ring::restore(Arc::from("a"), 5, table.into_iter().collect());
        assert!(rewrite.is_empty());
        assert_eq!(stored(&[back.first_time(&id("3")).unwrap()])[0].0, 2);
    }

    #[test]
    fn a_smaller_cache_size_keeps_the_newest_ids_and_rewrites_the_journal() {
        let mut r = Ring::new(Arc::from("a"), 5);
        let mut table = BTreeMap::new();
        for s in ["1", "2", "3", "4", "5", "6", "7"] {
            apply(&mut table, &[r.first_time(&id(s)).unwrap()]);
        }
        let (back, rewrite) = Ring::restore(Arc::from("a"), 2, table.clone().into_iter().collect());
        assert!(back.contains(b"6") && back.contains(b"7") && !back.contains(b"5"));
        apply(&mut table, &rewrite);
        assert_eq!(table.len(), 2, "the journal keeps only the new ring");
        let (again, rewrite) = Ring::restore(Arc::from("a"), 2, table.into_iter().collect());
        assert!(rewrite.is_empty());
        assert!(again.contains(b"6") && again.contains(b"7"));
    }

    #[test]
    fn a_damaged_entry_is_dropped_and_the_ring_rewritten() {
        let (r, rewrite) = Ring::restore(Arc::from("a"), 3, vec![(0, Bytes::from_static(b"xx"))]);
        assert!(r.index.is_empty());
        assert!(matches!(rewrite[0], JournalOp::DeleteDuplicateIds { .. }));
    }

    #[test]
    fn the_least_recently_used_cache_goes_first_and_one_in_use_is_kept() {
        let d = DuplicateIds::new(None, 2, Vec::new(), |_| 3);
        drop(d.ring("a", 3));
        drop(d.ring("b", 3));
        drop(d.ring("a", 3));
        drop(d.ring("c", 3));
        let c = d.caches.lock();
        assert!(c.map.contains_key("a") && c.map.contains_key("c") && !c.map.contains_key("b"));
        drop(c);
        let held = d.ring("a", 3);
        let _c = d.ring("c", 3);
        drop(d.ring("d", 3));
        // "a" and "c" are in use; the bound is passed rather than forget them.
        let c = d.caches.lock();
        assert!(c.map.contains_key("a"));
        drop(c);
        drop(held);
        drop(d.ring("e", 3));
        assert_eq!(d.caches.lock().map.len(), 2);
    }

    #[test]
    fn an_id_longer_than_the_limit_is_refused() {
        let ok = vec![(
            ByteString::from(DUPLICATE_ID_HEADER),
            ByteString::from("x".repeat(MAX_DUPLICATE_ID_LEN)),
        )];
        assert!(duplicate_id(&ok).unwrap().is_some());
        let long = vec![(
            ByteString::from(DUPLICATE_ID_HEADER),
            ByteString::from("x".repeat(MAX_DUPLICATE_ID_LEN + 1)),
        )];
        assert!(matches!(
            duplicate_id(&long),
            Err(BrokerError::DuplicateIdTooLong { .. })
        ));
    }
}
