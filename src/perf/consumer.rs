//! Consumers: read MESSAGEs, record each in the exactly-once tracker and the latency
//! histogram, and acknowledge as asked, with ACKs written in batches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;

use bytes::BytesMut;

use super::client::{Arrived, Conn};
use super::inbound::{Inbound, Kind, Span};
use super::report::histogram;
use super::select::Expect;
use super::shared::Shared;
use super::tracker::{HEADER, Seen, Stamp};
use super::{AckArg, PerfError};
use crate::stomp::{Command, Frame, FrameEncoder, Version};

/// With `ack:client`, outstanding messages are acknowledged after this long without new
/// ones, so the tail of a run is acknowledged too.
const IDLE_ACK: Duration = Duration::from_millis(20);

/// How one consumer acknowledges.
#[derive(Debug, Clone, Copy)]
pub struct AckPolicy {
    /// The SUBSCRIBE ack mode.
    pub mode: AckArg,
    /// With `client`: acknowledge cumulatively every k-th message.
    pub every: u64,
}

struct State {
    shared: Arc<Shared>,
    group: usize,
    /// What this consumer's own selector picks (narrower than its group's in a queue whose
    /// consumers have different selectors).
    own: Expect,
    ack: AckPolicy,
    hist: Histogram<u64>,
    unacked: u64,
    /// With `ack:client`: what the cumulative ACK of the last unacknowledged message names
    /// (copied out of the read buffer, into storage reused from message to message).
    last: Option<AckIds>,
    spare: AckIds,
    /// MESSAGEs read since the shared counter was last updated: it is added to once per
    /// read, not per message, as the consumers of a fan-out would otherwise contend on it.
    received: u64,
}

/// The headers an ACK of one MESSAGE names, as they were on the wire.
#[derive(Default)]
struct AckIds {
    escaped: bool,
    ack: Option<Vec<u8>>,
    message_id: Vec<u8>,
    subscription: Option<Vec<u8>>,
}

impl AckIds {
    fn fill(&mut self, m: &Arrival<'_>) {
        fn set(slot: &mut Option<Vec<u8>>, v: Option<&[u8]>) {
            match (slot.as_mut(), v) {
                (Some(s), Some(v)) => {
                    s.clear();
                    s.extend_from_slice(v);
                }
                (None, Some(v)) => *slot = Some(v.to_vec()),
                (_, None) => *slot = None,
            }
        }
        self.escaped = m.escaped;
        set(&mut self.ack, m.ack);
        self.message_id.clear();
        self.message_id
            .extend_from_slice(m.message_id.unwrap_or_default());
        set(&mut self.subscription, m.subscription);
    }

    fn arrival(&self) -> Arrival<'_> {
        Arrival {
            escaped: self.escaped,
            stamp: None,
            ack: self.ack.as_deref(),
            message_id: Some(&self.message_id),
            subscription: self.subscription.as_deref(),
        }
    }
}

/// What the consumer reads of one MESSAGE: raw header values, escaped as on the wire.
struct Arrival<'a> {
    /// Whether the values are escaped as on the wire (scanned) or plain (decoded).
    escaped: bool,
    stamp: Option<&'a [u8]>,
    ack: Option<&'a [u8]>,
    message_id: Option<&'a [u8]>,
    subscription: Option<&'a [u8]>,
}

impl<'a> Arrival<'a> {
    fn scanned(f: &Inbound, buf: &'a [u8]) -> Self {
        let of = |s: Option<Span>| s.map(|s| s.of(buf));
        Arrival {
            escaped: true,
            stamp: of(f.stamp),
            ack: of(f.ack),
            message_id: of(f.message_id),
            subscription: of(f.subscription),
        }
    }

    /// A MESSAGE decoded in full (one that arrives while disconnecting): its values are
    /// unescaped, so an ACK escapes them again.
    fn decoded(f: &'a Frame) -> Self {
        Arrival {
            escaped: false,
            stamp: f.get(HEADER).map(str::as_bytes),
            ack: f.get("ack").map(str::as_bytes),
            message_id: f.get("message-id").map(str::as_bytes),
            subscription: f.get("subscription").map(str::as_bytes),
        }
    }
}

impl State {
    fn on_message(&mut self, m: &Arrival<'_>, now: u64, out: &mut BytesMut, version: Version) {
        self.received += 1;
        let stamp = m.stamp.and_then(Stamp::parse_bytes);
        if let Some(tracker) = self.shared.trackers.get(self.group) {
            let seen = tracker.record(stamp);
            if matches!(seen, Seen::First | Seen::Duplicate)
                && stamp.is_some_and(|s| !self.own.wants(s.seq))
            {
                tracker.note_excluded();
            }
            if seen == Seen::First {
                if let Some(s) = stamp {
                    self.hist
                        .saturating_record(now.saturating_sub(s.sent_us).max(1));
                }
                self.shared.check_complete(self.group);
            }
        }
        match self.ack.mode {
            AckArg::Auto => {}
            AckArg::ClientIndividual => encode_ack(m, out, version),
            AckArg::Client => {
                self.unacked += 1;
                if self.unacked >= self.ack.every.max(1) {
                    encode_ack(m, out, version);
                    self.unacked = 0;
                    if let Some(old) = self.last.take() {
                        self.spare = old;
                    }
                } else {
                    let mut ids = self
                        .last
                        .take()
                        .unwrap_or_else(|| std::mem::take(&mut self.spare));
                    ids.fill(m);
                    self.last = Some(ids);
                }
            }
        }
    }

    /// Adds what was read since the last call to the run's shared counter.
    fn publish_received(&mut self) {
        if self.received > 0 {
            self.shared
                .received
                .fetch_add(self.received, Ordering::Relaxed);
            self.received = 0;
        }
    }

