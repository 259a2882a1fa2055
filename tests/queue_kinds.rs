//! Queue kinds over real STOMP connections: an exclusive queue feeds one consumer at a time
//! and the next takes over without reordering; a last-value queue keeps only the newest
//! waiting message per `last-value-key` (also across a restart); a ring queue keeps the
//! newest `ring-size` messages. Each is configured both as a queue's own key and through the
//! `default-*` address settings of auto-created queues.

mod common;
mod durable_common;

use std::time::Duration;

use common::*;
use wrenmq::config::{AddressConfig, AddressSettingsEntry, Config, QueueConfig, RoutingTypeConfig};

/// A broker with one configured anycast queue `name` of the kind `set` makes it.
async fn with_queue(name: &str, set: impl FnOnce(&mut QueueConfig)) -> TestBroker {
    let mut config: Config = test_config();
    let mut q = QueueConfig {
        name: name.into(),
        routing_type: RoutingTypeConfig::Anycast,
        durable: true,
        ..Default::default()
    };
    set(&mut q);
    config.addresses.push(AddressConfig {
        name: name.into(),
        routing_types: vec![RoutingTypeConfig::Anycast],
        queues: vec![q],
    });
    start(config).await
}

/// A broker whose `kinds.#` auto-created queues get the `default-*` keys `set` gives.
async fn with_defaults(set: impl FnOnce(&mut AddressSettingsEntry)) -> TestBroker {
    let mut config: Config = test_config();
    let mut e = AddressSettingsEntry {
        pattern: "kinds.#".into(),
        ..Default::default()
    };
    set(&mut e);
    config.address_settings.push(e);
    start(config).await
}

async fn send(p: &mut Client, dest: &str, body: &str, extra: &[(&str, &str)]) {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    p.send_with_receipt("SEND", &h, body.as_bytes(), &format!("r-{body}"))
        .await;
}

