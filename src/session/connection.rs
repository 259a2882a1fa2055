//! Drives one connection over any transport: reads bytes, decodes frames, feeds the session,
//! watches the read deadline (handshake, heart-beats, TTL), and on the way out makes sure
//! an ERROR is flushed before the close and that everything the client held is released.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::context::{SessionContext, ShutdownSignal};
use super::io::{ByteSink, ByteSource};
use super::large_body::Upload;
use super::outbound::{Outbound, Outbox};
use super::registry::{CloseReason, ConnectionInfo};
use super::writer::{self, WriterEnd};
use super::{Failure, Flow, PeerInfo, Session};
use crate::broker::LargeBody;
use crate::stomp::{Command, Decoded, Decoder, Frame, FrameError, Piece};

/// How long a closing connection may take to flush its last frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// While a frame is being handled, at most this much more is read ahead into the buffer: the
/// reads are there to notice the peer closing, not to buffer a producer that is being held
/// back (a full address), which TCP back-pressure must still slow down.
const READ_AHEAD: usize = 64 * 1024;
/// How long a frame still being handled may finish after the peer closed its sending side: a
/// client may half-close after its last frames and still read their RECEIPTs, while a handler
/// that waits on something that never comes (room on a full address) is given up.
const HALF_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The ERROR `message` sent to every connection when the broker stops.
const SHUTTING_DOWN: &str = "the broker is shutting down";

enum End {
    /// DISCONNECT: flush and close.
    Graceful,
    /// An ERROR was queued: flush it and close.
    Errored,
    /// The peer vanished or the socket failed: nothing more can be written.
    Dropped,
}

/// Serves one connection until it closes. Transport-agnostic: TCP and WebSocket both call it.
pub async fn serve<R: ByteSource, W: ByteSink>(
    source: R,
    sink: W,
    ctx: Arc<SessionContext>,
    shutdown: ShutdownSignal,
    peer: SocketAddr,
) {
    serve_with(source, sink, ctx, shutdown, PeerInfo::new(peer)).await
}

/// Reads shorter than this leave a drained read buffer to be given back.
const QUIET_READ: usize = 4096;

