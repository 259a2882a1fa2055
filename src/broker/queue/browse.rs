//! Browsing a queue (ActiveMQ's queue browser, STOMP `browser:true`): reading what waits in
//! it without consuming anything. A browse pages through the queue a few hundred entries at a
//! time, each page one short critical section, so a queue of millions is never copied whole
//! and dispatch is never held up for long. Nothing changes: no delivery count moves, no
//! message leaves its place.
//!
//! Pages follow offer order: the waiting messages (backlog and parked) by priority, highest
//! first, then by arrival (`seq`); then the messages not due yet (scheduled, or waiting out a
//! redelivery delay) by due time. The cursor remembers where a page stopped (a priority level
//! and a `seq`, or a due time), so each page starts with a lookup, not a walk. A message that
//! moves while a browse is under way (delivered, given back, fallen due) may be missed or
//! seen twice: a browse is a best-effort snapshot, as in ActiveMQ.

use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;

use super::backlog::LEVELS;
use super::{Entry, Queue};
use crate::broker::message::{Message, now_millis};

/// Where a browse stopped; start with [`BrowseCursor::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowseCursor(Position);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Among the waiting messages of priority `level`, after `seq` `after` (0: from its start).
    Waiting { level: usize, after: u64 },
    /// Among the messages not due yet, after the `(due, seq)` key (`None`: from the first).
    NotDue { after: Option<(u64, u64)> },
    /// A retained stream, from this offset on.
    Offset(u64),
}

impl Default for BrowseCursor {
    /// The start of the queue: its highest priority.
    fn default() -> Self {
        BrowseCursor(Position::Waiting {
            level: LEVELS - 1,
            after: 0,
        })
    }
}

impl BrowseCursor {
    /// The cursor as text, for an API that pages over requests.
    pub fn to_token(self) -> String {
        match self.0 {
            Position::Waiting { level, after } => format!("w{level}.{after}"),
            Position::NotDue { after: None } => "n".into(),
            Position::NotDue {
                after: Some((due, seq)),
            } => format!("n{due}.{seq}"),
            Position::Offset(o) => format!("o{o}"),
        }
    }

    /// Reads a cursor [`BrowseCursor::to_token`] gave; `None` for anything else.
    pub fn from_token(t: &str) -> Option<BrowseCursor> {
        let pair = |s: &str| -> Option<(u64, u64)> {
            let (a, b) = s.split_once('.')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let p = match t.as_bytes().first()? {
            b'w' => {
                let (level, after) = pair(&t[1..])?;
                Position::Waiting {
                    level: usize::try_from(level).ok().filter(|l| *l < LEVELS)?,
                    after,
                }
            }
            b'n' if t.len() == 1 => Position::NotDue { after: None },
            b'n' => Position::NotDue {
                after: Some(pair(&t[1..])?),
            },
            b'o' => Position::Offset(t[1..].parse().ok()?),
            _ => return None,
        };
        Some(BrowseCursor(p))
    }
}

/// One message a browse shows, with how often it was delivered before.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// The message, shared with the queue (not copied).
    pub message: Arc<Message>,
    /// Deliveries it had so far (0: never delivered).
    pub delivery_count: u32,
}

/// One page of a browse.
#[derive(Debug)]
pub struct BrowsePage {
    /// The messages, in offer order; expired ones are left out.
    pub messages: Vec<Browsed>,
    /// Where the next page starts; `None` when the browse has seen the whole queue.
    pub next: Option<BrowseCursor>,
}

fn browsed(e: &Entry) -> Browsed {
    Browsed {
        message: Arc::clone(&e.message),
        delivery_count: e.delivery_count,
    }
}