async fn send_all(p: &mut Client, dest: &str, bodies: &[String]) {
    for b in bodies {
        send(p, dest, b, &[]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Exclusive
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn exclusive_queue_feeds_one_consumer_and_the_next_takes_over_in_order() {
    let broker = with_queue("excl", |q| q.exclusive = Some(true)).await;
    let dest = "/queue/excl";
    let mut first = broker.client().await;
    first
        .subscribe(dest, "a", &[("ack", "client-individual")])
        .await;
    let mut second = broker.client().await;
    second
        .subscribe(dest, "b", &[("ack", "client-individual")])
        .await;
    let mut third = broker.client().await;
    third.subscribe(dest, "c", &[("ack", "auto")]).await;
    let mut p = broker.client().await;
    send_all(&mut p, dest, &numbered("m", 10)).await;

    let got = first.messages_until_quiet().await;
    assert_eq!(
        got.iter().map(Frame::text).collect::<Vec<_>>(),
        numbered("m", 10),
        "the first consumer gets everything"
    );
    second.expect_no_frame(QUIET).await;
    third.expect_no_frame(QUIET).await;
    // It acknowledges the first four and leaves: the rest go to the next consumer, in order,
    // before anything newer.
    for f in &got[..4] {
        first.send_frame("ACK", &[("id", f.h("ack"))], b"").await;
    }
    first.disconnect().await;
    send(&mut p, dest, "m10", &[]).await;
    let rest = second.bodies_until_quiet().await;
    assert_eq!(
        rest,
        numbered("m", 11)[4..],
        "taken over without reordering"
    );
    third.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn default_exclusive_queue_applies_to_auto_created_queues() {
    for exclusive in [false, true] {
        let broker = with_defaults(|e| e.default_exclusive_queue = Some(exclusive)).await;
        let dest = "/queue/kinds.excl";
        let mut a = broker.client().await;
        a.subscribe(dest, "a", &[]).await;
        let mut b = broker.client().await;
        b.subscribe(dest, "b", &[]).await;
        let mut p = broker.client().await;
        send_all(&mut p, dest, &numbered("m", 6)).await;
        let (x, y) = (a.bodies_until_quiet().await, b.bodies_until_quiet().await);
        if exclusive {
            assert_eq!((x.len(), y.len()), (6, 0));
        } else {
            assert_eq!((x.len(), y.len()), (3, 3));
        }
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn an_activemq_exclusive_consumer_gets_everything_on_a_plain_queue_while_it_stays() {
    let broker = start_default().await;
    let dest = "/queue/plain.excl";
    let mut shared = broker.client().await;
    shared.subscribe(dest, "a", &[]).await;
    let mut excl = broker.client().await;
    excl.subscribe(dest, "x", &[("activemq.exclusive", "true")])
        .await;
    let mut p = broker.client().await;
    send_all(&mut p, dest, &numbered("m", 6)).await;
    assert_eq!(excl.bodies_until_quiet().await, numbered("m", 6));
    shared.expect_no_frame(QUIET).await;
    // Once it leaves the queue shares again.
    excl.disconnect().await;
    send_all(&mut p, dest, &numbered("n", 2)).await;
    assert_eq!(shared.bodies_until_quiet().await, numbered("n", 2));
    let mut bad = broker.client().await;
    bad.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", dest),
            ("id", "b"),
            ("activemq.exclusive", "yes"),
        ],
        b"",
    )
    .await;
    let e = bad.expect_error_and_close().await;
    assert!(e.h("message").contains("activemq.exclusive"), "{e:?}");
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Last-value
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn last_value_queue_keeps_the_newest_waiting_value_per_key_in_the_old_place() {
    let broker = with_queue("prices", |q| {
        q.last_value = Some(true);
        q.last_value_key = Some("symbol".into());
    })
    .await;
    let dest = "/queue/prices";
    let mut p = broker.client().await;
    send(&mut p, dest, "ACME 1", &[("symbol", "ACME")]).await;
    send(&mut p, dest, "WREN 1", &[("symbol", "WREN")]).await;
    send(&mut p, dest, "no key", &[]).await;
    send(&mut p, dest, "ACME 2", &[("symbol", "ACME")]).await;
    send(&mut p, dest, "ACME 3", &[("symbol", "ACME")]).await;
    send(&mut p, dest, "no key 2", &[]).await;
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[]).await;
    assert_eq!(
        c.bodies_until_quiet().await,
        ["ACME 3", "WREN 1", "no key", "no key 2"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn last_value_replaces_only_what_is_waiting_and_drops_an_older_value_coming_back() {
    let broker = with_defaults(|e| e.default_last_value_queue = Some(true)).await;
    let dest = "/queue/kinds.lvq";
    let key = ("_AMQ_LVQ_NAME", "k");
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    send(&mut p, dest, "v1", &[key]).await;
    let v1 = c.expect_frame("MESSAGE").await;
    assert_eq!(v1.text(), "v1");
    // v1 is out with the consumer: v2 does not replace it but waits behind it.
    send(&mut p, dest, "v2", &[key]).await;
    let v2 = c.expect_frame("MESSAGE").await;
    assert_eq!(v2.text(), "v2");
    // NACK v1 while v2 is out: v1 comes back (v2 is not waiting, so v1 is the newest
    // waiting value)...
    c.send_frame("NACK", &[("id", v1.h("ack"))], b"").await;
    let again = c.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "v1");
    assert_eq!(again.get("redelivered"), Some("true"));
    // ...but once a newer value waits, an older one coming back is dropped.
    c.send_frame("UNSUBSCRIBE", &[("id", "s")], b"").await;
    send(&mut p, dest, "v3", &[key]).await;
    let mut d = broker.client().await;
    d.subscribe(dest, "d", &[]).await;
    assert_eq!(
        d.bodies_until_quiet().await,
        ["v3"],
        "v1 and v2 were older than v3"
    );
    broker.shutdown().await;
}

#[test]
fn last_value_queue_after_a_restart_holds_only_the_newest_values() {
    use durable_common::Broker;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let config = tmp.path().join("lvq.toml");
    std::fs::write(
        &config,
        "[[addresses]]\nname = \"ticks\"\nrouting-types = [\"anycast\"]\n\n[[addresses.queues]]\nname = \"ticks\"\nrouting-type = \"anycast\"\nlast-value = true\nlast-value-key = \"sym\"\n",
    )
    .expect("config");
    let broker = Broker::start_with_config(&dir, &config);
    let mut p = broker.client();
    for (i, sym) in ["A", "B", "A", "C", "B", "A"].iter().enumerate() {
        p.send_confirmed(
            "/queue/ticks",
            &[("persistent", "true"), ("sym", sym)],
            format!("{sym}{i}").as_bytes(),
            &format!("r{i}"),
        );
    }
    p.disconnect();
    broker.kill();

    let broker = Broker::start_with_config(&dir, &config);
    let mut c = broker.client();
    c.subscribe("/queue/ticks", "s", "auto", &[]);
    let bodies: Vec<String> = c
        .drain(Duration::from_millis(500), Duration::from_secs(10))
        .iter()
        .map(|f| f.body_str())
        .collect();
    // The journal knows no positions: after a restart the newest values are offered in the
    // order they arrived.
    assert_eq!(bodies, ["C3", "B4", "A5"], "one newest value per key");
    // The replaced values are gone from the journal too, not only from memory.
    c.disconnect();
    broker.kill();
    let broker = Broker::start_with_config(&dir, &config);
    let mut c = broker.client();
    c.subscribe("/queue/ticks", "s", "auto", &[]);
    assert!(
        c.drain(Duration::from_millis(500), Duration::from_secs(10))
            .is_empty()
    );
    c.disconnect();
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// Ring
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ring_queue_keeps_the_newest_ring_size_messages() {
    let broker = with_queue("ring", |q| q.ring_size = Some(3)).await;
    let dest = "/queue/ring";
    let mut p = broker.client().await;
    send_all(&mut p, dest, &numbered("m", 10)).await;
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[]).await;
    assert_eq!(c.bodies_until_quiet().await, ["m7", "m8", "m9"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn ring_counts_what_consumers_hold_so_a_nacked_message_keeps_its_place() {
    let broker = with_defaults(|e| e.default_ring_size = Some(2)).await;
    let dest = "/queue/kinds.ring";
    let mut c = broker.client().await;
    c.subscribe(
        dest,
        "s",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    let mut p = broker.client().await;
    send_all(&mut p, dest, &numbered("m", 4)).await;
    // m0 is out with the consumer, so of m1..m3 only the newest fits beside it.
    let m0 = c.expect_frame("MESSAGE").await;
    assert_eq!(m0.text(), "m0");
    c.send_frame("NACK", &[("id", m0.h("ack"))], b"").await;
    let again = c.expect_frame("MESSAGE").await;
    assert_eq!(
        (again.text().as_str(), again.h("redelivered")),
        ("m0", "true")
    );
    c.send_frame("ACK", &[("id", again.h("ack"))], b"").await;
    let last = c.expect_frame("MESSAGE").await;
    assert_eq!(last.text(), "m3");
    c.send_frame("ACK", &[("id", last.h("ack"))], b"").await;
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[test]
fn ring_queue_after_a_restart_holds_its_newest_messages_only() {
    use durable_common::Broker;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let config = tmp.path().join("ring.toml");
    std::fs::write(
        &config,
        "[[addresses]]\nname = \"recent\"\nrouting-types = [\"anycast\"]\n\n[[addresses.queues]]\nname = \"recent\"\nrouting-type = \"anycast\"\nring-size = 3\n",
    )
    .expect("config");
    let broker = Broker::start_with_config(&dir, &config);
    let mut p = broker.client();
    for i in 0..10 {
        p.send_confirmed(
            "/queue/recent",
            &[("persistent", "true")],
            format!("m{i}").as_bytes(),
            &format!("r{i}"),
        );
    }
    p.disconnect();
    broker.kill();

    let broker = Broker::start_with_config(&dir, &config);
    let mut c = broker.client();
    c.subscribe("/queue/recent", "s", "auto", &[]);
    let bodies: Vec<String> = c
        .drain(Duration::from_millis(500), Duration::from_secs(10))
        .iter()
        .map(|f| f.body_str())
        .collect();
    assert_eq!(bodies, ["m7", "m8", "m9"]);
    c.disconnect();
    broker.kill();
}
