//! Helpers for tests that run the real `wrenmq` binary: start/kill/terminate it on a free port
//! with its own data dir, and a tiny raw-TCP STOMP 1.2 client. Every read has a timeout and
//! every wait is bounded, so a broken broker fails a test instead of hanging it.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broker may take to start listening or to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Default wait for one expected frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago, below the kernel's ephemeral range (32768 and up by
/// default). A port from `bind(0)` comes from that range, which is also where every outgoing
/// connection takes its local port: a broker's peer connections could take a port handed
/// out here before the process meant to listen on it had started (a cluster node then died
/// with "Address already in use"). Below the range only another `free_port` competes, and
/// each test process starts at its own offset.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n.wrapping_mul(7)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// One run of the broker binary. Killed (SIGKILL) on drop if still running.
pub struct Broker {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

/// How a broker process ended.
pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
}

fn spawn(data_dir: &Path, port: u16, config: Option<&Path>, log_name: &str) -> (Child, PathBuf) {
    let stderr_path = data_dir
        .parent()
        .unwrap_or(data_dir)
        .join(format!("{log_name}-{port}.stderr"));
    let stderr = File::create(&stderr_path).expect("create stderr log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wrenmq"));
    cmd.arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin-bind")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    (cmd.spawn().expect("spawn wrenmq"), stderr_path)
}

impl Broker {
    /// Starts the broker on a free port with `data_dir` and waits until it accepts TCP.
    pub fn start(data_dir: &Path) -> Broker {
        match Self::run_or_start(data_dir) {
            Ok(b) => b,
            Err(exit) => panic!(
                "broker exited during start-up with {}; stderr:\n{}",
                exit.status, exit.stderr
            ),
        }
    }

    /// Starts the broker with a configuration file (for address settings a test needs).
    pub fn start_with_config(data_dir: &Path, config: &Path) -> Broker {
        match Self::run_or_start_with(data_dir, Some(config)) {
            Ok(b) => b,
            Err(exit) => panic!(
                "broker exited during start-up with {}; stderr:\n{}",
                exit.status, exit.stderr
            ),
        }
    }

    /// Starts the broker, or returns how it ended if it exits during start-up.
    pub fn run_or_start(data_dir: &Path) -> Result<Broker, Exit> {
        Self::run_or_start_with(data_dir, None)
    }

