//! The leader's side of the replicated journal: takes the broker's journal writes, groups
//! them into one raft entry, and tells each writer once the entry is committed and applied.
//!
//! Grouping is by backlog: while one entry is being replicated (a sync on the leader and on a
//! follower, a round trip, the apply), new writes queue up, and the next entry takes them
//! all. Under load entries grow, as the journal's own group commit does; a lone producer
//! pays one replication per write and waits no window. One entry is in flight at a time so
//! that entries are applied, and writers told, in submission order.
//!
//! The queue has no bound of its own: what the broker writes is bounded before it gets here
//! (per connection, 4,096 writes or 8 MiB awaiting the journal), so it holds at most what
//! the connections may have outstanding.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::mpsc;

use super::types::{Batch, Raft};
use crate::journal::{Done, Journal, JournalError, JournalOp, PageRead, PageReply, Replicator};

/// Most ops in one entry: the journal's default group-commit size.
const MAX_OPS: usize = 4_096;
/// Most message-body bytes in one entry, well under the transport's frame limit.
const MAX_BYTES: usize = 64 << 20;

enum Item {
    Ops(Vec<JournalOp>, Option<Done>),
    Read(PageRead, PageReply),
}

/// The [`Replicator`] a leader's broker writes through.
pub struct Proposer {
    tx: mpsc::UnboundedSender<Item>,
}

impl Proposer {
    /// Starts proposing to `raft`; page reads are served by `local`, the node's journal, once
    /// the writes before them are applied to it. Stops when the returned handle and every
    /// journal handle holding it are dropped.
    pub fn start(raft: Raft, local: Journal) -> Arc<Proposer> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, local, rx));
        Arc::new(Proposer { tx })
    }
}

impl Replicator for Proposer {
    fn submit(&self, ops: Vec<JournalOp>, done: Option<Done>) {
        if let Err(mpsc::error::SendError(Item::Ops(_, Some(d)))) =
            self.tx.send(Item::Ops(ops, done))
        {
            d.tell(Err(JournalError::ShutDown {
                path: "cluster".into(),
            }));
        }
    }

    fn read_page(&self, read: PageRead, reply: PageReply) -> bool {
        self.tx.send(Item::Read(read, reply)).is_ok()
    }
}

fn weight(ops: &[JournalOp]) -> usize {
    ops.iter()
        .map(|op| match op {
            JournalOp::PutMessage(m) => m.body.len() + 64,
            _ => 64,
        })
        .sum()
}

async fn run(raft: Raft, local: Journal, mut rx: mpsc::UnboundedReceiver<Item>) {
    let mut carry: Option<Item> = None;
    let mut last: Result<(), JournalError> = Ok(());
    loop {
        let first = match carry.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => i,
                None => return,
            },
        };
        let mut ops = Vec::new();
        let mut dones = Vec::new();
        let mut reads = Vec::new();
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Ops(o, d) => {
                    let w = weight(&o);
                    if !ops.is_empty() && (ops.len() + o.len() > MAX_OPS || bytes + w > MAX_BYTES) {
                        carry = Some(Item::Ops(o, d));
                        break;
                    }
                    bytes += w;
                    ops.extend(o);
                    dones.extend(d);
                }
                Item::Read(r, reply) => reads.push((r, reply)),
            }
            next = rx.try_recv().ok();
        }
        if ops.is_empty() {
            // Writers with nothing to write (a duplicate SEND waits on one, to be answered
            // only once the original is stored): every earlier entry has been decided, so
            // they get the last entry's outcome.
            for d in dones {
                d.tell(last.clone());
            }
        } else {
            let result = match raft.client_write(Batch { ops }).await {
                Ok(_) => Ok(()),
                Err(e) => Err(JournalError::Failed {
                    path: local.path().to_path_buf(),
                    reason: match e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
                            "this node is no longer the cluster's leader".to_string()
                        }
                        other => format!("replication failed: {other}"),
                    },
                }),
            };
            for d in dones {
                d.tell(result.clone());
            }
            last = result;
        }
        for (r, reply) in reads {
            local.read_page(r, reply);
        }
    }
}
