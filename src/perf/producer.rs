//! Producers: encode SENDs in batches into one reused buffer and write each batch at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client::{Conn, StdConn};
use super::select;
use super::shared::Shared;
use super::tracker::{HEADER, Stamp};
use super::{MessageArgs, PerfError};
use crate::stomp::{Command, FrameEncoder, Version};

/// `priority` header values, so encoding one allocates nothing.
const PRIORITIES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Bytes of encoded SENDs gathered before a write.
const BATCH_BYTES: usize = 64 * 1024;

/// What one producer sends.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    /// Producer index (in the stamp).
    pub id: u32,
    /// Messages to send.
    pub count: u64,
    /// Destination header.
    pub destination: String,
    /// Size, persistence, receipt, property and priority options.
    pub message: MessageArgs,
    /// Headers every message carries as they are (e.g. `AMQ_SCHEDULED_DELAY`).
    pub extra: Vec<(String, String)>,
}

/// Encodes SENDs into a buffer: the reusable part of every producer.
struct SendEncoder {
    spec: ProducerSpec,
    body: Bytes,
    stamp: String,
    receipt: String,
}

impl SendEncoder {
    fn new(spec: ProducerSpec) -> Self {
        SendEncoder {
            body: Bytes::from(vec![b'x'; spec.message.size]),
            spec,
            stamp: String::with_capacity(48),
            receipt: String::with_capacity(24),
        }
    }

    /// Whether `seq` carries a receipt request: every k-th, and always the last.
    fn wants_receipt(&self, seq: u64) -> bool {
        let k = self.spec.message.receipt_every;
        seq + 1 == self.spec.count || (k > 0 && (seq + 1).is_multiple_of(k))
    }

    /// Encodes SEND `seq` stamped `sent_us`; returns its receipt id if it asks for one.
    fn encode(
        &mut self,
        out: &mut bytes::BytesMut,
        version: Version,
        run: u32,
        seq: u64,
        sent_us: u64,
    ) -> Option<&str> {
        let mut enc = FrameEncoder::begin(out, version, Command::Send);
        enc.header("destination", &self.spec.destination);
        if let Some(p) = self.spec.message.persistent {
            enc.header("persistent", if p { "true" } else { "false" });
        }
        for c in &self.spec.message.property_cycles {
            if let Some(v) =
                select::cycled(&c.values, (seq % c.values.len().max(1) as u64) as usize)
            {
                enc.header(&c.name, v);
            }
        }
        if let Some(p) = self
            .spec
            .message
            .priority_cycle
            .as_ref()
            .and_then(|c| c.at(seq))
        {
            enc.header(
                "priority",
                PRIORITIES.get(p as usize).copied().unwrap_or("4"),
            );
        }
        for (k, v) in &self.spec.extra {
            enc.header(k, v);
        }
        Stamp {
            run,
            producer: self.spec.id,
            seq,
            sent_us,
        }
        .write(&mut self.stamp);
        enc.header(HEADER, &self.stamp);
        let receipt = self.wants_receipt(seq);
        if receipt {
            use std::fmt::Write;
            self.receipt.clear();
            let _ = write!(self.receipt, "p{}-{}", self.spec.id, seq);
            enc.header("receipt", &self.receipt);
        }
        enc.finish(&self.body);
        receipt.then_some(self.receipt.as_str())
    }
}

/// Sends as fast as the broker takes them: batches of SENDs, each write waiting only
/// when a receipt was asked for. Disconnects at the end.
pub async fn run(mut conn: Conn, spec: ProducerSpec, shared: Arc<Shared>) -> Result<(), PerfError> {
    let count = spec.count;
    let mut enc = SendEncoder::new(spec);
    let mut seq = 0;
    while seq < count {
        let mut receipt = None;
        let first = seq;
        while seq < count && conn.out.len() < BATCH_BYTES {
            let r = enc.encode(
                &mut conn.out,
                conn.version,
                shared.run,
                seq,
                shared.now_us(),
            );
            seq += 1;
            if let Some(r) = r {
                receipt = Some(r.to_string());
                break;
            }
        }
        conn.flush().await?;
        shared.sent.fetch_add(seq - first, Ordering::Relaxed);
        if let Some(r) = receipt {
            conn.wait_receipt(&r, |_| {}).await?;
        }
    }
    conn.disconnect(|_| {}).await
}

/// Sends `spec.count` messages at `rate` per second on a dedicated OS thread (precise
/// sleeps), each stamped with its scheduled send time. When the thread falls behind it
/// sends the overdue messages at once, still stamped with their schedule, so the delay
/// shows in the latency (no coordinated omission).
pub fn run_paced(
    mut conn: StdConn,
    spec: ProducerSpec,
    rate: u64,
    start: Instant,
    shared: Arc<Shared>,
) -> Result<(), PerfError> {
    let count = spec.count;
    let interval_ns = 1_000_000_000u64 / rate.max(1);
    let start_us = start.saturating_duration_since(shared.epoch).as_micros() as u64;
    let mut enc = SendEncoder::new(spec);
    let mut seq = 0;
    while seq < count {
        let due_at = start + Duration::from_nanos(seq * interval_ns);
        let now = Instant::now();
        if due_at > now {
            std::thread::sleep(due_at - now);
        }
        // Everything due by now goes out in one write.
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        let due = (elapsed_ns / interval_ns + 1).min(count);
        let first = seq;
        let mut receipt = None;
        while seq < due.max(first + 1) {
            let sched_us = start_us + seq * interval_ns / 1000;
            if let Some(r) = enc.encode(&mut conn.out, conn.version, shared.run, seq, sched_us) {
                receipt = Some(r.to_string());
            }
            seq += 1;
            if conn.out.len() >= BATCH_BYTES {
                conn.flush()?;
            }
        }
        conn.flush()?;
        shared.sent.fetch_add(seq - first, Ordering::Relaxed);
        if let Some(r) = receipt {
            let written = Instant::now();
            conn.wait_receipt(&r)?;
            let waited = written.elapsed().as_micros() as u64;
            let mut h = shared.receipts.lock().unwrap_or_else(|e| e.into_inner());
            let _ = h.record(waited.max(1));
        }
    }
    Ok(())
}
