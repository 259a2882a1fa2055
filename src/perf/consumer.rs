//! Consumers: read MESSAGEs, record each in the exactly-once tracker and the latency
//! histogram, and acknowledge as asked, with ACKs written in batches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;

use super::client::Conn;
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
    last: Option<Frame>,
}

impl State {
    fn on_frame(&mut self, f: Frame, out: &mut bytes::BytesMut, version: Version) {
        if f.command != Command::Message {
            return;
        }
        let now = self.shared.now_us();
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        let stamp = f.get(HEADER).and_then(Stamp::parse);
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
            AckArg::ClientIndividual => encode_ack(&f, out, version),
            AckArg::Client => {
                self.unacked += 1;
                if self.unacked >= self.ack.every.max(1) {
                    encode_ack(&f, out, version);
                    self.unacked = 0;
                    self.last = None;
                } else {
                    self.last = Some(f);
                }
            }
        }
    }

    /// Cumulative ACK of the last unacknowledged message (client mode).
    fn ack_outstanding(&mut self, out: &mut bytes::BytesMut, version: Version) {
        if let Some(f) = self.last.take() {
            encode_ack(&f, out, version);
        }
        self.unacked = 0;
    }
}

/// ACK for one MESSAGE: the 1.2 `id` from its `ack` header, else (1.0/1.1) its
/// `message-id` and `subscription`.
fn encode_ack(f: &Frame, out: &mut bytes::BytesMut, version: Version) {
    let mut enc = FrameEncoder::begin(out, version, Command::Ack);
    match (version, f.get("ack")) {
        (Version::V1_2, Some(id)) => enc.header("id", id),
        _ => {
            enc.header("message-id", f.get("message-id").unwrap_or(""));
            if let Some(s) = f.get("subscription") {
                enc.header("subscription", s);
            }
        }
    }
    enc.finish(b"");
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
    };
    let version = conn.version;
    loop {
        while let Some(f) = conn.buffered_frame()? {
            st.on_frame(f, &mut conn.out, version);
        }
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
    let mut out = bytes::BytesMut::new();
    // Messages arriving while we say goodbye still count (they may be duplicates).
    let result = conn.disconnect(|f| st.on_frame(f, &mut out, version)).await;
    result.map(|()| st.hist)
}
