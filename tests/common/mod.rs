//! Shared helpers for the integration tests: an in-process broker on an ephemeral port and a
//! raw STOMP client with its own minimal parser (independent of the broker's codec), so the
//! tests control every byte that goes out and check every byte that comes back.
//!
//! Every read is bounded by a timeout, so no test can hang.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use wrenmq::config::{AcceptorProtocol, AddressSettingsEntry, Config};
use wrenmq::server::{self, RunningBroker};

/// How long any single expected read may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits to be reasonably sure that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// The default test configuration: one STOMP acceptor on 127.0.0.1:0, journal disabled.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.acceptors[0].bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.journal.enabled = false;
    config
}

/// A configuration whose `#` address settings refuse to auto-create anything.
pub fn no_auto_create_config() -> Config {
    let mut config = test_config();
    config.address_settings.push(AddressSettingsEntry {
        pattern: "#".to_string(),
        auto_create_addresses: Some(false),
        auto_create_queues: Some(false),
        ..Default::default()
    });
    config
}

/// A running broker and the address of its STOMP acceptor.
pub struct TestBroker {
    pub running: RunningBroker,
    pub addr: SocketAddr,
}

impl TestBroker {
    /// Opens a raw TCP connection (no CONNECT sent).
    pub async fn tcp(&self) -> Client {
        Client::tcp(self.addr).await
    }

    /// Opens a connection and performs a STOMP 1.2 CONNECT.
    pub async fn client(&self) -> Client {
        let mut c = self.tcp().await;
        c.connect_12().await;
        c
    }

    /// A STOMP 1.2 connection with a `client-id` (durable subscriptions and named stream
    /// consumers need one).
    pub async fn client_with_id(&self, id: &str) -> Client {
        let mut c = self.tcp().await;
        c.send_frame(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("client-id", id),
            ],
            b"",
        )
        .await;
        c.expect_frame("CONNECTED").await;
        c
    }

    /// Opens a connection and performs a STOMP 1.1 CONNECT.
    pub async fn client_11(&self) -> Client {
        let mut c = self.tcp().await;
        c.write(b"CONNECT\naccept-version:1.1\nhost:localhost\n\n\0")
            .await;
        let f = c.expect_frame("CONNECTED").await;
        assert_eq!(f.get("version"), Some("1.1"));
        c.version = Ver::V11;
        c
    }

    /// Opens a connection and performs a STOMP 1.0 CONNECT (no accept-version).
    pub async fn client_10(&self) -> Client {
        let mut c = self.tcp().await;
        c.write(b"CONNECT\n\n\0").await;
        let f = c.expect_frame("CONNECTED").await;
        assert_eq!(f.get("version"), Some("1.0"));
        c.version = Ver::V10;
        c
    }

    /// Graceful shutdown.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Starts a broker with `config`.
pub async fn start(mut config: Config) -> TestBroker {
    init_tracing();
    // Tests run side by side: the admin listener takes a free port, like the acceptors.
    let mut admin = config.admin.bind;
    admin.set_port(0);
    config.override_admin_bind(admin);
    let running = server::start(config).await.expect("broker starts");
    let addr = running
        .addr(AcceptorProtocol::Stomp)
        .expect("a STOMP acceptor is bound");
    TestBroker { running, addr }
}

/// Starts a broker with [`test_config`].
pub async fn start_default() -> TestBroker {
    start(test_config()).await
}

fn init_tracing() {
    // RUST_LOG=wrenmq=debug cargo test -- --nocapture shows the broker's side.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A frame as the test client parsed it.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    /// Headers in wire order, unescaped according to the negotiated version.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.command)?;
        for (k, v) in &self.headers {
            writeln!(f, "  {k:?}: {v:?}")?;
        }
        write!(f, "  body: {:?}", String::from_utf8_lossy(&self.body))
    }
}

impl Frame {
    /// The first header called `name` (STOMP: the first occurrence wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header called `name`; panics with the frame when missing.
    pub fn h(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("header '{name}' missing in {self:?}"))
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("body is UTF-8")
    }
}

/// The STOMP version the client parses with (decides header unescaping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ver {
    V10,
    V11,
    V12,
}

/// Why a read gave no frame.
#[derive(Debug)]
pub enum ReadEnd {
    /// Nothing complete arrived in time.
    Timeout,
    /// The peer closed (EOF or reset).
    Closed(String),
    /// The bytes were not a STOMP frame the test parser understands.
    Garbage(String),
}

/// One thing read from the wire.
#[derive(Debug)]
pub enum Item {
    Frame(Frame),
    HeartBeat,
}

