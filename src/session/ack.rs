//! ACK and NACK: finding the delivery a frame names, whatever version's headers it uses, and
//! settling it now or inside a transaction.

use super::{AckMode, Failure, Session, Subscription};
use crate::broker::{AckTarget, ConsumerHandle, Outcome, TxAck};
use crate::stomp::Frame;

impl Session {
    pub(super) async fn acknowledge(
        &mut self,
        frame: &Frame,
        outcome: Outcome,
    ) -> Result<(), Failure> {
        let outcome = match (outcome, frame.get("requeue").map(str::trim)) {
            (Outcome::Nack, Some(v)) if v.eq_ignore_ascii_case("false") => Outcome::Reject,
            (Outcome::Nack, None) => Outcome::Nack,
            (Outcome::Nack, Some(v)) if v.eq_ignore_ascii_case("true") => Outcome::Nack,
            (Outcome::Nack, Some(v)) => {
                return Err(Failure::new(format!(
                    "header 'requeue' must be true or false, not '{v}'"
                )));
            }
            (other, _) => other,
        };
        let Some((handle, tags)) = self.settle(frame)? else {
            // A late ACK/NACK for an unsubscribed subscription: its messages already went
            // back to the queue, so there is nothing to do (but the transaction must exist).
            if let Some(t) = frame.get("transaction")
                && !self.transactions.contains_key(t)
            {
                return Err(Failure::new(format!("unknown transaction '{t}'")));
            }
            return Ok(());
        };
        if let Some(sub) = self
            .by_consumer
            .get(&handle.id)
            .and_then(|id| self.subscriptions.get(id))
        {
            use std::sync::atomic::Ordering::Relaxed;
            let counter = match outcome {
                Outcome::Ack => &sub.stats.acked,
                Outcome::Nack | Outcome::Reject => &sub.stats.nacked,
            };
            counter.fetch_add(tags.len() as u64, Relaxed);
            sub.stats
                .last_ack_at
                .store(crate::broker::now_millis(), Relaxed);
        }
        match frame.get("transaction") {
            Some(t) => {
                let Some(tx) = self.transactions.get_mut(t) else {
                    handle.unsettle(&tags);
                    return Err(Failure::new(format!("unknown transaction '{t}'")));
                };
                tx.acks.push(TxAck {
                    handle,
                    tags,
                    outcome,
                });
            }
            None => {
                let stored = handle.complete(&tags, outcome);
                self.track(stored).await?;
            }
        }
        Ok(())
    }

    /// Finds what an ACK/NACK names and marks it settled. Accepts the 1.2 `id` (our ack id),
    /// and the 1.0/1.1 `message-id` with or without `subscription`, whatever the version,
    /// because clients mix them up. `None`: it names a delivery of a subscription this
    /// connection recently unsubscribed, and there is nothing left to settle.
    pub(super) fn settle(
        &self,
        frame: &Frame,
    ) -> Result<Option<(ConsumerHandle, Vec<u64>)>, Failure> {
        let cmd = frame.command;
        let in_tx = frame.get("transaction").is_some();
        if let Some(ack_id) = frame.get("id") {
            let parsed = ack_id
                .split_once('-')
                .and_then(|(c, t)| Some((c.parse::<u64>().ok()?, t.parse::<u64>().ok()?)));
            let (consumer, tag) = parsed
                .ok_or_else(|| Failure::new(format!("{cmd} names unknown ack id '{ack_id}'")))?;
            let Some(sub) = self
                .by_consumer
                .get(&consumer)
                .and_then(|id| self.subscriptions.get(id))
            else {
                if self.closed.has_consumer(consumer) {
                    return Ok(None);
                }
                return Err(Failure::new(format!(
                    "{cmd} names unknown ack id '{ack_id}'"
                )));
            };
            let tags = sub
                .handle
                .settle(AckTarget::Tag(tag), sub.ack == AckMode::Client, in_tx)
                .map_err(|_| {
                    Failure::new(format!(
                        "{cmd} names ack id '{ack_id}', which awaits no acknowledgement"
                    ))
                })?;
            return Ok(Some((sub.handle.clone(), tags)));
        }
        let Some(mid) = frame.get("message-id") else {
            return Err(Failure::new(format!(
                "{cmd} frame has no 'id' (STOMP 1.2) or 'message-id' header"
            )));
        };
        let message_id = mid
            .parse::<u64>()
            .map_err(|_| Failure::new(format!("{cmd} names unknown message-id '{mid}'")))?;
        let target = AckTarget::MessageId(message_id);
        let sub = match frame.get("subscription") {
            Some(s) => match self.subscriptions.get(s) {
                Some(sub) => sub,
                None if self.closed.has_subscription(s) => return Ok(None),
                None => return Err(Failure::new(format!("unknown subscription '{s}'"))),
            },
            None => match self.holder(cmd, mid, target)? {
                Some(sub) => sub,
                None if self.closed.held_message(message_id) => return Ok(None),
                None => {
                    return Err(Failure::new(format!(
                        "{cmd} names message-id '{mid}', which awaits no acknowledgement"
                    )));
                }
            },
        };
        let tags = sub
            .handle
            .settle(target, sub.ack == AckMode::Client, in_tx)
            .map_err(|_| {
                Failure::new(format!(
                    "{cmd} names message-id '{mid}', which awaits no acknowledgement"
                ))
            })?;
        Ok(Some((sub.handle.clone(), tags)))
    }

    /// The one subscription holding message `mid` unacknowledged, for an ACK without a
    /// `subscription` header. The same message can reach a connection twice (say through a
    /// wildcard and an exact subscription); then the ACK is refused rather than guessed,
    /// since settling the wrong copy would redeliver or lose the other. `auto` subscriptions
    /// expect no ACK, so they only count when nothing else holds the message.
    fn holder(
        &self,
        cmd: crate::stomp::Command,
        mid: &str,
        target: AckTarget,
    ) -> Result<Option<&Subscription>, Failure> {
        let mut holders: Vec<(&str, &Subscription)> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.handle.holds(target))
            .map(|(id, s)| (&**id, s))
            .collect();
        if holders.iter().any(|(_, s)| s.ack != AckMode::Auto) {
            holders.retain(|(_, s)| s.ack != AckMode::Auto);
        }
        if holders.len() > 1 {
            let mut ids: Vec<&str> = holders.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            let names = ids
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Failure::new(format!(
                "{cmd} names message-id '{mid}', which subscriptions {names} of this connection all hold; add a 'subscription' header to say which"
            )));
        }
        Ok(holders.pop().map(|(_, s)| s))
    }
}
