//! Sending: planning a destination's targets (creating what the address settings allow and
//! the sender may create), routing one message to them, checking an address's capacity, and
//! re-routing dead letters.

use super::plan::{AddressRef, Purpose};
use super::{Broker, Capacity, Destination, MessageDraft, SendReport};
use crate::broker::duplicates::duplicate_id;
use crate::broker::queue::Placed;
use crate::broker::stats::bump;
use crate::broker::{
    BrokerError, FullPolicy, Message, Queue, Refusal, RoutingType, now_millis, persistence,
};
use crate::journal::JournalOp;
use crate::security::{AllowAll, Authorizer, Permission};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How often a copy for an anycast queue that was deleted under it is routed again.
const MAX_REROUTES: usize = 4;

impl Broker {
    /// Tells a producer whether `dest`'s address can take more now (its `max-size-bytes`).
    pub fn capacity(&self, dest: &Destination) -> Capacity {
        let reg = self.read();
        let (usage, policy) = match reg.addresses.get(dest.address.as_str()) {
            Some(a) if !a.usage.is_full() => return Capacity::Available,
            Some(a) => (Arc::clone(&a.usage), a.settings.full_policy),
            // An address not created yet holds nothing; only the broker's limit applies.
            None if !self.memory.is_full() => return Capacity::Available,
            None => (
                Arc::clone(&self.memory),
                self.settings.load().resolve(&dest.address).full_policy,
            ),
        };
        match policy {
            // The send goes through and its queues page it; without a journal there is
            // nowhere to page to, so the producer is held as with BLOCK.
            FullPolicy::Page if self.journal.is_some() => Capacity::Available,
            FullPolicy::Page | FullPolicy::Block => Capacity::Blocked(usage),
            FullPolicy::Fail => Capacity::Refused,
            FullPolicy::Drop => Capacity::Dropped,
        }
    }

    /// Routes a message for the broker itself (no permission checks).
    pub fn send(&self, dest: &Destination, draft: MessageDraft) -> Result<SendReport, BrokerError> {
        self.send_as(dest, draft, &AllowAll)
    }

    /// Routes a message on behalf of someone whose rights `auth` checks: `send` on the address,
    /// then, before anything is created, every creation the plan needs. The message is visible
    /// to consumers at once; the report's `stored` resolves once its durable copies are in the
    /// journal, which is what a RECEIPT waits for.
    pub fn send_as(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        auth: &dyn Authorizer,
    ) -> Result<SendReport, BrokerError> {
        if let Some(id) = duplicate_id(&draft.properties)? {
            return self.send_once(dest, draft, id, auth);
        }
        let mut paged = Paged::new();
        let routed = self.route_new(dest, draft, auth, &mut paged)?;
        let mut ops = Vec::new();
        if let Some(m) = &routed.message {
            record_puts(m, &routed.queues, &mut ops);
            record_pages(m, &paged, &mut ops);
        }
        let stored = self.store(ops);
        self.pages_submitted(paged);
        Ok(SendReport {
            message: routed.message,
            queues: routed.queues,
            stored,
        })
    }

