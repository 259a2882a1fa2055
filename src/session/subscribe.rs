//! SUBSCRIBE and UNSUBSCRIBE: ack modes, consumer windows from any peer's prefetch header,
//! durable subscriptions, and the per-connection unacked limit.

use super::{
    AckMode, Failure, Session, Subscription, SubscriptionContext, SubscriptionStats,
    SubscriptionView,
};
use crate::broker::{Filter, StreamRequest, StreamStart, SubscribeSpec, Window};
use crate::security::{Authorizer, Permission};
use crate::stomp::{Frame, Version};
use bytestring::ByteString;
use std::sync::Arc;

/// Names by which clients ask for a durable subscription, in Artemis's order of precedence.
const DURABLE_NAME_HEADERS: [&str; 3] = [
    "durable-subscription-name",
    "durable-subscriber-name",
    "activemq.subscriptionName",
];

/// RabbitMQ's headers asking for a durable subscription (`persistent` is its older name).
/// On a consumer group (`address::group`) they make the group durable; on UNSUBSCRIBE they
/// ask to delete it, like the durable subscription names.
const DURABLE_FLAG_HEADERS: [&str; 2] = ["durable", "persistent"];

/// ActiveMQ's header asking to be the queue's exclusive consumer.
const EXCLUSIVE_HEADER: &str = "activemq.exclusive";

/// Headers asking for a consumer priority: Artemis's, RabbitMQ's and ActiveMQ's.
const PRIORITY_HEADERS: [&str; 3] = ["consumer-priority", "x-priority", "activemq.priority"];

/// Headers asking not to receive this connection's own messages: Artemis's, ActiveMQ's.
const NO_LOCAL_HEADERS: [&str; 2] = ["no-local", "activemq.noLocal"];

/// The `selector` header, compiled; an empty (or blank) one means none (as Artemis). A
/// selector that does not parse is an ERROR naming the position and what was expected. The
/// text is trimmed (so spacing around it does not make a durable subscription's selector
/// differ), but the position counts from the start of the header as the client sent it.
pub(super) fn parse_selector(frame: &Frame) -> Result<Option<Filter>, Failure> {
    let Some(sent) = frame.get("selector") else {
        return Ok(None);
    };
    let text = sent.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let leading = sent[..sent.len() - sent.trim_start().len()].chars().count();
    Filter::selector(text).map(Some).map_err(|mut e| {
        e.position += leading;
        Failure::new(format!("header 'selector': {e}"))
    })
}

/// Where a consumer starts on a retained stream (RabbitMQ's header); a value that is none
/// of the accepted forms is an ERROR naming it.
fn parse_stream_offset(frame: &Frame) -> Result<Option<StreamStart>, Failure> {
    let Some(value) = frame.get("x-stream-offset") else {
        return Ok(None);
    };
    StreamStart::parse(value).map(Some).ok_or_else(|| {
        Failure::new(format!(
            "header 'x-stream-offset' must be first, last, next, an offset (0, 1, ...) or timestamp=<epoch seconds>, not '{value}'"
        ))
    })
}

/// The consumer's priority (default 0), from whichever peer's header it used.
fn parse_consumer_priority(frame: &Frame) -> Result<i32, Failure> {
    let Some((name, value)) = PRIORITY_HEADERS
        .iter()
        .find_map(|h| frame.get(h).map(|v| (*h, v)))
    else {
        return Ok(0);
    };
    value.trim().parse::<i32>().map_err(|_| {
        Failure::new(format!(
            "header '{name}' must be an integer priority, not '{value}'"
        ))
    })
}

/// A true/false header among `names` (absent = false).
fn parse_flag(frame: &Frame, names: &[&str]) -> Result<bool, Failure> {
    let Some((name, value)) = names.iter().find_map(|h| frame.get(h).map(|v| (*h, v))) else {
        return Ok(false);
    };
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Failure::new(format!(
            "header '{name}' must be true or false, not '{value}'"
        ))),
    }
}

