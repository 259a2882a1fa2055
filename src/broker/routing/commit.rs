//! Committing a transaction whole: every send and every ACK/NACK takes effect together, and
//! only once their one journal batch is stored.
//!
//! Order of work: check every send (nothing created yet), plan and build every message
//! (creating what the sends need), take the acknowledged deliveries out of their consumers'
//! hands, write one batch, and only when it is stored make the messages visible and settle
//! the deliveries. A task of its own does the last two steps, so a client that vanishes while
//! its COMMIT is being stored cannot leave it half applied; if the batch fails, the messages
//! are dropped and the deliveries go back to their queues: nothing delivered, nothing stored.

use std::sync::Arc;

use super::send::{Paged, record_pages, record_puts};
use super::{Broker, Capacity, ConsumerHandle, Destination, MessageDraft};
use crate::broker::duplicates::duplicate_id;
use crate::broker::{BrokerError, Message, Outcome, Queue, Stored, Taken};
use crate::journal::JournalOp;
use crate::security::Authorizer;

/// One ACK or NACK of a transaction: whose deliveries, which, and how they end.
#[derive(Debug)]
pub struct TxAck {
    /// The consumer that received them.
    pub handle: ConsumerHandle,
    /// The settled delivery tags.
    pub tags: Vec<u64>,
    /// Consumed or refused.
    pub outcome: Outcome,
}

/// A commit stored but not yet visible.
struct Pending {
    sends: Vec<(Destination, Arc<Message>, Vec<Arc<Queue>>)>,
    acks: Vec<(ConsumerHandle, Taken, Outcome)>,
}

impl Broker {
    /// Applies a transaction whole; the result resolves once it is stored and visible.
    /// Refuses before changing anything when any send is unroutable, unauthorized or bound
    /// for a full address with policy FAIL.
    pub fn commit(
        self: &Arc<Self>,
        sends: Vec<(Destination, MessageDraft)>,
        acks: Vec<TxAck>,
        auth: Arc<dyn Authorizer>,
    ) -> Result<Stored, BrokerError> {
        for (dest, draft) in &sends {
            duplicate_id(&draft.properties)?;
            self.check_send(dest, &*auth)?;
            if let Capacity::Refused = self.capacity(dest) {
                return Err(BrokerError::AddressFull(dest.address.clone()));
            }
        }
        let mut pending = Pending {
            sends: Vec::with_capacity(sends.len()),
            acks: Vec::with_capacity(acks.len()),
        };
        for (dest, draft) in sends {
            if let Capacity::Dropped = self.capacity(&dest) {
                continue;
            }
            if let Some((message, targets)) = self.admit(&dest, draft, &*auth)? {
                pending.sends.push((dest, message, targets));
            }
        }
        for ack in acks {
            let taken = ack.handle.queue.take(ack.handle.id, &ack.tags);
            pending.acks.push((ack.handle, taken, ack.outcome));
        }
        let mut ops = Vec::new();
        // A send whose duplicate id was seen (before, or earlier in this transaction) is
        // dropped alone; the caches stay locked until the batch is submitted (routing/dedup.rs).
        let held = self.hold_duplicate_caches(pending.sends.iter().map(|(d, m, _)| (d, &**m)));
        let mut seen = held.lock();
        pending
            .sends
            .retain(|(dest, m, _)| seen.admit(&dest.address, &m.properties, &mut ops));
        for (_, message, targets) in &pending.sends {
            // Only the queues whose filter lets it in: a ref in a queue that refuses the
            // message would bring it there after a restart.
            let admitted: Vec<Arc<Queue>> = targets
                .iter()
                .filter(|q| q.admits(message))
                .cloned()
                .collect();
            record_puts(message, &admitted, &mut ops);
        }
        for (handle, taken, outcome) in &pending.acks {
            if *outcome == Outcome::Ack {
                handle.queue.record_removals(taken.messages(), &mut ops);
            }
        }
        let refused = pending.acks.iter().any(|(_, _, o)| *o != Outcome::Ack);
        let journal = match &self.journal {
            Some(j) if !ops.is_empty() || seen.saw_duplicate() => j.clone(),
            _ => {
                let (follow, paged) = self.make_visible(pending, &*auth);
                let stored = self.store_settled(follow, refused);
                self.pages_submitted(paged);
                return Ok(stored);
            }
        };
        let bytes = Stored::bytes_of(&ops);
        let batch = journal.submit(ops);
        drop(seen);
        let broker = Arc::clone(self);
        let finish = async move {
            if let Err(e) = batch.await {
                for (handle, taken, _) in pending.acks {
                    let done = taken.restore();
                    handle.after(&done);
                }
                return Err(BrokerError::Journal(e.to_string()));
            }
            let (follow, paged) = broker.make_visible(pending, &*auth);
            let stored = broker.store_settled(follow, refused);
            broker.pages_submitted(paged);
            stored.await
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => Ok(Stored::task(rt.spawn(finish), bytes)),
            // Outside a runtime (core unit tests): finish here and now.
            Err(_) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| BrokerError::Journal(e.to_string()))?;
                rt.block_on(finish)?;
                Ok(Stored::done())
            }
        }
    }

    /// Hands a stored commit's messages to their queues and settles its deliveries. Returns
    /// the records of copies that had to be routed again (their queue was deleted meanwhile).
    fn make_visible(&self, pending: Pending, auth: &dyn Authorizer) -> (Vec<JournalOp>, Paged) {
        let mut follow = Vec::new();
        let mut all_paged = Paged::new();
        for (dest, message, targets) in pending.sends {
            let mut paged = Paged::new();
            let queues = self.deliver_to(&dest, &message, targets.clone(), auth, &mut paged);
            let moved: Vec<Arc<Queue>> = queues
                .into_iter()
                .filter(|q| !targets.iter().any(|t| Arc::ptr_eq(t, q)))
                .collect();
            record_puts(&message, &moved, &mut follow);
            // Behind the message's records: those of the commit are stored already, those
            // of a moved copy come just before.
            record_pages(&message, &paged, &mut follow);
            all_paged.append(&mut paged);
        }
        for (handle, taken, outcome) in pending.acks {
            let done = taken.settle(outcome);
            handle.after(&done);
        }
        (follow, all_paged)
    }
}
