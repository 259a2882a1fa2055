//! Point-to-point and publish-subscribe delivery, headers end to end, receipts.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_round_robins_between_two_consumers() {
    let broker = start_default().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    a.subscribe("/queue/x", "a", &[]).await;
    b.subscribe("/queue/x", "b", &[]).await;
    let mut p = broker.client().await;
    let sent = numbered("m", 10);
    for m in &sent {
        p.send_msg("/queue/x", m).await;
    }
    let got_a = bodies(&mut a, 5).await;
    let got_b = bodies(&mut b, 5).await;
    a.expect_no_frame(QUIET).await;
    b.expect_no_frame(QUIET).await;
    let evens: Vec<String> = sent.iter().step_by(2).cloned().collect();
    let odds: Vec<String> = sent.iter().skip(1).step_by(2).cloned().collect();
    // Strict alternation: one consumer gets m0, m2, ... and the other m1, m3, ...
    assert!(
        (got_a == evens && got_b == odds) || (got_a == odds && got_b == evens),
        "not alternating: a={got_a:?} b={got_b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_subscriber_gets_every_message_in_order() {
    let broker = start_default().await;
    let mut subs = Vec::new();
    for i in 0..3 {
        let mut c = broker.client().await;
        c.subscribe("/topic/t", &format!("s{i}"), &[]).await;
        subs.push(c);
    }
    let mut p = broker.client().await;
    let sent = numbered("news-", 20);
    for m in &sent {
        p.send_msg_nowait("/topic/t", m).await;
    }
    p.send_msg("/topic/t", "last").await;
    for (i, s) in subs.iter_mut().enumerate() {
        let got = bodies(s, 21).await;
        assert_eq!(&got[..20], &sent[..], "subscriber {i}");
        assert_eq!(got[20], "last");
        s.expect_no_frame(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_message_without_subscribers_is_not_kept() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/topic/nobody", "lost").await;
    let mut s = broker.client().await;
    s.subscribe("/topic/nobody", "s", &[]).await;
    p.send_msg("/topic/nobody", "seen").await;
    let m = s.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "seen");
    s.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_headers_and_body_are_preserved() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/queue/hdr", "sub-1", &[("ack", "client")])
        .await;
    let mut p = broker.client().await;
    let body: &[u8] = b"bin\0ary\0\x01\xff\0end";
    let len = body.len().to_string();
    // 1.2 escaping: '\c' is ':', '\n' is LF, '\\' is a backslash.
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/queue/hdr"),
            ("content-type", "application/octet-stream"),
            ("content-length", &len),
            ("correlation-id", "corr-42"),
            ("reply-to", "/queue/replies"),
            ("x-custom", "plain value"),
            ("x-tricky", "a\\cb\\nc\\\\d"),
        ],
        body,
        "r1",
    )
    .await;
    let m = s.expect_frame("MESSAGE").await;
    assert_eq!(m.body, body, "binary body with NULs must arrive intact");
    assert_eq!(m.get("content-length"), Some(len.as_str()), "{m:?}");
    assert_eq!(m.get("content-type"), Some("application/octet-stream"));
    assert_eq!(m.get("correlation-id"), Some("corr-42"));
    assert_eq!(m.get("reply-to"), Some("/queue/replies"));
    assert_eq!(m.get("x-custom"), Some("plain value"));
    assert_eq!(m.get("x-tricky"), Some("a:b\nc\\d"), "{m:?}");
    assert_eq!(m.get("destination"), Some("/queue/hdr"), "prefix kept");
    assert_eq!(m.get("subscription"), Some("sub-1"));
    assert!(m.get("message-id").is_some_and(|v| !v.is_empty()), "{m:?}");
    assert!(
        m.get("ack").is_some_and(|v| !v.is_empty()),
        "1.2 client mode MESSAGE needs an ack header: {m:?}"
    );
    let ts: u64 = m.h("timestamp").parse().expect("timestamp is a number");
    assert!(
        ts > 1_600_000_000_000,
        "timestamp in ms since the epoch: {ts}"
    );
    assert_eq!(m.get("receipt"), None, "receipt is not a message property");
    assert_eq!(m.get("redelivered"), Some("false"), "first delivery: {m:?}");
    assert_eq!(
        m.get("redelivery-count"),
        Some("0"),
        "first delivery: {m:?}"
    );
    // The ack id works.
    s.send_with_receipt("ACK", &[("id", m.h("ack"))], b"", "ack-1")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_repeated_keep_first_value() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/queue/rep", "s", &[]).await;
    let mut p = broker.client().await;
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/queue/rep"),
            ("x-dup", "first"),
            ("x-dup", "second"),
        ],
        b"",
        "r",
    )
    .await;
    let m = s.expect_frame("MESSAGE").await;
    assert_eq!(m.get("x-dup"), Some("first"), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_are_unique() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/queue/ids", "s", &[]).await;
    let mut p = broker.client().await;
    for i in 0..5 {
        p.send_msg_nowait("/queue/ids", &i.to_string()).await;
    }
    let ms = s.expect_messages(5).await;
    let mut ids: Vec<&str> = ms.iter().map(|m| m.h("message-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "{ms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_for_every_frame_kind() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_with_receipt(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/rc"),
            ("id", "0"),
            ("ack", "client-individual"),
        ],
        b"",
        "r-sub",
    )
    .await;
    c.send_frame(
        "SEND",
        &[("destination", "/queue/rc"), ("receipt", "r-send")],
        b"hi",
    )
    .await;
    // The client is also the consumer: its MESSAGE and the SEND's RECEIPT may come in
    // either order.
    let x = c.expect_frame_any().await;
    let y = c.expect_frame_any().await;
    let (m, r) = if x.command == "MESSAGE" {
        (x, y)
    } else {
        (y, x)
    };
    assert_eq!(m.command, "MESSAGE", "{m:?}");
    assert_eq!(r.command, "RECEIPT", "{r:?}");
    assert_eq!(r.get("receipt-id"), Some("r-send"));
    assert_eq!(m.text(), "hi");
    c.send_with_receipt("ACK", &[("id", m.h("ack"))], b"", "r-ack")
        .await;
    c.send_with_receipt("BEGIN", &[("transaction", "t1")], b"", "r-begin")
        .await;
    c.send_with_receipt("COMMIT", &[("transaction", "t1")], b"", "r-commit")
        .await;
    c.send_with_receipt("BEGIN", &[("transaction", "t2")], b"", "r-begin2")
        .await;
    c.send_with_receipt("ABORT", &[("transaction", "t2")], b"", "r-abort")
        .await;
    c.send_with_receipt("UNSUBSCRIBE", &[("id", "0")], b"", "r-unsub")
        .await;
    c.send_frame("DISCONNECT", &[("receipt", "r-disc")], b"")
        .await;
    let r = c.expect_frame("RECEIPT").await;
    assert_eq!(r.get("receipt-id"), Some("r-disc"));
    c.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_receipt_precedes_messages_already_queued() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("pre", 3) {
        p.send_msg("/queue/pre", &m).await;
    }
    for round in 0..5 {
        let mut s = broker.client().await;
        let receipt = format!("sub-receipt-{round}");
        s.send_frame(
            "SUBSCRIBE",
            &[
                ("destination", "/queue/pre"),
                ("id", "s"),
                ("ack", "client-individual"),
                ("receipt", &receipt),
            ],
            b"",
        )
        .await;
        let first = s.expect_frame("RECEIPT").await;
        assert_eq!(first.get("receipt-id"), Some(receipt.as_str()));
        let got = bodies(&mut s, 3).await;
        assert_eq!(got, numbered("pre", 3));
        // Not acked: the messages go back for the next round.
        drop(s);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/topic/unsub", "s", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/topic/unsub", "before").await;
    assert_eq!(s.expect_frame("MESSAGE").await.text(), "before");
    s.send_with_receipt("UNSUBSCRIBE", &[("id", "s")], b"", "u")
        .await;
    p.send_msg("/topic/unsub", "after").await;
    s.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_skips_a_consumer_whose_window_is_full() {
    let broker = start_default().await;
    let mut slow = broker.client().await;
    slow.subscribe(
        "/queue/rr.window",
        "slow",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    let mut fast = broker.client().await;
    fast.subscribe("/queue/rr.window", "fast", &[]).await;
    let mut p = broker.client().await;
    for m in numbered("r", 6) {
        p.send_msg("/queue/rr.window", &m).await;
    }
    assert_eq!(slow.expect_frame("MESSAGE").await.text(), "r0");
    slow.expect_no_frame(QUIET).await;
    assert_eq!(
        bodies(&mut fast, 5).await,
        vec!["r1", "r2", "r3", "r4", "r5"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_message_is_not_delivered() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_with_receipt(
        "SEND",
        &[("destination", "/queue/expiry"), ("expires", "1")],
        b"stale",
        "r",
    )
    .await;
    p.send_msg("/queue/expiry", "fresh").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/expiry", "s", &[]).await;
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "fresh");
    c.expect_no_frame(QUIET).await;
}

fn full_address_config(policy: wrenmq::config::AddressFullPolicyConfig) -> wrenmq::config::Config {
    let mut config = test_config();
    config
        .address_settings
        .push(wrenmq::config::AddressSettingsEntry {
            pattern: "small".to_string(),
            max_size_bytes: Some(100),
            address_full_policy: Some(policy),
            ..Default::default()
        });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_address_with_fail_policy_refuses_send() {
    let broker = start(full_address_config(
        wrenmq::config::AddressFullPolicyConfig::Fail,
    ))
    .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/small", &"a".repeat(200)).await;
    p.send_frame(
        "SEND",
        &[("destination", "/queue/small"), ("receipt", "second")],
        b"b",
    )
    .await;
    let e = p.expect_error_and_close().await;
    assert!(e.h("message").contains("small"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_address_with_block_policy_holds_producer_until_consumed() {
    let broker = start(full_address_config(
        wrenmq::config::AddressFullPolicyConfig::Block,
    ))
    .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/small", &"a".repeat(200)).await;
    p.send_frame(
        "SEND",
        &[("destination", "/queue/small"), ("receipt", "blocked")],
        b"b",
    )
    .await;
    // Held: no RECEIPT while the address is full.
    p.expect_no_frame(QUIET).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/small", "s", &[]).await;
    assert_eq!(c.expect_frame("MESSAGE").await.body.len(), 200);
    let r = p.expect_frame("RECEIPT").await;
    assert_eq!(r.get("receipt-id"), Some("blocked"));
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "b");
}
