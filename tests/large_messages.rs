//! Large messages (`[broker] large-message-threshold`) over real connections to the real
//! broker binary: a body over the threshold goes to a file as it arrives and is streamed out,
//! so a 200 MiB message costs the broker little memory; persistent ones survive SIGKILL;
//! multicast copies share one file; files go once acknowledged, and at start-up those no
//! stored message names are deleted.

mod durable_common;
mod tmpfs;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use durable_common::{Broker, Client, Frame};
use tmpfs::Tmpfs;

/// The built-in threshold (100 KiB, Artemis's default).
const THRESHOLD: usize = 100 * 1024;
/// Generous for a debug build moving a few hundred MiB.
const BIG_TIMEOUT: Duration = Duration::from_secs(240);

fn data_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("data")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("broker.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The large-message files in a data dir.
fn files(data: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data.join("large-messages")) {
        Ok(dir) => dir.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits (bounded) until the data dir holds `n` large-message files.
fn wait_for_files(data: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(data).len() != n {
        assert!(
            Instant::now() < deadline,
            "expected {n} large-message files, found {:?}",
            files(data)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Byte `i` of a test body: varied, deterministic, so a receiver can check every byte
/// without the sender's copy.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 20) as u8
}

fn fill(buf: &mut [u8], from: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = byte_at(from + k as u64);
    }
}

fn body(len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    fill(&mut b, 0);
    b
}

/// The broker's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A raw STOMP 1.2 connection that streams bodies instead of holding them: what a 200 MiB
/// test needs on its own side.
struct Streamer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Streamer {
    fn connect(addr: SocketAddr) -> Streamer {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
        stream.set_read_timeout(Some(BIG_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(BIG_TIMEOUT)).unwrap();
        let mut s = Streamer {
            stream,
            buf: Vec::new(),
        };
        s.stream
            .write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
            .unwrap();
        let (command, _) = s.head();
        assert_eq!(command, "CONNECTED");
        s.skip_to_nul();
        s
    }

    fn more(&mut self) {
        let mut chunk = vec![0u8; 256 * 1024];
        let n = self.stream.read(&mut chunk).expect("read from the broker");
        assert!(n > 0, "the broker closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Reads a frame's command and headers (skipping heart-beat EOLs).
    fn head(&mut self) -> (String, Vec<(String, String)>) {
        loop {
            let skip = self.buf.iter().take_while(|&&b| b == b'\n').count();
            self.buf.drain(..skip);
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let head = String::from_utf8(self.buf[..end].to_vec()).expect("utf-8 head");
                self.buf.drain(..end + 2);
                let mut lines = head.lines();
                let command = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                return (command, headers);
            }
            self.more();
        }
    }

    fn skip_to_nul(&mut self) {
        loop {
            if let Some(nul) = self.buf.iter().position(|&b| b == 0) {
                self.buf.drain(..=nul);
                return;
            }
            self.buf.clear();
            self.more();
        }
    }

    /// Reads a `len`-byte body and its NUL, checking every byte against [`byte_at`];
    /// returns the CRC-32 of what arrived.
    fn check_body(&mut self, len: u64) -> u32 {
        let mut crc = crc32fast::Hasher::new();
        let mut at = 0u64;
        while at < len {
            if self.buf.is_empty() {
                self.more();
            }
            let take = self.buf.len().min((len - at) as usize);
            let mut want = vec![0u8; take];
            fill(&mut want, at);
            assert!(self.buf[..take] == want[..], "body differs near byte {at}");
            crc.update(&self.buf[..take]);
            self.buf.drain(..take);
            at += take as u64;
        }
        while self.buf.is_empty() {
            self.more();
        }
        assert_eq!(self.buf[0], 0, "the body ends with NUL");
        self.buf.drain(..1);
        crc.finalize()
    }

    /// Sends a SEND with a `len`-byte body written in 1 MiB pieces; returns its CRC-32.
    fn send_generated(&mut self, destination: &str, len: u64, receipt: &str) -> u32 {
        let head =
            format!("SEND\ndestination:{destination}\nreceipt:{receipt}\ncontent-length:{len}\n\n");
        self.stream.write_all(head.as_bytes()).unwrap();
        let mut crc = crc32fast::Hasher::new();
        let mut piece = vec![0u8; 1024 * 1024];
        let mut at = 0u64;
        while at < len {
            let n = piece.len().min((len - at) as usize);
            fill(&mut piece[..n], at);
            crc.update(&piece[..n]);
            self.stream.write_all(&piece[..n]).expect("write the body");
            at += n as u64;
        }
        self.stream.write_all(b"\0").unwrap();
        crc.finalize()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Samples the broker's RSS every 20 ms until stopped; keeps the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// A 200 MiB message goes through the broker byte-exact while the broker's resident memory
/// grows by far less than the message: its body is written to a file as it arrives and read
/// back in chunks as it goes out. (With the body held in memory, as with a threshold above
/// 200 MiB, the growth is at least the message's size.)
#[test]
fn a_200_mib_message_round_trips_byte_exact_while_broker_memory_stays_far_below_its_size() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        tmp.path(),
        "[[acceptors]]\nname = \"stomp\"\nbind = \"127.0.0.1:0\"\n\
         [acceptors.limits]\nmax-body = 268435456\n",
    );
    let broker = Broker::start_with_config(&data_dir(&tmp), &config);
    let pid = broker.pid().expect("broker pid");
    let mut consumer = Streamer::connect(broker.addr);
    consumer
        .stream
        .write_all(
            b"SUBSCRIBE\ndestination:/queue/big\nid:s\nack:client-individual\nreceipt:sub\n\n\0",
        )
        .unwrap();
    let (command, _) = consumer.head();
    assert_eq!(command, "RECEIPT");
    consumer.skip_to_nul();
    let mut producer = Streamer::connect(broker.addr);
    thread::sleep(Duration::from_millis(200));
    let baseline = rss_bytes(pid);
    let sampler = RssSampler::start(pid);

    let receiving = thread::spawn(move || {
        let (command, headers) = consumer.head();
        assert_eq!(command, "MESSAGE", "{headers:?}");
        let len: u64 = header(&headers, "content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        assert_eq!(len, SIZE);
        let crc = consumer.check_body(len);
        let ack = header(&headers, "ack").expect("ack header").to_string();
        consumer
            .stream
            .write_all(format!("ACK\nid:{ack}\nreceipt:acked\n\n\0").as_bytes())
            .unwrap();
        let (command, _) = consumer.head();
        assert_eq!(command, "RECEIPT");
        consumer.skip_to_nul();
        crc
    });
    let sent = producer.send_generated("/queue/big", SIZE, "sent");
    let (command, headers) = producer.head();
    assert_eq!(command, "RECEIPT", "{headers:?}");
    producer.skip_to_nul();
    let received = receiving.join().expect("consumer thread");
    let peak = sampler.finish();

    assert_eq!(
        received, sent,
        "the CRC-32 of what arrived is that of what was sent"
    );
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "broker RSS: baseline {} KiB, peak {} KiB, growth {} KiB",
        baseline >> 10,
        peak >> 10,
        growth >> 10
    );
    assert!(
        growth < 64 * 1024 * 1024,
        "broker RSS grew by {} MiB (baseline {} MiB, peak {} MiB) for a 200 MiB message",
        growth >> 20,
        baseline >> 20,
        peak >> 20
    );
    wait_for_files(&data_dir(&tmp), 0);
}

/// A persistent large message confirmed by its RECEIPT is on disk twice over (its file and
/// its journal record): after SIGKILL it is delivered byte-exact, and its file is deleted
/// once it is acknowledged. A stray file no message names is deleted at start-up.
#[test]
fn a_persistent_large_message_survives_sigkill_and_its_file_goes_once_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let payload = body(3 * 1024 * 1024 + 7);
    let broker = Broker::start(&data);
    let mut p = broker.client();
    p.send_confirmed("/queue/kept", &[("persistent", "true")], &payload, "s1");
    assert_eq!(files(&data).len(), 1, "one file holds the body");
    broker.kill();

    let stray = data
        .join("large-messages")
        .join("msg-stray0000000000000000.body");
    std::fs::write(&stray, b"left by a message that was never confirmed").unwrap();
    let broker = Broker::start(&data);
    assert!(!stray.exists(), "an unreferenced file is deleted at start");
    assert_eq!(files(&data).len(), 1, "the stored message's file is kept");
    let mut c = broker.client();
    c.subscribe("/queue/kept", "s", "client-individual", &[]);
    let m = c.expect_frame();
    assert_eq!(m.command, "MESSAGE", "{m:?}");
    assert!(m.body == payload, "byte-exact after the restart");
    let ack = m.header("ack").expect("ack").to_string();
    c.send_frame("ACK", &[("id", &ack), ("receipt", "a1")], b"")
        .unwrap();
    c.expect_receipt("a1");
    wait_for_files(&data, 0);
    broker.kill();
    let broker = Broker::start(&data);
    let mut c = broker.client();
    c.subscribe("/queue/kept", "s", "auto", &[]);
    assert!(
        c.drain(Duration::from_millis(300), Duration::from_secs(5))
            .is_empty(),
        "acked: never delivered again"
    );
}

/// A stored large message whose file has gone is skipped with a warning; the broker starts
/// and delivers everything else.
#[test]
fn a_large_message_whose_file_is_missing_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let mut p = broker.client();
    p.send_confirmed(
        "/queue/lost",
        &[("persistent", "true")],
        &body(THRESHOLD * 3),
        "s1",
    );
    p.send_confirmed("/queue/lost", &[("persistent", "true")], b"small", "s2");
    broker.kill();
    for f in files(&data) {
        std::fs::remove_file(f).unwrap();
    }
    let broker = Broker::start(&data);
    let mut c = broker.client();
    c.subscribe("/queue/lost", "s", "auto", &[]);
    let got = c.drain(Duration::from_millis(300), Duration::from_secs(5));
    let bodies: Vec<String> = got.iter().map(Frame::body_str).collect();
    assert_eq!(bodies, ["small"]);
    assert!(
        broker.stderr().contains("large message's file is missing"),
        "{}",
        broker.stderr()
    );
    // Its ref was deleted: the next start has nothing to warn about.
    drop(c);
    broker.kill();
    let broker = Broker::start(&data);
    let mut c = broker.client();
    c.subscribe("/queue/lost", "s2", "auto", &[]);
    assert!(
        !broker.stderr().contains("large message's file is missing"),
        "{}",
        broker.stderr()
    );
}

/// Every subscriber of a topic gets the large message, from one shared file, deleted when
/// the last copy is acknowledged.
#[test]
fn multicast_copies_of_a_large_message_share_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let mut a = broker.client();
    let mut b = broker.client();
    a.subscribe("/topic/news", "a", "client-individual", &[]);
    b.subscribe("/topic/news", "b", "client-individual", &[]);
    let payload = body(THRESHOLD * 5 + 3);
    let mut p = broker.client();
    p.send_confirmed("/topic/news", &[], &payload, "s1");
    let ma = a.expect_frame();
    let mb = b.expect_frame();
    assert!(ma.body == payload && mb.body == payload, "both byte-exact");
    assert_eq!(files(&data).len(), 1, "one file for both copies");
    for (client, m) in [(&mut a, &ma), (&mut b, &mb)] {
        let ack = m.header("ack").expect("ack").to_string();
        client
            .send_frame("ACK", &[("id", &ack), ("receipt", "ack")], b"")
            .unwrap();
        client.expect_receipt("ack");
    }
    wait_for_files(&data, 0);
}

/// At the threshold a body is held in memory (no file); one byte over, it goes to a file;
/// both arrive byte-exact, with or without content-length.
#[test]
fn bodies_just_under_and_just_over_the_threshold_both_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let mut c = broker.client();
    c.subscribe("/queue/edge", "s", "client-individual", &[]);
    let mut p = broker.client();
    for (len, in_file) in [(THRESHOLD, false), (THRESHOLD + 1, true)] {
        let payload = body(len);
        p.send_confirmed("/queue/edge", &[], &payload, "s");
        let m = c.expect_frame();
        assert!(m.body == payload, "{len} bytes arrive byte-exact");
        assert_eq!(
            files(&data).len(),
            usize::from(in_file),
            "{len} bytes: in a file? {in_file}"
        );
        let ack = m.header("ack").expect("ack").to_string();
        c.send_frame("ACK", &[("id", &ack), ("receipt", "a")], b"")
            .unwrap();
        c.expect_receipt("a");
        wait_for_files(&data, 0);
    }
    // A NUL-terminated body (no content-length) is streamed once it passes the threshold.
    let text: Vec<u8> = (0..THRESHOLD * 3).map(|i| b'a' + (i % 26) as u8).collect();
    let mut raw = b"SEND\ndestination:/queue/edge\nreceipt:nul\n\n".to_vec();
    raw.extend_from_slice(&text);
    raw.push(0);
    let mut sock = TcpStream::connect(broker.addr).unwrap();
    sock.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
        .unwrap();
    sock.write_all(&raw).unwrap();
    let m = c.expect_frame();
    assert!(m.body == text, "a NUL-terminated large body arrives whole");
    assert_eq!(files(&data).len(), 1);
    drop(sock);
}

/// Refusing a large body names the reason and closes the connection: here a frame other
/// than SEND.
#[test]
fn only_send_may_carry_a_large_body() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(&data_dir(&tmp));
    let mut c = broker.client();
    let mut raw = b"SUBSCRIBE\ndestination:/queue/x\nid:1\n\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', THRESHOLD + 10));
    raw.push(0);
    let mut s = TcpStream::connect(broker.addr).unwrap();
    s.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
        .unwrap();
    s.write_all(&raw).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the ERROR: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\nERROR\n"), "{text}");
    assert!(text.contains("only SEND may"), "{text}");
    // The broker keeps serving others.
    c.send_confirmed("/queue/x", &[], b"still here", "r");
}

