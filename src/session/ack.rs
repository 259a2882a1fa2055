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
        let (handle, tags) = self.settle(frame)?;
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
    /// because clients mix them up.
    pub(super) fn settle(&self, frame: &Frame) -> Result<(ConsumerHandle, Vec<u64>), Failure> {
        let cmd = frame.command;
        let in_tx = frame.get("transaction").is_some();
        if let Some(ack_id) = frame.get("id") {
            let parsed = ack_id
                .split_once('-')
                .and_then(|(c, t)| Some((c.parse::<u64>().ok()?, t.parse::<u64>().ok()?)));
            let (consumer, tag) = parsed
                .ok_or_else(|| Failure::new(format!("{cmd} names unknown ack id '{ack_id}'")))?;
            let sub = self
                .by_consumer
                .get(&consumer)
                .and_then(|id| self.subscriptions.get(id))
                .ok_or_else(|| Failure::new(format!("{cmd} names unknown ack id '{ack_id}'")))?;
            let tags = sub
                .handle
                .settle(AckTarget::Tag(tag), sub.ack == AckMode::Client, in_tx)
                .map_err(|_| {
                    Failure::new(format!(
                        "{cmd} names ack id '{ack_id}', which awaits no acknowledgement"
                    ))
                })?;
            return Ok((sub.handle.clone(), tags));
        }
        let Some(mid) = frame.get("message-id") else {
            return Err(Failure::new(format!(
                "{cmd} frame has no 'id' (STOMP 1.2) or 'message-id' header"
            )));
        };
        let message_id = mid
            .parse::<u64>()
            .map_err(|_| Failure::new(format!("{cmd} names unknown message-id '{mid}'")))?;
        let candidates: Vec<&Subscription> = match frame.get("subscription") {
            Some(s) => vec![
                self.subscriptions
                    .get(s)
                    .ok_or_else(|| Failure::new(format!("unknown subscription '{s}'")))?,
            ],
            None => self.subscriptions.values().collect(),
        };
        for sub in candidates {
            if let Ok(tags) = sub.handle.settle(
                AckTarget::MessageId(message_id),
                sub.ack == AckMode::Client,
                in_tx,
            ) {
                return Ok((sub.handle.clone(), tags));
            }
        }
        Err(Failure::new(format!(
            "{cmd} names message-id '{mid}', which awaits no acknowledgement"
        )))
    }
}
