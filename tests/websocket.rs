//! STOMP over WebSocket, end to end: the broker runs in-process with a TCP and a WebSocket
//! acceptor on ephemeral loopback ports, and these tests speak raw WebSocket and HTTP to it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use wrenmq::config::{AcceptorConfig, AcceptorProtocol, Config};
use wrenmq::server::{self, RunningBroker};

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn start_with(configure: impl FnOnce(&mut AcceptorConfig)) -> RunningBroker {
    let mut config = Config::default();
    config.journal.enabled = false;
    config.acceptors[0].bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut ws = AcceptorConfig::default_for(AcceptorProtocol::Websocket);
    ws.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    configure(&mut ws);
    config.acceptors.push(ws);
    assert_eq!(config.validate(), Ok(()));
    match server::start({
        let mut c = config;
        c.admin.bind.set_port(0);
        c
    })
    .await
    {
        Ok(running) => running,
        Err(e) => panic!("broker did not start: {e}"),
    }
}

async fn start() -> RunningBroker {
    start_with(|_| {}).await
}

fn ws_addr(running: &RunningBroker) -> SocketAddr {
    running
        .addr(AcceptorProtocol::Websocket)
        .expect("websocket acceptor bound")
}

async fn ws_connect(
    addr: SocketAddr,
    protocols: Option<&str>,
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = format!("ws://{addr}/stomp").into_client_request()?;
    if let Some(p) = protocols {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(p).expect("header value"),
        );
    }
    timeout(WAIT, connect_async(request))
        .await
        .expect("handshake timed out")
}