/// A disk that fills while a large body is written: the producer gets an ERROR naming the
/// reason (with its receipt-id) and its connection closes, the partial file is deleted, and
/// the broker keeps serving.
#[test]
fn a_full_disk_while_writing_a_large_body_errors_the_producer_and_the_broker_carries_on() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let data = fs.path().join("data");
    let config = write_config(fs.path(), "[broker]\nmax-disk-usage = -1\n");
    let broker = Broker::start_with_config(&data, &config);
    let mut producer = Streamer::connect(broker.addr);
    let mut writer = producer.stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        let len = 64u64 * 1024 * 1024;
        let head = format!("SEND\ndestination:/queue/full\nreceipt:big\ncontent-length:{len}\n\n");
        let mut piece = vec![0u8; 256 * 1024];
        let _ = writer.write_all(head.as_bytes());
        let mut at = 0u64;
        while at < len {
            fill(&mut piece, at);
            // The broker stops reading and closes: a failed write is expected.
            if writer.write_all(&piece).is_err() {
                return;
            }
            at += piece.len() as u64;
        }
    });
    let (command, headers) = producer.head();
    assert_eq!(command, "ERROR", "{headers:?}");
    assert_eq!(header(&headers, "receipt-id"), Some("big"), "{headers:?}");
    let message = header(&headers, "message").unwrap_or_default();
    assert!(
        message.contains("could not write a large message body to disk")
            && message.contains("No space left"),
        "{message}"
    );
    let _ = sending.join();
    wait_for_files(&data, 0);
    let mut other = broker.client();
    other.send_confirmed("/queue/full", &[], b"small", "r");
    other.subscribe("/queue/full", "s", "auto", &[]);
    assert_eq!(other.expect_frame().body_str(), "small");
}

