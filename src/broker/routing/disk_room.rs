//! Whether a SEND may go to the journal now, given `max-disk-usage`: the broker side of the
//! disk guard whose monitor lives in `broker::disk`.

use super::{Broker, Destination};
use crate::broker::FullPolicy;
use crate::broker::disk::{DiskMonitor, limit_of};
use crate::journal::Journal;
use std::sync::Arc;
use std::time::Duration;

/// What a producer must do about the disk before a send.
#[derive(Debug)]
pub enum DiskRoom {
    /// Below the limit, or the send writes nothing to the journal.
    Available,
    /// At or above the limit: wait on this before sending.
    Blocked(Arc<DiskMonitor>),
    /// At or above the limit on an address whose policy is FAIL: refuse with this reason.
    Refused(String),
}

/// The monitor for `journal`'s directory against `max-disk-usage`, scanning every
/// `disk-scan-period` ms; one that never reports full when there is no journal (nothing is
/// written to disk) or the check is off (-1).
pub(super) fn monitor(
    max_disk_usage: i64,
    disk_scan_period: i64,
    journal: Option<&Journal>,
) -> Arc<DiskMonitor> {
    let limit = limit_of(max_disk_usage);
    let dir = journal.and_then(|j| j.path().parent().map(|p| p.to_path_buf()));
    let (Some(dir), Some(limit)) = (dir, limit) else {
        return DiskMonitor::off();
    };
    let m = DiskMonitor::new(dir, Some(limit));
    let period = u64::try_from(disk_scan_period).unwrap_or(5_000).max(1);
    m.start(Duration::from_millis(period));
    m
}

impl Broker {
    /// Tells a producer whether a send to `dest` (with the SEND's `persistent` header, if any)
    /// may be written now. Persistent messages are held, and non-persistent ones whose
    /// address is paging (a page is written to disk too); other non-persistent ones never
    /// reach the journal. The address's `address-full-policy` decides between holding the
    /// producer (PAGE, BLOCK, DROP: a full disk drops nothing) and refusing it (FAIL).
    pub fn disk_room(&self, dest: &Destination, persistent: Option<bool>) -> DiskRoom {
        if !self.disk.is_full() {
            return DiskRoom::Available;
        }
        let settings = self.settings.load().resolve(&dest.address);
        if !persistent.unwrap_or(settings.default_persistent) && !self.pages(dest) {
            return DiskRoom::Available;
        }
        match settings.full_policy {
            FullPolicy::Fail => DiskRoom::Refused(self.disk.reason()),
            _ => DiskRoom::Blocked(Arc::clone(&self.disk)),
        }
    }

    /// Whether a message to `dest` would be paged now: its address pages and is full, or a
    /// queue of it pages already (what follows a paged message pages too, to keep order).
    fn pages(&self, dest: &Destination) -> bool {
        let reg = self.read();
        match reg.addresses.get(dest.address.as_str()) {
            Some(a) => a.usage.should_page() || a.queues.iter().any(|q| q.is_paging()),
            None => {
                self.journal.is_some()
                    && self.memory.is_full()
                    && self.settings.load().resolve(&dest.address).full_policy == FullPolicy::Page
            }
        }
    }
}
