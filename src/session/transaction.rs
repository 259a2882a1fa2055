//! BEGIN, COMMIT and ABORT: sends and acks buffered per transaction and applied whole or
//! not at all.

use super::{Failure, Session, Transaction};
use crate::broker::{BrokerError, Capacity};
use crate::stomp::Frame;

impl Session {
    pub(super) fn transaction_id(frame: &Frame) -> Result<&str, Failure> {
        frame.get("transaction").ok_or_else(|| {
            Failure::new(format!(
                "{} frame has no 'transaction' header",
                frame.command
            ))
        })
    }

    pub(super) fn begin(&mut self, frame: &Frame) -> Result<(), Failure> {
        let id = Self::transaction_id(frame)?;
        if self.transactions.contains_key(id) {
            return Err(Failure::new(format!("transaction '{id}' is already open")));
        }
        let max = self.ctx.session_limits.max_transactions_per_connection;
        if self.transactions.len() >= max {
            return Err(Failure::new(format!(
                "too many open transactions: this connection already has {max}, the limit (max-transactions-per-connection)"
            )));
        }
        self.transactions.insert(id.into(), Transaction::default());
        Ok(())
    }

    pub(super) async fn commit(&mut self, frame: &Frame) -> Result<(), Failure> {
        let id = Self::transaction_id(frame)?;
        let tx = self
            .transactions
            .remove(id)
            .ok_or_else(|| Failure::new(format!("unknown transaction '{id}'")))?;
        // Nothing is applied unless everything can be: check every destination (and that no
        // address refuses for being full) before routing the first message.
        for (dest, _) in &tx.sends {
            self.ctx.broker.prepare(dest)?;
            if let Capacity::Refused = self.ctx.broker.capacity(dest) {
                return Err(BrokerError::AddressFull(dest.address.clone()).into());
            }
        }
        // One batch: the transaction's sends and acks are stored atomically.
        let mut ops = Vec::new();
        for (dest, draft) in tx.sends {
            self.route(&dest, draft, &mut ops).await?;
        }
        for (handle, tags, outcome) in tx.acks {
            handle.complete(&tags, outcome, &mut ops);
        }
        self.persist(ops).await
    }

    pub(super) fn abort(&mut self, frame: &Frame) -> Result<(), Failure> {
        let id = Self::transaction_id(frame)?;
        let tx = self
            .transactions
            .remove(id)
            .ok_or_else(|| Failure::new(format!("unknown transaction '{id}'")))?;
        for (handle, tags, _) in tx.acks {
            handle.unsettle(&tags);
        }
        Ok(())
    }
}
