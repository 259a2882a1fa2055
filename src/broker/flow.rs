//! Producer flow control: bytes held per address against `max-size-bytes`, and by all
//! addresses together against `[broker] global-max-size`. A message holds a [`UsageToken`]
//! for as long as any queue, consumer or buffer holds the message, so the count is exact
//! without bookkeeping at every ack and drop site. An address counts as full when it is over
//! its own limit or the broker is over the global one; what a producer then meets is the
//! address's `address-full-policy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

use super::message::now_millis;

/// Least time between two log lines about one counter filling or freeing, so a producer
/// bouncing on a limit does not flood the log.
const LOG_EVERY_MS: u64 = 10_000;

/// Bytes currently held for one address (or for the whole broker), and a way to wait for
/// them to drop.
#[derive(Debug)]
pub struct AddressUsage {
    /// The address, or `global-max-size` for the broker-wide counter; for the log.
    name: Arc<str>,
    bytes: AtomicU64,
    /// `max-size-bytes`, [`NO_LIMIT`] for none; atomic so that a reload of the address
    /// settings changes it for an existing address (see [`AddressUsage::set_limits`]).
    limit: AtomicU64,
    /// Messages held (charges of [`AddressUsage::charge_message`]), against `max_messages`.
    messages: AtomicU64,
    max_messages: Option<u64>,
    freed: Notify,
    /// The broker-wide counter every address also charges.
    parent: Option<Arc<AddressUsage>>,
    /// When a fill or free was last logged (ms since the epoch).
    logged_at: AtomicU64,
    /// The address's policy is PAGE (and there is a journal to page to): once full, its
    /// queues write further messages to disk instead of holding them.
    pages: AtomicBool,
    /// The address's routing counters for operators. They live here because every message
    /// already carries its address's usage counter, so counting costs no lookup.
    pub stats: super::stats::AddressStats,
}

/// The stored `limit` of an address without `max-size-bytes`.
const NO_LIMIT: u64 = u64::MAX;

fn stored(limit: Option<u64>) -> AtomicU64 {
    AtomicU64::new(limit.unwrap_or(NO_LIMIT))
}

impl AddressUsage {
    /// A counter with the address's `max-size-bytes` and no broker-wide limit above it.
    pub fn new(limit: Option<u64>) -> Arc<Self> {
        Self::named("address", limit, None)
    }

    /// A counter for `name` with limit `limit`, charging `parent` too.
    pub fn named(name: &str, limit: Option<u64>, parent: Option<Arc<AddressUsage>>) -> Arc<Self> {
        Arc::new(AddressUsage {
            name: Arc::from(name),
            bytes: AtomicU64::new(0),
            limit: stored(limit),
            messages: AtomicU64::new(0),
            max_messages: None,
            freed: Notify::new(),
            parent,
            logged_at: AtomicU64::new(0),
            pages: AtomicBool::new(false),
            stats: Default::default(),
        })
    }

    /// A counter for address `name` with `max-size-bytes` `limit` and `max-size-messages`
    /// `max_messages`, charging `parent` (the broker's `global-max-size`) too; `pages`: the
    /// address pages to disk when full.
    pub fn address(
        name: &str,
        limit: Option<u64>,
        max_messages: Option<u64>,
        parent: Arc<AddressUsage>,
        pages: bool,
    ) -> Arc<Self> {
        Arc::new(AddressUsage {
            name: Arc::from(name),
            bytes: AtomicU64::new(0),
            limit: stored(limit),
            messages: AtomicU64::new(0),
            max_messages,
            freed: Notify::new(),
            parent: Some(parent),
            logged_at: AtomicU64::new(0),
            pages: AtomicBool::new(pages),
            stats: Default::default(),
        })
    }

    /// Whether a message charged here should go to disk rather than stay in memory: the
    /// address pages and is full.
    pub fn should_page(&self) -> bool {
        self.pages.load(Ordering::Relaxed) && self.is_full()
    }

    fn over_own_limit(&self) -> bool {
        self.limit()
            .is_some_and(|limit| self.bytes.load(Ordering::Acquire) >= limit)
            || self
                .max_messages
                .is_some_and(|max| self.messages.load(Ordering::Acquire) >= max)
    }

