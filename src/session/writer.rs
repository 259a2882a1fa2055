//! The writer task of one connection: drains the outbound channel in batches, encodes frames
//! into one reused buffer (large bodies go out as their own shared chunk, never copied), writes
//! the batch with one vectored write, acks `auto` deliveries once written, and sends
//! heart-beats when the connection has been quiet. A barrier is answered once what preceded
//! it is written, which is how UNSUBSCRIBE waits for its subscription's deliveries. A body
//! kept in a file (a large message) is streamed: the batch so far is written, then the file
//! in bounded chunks, each written before the next is read (`large_body.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep_until};

use super::io::ByteSink;
use super::large_body;
use super::outbound::{AckMode, Outbound, SubscriptionContext};
use super::registry::ConnectionInfo;
use crate::broker::{Body, Delivery, LargeBody, Queue};
use crate::stomp::{Command, FrameEncoder, Version, encode_frame};
use std::sync::atomic::Ordering;

/// Bodies at least this large are written from their shared buffer instead of copied.
const ZERO_COPY_BODY: usize = 8 * 1024;
/// Stop gathering a batch past this many buffered bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// The write buffer a batch starts with.
const FIRST_ROOM: usize = 4 * 1024;

/// Why the writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterEnd {
    /// It wrote an ERROR or was told to close, and closed the write side.
    Closed,
    /// The socket failed.
    Failed,
    /// A write timed out: the peer stopped reading (a slow consumer).
    Stalled,
    /// The session dropped the channel.
    ChannelClosed,
}

/// `auto` deliveries written in a batch, by (queue, consumer): acked once on the socket. A
/// list whose last few entries are searched, not a map: a batch nearly always holds one or
/// two subscriptions' deliveries, and hashing a key per MESSAGE cost more than the search. A
/// key may appear twice (a batch interleaving many subscriptions); each entry is acked alone.
type AutoAcks = Vec<(usize, u64, Arc<Queue>, Arc<SubscriptionContext>, Vec<u64>)>;

struct Batch {
    buf: BytesMut,
    chunks: Vec<Bytes>,
    auto_acks: AutoAcks,
    close_after: bool,
    /// Bytes and MESSAGE frames written since the figures were last counted.
    written: u64,
    messages: u64,
}

impl Batch {
    fn seal(&mut self) {
        if !self.buf.is_empty() {
            self.chunks.push(self.buf.split().freeze());
        }
    }
}

