//! Disk-usage guard (`max-disk-usage`, as Artemis): a task reads the journal directory's
//! filesystem usage every `disk-scan-period`, and while it is at or above the limit persistent
//! SENDs are held (or refused) before they reach the journal, so a full disk slows producers
//! instead of failing commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Used and total bytes of a filesystem, as statvfs reports them for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes not available to the broker (`total - available`).
    pub used: u64,
    /// Size of the filesystem in bytes.
    pub total: u64,
}

impl DiskUsage {
    /// From statvfs's fields: fragment size, total fragments and fragments this process may
    /// still write (see [`read_usage`]).
    pub fn from_blocks(fragment: u64, blocks: u64, available: u64) -> Self {
        let total = fragment.saturating_mul(blocks);
        let free = fragment.saturating_mul(available.min(blocks));
        DiskUsage {
            used: total - free,
            total,
        }
    }

    /// Whole percent used, rounded down (for messages; the threshold test is exact).
    pub fn percent(self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        (u128::from(self.used) * 100 / u128::from(self.total)) as u64
    }

    /// Whether usage is at or above `max` percent, compared exactly (no rounding). A
    /// filesystem reporting no size (some FUSE and network filesystems do, and are writable)
    /// says nothing about its usage, so it never counts as full.
    pub fn at_or_above(self, max: u8) -> bool {
        self.total > 0 && u128::from(self.used) * 100 >= u128::from(max) * u128::from(self.total)
    }
}

/// Reads the usage of the filesystem holding `dir`: free is what this process can still
/// write, the blocks available to unprivileged users (Java's `getUsableSpace`, which Artemis
/// uses) or, for root, every free block, since root may write into the blocks a filesystem
/// reserves (ext4 keeps 5% by default, some hosts far more) and only meets ENOSPC when those
/// are gone too. Counting them as used would hold a root broker's producers on a disk with
/// plenty of room for it.
pub fn read_usage(dir: &Path) -> std::io::Result<DiskUsage> {
    let s = rustix::fs::statvfs(dir)?;
    let free = if rustix::process::geteuid().is_root() {
        s.f_bfree
    } else {
        s.f_bavail
    };
    Ok(DiskUsage::from_blocks(s.f_frsize, s.f_blocks, free))
}

/// The broker's view of its data directory's disk: whether it counts as full, and a way to
/// wait for it not to.
#[derive(Debug)]
pub struct DiskMonitor {
    dir: PathBuf,
    /// `max-disk-usage`; `None` when the check is off (or there is no journal).
    max: Option<u8>,
    full: AtomicBool,
    /// The last percent read, for the refusal message.
    percent: AtomicU64,
    /// Whether the last read failed, so a failing statvfs is logged once, not every scan.
    read_failed: AtomicBool,
    freed: Notify,
}

impl DiskMonitor {
    /// A monitor of `dir` against `max` percent (`None`: never full). Reads the usage once
    /// now, so a broker started on a full disk holds persistent sends from the first one.
    pub fn new(dir: PathBuf, max: Option<u8>) -> Arc<Self> {
        let m = Arc::new(DiskMonitor {
            dir,
            max,
            full: AtomicBool::new(false),
            percent: AtomicU64::new(0),
            read_failed: AtomicBool::new(false),
            freed: Notify::new(),
        });
        m.scan();
        m
    }

    /// A monitor that never reports full (no journal, nothing to protect).
    pub fn off() -> Arc<Self> {
        Self::new(PathBuf::new(), None)
    }

    /// The directory watched (the journal's).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `max-disk-usage` in percent, when the check is on.
    pub fn max_percent(&self) -> Option<u8> {
        self.max
    }

    /// Whether persistent sends must wait (or be refused) now.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Why a persistent send is refused while full, naming the directory and both numbers.
    pub fn reason(&self) -> String {
        format!(
            "disk usage {}% of {} is at or above max-disk-usage {}%",
            self.percent.load(Ordering::Acquire),
            self.dir.display(),
            self.max.unwrap_or(100)
        )
    }

