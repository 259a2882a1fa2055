//! The echo server's subscriptions: which connections a SEND's destination reaches. A
//! `/topic/...` destination gives every subscription a copy; any other destination is a
//! queue whose subscriptions take turns (round-robin). Nothing is kept for a destination
//! without subscribers, so a SEND to one is dropped.

use std::collections::HashMap;

/// One subscription, as a MESSAGE needs it.
#[derive(Debug)]
pub struct Sub {
    /// The subscribing connection's slot.
    pub conn: usize,
    /// Its `id` header, escaped, copied into each MESSAGE's `subscription` header.
    pub id: Box<[u8]>,
    /// Whether MESSAGEs carry an `ack` header (ack mode client or client-individual).
    pub ack: bool,
}

struct Destination {
    name: Box<[u8]>,
    subs: Vec<Sub>,
    /// The queue subscription whose turn is next.
    next: usize,
    topic: bool,
}

/// Every destination that has at least one subscription.
#[derive(Default)]
pub struct Routes {
    by_name: HashMap<Box<[u8]>, usize>,
    dests: Vec<Option<Destination>>,
    free: Vec<usize>,
    /// Changes whenever a destination appears or goes, so that a connection's cached
    /// lookup (see `RouteCache`) knows when it is stale.
    pub epoch: u64,
}

impl Routes {
    /// The destination called `name` (escaped bytes), if anyone subscribes to it.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Adds a subscription to `name` and returns the destination's index.
    pub fn subscribe(&mut self, name: &[u8], sub: Sub) -> usize {
        if let Some(&d) = self.by_name.get(name)
            && let Some(Some(dest)) = self.dests.get_mut(d)
        {
            dest.subs.push(sub);
            return d;
        }
        let dest = Destination {
            name: name.into(),
            subs: vec![sub],
            next: 0,
            topic: name.starts_with(b"/topic/"),
        };
        let d = match self.free.pop() {
            Some(d) => {
                if let Some(slot) = self.dests.get_mut(d) {
                    *slot = Some(dest);
                }
                d
            }
            None => {
                self.dests.push(Some(dest));
                self.dests.len() - 1
            }
        };
        self.by_name.insert(name.into(), d);
        self.epoch += 1;
        d
    }

    /// Removes connection `conn`'s subscription `id` from destination `d`; the destination
    /// goes with its last subscription.
    pub fn unsubscribe(&mut self, d: usize, conn: usize, id: &[u8]) {
        let Some(Some(dest)) = self.dests.get_mut(d) else {
            return;
        };
        let Some(i) = dest
            .subs
            .iter()
            .position(|s| s.conn == conn && *s.id == *id)
        else {
            return;
        };
        dest.subs.remove(i);
        if i < dest.next {
            dest.next -= 1;
        }
        if dest.subs.is_empty() {
            self.by_name.remove(&dest.name);
            if let Some(slot) = self.dests.get_mut(d) {
                *slot = None;
            }
            self.free.push(d);
            self.epoch += 1;
        }
    }

    /// The subscriptions a message to destination `d` goes to: all of a topic's, or the
    /// queue subscription whose turn it is (and the turn passes on).
    pub fn targets(&mut self, d: usize) -> &[Sub] {
        let Some(Some(dest)) = self.dests.get_mut(d) else {
            return &[];
        };
        if dest.topic {
            return &dest.subs;
        }
        let i = if dest.next < dest.subs.len() {
            dest.next
        } else {
            0
        };
        dest.next = i + 1;
        dest.subs.get(i..=i).unwrap_or_default()
    }
}

/// A connection's last destination lookup: a producer usually sends to one destination, so
/// comparing its bytes saves hashing them on every SEND.
#[derive(Default)]
pub struct RouteCache {
    /// [`Routes::epoch`] when the lookup was made; `None` before any.
    epoch: Option<u64>,
    name: Vec<u8>,
    dest: Option<usize>,
}

impl RouteCache {
    /// The destination `name` resolves to, from the cache when still valid.
    pub fn resolve(&mut self, routes: &Routes, name: &[u8]) -> Option<usize> {
        if self.epoch == Some(routes.epoch) && self.name == name {
            return self.dest;
        }
        self.dest = routes.lookup(name);
        self.epoch = Some(routes.epoch);
        self.name.clear();
        self.name.extend_from_slice(name);
        self.dest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(conn: usize, id: &str) -> Sub {
        Sub {
            conn,
            id: id.as_bytes().into(),
            ack: false,
        }
    }

    fn turns(r: &mut Routes, d: usize, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| r.targets(d).first().map_or(usize::MAX, |s| s.conn))
            .collect()
    }

    #[test]
    fn a_queue_takes_turns_and_a_topic_copies() {
        let mut r = Routes::default();
        let q = r.subscribe(b"/queue/a", sub(1, "x"));
        r.subscribe(b"/queue/a", sub(2, "y"));
        assert_eq!(turns(&mut r, q, 4), [1, 2, 1, 2]);
        r.unsubscribe(q, 1, b"x");
        assert_eq!(turns(&mut r, q, 2), [2, 2]);
        let t = r.subscribe(b"/topic/b", sub(1, "x"));
        r.subscribe(b"/topic/b", sub(2, "x"));
        assert_eq!(r.targets(t).len(), 2);
    }

    #[test]
    fn the_last_unsubscribe_forgets_the_destination_and_the_cache_sees_it() {
        let mut r = Routes::default();
        let mut cache = RouteCache::default();
        assert_eq!(cache.resolve(&r, b"/queue/a"), None);
        let q = r.subscribe(b"/queue/a", sub(1, "x"));
        assert_eq!(cache.resolve(&r, b"/queue/a"), Some(q));
        r.unsubscribe(q, 1, b"x");
        assert_eq!(cache.resolve(&r, b"/queue/a"), None);
        assert_eq!(r.lookup(b"/queue/a"), None);
        assert!(r.targets(q).is_empty());
    }
}
