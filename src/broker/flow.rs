//! Producer flow control: bytes held per address against `max-size-bytes`. A message holds a
//! [`UsageToken`] for as long as any queue, consumer or buffer holds the message, so the count
//! is exact without bookkeeping at every ack and drop site.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// Bytes currently held for one address, and a way to wait for them to drop.
#[derive(Debug)]
pub struct AddressUsage {
    bytes: AtomicU64,
    limit: Option<u64>,
    freed: Notify,
}

impl AddressUsage {
    /// A counter with the address's `max-size-bytes`.
    pub fn new(limit: Option<u64>) -> Arc<Self> {
        Arc::new(AddressUsage {
            bytes: AtomicU64::new(0),
            limit,
            freed: Notify::new(),
        })
    }

    /// Whether the address holds at least its limit.
    pub fn is_full(&self) -> bool {
        match self.limit {
            Some(limit) => self.bytes.load(Ordering::Acquire) >= limit,
            None => false,
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Waits until the address is below its limit. Returns at once when it already is.
    pub async fn wait_for_space(&self) {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            // Register before checking so a release between check and await is not missed.
            notified.as_mut().enable();
            if !self.is_full() {
                return;
            }
            notified.await;
        }
    }

    /// Charges `size` bytes; the token gives them back when dropped.
    pub fn charge(self: &Arc<Self>, size: u64) -> UsageToken {
        self.bytes.fetch_add(size, Ordering::AcqRel);
        UsageToken {
            usage: Arc::clone(self),
            size,
        }
    }
}

/// Bytes charged to an address; released on drop.
#[derive(Debug)]
pub struct UsageToken {
    usage: Arc<AddressUsage>,
    size: u64,
}

impl Drop for UsageToken {
    fn drop(&mut self) {
        let before = self.usage.bytes.fetch_sub(self.size, Ordering::AcqRel);
        if let Some(limit) = self.usage.limit
            && before >= limit
            && before - self.size < limit
        {
            self.usage.freed.notify_waiters();
        }
    }
}
