//! What a connection's writer task is asked to send, and the handles that ask it.
//!
//! One unbounded channel carries everything in order (so a SUBSCRIBE's RECEIPT precedes its
//! first MESSAGE). It stays bounded in practice: deliveries are limited by consumer windows,
//! and every other frame holds a permit of a small semaphore until written, so a client that
//! sends receipts faster than it reads them is slowed by TCP back-pressure instead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytestring::ByteString;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::registry::{ConnectionInfo, SubscriptionStats};
use crate::broker::{Body, Delivery, DeliverySink, LargeBody};
use crate::stomp::{Frame, Version};

/// Frames other than MESSAGE that may wait unwritten per connection.
const CONTROL_FRAMES_IN_FLIGHT: usize = 256;

/// How a subscription acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Consumed once written to the socket.
    Auto,
    /// ACK covers this and every earlier message of the subscription.
    Client,
    /// ACK covers exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Parses a SUBSCRIBE `ack` header.
    pub fn parse(s: &str) -> Option<AckMode> {
        match s {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }
}

/// What the writer needs to turn a delivery into a MESSAGE frame.
#[derive(Debug)]
pub struct SubscriptionContext {
    /// The SUBSCRIBE's `id`.
    pub id: ByteString,
    /// The subscription's ack mode.
    pub ack: AckMode,
    /// The connection's negotiated version (escaping, `ack` header).
    pub version: Version,
    /// The connection, whose pending and written figures its deliveries count in.
    pub connection: Arc<ConnectionInfo>,
    /// The subscription's own counters.
    pub stats: Arc<SubscriptionStats>,
    /// `subscription:ID` with its newline, escaped for `version` once: every MESSAGE of the
    /// subscription starts with this line.
    pub subscription_line: bytes::Bytes,
}

impl SubscriptionContext {
    /// The context of subscription `id`, its header line encoded once.
    pub fn new(
        id: ByteString,
        ack: AckMode,
        version: Version,
        connection: Arc<ConnectionInfo>,
        stats: Arc<SubscriptionStats>,
    ) -> Self {
        let mut line = bytes::BytesMut::new();
        crate::stomp::FrameEncoder::lines(&mut line, version, crate::stomp::Command::Message)
            .header("subscription", &id);
        SubscriptionContext {
            id,
            ack,
            version,
            connection,
            stats,
            subscription_line: line.freeze(),
        }
    }
}

/// One item for the writer.
pub enum Outbound {
    /// A server frame (CONNECTED, RECEIPT); the permit bounds how many wait. Frames are
    /// boxed here and below so that a slot of the channel is a MESSAGE's size: the channel
    /// allocates its slots 32 at a time, the first 32 when the connection opens.
    Frame(Box<Frame>, Option<OwnedSemaphorePermit>),
    /// A server frame whose body is in a file (a browsed large message): written as the
    /// frame's head, then the file streamed; the frame's own body is ignored.
    FileFrame(Box<Frame>, Arc<LargeBody>, Option<OwnedSemaphorePermit>),
    /// A message for a subscription.
    Message(Delivery, Arc<SubscriptionContext>),
    /// An ERROR frame; the connection closes after it is written.
    Error(Box<Frame>),
    /// Write what is queued, then close (DISCONNECT).
    Close,
    /// Start sending heart-beats at this interval (after CONNECT).
    HeartBeat(Duration),
    /// Switch header escaping to the negotiated version.
    Version(Version),
    /// Answered once everything queued before it is written and its `auto` deliveries are
    /// acknowledged; dropped unanswered if the writer stops first.
    Barrier(oneshot::Sender<()>),
}

/// The session's side of the writer channel.
#[derive(Clone)]
pub struct Outbox {
    tx: UnboundedSender<Outbound>,
    control: Arc<Semaphore>,
}

/// The writer has gone: the connection is closing.
#[derive(Debug, Clone, Copy)]
pub struct WriterGone;

impl Outbox {
    /// Wraps the sending half of the writer channel.
    pub fn new(tx: UnboundedSender<Outbound>) -> Self {
        Outbox {
            tx,
            control: Arc::new(Semaphore::new(CONTROL_FRAMES_IN_FLIGHT)),
        }
    }

    /// Queues a server frame, waiting while too many are unwritten.
    pub async fn frame(&self, frame: Frame) -> Result<(), WriterGone> {
        let permit = Arc::clone(&self.control)
            .acquire_owned()
            .await
            .map_err(|_| WriterGone)?;
        self.tx
            .send(Outbound::Frame(Box::new(frame), Some(permit)))
            .map_err(|_| WriterGone)
    }

    /// Queues a server frame with `body` as its body, wherever the body is.
    pub async fn frame_with_body(&self, mut frame: Frame, body: &Body) -> Result<(), WriterGone> {
        let file = match body {
            Body::Inline(b) => {
                frame.body = b.clone();
                return self.frame(frame).await;
            }
            Body::File(file) => Arc::clone(file),
        };
        let permit = Arc::clone(&self.control)
            .acquire_owned()
            .await
            .map_err(|_| WriterGone)?;
        self.tx
            .send(Outbound::FileFrame(Box::new(frame), file, Some(permit)))
            .map_err(|_| WriterGone)
    }

    /// Waits until the writer has written everything queued so far (UNSUBSCRIBE: so that the
    /// subscription's deliveries already on their way are on the socket before it goes).
    /// Cancel-safe: dropping the future leaves only an unanswered barrier behind.
    pub async fn flush(&self) -> Result<(), WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.push(Outbound::Barrier(tx))?;
        rx.await.map_err(|_| WriterGone)
    }

    /// Queues anything else without waiting.
    pub fn push(&self, item: Outbound) -> Result<(), WriterGone> {
        self.tx.send(item).map_err(|_| WriterGone)
    }

    /// A delivery sink for one subscription.
    pub fn sink(&self, ctx: Arc<SubscriptionContext>) -> Arc<dyn DeliverySink> {
        Arc::new(SubscriptionSink {
            tx: self.tx.clone(),
            ctx,
        })
    }
}

struct SubscriptionSink {
    tx: UnboundedSender<Outbound>,
    ctx: Arc<SubscriptionContext>,
}

impl DeliverySink for SubscriptionSink {
    fn deliver(&self, delivery: Delivery) -> bool {
        self.ctx
            .connection
            .pending_bytes
            .fetch_add(delivery.message.wire_size() as u64, Ordering::Relaxed);
        self.tx
            .send(Outbound::Message(delivery, Arc::clone(&self.ctx)))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    /// The writer channel allocates its slots 32 at a time, the first 32 when a connection
    /// opens, so a slot's size is paid 32 times by every idle connection: a MESSAGE's item
    /// (a `Delivery` and its subscription) must stay 56 bytes (64 when a delivery's stream
    /// offset was an `Option`).
    #[test]
    fn a_writer_channel_slot_is_a_delivery_and_its_subscription() {
        let size = std::mem::size_of::<Outbound>();
        assert!(size <= 56, "an Outbound is {size} bytes");
    }
}
