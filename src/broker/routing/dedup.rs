//! The send and commit side of duplicate detection (`broker/duplicates.rs`): a SEND whose
//! `_AMQ_DUPL_ID` its address has seen is dropped but answered as any SEND.
//!
//! Ordering: a send keeps its address's cache locked from the check until its journal batch
//! (message, refs and id together) is submitted. A duplicate checked after that submits an
//! empty batch and answers when it is stored. The journal has one channel and one writer
//! thread that takes requests in the order they were sent and commits them in that order
//! (a later request in the same group commit or a later one; once a commit fails, every
//! later one fails too), so the duplicate's RECEIPT never comes before the original's
//! message is durable, nor reports success if it was lost.

use bytes::Bytes;

use super::send::{Paged, record_pages, record_puts};
use super::{Broker, Destination, MessageDraft, SendReport};
use crate::broker::duplicates::{Held, duplicate_id};
use crate::broker::{BrokerError, Message};
use crate::security::Authorizer;

impl Broker {
    /// `send_as` for a message carrying duplicate id `id`: checked against its address's
    /// cache once it is planned and built, and routed only the first time.
    pub(super) fn send_once(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        id: Bytes,
        auth: &dyn Authorizer,
    ) -> Result<SendReport, BrokerError> {
        // Planned (and authorized) first: a refused send must not leave its id behind.
        let admitted = self.admit(dest, draft, auth)?;
        let capacity = self.id_cache_size(&dest.address);
        let ring = (capacity > 0).then(|| self.duplicates.ring(&dest.address, capacity));
        let mut cache = ring.as_ref().map(|r| r.lock());
        let mut ops = Vec::new();
        if let Some(c) = cache.as_mut() {
            match c.first_time(&id) {
                Some(op) => ops.push(op),
                None => {
                    tracing::debug!(address = %dest.address, "duplicate message dropped");
                    return Ok(SendReport {
                        message: None,
                        queues: Vec::new(),
                        stored: self.stored_barrier(),
                    });
                }
            }
        }
        let mut paged = Paged::new();
        let (message, queues) = match admitted {
            Some((message, targets)) => {
                let queues = self.deliver_to(dest, &message, targets, auth, &mut paged);
                let mut puts = Vec::new();
                record_puts(&message, &queues, &mut puts);
                record_pages(&message, &paged, &mut puts);
                // The id goes with its message, in one batch: stored together or not at all.
                puts.append(&mut ops);
                ops = puts;
                (Some(message), queues)
            }
            None => (None, Vec::new()),
        };
        let stored = self.store(ops);
        self.pages_submitted(paged);
        drop(cache);
        Ok(SendReport {
            message,
            queues,
            stored,
        })
    }

    /// The caches a transaction's admitted sends need, to lock while it is checked and
    /// submitted.
    pub(super) fn hold_duplicate_caches<'a>(
        &self,
        sends: impl Iterator<Item = (&'a Destination, &'a Message)>,
    ) -> Held {
        let wanted: Vec<(&str, u32)> = sends
            .filter(|(_, m)| duplicate_id(&m.properties).is_ok_and(|i| i.is_some()))
            .map(|(d, _)| (d.address.as_str(), self.id_cache_size(&d.address)))
            .filter(|(_, cap)| *cap > 0)
            .collect();
        self.duplicates.hold(wanted)
    }

    /// The address's `id-cache-size`: from its entry when it exists, else resolved.
    fn id_cache_size(&self, address: &str) -> u32 {
        let known = self
            .read()
            .addresses
            .get(address)
            .map(|a| a.settings.id_cache_size);
        known.unwrap_or_else(|| self.settings.load().resolve(address).id_cache_size)
    }
}