/// Memory limits charge a large message what it holds in memory (its headers and a small
/// constant), so an address limited to 1 MiB takes several 600 KiB large messages; consumer
/// windows count the whole body, so a 1 MiB byte window holds two of them at a time.
#[test]
fn memory_limits_charge_a_large_message_its_headers_while_windows_count_its_body() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let config = write_config(
        tmp.path(),
        "[[address-settings]]\nmatch = \"#\"\n\n\
         [[address-settings]]\nmatch = \"acct\"\nmax-size-bytes = 1048576\naddress-full-policy = \"fail\"\n",
    );
    let broker = Broker::start_with_config(&data, &config);
    let payload = body(600 * 1024);
    let mut p = broker.client();
    for i in 0..4 {
        p.send_confirmed("/queue/acct", &[], &payload, &format!("s{i}"));
    }
    assert_eq!(
        files(&data).len(),
        4,
        "2.4 MiB of bodies on disk, not in memory"
    );
    let mut c = broker.client();
    c.subscribe(
        "/queue/acct",
        "s",
        "client-individual",
        &[("consumer-window-size", "1048576")],
    );
    let first = c.drain(Duration::from_millis(500), Duration::from_secs(10));
    assert_eq!(first.len(), 2, "the window counts each 600 KiB body");
    assert!(first.iter().all(|m| m.body == payload));
    let ack = first[0].header("ack").expect("ack").to_string();
    c.send_frame("ACK", &[("id", &ack), ("receipt", "a")], b"")
        .unwrap();
    // The RECEIPT and the message the ACK made room for come in either order.
    let mut next = Vec::new();
    while let Ok(Some(f)) = c.read_frame(Duration::from_millis(500)) {
        next.push(f.command);
    }
    next.sort();
    assert_eq!(
        next,
        ["MESSAGE", "RECEIPT"],
        "one more once one is acknowledged"
    );
}

