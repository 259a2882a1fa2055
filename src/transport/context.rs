//! What an acceptor's accept loop needs: the session context it hands to every connection,
//! plus the state only the transport uses, connection admission (limits) and the count of
//! open connections graceful shutdown waits on. Keeping these here, rather than in the
//! session context, means the session layer knows nothing of admission and never imports
//! the transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::admission::{AcceptorSlots, Admission, ConnectionLimiter};
use crate::session::SessionContext;

/// One acceptor's shared state, built by the server and passed to its transport.
#[derive(Debug)]
pub struct AcceptorContext {
    /// What each of this acceptor's sessions gets.
    pub session: Arc<SessionContext>,
    connections: Arc<ConnectionCount>,
    limiter: Arc<ConnectionLimiter>,
    slots: Arc<AcceptorSlots>,
}

impl AcceptorContext {
    /// The context of an acceptor whose connections are counted in `connections` and
    /// admitted by `limiter` (broker-wide, per-IP) and `slots` (this acceptor's own limit).
    pub fn new(
        session: Arc<SessionContext>,
        connections: Arc<ConnectionCount>,
        limiter: Arc<ConnectionLimiter>,
        slots: Arc<AcceptorSlots>,
    ) -> Self {
        AcceptorContext {
            session,
            connections,
            limiter,
            slots,
        }
    }

    /// Registers a connection for graceful shutdown to wait on.
    pub fn track_connection(&self) -> ConnectionGuard {
        self.connections.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(Arc::clone(&self.connections))
    }

    /// Takes a connection slot for a peer (broker-wide, per-IP and per-acceptor limits), or
    /// says which limit refuses it. Every transport calls this before starting a session.
    pub fn admit(&self, ip: std::net::IpAddr) -> Result<Admission, String> {
        self.limiter.admit(&self.slots, ip)
    }
}

/// The connections open over all acceptors, so shutdown can wait for the last to close.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    open: AtomicUsize,
    all_closed: Notify,
}

impl ConnectionCount {
    /// Resolves once no tracked connection is open (at once if none is).
    pub async fn all_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one open connection until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<ConnectionCount>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}
