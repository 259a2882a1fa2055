//! SEND: mapping the destination, building the message, routing it (waiting for room when
//! its address is full), and tracking the journal writes its RECEIPT must wait for.

use super::large_body::Upload;
use super::{Failure, Session, map_destination};
use crate::broker::{
    Body, BrokerError, Capacity, Destination, LargeBody, MessageDraft, Stored, check_duplicate_id,
    now_millis,
};
use crate::stomp::{Command, Frame};
use bytestring::ByteString;
use std::sync::Arc;

/// Journal writes a connection may have outstanding before it stops reading: enough to fill
/// several group commits, bounded in count and in bytes so memory stays bounded.
const MAX_PENDING_WRITES: usize = 4096;
/// Bytes of message bodies a connection may have waiting for the journal.
const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// The destination of the previous SEND, mapped, for [`Session::send_destination`].
pub(super) struct LastDestination {
    text: ByteString,
    kind: Option<String>,
    dest: Destination,
}

/// Headers that steer the frame rather than describe the message; not kept as properties.
pub(super) fn is_transport_header(name: &str) -> bool {
    matches!(
        name,
        "receipt" | "transaction" | "content-length" | "destination"
    )
}

impl Session {
    /// Maps a frame's destination (with its routing-type header) for this acceptor. Returns
    /// the destination text as the client wrote it, shared with the frame, not copied.
    pub(super) fn destination(
        &mut self,
        frame: &Frame,
        type_header: &'static str,
    ) -> Result<(ByteString, Destination), Failure> {
        let text = frame.headers.get_shared("destination").ok_or_else(|| {
            Failure::new(format!(
                "{} frame has no 'destination' header",
                frame.command
            ))
        })?;
        if let Some(dest) = self.temporary(text)? {
            return Ok((text.clone(), dest));
        }
        let dest = map_destination(
            &self.ctx.acceptor,
            text,
            frame.get(type_header).map(|v| (type_header, v)),
        )
        .map_err(Failure::new)?;
        Ok((text.clone(), dest))
    }

    /// Like [`Session::destination`] for SEND, but remembers the last mapping: producers
    /// usually send to one destination, so its parsing and allocation happen once.
    fn send_destination(&mut self, frame: &Frame) -> Result<ByteString, Failure> {
        let text = frame.headers.get_shared("destination");
        let kind = frame.get("destination-type");
        if let (Some(text), Some(last)) = (text, &self.last_send)
            && last.text == *text
            && last.kind.as_deref() == kind
        {
            return Ok(text.clone());
        }
        let (text, dest) = self.destination(frame, "destination-type")?;
        self.last_send = Some(Box::new(LastDestination {
            text: text.clone(),
            kind: kind.map(str::to_string),
            dest,
        }));
        Ok(text)
    }

    /// Starts a SEND whose body is over `large-message-threshold`: the body goes to a file
    /// as it arrives. Only SEND may carry one; its destination is checked first, so a
    /// frame that is bound to be refused is refused before its body is written.
    pub(super) async fn begin_upload(&mut self, head: Frame) -> Result<Upload, Failure> {
        let store = Arc::clone(self.ctx.broker.large_store());
        if head.command != Command::Send {
            return Err(Failure::new(format!(
                "a {} frame may not carry a body of more than {} bytes; only SEND may (large-message-threshold)",
                head.command,
                store.threshold()
            )));
        }
        self.send_destination(&head)?;
        Upload::begin(store, head).await
    }