/// A large SEND inside a transaction keeps its file until the transaction ends: ABORT
/// deletes it, COMMIT delivers the message byte-exact.
#[test]
fn a_large_message_in_a_transaction_is_delivered_at_commit_and_gone_at_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let mut p = broker.client();
    let payload = body(THRESHOLD * 4);
    p.send_frame("BEGIN", &[("transaction", "t1")], b"")
        .unwrap();
    p.send_confirmed("/queue/tx", &[("transaction", "t1")], &payload, "s1");
    assert_eq!(files(&data).len(), 1, "held by the open transaction");
    p.send_frame("ABORT", &[("transaction", "t1"), ("receipt", "ab")], b"")
        .unwrap();
    p.expect_receipt("ab");
    wait_for_files(&data, 0);
    p.send_frame("BEGIN", &[("transaction", "t2")], b"")
        .unwrap();
    p.send_confirmed("/queue/tx", &[("transaction", "t2")], &payload, "s2");
    p.send_frame("COMMIT", &[("transaction", "t2"), ("receipt", "co")], b"")
        .unwrap();
    p.expect_receipt("co");
    let mut c = broker.client();
    c.subscribe("/queue/tx", "s", "auto", &[]);
    let got = c.drain(Duration::from_millis(300), Duration::from_secs(10));
    assert_eq!(got.len(), 1, "only the committed one");
    assert!(got[0].body == payload);
    wait_for_files(&data, 0);
}

