//! STOMP over WebSocket, and the small HTTP surface that shares its port: the web console page
//! and the stompjs bundle it loads.
//!
//! One port serves both because a browser user should need only one address: the request head
//! is read here (bounded in size and time), a WebSocket upgrade becomes a STOMP session driven
//! by the same [`session::serve`] as TCP, and anything else gets a complete HTTP answer with
//! `Connection: close`, so no client is ever left waiting on a socket that will say nothing.
//!
//! The upgrade handshake is answered here rather than by tungstenite's own handshake because
//! the head has already been read to tell the two kinds of request apart, and because every
//! refusal must be a clear HTTP error (tungstenite would just drop some malformed requests).
//! tungstenite then speaks the WebSocket protocol on the upgraded socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::admission;
use super::context::AcceptorContext;
use crate::session::{self, ByteSink, ByteSource, PeerInfo, SessionContext, ShutdownSignal};

/// STOMP subprotocols we accept, best first: the highest one a client offers is chosen.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Largest HTTP request head accepted; it is buffered before anything else happens, so it must
/// be bounded. Generous enough for browsers carrying cookies.
const MAX_HEAD: usize = 32 * 1024;
/// Most header lines in a request head (browsers send about 15).
const MAX_HEADERS: usize = 64;
/// A client that has not finished its request head by then is answered 408 and closed, so a
/// silent or trickling socket cannot be held open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on writing an HTTP answer to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After an HTTP answer, unread request bytes are drained for at most this long (and at most
/// [`DRAIN_LIMIT`] bytes): closing a socket with unread input makes the kernel send a reset,
/// which can destroy the answer before the client has read it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_LIMIT: usize = 64 * 1024;
/// How long a received Close may take to be answered before the socket is dropped.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// The live web console: connect, subscribe, send and watch messages from a browser.
const CONSOLE_HTML: &[u8] = include_bytes!("../../web/console.html");
/// The `@stomp/stompjs` UMD bundle the console uses, served by the broker itself so that the
/// console works without any outside network (version and licence in `web/vendor/README.md`).
const STOMPJS: &[u8] = include_bytes!("../../web/vendor/stomp.umd.min.js");
/// Paths of the console page.
const CONSOLE_PATHS: [&str; 2] = ["/", "/index.html"];
/// Paths of the stompjs bundle (the second is the file's name in the npm package).
const STOMPJS_PATHS: [&str; 2] = ["/stompjs.umd.min.js", "/stomp.umd.min.js"];

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
        }
    }
}

/// A stream the acceptor can serve HTTP and WebSocket on: plain TCP or TLS over it (wss).
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

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
    super::accept::accept_loop(
        listener,
        ctx,
        shutdown,
        move |stream, peer, why| {
            // Over TLS, refusing costs no handshake: just close.
            if plain {
                let text = format!("{}: {why}\n", admission::TOO_MANY_CONNECTIONS);
                tokio::spawn(answer(stream, peer, Answer::text(503, &text)));
            }
        },
        move |stream, peer, ctx, shutdown| {
            let settings = Arc::clone(&settings);
            let tls = tls.clone();
            async move {
                match tls {
                    None => handle(stream, peer, ctx, settings, shutdown, None).await,
                    Some(tls) => {
                        if let Some((stream, user)) =
                            super::tls::handshake(&tls, stream, peer, ctx.handshake_timeout).await
                        {
                            handle(stream, peer, ctx, settings, shutdown, user).await;
                        }
                    }
                }
            }
        },
    )
    .await
}

