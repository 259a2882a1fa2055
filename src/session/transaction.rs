//! BEGIN, COMMIT and ABORT: sends and acks buffered per transaction and applied whole or
//! not at all.

use std::sync::Arc;

use super::{Failure, Session, Transaction};
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
        // Wait for room on every full (BLOCK) address first: nothing is applied yet, so the
        // wait can be given up at any point. Then the core applies everything or nothing.
        for (dest, draft) in &tx.sends {
            self.wait_for_disk(dest, draft.persistent).await?;
            self.wait_for_room(dest).await?;
        }
        let stored = self
            .ctx
            .broker
            .commit(tx.sends, tx.acks, Arc::new(self.access.clone()))?;
        self.track(stored).await
    }

    pub(super) fn abort(&mut self, frame: &Frame) -> Result<(), Failure> {
        let id = Self::transaction_id(frame)?;
        let tx = self
            .transactions
            .remove(id)
            .ok_or_else(|| Failure::new(format!("unknown transaction '{id}'")))?;
        for ack in tx.acks {
            ack.handle.unsettle(&ack.tags);
        }
        Ok(())
    }
}
