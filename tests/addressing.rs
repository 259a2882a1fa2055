//! The Artemis address model over STOMP: fully qualified queue names, wildcards, configured
//! addresses, and auto-create off.

mod common;

use common::*;
use wrenmq::config::{AddressConfig, QueueConfig, RoutingTypeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqqn_subscribe_and_send() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("orders::q1", "s", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("orders::q1", "direct").await;
    let m = s.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "direct");
    assert_eq!(m.get("destination"), Some("orders::q1"), "{m:?}");
}

fn two_anycast_queues_config() -> wrenmq::config::Config {
    let mut config = test_config();
    config.addresses.push(AddressConfig {
        name: "orders".to_string(),
        routing_types: vec![RoutingTypeConfig::Anycast],
        queues: vec![
            QueueConfig {
                name: "q1".to_string(),
                routing_type: RoutingTypeConfig::Anycast,
                durable: true,
                filter: None,
                ..Default::default()
            },
            QueueConfig {
                name: "q2".to_string(),
                routing_type: RoutingTypeConfig::Anycast,
                durable: true,
                filter: None,
                ..Default::default()
            },
        ],
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqqn_targets_one_of_two_configured_anycast_queues() {
    let broker = start(two_anycast_queues_config()).await;
    let mut s1 = broker.client().await;
    s1.subscribe("orders::q1", "s1", &[]).await;
    let mut s2 = broker.client().await;
    s2.subscribe("orders::q2", "s2", &[]).await;
    let mut p = broker.client().await;
    for m in numbered("for-q2-", 3) {
        p.send_msg("orders::q2", &m).await;
    }
    assert_eq!(bodies(&mut s2, 3).await, numbered("for-q2-", 3));
    s1.expect_no_frame(QUIET).await;
    p.send_msg("orders::q1", "for-q1").await;
    assert_eq!(s1.expect_frame("MESSAGE").await.text(), "for-q1");
    s2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anycast_address_send_is_shared_by_its_queues() {
    let broker = start(two_anycast_queues_config()).await;
    let mut s1 = broker.client().await;
    s1.subscribe("orders::q1", "s1", &[]).await;
    let mut s2 = broker.client().await;
    s2.subscribe("orders::q2", "s2", &[]).await;
    let mut p = broker.client().await;
    for m in numbered("shared-", 4) {
        p.send_msg("/queue/orders", &m).await;
    }
    // Each message goes to exactly one of the two anycast queues, two each.
    let a = bodies(&mut s1, 2).await;
    let b = bodies(&mut s2, 2).await;
    s1.expect_no_frame(QUIET).await;
    s2.expect_no_frame(QUIET).await;
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort();
    assert_eq!(all, numbered("shared-", 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_queue_keeps_messages_without_consumers() {
    let broker = start(two_anycast_queues_config()).await;
    let mut p = broker.client().await;
    p.send_msg("orders::q1", "waiting").await;
    let mut s = broker.client().await;
    s.subscribe("orders::q1", "s", &[]).await;
    assert_eq!(s.expect_frame("MESSAGE").await.text(), "waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fqqn_with_wrong_address_is_refused() {
    let broker = start(two_anycast_queues_config()).await;
    let mut s = broker.client().await;
    s.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "billing::q1"),
            ("id", "s"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = s.expect_error_and_close().await;
    assert!(e.h("message").contains("q1"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("r"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_wildcard_matches_zero_or_more_words() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/topic/news.#", "all-news", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/topic/news.eu.sport", "deep").await;
    p.send_msg("/topic/news", "root").await;
    p.send_msg("/topic/news.eu", "one").await;
    p.send_msg("/topic/sport.news", "other").await;
    let ms = s.expect_messages(3).await;
    let texts: Vec<String> = ms.iter().map(Frame::text).collect();
    assert_eq!(texts, vec!["deep", "root", "one"]);
    // The MESSAGE names the address it was sent to, not the wildcard.
    assert_eq!(ms[0].get("destination"), Some("/topic/news.eu.sport"));
    assert_eq!(ms[1].get("destination"), Some("/topic/news"));
    assert_eq!(ms[0].get("subscription"), Some("all-news"));
    s.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_wildcard_matches_exactly_one_word() {
    let broker = start_default().await;
    let mut s = broker.client().await;
    s.subscribe("/topic/news.*", "one-level", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/topic/news.eu.sport", "too-deep").await;
    p.send_msg("/topic/news", "too-short").await;
    p.send_msg("/topic/news.eu", "match").await;
    let m = s.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "match", "{m:?}");
    assert_eq!(m.get("destination"), Some("/topic/news.eu"));
    s.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_and_exact_subscribers_each_get_one_copy() {
    let broker = start_default().await;
    let mut wild = broker.client().await;
    wild.subscribe("/topic/prices.#", "w", &[]).await;
    let mut exact = broker.client().await;
    exact.subscribe("/topic/prices.eur", "e", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/topic/prices.eur", "1.08").await;
    assert_eq!(wild.expect_frame("MESSAGE").await.text(), "1.08");
    assert_eq!(exact.expect_frame("MESSAGE").await.text(), "1.08");
    wild.expect_no_frame(QUIET).await;
    exact.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_subscription_sees_addresses_created_later_and_earlier() {
    let broker = start_default().await;
    // The address exists (it has a subscriber) before the wildcard subscription.
    let mut early = broker.client().await;
    early.subscribe("/topic/logs.app", "e", &[]).await;
    let mut wild = broker.client().await;
    wild.subscribe("/topic/logs.*", "w", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/topic/logs.app", "existing").await;
    p.send_msg("/topic/logs.db", "new").await;
    let texts: Vec<String> = wild
        .expect_messages(2)
        .await
        .iter()
        .map(Frame::text)
        .collect();
    assert_eq!(texts, vec!["existing", "new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_and_queue_of_same_name_are_separate() {
    let broker = start_default().await;
    let mut q = broker.client().await;
    q.subscribe("/queue/same", "q", &[]).await;
    let mut t = broker.client().await;
    t.subscribe("/topic/same", "t", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/queue/same", "to-queue").await;
    p.send_msg("/topic/same", "to-topic").await;
    assert_eq!(q.expect_frame("MESSAGE").await.text(), "to-queue");
    assert_eq!(t.expect_frame("MESSAGE").await.text(), "to-topic");
    q.expect_no_frame(QUIET).await;
    t.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_off_refuses_send_to_missing_destination() {
    let broker = start(no_auto_create_config()).await;
    let mut c = broker.client().await;
    c.send_frame(
        "SEND",
        &[("destination", "/queue/missing.send"), ("receipt", "s")],
        b"x",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("missing.send"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("s"));
    assert!(
        !broker
            .running
            .broker
            .address_names()
            .contains(&"missing.send".to_string()),
        "nothing may be created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_off_refuses_subscribe_to_missing_destination() {
    let broker = start(no_auto_create_config()).await;
    for dest in ["/queue/missing.sub", "/topic/missing.sub", "missing.sub::q"] {
        let mut c = broker.client().await;
        c.send_frame(
            "SUBSCRIBE",
            &[("destination", dest), ("id", "s"), ("receipt", "r")],
            b"",
        )
        .await;
        let e = c.expect_error_and_close().await;
        assert!(e.h("message").contains("missing.sub"), "{dest}: {e:?}");
        assert_eq!(e.get("receipt-id"), Some("r"), "{dest}");
    }
    // Only the built-in dead-letter and expiry addresses exist; nothing was auto-created.
    assert_eq!(
        broker.running.broker.address_names(),
        vec!["DLQ".to_string(), "ExpiryQueue".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_off_still_serves_configured_addresses() {
    let mut config = two_anycast_queues_config();
    config.address_settings = no_auto_create_config().address_settings;
    let broker = start(config).await;
    let mut s1 = broker.client().await;
    s1.subscribe("orders::q1", "s1", &[]).await;
    let mut s2 = broker.client().await;
    s2.subscribe("orders::q2", "s2", &[]).await;
    let mut p = broker.client().await;
    p.send_msg("/queue/orders", "a").await;
    p.send_msg("/queue/orders", "b").await;
    let mut got = vec![
        s1.expect_frame("MESSAGE").await.text(),
        s2.expect_frame("MESSAGE").await.text(),
    ];
    got.sort();
    assert_eq!(got, vec!["a", "b"]);
    assert_eq!(
        broker.running.broker.address_names(),
        vec![
            "DLQ".to_string(),
            "ExpiryQueue".to_string(),
            "orders".to_string()
        ],
        "nothing auto-created"
    );
}
