//! Browsing (`browser:true` on SUBSCRIBE, ActiveMQ's queue browser) over real connections:
//! the waiting messages in order, then `browser:end`, without consuming anything; an empty or
//! missing queue; a large queue paged completely; multicast addresses; selectors; ACKs of
//! browse messages; the `browse` permission.

mod common;
#[path = "common/secure.rs"]
mod secure;

use common::{Client, Frame, QUIET, start, start_default};
use secure::{connect_frame, grant, secured_config};

/// Browses `destination` and returns the messages before `browser:end` (checking the end
/// frame), with `extra` SUBSCRIBE headers.
async fn browse(c: &mut Client, destination: &str, id: &str, extra: &[(&str, &str)]) -> Vec<Frame> {
    let mut headers = vec![("browser", "true")];
    headers.extend_from_slice(extra);
    c.subscribe(destination, id, &headers).await;
    let mut got = Vec::new();
    loop {
        let f = c.expect_frame("MESSAGE").await;
        assert_eq!(f.h("subscription"), id, "{f:?}");
        if f.get("browser") == Some("end") {
            assert!(f.body.is_empty(), "{f:?}");
            return got;
        }
        got.push(f);
    }
}

fn texts(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_shows_waiting_messages_in_order_and_consumes_nothing() {
    let b = start_default().await;
    let mut p = b.client().await;
    for body in ["a", "b", "c"] {
        p.send_msg("/queue/browse.q", body).await;
    }
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/queue/browse.q"),
            ("priority", "9"),
            ("color", "red"),
        ],
        b"urgent",
        "u",
    )
    .await;
    let mut c = b.client().await;
    let seen = browse(&mut c, "/queue/browse.q", "peek", &[]).await;
    // Offer order: priority first, then arrival.
    assert_eq!(texts(&seen), vec!["urgent", "a", "b", "c"]);
    assert_eq!(seen[0].h("color"), "red");
    assert_eq!(seen[0].h("destination"), "/queue/browse.q");
    assert!(seen.iter().all(|f| f.get("redelivered") == Some("false")));
    // The browse is over: nothing more arrives, even for new messages.
    p.send_msg("/queue/browse.q", "d").await;
    c.expect_no_frame(QUIET).await;
    // A second browse sees the same, plus the new one.
    let again = browse(&mut c, "/queue/browse.q", "peek", &[]).await;
    assert_eq!(texts(&again), vec!["urgent", "a", "b", "c", "d"]);
    assert_eq!(
        b.running.broker.queue("browse.q").map(|q| q.ready_count()),
        Some(5)
    );

    // A real consumer still gets them all, as first deliveries.
    let mut consumer = b.client().await;
    consumer.subscribe("/queue/browse.q", "s", &[]).await;
    let got = consumer.messages_until_quiet().await;
    assert_eq!(texts(&got), vec!["urgent", "a", "b", "c", "d"]);
    assert!(
        got.iter().all(|f| f.get("redelivered") == Some("false")),
        "{got:?}"
    );
    assert!(
        browse(&mut c, "/queue/browse.q", "after", &[])
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_missing_queue_gives_just_browser_end() {
    let b = start_default().await;
    let mut p = b.client().await;
    p.send_msg("/queue/emptied", "x").await;
    let mut consumer = b.client().await;
    consumer
        .subscribe("/queue/emptied", "s", &[("ack", "client")])
        .await;
    let held = consumer.expect_frame("MESSAGE").await;
    let mut c = b.client().await;
    // The one message is out with a consumer, not waiting.
    assert!(browse(&mut c, "/queue/emptied", "e", &[]).await.is_empty());
    consumer
        .send_with_receipt("ACK", &[("id", held.h("ack"))], b"", "a")
        .await;
    assert!(browse(&mut c, "/queue/emptied", "e2", &[]).await.is_empty());
    // A browse creates nothing.
    assert!(
        browse(&mut c, "/queue/never.made", "n", &[])
            .await
            .is_empty()
    );
    assert!(b.running.broker.queue("never.made").is_none());
    assert!(
        !b.running
            .broker
            .address_names()
            .contains(&"never.made".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_queue_is_browsed_completely_and_in_order() {
    const N: usize = 5_000;
    let b = start_default().await;
    let mut p = b.client().await;
    for i in 0..N {
        p.send_msg_nowait("/queue/big", &format!("m{i}")).await;
    }
    p.send_msg("/queue/big", "last").await;
    let mut c = b.client().await;
    let seen = browse(&mut c, "/queue/big", "all", &[]).await;
    let mut expected = common::numbered("m", N);
    expected.push("last".to_string());
    assert_eq!(texts(&seen), expected);
    assert_eq!(
        b.running.broker.queue("big").map(|q| q.ready_count()),
        Some(N + 1)
    );
    // The connection goes on working after a long browse.
    c.send_msg("/queue/other", "fine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_addresses_are_browsed_by_their_subscription_queues() {
    let b = start_default().await;
    let mut sub = b.tcp().await;
    sub.write(b"CONNECT\naccept-version:1.2\nhost:localhost\nclient-id:app\n\n\0")
        .await;
    sub.expect_frame("CONNECTED").await;
    sub.subscribe("/topic/news", "d", &[("durable-subscription-name", "keep")])
        .await;
    sub.send_with_receipt("UNSUBSCRIBE", &[("id", "d")], b"", "u")
        .await;
    let mut p = b.client().await;
    p.send_msg("/topic/news", "n1").await;
    p.send_msg("/topic/news", "n2").await;

    let mut c = b.client().await;
    // The durable subscription's queue, by its fully qualified name.
    assert_eq!(
        texts(&browse(&mut c, "/topic/news::app.keep", "q", &[]).await),
        vec!["n1", "n2"]
    );
    // A plain topic has no queue of its own.
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/news"),
            ("id", "t"),
            ("browser", "true"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("no queue of its own to browse"),
        "{e:?}"
    );
    // The subscription still holds both.
    assert_eq!(
        b.running.broker.queue("app.keep").map(|q| q.ready_count()),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_filters_the_browse_and_acks_of_browse_messages_are_ignored() {
    let b = start_default().await;
    let mut p = b.client().await;
    for (body, color) in [("r1", "red"), ("b1", "blue"), ("r2", "red")] {
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/sel"), ("color", color)],
            body.as_bytes(),
            body,
        )
        .await;
    }
    let mut c = b.client().await;
    let seen = browse(
        &mut c,
        "/queue/sel",
        "b",
        &[("selector", "color = 'red'"), ("ack", "client-individual")],
    )
    .await;
    assert_eq!(texts(&seen), vec!["r1", "r2"]);
    // Acknowledging a browse message is accepted and changes nothing.
    c.send_with_receipt("ACK", &[("id", seen[0].h("ack"))], b"", "a1")
        .await;
    c.send_with_receipt("NACK", &[("id", seen[1].h("ack"))], b"", "n1")
        .await;
    c.send_with_receipt(
        "ACK",
        &[
            ("message-id", seen[0].h("message-id")),
            ("subscription", "b"),
        ],
        b"",
        "a2",
    )
    .await;
    assert_eq!(
        b.running.broker.queue("sel").map(|q| q.ready_count()),
        Some(3)
    );
    let mut consumer = b.client().await;
    consumer.subscribe("/queue/sel", "s", &[]).await;
    assert_eq!(consumer.bodies_until_quiet().await, vec!["r1", "b1", "r2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_needs_the_browse_permission() {
    let b = start(secured_config(vec![
        grant(
            "watched",
            &["send", "create-address", "create-durable-queue", "browse"],
            &["admin"],
        ),
        grant(
            "#",
            &["send", "consume", "create-address", "create-durable-queue"],
            &["producer"],
        ),
    ]))
    .await;
    let mut admin = b.tcp().await;
    admin
        .write(&connect_frame(Some(("admin", "admin-pw"))))
        .await;
    admin.expect_frame("CONNECTED").await;
    admin.send_msg("/queue/watched", "w").await;
    assert_eq!(
        texts(&browse(&mut admin, "/queue/watched", "w", &[]).await),
        vec!["w"]
    );

    let mut bob = b.tcp().await;
    bob.write(&connect_frame(Some(("bob", "bob-pw")))).await;
    bob.expect_frame("CONNECTED").await;
    bob.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/orders"),
            ("id", "o"),
            ("browser", "true"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = bob.expect_error_and_close().await;
    assert!(e.h("message").contains("browse"), "{e:?}");
}
