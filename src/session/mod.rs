//! One connection's STOMP state: version, heart-beats, subscriptions, transactions and
//! receipts. It turns frames into core operations and core deliveries into frames, and is
//! shared by every transport through [`serve`].

mod connection;
mod destination;
mod outbound;
mod writer;

pub use connection::{serve, serve_with};
pub use destination::map_destination;
pub use outbound::{AckMode, Outbound, Outbox, SubscriptionContext};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;

use crate::broker::{
    AckTarget, Authorizer, BrokerError, Capacity, ConsumerHandle, ConsumerId, Destination,
    MessageDraft, Outcome, SubscribeSpec, Window,
};
use crate::journal::{Completion, JournalOp};
use crate::security::{Access, Credentials, Permission, Principal};
use crate::server::AcceptorContext;
use crate::stomp::{Command, Frame, Version};

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
}

#[derive(Default)]
struct Transaction {
    sends: Vec<(Destination, MessageDraft)>,
    acks: Vec<(ConsumerHandle, Vec<u64>, Outcome)>,
}

/// Journal writes a connection may have outstanding before it stops reading: enough to fill
/// several group commits, bounded in count and in bytes so memory stays bounded.
const MAX_PENDING_WRITES: usize = 4096;
/// Bytes of message bodies a connection may have waiting for the journal.
const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// Names by which clients ask for a durable subscription, in Artemis's order of precedence.
const DURABLE_NAME_HEADERS: [&str; 3] = [
    "durable-subscription-name",
    "durable-subscriber-name",
    "activemq.subscriptionName",
];

/// Headers that steer the frame rather than describe the message; not kept as properties.
fn is_transport_header(name: &str) -> bool {
    matches!(
        name,
        "receipt" | "transaction" | "content-length" | "destination"
    )
}

/// The state of one STOMP connection.
pub struct Session {
    ctx: Arc<AcceptorContext>,
    out: Outbox,
    peer: SocketAddr,
    version: Option<Version>,
    client_id: Option<String>,
    login: Option<String>,
    certificate_user: Option<String>,
    access: Access,
    read_timeout: Option<Duration>,
    subscriptions: HashMap<ByteString, Subscription>,
    by_consumer: HashMap<ConsumerId, ByteString>,
    transactions: HashMap<ByteString, Transaction>,
    pending_writes: VecDeque<(Completion, usize)>,
    pending_bytes: usize,
}