/// [`serve`] for a transport that knows more about its peer, e.g. TLS with a verified client
/// certificate.
pub async fn serve_with<R: ByteSource, W: ByteSink>(
    source: R,
    sink: W,
    ctx: Arc<SessionContext>,
    mut shutdown: ShutdownSignal,
    peer_info: PeerInfo,
) {
    let peer = peer_info.addr;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let write_timeout = match ctx.acceptor.limits.write_timeout_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let out = Outbox::new(tx);
    let mut session = Session::new(Arc::clone(&ctx), out.clone(), peer);
    session.set_certificate_user(peer_info.certificate_user);
    let info = Arc::clone(session.info());
    tracing::info!(
        connection = info.id,
        %peer,
        transport = info.transport.as_str(),
        acceptor = %ctx.acceptor.name,
        "connection opened"
    );
    let mut source = Counted {
        inner: source,
        info: Arc::clone(&info),
    };
    let mut writer = tokio::spawn(writer::run(
        sink,
        rx,
        ctx.acceptor.frame_eol,
        write_timeout,
        Arc::clone(&info),
    ));
    // Why the connection ends, for the log, the closed list and the metrics.
    let mut reason = CloseReason::Dropped;
    let mut detail: Option<String> = None;
    // Until CONNECT succeeds a frame may be only about a CONNECT's size: an unauthenticated
    // socket must not make the broker hold a max-frame-size buffer.
    let connect_limit = ctx.acceptor.limits.max_connect_frame_size;
    let mut decoder = Decoder::new(ctx.limits.capped(connect_limit));
    // No room yet: the source makes what the first read needs (TCP: a CONNECT's worth).
    let mut buf = BytesMut::new();
    // Bytes the last socket read returned: small ones mean a quiet connection.
    let mut last_read = 0usize;
    let handshake_timeout = ctx.handshake_timeout;
    let frame_timeout = match ctx.acceptor.limits.frame_timeout_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let mut deadline = Some(Instant::now() + handshake_timeout);
    // When the partly received frame at the front of the buffer started, if there is one.
    let mut frame_started: Option<Instant> = None;
    let mut writer_done = None;
    // The SEND whose large body is being written to its file, between its head and its end.
    // Boxed: large bodies are rare, and inlined the upload's state would be part of every
    // connection task's for the connection's whole life.
    let mut upload: Option<Box<(Upload, Option<ByteString>)>> = None;

    let end = 'conn: loop {
        // Everything already buffered is handled before reading more, so one read carrying
        // many frames is processed in order.
        loop {
            let piece = decoder.decode_piece(&mut buf);
            let (frame, large) = match piece {
                Ok(Some(Piece::Whole(Decoded::Frame(frame)))) => (frame, None),
                Ok(Some(Piece::Whole(Decoded::HeartBeat))) => continue,
                Ok(Some(Piece::LargeHead(head))) => {
                    // A streamed body's deadline runs from its last piece, not its first byte.
                    frame_started = None;
                    let receipt = head.get("receipt").map(ByteString::from);
                    match session.begin_upload(head).await {
                        Ok(started) => upload = Some(Box::new((started, receipt))),
                        Err(failure) => {
                            (reason, detail) = (CloseReason::Error, Some(failure.message.clone()));
                            queue_error(&out, failure, receipt);
                            break 'conn End::Errored;
                        }
                    }
                    continue;
                }
                Ok(Some(Piece::BodyPart(part))) => {
                    frame_started = None;
                    let written = match upload.as_deref_mut() {
                        Some((u, _)) => u.write(part).await,
                        None => Err(Failure::new("a body piece without its frame")),
                    };
                    if let Err(failure) = written {
                        (reason, detail) = (CloseReason::Error, Some(failure.message.clone()));
                        queue_error(&out, failure, upload.take().and_then(|b| b.1));
                        break 'conn End::Errored;
                    }
                    continue;
                }
                Ok(Some(Piece::BodyEnd)) => {
                    let Some((u, receipt)) = upload.take().map(|b| *b) else {
                        reason = CloseReason::Error;
                        queue_error(&out, Failure::new("a body end without its frame"), None);
                        break 'conn End::Errored;
                    };
                    match u.finish().await {
                        Ok((frame, body)) => (frame, Some(body)),
                        Err(failure) => {
                            (reason, detail) = (CloseReason::Error, Some(failure.message.clone()));
                            queue_error(&out, failure, receipt);
                            break 'conn End::Errored;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "malformed frame");
                    let message = if session.version().is_none() && is_size_limit(&e) {
                        format!(
                            "{e}: before CONNECT succeeds a frame may be at most {connect_limit} bytes (max-connect-frame-size)"
                        )
                    } else {
                        e.to_string()
                    };
                    (reason, detail) = (CloseReason::Error, Some(message.clone()));
                    queue_error(&out, Failure::new(message), None);
                    break 'conn End::Errored;
                }
            };
            frame_started = None;
            let receipt = frame.get("receipt").map(ByteString::from);
            let command = frame.command;
            let was_connected = session.version().is_some();
            let handled = handle_watching(
                &mut session,
                frame,
                large,
                &mut source,
                &mut buf,
                &mut shutdown,
                &mut writer,
            )
            .await;
            match handled {
                Handled::Done(Ok(Flow::Continue), waited) => {
                    if let Some(v) = session.version() {
                        if !was_connected {
                            decoder.set_version(v);
                            decoder.set_limits(ctx.limits);
                            decoder.stream_bodies_above(Some(ctx.broker.large_store().threshold()));
                        }
                        // CONNECT replaces the handshake deadline with the negotiated
                        // heart-beat (or TTL) deadline, or none; after a frame that
                        // had to wait, the time spent waiting is not held against the
                        // client. (Most frames never wait: no clock read for them.)
                        if !was_connected || waited {
                            deadline = session.read_timeout().map(|t| Instant::now() + t);
                        }
                    }
                }
                Handled::Done(Ok(Flow::Close), _) => {
                    reason = CloseReason::Client;
                    break 'conn End::Graceful;
                }
                Handled::Done(Err(failure), _) => {
                    tracing::debug!(%peer, %command, error = %failure.message, "frame refused");
                    reason = if was_connected {
                        CloseReason::Error
                    } else {
                        CloseReason::AuthFailed
                    };
                    detail = Some(failure.message.clone());
                    queue_error(&out, failure, receipt);
                    break 'conn End::Errored;
                }
                Handled::Shutdown => {
                    tracing::debug!(%peer, %command, "frame abandoned: shutting down");
                    reason = CloseReason::Shutdown;
                    queue_error(&out, Failure::new(SHUTTING_DOWN), None);
                    break 'conn End::Errored;
                }
                Handled::Closed(why) => {
                    (reason, detail) = (CloseReason::Admin, Some(why.clone()));
                    queue_error(&out, Failure::new(why), None);
                    break 'conn End::Errored;
                }
                Handled::PeerGone => {
                    tracing::debug!(%peer, %command, "frame abandoned: peer closed");
                    break 'conn End::Dropped;
                }
                Handled::WriterDone(done) => {
                    reason = writer_reason(done);
                    writer_done = Some(done);
                    break 'conn End::Dropped;
                }
            }
        }
        // Bytes left over are the start of a frame (heart-beat EOLs were consumed): it must
        // be complete within the frame timeout, however slowly its bytes arrive.
        if buf.is_empty() {
            frame_started = None;
            // Nothing is left to parse and the last read was small: a quiet connection gives
            // its read buffer back (TCP then waits in a small one), so thousands of idle
            // subscribers do not each hold 16 KiB. A busy one keeps its buffer: making the
            // room again for every read slowed a streaming producer's reads.
            if buf.capacity() > 0 && last_read < QUIET_READ {
                buf = BytesMut::new();
            }
        } else if frame_started.is_none() {
            frame_started = Some(Instant::now());
        }
        let frame_deadline = frame_started.zip(frame_timeout).map(|(at, t)| at + t);
        let wake = match (deadline, frame_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            read = source.read_into(&mut buf) => match read {
                Ok(0) | Err(_) => break End::Dropped,
                Ok(n) => {
                    last_read = n;
                    // Any inbound byte proves the peer alive; before CONNECT the handshake
                    // deadline stands so a trickling client cannot hold the socket forever.
                    if session.version().is_some() {
                        deadline = session.read_timeout().map(|t| Instant::now() + t);
                    }
                }
            },
            _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                let now = Instant::now();
                let what = if session.version().is_none() && deadline.is_some_and(|d| d <= now) {
                    format!("no CONNECT frame within {} ms", handshake_timeout.as_millis())
                } else if deadline.is_some_and(|d| d <= now) {
                    format!(
                        "nothing received within {} ms (heart-beat or connection TTL expired)",
                        session.read_timeout().unwrap_or_default().as_millis()
                    )
                } else if frame_deadline.is_some_and(|d| d <= now) {
                    format!(
                        "frame not completed within {} ms of its first byte (frame-timeout-ms)",
                        frame_timeout.unwrap_or_default().as_millis()
                    )
                } else {
                    continue;
                };
                (reason, detail) = (CloseReason::HeartbeatTimeout, Some(what.clone()));
                queue_error(&out, Failure::new(what), None);
                break End::Errored;
            }
            _ = shutdown.wait() => {
                reason = CloseReason::Shutdown;
                queue_error(&out, Failure::new(SHUTTING_DOWN), None);
                break End::Errored;
            }
            why = info.close_requested() => {
                (reason, detail) = (CloseReason::Admin, Some(why.clone()));
                queue_error(&out, Failure::new(why), None);
                break End::Errored;
            }
            done = &mut writer => {
                let done = done.unwrap_or(WriterEnd::Failed);
                reason = writer_reason(done);
                writer_done = Some(done);
                break End::Dropped;
            }
        }
    };

    if matches!(end, End::Errored) {
        ctx.connections.error_sent(reason);
    }
    match end {
        End::Graceful | End::Errored => {
            if matches!(end, End::Graceful) {
                let _ = out.push(Outbound::Close);
            }
            if writer_done.is_none()
                && tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
                    .await
                    .is_err()
            {
                writer.abort();
            }
        }
        End::Dropped => writer.abort(),
    }
    // Only now, with nothing more to be written, are unacknowledged messages returned: a
    // message can never be both written and handed to another consumer.
    session.close();
    let connected = info.connected_as();
    tracing::info!(
        connection = info.id,
        %peer,
        transport = info.transport.as_str(),
        reason = reason.as_str(),
        detail = detail.as_deref().unwrap_or(""),
        client_id = connected.client_id.as_deref().unwrap_or(""),
        user = connected.user.as_deref().unwrap_or(""),
        seconds = crate::broker::now_millis().saturating_sub(info.connected_at) / 1000,
        messages_in = info.messages_in.load(std::sync::atomic::Ordering::Relaxed),
        messages_out = info.messages_out.load(std::sync::atomic::Ordering::Relaxed),
        "connection closed"
    );
    ctx.connections.close(&info, reason, detail);
}