    /// Cumulative ACK of the last unacknowledged message (client mode).
    fn ack_outstanding(&mut self, out: &mut BytesMut, version: Version) {
        if let Some(ids) = self.last.take() {
            encode_ack(&ids.arrival(), out, version);
            self.spare = ids;
        }
        self.unacked = 0;
    }
}

/// ACK for one MESSAGE: the 1.2 `id` from its `ack` header, else (1.0/1.1) its
/// `message-id` and `subscription`. Scanned values are written as they arrived, already
/// escaped as this connection's version escapes; decoded ones are escaped again.
fn encode_ack(m: &Arrival<'_>, out: &mut BytesMut, version: Version) {
    if !m.escaped {
        fn text(v: Option<&[u8]>) -> &str {
            std::str::from_utf8(v.unwrap_or_default()).unwrap_or("")
        }
        let mut enc = FrameEncoder::begin(out, version, Command::Ack);
        match (version, m.ack) {
            (Version::V1_2, Some(id)) => enc.header("id", text(Some(id))),
            _ => {
                enc.header("message-id", text(m.message_id));
                if let Some(s) = m.subscription {
                    enc.header("subscription", text(Some(s)));
                }
            }
        }
        enc.finish(b"");
        return;
    }
    out.extend_from_slice(b"ACK\n");
    match (version, m.ack) {
        (Version::V1_2, Some(id)) => raw_header(out, b"id", id),
        _ => {
            raw_header(out, b"message-id", m.message_id.unwrap_or_default());
            if let Some(s) = m.subscription {
                raw_header(out, b"subscription", s);
            }
        }
    }
    out.extend_from_slice(b"\n\0");
}

fn raw_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b":");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\n");
}

/// Handles what is buffered: MESSAGEs scanned in place, anything else decoded.
fn drain(conn: &mut Conn, st: &mut State, now: u64) -> Result<(), PerfError> {
    let version = conn.version;
    while let Some(next) = conn.scan_buffered()? {
        match next {
            Arrived::Scanned(f) => {
                if f.kind == Kind::Message {
                    let (read, out) = conn.read_and_out();
                    st.on_message(&Arrival::scanned(&f, read), now, out, version);
                }
                conn.consume(f.len);
            }
            Arrived::Frame(f) if f.command == Command::Message => {
                st.on_message(&Arrival::decoded(&f), now, &mut conn.out, version);
            }
            Arrived::Frame(_) => {}
        }
    }
    st.publish_received();
    Ok(())
}

/// Consumes on an already subscribed connection until `stop` turns true, then acknowledges
/// what is outstanding, disconnects, and returns its latency histogram.
pub async fn run(
    mut conn: Conn,
    shared: Arc<Shared>,
    group: usize,
    own: Expect,
    ack: AckPolicy,
    mut stop: watch::Receiver<bool>,
) -> Result<Histogram<u64>, PerfError> {
    let mut st = State {
        shared,
        group,
        own,
        ack,
        hist: histogram(),
        unacked: 0,
        last: None,
        spare: AckIds::default(),
        received: 0,
    };
    let version = conn.version;
    loop {
        // One clock read per socket read: that is when these messages arrived.
        let now = st.shared.now_us();
        drain(&mut conn, &mut st, now)?;
        conn.flush().await?;
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            r = conn.fill() => r?,
            _ = tokio::time::sleep(IDLE_ACK), if st.unacked > 0 => {
                st.ack_outstanding(&mut conn.out, version);
            }
        }
    }
    st.ack_outstanding(&mut conn.out, version);
    conn.flush().await?;
    let mut out = BytesMut::new();
    // Messages arriving while we say goodbye still count (they may be duplicates).
    let result = conn
        .disconnect(|f| {
            if f.command == Command::Message {
                let now = st.shared.now_us();
                st.on_message(&Arrival::decoded(&f), now, &mut out, version);
            }
        })
        .await;
    st.publish_received();
    result.map(|()| st.hist)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::inbound::{Scanned, scan};

    #[test]
    fn an_ack_names_the_value_the_message_carried_escaped_or_not() {
        let buf = b"MESSAGE\nmessage-id:ID\\cx\\c1\nsubscription:s\\\\0\nack:a\\cb\n\n\0";
        let Ok(Scanned::Frame(f)) = scan(buf) else {
            panic!("not scanned");
        };
        let scanned = Arrival::scanned(&f, buf);
        let mut out = BytesMut::new();
        encode_ack(&scanned, &mut out, Version::V1_2);
        assert_eq!(&out[..], b"ACK\nid:a\\cb\n\n\0");
        out.clear();
        encode_ack(&scanned, &mut out, Version::V1_1);
        assert_eq!(
            &out[..],
            b"ACK\nmessage-id:ID\\cx\\c1\nsubscription:s\\\\0\n\n\0"
        );
        // A decoded MESSAGE holds the unescaped values: the ACK escapes them again.
        let decoded = Arrival {
            escaped: false,
            stamp: None,
            ack: Some(b"a:b"),
            message_id: Some(b"ID:x:1"),
            subscription: Some(b"s\\0"),
        };
        out.clear();
        encode_ack(&decoded, &mut out, Version::V1_2);
        assert_eq!(&out[..], b"ACK\nid:a\\cb\n\n\0");
        out.clear();
        encode_ack(&decoded, &mut out, Version::V1_1);
        assert_eq!(
            &out[..],
            b"ACK\nmessage-id:ID\\cx\\c1\nsubscription:s\\\\0\n\n\0"
        );
    }
}