/// Browsing a queue shows a large message byte-exact (streamed from its file) and leaves
/// it, and its file, in place.
#[test]
fn browsing_a_queue_streams_a_large_message_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let payload = body(THRESHOLD * 2 + 11);
    let mut p = broker.client();
    p.send_confirmed("/queue/peek", &[], &payload, "s");
    let mut b = broker.client();
    b.subscribe("/queue/peek", "b", "auto", &[("browser", "true")]);
    let m = b.expect_frame();
    assert_eq!(m.command, "MESSAGE");
    assert!(m.body == payload, "byte-exact");
    assert_eq!(b.expect_frame().header("browser"), Some("end"));
    assert_eq!(files(&data).len(), 1, "browsing consumed nothing");
    let mut c = broker.client();
    c.subscribe("/queue/peek", "s", "auto", &[]);
    assert!(c.expect_frame().body == payload);
    wait_for_files(&data, 0);
}

/// A dead-letter copy of a large message shares its file.
#[test]
fn a_dead_lettered_large_message_keeps_its_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let payload = body(THRESHOLD + 100);
    let mut p = broker.client();
    p.send_confirmed("/queue/work", &[], &payload, "s");
    let mut c = broker.client();
    c.subscribe("/queue/work", "s", "client-individual", &[]);
    let m = c.expect_frame();
    let ack = m.header("ack").expect("ack").to_string();
    c.send_frame(
        "NACK",
        &[("id", &ack), ("requeue", "false"), ("receipt", "n")],
        b"",
    )
    .unwrap();
    c.expect_receipt("n");
    assert_eq!(
        files(&data).len(),
        1,
        "the dead-letter copy uses the same file"
    );
    let mut d = broker.client();
    d.subscribe("/queue/DLQ", "d", "auto", &[]);
    assert!(d.expect_frame().body == payload, "byte-exact from the DLQ");
    wait_for_files(&data, 0);
}

