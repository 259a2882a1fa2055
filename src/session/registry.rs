//! Every live connection and the last closed ones, for operators: who is connected over
//! what, what each connection moved, which subscriptions it holds, and the means to close one
//! with a reason. A connection registers when it opens and leaves when it closes; nothing on
//! the message path takes the registry's locks. Per-connection figures are atomics the
//! connection's own tasks bump; broker-wide totals by transport are counters of their own.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::broker::{Padded, now_millis};

/// How many closed connections are remembered (oldest forgotten first).
pub const CLOSED_KEPT: usize = 1000;

/// The transport a connection came over, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TCP with TLS.
    Tls,
    /// WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 4] = [
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The metric label / API value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection ended, as the metrics and the closed list give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    Client,
    /// The peer closed the socket, or it failed.
    Dropped,
    /// The broker refused a frame (ERROR).
    Error,
    /// Nothing arrived within the heart-beat, TTL or handshake deadline.
    HeartbeatTimeout,
    /// The peer stopped reading and a write timed out.
    SlowConsumer,
    /// An operator closed it.
    Admin,
    /// CONNECT was refused (bad credentials, no permission).
    AuthFailed,
    /// The broker is stopping.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in label order.
    pub const ALL: [CloseReason; 8] = [
        CloseReason::Client,
        CloseReason::Dropped,
        CloseReason::Error,
        CloseReason::HeartbeatTimeout,
        CloseReason::SlowConsumer,
        CloseReason::Admin,
        CloseReason::AuthFailed,
        CloseReason::Shutdown,
    ];

    /// The metric label / API value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Dropped => "dropped",
            CloseReason::Error => "error",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Admin => "admin",
            CloseReason::AuthFailed => "auth_failed",
            CloseReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What CONNECT established; set once, read by the API.
#[derive(Debug, Clone, Default)]
pub struct ConnectedAs {
    /// The `client-id` header, if any.
    pub client_id: Option<String>,
    /// The authenticated user; `None` for anonymous.
    pub user: Option<String>,
    /// The negotiated STOMP version ("1.2").
    pub version: Option<String>,
    /// Negotiated heart-beats in ms: (broker sends every, broker expects every).
    pub heart_beat: (u64, u64),
}

/// One subscription as operators see it.
#[derive(Debug)]
pub struct SubscriptionView {
    /// The SUBSCRIBE's `id`.
    pub id: String,
    /// The destination as the client wrote it.
    pub destination: String,
    /// The queue it consumes from.
    pub queue: String,
    /// `auto`, `client` or `client-individual`.
    pub ack_mode: &'static str,
    /// Its selector, if any.
    pub selector: Option<String>,
    /// Its window in messages (prefetch), if limited.
    pub prefetch: Option<u32>,
    /// Durable subscription name, if durable.
    pub durable_name: Option<String>,
    /// What went through it.
    pub stats: Arc<SubscriptionStats>,
}

/// One subscription's counters, bumped by its connection's writer (deliveries) and session
/// (acknowledgements).
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    /// MESSAGE frames written.
    pub delivered: AtomicU64,
    /// Messages acknowledged (for `auto`, once written).
    pub acked: AtomicU64,
    /// Messages refused by NACK.
    pub nacked: AtomicU64,
    /// When the last MESSAGE was written (ms since the epoch; 0 = never).
    pub last_delivered_at: AtomicU64,
    /// When the last ACK/NACK arrived (ms since the epoch; 0 = never).
    pub last_ack_at: AtomicU64,
}