impl Queue {
    /// Up to `max` (at least 1) messages from `from` on, in offer order, without changing the
    /// queue. The work is bounded by `max` and the number of priority levels, not by what the
    /// queue holds.
    pub fn browse(&self, from: BrowseCursor, max: usize) -> BrowsePage {
        let max = max.max(1);
        if let Some(stream) = &self.stream {
            // A stream shows what it retains, in offset order.
            let from = match from.0 {
                Position::Offset(o) => o,
                _ => 0,
            };
            let (messages, next) = stream.page(from, max);
            return BrowsePage {
                messages: messages
                    .into_iter()
                    .map(|message| Browsed {
                        message,
                        delivery_count: 0,
                    })
                    .collect(),
                next: next.map(|o| BrowseCursor(Position::Offset(o))),
            };
        }
        let now = now_millis();
        let st = self.lock();
        let mut messages = Vec::new();
        let mut budget = max;
        let mut pos = Some(from.0);
        while let Some(p) = pos {
            if budget == 0 {
                break;
            }
            match p {
                Position::Waiting { level, after } => {
                    // Both the backlog and the parked messages hold this level, each in two
                    // seq-ordered parts: take up to `budget` from each, merge, keep the first.
                    let mut found: Vec<&Entry> = Vec::new();
                    for backlog in [&st.backlog, &st.parked] {
                        let (ready, returned) = backlog.level(level);
                        let start = ready.partition_point(|e| e.seq <= after);
                        found.extend(ready.range(start..).take(budget));
                        found.extend(
                            returned
                                .range((Excluded(after), Unbounded))
                                .map(|(_, e)| e)
                                .take(budget),
                        );
                    }
                    found.sort_unstable_by_key(|e| e.seq);
                    found.truncate(budget);
                    budget -= found.len();
                    let last = found.last().map(|e| e.seq);
                    messages.extend(
                        found
                            .into_iter()
                            .filter(|e| !e.message.is_expired(now))
                            .map(browsed),
                    );
                    pos = match (budget, last) {
                        // The page is full: this level may hold more after `last`.
                        (0, Some(seq)) => Some(Position::Waiting { level, after: seq }),
                        _ if level == 0 => Some(Position::NotDue { after: None }),
                        _ => Some(Position::Waiting {
                            level: level - 1,
                            after: 0,
                        }),
                    };
                }
                // Only a stream's cursor, which the stream branch above takes.
                Position::Offset(_) => pos = None,
                Position::NotDue { after } => {
                    let mut last = after;
                    let mut taken = 0;
                    for (key, e) in st.scheduled.after(after).take(budget) {
                        last = Some(*key);
                        taken += 1;
                        if !e.message.is_expired(now) {
                            messages.push(browsed(e));
                        }
                    }
                    budget -= taken;
                    pos = (budget == 0).then_some(Position::NotDue { after: last });
                }
            }
        }
        BrowsePage {
            messages,
            next: pos.map(BrowseCursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{QueueKind, QueueSpec};
    use bytes::Bytes;

    fn queue() -> Arc<Queue> {
        Queue::new(QueueSpec::for_test("q", QueueKind::default()))
    }

    fn message(id: u64, priority: u8, deliver_at: u64, expires: u64) -> Arc<Message> {
        Arc::new(Message {
            id,
            address: Arc::from("q"),
            destination: "/queue/q".into(),
            properties: Vec::new(),
            body: Bytes::new().into(),
            persistent: false,
            priority,
            expires,
            timestamp: 0,
            deliver_at,
            origin: None,
            group: None,
            usage: None,
            encoded: None,
        })
    }

    /// Every id a browse shows, paging `max` at a time, and how many pages it took.
    fn browse_all(q: &Queue, max: usize) -> (Vec<u64>, usize) {
        let mut ids = Vec::new();
        let mut cursor = BrowseCursor::default();
        let mut pages = 0;
        loop {
            let page = q.browse(cursor, max);
            pages += 1;
            assert!(page.messages.len() <= max);
            ids.extend(page.messages.iter().map(|b| b.message.id));
            match page.next {
                Some(c) => cursor = c,
                None => return (ids, pages),
            }
        }
    }

    #[test]
    fn pages_in_offer_order_and_changes_nothing() {
        let q = queue();
        let later = now_millis() + 3_600_000;
        // ids 1..=9: priorities 4, 9, 4, 0, 9, scheduled, 4, scheduled (earlier), 0.
        let plan = [
            (4, 0),
            (9, 0),
            (4, 0),
            (0, 0),
            (9, 0),
            (4, later + 10),
            (4, 0),
            (4, later),
            (0, 0),
        ];
        for (i, (p, at)) in plan.iter().enumerate() {
            q.enqueue(message(i as u64 + 1, *p, *at, 0))
                .expect("enqueued");
        }
        let want = vec![2, 5, 1, 3, 7, 4, 9, 8, 6];
        for max in [1, 2, 3, 100] {
            let (ids, _) = browse_all(&q, max);
            assert_eq!(ids, want, "page size {max}");
        }
        assert_eq!(q.ready_count(), 9);
        assert_eq!(q.scheduled_count(), 2);
        let again: Vec<u64> = q.snapshot().iter().map(|(m, _)| m.id).collect();
        assert_eq!(again, want);
        assert!(q.snapshot().iter().all(|(_, count)| *count == 0));
    }

    #[test]
    fn an_empty_queue_is_one_empty_page() {
        let q = queue();
        let page = q.browse(BrowseCursor::default(), 10);
        assert!(page.messages.is_empty());
        assert!(page.next.is_none());
    }

    #[test]
    fn expired_messages_are_not_shown() {
        let q = queue();
        q.enqueue(message(1, 4, 0, 1)).expect("enqueued");
        q.enqueue(message(2, 4, 0, 0)).expect("enqueued");
        let (ids, _) = browse_all(&q, 10);
        assert_eq!(ids, vec![2]);
    }

    #[test]
    fn a_large_queue_pages_completely() {
        let q = queue();
        for id in 1..=1000 {
            q.enqueue(message(id, (id % 3) as u8 * 4, 0, 0))
                .expect("enqueued");
        }
        let (ids, pages) = browse_all(&q, 64);
        assert_eq!(ids.len(), 1000);
        let mut expected: Vec<u64> = (1..=1000).collect();
        expected.sort_by_key(|id| (std::cmp::Reverse(id % 3), *id));
        assert_eq!(ids, expected);
        assert!(pages >= 1000 / 64, "paged: {pages}");
    }
}
