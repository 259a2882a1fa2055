//! One connection's STOMP state: version, heart-beats, subscriptions, transactions and
//! receipts. It turns frames into core operations and core deliveries into frames, and is
//! shared by every transport through [`serve`].

mod ack;
mod browse;
mod closed;
mod connect;
mod connection;
mod context;
mod destination;
mod disk;
mod io;
mod large_body;
mod outbound;
mod produce;
mod registry;
mod subscribe;
mod temporary;
mod transaction;
mod writer;

pub use connection::{serve, serve_with};
pub use context::{SessionContext, ShutdownSignal};
pub use destination::map_destination;
pub use io::{ByteSink, ByteSource};
pub use outbound::{AckMode, Outbound, Outbox, SubscriptionContext};
pub use registry::{
    CLOSED_KEPT, CloseReason, ClosedConnection, ConnectedAs, ConnectionInfo, ConnectionTotals,
    Connections, SubscriptionStats, SubscriptionView, Transport,
};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;

use crate::broker::{
    BrokerError, ClientIdClaim, ConsumerHandle, ConsumerId, Destination, LargeBody, MessageDraft,
    Outcome, Owner, Stored,
};
use crate::security::{Access, Denied, Principal};
use crate::stomp::{Command, Frame, Version};
use produce::journal_failure;

/// Why a frame was refused: becomes the ERROR frame, after which the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One line for the `message` header.
    pub message: String,
    /// Longer explanation for the body, if any.
    pub detail: Option<String>,
    /// Extra ERROR headers the spec asks for in particular cases (e.g. `version`).
    pub headers: Vec<(&'static str, String)>,
}

impl Failure {
    /// A failure with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }
}

impl From<BrokerError> for Failure {
    fn from(e: BrokerError) -> Self {
        Failure::new(e.to_string())
    }
}

/// A permission the session checks itself (before asking the core) fails with the same text
/// the core would give.
impl From<Denied> for Failure {
    fn from(e: Denied) -> Self {
        Failure::new(e.to_string())
    }
}

/// What a transport knows about the peer beyond its address.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer's socket address.
    pub addr: SocketAddr,
    /// The CN of a verified TLS client certificate; names the user when CONNECT has no login.
    pub certificate_user: Option<String>,
}

impl PeerInfo {
    /// A peer known only by its address.
    pub fn new(addr: SocketAddr) -> PeerInfo {
        PeerInfo {
            addr,
            certificate_user: None,
        }
    }
}

/// What the connection does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The client said DISCONNECT: flush and close.
    Close,
}

struct Subscription {
    handle: ConsumerHandle,
    ack: AckMode,
    durable_name: Option<String>,
    /// Unacked messages this subscription may hold: its share of max-unacked-per-connection.
    granted: u32,
    /// Its counters, shared with the registry's view of it.
    stats: Arc<SubscriptionStats>,
}

#[derive(Default)]
struct Transaction {
    sends: Vec<(Destination, MessageDraft)>,
    acks: Vec<crate::broker::TxAck>,
    /// Bytes its buffered sends hold, charged to the broker's `global-max-size` until the
    /// transaction ends.
    bytes: u64,
    held: Vec<crate::broker::UsageToken>,
}

/// The state of one STOMP connection.
pub struct Session {
    ctx: Arc<SessionContext>,
    out: Outbox,
    peer: SocketAddr,
    /// Unique among this process's connections: marks what it sends, for `no-local`.
    connection_id: u64,
    version: Option<Version>,
    client_id: Option<String>,
    /// Holds `client_id` unique broker-wide while this connection lives.
    client_claim: Option<ClientIdClaim>,
    login: Option<String>,
    certificate_user: Option<String>,
    access: Access,
    read_timeout: Option<Duration>,
    subscriptions: HashMap<ByteString, Subscription>,
    by_consumer: HashMap<ConsumerId, ByteString>,
    /// Unsubscribed subscriptions whose late ACKs/NACKs are accepted as no-ops.
    closed: closed::RecentlyClosed,
    transactions: HashMap<ByteString, Transaction>,
    pending_writes: VecDeque<Stored>,
    /// Boxed: it is part of every connection's state (and of a SEND's, which takes it out
    /// while it waits), and it changes only when a producer changes destination.
    last_send: Option<Box<produce::LastDestination>>,
    pending_bytes: usize,
    /// `/temp-queue/NAME` and `/temp-topic/NAME` destinations; deleted when it closes.
    temporaries: temporary::Temporaries,
    /// This connection in the broker's registry (figures, subscriptions, admin close).
    info: Arc<ConnectionInfo>,
}

