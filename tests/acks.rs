//! Acknowledgement modes, NACK, redelivery and consumer windows.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_messages_are_not_redelivered() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/auto", "s", &[("ack", "auto")]).await;
    for m in numbered("a", 3) {
        p.send_msg("/queue/auto", &m).await;
    }
    let got = c.expect_messages(3).await;
    for m in &got {
        assert!(m.get("ack").is_none(), "auto mode has no ack header: {m:?}");
    }
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/auto", "s", &[]).await;
    p.send_msg("/queue/auto", "marker").await;
    let m = c2.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "marker", "auto-acked messages came back: {m:?}");
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ack_is_cumulative() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/cumul", "s", &[("ack", "client")]).await;
    for m in numbered("c", 5) {
        p.send_msg("/queue/cumul", &m).await;
    }
    let got = c.expect_messages(5).await;
    // ACK of the third covers the first three.
    c.send_with_receipt("ACK", &[("id", got[2].h("ack"))], b"", "ack3")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/cumul", "s2", &[("ack", "client")])
        .await;
    let again = c2.expect_messages(2).await;
    let texts: Vec<String> = again.iter().map(Frame::text).collect();
    assert_eq!(
        texts,
        vec!["c3", "c4"],
        "only the unacked come back, in order"
    );
    for m in &again {
        assert_eq!(m.get("redelivered"), Some("true"), "{m:?}");
    }
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_individual_ack_acks_one() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/indiv", "s", &[("ack", "client-individual")])
        .await;
    for m in numbered("i", 3) {
        p.send_msg("/queue/indiv", &m).await;
    }
    let got = c.expect_messages(3).await;
    // Ack the first and the third; the second stays pending.
    c.send_with_receipt("ACK", &[("id", got[0].h("ack"))], b"", "a0")
        .await;
    c.send_with_receipt("ACK", &[("id", got[2].h("ack"))], b"", "a2")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/indiv", "s", &[("ack", "client-individual")])
        .await;
    let m = c2.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "i1");
    assert_eq!(m.get("redelivered"), Some("true"), "{m:?}");
    assert_eq!(
        m.get("message-id"),
        got[1].get("message-id"),
        "same message"
    );
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_already_acked_is_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/twice", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/twice", "x").await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_with_receipt("ACK", &[("id", m.h("ack"))], b"", "a1")
        .await;
    c.send_frame("ACK", &[("id", m.h("ack")), ("receipt", "a2")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains(m.h("ack")), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("a2"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_redelivers_marked_redelivered() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/nack", "s", &[("ack", "client-individual")])
        .await;
    p.send_msg("/queue/nack", "n1").await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.get("redelivered"), Some("false"), "{m:?}");
    assert_eq!(m.get("redelivery-count"), Some("0"), "{m:?}");
    c.send_with_receipt("NACK", &[("id", m.h("ack"))], b"", "nack")
        .await;
    let again = c.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "n1");
    assert_eq!(again.get("message-id"), m.get("message-id"));
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
    assert_ne!(
        again.h("ack"),
        m.h("ack"),
        "a new delivery has a new ack id"
    );
    c.send_with_receipt("ACK", &[("id", again.h("ack"))], b"", "ack")
        .await;
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_in_client_mode_goes_to_another_consumer_too() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut a = broker.client().await;
    a.subscribe(
        "/queue/nack2",
        "a",
        &[("ack", "client"), ("activemq.prefetchSize", "1")],
    )
    .await;
    p.send_msg("/queue/nack2", "only").await;
    let m = a.expect_frame("MESSAGE").await;
    let mut b = broker.client().await;
    b.subscribe("/queue/nack2", "b", &[("ack", "client")]).await;
    a.send_with_receipt("NACK", &[("id", m.h("ack"))], b"", "n")
        .await;
    // Whoever gets it, it comes back exactly once, marked redelivered.
    let got = tokio::select! {
        f = a.next_frame(TIMEOUT) => f,
        f = b.next_frame(TIMEOUT) => f,
    }
    .expect("the nacked message is redelivered");
    assert_eq!(got.command, "MESSAGE");
    assert_eq!(got.text(), "only");
    assert_eq!(got.get("redelivered"), Some("true"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_disconnect_keeps_order() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/order", "s", &[("ack", "client-individual")])
        .await;
    let sent = numbered("o", 8);
    for m in &sent {
        p.send_msg("/queue/order", m).await;
    }
    let got = c.expect_messages(8).await;
    // Ack a few in the middle so the returned ones are not contiguous.
    for i in [1, 4, 5] {
        c.send_with_receipt("ACK", &[("id", got[i].h("ack"))], b"", &format!("a{i}"))
            .await;
    }
    // Drop the socket without DISCONNECT.
    drop(c);
    p.send_msg("/queue/order", "o8").await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/order", "s", &[("ack", "client-individual")])
        .await;
    let again = bodies(&mut c2, 6).await;
    assert_eq!(again, vec!["o0", "o2", "o3", "o6", "o7", "o8"]);
    c2.expect_no_frame(QUIET).await;
}

async fn window_holds(header: (&str, &str), queue: &str) {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("w", 10) {
        p.send_msg(queue, &m).await;
    }
    let mut c = broker.client().await;
    c.subscribe(queue, "s", &[("ack", "client-individual"), header])
        .await;
    let first = c.expect_messages(2).await;
    assert_eq!(first[0].text(), "w0");
    assert_eq!(first[1].text(), "w1");
    c.expect_no_frame(QUIET).await;
    c.send_with_receipt("ACK", &[("id", first[0].h("ack"))], b"", "a0")
        .await;
    let third = c.expect_frame("MESSAGE").await;
    assert_eq!(third.text(), "w2");
    c.expect_no_frame(QUIET).await;
    c.send_with_receipt("ACK", &[("id", first[1].h("ack"))], b"", "a1")
        .await;
    c.send_with_receipt("ACK", &[("id", third.h("ack"))], b"", "a2")
        .await;
    let next = bodies(&mut c, 2).await;
    assert_eq!(next, vec!["w3", "w4"]);
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_prefetch_size_holds_a_slow_consumer() {
    window_holds(("activemq.prefetchSize", "2"), "/queue/prefetch.amq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_count_holds_a_slow_consumer() {
    window_holds(("prefetch-count", "2"), "/queue/prefetch.rabbit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_cumulative_ack_frees_the_whole_window() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("k", 6) {
        p.send_msg("/queue/cwin", &m).await;
    }
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/cwin",
        "s",
        &[("ack", "client"), ("activemq.prefetchSize", "3")],
    )
    .await;
    let first = c.expect_messages(3).await;
    c.expect_no_frame(QUIET).await;
    c.send_with_receipt("ACK", &[("id", first[2].h("ack"))], b"", "a")
        .await;
    assert_eq!(bodies(&mut c, 3).await, vec!["k3", "k4", "k5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_window_size_in_bytes_limits_in_flight() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    // Each message is well over 100 bytes, so a 100-byte window holds one at a time (a
    // window always lets at least one message through).
    let big = "x".repeat(500);
    for i in 0..4 {
        p.send_msg("/queue/bytes", &format!("{i}{big}")).await;
    }
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/bytes",
        "s",
        &[
            ("ack", "client-individual"),
            ("consumer-window-size", "100"),
        ],
    )
    .await;
    for i in 0..4 {
        let m = c.expect_frame("MESSAGE").await;
        assert!(m.text().starts_with(&i.to_string()), "in order");
        c.expect_no_frame(QUIET).await;
        c.send_with_receipt("ACK", &[("id", m.h("ack"))], b"", &format!("a{i}"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_window_size_lets_several_small_messages_through() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    // 1000-byte bodies against a 2500-byte window: the third message is the first to reach
    // the window, so 3 are in flight and the 4th waits.
    let body = "y".repeat(1000);
    for _ in 0..6 {
        p.send_msg_nowait("/queue/bytes2", &body).await;
    }
    p.send_msg("/queue/bytes2", &body).await;
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/bytes2",
        "s",
        &[
            ("ack", "client-individual"),
            ("consumer-window-size", "2500"),
        ],
    )
    .await;
    let got = c.expect_messages(2).await;
    // At most one more may come (depending on how the broker counts header bytes), then
    // the window is closed.
    let mut in_flight = got;
    if let Ok(f) = c.next_frame(QUIET).await {
        assert_eq!(f.command, "MESSAGE");
        in_flight.push(f);
    }
    c.expect_no_frame(QUIET).await;
    assert!(
        (2..=3).contains(&in_flight.len()),
        "a 2500-byte window held {} messages of 1000 bytes",
        in_flight.len()
    );
    c.send_with_receipt("ACK", &[("id", in_flight[0].h("ack"))], b"", "a")
        .await;
    c.expect_frame("MESSAGE").await;
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_returns_unacked_messages() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("u", 2) {
        p.send_msg("/queue/unsub.unacked", &m).await;
    }
    let mut c = broker.client().await;
    c.subscribe("/queue/unsub.unacked", "s", &[("ack", "client-individual")])
        .await;
    let got = c.expect_messages(2).await;
    c.send_with_receipt("ACK", &[("id", got[0].h("ack"))], b"", "a")
        .await;
    c.send_with_receipt("UNSUBSCRIBE", &[("id", "s")], b"", "u")
        .await;
    // Same connection, new subscription: the unacked one comes back.
    c.subscribe(
        "/queue/unsub.unacked",
        "s2",
        &[("ack", "client-individual")],
    )
    .await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "u1");
    assert_eq!(m.get("subscription"), Some("s2"));
    assert_eq!(m.get("redelivered"), Some("true"), "{m:?}");
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_delivery_attempts_sends_to_dead_letter_address() {
    let mut config = test_config();
    config
        .address_settings
        .push(wrenmq::config::AddressSettingsEntry {
            pattern: "poison".to_string(),
            max_delivery_attempts: Some(2),
            dead_letter_address: Some("DLQ".to_string()),
            ..Default::default()
        });
    let broker = start(config).await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/poison", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/poison", "bad").await;
    for attempt in 1..=2 {
        let m = c.expect_frame("MESSAGE").await;
        assert_eq!(m.text(), "bad", "attempt {attempt}");
        c.send_with_receipt("NACK", &[("id", m.h("ack"))], b"", &format!("n{attempt}"))
            .await;
    }
    c.expect_no_frame(QUIET).await;
    let d = dlq.expect_frame("MESSAGE").await;
    assert_eq!(d.text(), "bad");
    assert_eq!(
        d.get("original-destination"),
        Some("/queue/poison"),
        "{d:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_window_also_bounds_bytes_for_large_messages() {
    // No prefetch header: the default 1000-message window alone would let a slow consumer
    // hold 1000 large messages. The default 8 MiB byte window stops delivery once 8 MiB are
    // held (one more message always fits), so 3 MiB messages come three at a time.
    let broker = start_default().await;
    let mut p = broker.client().await;
    let big = "x".repeat(3 * 1024 * 1024);
    for i in 0..6 {
        let body = format!("{i}{big}");
        let receipt = format!("big-{i}");
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/big")],
            body.as_bytes(),
            &receipt,
        )
        .await;
    }
    let mut c = broker.client().await;
    c.subscribe("/queue/big", "s", &[("ack", "client-individual")])
        .await;
    let first = c.expect_messages(3).await;
    c.expect_no_frame(QUIET).await;
    c.send_with_receipt("ACK", &[("id", first[0].h("ack"))], b"", "a0")
        .await;
    let next = c.expect_frame("MESSAGE").await;
    assert!(next.text().starts_with('3'), "the fourth message follows");
    c.expect_no_frame(QUIET).await;
}
