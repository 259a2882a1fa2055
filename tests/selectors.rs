//! Selectors and filters over real STOMP connections: a topic subscription's `selector` is
//! applied at routing (a non-matching message is never copied to its queue); on an anycast
//! queue a consumer with a selector gets only what it matches and the rest waits for other
//! consumers; the selector language end to end (numeric headers, LIKE, IN, BETWEEN, IS NULL,
//! JMS identifiers, hyphenated headers, three-valued logic); bad selectors are ERRORs naming
//! the position; a durable subscription keeps its selector across a restart; a configured
//! queue's `filter` decides what is routed to it; and `no-local` keeps a connection's own
//! messages from it.

mod common;
mod durable_common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use wrenmq::config::{AddressConfig, QueueConfig, RoutingTypeConfig};

/// SEND with extra headers, confirmed by a receipt.
async fn send(c: &mut Client, dest: &str, body: &str, extra: &[(&str, &str)]) {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    c.send_with_receipt("SEND", &h, body.as_bytes(), &format!("s-{body}"))
        .await;
}

fn texts(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::text).collect()
}

/// Messages waiting or unacknowledged in each queue of `address`, by whether the queue is
/// filtered by `selector`.
fn held_by_filter(broker: &TestBroker, address: &str) -> BTreeMap<String, usize> {
    broker
        .running
        .broker
        .queues_of(address)
        .iter()
        .map(|q| {
            let f = q.filter.as_ref().map_or("", |f| f.text()).to_string();
            (f, q.message_count())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Topic subscriptions: filtered at routing
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_selectors_deliver_only_matches_and_never_copy_the_rest() {
    let broker = start_default().await;
    let never_ack = [("ack", "client-individual")];
    let mut red = broker.client().await;
    let mut h = vec![("selector", "color = 'red'")];
    h.extend_from_slice(&never_ack);
    red.subscribe("/topic/colors", "red", &h).await;
    let mut blue = broker.client().await;
    let mut h = vec![("selector", "color = 'blue'")];
    h.extend_from_slice(&never_ack);
    blue.subscribe("/topic/colors", "blue", &h).await;
    let mut all = broker.client().await;
    all.subscribe("/topic/colors", "all", &never_ack).await;

    let mut p = broker.client().await;
    let sent = [
        ("r1", Some("red")),
        ("b1", Some("blue")),
        ("g1", Some("green")),
        ("n1", None),
        ("r2", Some("red")),
        ("x1", Some("Red")),
    ];
    for (body, color) in sent {
        match color {
            Some(c) => send(&mut p, "/topic/colors", body, &[("color", c)]).await,
            None => send(&mut p, "/topic/colors", body, &[]).await,
        }
    }
    assert_eq!(texts(&red.messages_until_quiet().await), ["r1", "r2"]);
    assert_eq!(texts(&blue.messages_until_quiet().await), ["b1"]);
    assert_eq!(texts(&all.messages_until_quiet().await).len(), sent.len());
    // Nobody acked: each subscription queue holds exactly what it delivered. A selector
    // applied at the consumer instead would leave the non-matching copies in the queue.
    let held = held_by_filter(&broker, "colors");
    let expect: BTreeMap<String, usize> = [
        (String::new(), sent.len()),
        ("color = 'red'".to_string(), 2),
        ("color = 'blue'".to_string(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(held, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_subscription_selector_filters_every_matching_address() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/topic/news.#", "w", &[("selector", "urgent = 'yes'")])
        .await;
    let mut p = broker.client().await;
    send(&mut p, "/topic/news.sport", "s-no", &[("urgent", "no")]).await;
    send(&mut p, "/topic/news.sport", "s-yes", &[("urgent", "yes")]).await;
    send(
        &mut p,
        "/topic/news.world.eu",
        "w-yes",
        &[("urgent", "yes")],
    )
    .await;
    send(&mut p, "/topic/news.world.eu", "w-none", &[]).await;
    assert_eq!(texts(&s.messages_until_quiet().await), ["s-yes", "w-yes"]);
}

// ---------------------------------------------------------------------------------------------
// Anycast queues: selective consumers
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anycast_selector_takes_only_matches_and_the_rest_waits_for_others() {
    let broker = start_default().await;
    let dest = "/queue/kinds";
    let mut a = broker.client().await;
    a.subscribe(dest, "a", &[("selector", "kind = 'a'")]).await;
    let mut p = broker.client().await;
    for (body, kind) in [
        ("b1", "b"),
        ("a1", "a"),
        ("c1", "c"),
        ("a2", "a"),
        ("b2", "b"),
    ] {
        send(&mut p, dest, body, &[("kind", kind)]).await;
    }
    send(&mut p, dest, "none1", &[]).await;
    assert_eq!(texts(&a.messages_until_quiet().await), ["a1", "a2"]);
    // What A refused waits in the queue.
    let q = broker.running.broker.queue("kinds").expect("queue kinds");
    assert_eq!(q.ready_count(), 4);

    // A consumer joining later with a matching selector gets what waited for it.
    let mut c = broker.client().await;
    c.subscribe(dest, "c", &[("selector", "kind = 'c' OR kind IS NULL")])
        .await;
    assert_eq!(texts(&c.messages_until_quiet().await), ["c1", "none1"]);
    // One without a selector gets the rest, in order.
    let mut b = broker.client().await;
    b.subscribe(dest, "b", &[]).await;
    assert_eq!(texts(&b.messages_until_quiet().await), ["b1", "b2"]);
    assert_eq!(q.ready_count(), 0);

    // From now on A still only ever gets kind a; B (no selector) may share the a's but gets
    // every other kind; each message goes to exactly one consumer.
    let mut sent = Vec::new();
    for i in 0..12 {
        let kind = ["a", "b", "d"][i % 3];
        let body = format!("{kind}-{i}");
        send(&mut p, dest, &body, &[("kind", kind)]).await;
        sent.push(body);
    }
    let got_a = texts(&a.messages_until_quiet().await);
    let got_b = texts(&b.messages_until_quiet().await);
    c.expect_no_frame(Duration::from_millis(50)).await;
    assert!(got_a.iter().all(|m| m.starts_with("a-")), "{got_a:?}");
    assert!(
        sent.iter()
            .filter(|m| !m.starts_with("a-"))
            .all(|m| got_b.contains(m)),
        "{got_b:?}"
    );
    let mut all: Vec<String> = got_a.into_iter().chain(got_b).collect();
    all.sort();
    sent.sort();
    assert_eq!(all, sent);
}

// ---------------------------------------------------------------------------------------------
// The language, end to end
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_syntax_end_to_end() {
    let broker = start_default().await;
    let dest = "/topic/syntax";
    // (selector, bodies it must select among the messages below)
    let cases: &[(&str, &[&str])] = &[
        // '10' > 5 numerically (as text '10' sorts before '5'); 3 and 5 are not; 'lots' is no
        // number (UNKNOWN).
        ("qty > 5", &["m1"]),
        ("qty <= 5", &["m2", "m4"]),
        ("qty * 2 = 20", &["m1"]),
        ("name LIKE 'ap%'", &["m1", "m3"]),
        ("name LIKE 'a_b'", &["m4", "m5"]),
        ("name LIKE 'a!_b' ESCAPE '!'", &["m4"]),
        ("name NOT LIKE 'a%'", &["m2"]),
        ("color IN ('red', 'green')", &["m1", "m3"]),
        ("color NOT IN ('red', 'green')", &["m2", "m4", "m5"]),
        ("size BETWEEN 5 AND 10", &["m1"]),
        ("size NOT BETWEEN 5 AND 10", &["m2"]),
        ("size IS NULL", &["m3", "m4", "m5"]),
        ("size IS NOT NULL", &["m1", "m2"]),
        ("JMSPriority > 5", &["m1"]),
        ("AMQPriority = 4", &["m3", "m4", "m5"]),
        ("content-type = 'text/plain'", &["m1"]),
        ("color = 'red' OR size > 10", &["m1", "m2"]),
        ("color = 'red' AND size = 5", &["m1"]),
        // Three-valued logic: a missing header is UNKNOWN, and so is its negation.
        ("color = 'red' AND missing = 'x'", &[]),
        ("NOT (missing = 'x')", &[]),
        ("missing <> 'x'", &[]),
        ("NOT (color = 'blue')", &["m1", "m3", "m4", "m5"]),
        ("missing = 'x' OR color = 'blue'", &["m2"]),
        ("NOT (missing = 'x') OR color = 'blue'", &["m2"]),
        (
            "missing IS NULL AND NOT (color = 'blue')",
            &["m1", "m3", "m4", "m5"],
        ),
    ];
    let messages: &[(&str, &[(&str, &str)])] = &[
        (
            "m1",
            &[
                ("qty", "10"),
                ("name", "apple"),
                ("color", "red"),
                ("size", "5"),
                ("content-type", "text/plain"),
                ("priority", "9"),
            ],
        ),
        (
            "m2",
            &[
                ("qty", "3"),
                ("name", "banana"),
                ("color", "blue"),
                ("size", "12"),
                ("content-type", "application/json"),
                ("priority", "2"),
            ],
        ),
        (
            "m3",
            &[("qty", "lots"), ("name", "apricot"), ("color", "green")],
        ),
        ("m4", &[("qty", "5"), ("name", "a_b"), ("color", "x")]),
        ("m5", &[("name", "axb"), ("color", "y")]),
    ];
    let mut sub = broker.client().await;
    for (i, (selector, _)) in cases.iter().enumerate() {
        sub.subscribe(dest, &format!("c{i}"), &[("selector", selector)])
            .await;
    }
    let mut p = broker.client().await;
    for (body, headers) in messages {
        send(&mut p, dest, body, headers).await;
    }
    let expected: usize = cases.iter().map(|(_, e)| e.len()).sum();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in sub.expect_messages(expected).await {
        got.entry(f.h("subscription").to_string())
            .or_default()
            .push(f.text());
    }
    sub.expect_no_frame(QUIET).await;
    for (i, (selector, want)) in cases.iter().enumerate() {
        let have = got.remove(&format!("c{i}")).unwrap_or_default();
        assert_eq!(have, *want, "selector {selector:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad and empty selectors
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selector_is_an_error_naming_position_and_expectation() {
    let broker = start_default().await;
    for (dest, selector, position, expected) in [
        ("/queue/bad", "a = ", 4, "a value after '='"),
        (
            "/topic/bad",
            "a IN ()",
            7,
            "a string literal in the IN list",
        ),
        (
            "/queue/bad",
            "color = 'red' AND",
            18,
            "an expression after AND",
        ),
        (
            "/topic/bad",
            "a = 'unterminated",
            18,
            "' to close the string",
        ),
        // Counted from the start of the header as sent, leading spaces included.
        (
            "/topic/bad",
            "   a IN ()",
            10,
            "a string literal in the IN list",
        ),
    ] {
        let mut c = broker.client().await;
        c.send_frame(
            "SUBSCRIBE",
            &[
                ("destination", dest),
                ("id", "s"),
                ("selector", selector),
                ("receipt", "r"),
            ],
            b"",
        )
        .await;
        let e = c.expect_error_and_close().await;
        let msg = e.h("message");
        assert!(
            msg.contains("header 'selector'")
                && msg.contains(&format!(
                    "at position {position}: expected {expected}, found"
                )),
            "{selector:?}: {e:?}"
        );
    }
    // A client cannot make the broker hold or walk an arbitrarily large or deep selector.
    let long = format!("a = '{}'", "x".repeat(5000));
    let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
    for (selector, expected) in [
        (long.as_str(), "a selector of at most 4096 bytes"),
        (deep.as_str(), "nesting at most 64 deep"),
    ] {
        let mut c = broker.client().await;
        c.send_frame(
            "SUBSCRIBE",
            &[
                ("destination", "/topic/bad"),
                ("id", "s"),
                ("selector", selector),
            ],
            b"",
        )
        .await;
        let e = c.expect_error_and_close().await;
        assert!(e.h("message").contains(expected), "{e:?}");
    }
    // Nothing was created for the refused topic subscriptions.
    assert!(
        broker
            .running
            .broker
            .queues_of("bad")
            .iter()
            .all(|q| q.routing != wrenmq::broker::RoutingType::Multicast)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_selector_header_means_no_selector() {
    let broker = start_default().await;
    let mut t = broker.client().await;
    t.subscribe("/topic/empty", "t", &[("selector", "")]).await;
    let mut q = broker.client().await;
    q.subscribe("/queue/empty", "q", &[("selector", "  ")])
        .await;
    let mut p = broker.client().await;
    send(&mut p, "/topic/empty", "t1", &[]).await;
    send(&mut p, "/topic/empty", "t2", &[("color", "red")]).await;
    send(&mut p, "/queue/empty", "q1", &[]).await;
    assert_eq!(texts(&t.messages_until_quiet().await), ["t1", "t2"]);
    assert_eq!(texts(&q.messages_until_quiet().await), ["q1"]);
    let topic_queues = broker.running.broker.queues_of("empty");
    assert!(topic_queues.iter().all(|q| q.filter.is_none()));
}

// ---------------------------------------------------------------------------------------------
// Durable subscriptions keep their selector across a restart
// ---------------------------------------------------------------------------------------------

#[test]
fn durable_subscription_keeps_its_selector_across_a_restart() {
    use durable_common::{Broker, Client as SyncClient};
    const DRAIN: Duration = Duration::from_millis(500);
    const LIMIT: Duration = Duration::from_secs(20);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let name = ("durable-subscription-name", "reds");
    let red = ("selector", "color = 'red'");
    // The client-id is free again once the broker has closed the previous connection,
    // which may lag its ERROR a little: retry, boundedly.
    let connect = |b: &Broker| {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            match SyncClient::try_connect(b.addr, &[("client-id", "c1")]) {
                Ok(c) => return c,
                Err(e) if std::time::Instant::now() > deadline => panic!("connect: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };

    let broker = Broker::start(&dir);
    let mut sub = connect(&broker);
    sub.subscribe("/topic/paint", "s", "client-individual", &[name, red]);
    sub.disconnect();
    let mut p = broker.client();
    for (body, color) in [("red1", "red"), ("blue1", "blue"), ("red2", "red")] {
        p.send_confirmed(
            "/topic/paint",
            &[("persistent", "true"), ("color", color)],
            body.as_bytes(),
            body,
        );
    }
    // Also inside a transaction: what the commit stores must be filtered the same way.
    p.send_frame("BEGIN", &[("transaction", "tx")], b"")
        .unwrap();
    for (body, color) in [("blue-tx", "blue"), ("red-tx", "red")] {
        let h = [
            ("destination", "/topic/paint"),
            ("transaction", "tx"),
            ("persistent", "true"),
            ("color", color),
        ];
        p.send_frame("SEND", &h, body.as_bytes()).unwrap();
    }
    p.send_frame("COMMIT", &[("transaction", "tx"), ("receipt", "c")], b"")
        .unwrap();
    p.expect_receipt("c");
    broker.kill();

    let broker = Broker::start(&dir);
    // Sent while the subscriber is away, after the restart: the recovered subscription
    // still filters at routing.
    let mut p = broker.client();
    for (body, color) in [("blue2", "blue"), ("red3", "red")] {
        p.send_confirmed(
            "/topic/paint",
            &[("persistent", "true"), ("color", color)],
            body.as_bytes(),
            body,
        );
    }
    // Another selector (or none) for the same durable subscription is refused.
    for other in [vec![name, ("selector", "color = 'blue'")], vec![name]] {
        let mut c = connect(&broker);
        let mut h = vec![
            ("destination", "/topic/paint"),
            ("id", "s"),
            ("receipt", "r"),
        ];
        h.extend_from_slice(&other);
        c.send_frame("SUBSCRIBE", &h, b"").unwrap();
        let e = c.expect_frame();
        assert_eq!(e.command, "ERROR", "{other:?}: {e:?}");
        assert!(
            e.header("message").is_some_and(|m| m.contains("selector")),
            "{e:?}"
        );
        assert!(
            c.read_frame(Duration::from_secs(5)).is_err(),
            "connection stays open after ERROR"
        );
    }
    let mut sub = connect(&broker);
    sub.subscribe("/topic/paint", "s", "client-individual", &[name, red]);
    let got: Vec<String> = sub
        .drain(DRAIN, LIMIT)
        .iter()
        .map(|f| f.body_str())
        .collect();
    assert_eq!(got, ["red1", "red2", "red-tx", "red3"]);
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// Configured queue filters
// ---------------------------------------------------------------------------------------------

fn filtered_queues_config() -> wrenmq::config::Config {
    let queue = |name: &str, routing: RoutingTypeConfig, filter: Option<&str>| QueueConfig {
        name: name.to_string(),
        routing_type: routing,
        durable: false,
        filter: filter.map(str::to_string),
        ..Default::default()
    };
    let mut config = test_config();
    config.addresses.push(AddressConfig {
        name: "events".to_string(),
        routing_types: vec![RoutingTypeConfig::Multicast],
        queues: vec![
            queue(
                "events.big",
                RoutingTypeConfig::Multicast,
                Some("size > 100"),
            ),
            queue("events.all", RoutingTypeConfig::Multicast, None),
        ],
    });
    config.addresses.push(AddressConfig {
        name: "orders".to_string(),
        routing_types: vec![RoutingTypeConfig::Anycast],
        queues: vec![
            queue(
                "orders.eu",
                RoutingTypeConfig::Anycast,
                Some("region = 'eu'"),
            ),
            queue(
                "orders.us",
                RoutingTypeConfig::Anycast,
                Some("region = 'us'"),
            ),
        ],
    });
    config
}

fn queue_bodies(broker: &TestBroker, name: &str) -> Vec<String> {
    let q = broker.running.broker.queue(name).expect("configured queue");
    q.snapshot()
        .iter()
        .map(|(m, _)| String::from_utf8_lossy(m.body.inline().unwrap()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_multicast_queue_filter_routes_only_matches() {
    let broker = start(filtered_queues_config()).await;
    let mut p = broker.client().await;
    for (body, size) in [("s50", Some("50")), ("s150", Some("150")), ("none", None)] {
        match size {
            Some(s) => send(&mut p, "/topic/events", body, &[("size", s)]).await,
            None => send(&mut p, "/topic/events", body, &[]).await,
        }
    }
    assert_eq!(queue_bodies(&broker, "events.big"), ["s150"]);
    assert_eq!(queue_bodies(&broker, "events.all"), ["s50", "s150", "none"]);
    // A consumer of the filtered queue (by its fully qualified name) gets only that one.
    let mut c = broker.client().await;
    c.subscribe("events::events.big", "big", &[]).await;
    assert_eq!(texts(&c.messages_until_quiet().await), ["s150"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_anycast_queue_filters_pick_the_matching_queue() {
    let broker = start(filtered_queues_config()).await;
    let mut p = broker.client().await;
    let mut eu = Vec::new();
    let mut us = Vec::new();
    for i in 0..8 {
        let region = if i % 3 == 0 { "us" } else { "eu" };
        let body = format!("{region}-{i}");
        send(&mut p, "/queue/orders", &body, &[("region", region)]).await;
        if region == "eu" { &mut eu } else { &mut us }.push(body);
    }
    // One nobody's filter matches is not routed anywhere.
    send(&mut p, "/queue/orders", "asia", &[("region", "asia")]).await;
    assert_eq!(queue_bodies(&broker, "orders.eu"), eu);
    assert_eq!(queue_bodies(&broker, "orders.us"), us);
    let mut c = broker.client().await;
    c.subscribe("orders::orders.us", "us", &[]).await;
    assert_eq!(texts(&c.messages_until_quiet().await), us);
}

// ---------------------------------------------------------------------------------------------
// no-local
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_topic_subscription_skips_its_own_connections_messages() {
    let broker = start_default().await;
    for header in ["no-local", "activemq.noLocal"] {
        let dest = format!("/topic/nl-{header}");
        let mut me = broker.client().await;
        me.subscribe(&dest, "s", &[(header, "true")]).await;
        let mut watcher = broker.client().await;
        watcher.subscribe(&dest, "w", &[]).await;
        let mut other = broker.client().await;
        send(&mut me, &dest, "mine", &[]).await;
        send(&mut other, &dest, "theirs", &[]).await;
        send(&mut me, &dest, "mine2", &[]).await;
        assert_eq!(
            texts(&me.messages_until_quiet().await),
            ["theirs"],
            "{header}"
        );
        assert_eq!(
            texts(&watcher.messages_until_quiet().await),
            ["mine", "theirs", "mine2"],
            "{header}"
        );
        // `false` is the same as no header.
        let mut plain = broker.client().await;
        plain.subscribe(&dest, "p", &[(header, "false")]).await;
        send(&mut plain, &dest, "own", &[]).await;
        assert_eq!(
            texts(&plain.messages_until_quiet().await),
            ["own"],
            "{header}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_anycast_consumer_leaves_its_own_messages_for_others() {
    let broker = start_default().await;
    for header in ["no-local", "activemq.noLocal"] {
        let dest = format!("/queue/nl-{header}");
        let mut me = broker.client().await;
        me.subscribe(&dest, "s", &[(header, "true")]).await;
        let mut other = broker.client().await;
        send(&mut me, &dest, "mine", &[]).await;
        send(&mut other, &dest, "theirs", &[]).await;
        assert_eq!(
            texts(&me.messages_until_quiet().await),
            ["theirs"],
            "{header}"
        );
        // Its own message stays on the queue for another consumer.
        let q = broker
            .running
            .broker
            .queue(dest.trim_start_matches("/queue/"))
            .expect("queue");
        assert_eq!(q.ready_count(), 1, "{header}");
        other.subscribe(&dest, "o", &[]).await;
        assert_eq!(
            texts(&other.messages_until_quiet().await),
            ["mine"],
            "{header}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_no_local_value_is_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/nlbad"),
            ("id", "s"),
            ("no-local", "yes"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("no-local"), "{e:?}");
}