/// Source of [`Session::connection_id`]s.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Session {
    /// A session that has not yet seen CONNECT.
    pub fn new(ctx: Arc<SessionContext>, out: Outbox, peer: SocketAddr) -> Self {
        let connection_id = NEXT_CONNECTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let info = ctx
            .connections
            .open(connection_id, ctx.transport(), &ctx.acceptor.name, peer);
        Session {
            ctx: Arc::clone(&ctx),
            info,
            connection_id,
            out,
            peer,
            version: None,
            client_id: None,
            client_claim: None,
            login: None,
            certificate_user: None,
            // Until CONNECT succeeds the connection may do nothing.
            access: Access::new(Arc::clone(&ctx.security), Principal::anonymous(Vec::new())),
            read_timeout: None,
            subscriptions: HashMap::new(),
            by_consumer: HashMap::new(),
            closed: closed::RecentlyClosed::default(),
            transactions: HashMap::new(),
            pending_writes: VecDeque::new(),
            last_send: None,
            pending_bytes: 0,
            temporaries: temporary::Temporaries::default(),
        }
    }

    /// This connection in the registry.
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }

    /// The negotiated version, once connected.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// How long the client may stay silent before it is considered dead.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The user named at CONNECT (checked by the security layer).
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// Who the connection acts as (anonymous without roles before CONNECT).
    pub fn principal(&self) -> &Principal {
        &self.access.principal
    }

    /// Records the user a verified TLS client certificate names, before CONNECT.
    pub fn set_certificate_user(&mut self, user: Option<String>) {
        self.certificate_user = user;
    }

    /// Applies one frame. A RECEIPT follows once the frame's effect is complete.
    pub async fn handle(&mut self, frame: Frame) -> Result<Flow, Failure> {
        self.handle_with(frame, None).await
    }

    /// [`Session::handle`] for a SEND whose body arrived into a file (`large`) rather than
    /// in the frame.
    pub(super) async fn handle_with(
        &mut self,
        mut frame: Frame,
        large: Option<Arc<LargeBody>>,
    ) -> Result<Flow, Failure> {
        let command = frame.command;
        // The session keeps text of these frames for as long as they matter (a subscription's
        // id and destination, a login, a transaction's name). Decoded headers are slices of
        // the connection's read buffer, and a kept slice would pin that whole buffer for the
        // life of the connection: an idle subscriber held 16 KiB that way.
        if matches!(
            command,
            Command::Connect | Command::Stomp | Command::Subscribe | Command::Begin
        ) {
            frame.headers.detach();
        }
        if self.version.is_none() && !matches!(command, Command::Connect | Command::Stomp) {
            return Err(Failure::new(format!(
                "the first frame must be CONNECT or STOMP, not {command}"
            )));
        }
        let receipt = frame.get("receipt").map(ByteString::from);
        // The handlers of the rare frames run boxed: an async call's state is inlined into
        // its caller's, so each would otherwise add its size to every connection's task for
        // the connection's whole life (CONNECT's and COMMIT's are the largest). SEND, ACK
        // and NACK, the frames of the message path, stay inline and allocate nothing.
        match command {
            Command::Connect | Command::Stomp => {
                Box::pin(self.connect(&frame)).await?;
                return Ok(Flow::Continue);
            }
            Command::Send => self.send(frame, large).await?,
            Command::Subscribe => {
                // Confirms the subscription itself, before its first MESSAGE.
                Box::pin(self.subscribe(frame, receipt)).await?;
                return Ok(Flow::Continue);
            }
            Command::Unsubscribe => Box::pin(self.unsubscribe(&frame)).await?,
            Command::Ack => self.acknowledge(&frame, Outcome::Ack).await?,
            Command::Nack => self.acknowledge(&frame, Outcome::Nack).await?,
            Command::Begin => self.begin(&frame)?,
            Command::Commit => Box::pin(self.commit(&frame)).await?,
            Command::Abort => self.abort(&frame)?,
            Command::Disconnect => {
                if let Some(r) = receipt {
                    self.receipt(r).await?;
                }
                return Ok(Flow::Close);
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                return Err(Failure::new(format!(
                    "{command} is a server frame; a client may not send it"
                )));
            }
        }
        if let Some(r) = receipt {
            self.receipt(r).await?;
        }
        Ok(Flow::Continue)
    }

    /// Queues a RECEIPT once every journal write of this and earlier frames is stored.
    async fn receipt(&mut self, id: ByteString) -> Result<(), Failure> {
        while let Some(write) = self.pending_writes.pop_front() {
            write.await.map_err(journal_failure)?;
        }
        self.pending_bytes = 0;
        self.out
            .frame(Frame::new(Command::Receipt).header("receipt-id", id))
            .await
            .map_err(|_| Failure::new("connection closed"))?;
        self.ctx
            .connections
            .totals
            .receipts
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Releases everything the connection held: open transactions are aborted and every
    /// subscription is closed, so unacknowledged messages go back to their queues.
    pub fn close(&mut self) {
        self.transactions.clear();
        for (_, sub) in self.subscriptions.drain() {
            sub.handle.close();
        }
        self.by_consumer.clear();
        // After the subscriptions, whose queues they may hold.
        self.temporaries.clear();
        // After the subscriptions, so a reconnect with this client-id finds them free.
        self.client_claim = None;
    }

    /// Who this connection is to the core: its user and client-id, for durable
    /// subscriptions' ownership.
    fn owner(&self) -> Owner {
        Owner {
            user: self.access.principal.name.clone(),
            client_id: self.client_id.clone(),
        }
    }
}
