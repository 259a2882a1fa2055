//! A follower's client listeners: each accepted connection is relayed, byte for byte, to
//! the same-named acceptor of the leader, so a client may connect to any node. TLS and
//! WebSocket pass through untouched (the leader terminates them, with the same
//! certificates). When the leader changes, every relayed connection is closed so its client
//! reconnects and lands on the new leader; while no leader is known (or it has not yet said
//! where it listens), a connection is closed at once, so a client with a host list tries
//! the next host without waiting.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::cluster::{ClientAddresses, NodeId};

/// How long reaching the leader may take before the client is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Who leads now, as the node knows it; and where each leader serves clients.
#[derive(Clone)]
pub struct LeaderView {
    /// This node's id.
    pub me: NodeId,
    /// The leader this node knows, as it changes.
    pub leader: watch::Receiver<Option<NodeId>>,
    /// The leader's announcement of its listeners, as applied here.
    pub clients: watch::Receiver<Option<ClientAddresses>>,
}

impl LeaderView {
    /// Where acceptor `name` of the current leader is, and who that leader is, if another
    /// node leads and has announced its listeners.
    fn target(&self, name: &str) -> Option<(NodeId, String)> {
        let leader = (*self.leader.borrow())?;
        if leader == self.me {
            return None;
        }
        let clients = self.clients.borrow();
        let announced = clients.as_ref().filter(|c| c.node == leader)?;
        announced
            .acceptors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, addr)| (leader, addr.clone()))
    }
}

/// Relays connections accepted on `listener` (acceptor `name`) to the leader until the
/// task is aborted; at most `max_connections` at once (more are closed on accept).
pub async fn serve(listener: TcpListener, name: String, view: LeaderView, max_connections: usize) {
    let slots = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // Owned here, so aborting this task drops (and aborts) every relay with it.
    let mut relays = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = relays.join_next(), if !relays.is_empty() => continue,
        };
        let (client, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!(acceptor = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((leader, addr)) = view.target(&name) else {
            tracing::debug!(acceptor = %name, %peer, "no leader to relay to: closing");
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(acceptor = %name, %peer, "relay: connection limit reached, closing");
            continue;
        };
        let mut changed = view.leader.clone();
        let acceptor = name.clone();
        relays.spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = relay(client, &addr) => {
                    if let Err(e) = r {
                        tracing::debug!(acceptor = %acceptor, %peer, leader, %addr, error = %e, "relay ended");
                    }
                }
                _ = changed.wait_for(|l| *l != Some(leader)) => {
                    tracing::debug!(acceptor = %acceptor, %peer, "leader changed: dropping the relayed client");
                }
            }
        });
    }
}

async fn relay(mut client: TcpStream, addr: &str) -> std::io::Result<()> {
    let mut upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "leader unreachable"))??;
    // Frames are small and latency matters: as on a direct connection.
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