    pub(super) async fn send(
        &mut self,
        frame: Frame,
        large: Option<Arc<LargeBody>>,
    ) -> Result<(), Failure> {
        let text = self.send_destination(&frame)?;
        let Some(last) = self.last_send.take() else {
            return Err(Failure::new("SEND frame has no 'destination' header"));
        };
        let result = self.send_to(frame, large, text, &last.dest).await;
        self.last_send = Some(last);
        if result.is_ok() {
            self.info
                .messages_in
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn send_to(
        &mut self,
        frame: Frame,
        large: Option<Arc<LargeBody>>,
        text: ByteString,
        dest: &Destination,
    ) -> Result<(), Failure> {
        let tx_id = frame.get("transaction").map(ByteString::from);
        let mut draft = draft_from(frame, large, text, self.connection_id)?;
        self.rewrite_reply_to(&mut draft)?;
        if let Some(tx) = tx_id {
            let Some(held) = self.transactions.get(&tx).map(|t| t.sends.len()) else {
                return Err(Failure::new(format!("unknown transaction '{tx}'")));
            };
            if held >= self.ctx.session_limits.max_messages_per_transaction {
                return Err(Failure::new(format!(
                    "transaction '{tx}' already holds {held} messages, the limit (max-messages-per-transaction)"
                )));
            }
            // Refuse an unroutable or unauthorized send now, as Artemis does, not at COMMIT;
            // nothing is created until COMMIT, so an aborted transaction leaves no trace.
            self.ctx.broker.check_send(dest, &self.access)?;
            check_duplicate_id(&draft)?;
            let size = draft.size() as u64;
            let buffered: u64 = self.transactions.values().map(|t| t.bytes).sum();
            let max = self.ctx.session_limits.max_transaction_bytes;
            if buffered + size > max {
                return Err(Failure::new(format!(
                    "this connection's transactions would buffer {} bytes, more than the limit of {max} (max-transaction-bytes)",
                    buffered + size
                )));
            }
            // A full broker holds a buffering producer as it holds any other.
            if !self.wait_for_room(dest).await? {
                return Ok(());
            }
            let token = self.ctx.broker.memory().charge(size);
            if let Some(t) = self.transactions.get_mut(&tx) {
                t.sends.push((dest.clone(), draft));
                t.bytes += size;
                t.held.push(token);
            }
            return Ok(());
        }
        self.wait_for_disk(dest, draft.persistent).await?;
        if !self.wait_for_room(dest).await? {
            return Ok(());
        }
        // Only the write is kept across the wait, not the rest of what the send returned.
        let stored = self.ctx.broker.send_as(dest, draft, &self.access)?.stored;
        self.track(stored).await
    }

    /// Makes the next RECEIPT wait for everything the core has handed to the journal so far,
    /// such as the record of a durable subscription it just created or deleted.
    pub(super) async fn await_core_writes(&mut self) -> Result<(), Failure> {
        let barrier = self.ctx.broker.stored_barrier();
        self.track(barrier).await
    }

    /// Adds a write for the next RECEIPT to wait on; waits only when too many writes (or
    /// bytes) are outstanding.
    pub(super) async fn track(&mut self, write: Stored) -> Result<(), Failure> {
        if write.is_pending() {
            self.pending_bytes += write.bytes();
            self.pending_writes.push_back(write);
        }
        if self.too_many_pending() {
            // Boxed: only a producer far ahead of the journal waits here, and inlined the
            // wait would be part of every connection task's state for its whole life.
            Box::pin(self.drain_pending_to_limit()).await?;
        }
        Ok(())
    }

    fn too_many_pending(&self) -> bool {
        self.pending_writes.len() > MAX_PENDING_WRITES || self.pending_bytes > MAX_PENDING_BYTES
    }

    /// Waits for the oldest outstanding writes until the rest are within the limits.
    async fn drain_pending_to_limit(&mut self) -> Result<(), Failure> {
        while self.too_many_pending() {
            let Some(write) = self.pending_writes.pop_front() else {
                break;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(write.bytes());
            write.await.map_err(journal_failure)?;
        }
        Ok(())
    }

    /// Waits while `dest`'s address is full (BLOCK): the connection stops reading meanwhile,
    /// which slows the producer by TCP back-pressure. False when the message is to be dropped
    /// (policy DROP). Nothing has been routed yet, so giving up the wait is always safe.
    pub(super) async fn wait_for_room(&self, dest: &Destination) -> Result<bool, Failure> {
        loop {
            match self.ctx.broker.capacity(dest) {
                Capacity::Available => return Ok(true),
                // Boxed, as the rare waits are (see `track`).
                Capacity::Blocked(usage) => Box::pin(usage.wait_for_space()).await,
                Capacity::Refused => {
                    return Err(BrokerError::AddressFull(dest.address.clone()).into());
                }
                Capacity::Dropped => return Ok(false),
            }
        }
    }
}

pub(super) fn journal_failure(e: BrokerError) -> Failure {
    tracing::error!(error = %e, "journal write failed");
    Failure::new(format!("the broker could not store the message: {e}"))
}

/// Milliseconds in a header, or an ERROR naming the header and what it must be.
fn millis_header(value: Option<&str>, name: &str, meaning: &str) -> Result<Option<u64>, Failure> {
    value
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| Failure::new(format!("header '{name}' must be {meaning}, not '{v}'")))
        })
        .transpose()
}

