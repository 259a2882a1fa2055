//! A connection's temporary destinations (`/temp-queue/NAME`, `/temp-topic/NAME`, as in
//! RabbitMQ and ActiveMQ): the same NAME on one connection always means the same generated
//! destination, whether it first appears in a SUBSCRIBE, a SEND's destination or a SEND's
//! `reply-to`, so a requester can send with `reply-to:/temp-queue/r` and subscribe to
//! `/temp-queue/r` in either order. `reply-to` is rewritten to the generated name with this
//! acceptor's prefix (`/queue/…`, `/topic/…`), which any connection can send to.
//!
//! A connection holds at most `max-subscriptions-per-connection` of them (each costs about
//! what a subscription's queue does), and they go when it closes.

use std::collections::HashMap;

use bytestring::ByteString;

use super::destination::temporary_destination;
use super::{Failure, Session};
use crate::broker::{Destination, MessageDraft, TemporaryDestination, TemporaryKind};

/// The temporary destinations of one connection, by the client's kind and NAME.
#[derive(Default)]
pub(super) struct Temporaries {
    by_label: HashMap<(TemporaryKind, String), TemporaryDestination>,
}

impl Temporaries {
    /// Deletes every one of them (the connection is closing).
    pub(super) fn clear(&mut self) {
        self.by_label.clear();
    }
}

impl Session {
    /// The core destination of a `/temp-queue/NAME` or `/temp-topic/NAME`, created on first
    /// use; `None` when `text` is neither.
    pub(super) fn temporary(&mut self, text: &str) -> Result<Option<Destination>, Failure> {
        let Some(parsed) = temporary_destination(text) else {
            return Ok(None);
        };
        let (kind, label) = parsed.map_err(Failure::new)?;
        let name = self.temporary_name(kind, label)?;
        Ok(Some(Destination {
            address: name.to_string(),
            queue: None,
            routing: Some(kind.routing()),
        }))
    }

    fn temporary_name(&mut self, kind: TemporaryKind, label: &str) -> Result<ByteString, Failure> {
        let key = (kind, label.to_string());
        if let Some(t) = self.temporaries.by_label.get(&key) {
            return Ok(ByteString::from(&*t.name));
        }
        let limit = self.ctx.session_limits.max_subscriptions_per_connection;
        let held = self.temporaries.by_label.len();
        if held >= limit {
            return Err(Failure::new(format!(
                "too many temporary destinations: this connection already has {held}, the limit (max-subscriptions-per-connection)"
            )));
        }
        let created =
            self.ctx
                .broker
                .create_temporary(kind, label, self.connection_id, &self.access)?;
        let name = ByteString::from(&*created.name);
        self.temporaries.by_label.insert(key, created);
        Ok(name)
    }

    /// Rewrites a `reply-to` naming a temporary destination to the generated name, with this
    /// acceptor's prefix for its routing type, creating it if needed: the responder (and the
    /// MESSAGE it receives) sees a destination it can send to.
    pub(super) fn rewrite_reply_to(&mut self, draft: &mut MessageDraft) -> Result<(), Failure> {
        let Some(i) = draft
            .properties
            .iter()
            .position(|(k, _)| &**k == "reply-to")
        else {
            return Ok(());
        };
        let Some(parsed) = temporary_destination(&draft.properties[i].1) else {
            return Ok(());
        };
        let (kind, label) = parsed.map_err(|e| Failure::new(format!("header 'reply-to': {e}")))?;
        let name = self.temporary_name(kind, label)?;
        let prefix = match kind {
            TemporaryKind::Queue => &self.ctx.acceptor.anycast_prefix,
            TemporaryKind::Topic => &self.ctx.acceptor.multicast_prefix,
        };
        draft.properties[i].1 = ByteString::from(format!("{prefix}{name}"));
        Ok(())
    }
}
