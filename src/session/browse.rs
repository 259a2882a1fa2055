//! SUBSCRIBE with `browser:true` (ActiveMQ's queue browser, the way STOMP clients peek):
//! the messages waiting in a queue, as MESSAGE frames, without consuming any of them, then
//! one MESSAGE with `browser:end` and an empty body, after which the browse is over.
//!
//! The queue is read a page at a time ([`PAGE`] messages, one short lock each) and every
//! frame waits for room among the connection's unwritten frames, so a browse of millions
//! holds one page and what the writer may queue, never the queue. The connection handles its
//! next frame once `browser:end` is queued. Browse messages need no acknowledgement: an
//! ACK or NACK naming one (by its ack id, or its message-id with the browse's subscription
//! id) is accepted and ignored, like one for a subscription just unsubscribed.

use bytestring::ByteString;

use super::subscribe::parse_selector;
use super::writer::is_reserved;
use super::{AckMode, Failure, Session};
use crate::address::wildcard::is_wildcard;
use crate::broker::{BrowseCursor, Browsed, ConsumerId, Destination, Filter};
use crate::security::{Authorizer, Permission};
use crate::stomp::{Command, Frame};

/// Messages read from the queue per lock.
const PAGE: usize = 256;

/// What every MESSAGE of one browse shares.
struct BrowseFrames<'a> {
    subscription: &'a ByteString,
    ack: AckMode,
    /// The browse's consumer-like id: its ack ids are `id-n`, unlike any real consumer's.
    id: ConsumerId,
}

impl BrowseFrames<'_> {
    /// The MESSAGE for one browsed message: the headers a delivery would carry (its body is
    /// added when it is queued, see [`super::Outbox::frame_with_body`]).
    fn message(&self, b: &Browsed, n: u64) -> Frame {
        let m = &b.message;
        let mut f = Frame::new(Command::Message)
            .header("destination", m.destination.clone())
            .header("message-id", m.id.to_string())
            .header("subscription", self.subscription.clone());
        if self.ack != AckMode::Auto {
            f = f.header("ack", format!("{}-{n}", self.id));
        }
        f = f
            .header("redelivered", (b.delivery_count > 0).to_string())
            .header("redelivery-count", b.delivery_count.to_string());
        let mut has_timestamp = false;
        let mut has_persistent = false;
        for (k, v) in &m.properties {
            if is_reserved(k) {
                continue;
            }
            has_timestamp |= &**k == "timestamp";
            has_persistent |= &**k == "persistent";
            f = f.header(k.clone(), v.clone());
        }
        if !has_timestamp {
            f = f.header("timestamp", m.timestamp.to_string());
        }
        if m.persistent && !has_persistent {
            f = f.header("persistent", "true");
        }
        f
    }
}

impl Session {
    /// Browses `dest` for subscription `id` (see the module doc).
    pub(super) async fn browse(
        &mut self,
        frame: &Frame,
        text: ByteString,
        dest: Destination,
        id: ByteString,
        ack: AckMode,
        receipt: Option<ByteString>,
    ) -> Result<(), Failure> {
        let selector: Option<Filter> = parse_selector(frame)?;
        let browse = self
            .ctx
            .broker
            .browse_as(&dest, self.connection_id, &self.access)?;
        if let Some(r) = receipt {
            self.receipt(r).await?;
        }
        let frames = BrowseFrames {
            subscription: &id,
            ack,
            id: browse.id,
        };
        let gone = |_| Failure::new("connection closed");
        let mut n = 0u64;
        if let Some(queue) = &browse.queue {
            // A wildcard subscription's queue holds copies from many addresses: show only
            // those the browser may browse.
            let wildcard = is_wildcard(&queue.address);
            let mut cursor = BrowseCursor::default();
            loop {
                let page = queue.browse(cursor, PAGE);
                for b in &page.messages {
                    if selector.as_ref().is_some_and(|s| !s.matches(&b.message))
                        || (wildcard
                            && self
                                .access
                                .authorize(Permission::Browse, &b.message.address)
                                .is_err())
                    {
                        continue;
                    }
                    n += 1;
                    self.out
                        .frame_with_body(frames.message(b, n), &b.message.body)
                        .await
                        .map_err(gone)?;
                }
                match page.next {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
        }
        let end = Frame::new(Command::Message)
            .header("destination", text)
            .header("message-id", format!("browse-{}-end", browse.id))
            .header("subscription", id.clone())
            .header("browser", "end");
        self.out.frame(end).await.map_err(gone)?;
        self.closed.remember(browse.id, id, Vec::new());
        Ok(())
    }
}
