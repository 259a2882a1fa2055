//! STOMP over WebSocket, and the small HTTP surface that shares its port: the web console page
//! and the stompjs bundle it loads.
//!
//! One port serves both because a browser user should need only one address. hyper, the
//! project's one HTTP implementation, reads the request head within bounds of size, header
//! count and time ([`connection`]); [`handshake`] decides what the request gets: a WebSocket
//! upgrade (checked path, `Origin`, version, key and subprotocol) or a complete HTTP answer
//! with `Connection: close` ([`pages`], [`answer`]), so no client is ever left waiting on a
//! socket that will say nothing. After the 101, hyper hands the socket over (`hyper::upgrade`)
//! and tungstenite speaks the WebSocket protocol on it; [`stream`] makes that a byte stream for
//! the same [`crate::session::serve`] that drives TCP.

mod answer;
mod connection;
mod handshake;
mod pages;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::admission;
use super::context::AcceptorContext;
use crate::session::{SessionContext, ShutdownSignal};

pub use handshake::SUBPROTOCOLS;

/// Largest HTTP request head accepted: hyper's read buffer, which holds the head before
/// anything else happens, stops growing here and a head not complete by then is answered 431
/// (one that arrives whole in a single read is parsed from what that read brought, at most
/// about twice this). Generous enough for browsers carrying cookies.
const MAX_HEAD: usize = 32 * 1024;
/// Most header lines in a request head (browsers send about 15); more are answered 431.
const MAX_HEADERS: usize = 64;
/// Bound on writing an HTTP answer to a client that does not read, after its head arrived.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection refused by the connection limits gets this long to send its request head and
/// take its 503; it holds no connection slot, so it must not stay long.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The WebSocket settings of one acceptor, resolved once instead of per connection.
#[derive(Debug, Clone)]
struct Settings {
    paths: Vec<String>,
    binary: bool,
    ws_config: WebSocketConfig,
    /// `ws-allowed-origins`; `None`: no `Origin` or the acceptor's own.
    allowed_origins: Option<Vec<String>>,
    /// Whether the acceptor serves TLS, which decides the default port of its own origin.
    tls: bool,
    /// How long a client has to send its request head: the acceptor's handshake timeout, the
    /// bound on a new connection's every step before its session starts.
    head_timeout: Duration,
}

impl Settings {
    fn from_context(ctx: &SessionContext, tls: bool) -> Self {
        let max = ctx.acceptor.ws_max_message_size();
        Settings {
            paths: ctx.acceptor.ws_paths(),
            binary: ctx.acceptor.ws_binary_frames(),
            allowed_origins: ctx.acceptor.ws_allowed_origins().map(<[String]>::to_vec),
            tls,
            // A single frame may be as large as a whole message: clients such as stompjs send
            // each STOMP frame as one unfragmented WebSocket frame.
            ws_config: WebSocketConfig::default()
                .max_message_size(Some(max))
                .max_frame_size(Some(max)),
            head_timeout: ctx.handshake_timeout,
        }
    }
}

/// The HTTP/1.1 server for one connection's request: bounded head (size, header lines, time)
/// and header names in their usual case for people reading answers with curl or netcat. One
/// request per connection comes from the answers' `Connection: close` (hyper's
/// `keep_alive(false)` would add `close` to the 101 too, which clients refuse).
fn http_server(head_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .title_case_headers(true);
    builder
}

/// A stream the acceptor can serve HTTP and WebSocket on: plain TCP or TLS over it (wss).
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// Accepts connections until shutdown, serving each (HTTP or WebSocket) on its own task.
pub async fn run(listener: TcpListener, ctx: Arc<AcceptorContext>, shutdown: ShutdownSignal) {
    accept_loop(listener, None, ctx, shutdown).await
}

/// [`run`] over TLS (`wss://`, `https://` for the console): each connection first completes
/// the TLS handshake within the acceptor's handshake timeout.
pub async fn run_tls(
    listener: TcpListener,
    tls: TlsAcceptor,
    ctx: Arc<AcceptorContext>,
    shutdown: ShutdownSignal,
) {
    accept_loop(listener, Some(tls), ctx, shutdown).await
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: Arc<AcceptorContext>,
    shutdown: ShutdownSignal,
) {
    let plain = tls.is_none();
    let settings = Arc::new(Settings::from_context(&ctx.session, !plain));
    let refusals = http_server(REFUSAL_TIMEOUT);
    super::accept::accept_loop(
        listener,
        ctx,
        shutdown,
        move |stream, peer, why| {
            // Over TLS, refusing costs no handshake: just close.
            if plain {
                let text = format!("{}: {why}\n", admission::TOO_MANY_CONNECTIONS);
                tokio::spawn(connection::refuse(stream, peer, refusals.clone(), text));
            }
        },
        move |stream, peer, ctx, shutdown| {
            let settings = Arc::clone(&settings);
            let tls = tls.clone();
            async move {
                match tls {
                    None => connection::serve(stream, peer, ctx, settings, shutdown, None).await,
                    Some(tls) => {
                        if let Some((stream, user)) =
                            super::tls::handshake(&tls, stream, peer, ctx.handshake_timeout).await
                        {
                            connection::serve(stream, peer, ctx, settings, shutdown, user).await;
                        }
                    }
                }
            }
        },
    )
    .await
}

#[cfg(test)]
impl Settings {
    /// The default paths (`/stomp` and `/`), no TLS, the default origin rule.
    fn for_test() -> Self {
        Settings {
            paths: vec!["/stomp".into(), "/".into()],
            binary: true,
            ws_config: WebSocketConfig::default(),
            allowed_origins: None,
            tls: false,
            head_timeout: Duration::from_secs(10),
        }
    }
}