    /// Messages held now (counted only where `max-size-messages` is set).
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Acquire)
    }

    /// Whether the address holds at least its limit, or the broker at least its global one.
    pub fn is_full(&self) -> bool {
        self.over_own_limit() || self.parent.as_ref().is_some_and(|p| p.is_full())
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != NO_LIMIT)
    }

    /// Applies reloaded address settings: a new `max-size-bytes` and whether the address
    /// pages when full. Producers held on the old limit are woken to look again.
    pub fn set_limits(&self, limit: Option<u64>, pages: bool) {
        self.limit
            .store(limit.unwrap_or(NO_LIMIT), Ordering::Relaxed);
        self.pages.store(pages, Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// Waits until neither the address nor the broker is at its limit. Returns at once when
    /// neither is.
    pub async fn wait_for_space(&self) {
        loop {
            let own = self.freed.notified();
            tokio::pin!(own);
            // Register before checking so a release between check and await is not missed.
            own.as_mut().enable();
            let Some(parent) = &self.parent else {
                if !self.is_full() {
                    return;
                }
                own.await;
                continue;
            };
            let global = parent.freed.notified();
            tokio::pin!(global);
            global.as_mut().enable();
            if !self.is_full() {
                return;
            }
            tokio::select! {
                _ = &mut own => {}
                _ = &mut global => {}
            }
        }
    }

    /// Charges `size` bytes (to the broker-wide counter too); the token gives them back
    /// when dropped.
    pub fn charge(self: &Arc<Self>, size: u64) -> UsageToken {
        self.add(size);
        UsageToken {
            usage: Arc::clone(self),
            size,
            message: false,
        }
    }

    /// Charges one message of `size` bytes: counts against `max-size-messages` as well.
    pub fn charge_message(self: &Arc<Self>, size: u64) -> UsageToken {
        // Without a message limit nobody reads the count: skip the shared write.
        let counted = self.max_messages.is_some();
        if let Some(max) = self.max_messages {
            let before = self.messages.fetch_add(1, Ordering::AcqRel);
            if before + 1 == max {
                self.log_edge(true, before + 1, max);
            }
        }
        self.add(size);
        UsageToken {
            usage: Arc::clone(self),
            size,
            message: counted,
        }
    }

    fn add(&self, size: u64) {
        let before = self.bytes.fetch_add(size, Ordering::AcqRel);
        if let Some(limit) = self.limit()
            && before < limit
            && before + size >= limit
        {
            self.log_edge(true, before + size, limit);
        }
        if let Some(p) = &self.parent {
            p.add(size);
        }
    }

    fn release(&self, size: u64) {
        let before = self.bytes.fetch_sub(size, Ordering::AcqRel);
        if let Some(limit) = self.limit()
            && before >= limit
            && before - size < limit
        {
            self.freed.notify_waiters();
            self.log_edge(false, before - size, limit);
        }
        if let Some(p) = &self.parent {
            p.release(size);
        }
    }

    /// Logs that the counter reached or left its limit, at most once per [`LOG_EVERY_MS`].
    fn log_edge(&self, full: bool, bytes: u64, limit: u64) {
        let now = now_millis();
        let last = self.logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < LOG_EVERY_MS
            || self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if full && self.pages.load(Ordering::Relaxed) {
            tracing::warn!(limit_of = %self.name, bytes, limit, "memory limit reached: the address pages further messages to disk");
        } else if full {
            tracing::warn!(limit_of = %self.name, bytes, limit, "memory limit reached: producers now meet the address-full-policy");
        } else {
            tracing::info!(limit_of = %self.name, bytes, limit, "back under the memory limit");
        }
    }
}

/// Bytes charged to an address; released on drop.
#[derive(Debug)]
pub struct UsageToken {
    pub(crate) usage: Arc<AddressUsage>,
    size: u64,
    /// Counted as a message against `max-size-messages` too.
    message: bool,
}

impl UsageToken {
    /// Bytes charged.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for UsageToken {
    fn drop(&mut self) {
        let u = &self.usage;
        if self.message {
            let before = u.messages.fetch_sub(1, Ordering::AcqRel);
            if u.max_messages == Some(before) {
                u.freed.notify_waiters();
            }
        }
        u.release(self.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_limit_fills_every_address_and_tokens_free_both() {
        let global = AddressUsage::named("global-max-size", Some(100), None);
        let a = AddressUsage::named("a", None, Some(Arc::clone(&global)));
        let b = AddressUsage::named("b", Some(1000), Some(Arc::clone(&global)));
        let t = a.charge(60);
        assert!(!b.is_full());
        let u = b.charge(40);
        assert!(a.is_full() && b.is_full(), "the broker is at its limit");
        assert_eq!((a.bytes(), b.bytes(), global.bytes()), (60, 40, 100));
        drop(t);
        assert!(!a.is_full() && !b.is_full());
        drop(u);
        assert_eq!(global.bytes(), 0);
    }

    #[test]
    fn max_size_messages_counts_messages_not_bytes() {
        let global = AddressUsage::named("global-max-size", None, None);
        let a = AddressUsage::address("a", None, Some(2), global, false);
        let t1 = a.charge_message(1);
        let _bytes_only = a.charge(1_000_000);
        assert!(!a.is_full(), "plain charges are not messages");
        let t2 = a.charge_message(1);
        assert!(a.is_full());
        drop(t1);
        assert!(!a.is_full());
        assert_eq!(a.messages(), 1);
        drop(t2);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_global_counter_frees() {
        let global = AddressUsage::named("global-max-size", Some(10), None);
        let a = AddressUsage::named("a", None, Some(Arc::clone(&global)));
        let b = AddressUsage::named("b", None, Some(Arc::clone(&global)));
        let held = b.charge(10);
        let waiter = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.wait_for_space().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a waits while the broker is full");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("no panic");
    }
}
