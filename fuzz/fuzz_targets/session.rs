//! A stateful session fuzzer: each input is a sequence of client actions (CONNECT in some
//! version or not at all, SEND with or without receipt and transaction, SUBSCRIBE in every
//! ack mode, ACK and NACK of what arrived or of made-up ids, transactions, UNSUBSCRIBE,
//! raw bytes) played over a real TCP connection against one in-process broker, reading what
//! comes back after each action. It checks:
//! - the broker never panics (a panic in any of its tasks aborts the fuzzer);
//! - every ERROR is followed by the connection closing;
//! - the session ends (RECEIPT for a DISCONNECT, or ERROR and close) within a bound;
//! - no message arrives on a subscription twice without `redelivered:true`, none arrives that
//!   was never sent, and none of an aborted transaction;
//! - once the connection is gone the broker counts it closed (nothing per-client left).
//!
//! Destinations are a small fixed set on ring queues of 32, so leftovers of earlier inputs
//! (which may arrive; their ids say which input sent them) keep the broker's memory bounded
//! over hours of inputs.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wrenmq::config::{AddressSettingsEntry, Config};
use wrenmq::server::{self, RunningBroker};
use wrenmq::stomp::{Decoded, Decoder, Frame, Limits, Version};

const DESTINATIONS: &[&str] = &["/queue/f0", "/queue/f1", "/topic/t0", "/topic/t1"];
const SELECTORS: &[&str] = &[
    "n > 2",
    "kind = 'b'",
    "n BETWEEN 1 AND 3 OR kind IS NULL",
    "(((",
];
const END_WITHIN: Duration = Duration::from_secs(10);

#[derive(Arbitrary, Debug)]
enum Connect {
    V10,
    V11,
    V12,
    /// a STOMP frame instead of CONNECT, with heart-beats asked for
    Stomp12HeartBeat,
    /// no CONNECT at all: the first action is the first frame
    None,
}

#[derive(Arbitrary, Debug)]
enum Action {
    Send {
        dest: u8,
        tx: Option<u8>,
        receipt: bool,
        persistent: bool,
        kind: bool,
        n: u8,
        body: u8,
    },
    Subscribe {
        dest: u8,
        id: u8,
        ack: u8,
        prefetch: Option<u8>,
        selector: Option<u8>,
    },
    Unsubscribe {
        id: u8,
    },
    Ack {
        which: u8,
        tx: Option<u8>,
        bogus: bool,
    },
    Nack {
        which: u8,
        tx: Option<u8>,
    },
    Begin {
        tx: u8,
    },
    Commit {
        tx: u8,
        receipt: bool,
    },
    Abort {
        tx: u8,
    },
    Raw(Vec<u8>),
    Wait,
}

#[derive(Arbitrary, Debug)]
struct Script {
    connect: Connect,
    actions: Vec<Action>,
}

struct Fixture {
    addr: SocketAddr,
    running: RunningBroker,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // A panic in any broker task would be caught by tokio; the fuzzer must see it.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            std::process::abort();
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::default();
        config.acceptors[0].bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.journal.enabled = false;
        config.admin.enabled = false;
        match config
            .address_settings
            .iter_mut()
            .find(|e| e.pattern == "#")
        {
            Some(entry) => entry.default_ring_size = Some(32),
            None => config.address_settings.push(AddressSettingsEntry {
                pattern: "#".into(),
                default_ring_size: Some(32),
                ..Default::default()
            }),
        }
        let running = runtime
            .block_on(server::start(config))
            .expect("broker starts");
        let addr = running
            .addr(wrenmq::config::AcceptorProtocol::Stomp)
            .expect("acceptor");
        Fixture {
            addr,
            running,
            _runtime: runtime,
        }
    })
}

static INPUT: AtomicU64 = AtomicU64::new(0);

/// What one subscription has seen.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
}

struct Session {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    input: u64,
    sent: HashSet<String>,
    aborted: HashSet<String>,
    tx_pending: HashMap<u8, Vec<String>>,
    seen: HashMap<String, Seen>,
    acks: Vec<String>,
    error: Option<Frame>,
    closed: bool,
    receipt_end: bool,
    next_id: u32,
}