    /// Waits until the disk is below the limit. Returns at once when it already is.
    pub async fn wait_for_space(&self) {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            // Register before checking so a scan between check and await is not missed.
            notified.as_mut().enable();
            if !self.is_full() {
                return;
            }
            notified.await;
        }
    }

    /// Reads the usage and updates the state, logging when blocking starts or stops. A
    /// failed read keeps the previous state: an unreadable statvfs is no evidence either way.
    pub fn scan(&self) {
        let Some(max) = self.max else {
            return;
        };
        let usage = match read_usage(&self.dir) {
            Ok(u) => {
                if self.read_failed.swap(false, Ordering::AcqRel) {
                    tracing::info!(dir = %self.dir.display(), "disk usage readable again");
                }
                u
            }
            Err(e) => {
                if !self.read_failed.swap(true, Ordering::AcqRel) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read disk usage; max-disk-usage state unchanged");
                }
                return;
            }
        };
        self.apply(usage, max);
    }

    /// Applies one reading against `max`.
    fn apply(&self, usage: DiskUsage, max: u8) {
        self.percent.store(usage.percent(), Ordering::Release);
        let full = usage.at_or_above(max);
        let was = self.full.swap(full, Ordering::AcqRel);
        // Logged on change only, so at most once per scan period.
        if full && !was {
            tracing::warn!(dir = %self.dir.display(), percent = usage.percent(), max_disk_usage = max, "disk usage at or above max-disk-usage: holding persistent sends (refusing them on FAIL addresses)");
        } else if !full && was {
            tracing::warn!(dir = %self.dir.display(), percent = usage.percent(), max_disk_usage = max, "disk usage below max-disk-usage again: persistent sends resume");
            self.freed.notify_waiters();
        }
    }

    /// Starts the periodic scan on the current runtime (none in plain unit tests). The task
    /// holds the monitor weakly and ends when the broker drops it.
    pub fn start(self: &Arc<Self>, period: Duration) {
        if self.max.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<DiskMonitor> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(m) = weak.upgrade() else {
                    return;
                };
                // statvfs is one cheap syscall, but it is still a blocking one.
                let scanned = Arc::clone(&m);
                if tokio::task::spawn_blocking(move || scanned.scan())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// `max-disk-usage` as configured (-1 = off) to the monitor's limit.
pub fn limit_of(max_disk_usage: i64) -> Option<u8> {
    u8::try_from(max_disk_usage).ok().filter(|p| *p <= 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_only_space_available_to_the_broker_as_free() {
        // 100 blocks of 4 KiB of which 20 may still be written.
        let u = DiskUsage::from_blocks(4096, 100, 20);
        assert_eq!(u.total, 409_600);
        assert_eq!(u.used, 80 * 4096);
        assert_eq!(u.percent(), 80);
        // More "available" than exists (a racy read) is clamped, never underflows.
        assert_eq!(DiskUsage::from_blocks(1, 10, 11).used, 0);
    }

    #[test]
    fn threshold_is_at_or_above_and_exact() {
        let u = |used, total| DiskUsage { used, total };
        assert!(u(90, 100).at_or_above(90));
        assert!(!u(89, 100).at_or_above(90));
        // 89.99% rounds down to 89 for the message but must not pass as below 90 by rounding
        // up, nor count as 90 by rounding: exactly below.
        assert!(!u(8999, 10_000).at_or_above(90));
        assert_eq!(u(8999, 10_000).percent(), 89);
        assert!(u(0, 100).at_or_above(0));
        assert!(!u(99, 100).at_or_above(100));
        assert!(u(100, 100).at_or_above(100));
        // No size reported: no evidence of a full disk, whatever the limit.
        assert!(!u(0, 0).at_or_above(0));
        assert_eq!(u(0, 0).percent(), 0);
        // No overflow at the extremes.
        assert!(u(u64::MAX, u64::MAX).at_or_above(100));
    }

    #[test]
    fn limit_of_config() {
        assert_eq!(limit_of(-1), None);
        assert_eq!(limit_of(0), Some(0));
        assert_eq!(limit_of(90), Some(90));
        assert_eq!(limit_of(101), None);
    }

    #[tokio::test]
    async fn state_follows_readings_and_wakes_waiters_when_space_frees() {
        let m = DiskMonitor::new(PathBuf::from("/nonexistent-wrenmq-dir"), Some(90));
        assert!(
            !m.is_full(),
            "an unreadable disk is not evidence of a full one"
        );
        m.apply(
            DiskUsage {
                used: 95,
                total: 100,
            },
            90,
        );
        assert!(m.is_full());
        assert!(m.reason().contains("disk usage 95%"), "{}", m.reason());
        assert!(m.reason().contains("max-disk-usage 90%"), "{}", m.reason());
        let waiter = tokio::spawn({
            let m = Arc::clone(&m);
            async move { m.wait_for_space().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        m.apply(
            DiskUsage {
                used: 50,
                total: 100,
            },
            90,
        );
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken when usage drops")
            .expect("waiter task");
    }

    #[test]
    fn real_directory_reads_a_sane_usage() {
        let dir = tempfile::tempdir().unwrap();
        let u = read_usage(dir.path()).unwrap();
        assert!(u.total > 0 && u.used <= u.total, "{u:?}");
        // Limit 0 counts any filesystem as full; -1 (off) never does.
        assert!(DiskMonitor::new(dir.path().to_path_buf(), Some(0)).is_full());
        assert!(!DiskMonitor::new(dir.path().to_path_buf(), None).is_full());
    }
}
