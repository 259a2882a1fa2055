//! Message priority and consumer priority over real STOMP connections: a queue offers the
//! highest `priority` first and keeps arrival order within one (a redelivered message keeps
//! its place), on anycast queues and on topic subscription queues alike; a consumer with a
//! higher `consumer-priority` (or `x-priority`, `activemq.priority`) gets every message while
//! it has window room, the lower one only the overflow, and equal ones share round-robin.

mod common;

use common::*;

/// SEND with extra headers, confirmed by a receipt.
async fn send(c: &mut Client, dest: &str, body: &str, extra: &[(&str, &str)]) {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    c.send_with_receipt("SEND", &h, body.as_bytes(), &format!("s-{body}"))
        .await;
}

/// The mixed batch every ordering test sends: (body, `priority` header or none).
const MIXED: [(&str, Option<&str>); 9] = [
    ("d1", None),
    ("low1", Some("0")),
    ("top1", Some("9")),
    ("d2", Some("4")),
    ("mid", Some("5")),
    ("top2", Some("9")),
    ("low2", Some("0")),
    ("d3", None),
    ("one", Some("1")),
];

/// The order a queue must offer [`MIXED`] in: 9, 5, 4 (absent = 4, in arrival order), 1, 0.
const MIXED_ORDER: [&str; 9] = [
    "top1", "top2", "mid", "d1", "d2", "d3", "one", "low1", "low2",
];