/// The first value of each header a SEND's delivery depends on, found in one pass over the
/// frame's headers instead of one search per name.
#[derive(Default)]
struct SendOptions<'a> {
    persistent: Option<&'a str>,
    priority: Option<&'a str>,
    expires: Option<&'a str>,
    expiration: Option<&'a str>,
    scheduled_time: Option<&'a str>,
    scheduled_delay: Option<&'a str>,
}

impl<'a> SendOptions<'a> {
    fn of(frame: &'a Frame) -> Self {
        let mut o = SendOptions::default();
        for (k, v) in frame.headers.iter() {
            let slot = match k {
                "persistent" => &mut o.persistent,
                "priority" => &mut o.priority,
                "expires" => &mut o.expires,
                "expiration" => &mut o.expiration,
                "AMQ_SCHEDULED_TIME" => &mut o.scheduled_time,
                "AMQ_SCHEDULED_DELAY" => &mut o.scheduled_delay,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v);
            }
        }
        o
    }
}

/// Builds the core's draft of a SEND: persistence, priority, expiry (`expires`, absolute, or
/// RabbitMQ's relative `expiration`), scheduled delivery (`AMQ_SCHEDULED_TIME`, absolute, or
/// `AMQ_SCHEDULED_DELAY`, relative, as Artemis and ActiveMQ) and every other header. A
/// `large` body (already in its file) replaces the frame's own.
pub(super) fn draft_from(
    frame: Frame,
    large: Option<Arc<LargeBody>>,
    destination: ByteString,
    origin: u64,
) -> Result<MessageDraft, Failure> {
    let o = SendOptions::of(&frame);
    let persistent = match o.persistent {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(Failure::new(format!(
                "header 'persistent' must be true or false, not '{v}'"
            )));
        }
    };
    let priority = match o.priority {
        None => 4,
        Some(v) => v
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 9)
            .ok_or_else(|| Failure::new(format!("header 'priority' must be 0 to 9, not '{v}'")))?,
    };
    let absolute = "milliseconds since the epoch";
    let relative = "a number of milliseconds";
    let expires = match (
        millis_header(o.expires, "expires", absolute)?,
        millis_header(o.expiration, "expiration", relative)?,
    ) {
        (Some(at), _) => at,
        (None, Some(ttl)) => now_millis().saturating_add(ttl).max(1),
        (None, None) => 0,
    };
    let deliver_at = match (
        millis_header(o.scheduled_time, "AMQ_SCHEDULED_TIME", absolute)?,
        millis_header(o.scheduled_delay, "AMQ_SCHEDULED_DELAY", relative)?,
    ) {
        (Some(at), _) => at,
        (None, Some(delay)) if delay > 0 => now_millis().saturating_add(delay),
        _ => 0,
    };
    let properties = frame
        .headers
        .into_entries()
        .into_iter()
        .filter(|(k, _)| !is_transport_header(k))
        .collect();
    let mut draft = MessageDraft {
        destination,
        properties,
        body: match large {
            Some(file) => Body::File(file),
            None => Body::Inline(frame.body),
        },
        persistent,
        priority,
        expires,
        deliver_at,
        origin: Some(origin),
    };
    draft.compact();
    Ok(draft)
}
