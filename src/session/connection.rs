//! Drives one connection over any transport: reads bytes, decodes frames, feeds the session,
//! watches the read deadline (handshake, heart-beats, TTL), and on the way out makes sure
//! an ERROR is flushed before the close and that everything the client held is released.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use tokio::time::{Instant, sleep_until};

use super::outbound::{Outbound, Outbox};
use super::writer::{self, WriterEnd};
use super::{Failure, Flow, PeerInfo, Session};
use crate::server::{AcceptorContext, ShutdownSignal};
use crate::stomp::{Command, Decoded, Decoder, Frame};
use crate::transport::{ByteSink, ByteSource};

/// How long a closing connection may take to flush its last frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

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
    ctx: Arc<AcceptorContext>,
    shutdown: ShutdownSignal,
    peer: SocketAddr,
) {
    serve_with(source, sink, ctx, shutdown, PeerInfo::new(peer)).await
}

/// [`serve`] for a transport that knows more about its peer, e.g. TLS with a verified client
/// certificate.
pub async fn serve_with<R: ByteSource, W: ByteSink>(
    mut source: R,
    sink: W,
    ctx: Arc<AcceptorContext>,
    mut shutdown: ShutdownSignal,
    peer_info: PeerInfo,
) {
    let peer = peer_info.addr;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut writer = tokio::spawn(writer::run(sink, rx));
    let out = Outbox::new(tx);
    let mut session = Session::new(Arc::clone(&ctx), out.clone(), peer);
    session.set_certificate_user(peer_info.certificate_user);
    let mut decoder = Decoder::new(ctx.limits);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let handshake_timeout = ctx.handshake_timeout;
    let mut deadline = Some(Instant::now() + handshake_timeout);
    let mut writer_done = None;

    let end = 'conn: loop {
        // Everything already buffered is handled before reading more, so one read carrying
        // many frames is processed in order.
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Decoded::Frame(frame))) => {
                    let receipt = frame.get("receipt").map(ByteString::from);
                    let command = frame.command;
                    let was_connected = session.version().is_some();
                    match session.handle(frame).await {
                        Ok(Flow::Continue) => {
                            if let Some(v) = session.version() {
                                decoder.set_version(v);
                                if !was_connected {
                                    // CONNECT replaces the handshake deadline with the
                                    // negotiated heart-beat (or TTL) deadline, or none.
                                    deadline = session.read_timeout().map(|t| Instant::now() + t);
                                }
                            }
                        }
                        Ok(Flow::Close) => break 'conn End::Graceful,
                        Err(failure) => {
                            tracing::debug!(%peer, %command, error = %failure.message, "frame refused");
                            queue_error(&out, failure, receipt);
                            break 'conn End::Errored;
                        }
                    }
                }
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "malformed frame");
                    queue_error(&out, Failure::new(e.to_string()), None);
                    break 'conn End::Errored;
                }
            }
        }
        tokio::select! {
            read = source.read_into(&mut buf) => match read {
                Ok(0) | Err(_) => break End::Dropped,
                Ok(_) => {
                    // Any inbound byte proves the peer alive; before CONNECT the handshake
                    // deadline stands so a trickling client cannot hold the socket forever.
                    if session.version().is_some() {
                        deadline = session.read_timeout().map(|t| Instant::now() + t);
                    }
                }
            },
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let what = if session.version().is_none() {
                    format!("no CONNECT frame within {} ms", handshake_timeout.as_millis())
                } else {
                    format!(
                        "nothing received within {} ms (heart-beat or connection TTL expired)",
                        session.read_timeout().unwrap_or_default().as_millis()
                    )
                };
                queue_error(&out, Failure::new(what), None);
                break End::Errored;
            }
            _ = shutdown.wait() => {
                queue_error(&out, Failure::new("the broker is shutting down"), None);
                break End::Errored;
            }
            done = &mut writer => {
                writer_done = Some(done.unwrap_or(WriterEnd::Failed));
                break End::Dropped;
            }
        }
    };

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
    tracing::debug!(%peer, "connection closed");
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
    let _ = out.push(Outbound::Error(frame.body(body.into_bytes())));
}