async fn send_mixed(p: &mut Client, dest: &str) {
    for (body, prio) in MIXED {
        match prio {
            Some(v) => send(p, dest, body, &[("priority", v)]).await,
            None => send(p, dest, body, &[]).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anycast_queue_offers_highest_priority_first_fifo_within_default_four() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    send_mixed(&mut p, "/queue/prio").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/prio", "s", &[]).await;
    let got = bodies(&mut c, MIXED.len()).await;
    assert_eq!(got, MIXED_ORDER);
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_subscription_queue_offers_highest_priority_first() {
    let broker = start_default().await;
    // A durable subscription detached from its subscriber: a subscription queue with no
    // consumer, filling while it is away.
    let durable = [("durable-subscription-name", "d")];
    let mut s = broker.client_with_id("prio-sub").await;
    s.subscribe("/topic/prio", "s", &durable).await;
    s.send_with_receipt("UNSUBSCRIBE", &[("id", "s")], b"", "u")
        .await;
    let mut p = broker.client().await;
    send_mixed(&mut p, "/topic/prio").await;
    s.subscribe("/topic/prio", "s2", &durable).await;
    let got = bodies(&mut s, MIXED.len()).await;
    assert_eq!(got, MIXED_ORDER);

    // A live subscriber whose window is full: what arrives meanwhile waits in its queue and
    // comes out by priority as the window opens.
    let mut live = broker.client().await;
    live.subscribe(
        "/topic/prio2",
        "l",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    send(&mut p, "/topic/prio2", "first", &[]).await;
    let first = live.expect_frame("MESSAGE").await;
    assert_eq!(first.text(), "first");
    send_mixed(&mut p, "/topic/prio2").await;
    live.expect_no_frame(QUIET).await;
    let mut ack = first.h("ack").to_string();
    let mut got = Vec::new();
    for _ in 0..MIXED.len() {
        live.send_frame("ACK", &[("id", &ack)], b"").await;
        let m = live.expect_frame("MESSAGE").await;
        got.push(m.text());
        ack = m.h("ack").to_string();
    }
    assert_eq!(got, MIXED_ORDER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_message_keeps_its_place_behind_higher_priorities_before_later_equals() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for b in ["a1", "a2", "a3"] {
        send(&mut p, "/queue/nackprio", b, &[]).await;
    }
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/nackprio",
        "s",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    let a1 = c.expect_frame("MESSAGE").await;
    assert_eq!(a1.text(), "a1");
    // Arrives while a1 is out: a higher priority, and a later one of a1's priority.
    send(&mut p, "/queue/nackprio", "urgent", &[("priority", "9")]).await;
    send(&mut p, "/queue/nackprio", "a4", &[]).await;
    c.send_frame("NACK", &[("id", a1.h("ack"))], b"").await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let m = c.expect_frame("MESSAGE").await;
        got.push((m.text(), m.h("redelivered").to_string()));
        c.send_frame("ACK", &[("id", m.h("ack"))], b"").await;
    }
    let expect = [
        ("urgent", "false"),
        ("a1", "true"),
        ("a2", "false"),
        ("a3", "false"),
        ("a4", "false"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(b, r)| (b.to_string(), r.to_string()))
        .collect();
    assert_eq!(got, expect);
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_message_priority_is_an_error() {
    let broker = start_default().await;
    for bad in ["10", "-1", "high"] {
        let mut p = broker.client().await;
        p.send_frame(
            "SEND",
            &[("destination", "/queue/badprio"), ("priority", bad)],
            b"x",
        )
        .await;
        let e = p.expect_error_and_close().await;
        assert!(e.h("message").contains("priority"), "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer priority
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_consumer_gets_everything_while_it_has_room() {
    let broker = start_default().await;
    for header in ["consumer-priority", "x-priority", "activemq.priority"] {
        let dest = format!("/queue/cp-{header}");
        // The low one subscribes first, so plain round-robin would start with it.
        let mut low = broker.client().await;
        low.subscribe(&dest, "low", &[]).await;
        let mut high = broker.client().await;
        high.subscribe(&dest, "high", &[(header, "10")]).await;
        let mut p = broker.client().await;
        for m in numbered("m", 10) {
            send(&mut p, &dest, &m, &[]).await;
        }
        assert_eq!(bodies(&mut high, 10).await, numbered("m", 10), "{header}");
        low.expect_no_frame(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_priority_consumer_gets_the_overflow_of_a_full_window() {
    let broker = start_default().await;
    let windows: [(&str, &[(&str, &str)]); 2] = [
        ("prefetch", &[("activemq.prefetchSize", "1")]),
        // One message always fits however large; a one-byte window holds only that one.
        ("bytes", &[("consumer-window-size", "1")]),
    ];
    for (name, window) in windows {
        let dest = format!("/queue/overflow-{name}");
        let mut low = broker.client().await;
        low.subscribe(&dest, "low", &[]).await;
        let mut high = broker.client().await;
        let mut h = vec![("consumer-priority", "10"), ("ack", "client-individual")];
        h.extend_from_slice(window);
        high.subscribe(&dest, "high", &h).await;
        let mut p = broker.client().await;
        for m in numbered("m", 5) {
            send(&mut p, &dest, &m, &[]).await;
        }
        // The high one holds m0 unacknowledged; the rest overflow to the low one.
        let first = high.expect_frame("MESSAGE").await;
        assert_eq!(first.text(), "m0", "{name}");
        high.expect_no_frame(QUIET).await;
        assert_eq!(
            low.bodies_until_quiet().await,
            numbered("m", 5)[1..],
            "{name}"
        );
        // Once it acks, the high one has room again and takes the next message.
        high.send_with_receipt("ACK", &[("id", first.h("ack"))], b"", "ack")
            .await;
        send(&mut p, &dest, "after", &[]).await;
        assert_eq!(high.expect_frame("MESSAGE").await.text(), "after", "{name}");
        low.expect_no_frame(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_priorities_share_round_robin_above_a_lower_one() {
    let broker = start_default().await;
    let dest = "/queue/rr";
    let mut low = broker.client().await;
    low.subscribe(dest, "low", &[("consumer-priority", "1")])
        .await;
    let mut a = broker.client().await;
    a.subscribe(dest, "a", &[("consumer-priority", "5")]).await;
    let mut b = broker.client().await;
    b.subscribe(dest, "b", &[("x-priority", "5")]).await;
    let mut p = broker.client().await;
    for m in numbered("m", 10) {
        send(&mut p, dest, &m, &[]).await;
    }
    let got_a = a.bodies_until_quiet().await;
    let got_b = b.bodies_until_quiet().await;
    assert_eq!((got_a.len(), got_b.len()), (5, 5), "{got_a:?} {got_b:?}");
    let mut all: Vec<String> = got_a.into_iter().chain(got_b).collect();
    all.sort();
    let mut expect = numbered("m", 10);
    expect.sort();
    assert_eq!(all, expect);
    low.expect_no_frame(QUIET).await;

    // Equal default priorities (no header at all) share too.
    let mut c1 = broker.client().await;
    c1.subscribe("/queue/rr0", "c1", &[]).await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/rr0", "c2", &[]).await;
    for m in numbered("n", 6) {
        send(&mut p, "/queue/rr0", &m, &[]).await;
    }
    assert_eq!(c1.bodies_until_quiet().await.len(), 3);
    assert_eq!(c2.bodies_until_quiet().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consumer_priority_is_an_error() {
    let broker = start_default().await;
    for header in ["consumer-priority", "x-priority", "activemq.priority"] {
        for bad in ["high", "1.5", "99999999999"] {
            let mut c = broker.client().await;
            c.send_frame(
                "SUBSCRIBE",
                &[("destination", "/queue/badcp"), ("id", "s"), (header, bad)],
                b"",
            )
            .await;
            let e = c.expect_error_and_close().await;
            let msg = e.h("message");
            assert!(msg.contains(header) && msg.contains(bad), "{e:?}");
        }
    }
    // Negative priorities are valid (Artemis: any 32-bit integer).
    let mut c = broker.client().await;
    c.subscribe("/queue/badcp", "s", &[("consumer-priority", "-5")])
        .await;
}