/// Sends raw bytes and reads everything until the server closes.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// A STOMP frame as the tests see it.
#[derive(Debug)]
struct TestFrame {
    command: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestFrame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Takes one frame off the front of `buf` (skipping heart-beat EOLs), if complete.
fn take_frame(buf: &mut Vec<u8>) -> Option<TestFrame> {
    while matches!(buf.first(), Some(b'\n' | b'\r')) {
        buf.remove(0);
    }
    let head_end = buf.windows(2).position(|w| w == b"\n\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let command = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body_start = head_end + 2;
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body_end = match length {
        Some(n) if buf.len() > body_start + n => body_start + n,
        Some(_) => return None,
        None => body_start + buf[body_start..].iter().position(|b| *b == 0)?,
    };
    let body = buf[body_start..body_end].to_vec();
    buf.drain(..=body_end);
    Some(TestFrame {
        command,
        headers,
        body,
    })
}

/// Reads STOMP frames from a WebSocket, remembering what kinds of messages carried them.
struct StompWs {
    ws: Ws,
    buf: Vec<u8>,
    saw_text: bool,
    saw_binary: bool,
}

impl StompWs {
    fn new(ws: Ws) -> Self {
        StompWs {
            ws,
            buf: Vec::new(),
            saw_text: false,
            saw_binary: false,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("ws send");
    }

    async fn frame(&mut self) -> TestFrame {
        loop {
            if let Some(f) = take_frame(&mut self.buf) {
                return f;
            }
            let msg = timeout(WAIT, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("ws closed")
                .expect("ws error");
            match msg {
                Message::Binary(b) => {
                    self.saw_binary = true;
                    self.buf.extend_from_slice(&b);
                }
                Message::Text(t) => {
                    self.saw_text = true;
                    self.buf.extend_from_slice(t.as_bytes());
                }
                Message::Close(c) => panic!("closed by server: {c:?}"),
                _ => {}
            }
        }
    }

    async fn connect(addr: SocketAddr) -> StompWs {
        let (ws, _) = ws_connect(addr, Some("v12.stomp"))
            .await
            .expect("handshake");
        let mut s = StompWs::new(ws);
        s.send(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
            .await;
        let f = s.frame().await;
        assert_eq!(f.command, "CONNECTED", "{f:?}");
        s
    }
}

#[tokio::test]
async fn handshake_echoes_each_subprotocol() {
    let running = start().await;
    let addr = ws_addr(&running);
    for p in ["v10.stomp", "v11.stomp", "v12.stomp"] {
        let (_, response) = ws_connect(addr, Some(p)).await.expect("handshake");
        let chosen = response.headers().get("sec-websocket-protocol");
        assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some(p));
    }
    let (_, response) = ws_connect(addr, Some("v10.stomp, v12.stomp, v11.stomp"))
        .await
        .expect("handshake");
    let chosen = response.headers().get("sec-websocket-protocol");
    assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some("v12.stomp"));
    running.shutdown().await;
}

#[tokio::test]
async fn handshake_without_subprotocol_is_stomp() {
    let running = start().await;
    let addr = ws_addr(&running);
    let (ws, response) = ws_connect(addr, None).await.expect("handshake");
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    let mut s = StompWs::new(ws);
    s.send(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    assert_eq!(s.frame().await.command, "CONNECTED");
    running.shutdown().await;
}

#[tokio::test]
async fn unknown_subprotocol_gets_400_with_an_explanation() {
    let running = start().await;
    let addr = ws_addr(&running);
    match ws_connect(addr, Some("mqtt")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    let answer = raw_exchange(
        addr,
        b"GET /stomp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt, amqp\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("v12.stomp"), "{answer}");
    running.shutdown().await;
}

#[tokio::test]
async fn plain_http_gets_the_console_or_a_clear_error() {
    let running = start().await;
    let addr = ws_addr(&running);
    let page = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    assert!(page.contains("Connection: close"), "{page}");
    for id in ["id=\"connect\"", "id=\"messages\"", "id=\"send-body\""] {
        assert!(page.contains(id), "page lacks {id}");
    }
    let index = raw_exchange(addr, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"));
    let js = raw_exchange(addr, b"GET /stompjs.umd.min.js HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(js.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(js.contains("StompJs"));
    let endpoint = raw_exchange(addr, b"GET /stomp HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(endpoint.starts_with("HTTP/1.1 426 "), "{endpoint}");
    let missing = raw_exchange(addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let garbage = raw_exchange(addr, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1garbage").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let stomp = raw_exchange(addr, b"CONNECT\naccept-version:1.2\n\n\0").await;
    assert!(stomp.starts_with("HTTP/1.1 400 "), "{stomp}");
    running.shutdown().await;
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let running = start().await;
    let (mut ws, _) = ws_connect(ws_addr(&running), Some("v12.stomp"))
        .await
        .expect("handshake");
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    let answer = timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) => return Some(p),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("no pong in time");
    assert_eq!(answer.as_deref(), Some(&b"are you there"[..]));
    running.shutdown().await;
}

#[tokio::test]
async fn frame_split_across_two_messages() {
    let running = start().await;
    let (ws, _) = ws_connect(ws_addr(&running), Some("v12.stomp"))
        .await
        .expect("handshake");
    let mut s = StompWs::new(ws);
    s.send(b"CONNECT\naccept-ver").await;
    s.send(b"sion:1.2\nhost:localhost\n\n\0").await;
    let f = s.frame().await;
    assert_eq!(f.command, "CONNECTED");
    assert_eq!(f.header("version"), Some("1.2"));
    running.shutdown().await;
}

#[tokio::test]
async fn two_frames_in_one_message() {
    let running = start().await;
    let (ws, _) = ws_connect(ws_addr(&running), Some("v12.stomp"))
        .await
        .expect("handshake");
    let mut s = StompWs::new(ws);
    s.send(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0SUBSCRIBE\nid:0\ndestination:/queue/two\nreceipt:r-1\n\n\0")
        .await;
    assert_eq!(s.frame().await.command, "CONNECTED");
    let r = s.frame().await;
    assert_eq!(r.command, "RECEIPT");
    assert_eq!(r.header("receipt-id"), Some("r-1"));
    running.shutdown().await;
}

#[tokio::test]
async fn binary_body_with_nuls_round_trips_as_binary_messages() {
    let running = start().await;
    let mut s = StompWs::connect(ws_addr(&running)).await;
    s.send(b"SUBSCRIBE\nid:0\ndestination:/queue/bin\nreceipt:r\n\n\0")
        .await;
    assert_eq!(s.frame().await.command, "RECEIPT");
    let body: Vec<u8> = vec![0x00, 0xff, 0x00, b'\n', 0xfe, 0x80, 0x00];
    let mut send = format!(
        "SEND\ndestination:/queue/bin\ncontent-type:application/octet-stream\ncontent-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    send.extend_from_slice(&body);
    send.push(0);
    s.send(&send).await;
    let m = s.frame().await;
    assert_eq!(m.command, "MESSAGE", "{m:?}");
    assert_eq!(m.body, body);
    assert!(s.saw_binary && !s.saw_text);
    running.shutdown().await;
}

#[tokio::test]
async fn one_mebibyte_message_round_trips() {
    let running = start().await;
    let mut s = StompWs::connect(ws_addr(&running)).await;
    s.send(b"SUBSCRIBE\nid:0\ndestination:/queue/big\nreceipt:r\n\n\0")
        .await;
    assert_eq!(s.frame().await.command, "RECEIPT");
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut send = format!(
        "SEND\ndestination:/queue/big\ncontent-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    send.extend_from_slice(&body);
    send.push(0);
    s.send(&send).await;
    let m = s.frame().await;
    assert_eq!(m.command, "MESSAGE");
    assert_eq!(m.body.len(), body.len());
    assert!(m.body == body);
    running.shutdown().await;
}

#[tokio::test]
async fn text_mode_sends_text_messages() {
    let running = start_with(|ws| ws.ws_binary_frames = Some(false)).await;
    let s = StompWs::connect(ws_addr(&running)).await;
    assert!(s.saw_text && !s.saw_binary);
    running.shutdown().await;
}

#[tokio::test]
async fn oversized_message_closes_the_connection() {
    let running = start_with(|ws| ws.ws_max_message_size = Some(64 * 1024)).await;
    let (mut ws, _) = ws_connect(ws_addr(&running), Some("v12.stomp"))
        .await
        .expect("handshake");
    let _ = ws
        .send(Message::Binary(vec![b'x'; 128 * 1024].into()))
        .await;
    let ended = timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "an oversized message must end the connection"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn websocket_producer_reaches_tcp_subscriber() {
    let running = start().await;
    let tcp_addr = running.addr(AcceptorProtocol::Stomp).expect("tcp bound");
    let mut tcp = TcpStream::connect(tcp_addr).await.expect("tcp connect");
    tcp.write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0SUBSCRIBE\nid:0\ndestination:/topic/mixed\nreceipt:sub\n\n\0")
        .await
        .expect("tcp write");
    let mut tcp_buf = Vec::new();
    let mut next_tcp = async |buf: &mut Vec<u8>| loop {
        if let Some(f) = take_frame(buf) {
            return f;
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("tcp frame in time")
            .expect("tcp read");
        assert!(n > 0, "tcp closed");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(next_tcp(&mut tcp_buf).await.command, "CONNECTED");
    assert_eq!(next_tcp(&mut tcp_buf).await.command, "RECEIPT");

    let mut s = StompWs::connect(ws_addr(&running)).await;
    s.send(b"SEND\ndestination:/topic/mixed\ncolour:blue\nreceipt:sent\n\nfrom the web\0")
        .await;
    assert_eq!(s.frame().await.command, "RECEIPT");
    let m = next_tcp(&mut tcp_buf).await;
    assert_eq!(m.command, "MESSAGE");
    assert_eq!(m.header("colour"), Some("blue"));
    assert_eq!(m.body, b"from the web");
    running.shutdown().await;
}

/// A raw WebSocket upgrade request for `path` with extra header lines; returns the response
/// head (the connection stays open after a 101, so only the head is read).
async fn raw_upgrade(addr: SocketAddr, path: &str, extra: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => head.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no response head in time"),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn upgrade_is_accepted_on_rabbitmq_ws_path_by_default() {
    let running = start().await;
    let addr = ws_addr(&running);
    for path in ["/ws", "/stomp", "/"] {
        let head = raw_upgrade(addr, path, "").await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{path}: {head}");
    }
}

#[tokio::test]
async fn upgrade_from_a_foreign_origin_is_refused_with_403() {
    let running = start().await;
    let addr = ws_addr(&running);
    let head = raw_upgrade(addr, "/stomp", "Origin: http://evil.example\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(head.contains("ws-allowed-origins"), "{head}");
    let head = raw_upgrade(addr, "/stomp", "Origin: null\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    // Same host, other port: another site as far as the browser is concerned.
    let other = format!(
        "Origin: http://127.0.0.1:{}\r\n",
        addr.port().wrapping_add(1)
    );
    let head = raw_upgrade(addr, "/stomp", &other).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
}

#[tokio::test]
async fn upgrade_without_origin_or_from_the_acceptors_own_origin_is_accepted() {
    let running = start().await;
    let addr = ws_addr(&running);
    let head = raw_upgrade(addr, "/stomp", "").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // The broker's own console page, served from this acceptor.
    let own = format!("Origin: http://{addr}\r\n");
    let head = raw_upgrade(addr, "/stomp", &own).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

#[tokio::test]
async fn ws_allowed_origins_lists_the_accepted_origins() {
    let running = start_with(|ws| {
        ws.ws_allowed_origins = Some(vec!["https://app.example.com".to_string()]);
    })
    .await;
    let addr = ws_addr(&running);
    let head = raw_upgrade(addr, "/stomp", "Origin: https://app.example.com\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let head = raw_upgrade(addr, "/stomp", "Origin: https://other.example.com\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let head = raw_upgrade(addr, "/stomp", "").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");

    let any = start_with(|ws| ws.ws_allowed_origins = Some(vec!["*".to_string()])).await;
    let head = raw_upgrade(
        ws_addr(&any),
        "/stomp",
        "Origin: http://anywhere.example\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

#[tokio::test]
async fn websocket_frames_end_with_nul_and_newline() {
    let running = start().await;
    let (mut ws, _) = ws_connect(ws_addr(&running), Some("v12.stomp"))
        .await
        .expect("handshake");
    ws.send(Message::Binary(
        b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0"
            .to_vec()
            .into(),
    ))
    .await
    .expect("send");
    let msg = timeout(WAIT, ws.next())
        .await
        .expect("CONNECTED in time")
        .expect("open")
        .expect("ok");
    let data = msg.into_data();
    assert!(data.starts_with(b"CONNECTED\n"), "{data:?}");
    assert!(data.ends_with(b"\0\n"), "{data:?}");
}

/// A large message (over large-message-threshold) streams out of its file: its MESSAGE
/// spans several WebSocket messages (head, body chunks, NUL), which a STOMP-over-WebSocket
/// client reassembles as it does any frame split across messages (@stomp/stompjs parses
/// byte by byte across messages).
#[tokio::test]
async fn a_large_message_spans_several_websocket_messages_and_reassembles() {
    let running = start().await;
    let mut s = StompWs::connect(ws_addr(&running)).await;
    s.send(b"SUBSCRIBE\nid:0\ndestination:/queue/large\nreceipt:r\n\n\0")
        .await;
    assert_eq!(s.frame().await.command, "RECEIPT");
    let body: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|i| (i % 253) as u8).collect();
    let mut send = format!(
        "SEND\ndestination:/queue/large\ncontent-length:{}\n\n",
        body.len()
    )
    .into_bytes();
    send.extend_from_slice(&body);
    send.push(0);
    // The producer's side may be split too: the decoder streams the body whatever the split.
    for piece in send.chunks(700 * 1024) {
        s.send(piece).await;
    }
    let mut messages = 0;
    let m = loop {
        if let Some(f) = take_frame(&mut s.buf) {
            break f;
        }
        let msg = timeout(WAIT, s.ws.next())
            .await
            .expect("no frame in time")
            .expect("ws closed")
            .expect("ws error");
        if let Message::Binary(b) = msg {
            messages += 1;
            s.buf.extend_from_slice(&b);
        }
    };
    assert_eq!(m.command, "MESSAGE", "{:?}", m.headers);
    assert!(m.body == body, "byte-exact");
    assert!(messages > 3, "one frame, {messages} WebSocket messages");
    running.shutdown().await;
}

/// Reads whatever the server sends until it closes; `None` if it is still open after WAIT.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let running = start().await;
    let addr = ws_addr(&running);
    // Far over the 32 KiB bound however the bytes arrive (hyper's read buffer may take a
    // little more than the bound in one read).
    let big = format!(
        "GET /nope HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = raw_exchange(addr, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.200}");
    let mut many = String::from("GET /nope HTTP/1.1\r\nHost: x\r\n");
    for i in 0..70 {
        many.push_str(&format!("X-Header-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    let answer = raw_exchange(addr, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.200}");
    // Just under the bound is fine.
    let fits = format!(
        "GET /nope HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(30 * 1024)
    );
    let answer = raw_exchange(addr, fits.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer:.200}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_request_head_not_finished_within_the_handshake_timeout_is_dropped() {
    let running = start_with(|ws| ws.limits.handshake_timeout_ms = Some(300)).await;
    let mut stream = TcpStream::connect(ws_addr(&running))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /stomp HTTP/1.1\r\nHost: x\r\nUpgrade: web")
        .await
        .expect("write");
    let answer = read_until_closed(&mut stream).await;
    assert_eq!(
        answer.as_deref(),
        Some(&b""[..]),
        "closed without an answer"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn head_gets_the_console_head_without_a_body() {
    let running = start().await;
    let answer = raw_exchange(ws_addr(&running), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Content-Type: text/html"), "{answer}");
    assert!(!answer.contains("Content-Length: 0\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_connection_over_the_limit_gets_503_naming_the_limit() {
    let running = start_with(|ws| ws.limits.max_connections = Some(1)).await;
    let addr = ws_addr(&running);
    let _held = StompWs::connect(addr).await;
    let answer = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    running.shutdown().await;
}

/// A client need not wait for the 101: a WebSocket frame sent in the same write as the
/// upgrade request is the start of the STOMP stream.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_read() {
    let running = start().await;
    let addr = ws_addr(&running);
    let mut bytes = format!(
        "GET /stomp HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    )
    .into_bytes();
    let payload = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0";
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    // FIN + binary, masked (clients must mask), length < 126.
    bytes.extend_from_slice(&[0x82, 0x80 | payload.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(&bytes).await.expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("CONNECTED") {
        match timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            other => panic!(
                "no CONNECTED ({other:?}): {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(
        text.contains("Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            || text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{text}"
    );
    running.shutdown().await;
}

/// One request per connection: a keep-alive client gets its answer with `Connection: close`
/// and the connection ends, so a request pipelined behind it (here an upgrade) is not served
/// on it; the browser opens a new connection for the WebSocket.
#[tokio::test]
async fn a_keep_alive_request_is_answered_once_and_the_connection_closed() {
    let running = start().await;
    let addr = ws_addr(&running);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\nGET /stomp HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let answer = raw_exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:.300}");
    assert!(answer.contains("Connection: close\r\n"), "{answer:.300}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer:.300}");
    // The upgrade on a connection of its own is served.
    let head = raw_upgrade(addr, "/stomp", "").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    running.shutdown().await;
}
