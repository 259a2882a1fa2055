//! Abuse limits: per-connection limits answer with a clear ERROR; a flood of connections past
//! the limit and of half-open sockets that never send CONNECT does not disturb a well-behaved
//! client, which keeps sending and receiving every message exactly once.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::collections::HashSet;
use std::time::Duration;

use common::{Client, QUIET, ReadEnd, TIMEOUT, start, start_default, test_config};
use secure::eventually;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_limits_answer_with_an_error() {
    let mut config = test_config();
    config.limits.max_subscriptions_per_connection = 2;
    config.limits.max_transactions_per_connection = 1;
    config.limits.max_messages_per_transaction = 2;
    config.limits.max_unacked_per_connection = 5;
    let b = start(config).await;

    let mut c = b.client().await;
    c.subscribe(
        "/queue/a",
        "1",
        &[("ack", "client"), ("activemq.prefetchSize", "3")],
    )
    .await;
    c.subscribe("/queue/b", "2", &[("ack", "client")]).await;
    c.send_frame(
        "SUBSCRIBE",
        &[("destination", "/queue/c"), ("id", "3")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").starts_with("too many subscriptions"),
        "{e:?}"
    );

    // The second subscription got what was left of the 5: 2, whatever its window asked.
    let mut c = b.client().await;
    c.subscribe(
        "/queue/w1",
        "1",
        &[("ack", "client"), ("activemq.prefetchSize", "3")],
    )
    .await;
    c.subscribe("/queue/w2", "2", &[("ack", "client")]).await;
    let mut p = b.client().await;
    for i in 0..6 {
        p.send_msg("/queue/w2", &format!("m{i}")).await;
    }
    c.expect_messages(2).await;
    c.expect_no_frame(QUIET).await;

    let mut c = b.client().await;
    c.subscribe(
        "/queue/u1",
        "1",
        &[("ack", "client"), ("activemq.prefetchSize", "-1")],
    )
    .await;
    c.send_frame(
        "SUBSCRIBE",
        &[("destination", "/queue/u2"), ("id", "2")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("max-unacked-per-connection"),
        "{e:?}"
    );

    let mut c = b.client().await;
    c.send_with_receipt("BEGIN", &[("transaction", "t1")], b"", "b1")
        .await;
    c.send_frame("BEGIN", &[("transaction", "t2")], b"").await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").starts_with("too many open transactions"),
        "{e:?}"
    );

    let mut c = b.client().await;
    c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    for _ in 0..2 {
        c.send_frame(
            "SEND",
            &[("destination", "/queue/tx"), ("transaction", "t")],
            b"x",
        )
        .await;
    }
    c.send_frame(
        "SEND",
        &[("destination", "/queue/tx"), ("transaction", "t")],
        b"x",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("max-messages-per-transaction"),
        "{e:?}"
    );

    // Nobody else noticed.
    p.send_msg("/queue/still", "ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_does_not_disturb_a_well_behaved_client() {
    const LIMIT: usize = 12;
    const FLOOD: usize = 40;
    const MESSAGES: usize = 300;
    let mut config = test_config();
    config.limits.max_connections = 100;
    config.limits.max_connections_per_ip = Some(LIMIT);
    config.limits.handshake_timeout_ms = 400;
    let b = start(config).await;

    let mut consumer = b.client().await;
    consumer.subscribe("/queue/steady", "s", &[]).await;
    let mut producer = b.client().await;

    // Half-open sockets that never send CONNECT, and more connections than the limit.
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        flood.push(
            tokio::net::TcpStream::connect(b.addr)
                .await
                .expect("connect"),
        );
    }
    let sending = tokio::spawn(async move {
        for i in 0..MESSAGES {
            producer.send_msg("/queue/steady", &format!("m{i}")).await;
        }
        producer
    });
    let mut seen = HashSet::new();
    for _ in 0..MESSAGES {
        let f = consumer.expect_frame("MESSAGE").await;
        assert!(seen.insert(f.text()), "duplicate {}", f.text());
    }
    consumer.expect_no_frame(QUIET).await;
    assert_eq!(seen.len(), MESSAGES);
    let producer = sending.await.expect("producer task");

    // Past the limit: a raw ERROR then close. Within it: closed after the handshake timeout.
    let (mut refused, mut timed_out) = (0, 0);
    for mut s in flood {
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "a flood socket was never closed");
        let text = String::from_utf8_lossy(&got);
        if text.contains("message:too many connections") {
            refused += 1;
        } else if text.contains("no CONNECT frame within 400 ms") {
            timed_out += 1;
        } else {
            panic!("unexpected answer {text:?}");
        }
    }
    assert_eq!(timed_out, LIMIT - 2, "the two good clients hold two slots");
    assert_eq!(refused, FLOOD - (LIMIT - 2));

    // The slots came back: only the two good clients remain, and new clients get in.
    assert!(eventually(Duration::from_secs(3), || b.running.open_connections() == 2).await);
    let mut late = b.client().await;
    late.send_msg("/queue/late", "x").await;
    drop(producer);
    match consumer.next_frame(QUIET).await {
        Err(ReadEnd::Timeout) => {}
        other => panic!("consumer disturbed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_not_capped_at_a_thousand_connections_by_default() {
    // An application server relaying browser sessions opens one connection per session from
    // its one address: by default there is no per-IP limit, only the broker-wide one.
    const N: usize = 1_100;
    let b = start_default().await;
    let mut sockets = Vec::with_capacity(N);
    for _ in 0..N {
        sockets.push(
            tokio::net::TcpStream::connect(b.addr)
                .await
                .expect("connect"),
        );
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while b.running.open_connections() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {N} connections from 127.0.0.1 admitted",
            b.running.open_connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And each of them is a working STOMP connection, the last one included.
    let mut last = Client::tcp(b.addr).await;
    last.connect_12().await;
    last.send_msg("/queue/many", "ok").await;
}