async fn handle<S: Stream>(
    mut stream: S,
    peer: SocketAddr,
    ctx: Arc<SessionContext>,
    settings: Arc<Settings>,
    mut shutdown: ShutdownSignal,
    certificate_user: Option<String>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    let head = tokio::select! {
        _ = shutdown.wait() => return,
        head = timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)) => head,
    };
    let request = match head {
        Ok(Ok(Some(request))) => request,
        // Closed before sending anything: nobody to answer.
        Ok(Ok(None)) => return,
        Ok(Err(HeadError::Io)) => return,
        Ok(Err(HeadError::TooLarge)) => {
            let text = format!(
                "request head larger than {MAX_HEAD} bytes or with more than {MAX_HEADERS} header lines\n"
            );
            return answer(stream, peer, Answer::text(431, &text)).await;
        }
        Ok(Err(HeadError::Malformed)) => {
            let text = "this port speaks HTTP and STOMP over WebSocket; the request is not HTTP \
                        (a plain STOMP client must use the broker's TCP port)\n";
            return answer(stream, peer, Answer::text(400, text)).await;
        }
        Err(_) => {
            let text = format!(
                "request head not received within {} s\n",
                HEAD_TIMEOUT.as_secs()
            );
            return answer(stream, peer, Answer::text(408, &text)).await;
        }
    };
    let leftover = buf.split_off(request.head_len);
    if !request.has_token("upgrade", "websocket") {
        return answer(stream, peer, plain_http(&request, &settings)).await;
    }
    let subprotocol = match check_upgrade(&request, &settings) {
        Ok(p) => p,
        Err(refusal) => return answer(stream, peer, refusal).await,
    };
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(request.header("sec-websocket-key").unwrap_or_default())
    );
    if let Some(p) = subprotocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    response.push_str("\r\n");
    match timeout(WRITE_TIMEOUT, stream.write_all(response.as_bytes())).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    tracing::debug!(%peer, path = %request.path, ?subprotocol, "websocket upgraded");
    // Bytes the client sent right after its head (it need not wait for our 101) are the start
    // of the WebSocket stream.
    let ws = WebSocketStream::from_partially_read(
        stream,
        leftover.to_vec(),
        Role::Server,
        Some(settings.ws_config),
    )
    .await;
    let (sink, source) = ws.split();
    session::serve_with(
        WsSource { inner: source },
        WsSink {
            inner: sink,
            binary: settings.binary,
        },
        ctx,
        shutdown,
        PeerInfo {
            addr: peer,
            certificate_user,
        },
    )
    .await;
}

/// The parts of a request head this module looks at, owned so the read buffer can move on.
#[derive(Debug)]
struct Request {
    method: String,
    /// Path without the query string.
    path: String,
    /// Minor HTTP version: 1 for HTTP/1.1.
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    head_len: usize,
}

impl Request {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Comma-separated tokens of every header line called `name`, trimmed.
    fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }
}

enum HeadError {
    Io,
    TooLarge,
    Malformed,
}

