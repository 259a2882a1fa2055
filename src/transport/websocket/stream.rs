//! An upgraded WebSocket as the session's byte stream: each data message's payload is STOMP
//! bytes in, each batch of outgoing frames one message out.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::Stream;
use crate::session::{ByteSink, ByteSource};

/// How long a received Close may take to be answered before the socket is dropped.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// The two halves of an upgraded connection. `binary`: send binary messages (else text ones
/// where the bytes are UTF-8).
pub fn split<S: Stream>(ws: WebSocketStream<S>, binary: bool) -> (WsSource<S>, WsSink<S>) {
    let (sink, source) = ws.split();
    (
        WsSource { inner: source },
        WsSink {
            inner: sink,
            binary,
        },
    )
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        other => io::Error::other(other),
    }
}

/// The read half of an upgraded connection: each data message's payload is appended to the
/// session's buffer as STOMP bytes, so frames may span messages or share one.
pub struct WsSource<S> {
    inner: SplitStream<WebSocketStream<S>>,
}

impl<S: Stream> ByteSource for WsSource<S> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let payload: Bytes = match self.inner.next().await {
                None => return Ok(0),
                Some(Err(e)) => {
                    // Oversized messages land here too (tungstenite's capacity error).
                    tracing::debug!(error = %e, "websocket read failed");
                    return Err(to_io(e));
                }
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Text(t))) => t.into(),
                Some(Ok(Message::Close(_))) => {
                    // tungstenite queued the Close reply; one more read sends it, so the peer
                    // sees a clean close instead of a dropped connection.
                    let _ = timeout(CLOSE_REPLY_TIMEOUT, self.inner.next()).await;
                    return Ok(0);
                }
                // Pongs to pings are queued by tungstenite and flushed by the next read or
                // write; neither is STOMP data.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            };
            // An empty message carries nothing; returning 0 would read as "peer closed".
            if !payload.is_empty() {
                buf.extend_from_slice(&payload);
                return Ok(payload.len());
            }
        }
    }
}

/// The write half of an upgraded connection: one WebSocket message per batch of frames.
pub struct WsSink<S> {
    inner: SplitSink<WebSocketStream<S>, Message>,
    /// Binary messages by default: STOMP bodies may hold NUL and non-UTF-8 bytes.
    binary: bool,
}

impl<S: Stream> ByteSink for WsSink<S> {
    async fn write_chunks(&mut self, chunks: &[Bytes]) -> io::Result<()> {
        let payload = match chunks {
            [] => return Ok(()),
            [one] => one.clone(),
            many => {
                let mut joined = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                for c in many {
                    joined.extend_from_slice(c);
                }
                joined.freeze()
            }
        };
        if payload.is_empty() {
            return Ok(());
        }
        let message = if self.binary || std::str::from_utf8(&payload).is_err() {
            // A text message must be UTF-8; a body that is not goes out as binary rather than
            // as an invalid message the client would reject.
            Message::Binary(payload)
        } else {
            match Utf8Bytes::try_from(payload.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(payload),
            }
        };
        self.inner.send(message).await.map_err(to_io)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self.inner.close().await {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }
}