/// Why the connection ended when its writer stopped first.
fn writer_reason(end: WriterEnd) -> CloseReason {
    match end {
        WriterEnd::Stalled => CloseReason::SlowConsumer,
        _ => CloseReason::Dropped,
    }
}

/// The transport's byte source, counting what it reads into the connection's figures.
struct Counted<R> {
    inner: R,
    info: Arc<ConnectionInfo>,
}

impl<R: ByteSource> ByteSource for Counted<R> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let n = self.inner.read_into(buf).await?;
        self.info.read(n);
        Ok(n)
    }
}

/// How handling one frame ended.
enum Handled {
    /// The session finished the frame; `true` when it had to wait for something first.
    Done(Result<Flow, Failure>, bool),
    /// The broker began shutting down first; the frame was abandoned.
    Shutdown,
    /// An operator closed the connection first, with this reason.
    Closed(String),
    /// The peer closed (or the socket failed) first; the frame was abandoned.
    PeerGone,
    /// The writer stopped first (the socket failed); the frame was abandoned.
    WriterDone(WriterEnd),
}

/// Runs the session's handler for one frame while still watching the connection: a handler
/// may wait indefinitely (a SEND waiting for room on a full address), and the peer closing or
/// the broker shutting down must still end the connection. Reading goes on into `buf` only up
/// to [`READ_AHEAD`] bytes, so a blocked producer is still slowed by TCP back-pressure. When
/// anything but the handler finishes first the handler's future is dropped, which is why every
/// handler must be cancel-safe.
async fn handle_watching<R: ByteSource>(
    session: &mut Session,
    frame: Frame,
    large: Option<Arc<LargeBody>>,
    source: &mut R,
    buf: &mut BytesMut,
    shutdown: &mut ShutdownSignal,
    writer: &mut JoinHandle<WriterEnd>,
) -> Handled {
    let info = Arc::clone(session.info());
    let handler = session.handle_with(frame, large);
    tokio::pin!(handler);
    // Nearly every frame completes without waiting: answer it without setting up the watch
    // (timers, shutdown and read futures cost more than most frames take to handle).
    if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await {
        return Handled::Done(result, false);
    }
    // The watch's futures live in a box made only for a frame that has to wait: inlined,
    // they would be part of every connection task's state for the connection's whole life.
    Box::pin(watch(handler, &info, source, buf, shutdown, writer)).await
}