/// Whether a SUBSCRIBE to consumer group `group` asks for it to be durable: RabbitMQ's
/// `durable:true`, or (as an Artemis or ActiveMQ client names a durable subscription) a
/// durable subscription name, which must then be the group's own name: a group is shared by
/// connections with different client-ids, so the name cannot be `client-id.name`.
fn wants_durable_group(frame: &Frame, group: &str) -> Result<bool, Failure> {
    if let Some((header, name)) = DURABLE_NAME_HEADERS
        .iter()
        .find_map(|h| frame.get(h).map(|v| (*h, v)))
    {
        if name != group {
            return Err(Failure::new(format!(
                "header '{header}' names durable subscription '{name}', but the destination names consumer group '{group}': a durable group is named by its destination (send durable:true, or '{header}:{group}')"
            )));
        }
        return Ok(true);
    }
    parse_flag(frame, &DURABLE_FLAG_HEADERS)
}

impl Session {
    pub(super) async fn subscribe(
        &mut self,
        frame: Frame,
        receipt: Option<ByteString>,
    ) -> Result<(), Failure> {
        let version = self.version.unwrap_or(Version::V1_2);
        let (text, dest) = self.destination(&frame, "subscription-type")?;
        let id: ByteString = match frame.get("id") {
            Some(id) => id.into(),
            None if version == Version::V1_0 => text.clone(),
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
        if parse_flag(&frame, &["browser"])? {
            return self.browse(&frame, text, dest, id, ack, receipt).await;
        }
        let limits = &self.ctx.session_limits;
        if self.subscriptions.len() >= limits.max_subscriptions_per_connection {
            return Err(Failure::new(format!(
                "too many subscriptions: this connection already has {}, the limit (max-subscriptions-per-connection)",
                self.subscriptions.len()
            )));
        }
        let mut window = parse_window(&frame, self.ctx.acceptor.default_consumer_window)?;
        let granted = self.unacked_share(&mut window)?;
        let asked_name = DURABLE_NAME_HEADERS.iter().find_map(|h| frame.get(h));
        // On a retained stream the same name (with the client-id) keys the stored offset,
        // whichever routing type the destination has.
        let stream = StreamRequest {
            start: parse_stream_offset(&frame)?,
            name: asked_name
                .zip(self.client_id.as_deref())
                .map(|(name, client)| Arc::from(format!("{client}.{name}"))),
        };
        let anycast = dest.routing == Some(crate::broker::RoutingType::Anycast);
        let durable_name = match (asked_name, &dest.queue) {
            // `address::group`: a consumer group, durable under its own name.
            (_, Some(group)) if !anycast => {
                wants_durable_group(&frame, group)?.then(|| group.clone())
            }
            (Some(name), _) if !anycast => {
                let client = self.client_id.as_deref().ok_or_else(|| {
                    Failure::new("a durable subscription needs a 'client-id' header on CONNECT")
                })?;
                Some(format!("{client}.{name}"))
            }
            _ => None,
        };
        let selector = parse_selector(&frame)?;
        let priority = parse_consumer_priority(&frame)?;
        let no_local = parse_flag(&frame, &NO_LOCAL_HEADERS)?.then_some(self.connection_id);
        let exclusive = parse_flag(&frame, &[EXCLUSIVE_HEADER])?;
        let stats = Arc::new(SubscriptionStats::default());
        let selector_text = frame.get("selector").map(str::to_string);
        let prefetch = window.messages;
        let ctx = Arc::new(SubscriptionContext::new(
            id.clone(),
            ack,
            version,
            Arc::clone(&self.info),
            Arc::clone(&stats),
        ));
        let handle = self.ctx.broker.subscribe_as(
            SubscribeSpec {
                destination: dest,
                window,
                sink: self.out.sink(ctx),
                durable_name: durable_name.clone(),
                reader: Some(Arc::new(self.access.clone())),
                subscriber: self.owner(),
                priority,
                selector,
                no_local,
                stream,
                connection: Some(self.connection_id),
                exclusive,
            },
            &self.access,
        )?;
        self.by_consumer.insert(handle.id, id.clone());
        self.info.add_subscription(Arc::new(SubscriptionView {
            id: id.to_string(),
            destination: text.to_string(),
            queue: handle.queue.name.to_string(),
            ack_mode: match ack {
                AckMode::Auto => "auto",
                AckMode::Client => "client",
                AckMode::ClientIndividual => "client-individual",
            },
            selector: selector_text.filter(|s| !s.trim().is_empty()),
            prefetch,
            durable_name: durable_name.clone(),
            stats: Arc::clone(&stats),
        }));
        let durable = durable_name.is_some();
        self.subscriptions.insert(
            id,
            Subscription {
                handle: handle.clone(),
                ack,
                durable_name,
                granted,
                stats,
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
    pub(super) fn unacked_share(&self, window: &mut Window) -> Result<u32, Failure> {
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

    pub(super) async fn unsubscribe(&mut self, frame: &Frame) -> Result<(), Failure> {
        let wants_delete = DURABLE_NAME_HEADERS.iter().any(|h| frame.get(h).is_some())
            || parse_flag(frame, &DURABLE_FLAG_HEADERS)?;
        let id = match (frame.get("id"), self.version) {
            (Some(id), _) => id,
            (None, Some(Version::V1_0)) => frame.get("destination").ok_or_else(|| {
                Failure::new("UNSUBSCRIBE frame has neither 'id' nor 'destination'")
            })?,
            (None, _) => return Err(Failure::new("UNSUBSCRIBE frame has no 'id' header")),
        };
        let handle = self
            .subscriptions
            .get(id)
            .map(|s| s.handle.clone())
            .ok_or_else(|| Failure::new(format!("unknown subscription '{id}'")))?;
        // Nothing more is handed to the subscription; what is already on its way to the
        // writer is written first (`auto` ones are then acked by the writer), so each message
        // is either delivered here or returned to the queue, never both, and none follows the
        // RECEIPT. Until then the subscription stays in the map, so if this future is dropped
        // at the await, `Session::close` still closes it.
        handle.stop();
        let flushed = self.out.flush().await;
        let Some(sub) = self.subscriptions.remove(id) else {
            return Err(Failure::new(format!("unknown subscription '{id}'")));
        };
        self.by_consumer.remove(&sub.handle.id);
        self.info.remove_subscription(id);
        let done = sub.handle.close();
        let held = done.returned.iter().map(|(m, _)| *m);
        let held = held.chain(done.dead.iter().map(|d| d.message.id)).collect();
        self.closed.remember(sub.handle.id, id.into(), held);
        flushed.map_err(|_| Failure::new("connection closed"))?;
        if let (Some(name), true) = (&sub.durable_name, wants_delete) {
            self.access
                .authorize(Permission::DeleteDurableQueue, &sub.handle.queue.address)?;
            if self
                .ctx
                .broker
                .delete_subscription(name, &self.owner(), &self.access)?
            {
                // Likewise the deletion: once RECEIPTed it must not come back after a crash.
                self.await_core_writes().await?;
            }
        }
        Ok(())
    }
}

/// Reads the window from whichever peer's header the client used: Artemis's
/// `consumer-window-size` (bytes), ActiveMQ's `activemq.prefetchSize` or RabbitMQ's
/// `prefetch-count` (messages).
/// Bytes a subscription may hold unacknowledged when its client names only a message count
/// (or nothing): a count alone does not bound memory when messages are large. One message
/// always fits, however large. Like Artemis's default `consumer-window-size` of 1 MiB, but
/// roomier, since STOMP clients ack less eagerly than Artemis's core client.
const DEFAULT_WINDOW_BYTES: u64 = 8 * 1024 * 1024;

pub(super) fn parse_window(frame: &Frame, default_messages: u32) -> Result<Window, Failure> {
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
            bytes: Some(DEFAULT_WINDOW_BYTES),
        }),
    }
}