    /// Checks that `auth` could send to `dest` now, creating nothing (a SEND inside a
    /// transaction: refused at once, as Artemis does, but leaving no trace if aborted).
    pub fn check_send(&self, dest: &Destination, auth: &dyn Authorizer) -> Result<(), BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Send, &dest.address)?;
        self.check(dest, Purpose::Send, auth)
    }

    /// Plans `dest`, builds the message and hands it to every target.
    fn route_new(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        auth: &dyn Authorizer,
        paged: &mut Paged,
    ) -> Result<Routed, BrokerError> {
        let message = self.admit(dest, draft, auth)?;
        let Some((message, targets)) = message else {
            return Ok(Routed::default());
        };
        let queues = self.deliver_to(dest, &message, targets, auth, paged);
        Ok(Routed {
            message: Some(message),
            queues,
        })
    }

    /// Checks and plans `dest` (creating what it needs) and builds the message, not yet
    /// handed to any queue. `None` when nothing would take it.
    pub(super) fn admit(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        auth: &dyn Authorizer,
    ) -> Result<Option<Admitted>, BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Send, &dest.address)?;
        let (plan, created) = self.plan_and_apply(dest, Purpose::Send, auth)?;
        let mut targets = plan.targets;
        targets.extend(created);
        bump(&self.stats.received.0);
        let address = match plan.address {
            Some(a) if !targets.is_empty() => a,
            unrouted => {
                bump(&self.stats.unroutable.0);
                if let Some(a) = unrouted {
                    bump(&a.usage.stats.unroutable);
                }
                return Ok(None);
            }
        };
        let AddressRef {
            name: address,
            settings,
            usage,
        } = address;
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let now = now_millis();
        let mut message = Message {
            id,
            address,
            destination: draft.destination,
            properties: draft.properties,
            body: draft.body,
            persistent: draft.persistent.unwrap_or(settings.default_persistent),
            priority: draft.priority,
            expires: settings.expiry_delay.apply(draft.expires, now),
            timestamp: now,
            deliver_at: draft.deliver_at,
            origin: draft.origin,
            group: None,
            usage: None,
            encoded: (targets.len() > 1).then(Box::default),
        };
        message.group = Message::group_of(&message.properties);
        message.usage = Some(usage.charge_message(message.memory_size() as u64));
        Ok(Some((Arc::new(message), targets)))
    }

    /// Hands `message` to each target; returns the queues that took it. A copy for a queue
    /// deleted meanwhile is dropped, unless it was the one anycast queue (or the named queue)
    /// of the destination: then the destination is planned again, never the dead queue's
    /// name, so a departing subscription can never be re-created by a send. A queue that
    /// pages the message (its address is full and pages, or it pages already) is listed in
    /// `paged` too: the caller stores those pages ([`record_pages`], then
    /// [`Broker::pages_submitted`]).
    pub(super) fn deliver_to(
        &self,
        dest: &Destination,
        message: &Arc<Message>,
        targets: Vec<Arc<Queue>>,
        auth: &dyn Authorizer,
        paged: &mut Paged,
    ) -> Vec<Arc<Queue>> {
        let page = message
            .usage
            .as_ref()
            .is_some_and(|t| t.usage.should_page());
        let mut queues = Vec::with_capacity(targets.len());
        for q in targets {
            match q.offer(Arc::clone(message), page) {
                Ok(Placed::Memory) => queues.push(q),
                Ok(Placed::Paged(seq)) => {
                    paged.push((Arc::clone(&q), seq));
                    queues.push(q);
                }
                Err(Refusal::Filtered) => {
                    if let Some(other) = self.matching_anycast(dest, &q, message) {
                        queues.push(other);
                    }
                }
                Err(Refusal::NotPermitted) => {}
                Err(Refusal::Deleted) => {
                    if let Some(again) = self.reroute(dest, &q, message, auth) {
                        queues.push(again);
                    }
                }
            }
        }
        let (total, of_address) = match (&message.usage, queues.is_empty()) {
            (token, false) => (
                &self.stats.routed,
                token.as_ref().map(|t| &t.usage.stats.routed),
            ),
            (token, true) => (
                &self.stats.unroutable,
                token.as_ref().map(|t| &t.usage.stats.unroutable),
            ),
        };
        bump(&total.0);
        if let Some(a) = of_address {
            bump(a);
        }
        queues
    }

    /// Another anycast queue of the address that takes `message`, when the one planned for
    /// it (picked before the message existed) refused it by its filter: Artemis routes an
    /// anycast message to one of the queues whose filter matches, so a filtered queue must
    /// not make it vanish. Not for a fully qualified destination, which names its queue.
    fn matching_anycast(
        &self,
        dest: &Destination,
        refused: &Arc<Queue>,
        message: &Arc<Message>,
    ) -> Option<Arc<Queue>> {
        if dest.queue.is_some() || refused.routing != RoutingType::Anycast {
            return None;
        }
        let others = self.queues_of(&refused.address);
        let n = others.len().max(1);
        // Start where the message id points, so matching queues share the load.
        let start = (message.id % n as u64) as usize;
        (0..others.len())
            .map(|k| &others[(start + k) % n])
            .filter(|q| q.routing == RoutingType::Anycast && !Arc::ptr_eq(q, refused))
            .find(|q| q.enqueue(Arc::clone(message)).is_ok())
            .cloned()
    }

    /// Routes the copy meant for `dead`, a deleted queue, again through the destination, if
    /// it was a point-to-point copy.
    fn reroute(
        &self,
        dest: &Destination,
        dead: &Arc<Queue>,
        message: &Arc<Message>,
        auth: &dyn Authorizer,
    ) -> Option<Arc<Queue>> {
        if dest.queue.is_none() && dead.routing != RoutingType::Anycast {
            return None;
        }
        let again = Destination {
            routing: dest.routing.or(Some(dead.routing)),
            ..dest.clone()
        };
        for _ in 0..MAX_REROUTES {
            let (plan, created) = self.plan_and_apply(&again, Purpose::Send, auth).ok()?;
            let target =
                created.or_else(|| plan.targets.into_iter().find(|q| q.routing == dead.routing))?;
            match target.enqueue(Arc::clone(message)) {
                Ok(()) => return Some(target),
                Err(Refusal::NotPermitted | Refusal::Filtered) => return None,
                Err(Refusal::Deleted) => continue,
            }
        }
        tracing::warn!(message_id = message.id, address = %dest.address, "queue kept disappearing while routing; copy dropped");
        None
    }
}

/// The queues that paged a message, with the page number each gave it; their pages must be
/// stored by whoever stores the message.
pub(super) type Paged = Vec<(Arc<Queue>, u64)>;

/// The records that page `message` on the queues in `paged`, after its own records (a page
/// that names a stored message must not be stored before it).
pub(super) fn record_pages(message: &Arc<Message>, paged: &Paged, ops: &mut Vec<JournalOp>) {
    for (q, seq) in paged {
        ops.push(q.page_op(message, *seq));
    }
}

impl Broker {
    /// Tells the queues in `paged` once their pages (submitted just before) are committed,
    /// so they may read them back.
    pub(super) fn pages_submitted(&self, paged: Paged) {
        if paged.is_empty() {
            return;
        }
        let Some(journal) = &self.journal else {
            return;
        };
        journal.submit_then(
            Vec::new(),
            Box::new(move |ok| {
                for (q, seq) in paged {
                    q.page_stored(seq, ok);
                }
            }),
        );
    }
}

/// A message built for a send, and the queues planned to take it.
pub(super) type Admitted = (Arc<Message>, Vec<Arc<Queue>>);

/// A message and the queues that took it.
#[derive(Default)]
struct Routed {
    message: Option<Arc<Message>>,
    queues: Vec<Arc<Queue>>,
}

/// The records that store `message` on each durable queue among `queues`.
pub(super) fn record_puts(message: &Arc<Message>, queues: &[Arc<Queue>], ops: &mut Vec<JournalOp>) {
    let mut durable = queues.iter().filter(|q| q.journals(message)).peekable();
    if durable.peek().is_none() {
        return;
    }
    ops.push(JournalOp::PutMessage(Arc::new(persistence::stored(
        message,
    ))));
    for q in durable {
        ops.push(q.put_ref(message));
    }
}
