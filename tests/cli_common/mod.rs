//! The real `wrenmq` binary, spawned as a broker on ephemeral loopback ports and run as a
//! client against it, as an operator would use it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wrenmq")
}

/// A `wrenmq` client command with a clean environment: no contexts file or WRENMQ_*
/// variables of the machine leak in, stdin is empty.
pub fn wrenmq(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .stdin(Stdio::null())
        .env("WRENMQ_CONTEXTS", "/nonexistent/wrenmq-contexts.toml");
    for v in [
        "WRENMQ_URL",
        "WRENMQ_STOMP",
        "WRENMQ_USER",
        "WRENMQ_PASSWORD",
        "WRENMQ_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
}

/// Runs a client command to the end, bounded: a hung client fails the test. Output is read
/// while it runs, so a large one cannot block it on a full pipe.
pub fn run(mut cmd: Command) -> Output {
    use std::io::Read;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wrenmq");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("wrenmq did not finish within 60 s: {cmd:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code (a signal is a test failure).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

/// A broker process with its log lines.
pub struct Broker {
    child: Child,
    /// Every stderr line so far.
    pub lines: Arc<Mutex<Vec<String>>>,
    /// The STOMP acceptor's address.
    pub stomp: SocketAddr,
    /// The admin listener's address.
    pub admin: SocketAddr,
    /// Its data directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Broker {
    /// Starts `wrenmq` with `extra` arguments (e.g. `--log-format json`), on an ephemeral
    /// STOMP port and a temporary data directory; returns once it logged "WrenMQ ready".
    pub fn start(extra: &[&str]) -> Broker {
        Self::start_with(extra, |_| {})
    }

    /// As [`Broker::start`], with a hook to adjust the command (environment).
    pub fn start_with(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(bin());
        cmd.arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--admin-bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG");
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn the broker");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let err = child.stderr.take().expect("stderr piped");
        let store = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                store.lock().expect("lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let stomp = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "the broker did not log 'WrenMQ ready' within 30 s: {:?}",
                        lines.lock().expect("lines")
                    );
                }
            };
            if line.contains("WrenMQ ready") && line.contains("tomp") {
                break ready_addr(&line).expect("an addr in the ready line");
            }
        };
        let admin = lines
            .lock()
            .expect("lines")
            .iter()
            .find(|l| l.contains("admin listener"))
            .and_then(|l| ready_addr(l))
            .expect("the broker logs its admin listener's address before it is ready");
        Broker {
            child,
            lines,
            stomp,
            admin,
            dir,
        }
    }

    /// `stomp://127.0.0.1:PORT`.
    pub fn stomp_url(&self) -> String {
        format!("stomp://{}", self.stomp)
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// A copy of the log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The broker's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `addr` of a ready line, in text (`addr=1.2.3.4:5`) or JSON (`"addr":"1.2.3.4:5"`).
pub fn ready_addr(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v["fields"]["addr"].as_str()?.parse().ok();
    }
    let at = line.find("addr=")? + "addr=".len();
    let rest = &line[at..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    // Escape codes may follow the value on a terminal; strip anything after the port.
    let text: String = rest[..end]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':' || *c == '[' || *c == ']')
        .collect();
    text.parse().ok()
}

/// A minimal blocking STOMP client over a real socket, for what the CLI itself does not do
/// (NACK a message to the dead-letter address, stay connected to be closed).
pub struct RawStomp {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

/// A frame read by [`RawStomp`].
#[derive(Debug)]
pub struct RawFrame {
    /// The command line.
    pub command: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawFrame {
    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl RawStomp {
    /// Connects (STOMP 1.2) with `client-id`.
    pub fn connect(addr: SocketAddr, client_id: &str) -> RawStomp {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c = RawStomp {
            stream,
            buf: Vec::new(),
        };
        c.send(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "/"),
                ("client-id", client_id),
            ],
            b"",
        );
        let f = c.read_frame();
        assert_eq!(f.command, "CONNECTED", "{f:?}");
        c
    }

    /// Writes one frame.
    pub fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8]) {
        use std::io::Write;
        let mut out = format!("{command}\n");
        for (k, v) in headers {
            out.push_str(&format!("{k}:{v}\n"));
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes.push(0);
        self.stream.write_all(&bytes).expect("write");
    }

    /// Reads the next frame (heart-beat EOLs skipped), within the socket's 10 s timeout.
    pub fn read_frame(&mut self) -> RawFrame {
        self.try_read_frame().expect("a frame within 10 s")
    }

    /// The next frame, or `None` at end of stream or timeout.
    pub fn try_read_frame(&mut self) -> Option<RawFrame> {
        use std::io::Read;
        loop {
            while matches!(self.buf.first(), Some(b'\n' | b'\r')) {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.iter().position(|b| *b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                let text = &frame[..frame.len() - 1];
                let split = text
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .unwrap_or(text.len());
                let head = String::from_utf8_lossy(&text[..split]).into_owned();
                let body = text.get(split + 2..).unwrap_or_default().to_vec();
                let mut lines = head.lines();
                let command = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                return Some(RawFrame {
                    command,
                    headers,
                    body,
                });
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