/// Runs until the channel closes, an ERROR/Close was written, or the socket fails. With
/// `frame_eol` every frame ends with NUL and a newline (the acceptor's `frame-eol`): the spec
/// allows EOLs after the NUL, and clients that read one byte past it need the newline there.
///
/// `write_timeout` bounds how long one batch may take to go out (plus a second per MiB in it):
/// a peer that stops reading stalls the write, and the writer then fails so the connection is
/// closed and what its subscriptions held goes to other consumers.
pub async fn run<W: ByteSink>(
    mut sink: W,
    mut rx: UnboundedReceiver<Outbound>,
    frame_eol: bool,
    write_timeout: Option<Duration>,
    info: Arc<ConnectionInfo>,
) -> WriterEnd {
    let mut version = Version::V1_2;
    let mut heartbeat: Option<Duration> = None;
    let mut next_beat = Instant::now();
    let mut scratch = String::with_capacity(48);
    // Bytes the last batch wrote: whether this connection carries real traffic.
    let mut last_batch = 0usize;
    let mut batch = Batch {
        buf: BytesMut::new(),
        chunks: Vec::new(),
        auto_acks: Vec::new(),
        close_after: false,
        written: 0,
        messages: 0,
    };
    loop {
        // About to wait for work: a connection that only ever wrote small batches (a quiet
        // subscriber's CONNECTED and RECEIPT) holds no write buffer while it waits; the next
        // batch allocates it again. One that has carried real batches keeps the room it grew
        // to: regrowing it by doubling for every batch of a busy consumer cost a copy of the
        // batch per doubling.
        if batch.buf.is_empty()
            && batch.buf.capacity() > 0
            && last_batch <= FIRST_ROOM
            && rx.is_empty()
        {
            batch.buf = BytesMut::new();
        }
        let first = tokio::select! {
            biased;
            item = rx.recv() => item,
            _ = sleep_until(next_beat), if heartbeat.is_some() => {
                let beat = [Bytes::from_static(b"\n")];
                if let Err(e) = write_bounded(&mut sink, &beat, write_timeout).await {
                    return failed(&e);
                }
                next_beat = Instant::now() + heartbeat.unwrap_or_default();
                continue;
            }
        };
        let Some(first) = first else {
            return WriterEnd::ChannelClosed;
        };
        if batch.buf.capacity() == 0 {
            batch.buf.reserve(FIRST_ROOM);
        }
        let mut permits = Vec::new();
        let mut barriers = Vec::new();
        let mut item = Some(first);
        while let Some(it) = item.take() {
            match it {
                Outbound::Frame(frame, permit) => {
                    encode_frame(&frame, version, &mut batch.buf);
                    end_frame(&mut batch.buf, frame_eol);
                    permits.push(permit);
                }
                Outbound::FileFrame(frame, file, permit) => {
                    large_body::encode_head(&frame, file.len(), version, &mut batch.buf);
                    if let Err(e) =
                        Box::pin(stream(&mut sink, &mut batch, &file, write_timeout)).await
                    {
                        return failed(&e);
                    }
                    end_frame(&mut batch.buf, frame_eol);
                    permits.push(permit);
                }
                Outbound::Message(delivery, sub) => {
                    let size = delivery.message.wire_size() as u64;
                    sub.connection
                        .pending_bytes
                        .fetch_sub(size, Ordering::Relaxed);
                    sub.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    batch.messages += 1;
                    if let Some(file) = encode_message(&mut batch, &delivery, &sub, &mut scratch)
                        && let Err(e) =
                            Box::pin(stream(&mut sink, &mut batch, &file, write_timeout)).await
                    {
                        return failed(&e);
                    }
                    end_frame(&mut batch.buf, frame_eol);
                    if sub.ack == AckMode::Auto {
                        let queue = Arc::as_ptr(&delivery.queue) as usize;
                        let consumer = delivery.consumer;
                        match batch
                            .auto_acks
                            .iter_mut()
                            .rev()
                            .take(8)
                            .find(|a| a.0 == queue && a.1 == consumer)
                        {
                            Some(a) => a.4.push(delivery.tag),
                            None => batch.auto_acks.push((
                                queue,
                                consumer,
                                Arc::clone(&delivery.queue),
                                sub,
                                vec![delivery.tag],
                            )),
                        }
                    }
                }
                Outbound::Error(frame) => {
                    encode_frame(&frame, version, &mut batch.buf);
                    end_frame(&mut batch.buf, frame_eol);
                    batch.close_after = true;
                }
                Outbound::Close => batch.close_after = true,
                Outbound::HeartBeat(every) => {
                    heartbeat = (!every.is_zero()).then_some(every);
                }
                Outbound::Version(v) => version = v,
                Outbound::Barrier(done) => barriers.push(done),
            }
            if batch.close_after || batch.buf.len() + chunk_bytes(&batch.chunks) >= BATCH_BYTES {
                break;
            }
            item = rx.try_recv().ok();
        }
        batch.seal();
        if !batch.chunks.is_empty() {
            if let Err(e) = write_bounded(&mut sink, &batch.chunks, write_timeout).await {
                return failed(&e);
            }
            last_batch = chunk_bytes(&batch.chunks);
            batch.written += last_batch as u64;
            batch.chunks.clear();
            if let Some(every) = heartbeat {
                next_beat = Instant::now() + every;
            }
        }
        drop(permits);
        let now = crate::broker::now_millis();
        info.wrote(batch.written, batch.messages, now);
        batch.written = 0;
        batch.messages = 0;
        // `auto` deliveries count as consumed only now that they are on the socket.
        for (_, consumer, queue, sub, tags) in batch.auto_acks.drain(..) {
            queue.ack_written(consumer, &tags);
            sub.stats
                .acked
                .fetch_add(tags.len() as u64, Ordering::Relaxed);
            sub.stats.last_delivered_at.store(now, Ordering::Relaxed);
        }
        for done in barriers {
            let _ = done.send(());
        }
        if batch.close_after {
            let _ = sink.shutdown().await;
            return WriterEnd::Closed;
        }
    }
}

/// Writes what the batch holds (a frame's head last), then the file's bytes, and leaves the
/// frame's NUL in the batch (callers box it: large bodies are rare, and inlined its state
/// would add to every connection's writer task): the file is read in bounded chunks, each written before the
/// next is read, so a body of any size costs one chunk of memory.
async fn stream<W: ByteSink>(
    sink: &mut W,
    batch: &mut Batch,
    file: &LargeBody,
    write_timeout: Option<Duration>,
) -> std::io::Result<()> {
    batch.seal();
    write_bounded(sink, &batch.chunks, write_timeout).await?;
    batch.written += chunk_bytes(&batch.chunks) as u64;
    batch.chunks.clear();
    let mut reader = large_body::Reader::open(file).await?;
    while let Some(chunk) = reader.next().await? {
        write_bounded(sink, std::slice::from_ref(&chunk), write_timeout).await?;
        batch.written += chunk.len() as u64;
    }
    batch.buf.extend_from_slice(b"\0");
    Ok(())
}

/// How a failed write ends the writer: a write that timed out means the peer stopped reading.
fn failed(e: &std::io::Error) -> WriterEnd {
    if e.kind() == std::io::ErrorKind::TimedOut {
        WriterEnd::Stalled
    } else {
        WriterEnd::Failed
    }
}

/// Writes the optional EOL after a frame's NUL.
fn end_frame(buf: &mut BytesMut, frame_eol: bool) {
    if frame_eol {
        buf.extend_from_slice(b"\n");
    }
}

