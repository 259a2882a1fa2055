//! What a session needs from the acceptor that accepted it, and the broker-wide "stopping"
//! signal. They belong to the session layer, their user, so the transports and the server
//! build and pass them down without the session ever importing either of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::registry::{Connections, Transport};
use crate::broker::Broker;
use crate::config::{AcceptorConfig, AcceptorProtocol, BrokerLimits};
use crate::security::Security;
use crate::stomp::Limits;

/// Everything a connection's session needs from its acceptor: the core, the acceptor's
/// settings, security and the per-connection limits. Connection counting and admission stay
/// with the transport (`transport::context::AcceptorContext`), which the session never sees.
#[derive(Debug)]
pub struct SessionContext {
    /// The core.
    pub broker: Arc<Broker>,
    /// The acceptor's configuration (prefixes, limits, heart-beats).
    pub acceptor: AcceptorConfig,
    /// Frame limits derived from the configuration.
    pub limits: Limits,
    /// The CONNECTED `server` header.
    pub server_name: String,
    /// Users, permissions and login throttling.
    pub security: Arc<Security>,
    /// Whether this acceptor takes connections without credentials.
    pub anonymous_ok: bool,
    /// Per-connection limits (subscriptions, transactions, unacked messages).
    pub session_limits: BrokerLimits,
    /// How long a new connection has to finish TLS and send CONNECT.
    pub handshake_timeout: Duration,
    /// Every connection of the broker, for operators (shared by all acceptors).
    pub connections: Arc<Connections>,
}

impl SessionContext {
    /// The transport this acceptor's connections come over.
    pub fn transport(&self) -> Transport {
        match (self.acceptor.protocol, self.acceptor.tls.is_some()) {
            (AcceptorProtocol::Stomp, false) => Transport::Tcp,
            (AcceptorProtocol::Stomp, true) => Transport::Tls,
            (AcceptorProtocol::Websocket, false) => Transport::Ws,
            (AcceptorProtocol::Websocket, true) => Transport::Wss,
        }
    }
}

/// A cloneable "the broker is stopping" signal.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// A signal that fires once `true` is sent on the channel `stop` listens to: the server
    /// holds the sender and every acceptor and connection a clone of this.
    pub fn new(stop: watch::Receiver<bool>) -> Self {
        ShutdownSignal(stop)
    }

    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}