impl Session {
    fn write(&mut self, bytes: &[u8]) {
        if self.closed || self.error.is_some() {
            return;
        }
        if self.stream.set_nonblocking(false).is_err() || self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    fn frame(&mut self, command: &str, headers: &[(&str, String)], body: &[u8]) {
        let mut out = Vec::with_capacity(64 + body.len());
        out.extend_from_slice(command.as_bytes());
        out.push(b'\n');
        for (k, v) in headers {
            out.extend_from_slice(k.as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(format!("content-length:{}\n\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.push(0);
        self.write(&out);
    }

    /// Reads what the broker has sent: one read waiting at most `wait` (none when zero),
    /// then whatever else is already there; records and checks each frame.
    fn pump(&mut self, wait: Duration) {
        let mut chunk = [0u8; 16384];
        let mut blocking = !wait.is_zero();
        loop {
            if self.closed {
                return;
            }
            let set = if blocking {
                self.stream
                    .set_nonblocking(false)
                    .and_then(|()| self.stream.set_read_timeout(Some(wait)))
            } else {
                self.stream.set_nonblocking(true)
            };
            if set.is_err() {
                self.closed = true;
                return;
            }
            blocking = false;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.decode();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    fn decode(&mut self) {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Decoded::Frame(f))) => self.received(f),
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => return,
                Err(e) => panic!("the broker sent a frame its own decoder refuses: {e}"),
            }
        }
    }

    fn received(&mut self, f: Frame) {
        assert!(
            self.error.is_none(),
            "a frame after an ERROR: {:?}",
            f.command
        );
        match f.command.as_str() {
            "CONNECTED" => {
                let v = f
                    .headers
                    .get("version")
                    .and_then(Version::parse)
                    .unwrap_or(Version::V1_0);
                self.decoder.set_version(v);
            }
            "MESSAGE" => self.message(&f),
            "RECEIPT" => {
                if f.headers.get("receipt-id") == Some("end") {
                    self.receipt_end = true;
                }
            }
            "ERROR" => {
                assert!(
                    f.headers.get("message").is_some_and(|m| !m.is_empty()),
                    "an ERROR without a message header"
                );
                self.error = Some(f);
            }
            other => panic!("unexpected {other} from the broker"),
        }
    }

    fn message(&mut self, f: &Frame) {
        if let Some(ack) = f.headers.get("ack").or_else(|| f.headers.get("message-id")) {
            self.acks.push(ack.to_string());
        }
        let Some(id) = f.headers.get("x-id") else {
            return; // not one of ours (no destination here has other producers)
        };
        let (input, _) = id.split_once('-').expect("our id format");
        let input: u64 = input.parse().expect("our id format");
        assert!(
            input <= self.input,
            "message {id} from an input that has not run yet"
        );
        if input == self.input {
            assert!(self.sent.contains(id), "message {id} was never sent");
            assert!(
                !self.aborted.contains(id),
                "message {id} of an aborted transaction arrived"
            );
        }
        let sub = f.headers.get("subscription").unwrap_or("").to_string();
        let redelivered = f.headers.get("redelivered") == Some("true");
        let seen = self.seen.entry(sub.clone()).or_default();
        if !seen.ids.insert(id.to_string()) {
            assert!(
                redelivered,
                "message {id} twice on subscription {sub} without redelivered:true"
            );
        }
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::Send {
                dest,
                tx,
                receipt,
                persistent,
                kind,
                n,
                body,
            } => {
                self.next_id += 1;
                let id = format!("{}-{}", self.input, self.next_id);
                let mut h = vec![
                    (
                        "destination",
                        DESTINATIONS[usize::from(*dest) % DESTINATIONS.len()].to_string(),
                    ),
                    ("x-id", id.clone()),
                    ("n", (n % 6).to_string()),
                    ("persistent", persistent.to_string()),
                ];
                if *kind {
                    h.push(("kind", "b".into()));
                }
                if let Some(t) = tx {
                    h.push(("transaction", format!("t{}", t % 4)));
                    self.tx_pending.entry(t % 4).or_default().push(id.clone());
                }
                if *receipt {
                    h.push(("receipt", format!("s{}", self.next_id)));
                }
                self.sent.insert(id);
                let body = vec![b'x'; usize::from(*body)];
                self.frame("SEND", &h, &body);
            }
            Action::Subscribe {
                dest,
                id,
                ack,
                prefetch,
                selector,
            } => {
                let mut h = vec![
                    (
                        "destination",
                        DESTINATIONS[usize::from(*dest) % DESTINATIONS.len()].to_string(),
                    ),
                    ("id", format!("s{}", id % 8)),
                    (
                        "ack",
                        ["auto", "client", "client-individual", "bogus"][usize::from(*ack) % 4]
                            .to_string(),
                    ),
                ];
                if let Some(p) = prefetch {
                    h.push(("activemq.prefetchSize", p.to_string()));
                }
                if let Some(s) = selector {
                    h.push((
                        "selector",
                        SELECTORS[usize::from(*s) % SELECTORS.len()].to_string(),
                    ));
                }
                self.frame("SUBSCRIBE", &h, b"");
            }
            Action::Unsubscribe { id } => {
                self.frame("UNSUBSCRIBE", &[("id", format!("s{}", id % 8))], b"")
            }
            Action::Ack { which, tx, bogus } => {
                let id = self.ack_id(*which, *bogus);
                let mut h = vec![("id", id.clone()), ("message-id", id)];
                if let Some(t) = tx {
                    h.push(("transaction", format!("t{}", t % 4)));
                }
                self.frame("ACK", &h, b"");
            }
            Action::Nack { which, tx } => {
                let id = self.ack_id(*which, false);
                let mut h = vec![("id", id.clone()), ("message-id", id)];
                if let Some(t) = tx {
                    h.push(("transaction", format!("t{}", t % 4)));
                }
                self.frame("NACK", &h, b"");
            }
            Action::Begin { tx } => {
                self.frame("BEGIN", &[("transaction", format!("t{}", tx % 4))], b"")
            }
            Action::Commit { tx, receipt } => {
                let mut h = vec![("transaction", format!("t{}", tx % 4))];
                if *receipt {
                    h.push(("receipt", format!("c{tx}")));
                }
                self.tx_pending.remove(&(tx % 4));
                self.frame("COMMIT", &h, b"");
            }
            Action::Abort { tx } => {
                if let Some(ids) = self.tx_pending.remove(&(tx % 4)) {
                    self.aborted.extend(ids);
                }
                self.frame("ABORT", &[("transaction", format!("t{}", tx % 4))], b"");
            }
            Action::Raw(bytes) => {
                let bytes: Vec<u8> = bytes.iter().copied().take(512).collect();
                self.write(&bytes);
            }
            Action::Wait => self.pump(Duration::from_millis(5)),
        }
        self.pump(Duration::ZERO);
    }

    fn ack_id(&self, which: u8, bogus: bool) -> String {
        if bogus || self.acks.is_empty() {
            format!("made-up-{which}")
        } else {
            self.acks[usize::from(which) % self.acks.len()].clone()
        }
    }
}

fuzz_target!(|script: Script| {
    if script.actions.len() > 64 {
        return;
    }
    let fx = fixture();
    let input = INPUT.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(stream) = TcpStream::connect(fx.addr) else {
        panic!("the broker stopped accepting connections");
    };
    let _ = stream.set_nodelay(true);
    let mut s = Session {
        stream,
        decoder: Decoder::new(Limits::default()),
        buf: BytesMut::new(),
        input,
        sent: HashSet::new(),
        aborted: HashSet::new(),
        tx_pending: HashMap::new(),
        seen: HashMap::new(),
        acks: Vec::new(),
        error: None,
        closed: false,
        receipt_end: false,
        next_id: 0,
    };
    let connect = match script.connect {
        Connect::V10 => Some(("CONNECT", "1.0", "0,0")),
        Connect::V11 => Some(("CONNECT", "1.1", "0,0")),
        Connect::V12 => Some(("CONNECT", "1.2", "0,0")),
        Connect::Stomp12HeartBeat => Some(("STOMP", "1.2", "0,50")),
        Connect::None => None,
    };
    if let Some((command, version, beats)) = connect {
        let h = [
            ("accept-version", version.to_string()),
            ("host", "/".to_string()),
            ("heart-beat", beats.to_string()),
        ];
        s.frame(command, &h, b"");
        s.pump(Duration::from_millis(200));
    }
    for action in &script.actions {
        if s.closed || s.error.is_some() {
            break;
        }
        s.act(action);
    }
    // End: DISCONNECT with a receipt; the broker must answer it, or have sent an ERROR; after
    // an ERROR the connection must close.
    s.frame("DISCONNECT", &[("receipt", "end".to_string())], b"");
    let deadline = Instant::now() + END_WITHIN;
    while !s.closed && !s.receipt_end && Instant::now() < deadline {
        s.pump(Duration::from_millis(50));
    }
    if s.error.is_some() {
        let until = Instant::now() + END_WITHIN;
        while !s.closed && Instant::now() < until {
            s.pump(Duration::from_millis(50));
        }
        assert!(s.closed, "the connection stayed open after an ERROR");
    } else {
        assert!(
            s.receipt_end || s.closed,
            "no RECEIPT for DISCONNECT within {END_WITHIN:?}"
        );
    }
    drop(s);
    // The broker must let go of the connection: count it closed within the bound.
    let until = Instant::now() + END_WITHIN;
    while fx.running.open_connections() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        fx.running.open_connections(),
        0,
        "a finished connection is still counted open"
    );
});
