//! The ceiling, `wrenmq perf echo-server`, over real connections: queue round-robin, topic
//! fan-out, receipts after the MESSAGEs they follow, bodies and headers passed through as
//! they came, the `ack` header, ERROR-then-close on garbage, and back-pressure (a subscriber
//! that does not read slows the producer and the server's memory stays bounded).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Frame, QUIET, frame_bytes};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use wrenmq::perf::echo::{EchoHandle, EchoServer};

fn start() -> EchoHandle {
    EchoServer::bind("127.0.0.1", 0)
        .and_then(EchoServer::spawn)
        .expect("the echo server starts")
}

async fn client(server: &EchoHandle) -> Client {
    let mut c = Client::tcp(server.local_addr()).await;
    c.connect_12().await;
    c
}

fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::text).collect()
}

/// Checks the headers every MESSAGE must have and returns its message-id.
fn checked(m: &Frame, destination: &str, subscription: &str) -> String {
    assert_eq!(m.command, "MESSAGE", "{m:?}");
    assert_eq!(m.h("destination"), destination, "{m:?}");
    assert_eq!(m.h("subscription"), subscription, "{m:?}");
    assert_eq!(m.h("content-length"), m.body.len().to_string(), "{m:?}");
    assert_eq!(m.get("receipt"), None, "{m:?}");
    m.h("message-id").to_string()
}

#[tokio::test]
async fn a_queue_hands_its_messages_to_its_subscribers_in_turn() {
    let server = start();
    let mut a = client(&server).await;
    a.subscribe("/queue/rr", "a", &[]).await;
    let mut b = client(&server).await;
    b.subscribe("/queue/rr", "b", &[]).await;
    let mut p = client(&server).await;
    p.send_msg("/queue/nobody", "dropped").await;
    for i in 0..6 {
        p.send_msg_nowait("/queue/rr", &i.to_string()).await;
    }
    // Its receipt comes after all seven MESSAGEs are in the subscribers' buffers.
    p.send_msg("/queue/rr", "6").await;
    let got_a = a.expect_messages(4).await;
    let got_b = b.expect_messages(3).await;
    assert_eq!(bodies(&got_a), ["0", "2", "4", "6"]);
    assert_eq!(bodies(&got_b), ["1", "3", "5"]);
    let ids: HashSet<String> = got_a
        .iter()
        .map(|m| checked(m, "/queue/rr", "a"))
        .chain(got_b.iter().map(|m| checked(m, "/queue/rr", "b")))
        .collect();
    assert_eq!(ids.len(), 7, "message-ids are unique");
    a.expect_no_frame(QUIET).await;
    b.expect_no_frame(QUIET).await;

    // Nothing was kept for the destination nobody subscribed to.
    let mut late = client(&server).await;
    late.subscribe("/queue/nobody", "late", &[]).await;
    late.expect_no_frame(QUIET).await;

    // Once a unsubscribes, b gets everything.
    a.send_with_receipt("UNSUBSCRIBE", &[("id", "a")], b"", "unsub")
        .await;
    p.send_msg_nowait("/queue/rr", "7").await;
    p.send_msg("/queue/rr", "8").await;
    assert_eq!(bodies(&b.expect_messages(2).await), ["7", "8"]);
    a.expect_no_frame(QUIET).await;
    server.stop().expect("stops");
}

#[tokio::test]
async fn a_topic_gives_every_subscriber_every_message() {
    let server = start();
    let mut subs = Vec::new();
    for i in 0..3 {
        let mut c = client(&server).await;
        c.subscribe("/topic/f", &format!("t{i}"), &[]).await;
        subs.push(c);
    }
    let mut p = client(&server).await;
    let want: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for body in &want[..49] {
        p.send_msg_nowait("/topic/f", body).await;
    }
    p.send_msg("/topic/f", &want[49]).await;
    let mut ids = HashSet::new();
    for (i, c) in subs.iter_mut().enumerate() {
        let got = c.expect_messages(50).await;
        assert_eq!(bodies(&got), want, "subscriber {i}");
        for m in &got {
            ids.insert(checked(m, "/topic/f", &format!("t{i}")));
        }
        c.expect_no_frame(QUIET).await;
    }
    assert_eq!(ids.len(), 150, "each copy has its own message-id");
    server.stop().expect("stops");
}