/// The waiting half of [`handle_watching`]: polls the pending handler while watching for
/// the peer, the broker and the writer.
async fn watch<R: ByteSource, F: Future<Output = Result<Flow, Failure>>>(
    mut handler: std::pin::Pin<&mut F>,
    info: &ConnectionInfo,
    source: &mut R,
    buf: &mut BytesMut,
    shutdown: &mut ShutdownSignal,
    writer: &mut JoinHandle<WriterEnd>,
) -> Handled {
    // Set once the peer has closed its side: from then on the handler has a deadline.
    let mut gone_by: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            result = handler.as_mut() => return Handled::Done(result, true),
            _ = shutdown.wait() => return Handled::Shutdown,
            why = info.close_requested() => return Handled::Closed(why),
            done = &mut *writer => return Handled::WriterDone(done.unwrap_or(WriterEnd::Failed)),
            _ = sleep_until(gone_by.unwrap_or_else(Instant::now)), if gone_by.is_some() => {
                return Handled::PeerGone;
            }
            read = source.read_into(buf), if gone_by.is_none() && buf.len() < READ_AHEAD => {
                match read {
                    Ok(0) | Err(_) => gone_by = Some(Instant::now() + HALF_CLOSE_GRACE),
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Whether a decode error is a size limit (the ones the pre-CONNECT cap makes smaller).
fn is_size_limit(e: &FrameError) -> bool {
    matches!(
        e,
        FrameError::FrameTooLarge { .. }
            | FrameError::BodyTooLarge { .. }
            | FrameError::ContentLengthTooLarge { .. }
            | FrameError::HeaderLineTooLong { .. }
    )
}

fn queue_error(out: &Outbox, failure: Failure, receipt: Option<ByteString>) {
    let mut frame = Frame::new(Command::Error).header("message", failure.message.as_str());
    if let Some(r) = receipt {
        frame = frame.header("receipt-id", r);
    }
    for (name, value) in failure.headers {
        frame = frame.header(name, value);
    }
    frame = frame.header("content-type", "text/plain");
    let body = failure.detail.unwrap_or(failure.message);
    let _ = out.push(Outbound::Error(Box::new(frame.body(body.into_bytes()))));
}

#[cfg(test)]
mod tests {
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

    use super::*;

    /// The size of the future an `async fn` of five arguments returns, without calling it.
    fn future_size<A, B, C, D, E, F>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A connection's task holds this future for the connection's whole life, so its size is
    /// most of what an idle connection costs (docs/performance.md, idle connections): what
    /// only some frames need (large-body uploads, a frame that has to wait and its watch, a
    /// producer far ahead of the journal, a full address or disk) is boxed when needed
    /// instead of inlined, and the session's cached SEND destination is boxed: 3,360 bytes
    /// before that, 2,320 with it (rustc 1.95).
    #[test]
    fn an_idle_connection_task_holds_no_state_of_rare_waits() {
        let size = future_size(serve_with::<OwnedReadHalf, OwnedWriteHalf>);
        assert!(
            size <= LIMIT,
            "the connection future is {size} bytes, more than {LIMIT}"
        );
    }

    const LIMIT: usize = 2_400;
}
