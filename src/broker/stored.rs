//! What a caller waits on before confirming an operation to its client: the moment the
//! operation's durable part is in the journal (and, for a transaction, applied). Opaque, so
//! sessions never see journal records.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::BrokerError;
use crate::journal::{Completion, JournalOp, PageEntry};

/// Resolves once an operation is stored; a RECEIPT waits for it.
#[must_use = "a Stored says when an operation is safe to confirm; await it or drop it knowingly"]
pub struct Stored {
    wait: Wait,
    bytes: usize,
}

enum Wait {
    Done,
    Journal(Completion),
    /// A transaction being committed: stored, then made visible, by a task of its own, so
    /// that a caller who stops waiting cannot leave it half applied.
    Task(JoinHandle<Result<(), BrokerError>>),
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.wait {
            Wait::Done => "done",
            Wait::Journal(_) => "journal",
            Wait::Task(_) => "commit",
        };
        f.debug_struct("Stored")
            .field("state", &state)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Stored {
    /// Nothing to wait for.
    pub(crate) fn done() -> Stored {
        Stored {
            wait: Wait::Done,
            bytes: 0,
        }
    }

    pub(crate) fn journal(completion: Completion, bytes: usize) -> Stored {
        Stored {
            wait: Wait::Journal(completion),
            bytes,
        }
    }

    pub(crate) fn task(handle: JoinHandle<Result<(), BrokerError>>, bytes: usize) -> Stored {
        Stored {
            wait: Wait::Task(handle),
            bytes,
        }
    }

    /// Roughly how many bytes wait to be stored: a session bounds what it has outstanding.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether there is anything to wait for.
    pub fn is_pending(&self) -> bool {
        !matches!(self.wait, Wait::Done)
    }

    /// Bytes a batch of records holds, for [`Stored::bytes`].
    pub(crate) fn bytes_of(ops: &[JournalOp]) -> usize {
        ops.iter()
            .map(|op| match op {
                JournalOp::PutMessage(m) => m.body.len() + 64,
                // A paged copy holds its body until stored, like a persistent message.
                JournalOp::PutPage {
                    entry: PageEntry::Transient { message, .. },
                    ..
                } => message.body.len() + 64,
                _ => 32,
            })
            .sum()
    }
}

impl Future for Stored {
    type Output = Result<(), BrokerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let out = match &mut this.wait {
            Wait::Done => return Poll::Ready(Ok(())),
            Wait::Journal(c) => match Pin::new(c).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map_err(|e| BrokerError::Journal(e.to_string())),
            },
            Wait::Task(h) => match Pin::new(h).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(r)) => r,
                Poll::Ready(Err(e)) => {
                    Err(BrokerError::Journal(format!("the commit task failed: {e}")))
                }
            },
        };
        this.wait = Wait::Done;
        Poll::Ready(out)
    }
}