/// One live connection.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Unique within this process (also the `no-local` mark of its messages).
    pub id: u64,
    /// How it came in.
    pub transport: Transport,
    /// The acceptor that accepted it.
    pub acceptor: String,
    /// The peer's address.
    pub remote: SocketAddr,
    /// When it was accepted (ms since the epoch).
    pub connected_at: u64,
    /// When a byte last came in or went out (ms since the epoch).
    pub last_activity: AtomicU64,
    /// SEND frames accepted.
    pub messages_in: AtomicU64,
    /// MESSAGE frames written.
    pub messages_out: AtomicU64,
    /// Bytes read from the peer.
    pub bytes_in: AtomicU64,
    /// Bytes written to the peer.
    pub bytes_out: AtomicU64,
    /// Bytes of deliveries handed to the connection and not yet written.
    pub pending_bytes: AtomicU64,
    connected: Mutex<ConnectedAs>,
    subscriptions: Mutex<Vec<Arc<SubscriptionView>>>,
    close: Mutex<Option<String>>,
    close_requested: Notify,
    totals: Arc<ConnectionTotals>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnectionInfo {
    /// What CONNECT established (empty before).
    pub fn connected_as(&self) -> ConnectedAs {
        lock(&self.connected).clone()
    }

    /// Records what CONNECT established.
    pub fn set_connected_as(&self, c: ConnectedAs) {
        *lock(&self.connected) = c;
    }

    /// The subscriptions it holds now.
    pub fn subscriptions(&self) -> Vec<Arc<SubscriptionView>> {
        lock(&self.subscriptions).clone()
    }

    /// Records a new subscription.
    pub fn add_subscription(&self, s: Arc<SubscriptionView>) {
        lock(&self.subscriptions).push(s);
    }

    /// Forgets a subscription (UNSUBSCRIBE, or the connection closing).
    pub fn remove_subscription(&self, id: &str) {
        lock(&self.subscriptions).retain(|s| s.id != id);
    }

    /// Asks the connection to close: it sends an ERROR whose `message` is `reason`, then
    /// closes. Idempotent; the first reason wins.
    pub fn request_close(&self, reason: String) {
        let mut r = lock(&self.close);
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.close_requested.notify_one();
    }

    /// Resolves once an operator asked the connection to close, with the reason given.
    pub async fn close_requested(&self) -> String {
        loop {
            if let Some(r) = lock(&self.close).clone() {
                return r;
            }
            self.close_requested.notified().await;
        }
    }

    /// Counts bytes read from the peer.
    pub fn read(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        self.totals.bytes_in[self.transport.index()]
            .0
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a batch written to the peer: `bytes`, of which `messages` MESSAGE frames.
    pub fn wrote(&self, bytes: u64, messages: u64, now: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.totals.bytes_out[self.transport.index()]
            .0
            .fetch_add(bytes, Ordering::Relaxed);
        if messages > 0 {
            self.messages_out.fetch_add(messages, Ordering::Relaxed);
        }
        self.last_activity.store(now, Ordering::Relaxed);
    }
}

/// What a closed connection leaves behind for the closed list.
#[derive(Debug, Clone)]
pub struct ClosedConnection {
    /// Its id.
    pub id: u64,
    /// How it came in.
    pub transport: Transport,
    /// The peer's address.
    pub remote: SocketAddr,
    /// What CONNECT established.
    pub connected_as: ConnectedAs,
    /// When it was accepted and closed (ms since the epoch).
    pub connected_at: u64,
    /// When it closed.
    pub closed_at: u64,
    /// Why.
    pub reason: CloseReason,
    /// The operator's reason or the ERROR's message, if any.
    pub detail: Option<String>,
    /// What it moved.
    pub messages_in: u64,
    /// What it moved.
    pub messages_out: u64,
    /// What it moved.
    pub bytes_in: u64,
    /// What it moved.
    pub bytes_out: u64,
}

/// Broker-wide connection totals by transport (and close reason).
#[derive(Debug, Default)]
pub struct ConnectionTotals {
    /// Connections accepted.
    pub opened: [Padded; 4],
    /// Connections closed, by transport then reason.
    pub closed: [[Padded; 8]; 4],
    /// Bytes read.
    pub bytes_in: [Padded; 4],
    /// Bytes written.
    pub bytes_out: [Padded; 4],
    /// CONNECT frames accepted.
    pub auth_ok: Padded,
    /// CONNECT frames refused.
    pub auth_failed: Padded,
    /// RECEIPT frames queued.
    pub receipts: Padded,
    /// ERROR frames sent, by why (every ERROR closes its connection, so one per connection).
    pub errors: [Padded; 8],
}

impl ConnectionTotals {
    /// Connections closed over `transport` for `reason`.
    pub fn closed(&self, transport: Transport, reason: CloseReason) -> u64 {
        self.closed[transport.index()][reason.index()].get()
    }

    /// ERROR frames sent for `reason`.
    pub fn errors(&self, reason: CloseReason) -> u64 {
        self.errors[reason.index()].get()
    }

    /// Connections opened over `transport`.
    pub fn opened(&self, transport: Transport) -> u64 {
        self.opened[transport.index()].get()
    }

    /// Bytes read over `transport`.
    pub fn bytes_in(&self, transport: Transport) -> u64 {
        self.bytes_in[transport.index()].get()
    }

    /// Bytes written over `transport`.
    pub fn bytes_out(&self, transport: Transport) -> u64 {
        self.bytes_out[transport.index()].get()
    }
}

/// The registry of connections; one per broker, shared by every acceptor's sessions.
#[derive(Debug, Default)]
pub struct Connections {
    live: Mutex<BTreeMap<u64, Arc<ConnectionInfo>>>,
    closed: Mutex<VecDeque<ClosedConnection>>,
    /// Totals by transport.
    pub totals: Arc<ConnectionTotals>,
}

impl Connections {
    /// Registers a connection that was just accepted.
    pub fn open(
        &self,
        id: u64,
        transport: Transport,
        acceptor: &str,
        remote: SocketAddr,
    ) -> Arc<ConnectionInfo> {
        let now = now_millis();
        let info = Arc::new(ConnectionInfo {
            id,
            transport,
            acceptor: acceptor.to_string(),
            remote,
            connected_at: now,
            last_activity: AtomicU64::new(now),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            connected: Mutex::new(ConnectedAs::default()),
            subscriptions: Mutex::new(Vec::new()),
            close: Mutex::new(None),
            close_requested: Notify::new(),
            totals: Arc::clone(&self.totals),
        });
        self.totals.opened[transport.index()]
            .0
            .fetch_add(1, Ordering::Relaxed);
        lock(&self.live).insert(id, Arc::clone(&info));
        info
    }

    /// Counts an ERROR frame sent for `reason`.
    pub fn error_sent(&self, reason: CloseReason) {
        self.totals.errors[reason.index()]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Moves a connection to the closed list.
    pub fn close(&self, info: &ConnectionInfo, reason: CloseReason, detail: Option<String>) {
        lock(&self.live).remove(&info.id);
        self.totals.closed[info.transport.index()][reason.index()]
            .0
            .fetch_add(1, Ordering::Relaxed);
        let record = ClosedConnection {
            id: info.id,
            transport: info.transport,
            remote: info.remote,
            connected_as: info.connected_as(),
            connected_at: info.connected_at,
            closed_at: now_millis(),
            reason,
            detail,
            messages_in: info.messages_in.load(Ordering::Relaxed),
            messages_out: info.messages_out.load(Ordering::Relaxed),
            bytes_in: info.bytes_in.load(Ordering::Relaxed),
            bytes_out: info.bytes_out.load(Ordering::Relaxed),
        };
        let mut closed = lock(&self.closed);
        if closed.len() >= CLOSED_KEPT {
            closed.pop_front();
        }
        closed.push_back(record);
    }

    /// The live connections, by id.
    pub fn live(&self) -> Vec<Arc<ConnectionInfo>> {
        lock(&self.live).values().cloned().collect()
    }

    /// How many are live.
    pub fn live_count(&self) -> usize {
        lock(&self.live).len()
    }

    /// One live connection.
    pub fn get(&self, id: u64) -> Option<Arc<ConnectionInfo>> {
        lock(&self.live).get(&id).cloned()
    }

    /// The closed connections remembered, oldest first.
    pub fn closed(&self) -> Vec<ClosedConnection> {
        lock(&self.closed).iter().cloned().collect()
    }

    /// One closed connection, if still remembered.
    pub fn closed_one(&self, id: u64) -> Option<ClosedConnection> {
        lock(&self.closed).iter().find(|c| c.id == id).cloned()
    }
}
