//! Who may run an argon2 verification now. Hashing is deliberately expensive, so only a few
//! run at once (the rest wait, instead of taking every core and the blocking pool); and one
//! source may hold only one of those slots, so a login flood from one address waits behind
//! itself while logins from elsewhere still find a free slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::throttle::source_key;

/// Verifications one source may run at once.
const PER_SOURCE: usize = 1;

/// The broker-wide slots and, per source with a login in progress, its own semaphore.
#[derive(Debug)]
pub(crate) struct VerificationSlots {
    total: Arc<Semaphore>,
    sources: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

/// A held slot; released on drop, including when the login's future is cancelled while it
/// waits or verifies.
#[derive(Debug)]
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    _source: SourceRef,
}

/// One user of a source's semaphore; the last one out removes it from the table, so the
/// table holds only sources with a login in progress.
#[derive(Debug)]
struct SourceRef {
    key: IpAddr,
    semaphore: Option<Arc<Semaphore>>,
    permit: Option<OwnedSemaphorePermit>,
    sources: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

impl Drop for SourceRef {
    fn drop(&mut self) {
        self.permit.take();
        let Some(semaphore) = self.semaphore.take() else {
            return;
        };
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        // The table's own reference and ours: nobody else holds or waits for it.
        if Arc::strong_count(&semaphore) == 2 {
            map.remove(&self.key);
        }
    }
}

impl VerificationSlots {
    /// `total` verifications at once over all sources.
    pub(crate) fn new(total: usize) -> VerificationSlots {
        VerificationSlots {
            total: Arc::new(Semaphore::new(total.max(1))),
            sources: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits for `ip`'s source slot, then for a broker-wide one. `None` only if the
    /// semaphores were closed, which they never are.
    pub(crate) async fn acquire(&self, ip: IpAddr) -> Option<Slot> {
        let key = source_key(ip);
        let semaphore = {
            let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry(key)
                    .or_insert_with(|| Arc::new(Semaphore::new(PER_SOURCE))),
            )
        };
        // Registered before the first await, so a cancelled waiter still cleans up.
        let mut source = SourceRef {
            key,
            semaphore: Some(Arc::clone(&semaphore)),
            permit: None,
            sources: Arc::clone(&self.sources),
        };
        source.permit = Some(semaphore.acquire_owned().await.ok()?);
        let total = Arc::clone(&self.total).acquire_owned().await.ok()?;
        Some(Slot {
            _total: total,
            _source: source,
        })
    }

    /// Sources with a login waiting or running (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_source_cannot_take_every_slot() {
        let slots = VerificationSlots::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let held = slots.acquire(a).await.expect("slot");
        // A second login from a waits for its source, not holding a broker-wide slot...
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.acquire(a)).await;
        assert!(waiting.is_err());
        // ... so b still gets one at once.
        let other = tokio::time::timeout(Duration::from_secs(5), slots.acquire(b))
            .await
            .expect("b is not starved")
            .expect("slot");
        drop(held);
        drop(other);
        // The cancelled waiter and the released holders left nothing behind.
        assert_eq!(slots.sources(), 0);
    }
}