/// A producer that goes away in the middle of a large body leaves no file behind.
#[test]
fn a_connection_closed_mid_body_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let broker = Broker::start(&data);
    let mut s = TcpStream::connect(broker.addr).unwrap();
    s.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
        .unwrap();
    s.write_all(b"SEND\ndestination:/queue/cut\ncontent-length:10000000\n\n")
        .unwrap();
    s.write_all(&body(2 * 1024 * 1024)).unwrap();
    wait_for_files(&data, 1);
    drop(s);
    wait_for_files(&data, 0);
    let mut c = broker.client();
    c.subscribe("/queue/cut", "s", "auto", &[]);
    assert!(
        c.drain(Duration::from_millis(300), Duration::from_secs(5))
            .is_empty()
    );
}

/// While a body streams, `frame-timeout-ms` runs from its last piece: a body that takes
/// longer than the timeout in all but keeps coming is accepted, one that stalls is not.
#[test]
fn a_streamed_body_must_keep_coming_within_the_frame_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        tmp.path(),
        "[[acceptors]]\nname = \"stomp\"\nbind = \"127.0.0.1:0\"\n\
         [acceptors.limits]\nframe-timeout-ms = 1000\n",
    );
    let broker = Broker::start_with_config(&data_dir(&tmp), &config);
    let mut c = broker.client();
    c.subscribe("/queue/slow", "s", "auto", &[]);
    let payload = body(2 * 1024 * 1024);
    let mut s = TcpStream::connect(broker.addr).unwrap();
    s.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
        .unwrap();
    let head = format!(
        "SEND\ndestination:/queue/slow\ncontent-length:{}\nreceipt:r\n\n",
        payload.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    for piece in payload.chunks(256 * 1024) {
        s.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(300));
    }
    s.write_all(b"\0").unwrap();
    assert!(started.elapsed() > Duration::from_millis(2000));
    assert!(
        c.expect_frame().body == payload,
        "a slow but steady body is accepted"
    );
    // Now one that stops half-way.
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&payload[..300 * 1024]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the ERROR: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("frame-timeout-ms"), "{text}");
}

/// A graceful stop (SIGTERM) keeps a persistent large message's file: the broker stopping
/// drops its queues, which must not delete the bodies it will recover.
#[test]
fn a_persistent_large_message_survives_a_graceful_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let payload = body(THRESHOLD * 3);
    let broker = Broker::start(&data);
    let mut p = broker.client();
    p.send_confirmed("/queue/kept", &[("persistent", "true")], &payload, "s1");
    p.send_confirmed(
        "/queue/kept",
        &[("persistent", "false")],
        &body(THRESHOLD * 2),
        "s2",
    );
    drop(p);
    let exit = broker.terminate();
    assert!(exit.status.success(), "{}", exit.stderr);
    let broker = Broker::start(&data);
    assert_eq!(
        files(&data).len(),
        1,
        "the non-persistent body's file is cleaned at start"
    );
    let mut c = broker.client();
    c.subscribe("/queue/kept", "s", "auto", &[]);
    let got = c.drain(Duration::from_millis(300), Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body == payload,
        "byte-exact after a graceful restart"
    );
    wait_for_files(&data, 0);
}

/// Large messages on a paging address: a paged large message leaves memory but keeps its
/// file, and every one is read back byte-exact, in order, as the consumer catches up; the
/// files go as they are acknowledged. Persistent and not.
#[test]
fn paged_large_messages_keep_their_files_and_come_back_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let config = write_config(
        tmp.path(),
        "[[address-settings]]\nmatch = \"#\"\n\n\
         [[address-settings]]\nmatch = \"paged\"\nmax-size-bytes = 2000\naddress-full-policy = \"page\"\npage-size-bytes = 4000\n",
    );
    let broker = Broker::start_with_config(&data, &config);
    let mut p = broker.client();
    let payloads: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            let mut b = body(THRESHOLD + 1 + i * 1000);
            b[0] = i as u8;
            b
        })
        .collect();
    for (i, payload) in payloads.iter().enumerate() {
        let persistent = if i % 2 == 0 { "true" } else { "false" };
        p.send_confirmed(
            "/queue/paged",
            &[("persistent", persistent)],
            payload,
            &format!("s{i}"),
        );
    }
    assert_eq!(
        files(&data).len(),
        payloads.len(),
        "one file per message, paged or not"
    );
    let _c = receive_in_order(&broker, "/queue/paged", &payloads, 20);
    wait_for_files(&data, 0);
    assert!(
        broker.stderr().contains("started paging"),
        "{}",
        broker.stderr()
    );
}

