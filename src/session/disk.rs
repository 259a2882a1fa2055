//! Holding a producer while the data directory's disk is at or above `max-disk-usage`.

use super::{Failure, Session};
use crate::broker::{Destination, DiskRoom};

impl Session {
    /// Waits while the disk is full and the send would be persistent: the connection stops
    /// reading meanwhile (TCP back-pressure), as for a full BLOCK address. An address with
    /// policy FAIL refuses instead, naming the usage and the limit. Nothing has been routed
    /// yet, so giving up the wait is always safe.
    pub(super) async fn wait_for_disk(
        &self,
        dest: &Destination,
        persistent: Option<bool>,
    ) -> Result<(), Failure> {
        loop {
            match self.ctx.broker.disk_room(dest, persistent) {
                DiskRoom::Available => return Ok(()),
                // Boxed: a full disk is rare, and inlined the wait would be part of every
                // connection task's state.
                DiskRoom::Blocked(disk) => Box::pin(disk.wait_for_space()).await,
                DiskRoom::Refused(reason) => {
                    return Err(Failure::new(format!(
                        "cannot store a persistent message for '{}': {reason}",
                        dest.address
                    )));
                }
            }
        }
    }
}