/// Reads until a complete request head is buffered. Parsing after every read refuses
/// non-HTTP input (a raw STOMP client, garbage) as soon as it shows, instead of waiting for a
/// blank line that will never come. `Ok(None)`: the peer closed without sending anything.
async fn read_head<S: Stream>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<Option<Request>, HeadError> {
    loop {
        let room = MAX_HEAD + 1 - buf.len().min(MAX_HEAD);
        let mut chunk = vec![0u8; room.min(8192)];
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                // A head cut short is as malformed as a bad one; the peer may still read.
                Err(HeadError::Malformed)
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let target = parsed.path.unwrap_or("/");
                let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
                return Ok(Some(Request {
                    method: parsed.method.unwrap_or_default().to_string(),
                    path,
                    version: parsed.version.unwrap_or(0),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect(),
                    head_len,
                }));
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(HeadError::TooLarge);
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// Checks an upgrade request and picks the subprotocol to echo (`None`: the client offered
/// none, which stompjs and others may do, and STOMP is assumed).
fn check_upgrade(request: &Request, settings: &Settings) -> Result<Option<&'static str>, Answer> {
    if request.method != "GET" {
        return Err(
            Answer::text(405, "a WebSocket upgrade must use GET\n").with_header("Allow", "GET")
        );
    }
    if !settings.paths.contains(&request.path) {
        return Err(Answer::text(
            404,
            &format!(
                "no WebSocket endpoint at {}; STOMP over WebSocket is served at {}\n",
                request.path,
                settings.paths.join(", ")
            ),
        ));
    }
    if request.version != 1 {
        return Err(Answer::text(400, "a WebSocket upgrade needs HTTP/1.1\n"));
    }
    check_origin(request, settings)?;
    if !request.has_token("connection", "upgrade") {
        return Err(Answer::text(
            400,
            "a WebSocket upgrade needs `Connection: Upgrade`\n",
        ));
    }
    if request.header("sec-websocket-version") != Some(b"13".as_slice()) {
        return Err(
            Answer::text(426, "only WebSocket version 13 (RFC 6455) is supported\n")
                .with_header("Sec-WebSocket-Version", "13"),
        );
    }
    if !request
        .header("sec-websocket-key")
        .is_some_and(is_valid_key)
    {
        return Err(Answer::text(
            400,
            "missing or malformed Sec-WebSocket-Key (must be 16 bytes in base64)\n",
        ));
    }
    let offered = request.tokens("sec-websocket-protocol");
    if offered.is_empty() {
        return Ok(None);
    }
    match SUBPROTOCOLS
        .iter()
        .find(|known| offered.iter().any(|o| o.eq_ignore_ascii_case(known)))
    {
        Some(p) => Ok(Some(p)),
        None => Err(Answer::text(
            400,
            &format!(
                "unsupported WebSocket subprotocol(s): {}; this endpoint speaks {} (or offer none)\n",
                offered.join(", "),
                SUBPROTOCOLS.join(", ")
            ),
        )),
    }
}

/// Refuses a browser upgrade from a page of another site (HTTP 403). Browsers let any page
/// open a WebSocket to any address, `ws://127.0.0.1:…` included, and send the page's origin;
/// without this check any web site a user visits could use a broker on their machine or
/// network. A request without `Origin` is not from a browser page and is accepted.
fn check_origin(request: &Request, settings: &Settings) -> Result<(), Answer> {
    let Some(origin) = request.header("origin") else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin);
    let origin = origin.trim();
    let allowed = match &settings.allowed_origins {
        Some(list) => list
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin)),
        None => request
            .header("host")
            .is_some_and(|host| same_origin(origin, &String::from_utf8_lossy(host), settings.tls)),
    };
    if allowed {
        return Ok(());
    }
    let hint = match &settings.allowed_origins {
        Some(list) => format!("ws-allowed-origins lists {}", list.join(", ")),
        None => "by default only requests without Origin or from this acceptor's own origin are \
                 accepted; list the page's origin in the acceptor's ws-allowed-origins"
            .to_string(),
    };
    Err(Answer::text(
        403,
        &format!("WebSocket upgrade from origin {origin} refused: {hint}\n"),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the request's
/// `Host` header, i.e. the page was served by this acceptor (its web console).
fn same_origin(origin: &str, host: &str, tls: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let scheme_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return false,
    };
    let Some((origin_host, origin_port)) = host_and_port(rest, scheme_port) else {
        return false;
    };
    let Some((host_host, host_port)) = host_and_port(host.trim(), if tls { 443 } else { 80 })
    else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(host_host) && origin_port == host_port
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port, with `default` when absent.
fn host_and_port(text: &str, default: u16) -> Option<(&str, u16)> {
    let (host, port) = match text.rfind(':') {
        Some(at) if !text[at..].contains(']') => (&text[..at], Some(&text[at + 1..])),
        _ => (text, None),
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then_some((host, port))
}

/// A Sec-WebSocket-Key is 16 random bytes in base64: 22 significant characters and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Answers a request that is not a WebSocket upgrade.
fn plain_http(request: &Request, settings: &Settings) -> Answer {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return Answer::text(
            405,
            &format!("method {} not allowed; use GET\n", request.method),
        )
        .with_header("Allow", "GET, HEAD");
    }
    let path = request.path.as_str();
    let answer = if CONSOLE_PATHS.contains(&path) {
        Answer::new(
            200,
            "text/html; charset=utf-8",
            Bytes::from_static(CONSOLE_HTML),
        )
    } else if STOMPJS_PATHS.contains(&path) {
        Answer::new(
            200,
            "text/javascript; charset=utf-8",
            Bytes::from_static(STOMPJS),
        )
    } else if settings.paths.iter().any(|p| p == path) {
        Answer::text(
            426,
            &format!(
                "{path} is a STOMP-over-WebSocket endpoint: connect with a WebSocket client \
                 (subprotocols {}). The web console is at /.\n",
                SUBPROTOCOLS.join(", ")
            ),
        )
        .with_header("Upgrade", "websocket")
    } else {
        Answer::text(
            404,
            &format!("nothing at {path}; the web console is at /\n"),
        )
    };
    if head_only {
        answer.head_only()
    } else {
        answer
    }
}

/// A complete HTTP answer, after which the connection is closed.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Bytes,
    extra: Vec<(&'static str, &'static str)>,
    /// HEAD: headers (with the body's length) but no body.
    head_only: bool,
}

impl Answer {
    fn new(status: u16, content_type: &'static str, body: Bytes) -> Self {
        Answer {
            status,
            content_type,
            body,
            extra: Vec::new(),
            head_only: false,
        }
    }

    fn text(status: u16, text: &str) -> Self {
        Answer::new(
            status,
            "text/plain; charset=utf-8",
            Bytes::copy_from_slice(text.as_bytes()),
        )
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra.push((name, value));
        self
    }

    fn head_only(mut self) -> Self {
        self.head_only = true;
        self
    }

    fn encode(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            426 => "Upgrade Required",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        let mut connection_set = false;
        for (name, value) in &self.extra {
            connection_set |= name.eq_ignore_ascii_case("connection");
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !connection_set {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Writes `answer` and closes the connection without losing the answer to a reset.
async fn answer<S: Stream>(mut stream: S, peer: SocketAddr, answer: Answer) {
    tracing::debug!(%peer, status = answer.status, "http answer");
    let bytes = answer.encode();
    let written = timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = timeout(DRAIN_TIMEOUT, async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
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
struct WsSource<S> {
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
struct WsSink<S> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> Request {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = parsed.parse(head.as_bytes()) else {
            panic!("bad test head");
        };
        Request {
            method: parsed.method.unwrap_or_default().to_string(),
            path: parsed.path.unwrap_or("/").to_string(),
            version: parsed.version.unwrap_or(0),
            headers: parsed
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
            head_len,
        }
    }

    fn settings() -> Settings {
        Settings {
            paths: vec!["/stomp".into(), "/".into()],
            binary: true,
            ws_config: WebSocketConfig::default(),
            allowed_origins: None,
            tls: false,
        }
    }

    fn upgrade(extra: &str) -> Request {
        request(&format!(
            "GET /stomp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        ))
    }

    #[test]
    fn highest_offered_subprotocol_wins() {
        let r = upgrade(
            "Sec-WebSocket-Protocol: v10.stomp, v12.stomp\r\nSec-WebSocket-Protocol: v11.stomp\r\n",
        );
        assert_eq!(check_upgrade(&r, &settings()).ok(), Some(Some("v12.stomp")));
        let r = upgrade("Sec-WebSocket-Protocol: v10.stomp\r\n");
        assert_eq!(check_upgrade(&r, &settings()).ok(), Some(Some("v10.stomp")));
    }

    #[test]
    fn no_subprotocol_is_stomp_and_unknown_only_is_refused() {
        assert_eq!(check_upgrade(&upgrade(""), &settings()).ok(), Some(None));
        let r = upgrade("Sec-WebSocket-Protocol: mqtt\r\n");
        let refused = check_upgrade(&r, &settings()).err().map(|a| a.status);
        assert_eq!(refused, Some(400));
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin(
            "http://127.0.0.1:61614",
            "127.0.0.1:61614",
            false
        ));
        assert!(same_origin("http://Example.com", "example.com", false));
        assert!(same_origin("https://example.com", "example.com:443", true));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080", false));
        assert!(!same_origin("http://[::1]", "[::1]:8080", false));
        assert!(!same_origin(
            "http://evil.example",
            "127.0.0.1:61614",
            false
        ));
        assert!(!same_origin("http://127.0.0.1:1", "127.0.0.1:61614", false));
        assert!(!same_origin("null", "127.0.0.1:61614", false));
        assert!(!same_origin("file://x", "x", false));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"short=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
    }

    #[test]
    fn plain_get_routes() {
        let s = settings();
        let get = |p: &str| plain_http(&request(&format!("GET {p} HTTP/1.1\r\n\r\n")), &s).status;
        assert_eq!(get("/"), 200);
        assert_eq!(get("/index.html"), 200);
        assert_eq!(get("/stompjs.umd.min.js"), 200);
        assert_eq!(get("/stomp"), 426);
        assert_eq!(get("/nope"), 404);
        let post = plain_http(&request("POST / HTTP/1.1\r\n\r\n"), &s);
        assert_eq!(post.status, 405);
    }

    #[test]
    fn answers_carry_length_and_close() {
        let text = String::from_utf8(Answer::text(404, "gone\n").encode()).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 5\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\ngone\n"), "{text}");
    }
}