#[tokio::test]
async fn a_receipt_follows_the_messages_its_frame_and_the_earlier_ones_caused() {
    let server = start();
    let mut c = client(&server).await;
    c.subscribe("/queue/self", "s", &[]).await;
    let mut batch = Vec::new();
    for (body, receipt) in [("0", None), ("1", Some("r1")), ("2", Some("r2"))] {
        let mut headers = vec![("destination", "/queue/self")];
        headers.extend(receipt.map(|r| ("receipt", r)));
        batch.extend(frame_bytes("SEND", &headers, body.as_bytes()));
    }
    batch.extend(frame_bytes("ACK", &[("id", "x"), ("receipt", "r3")], b""));
    c.write(&batch).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let f = c.expect_frame_any().await;
        seen.push(match f.command.as_str() {
            "MESSAGE" => format!("MESSAGE {}", f.text()),
            "RECEIPT" => format!("RECEIPT {}", f.h("receipt-id")),
            _ => panic!("unexpected {f:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            "MESSAGE 0",
            "MESSAGE 1",
            "RECEIPT r1",
            "MESSAGE 2",
            "RECEIPT r2",
            "RECEIPT r3"
        ]
    );
    c.disconnect().await;
    server.stop().expect("stops");
}

#[tokio::test]
async fn bodies_and_headers_pass_through_as_they_came() {
    let server = start();
    let mut sub = client(&server).await;
    sub.subscribe("/queue/bin", "s", &[]).await;
    let mut p = client(&server).await;
    // A body with NULs, framed by content-length; an escaped header value; headers about
    // the SEND itself, which the MESSAGE must not carry.
    p.send_frame(
        "SEND",
        &[
            ("destination", "/queue/bin"),
            ("content-length", "5"),
            ("k", "a\\cb\\nc\\\\"),
            ("transaction", "tx1"),
            ("message-id", "forged"),
        ],
        b"a\0b\0c",
    )
    .await;
    // A NUL-terminated body, and CRLF line ends.
    p.write(b"SEND\r\ndestination:/queue/bin\r\nx:y\r\n\r\nhello\0\n\n")
        .await;
    let m = sub.expect_frame("MESSAGE").await;
    checked(&m, "/queue/bin", "s");
    assert_eq!(m.body, b"a\0b\0c");
    assert_eq!(m.h("content-length"), "5");
    assert_eq!(m.h("k"), "a:b\nc\\");
    assert_eq!(m.get("transaction"), None);
    assert_ne!(m.h("message-id"), "forged");
    assert_eq!(
        m.headers.iter().filter(|(k, _)| k == "message-id").count(),
        1
    );
    let m = sub.expect_frame("MESSAGE").await;
    checked(&m, "/queue/bin", "s");
    assert_eq!(m.body, b"hello");
    assert_eq!(m.h("x"), "y");
    server.stop().expect("stops");
}

#[tokio::test]
async fn messages_carry_an_ack_header_unless_the_subscription_is_auto() {
    let server = start();
    let mut subs = Vec::new();
    for (id, ack) in [
        ("c", Some("client")),
        ("i", Some("client-individual")),
        ("auto", Some("auto")),
        ("none", None),
    ] {
        let mut c = client(&server).await;
        let extra: Vec<(&str, &str)> = ack.map(|a| ("ack", a)).into_iter().collect();
        c.subscribe("/topic/acks", id, &extra).await;
        subs.push((id, ack, c));
    }
    let mut p = client(&server).await;
    p.send_msg("/topic/acks", "x").await;
    for (id, ack, c) in &mut subs {
        let m = c.expect_frame("MESSAGE").await;
        let message_id = checked(&m, "/topic/acks", id);
        match ack {
            Some("client" | "client-individual") => {
                let a = m.h("ack").to_string();
                assert_eq!(a, message_id);
                c.send_with_receipt("ACK", &[("id", &a)], b"", "acked")
                    .await;
            }
            _ => assert_eq!(m.get("ack"), None, "{m:?}"),
        }
    }
    server.stop().expect("stops");
}

#[tokio::test]
async fn garbage_gets_an_error_and_a_close_and_the_server_carries_on() {
    let server = start();
    let mut sub = client(&server).await;
    sub.subscribe("/queue/after", "s", &[]).await;
    for bad in [
        &b"HELLO\n\n\0"[..],
        b"SEND\ndestination:/queue/after\ncontent-length:3\n\nabcd\0",
        b"SEND\ndestination:/queue/after\nbad:\\t\n\n\0",
        b"SEND\nno colon here\n\n\0",
        b"SEND\n\nno destination\0",
        b"SUBSCRIBE\ndestination:/queue/after\n\n\0",
        b"SUBSCRIBE\ndestination:/queue/after\nid:1\nack:sometimes\n\n\0",
        b"\rX",
    ] {
        let mut c = client(&server).await;
        c.write(bad).await;
        c.expect_error_and_close().await;
    }
    // Random bytes, each run ending with a newline so that a command line ends: the server
    // closes each connection (after an ERROR, unless the close reset the socket first).
    let mut rng = fastrand::Rng::with_seed(14);
    for _ in 0..200 {
        let mut bytes: Vec<u8> = (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect();
        bytes.extend_from_slice(b"\n");
        let mut c = Client::tcp(server.local_addr()).await;
        if c.try_write(&bytes).await.is_ok() {
            c.expect_closed().await;
        }
    }
    let mut p = client(&server).await;
    p.send_msg("/queue/after", "still here").await;
    assert_eq!(sub.expect_frame("MESSAGE").await.text(), "still here");
    server.stop().expect("stops");
}

/// VmRSS of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads MESSAGEs off a raw socket (only their headers are parsed) and returns each one's
/// `seq` header, checking that its body is `size` bytes.
async fn read_seqs(stream: &mut tokio::net::TcpStream, n: usize, size: usize) -> Vec<usize> {
    let mut buf: Vec<u8> = Vec::new();
    let mut seqs = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        while let Some(end) = buf.windows(2).take(4096).position(|w| w == b"\n\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let len = header("content-length:").expect("content-length");
            if buf.len() < end + 2 + len + 1 {
                break;
            }
            assert!(head.starts_with("MESSAGE\n"), "{head}");
            assert_eq!(len, size);
            assert_eq!(buf[end + 2 + len], 0);
            seqs.push(header("seq:").expect("seq"));
            buf.drain(..end + 2 + len + 1);
        }
        if seqs.len() >= n {
            return seqs;
        }
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk));
        match read.await {
            Ok(Ok(0)) => panic!("closed after {} messages", seqs.len()),
            Ok(Ok(k)) => buf.extend_from_slice(&chunk[..k]),
            other => panic!("read failed after {} messages: {other:?}", seqs.len()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_slows_the_producer_and_memory_stays_bounded() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .args(["perf", "echo-server", "--port", "0"])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start wrenmq perf echo-server");
    let pid = child.id().expect("pid");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    tokio::io::BufReader::new(stderr)
        .read_line(&mut line)
        .await
        .expect("the listening line");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("perf echo-server listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let baseline = rss_kib(pid);

    // The subscriber, with a small receive buffer so the kernel holds little for it.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let mut consumer = socket.connect(addr).await.expect("connect");
    consumer
        .write_all(b"CONNECT\naccept-version:1.2\n\n\0SUBSCRIBE\nid:s\ndestination:/queue/bp\nreceipt:r\n\n\0")
        .await
        .expect("subscribe");
    let mut hello = Vec::new();
    while !hello.ends_with(b"receipt-id:r\n\n\0") {
        let mut b = [0u8; 512];
        let k = consumer.read(&mut b).await.expect("read");
        assert!(k > 0, "closed");
        hello.extend_from_slice(&b[..k]);
    }

    // 128 MiB of SENDs, far more than the bound plus what the kernel can hold.
    const SIZE: usize = 64 * 1024;
    const COUNT: usize = 2048;
    let written = Arc::new(AtomicU64::new(0));
    let mut producer = tokio::net::TcpStream::connect(addr).await.expect("connect");
    producer
        .write_all(b"CONNECT\naccept-version:1.2\n\n\0")
        .await
        .expect("connect");
    let progress = Arc::clone(&written);
    let sending = tokio::spawn(async move {
        let body = vec![b'x'; SIZE];
        for i in 0..COUNT {
            let mut f = format!("SEND\ndestination:/queue/bp\nseq:{i}\ncontent-length:{SIZE}\n\n")
                .into_bytes();
            f.extend_from_slice(&body);
            f.push(0);
            producer.write_all(&f).await.expect("send");
            progress.fetch_add(1, Ordering::Relaxed);
        }
        producer
            .write_all(b"SEND\ndestination:/queue/none\nreceipt:done\n\n\0")
            .await
            .expect("last send");
        let mut tail = Vec::new();
        while !tail.ends_with(b"receipt-id:done\n\n\0") {
            let mut b = [0u8; 512];
            let k = producer.read(&mut b).await.expect("read");
            assert!(k > 0, "closed");
            tail.extend_from_slice(&b[..k]);
        }
    });

    // Wait until the producer makes no progress for a second.
    let mut last = (0, Instant::now());
    let started = Instant::now();
    while last.1.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the producer never stalled"
        );
    }
    let stalled_at = last.0 as usize;
    let rss_stalled = rss_kib(pid);
    assert!(
        stalled_at < COUNT / 2,
        "the producer got {stalled_at} of {COUNT} frames through a subscriber that reads nothing"
    );
    assert!(
        rss_stalled < baseline + 32 * 1024,
        "the server grew from {baseline} KiB to {rss_stalled} KiB holding the frames"
    );

    // Now the subscriber reads: every message arrives, in order, and the producer finishes.
    let seqs = read_seqs(&mut consumer, COUNT, SIZE).await;
    assert_eq!(seqs, (0..COUNT).collect::<Vec<_>>());
    tokio::time::timeout(Duration::from_secs(30), sending)
        .await
        .expect("the producer finishes")
        .expect("the producer's task");
    let rss_end = rss_kib(pid);
    assert!(
        rss_end < baseline + 32 * 1024,
        "{baseline} KiB at the start, {rss_end} KiB at the end"
    );
    eprintln!(
        "back-pressure: producer stalled after {stalled_at} frames; RSS {baseline} KiB at start, {rss_stalled} KiB stalled, {rss_end} KiB at the end"
    );
    let _ = child.kill().await;
}