/// A raw STOMP client.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: Option<String>,
    /// MESSAGE frames that arrived while waiting for a RECEIPT, handed out first.
    stash: VecDeque<Frame>,
    /// Escaping rules for parsing server frames.
    pub version: Ver,
    /// Bare EOLs (heart-beats) received so far.
    pub heartbeats: usize,
    /// Whether the broker ends frames with NUL + EOL (`frame-eol`, the default): the one EOL
    /// right after a frame is then its end, not a heart-beat.
    pub frame_eol: bool,
    /// A frame was just parsed and its trailing EOL (if `frame_eol`) not yet seen.
    after_frame: bool,
}

impl Client {
    /// Connects the TCP socket only.
    pub async fn tcp(addr: SocketAddr) -> Client {
        Client::try_tcp(addr).await.expect("TCP connect")
    }

    /// Connects the TCP socket only, reporting failure.
    pub async fn try_tcp(addr: SocketAddr) -> io::Result<Client> {
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
            eof: None,
            stash: VecDeque::new(),
            version: Ver::V12,
            heartbeats: 0,
            frame_eol: true,
            after_frame: false,
        })
    }

    /// Sends `CONNECT accept-version:1.2` and returns the CONNECTED frame.
    pub async fn connect_12(&mut self) -> Frame {
        self.write(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
            .await;
        let f = self.expect_frame("CONNECTED").await;
        assert_eq!(f.get("version"), Some("1.2"), "{f:?}");
        self.version = Ver::V12;
        f
    }

    /// Writes raw bytes; panics on failure.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.try_write(bytes).await.expect("write to broker");
    }

    /// Writes raw bytes.
    pub async fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Writes one frame: headers as given (no escaping, no added content-length), the body,
    /// and the NUL.
    pub async fn send_frame(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8]) {
        self.write(&frame_bytes(command, headers, body)).await;
    }

    /// Sends a frame with a `receipt` header and waits for its RECEIPT. MESSAGE frames that
    /// arrive first (the spec does not order them against the RECEIPT, e.g. an ACK that
    /// opens the window) are kept and returned by the next reads; any other frame fails.
    pub async fn send_with_receipt(
        &mut self,
        command: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        receipt: &str,
    ) {
        self.send_with_receipt_within(command, headers, body, receipt, TIMEOUT)
            .await;
    }

    /// [`Client::send_with_receipt`] with a deadline of its own, for a receipt that comes
    /// only after the broker has worked through a large backlog (a debug build on a loaded
    /// machine takes seconds for 100,000 queued SENDs), where [`TIMEOUT`] would measure the
    /// machine's speed rather than catch a stall.
    pub async fn send_with_receipt_within(
        &mut self,
        command: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        receipt: &str,
        within: Duration,
    ) {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        all.push(("receipt", receipt));
        self.send_frame(command, &all, body).await;
        let mut skipped = VecDeque::new();
        loop {
            let f = match self.read_frame(within).await {
                Ok(f) => f,
                Err(e) => panic!("expected RECEIPT for {command} '{receipt}', got {e:?}"),
            };
            match f.command.as_str() {
                "RECEIPT" => {
                    assert_eq!(f.get("receipt-id"), Some(receipt), "{f:?}");
                    break;
                }
                "MESSAGE" => skipped.push_back(f),
                _ => panic!("expected RECEIPT for {command} '{receipt}', got {f:?}"),
            }
        }
        self.stash.extend(skipped);
    }

    /// Closes the sending side only (TCP half-close): the client can still read.
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown write half");
    }

    /// SEND with a text body, confirmed by a receipt.
    pub async fn send_msg(&mut self, destination: &str, body: &str) {
        self.send_with_receipt(
            "SEND",
            &[("destination", destination)],
            body.as_bytes(),
            &format!("send-{destination}-{body}"),
        )
        .await;
    }

    /// SEND with a text body and no receipt.
    pub async fn send_msg_nowait(&mut self, destination: &str, body: &str) {
        self.send_frame("SEND", &[("destination", destination)], body.as_bytes())
            .await;
    }

    /// SUBSCRIBE confirmed by a receipt; `extra` headers are appended.
    pub async fn subscribe(&mut self, destination: &str, id: &str, extra: &[(&str, &str)]) {
        let mut headers = vec![("destination", destination), ("id", id)];
        headers.extend_from_slice(extra);
        self.send_with_receipt("SUBSCRIBE", &headers, b"", &format!("sub-{id}"))
            .await;
    }

    /// DISCONNECT with a receipt, then waits for the broker to close the socket.
    pub async fn disconnect(mut self) {
        self.send_frame("DISCONNECT", &[("receipt", "bye")], b"")
            .await;
        let r = self.expect_frame("RECEIPT").await;
        assert_eq!(r.get("receipt-id"), Some("bye"));
        self.expect_eof().await;
    }

    /// Reads the next frame or heart-beat within `within`.
    pub async fn read_item(&mut self, within: Duration) -> Result<Item, ReadEnd> {
        let deadline = Instant::now() + within;
        loop {
            if self.after_frame {
                if self.buf.starts_with(b"\n") {
                    self.buf.drain(..1);
                    self.after_frame = false;
                } else if self.buf.starts_with(b"\r\n") {
                    self.buf.drain(..2);
                    self.after_frame = false;
                } else if !self.buf.is_empty() && self.buf != b"\r" {
                    self.after_frame = false;
                }
            }
            match parse_item(&mut self.buf, self.version) {
                Ok(Some(Item::HeartBeat)) => {
                    self.heartbeats += 1;
                    return Ok(Item::HeartBeat);
                }
                Ok(Some(item)) => {
                    self.after_frame = self.frame_eol;
                    return Ok(item);
                }
                Ok(None) => {}
                Err(e) => return Err(ReadEnd::Garbage(e)),
            }
            if let Some(why) = &self.eof {
                return Err(ReadEnd::Closed(why.clone()));
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(ReadEnd::Timeout),
                Ok(Ok(0)) => self.eof = Some("EOF".to_string()),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => self.eof = Some(format!("{e}")),
            }
        }
    }

    /// Reads the next frame within `within`, skipping heart-beats; frames stashed while
    /// waiting for a RECEIPT come first.
    pub async fn next_frame(&mut self, within: Duration) -> Result<Frame, ReadEnd> {
        if let Some(f) = self.stash.pop_front() {
            return Ok(f);
        }
        self.read_frame(within).await
    }

    /// Reads the next frame from the socket within `within`, skipping heart-beats.
    async fn read_frame(&mut self, within: Duration) -> Result<Frame, ReadEnd> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_item(left).await? {
                Item::Frame(f) => return Ok(f),
                Item::HeartBeat => continue,
            }
        }
    }

    /// Expects the next frame to be `command`; fails the test otherwise.
    pub async fn expect_frame(&mut self, command: &str) -> Frame {
        match self.next_frame(TIMEOUT).await {
            Ok(f) if f.command == command => f,
            Ok(f) => panic!("expected {command}, got {f:?}"),
            Err(e) => panic!("expected {command}, got {e:?}"),
        }
    }

    /// Expects any frame.
    pub async fn expect_frame_any(&mut self) -> Frame {
        match self.next_frame(TIMEOUT).await {
            Ok(f) => f,
            Err(e) => panic!("expected a frame, got {e:?}"),
        }
    }

    /// Expects `n` MESSAGE frames.
    pub async fn expect_messages(&mut self, n: usize) -> Vec<Frame> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.expect_frame("MESSAGE").await);
        }
        v
    }

    /// Every MESSAGE frame until the connection has been quiet for [`QUIET`]; any other frame,
    /// or the connection failing, is a test failure.
    pub async fn messages_until_quiet(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            match self.next_frame(QUIET).await {
                Ok(f) if f.command == "MESSAGE" => out.push(f),
                Ok(f) => panic!("expected MESSAGE, got {f:?}"),
                Err(ReadEnd::Timeout) => return out,
                Err(e) => panic!("connection failed while reading messages: {e:?}"),
            }
        }
    }

    /// The bodies of [`Client::messages_until_quiet`].
    pub async fn bodies_until_quiet(&mut self) -> Vec<String> {
        self.messages_until_quiet()
            .await
            .iter()
            .map(Frame::text)
            .collect()
    }

    /// Expects no frame (heart-beats are ignored) within `within`, and the connection open.
    pub async fn expect_no_frame(&mut self, within: Duration) {
        match self.next_frame(within).await {
            Err(ReadEnd::Timeout) => {}
            Ok(f) => panic!("expected no frame, got {f:?}"),
            Err(e) => panic!("expected no frame and an open connection, got {e:?}"),
        }
    }

    /// Expects the socket to reach EOF (or reset) with no frame before it.
    pub async fn expect_eof(&mut self) {
        match self.next_frame(TIMEOUT).await {
            Err(ReadEnd::Closed(_)) => {}
            Ok(f) => panic!("expected the broker to close the connection, got {f:?}"),
            Err(e) => panic!("expected the broker to close the connection, got {e:?}"),
        }
    }

    /// Expects the broker to close the connection, after an optional ERROR frame, which is
    /// returned.
    pub async fn expect_closed(&mut self) -> Option<Frame> {
        match self.next_frame(TIMEOUT).await {
            Err(ReadEnd::Closed(_)) => None,
            Ok(f) if f.command == "ERROR" => {
                self.expect_eof().await;
                Some(f)
            }
            Ok(f) => panic!("expected ERROR or close, got {f:?}"),
            Err(e) => panic!("expected ERROR or close, got {e:?}"),
        }
    }

    /// Expects an ERROR frame and then the broker closing the connection.
    pub async fn expect_error_and_close(&mut self) -> Frame {
        let e = self.expect_frame("ERROR").await;
        assert!(
            e.get("message").is_some_and(|m| !m.is_empty()),
            "ERROR has no message header: {e:?}"
        );
        self.expect_eof().await;
        e
    }
}

