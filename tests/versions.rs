//! STOMP 1.0 and 1.1 sessions: acknowledgement headers and header escaping per version.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_1_ack_with_message_id_and_subscription() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("v11-", 3) {
        p.send_msg("/queue/v11", &m).await;
    }
    let mut c = broker.client_11().await;
    c.subscribe("/queue/v11", "sub11", &[("ack", "client-individual")])
        .await;
    let ms = c.expect_messages(3).await;
    for m in &ms {
        assert_eq!(m.get("subscription"), Some("sub11"), "{m:?}");
        assert!(m.get("message-id").is_some(), "{m:?}");
    }
    // ACK the first and third the 1.1 way.
    for i in [0, 2] {
        c.send_with_receipt(
            "ACK",
            &[
                ("message-id", ms[i].h("message-id")),
                ("subscription", "sub11"),
            ],
            b"",
            &format!("a{i}"),
        )
        .await;
    }
    // NACK the second the 1.1 way: it is redelivered.
    c.send_with_receipt(
        "NACK",
        &[
            ("message-id", ms[1].h("message-id")),
            ("subscription", "sub11"),
        ],
        b"",
        "n1",
    )
    .await;
    let again = c.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "v11-1");
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
    c.send_with_receipt(
        "ACK",
        &[
            ("message-id", again.h("message-id")),
            ("subscription", "sub11"),
        ],
        b"",
        "a1",
    )
    .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/v11", "s", &[]).await;
    p.send_msg("/queue/v11", "marker").await;
    assert_eq!(c2.expect_frame("MESSAGE").await.text(), "marker");
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_1_ack_with_wrong_subscription_is_an_error() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/v11.wrong", "x").await;
    let mut c = broker.client_11().await;
    c.subscribe("/queue/v11.wrong", "s", &[("ack", "client")])
        .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_frame(
        "ACK",
        &[
            ("message-id", m.h("message-id")),
            ("subscription", "not-mine"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("not-mine"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("r"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_1_escapes_headers_but_not_carriage_return() {
    let broker = start_default().await;
    let mut c = broker.client_11().await;
    c.subscribe("/queue/v11.esc", "s", &[]).await;
    let mut p = broker.client_11().await;
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/queue/v11.esc"),
            ("x-h", "k\\cv\\nline\\\\"),
        ],
        b"",
        "r",
    )
    .await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.get("x-h"), Some("k:v\nline\\"), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_headers_are_not_unescaped() {
    let broker = start_default().await;
    let mut s10 = broker.client_10().await;
    // 1.0: SUBSCRIBE without id; the subscription is named by its destination.
    s10.send_with_receipt("SUBSCRIBE", &[("destination", "/topic/v10")], b"", "s")
        .await;
    let mut s12 = broker.client().await;
    s12.subscribe("/topic/v10", "s12", &[]).await;
    let mut p = broker.client_10().await;
    // Backslashes and colons are literal in 1.0.
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/topic/v10"),
            ("x-path", "C:\\new\\cdir"),
            ("x-time", "12:30:00"),
        ],
        b"hello 1.0",
        "r",
    )
    .await;
    let m = s10.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "hello 1.0");
    assert_eq!(m.get("x-path"), Some("C:\\new\\cdir"), "{m:?}");
    assert_eq!(m.get("x-time"), Some("12:30:00"), "{m:?}");
    assert_eq!(m.get("subscription"), Some("/topic/v10"), "{m:?}");
    assert_eq!(m.get("destination"), Some("/topic/v10"));
    // The same values reach a 1.2 subscriber, escaped for 1.2 and unescaped by it.
    let m12 = s12.expect_frame("MESSAGE").await;
    assert_eq!(m12.get("x-path"), Some("C:\\new\\cdir"), "{m12:?}");
    assert_eq!(m12.get("x-time"), Some("12:30:00"), "{m12:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_client_ack_with_message_id_only() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("v10-", 3) {
        p.send_msg("/queue/v10.ack", &m).await;
    }
    let mut c = broker.client_10().await;
    c.send_with_receipt(
        "SUBSCRIBE",
        &[("destination", "/queue/v10.ack"), ("ack", "client")],
        b"",
        "s",
    )
    .await;
    let ms = c.expect_messages(3).await;
    // Cumulative ACK of the second, by message-id alone.
    c.send_with_receipt("ACK", &[("message-id", ms[1].h("message-id"))], b"", "a")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/v10.ack", "s", &[]).await;
    let m = c2.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "v10-2");
    assert_eq!(m.get("redelivered"), Some("true"));
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_unsubscribe_by_destination() {
    let broker = start_default().await;
    let mut c = broker.client_10().await;
    c.send_with_receipt(
        "SUBSCRIBE",
        &[("destination", "/topic/v10.unsub")],
        b"",
        "s",
    )
    .await;
    c.send_with_receipt(
        "UNSUBSCRIBE",
        &[("destination", "/topic/v10.unsub")],
        b"",
        "u",
    )
    .await;
    let mut p = broker.client().await;
    p.send_msg("/topic/v10.unsub", "gone").await;
    c.expect_no_frame(QUIET).await;
}

/// A message routed to several subscriptions has the headers its copies share encoded once
/// and reused (writer.rs): each copy must still be escaped for its own subscriber's version,
/// whichever copy was written first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multicast_copy_is_escaped_for_its_own_subscribers_version() {
    let broker = start_default().await;
    let mut s12a = broker.client().await;
    s12a.subscribe("/topic/mixed", "a", &[]).await;
    let mut s10 = broker.client_10().await;
    s10.send_with_receipt("SUBSCRIBE", &[("destination", "/topic/mixed")], b"", "s")
        .await;
    let mut s11 = broker.client_11().await;
    s11.subscribe("/topic/mixed", "b", &[]).await;
    let mut s12b = broker.client().await;
    s12b.subscribe("/topic/mixed", "c", &[]).await;
    let mut p = broker.client().await;
    for i in 0..20 {
        p.send_with_receipt(
            "SEND",
            &[
                ("destination", "/topic/mixed"),
                ("x-colon", "k\\cv"),
                ("x-slash", "a\\\\b"),
                ("n", &i.to_string()),
            ],
            b"m",
            &format!("r{i}"),
        )
        .await;
    }
    for c in [&mut s12a, &mut s11, &mut s12b] {
        for i in 0..20 {
            let m = c.expect_frame("MESSAGE").await;
            assert_eq!(m.get("n"), Some(i.to_string().as_str()), "{m:?}");
            assert_eq!(m.get("x-colon"), Some("k:v"), "{m:?}");
            assert_eq!(m.get("x-slash"), Some("a\\b"), "{m:?}");
        }
    }
    // 1.0 has no escaping: the same values arrive literally.
    for i in 0..20 {
        let m = s10.expect_frame("MESSAGE").await;
        assert_eq!(m.get("n"), Some(i.to_string().as_str()), "{m:?}");
        assert_eq!(m.get("x-colon"), Some("k:v"), "{m:?}");
        assert_eq!(m.get("x-slash"), Some("a\\b"), "{m:?}");
    }
}