impl Session {
    /// A session that has not yet seen CONNECT.
    pub fn new(ctx: Arc<AcceptorContext>, out: Outbox, peer: SocketAddr) -> Self {
        Session {
            ctx: Arc::clone(&ctx),
            out,
            peer,
            version: None,
            client_id: None,
            login: None,
            certificate_user: None,
            // Until CONNECT succeeds the connection may do nothing.
            access: Access::new(Arc::clone(&ctx.security), Principal::anonymous(Vec::new())),
            read_timeout: None,
            subscriptions: HashMap::new(),
            by_consumer: HashMap::new(),
            transactions: HashMap::new(),
            pending_writes: VecDeque::new(),
            pending_bytes: 0,
        }
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

    /// Authenticates CONNECT's credentials: `login`/`passcode` when given, else the client
    /// certificate's user, else anonymous if the acceptor allows it. A refusal never says
    /// which half was wrong.
    async fn authenticate(&mut self, frame: &Frame) -> Result<(), Failure> {
        let login = frame.get("login").filter(|l| !l.is_empty());
        let credentials = match (login, self.certificate_user.as_deref()) {
            (Some(login), _) => Credentials::Password {
                login,
                passcode: frame.get("passcode").unwrap_or(""),
            },
            (None, Some(cn)) => Credentials::Certificate(cn),
            (None, None) => Credentials::Anonymous,
        };
        let security = Arc::clone(&self.ctx.security);
        match security
            .authenticate(credentials, self.ctx.anonymous_ok, self.peer.ip())
            .await
        {
            Ok(principal) => {
                self.access = Access::new(security, principal);
                Ok(())
            }
            Err(refused) => Err(Failure {
                message: "login failed".to_string(),
                detail: Some(refused.detail.to_string()),
                headers: Vec::new(),
            }),
        }
    }

    /// Applies one frame. A RECEIPT follows once the frame's effect is complete.
    pub async fn handle(&mut self, frame: Frame) -> Result<Flow, Failure> {
        let command = frame.command;
        if self.version.is_none() && !matches!(command, Command::Connect | Command::Stomp) {
            return Err(Failure::new(format!(
                "the first frame must be CONNECT or STOMP, not {command}"
            )));
        }
        let receipt = frame.get("receipt").map(ByteString::from);
        match command {
            Command::Connect | Command::Stomp => {
                self.connect(&frame).await?;
                return Ok(Flow::Continue);
            }
            Command::Send => self.send(frame).await?,
            Command::Subscribe => {
                // Confirms the subscription itself, before its first MESSAGE.
                self.subscribe(frame, receipt).await?;
                return Ok(Flow::Continue);
            }
            Command::Unsubscribe => self.unsubscribe(&frame).await?,
            Command::Ack => self.acknowledge(&frame, Outcome::Ack).await?,
            Command::Nack => self.acknowledge(&frame, Outcome::Nack).await?,
            Command::Begin => self.begin(&frame)?,
            Command::Commit => self.commit(&frame).await?,
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
        while let Some((write, _)) = self.pending_writes.pop_front() {
            write.await.map_err(journal_failure)?;
        }
        self.pending_bytes = 0;
        self.out
            .frame(Frame::new(Command::Receipt).header("receipt-id", id))
            .await
            .map_err(|_| Failure::new("connection closed"))
    }

    async fn connect(&mut self, frame: &Frame) -> Result<(), Failure> {
        if self.version.is_some() {
            return Err(Failure::new(
                "already connected: CONNECT may be sent only once",
            ));
        }
        let version = negotiate(frame.get("accept-version"))?;
        self.authenticate(frame).await?;
        let hb = &self.ctx.acceptor.heartbeat;
        let (client_sends, client_wants) = match (version, frame.get("heart-beat")) {
            (Version::V1_0, _) | (_, None) => (0, 0),
            (_, Some(h)) => parse_heart_beat(h)?,
        };
        let send_every = if hb.send_ms > 0 && client_wants > 0 {
            hb.send_ms.max(client_wants)
        } else {
            0
        };
        let expect_every = if hb.receive_ms > 0 && client_sends > 0 {
            hb.receive_ms.max(client_sends)
        } else {
            0
        };
        self.read_timeout = if expect_every > 0 {
            Some(Duration::from_millis(
                (expect_every as f64 * hb.grace).ceil() as u64,
            ))
        } else if hb.connection_ttl_ms > 0 {
            Some(Duration::from_millis(hb.connection_ttl_ms))
        } else {
            None
        };
        self.client_id = frame.get("client-id").map(str::to_string);
        self.login = frame.get("login").map(str::to_string);
        self.version = Some(version);
        let gone = |_| Failure::new("connection closed");
        self.out.push(Outbound::Version(version)).map_err(gone)?;
        let mut connected = Frame::new(Command::Connected)
            .header("version", version.as_str())
            .header("server", self.ctx.server_name.as_str())
            .header("session", uuid::Uuid::new_v4().to_string());
        if version != Version::V1_0 {
            connected = connected.header(
                "heart-beat",
                format!(
                    "{},{}",
                    if client_wants > 0 { hb.send_ms } else { 0 },
                    if client_sends > 0 { hb.receive_ms } else { 0 }
                ),
            );
        }
        self.out.frame(connected).await.map_err(gone)?;
        self.out
            .push(Outbound::HeartBeat(Duration::from_millis(send_every)))
            .map_err(gone)?;
        tracing::debug!(peer = %self.peer, %version, send_every, expect_every, "connected");
        Ok(())
    }

    fn destination(
        &self,
        frame: &Frame,
        type_header: &'static str,
    ) -> Result<(String, Destination), Failure> {
        let text = frame.get("destination").ok_or_else(|| {
            Failure::new(format!(
                "{} frame has no 'destination' header",
                frame.command
            ))
        })?;
        let dest = map_destination(
            &self.ctx.acceptor,
            text,
            frame.get(type_header).map(|v| (type_header, v)),
        )
        .map_err(Failure::new)?;
        Ok((text.to_string(), dest))
    }

    async fn send(&mut self, frame: Frame) -> Result<(), Failure> {
        let (text, dest) = self.destination(&frame, "destination-type")?;
        let tx_id = frame.get("transaction").map(ByteString::from);
        let draft = draft_from(frame, text)?;
        if let Some(tx) = tx_id {
            let Some(held) = self.transactions.get(&tx).map(|t| t.sends.len()) else {
                return Err(Failure::new(format!("unknown transaction '{tx}'")));
            };
            if held >= self.ctx.session_limits.max_messages_per_transaction {
                return Err(Failure::new(format!(
                    "transaction '{tx}' already holds {held} messages, the limit (max-messages-per-transaction)"
                )));
            }
            // Refuse an unroutable or unauthorized send now, as Artemis does, not at COMMIT.
            self.ctx.broker.prepare_as(&dest, &self.access)?;
            if let Some(t) = self.transactions.get_mut(&tx) {
                t.sends.push((dest, draft));
            }
            return Ok(());
        }
        let mut ops = Vec::new();
        self.route(&dest, draft, &mut ops).await?;
        self.persist(ops).await
    }

    /// Starts storing `ops`; waits only when too many writes (or bytes) are outstanding.
    async fn persist(&mut self, ops: Vec<JournalOp>) -> Result<(), Failure> {
        let bytes: usize = ops
            .iter()
            .map(|op| match op {
                JournalOp::PutMessage(m) => m.body.len() + 64,
                _ => 32,
            })
            .sum();
        let write = self.ctx.broker.persist(ops);
        self.track(write, bytes).await
    }

    /// Makes the next RECEIPT wait for everything the core has handed to the journal so far,
    /// such as the record of a durable subscription it just created or deleted.
    async fn await_core_writes(&mut self) -> Result<(), Failure> {
        let barrier = self.ctx.broker.journal_barrier();
        self.track(barrier, 0).await
    }

    /// Adds a write for the next RECEIPT to wait on; waits only when too many writes (or
    /// bytes) are outstanding.
    async fn track(&mut self, write: Option<Completion>, bytes: usize) -> Result<(), Failure> {
        if let Some(write) = write {
            self.pending_writes.push_back((write, bytes));
            self.pending_bytes += bytes;
        }
        while self.pending_writes.len() > MAX_PENDING_WRITES
            || self.pending_bytes > MAX_PENDING_BYTES
        {
            let Some((write, bytes)) = self.pending_writes.pop_front() else {
                break;
            };
            self.pending_bytes -= bytes;
            write.await.map_err(journal_failure)?;
        }
        Ok(())
    }

    /// Routes one message, first waiting for room if its address is full (BLOCK): the
    /// connection stops reading meanwhile, which slows the producer by TCP back-pressure.
    async fn route(
        &self,
        dest: &Destination,
        draft: MessageDraft,
        ops: &mut Vec<JournalOp>,
    ) -> Result<(), Failure> {
        let broker = &self.ctx.broker;
        loop {
            match broker.capacity(dest) {
                Capacity::Available => break,
                Capacity::Blocked(usage) => usage.wait_for_space().await,
                Capacity::Refused => {
                    return Err(BrokerError::AddressFull(dest.address.clone()).into());
                }
                Capacity::Dropped => return Ok(()),
            }
        }
        broker.send_as(dest, draft, ops, &self.access)?;
        Ok(())
    }

    async fn subscribe(
        &mut self,
        frame: Frame,
        receipt: Option<ByteString>,
    ) -> Result<(), Failure> {
        let version = self.version.unwrap_or(Version::V1_2);
        let (text, dest) = self.destination(&frame, "subscription-type")?;
        let id: ByteString = match frame.get("id") {
            Some(id) => id.into(),
            None if version == Version::V1_0 => text.as_str().into(),
            None => return Err(Failure::new("SUBSCRIBE frame has no 'id' header")),
        };
        if self.subscriptions.contains_key(&id) {
            return Err(Failure::new(format!(
                "subscription id '{id}' is already in use on this connection"
            )));
        }
        let ack = match frame.get("ack") {
            None => AckMode::Auto,
            Some(a) => AckMode::parse(a).ok_or_else(|| {
                Failure::new(format!(
                    "ack mode '{a}' is not one of auto, client, client-individual"
                ))
            })?,
        };
        let limits = &self.ctx.session_limits;
        if self.subscriptions.len() >= limits.max_subscriptions_per_connection {
            return Err(Failure::new(format!(
                "too many subscriptions: this connection already has {}, the limit (max-subscriptions-per-connection)",
                self.subscriptions.len()
            )));
        }
        let mut window = parse_window(&frame, self.ctx.acceptor.default_consumer_window)?;
        let granted = self.unacked_share(&mut window)?;
        let durable_name = match DURABLE_NAME_HEADERS.iter().find_map(|h| frame.get(h)) {
            Some(name) if dest.routing != Some(crate::broker::RoutingType::Anycast) => {
                let client = self.client_id.as_deref().ok_or_else(|| {
                    Failure::new("a durable subscription needs a 'client-id' header on CONNECT")
                })?;
                Some(format!("{client}.{name}"))
            }
            _ => None,
        };
        let ctx = Arc::new(SubscriptionContext {
            id: id.clone(),
            ack,
            version,
        });
        let handle = self.ctx.broker.subscribe_as(
            SubscribeSpec {
                destination: dest,
                window,
                sink: self.out.sink(ctx),
                durable_name: durable_name.clone(),
            },
            &self.access,
        )?;
        self.by_consumer.insert(handle.id, id.clone());
        let durable = durable_name.is_some();
        self.subscriptions.insert(
            id,
            Subscription {
                handle: handle.clone(),
                ack,
                durable_name,
                granted,
            },
        );
        if durable {
            // The subscription's queue record was submitted without waiting; its RECEIPT
            // must not go out before the subscription would survive a crash.
            self.await_core_writes().await?;
        }
        if let Some(r) = receipt {
            self.receipt(r).await?;
        }
        handle.start();
        Ok(())
    }

    /// Caps a new subscription's message window so the connection's subscriptions together
    /// hold at most max-unacked-per-connection; refuses when nothing is left.
    fn unacked_share(&self, window: &mut Window) -> Result<u32, Failure> {
        let limit = self.ctx.session_limits.max_unacked_per_connection;
        let used: u64 = self
            .subscriptions
            .values()
            .map(|s| u64::from(s.granted))
            .sum();
        let left = u64::from(limit).saturating_sub(used);
        if left == 0 {
            return Err(Failure::new(format!(
                "too many unacknowledged messages: this connection's subscriptions may already hold {limit}, the limit (max-unacked-per-connection)"
            )));
        }
        let left = u32::try_from(left).unwrap_or(u32::MAX);
        let granted = window.messages.map_or(left, |m| m.min(left));
        window.messages = Some(granted);
        Ok(granted)
    }

    async fn unsubscribe(&mut self, frame: &Frame) -> Result<(), Failure> {
        let id = match (frame.get("id"), self.version) {
            (Some(id), _) => id,
            (None, Some(Version::V1_0)) => frame.get("destination").ok_or_else(|| {
                Failure::new("UNSUBSCRIBE frame has neither 'id' nor 'destination'")
            })?,
            (None, _) => return Err(Failure::new("UNSUBSCRIBE frame has no 'id' header")),
        };
        let sub = self
            .subscriptions
            .remove(id)
            .ok_or_else(|| Failure::new(format!("unknown subscription '{id}'")))?;
        self.by_consumer.remove(&sub.handle.id);
        sub.handle.close();
        let wants_delete = DURABLE_NAME_HEADERS.iter().any(|h| frame.get(h).is_some());
        if let (Some(name), true) = (&sub.durable_name, wants_delete) {
            self.access
                .authorize(Permission::DeleteDurableQueue, &sub.handle.queue.address)?;
            if self.ctx.broker.delete_subscription(name) {
                // Likewise the deletion: once RECEIPTed it must not come back after a crash.
                self.await_core_writes().await?;
            }
        }
        Ok(())
    }

    async fn acknowledge(&mut self, frame: &Frame, outcome: Outcome) -> Result<(), Failure> {
        let (handle, tags) = self.settle(frame)?;
        match frame.get("transaction") {
            Some(t) => {
                let Some(tx) = self.transactions.get_mut(t) else {
                    handle.unsettle(&tags);
                    return Err(Failure::new(format!("unknown transaction '{t}'")));
                };
                tx.acks.push((handle, tags, outcome));
            }
            None => {
                let mut ops = Vec::new();
                handle.complete(&tags, outcome, &mut ops);
                self.persist(ops).await?;
            }
        }
        Ok(())
    }

    /// Finds what an ACK/NACK names and marks it settled. Accepts the 1.2 `id` (our ack id),
    /// and the 1.0/1.1 `message-id` with or without `subscription`, whatever the version,
    /// because clients mix them up.
    fn settle(&self, frame: &Frame) -> Result<(ConsumerHandle, Vec<u64>), Failure> {
        let cmd = frame.command;
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
                .settle(AckTarget::Tag(tag), sub.ack == AckMode::Client)
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
            if let Ok(tags) = sub
                .handle
                .settle(AckTarget::MessageId(message_id), sub.ack == AckMode::Client)
            {
                return Ok((sub.handle.clone(), tags));
            }
        }
        Err(Failure::new(format!(
            "{cmd} names message-id '{mid}', which awaits no acknowledgement"
        )))
    }

    fn transaction_id(frame: &Frame) -> Result<&str, Failure> {
        frame.get("transaction").ok_or_else(|| {
            Failure::new(format!(
                "{} frame has no 'transaction' header",
                frame.command
            ))
        })
    }

    fn begin(&mut self, frame: &Frame) -> Result<(), Failure> {
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

    async fn commit(&mut self, frame: &Frame) -> Result<(), Failure> {
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

    fn abort(&mut self, frame: &Frame) -> Result<(), Failure> {
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

    /// Releases everything the connection held: open transactions are aborted and every
    /// subscription is closed, so unacknowledged messages go back to their queues.
    pub fn close(&mut self) {
        self.transactions.clear();
        for (_, sub) in self.subscriptions.drain() {
            sub.handle.close();
        }
        self.by_consumer.clear();
    }
}

fn journal_failure(e: crate::journal::JournalError) -> Failure {
    tracing::error!(error = %e, "journal write failed");
    Failure::new(format!("the broker could not store the message: {e}"))
}

/// Picks the highest version both sides speak; no `accept-version` means STOMP 1.0.
fn negotiate(accept: Option<&str>) -> Result<Version, Failure> {
    let Some(list) = accept else {
        return Ok(Version::V1_0);
    };
    list.split(',')
        .filter_map(Version::parse)
        .max()
        .ok_or_else(|| Failure {
            message: format!("no supported STOMP version in accept-version '{list}'"),
            detail: Some("WrenMQ supports STOMP 1.0, 1.1 and 1.2".to_string()),
            // STOMP 1.2: the ERROR lists the versions the server supports.
            headers: vec![("version", "1.0,1.1,1.2".to_string())],
        })
}

fn parse_heart_beat(h: &str) -> Result<(u64, u64), Failure> {
    let bad = || {
        Failure::new(format!(
            "heart-beat '{h}' is not two comma-separated numbers"
        ))
    };
    let (a, b) = h.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

/// Reads the window from whichever peer's header the client used: Artemis's
/// `consumer-window-size` (bytes), ActiveMQ's `activemq.prefetchSize` or RabbitMQ's
/// `prefetch-count` (messages).
fn parse_window(frame: &Frame, default_messages: u32) -> Result<Window, Failure> {
    let number = |name: &str| -> Result<Option<i64>, Failure> {
        frame
            .get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    Failure::new(format!("header '{name}' must be a number, not '{v}'"))
                })
            })
            .transpose()
    };
    let messages = match number("activemq.prefetchSize")?.or(number("prefetch-count")?) {
        Some(n) if n < 0 => None,
        Some(0) => None,
        Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        None => Some(default_messages),
    };
    match number("consumer-window-size")? {
        Some(b) if b < 0 => Ok(Window {
            messages: None,
            bytes: None,
        }),
        Some(b) => Ok(Window {
            messages: None,
            bytes: Some(b as u64),
        }),
        None => Ok(Window {
            messages: messages.filter(|m| *m > 0),
            bytes: None,
        }),
    }
}

fn draft_from(frame: Frame, destination: String) -> Result<MessageDraft, Failure> {
    let persistent = match frame.get("persistent") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(Failure::new(format!(
                "header 'persistent' must be true or false, not '{v}'"
            )));
        }
    };
    let priority = match frame.get("priority") {
        None => 4,
        Some(v) => v
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 9)
            .ok_or_else(|| Failure::new(format!("header 'priority' must be 0 to 9, not '{v}'")))?,
    };
    let expires = match frame.get("expires") {
        None => 0,
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            Failure::new(format!(
                "header 'expires' must be milliseconds since the epoch, not '{v}'"
            ))
        })?,
    };
    let properties = frame
        .headers
        .into_entries()
        .into_iter()
        .filter(|(k, _)| !is_transport_header(k))
        .collect();
    Ok(MessageDraft {
        destination: destination.into(),
        properties,
        body: frame.body,
        persistent,
        priority,
        expires,
    })
}