/// Builds a frame's bytes exactly as given.
pub fn frame_bytes(command: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(command.as_bytes());
    out.push(b'\n');
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(0);
    out
}

/// Parses one item from the front of `buf`, consuming it; `Ok(None)` = need more bytes.
fn parse_item(buf: &mut Vec<u8>, version: Ver) -> Result<Option<Item>, String> {
    // Heart-beats: a bare LF or CRLF between frames.
    if buf.first() == Some(&b'\n') {
        buf.drain(..1);
        return Ok(Some(Item::HeartBeat));
    }
    if buf.starts_with(b"\r\n") {
        buf.drain(..2);
        return Ok(Some(Item::HeartBeat));
    }
    if buf == b"\r" {
        return Ok(None);
    }
    let mut pos = 0;
    let mut lines: Vec<String> = Vec::new();
    // Command and header lines up to the blank line.
    loop {
        let Some(nl) = buf[pos..].iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let mut line = &buf[pos..pos + nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        lines.push(
            String::from_utf8(line.to_vec())
                .map_err(|_| format!("non-UTF-8 line {:?}", String::from_utf8_lossy(line)))?,
        );
    }
    let command = lines.remove(0);
    let escapes = command != "CONNECTED" && version != Ver::V10;
    let mut headers = Vec::new();
    for line in &lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without colon: {line:?}"))?;
        if escapes {
            // STOMP 1.1/1.2: a colon inside a name or value must be sent as `\c`.
            if v.contains(':') {
                return Err(format!(
                    "{command}: unescaped ':' in header value: {line:?}"
                ));
            }
            headers.push((unescape(k, version)?, unescape(v, version)?));
        } else {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .map_err(|e| format!("bad content-length: {e}"))?;
    let body = match content_length {
        Some(n) => {
            if buf.len() < pos + n + 1 {
                return Ok(None);
            }
            if buf[pos + n] != 0 {
                return Err(format!(
                    "{command}: body of content-length {n} not followed by NUL"
                ));
            }
            let body = buf[pos..pos + n].to_vec();
            pos += n + 1;
            body
        }
        None => {
            let Some(nul) = buf[pos..].iter().position(|b| *b == 0) else {
                return Ok(None);
            };
            let body = buf[pos..pos + nul].to_vec();
            pos += nul + 1;
            body
        }
    };
    buf.drain(..pos);
    Ok(Some(Item::Frame(Frame {
        command,
        headers,
        body,
    })))
}

fn unescape(s: &str, version: Ver) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some('r') if version == Ver::V12 => out.push('\r'),
            other => return Err(format!("invalid escape \\{other:?} in {s:?}")),
        }
    }
    Ok(out)
}

/// Sends one SEND to `destination` per `(header, value)`, each on its own connection, and
/// asserts each gets an ERROR naming the header and the value and closes; then that nothing
/// reached the destination's queue.
pub async fn assert_bad_send_headers(
    broker: &TestBroker,
    destination: &str,
    cases: &[(&str, &str)],
) {
    for &(header, value) in cases {
        let mut c = broker.client().await;
        c.send_frame(
            "SEND",
            &[
                ("destination", destination),
                (header, value),
                ("receipt", "r"),
            ],
            b"x",
        )
        .await;
        let e = c.expect_error_and_close().await;
        let text = format!("{} {}", e.h("message"), e.text());
        assert!(
            text.contains(header) && text.contains(value),
            "{header}:{value} -> {e:?}"
        );
    }
    let mut c = broker.client().await;
    c.subscribe(destination, "s", &[]).await;
    c.expect_no_frame(QUIET).await;
}

/// Drains MESSAGE frames until `n` have arrived, returning their bodies.
pub async fn bodies(client: &mut Client, n: usize) -> Vec<String> {
    client
        .expect_messages(n)
        .await
        .iter()
        .map(Frame::text)
        .collect()
}

/// `["m0", "m1", ...]`.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}