/// Writes a batch, giving up after `limit` plus a second per MiB of the batch.
async fn write_bounded<W: ByteSink>(
    sink: &mut W,
    chunks: &[Bytes],
    limit: Option<Duration>,
) -> std::io::Result<()> {
    let Some(limit) = limit else {
        return sink.write_chunks(chunks).await;
    };
    let allowance = Duration::from_secs((chunk_bytes(chunks) >> 20) as u64);
    match tokio::time::timeout(limit + allowance, sink.write_chunks(chunks)).await {
        Ok(done) => done,
        Err(_) => {
            tracing::debug!(?limit, "write stalled: the peer is not reading");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

fn chunk_bytes(chunks: &[Bytes]) -> usize {
    chunks.iter().map(|c| c.len()).sum()
}

/// Headers the broker writes itself, so a producer's copy of them is not repeated.
pub(super) fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "destination"
            | "message-id"
            | "subscription"
            | "ack"
            | "content-length"
            | "redelivered"
            | "redelivery-count"
            | "JMSXGroupFirstForConsumer"
    )
}

/// Encodes a MESSAGE into the batch; for a body in a file, only its head, returning the
/// file for the caller to stream. The lines that differ per copy (subscription, ack,
/// redelivery) come first, then the block every copy shares ([`shared_headers`]): a message
/// routed to several queues has that block encoded once and copied into each frame.
fn encode_message(
    batch: &mut Batch,
    d: &Delivery,
    sub: &SubscriptionContext,
    scratch: &mut String,
) -> Option<Arc<LargeBody>> {
    let mut num = itoa::Buffer::new();
    let m = &d.message;
    let mut enc = FrameEncoder::begin(&mut batch.buf, sub.version, Command::Message);
    enc.encoded_lines(&sub.subscription_line);
    if sub.ack != AckMode::Auto {
        scratch.clear();
        scratch.push_str(num.format(d.consumer));
        scratch.push('-');
        scratch.push_str(num.format(d.tag));
        enc.plain_header("ack", scratch);
    }
    // Always present, so a consumer can tell a first delivery from a redelivery whatever
    // broker it learnt STOMP on (RabbitMQ sends `redelivered`, Artemis a count).
    let redeliveries = d.delivery_count.saturating_sub(1);
    if redeliveries == 0 {
        // The first delivery, nearly every MESSAGE: one copy of both lines.
        enc.plain_lines(b"redelivered:false\nredelivery-count:0\n");
    } else {
        enc.plain_header("redelivered", "true");
        enc.plain_header("redelivery-count", num.format(redeliveries));
    }
    if d.group_first {
        enc.plain_header("JMSXGroupFirstForConsumer", "true");
    }
    match (&m.encoded, d.stream_offset()) {
        // A stream's copy carries its own offset and drops a producer's: not the shared block.
        (_, Some(offset)) => {
            enc.plain_header("x-stream-offset", num.format(offset));
            shared_headers(&mut enc, m, true);
        }
        (Some(cache), None) => {
            let dialect = sub.version as u8;
            let (made_in, block) = cache.get_or_init(|| {
                let mut out = BytesMut::new();
                shared_headers(
                    &mut FrameEncoder::lines(&mut out, sub.version, Command::Message),
                    m,
                    false,
                );
                (dialect, out.freeze())
            });
            if *made_in == dialect {
                enc.encoded_lines(block);
            } else {
                shared_headers(&mut enc, m, false);
            }
        }
        (None, None) => shared_headers(&mut enc, m, false),
    }
    match &m.body {
        Body::File(file) => {
            enc.finish_headers(m.body.len());
            return Some(Arc::clone(file));
        }
        Body::Inline(body) if body.len() >= ZERO_COPY_BODY => {
            enc.finish_headers(body.len());
            batch.seal();
            batch.chunks.push(body.clone());
            batch.buf.extend_from_slice(b"\0");
        }
        Body::Inline(body) => enc.finish(body),
    }
    None
}

/// The header lines every copy of `m` has: destination, message-id, the producer's headers,
/// timestamp and persistence. `in_stream` drops a producer's own `x-stream-offset`, which
/// would contradict the stream's.
fn shared_headers(enc: &mut FrameEncoder<'_>, m: &crate::broker::Message, in_stream: bool) {
    let mut num = itoa::Buffer::new();
    enc.header("destination", &m.destination);
    enc.plain_header("message-id", num.format(m.id));
    let mut has_timestamp = false;
    let mut has_persistent = false;
    for (k, v) in &m.properties {
        if is_reserved(k) || (in_stream && &**k == "x-stream-offset") {
            continue;
        }
        has_timestamp |= &**k == "timestamp";
        has_persistent |= &**k == "persistent";
        enc.header(k, v);
    }
    if !has_timestamp {
        enc.plain_header("timestamp", num.format(m.timestamp));
    }
    if m.persistent && !has_persistent {
        enc.plain_header("persistent", "true");
    }
}