    fn run_or_start_with(data_dir: &Path, config: Option<&Path>) -> Result<Broker, Exit> {
        let port = free_port();
        let (mut child, stderr_path) = spawn(data_dir, port, config, "broker");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(Exit { status, stderr });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Broker {
                    child: Some(child),
                    addr,
                    data_dir: data_dir.to_path_buf(),
                    stderr_path,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("broker neither listened on {addr} nor exited within {START_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a broker that is expected to refuse to start, and returns how it ended.
    pub fn run_expecting_exit(data_dir: &Path, config: Option<&Path>) -> Exit {
        let (mut child, stderr_path) = spawn(data_dir, free_port(), config, "refused");
        let status = wait_bounded(&mut child, START_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("broker was expected to exit but kept running; stderr:\n{log}");
        });
        Exit {
            status,
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        }
    }

    /// Where the admin listener is bound (it takes a free port; the broker logs it at start).
    pub fn admin_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = strip_ansi(&self.stderr());
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains("admin listener"))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.trim_matches('"').parse().ok())
            {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "no admin listener in the log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL broker");
            c.wait().expect("reap broker");
        }
    }

    /// SIGTERM, then waits for the graceful shutdown to finish.
    pub fn terminate(mut self) -> Exit {
        let mut child = self.child.take().expect("broker running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(ok.success(), "kill -TERM failed");
        let status = wait_bounded(&mut child, START_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker did not exit within {START_TIMEOUT:?} of SIGTERM");
        });
        Exit {
            status,
            stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The broker process's id, for reading its memory use from /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal.redb")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A connected client (STOMP 1.2, no heart-beats).
    pub fn client(&self) -> Client {
        Client::connect(self.addr, &[])
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A decoded server frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    /// The first value of a header (STOMP: the first occurrence wins).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal blocking STOMP 1.2 client over raw TCP.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The CONNECTED frame's `server` header: which broker (and cluster node) answered.
    pub server: Option<String>,
}

impl Client {
    /// Connects and completes the CONNECT/CONNECTED handshake.
    pub fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
        Self::try_connect(addr, headers).expect("STOMP connect")
    }

    pub fn try_connect(addr: SocketAddr, headers: &[(&str, &str)]) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, FRAME_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(FRAME_TIMEOUT))?;
        let mut c = Client {
            stream,
            buf: Vec::new(),
            server: None,
        };
        let mut h = vec![
            ("accept-version", "1.2"),
            ("host", "localhost"),
            ("heart-beat", "0,0"),
        ];
        h.extend_from_slice(headers);
        c.send_frame("CONNECT", &h, b"")?;
        match c.read_frame(FRAME_TIMEOUT)? {
            Some(f) if f.command == "CONNECTED" => {
                c.server = f.header("server").map(str::to_string);
                Ok(c)
            }
            other => Err(io::Error::other(format!(
                "expected CONNECTED, got {other:?}"
            ))),
        }
    }

    /// Writes one frame. Header values are escaped as STOMP 1.2 requires (except CONNECT).
    pub fn send_frame(
        &mut self,
        command: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut out = Vec::with_capacity(64 + body.len());
        out.extend_from_slice(command.as_bytes());
        out.push(b'\n');
        let escape = command != "CONNECT" && command != "STOMP";
        for (k, v) in headers {
            push_escaped(&mut out, k, escape);
            out.push(b':');
            push_escaped(&mut out, v, escape);
            out.push(b'\n');
        }
        if !body.is_empty() {
            out.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(body);
        out.push(0);
        self.stream.write_all(&out)
    }

    /// Reads the next frame, skipping heart-beat EOLs. `Ok(None)` on timeout; an error when
    /// the connection closed or the bytes are not a frame.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.parse_buffered()? {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the broker",
                    ));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a frame that must arrive within [`FRAME_TIMEOUT`].
    pub fn expect_frame(&mut self) -> Frame {
        match self.read_frame(FRAME_TIMEOUT) {
            Ok(Some(f)) => f,
            Ok(None) => panic!("no frame within {FRAME_TIMEOUT:?}"),
            Err(e) => panic!("reading a frame failed: {e}"),
        }
    }

    /// Waits for RECEIPT `id`; any other frame is a test failure.
    pub fn expect_receipt(&mut self, id: &str) {
        let f = self.expect_frame();
        assert_eq!(f.command, "RECEIPT", "expected RECEIPT {id}, got {f:?}");
        assert_eq!(f.header("receipt-id"), Some(id), "{f:?}");
    }

    /// SEND with a receipt, waiting for it.
    pub fn send_confirmed(
        &mut self,
        dest: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        receipt: &str,
    ) {
        let mut h = vec![("destination", dest), ("receipt", receipt)];
        h.extend_from_slice(extra);
        self.send_frame("SEND", &h, body).expect("write SEND");
        self.expect_receipt(receipt);
    }

    /// SUBSCRIBE with a receipt, waiting for it.
    pub fn subscribe(&mut self, dest: &str, id: &str, ack: &str, extra: &[(&str, &str)]) {
        let receipt = format!("sub-{id}");
        let mut h = vec![
            ("destination", dest),
            ("id", id),
            ("ack", ack),
            ("receipt", receipt.as_str()),
        ];
        h.extend_from_slice(extra);
        self.send_frame("SUBSCRIBE", &h, b"")
            .expect("write SUBSCRIBE");
        self.expect_receipt(&receipt);
    }

    /// DISCONNECT with a receipt, waiting for it.
    pub fn disconnect(mut self) {
        self.send_frame("DISCONNECT", &[("receipt", "bye")], b"")
            .expect("write DISCONNECT");
        self.expect_receipt("bye");
    }

    /// Receives MESSAGE frames until none arrives for `quiet` (bounded by `limit` overall).
    pub fn drain(&mut self, quiet: Duration, limit: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.read_frame(quiet) {
                Ok(Some(f)) => {
                    assert_eq!(
                        f.command, "MESSAGE",
                        "unexpected frame while draining: {f:?}"
                    );
                    out.push(f);
                }
                Ok(None) => return out,
                Err(e) => panic!("connection failed while draining: {e}"),
            }
        }
        panic!("messages kept coming for {limit:?}; got {}", out.len());
    }

    fn parse_buffered(&mut self) -> io::Result<Option<Frame>> {
        // Heart-beats (and the optional EOLs after a frame's NUL).
        let skip = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        self.buf.drain(..skip);
        let Some(head_end) = find(&self.buf, b"\n\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let command = lines.next().unwrap_or_default().to_string();
        let escaped = command != "CONNECTED";
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line.split_once(':').ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad header line {line:?}"),
                )
            })?;
            let (k, v) = if escaped {
                (unescape(k), unescape(v))
            } else {
                (k.to_string(), v.to_string())
            };
            headers.push((k, v));
        }
        let body_start = head_end + 2;
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse::<usize>())
            .transpose()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let body_end = match length {
            Some(n) => {
                if self.buf.len() < body_start + n + 1 {
                    return Ok(None);
                }
                if self.buf[body_start + n] != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "frame body not followed by NUL",
                    ));
                }
                body_start + n
            }
            None => match self.buf[body_start..].iter().position(|&b| b == 0) {
                Some(p) => body_start + p,
                None => return Ok(None),
            },
        };
        let body = self.buf[body_start..body_end].to_vec();
        self.buf.drain(..=body_end);
        Ok(Some(Frame {
            command,
            headers,
            body,
        }))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn push_escaped(out: &mut Vec<u8>, s: &str, escape: bool) {
    if !escape {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            ':' => out.extend_from_slice(b"\\c"),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The whole content of a file (for byte-identical checks).
pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The text without ANSI colour sequences (`ESC [ ... m`), whatever the log format colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