/// A restart that leaves part of a queue on disk (recovery loads a bounded amount) reads
/// those large messages back with their files, byte-exact and in order, and defers deleting
/// unreferenced files to a start that loads every message.
#[test]
fn large_messages_left_on_disk_at_recovery_come_back_with_their_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    // Recovery loads at most 2 x page-size-bytes of a queue (64 bytes per large message).
    let config = write_config(
        tmp.path(),
        "[[address-settings]]\nmatch = \"#\"\npage-size-bytes = 1024\n",
    );
    let broker = Broker::start_with_config(&data, &config);
    let mut p = broker.client();
    let payloads: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            let mut b = body(THRESHOLD + 1 + i);
            b[0] = i as u8;
            b
        })
        .collect();
    for (i, payload) in payloads.iter().enumerate() {
        p.send_confirmed(
            "/queue/tail",
            &[("persistent", "true")],
            payload,
            &format!("s{i}"),
        );
    }
    broker.kill();
    let stray = data
        .join("large-messages")
        .join("msg-stray0000000000000000.body");
    std::fs::write(&stray, b"x").unwrap();

    let broker = Broker::start_with_config(&data, &config);
    assert!(
        broker.stderr().contains("left part of the queue on disk"),
        "{}",
        broker.stderr()
    );
    assert!(
        stray.exists(),
        "not deleted while some messages are still on disk"
    );
    let c = receive_in_order(&broker, "/queue/tail", &payloads, 30);
    wait_for_files(&data, 1);
    drop(c);
    broker.kill();
    let _broker = Broker::start_with_config(&data, &config);
    assert!(!stray.exists(), "deleted at a start that loads everything");
}

/// `max-body` bounds a streamed body too, with or without content-length: the producer
/// gets an ERROR naming the limit, and what was written of the body is deleted.
#[test]
fn max_body_refuses_a_streamed_body_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(&tmp);
    let config = write_config(
        tmp.path(),
        "[[acceptors]]\nname = \"stomp\"\nbind = \"127.0.0.1:0\"\n\
         [acceptors.limits]\nmax-body = 307200\n",
    );
    let broker = Broker::start_with_config(&data, &config);
    let text: Vec<u8> = (0..400 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    for (with_length, expected) in [
        (
            true,
            "content-length 409600 exceeds the 307200-byte body limit",
        ),
        (false, "body exceeds the 307200-byte limit"),
    ] {
        let mut s = TcpStream::connect(broker.addr).unwrap();
        s.write_all(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0")
            .unwrap();
        let mut raw = b"SEND\ndestination:/queue/capped\n".to_vec();
        if with_length {
            raw.extend_from_slice(format!("content-length:{}\n", text.len()).as_bytes());
        }
        raw.extend_from_slice(b"\n");
        raw.extend_from_slice(&text);
        raw.push(0);
        let _ = s.write_all(&raw);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("reading the ERROR: {e}"),
            }
        }
        let reply = String::from_utf8_lossy(&got);
        assert!(reply.contains(expected), "{with_length}: {reply}");
        wait_for_files(&data, 0);
    }
}

/// Subscribes to `dest` (ack:auto, no window) and checks that exactly `payloads` arrive,
/// byte-exact and in order, within `secs`; returns the connection.
fn receive_in_order(broker: &Broker, dest: &str, payloads: &[Vec<u8>], secs: u64) -> Client {
    let mut c = broker.client();
    c.subscribe(dest, "s", "auto", &[("consumer-window-size", "-1")]);
    let got = c.drain(Duration::from_millis(500), Duration::from_secs(secs));
    assert_eq!(got.len(), payloads.len());
    for (m, want) in got.iter().zip(payloads) {
        assert!(
            m.body == *want,
            "byte-exact and in order (message {})",
            want[0]
        );
    }
    c
}
