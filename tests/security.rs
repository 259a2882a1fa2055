//! Authentication and authorization over real sockets: good and bad logins, anonymous access,
//! each enforced permission allowed and refused, wildcard matches, most-specific-wins, and
//! that a refused auto-create creates nothing.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::time::{Duration, Instant};

use common::{Client, Frame, QUIET, TestBroker, start};
use secure::{ALL, connect_frame, grant, secured_config, user};
use wrenmq::config::{AddressConfig, QueueConfig, RoutingTypeConfig};

async fn login(b: &TestBroker, who: &str, password: &str) -> Client {
    let mut c = b.tcp().await;
    c.write(&connect_frame(Some((who, password)))).await;
    c.expect_frame("CONNECTED").await;
    c
}

async fn refused(b: &TestBroker, credentials: Option<(&str, &str)>) -> Frame {
    let mut c = b.tcp().await;
    c.write(&connect_frame(credentials)).await;
    c.expect_error_and_close().await
}

/// Sends `command` with a receipt and expects an ERROR naming `needle`, then the close.
async fn expect_refusal(c: &mut Client, command: &str, headers: &[(&str, &str)], needle: &str) {
    let mut all = headers.to_vec();
    all.push(("receipt", "r"));
    c.send_frame(command, &all, b"x").await;
    let e = c.expect_error_and_close().await;
    assert_eq!(e.h("message"), needle, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_and_bad_logins() {
    let b = start(secured_config(vec![grant("#", &ALL, &["admin"])])).await;
    login(&b, "admin", "admin-pw").await.disconnect().await;
    login(&b, "bob", "bob-pw").await.disconnect().await;

    let wrong_password = refused(&b, Some(("bob", "nope"))).await;
    let unknown_user = refused(&b, Some(("mallory", "bob-pw"))).await;
    assert_eq!(wrong_password.h("message"), "login failed");
    // Same answer whichever half was wrong.
    assert_eq!(wrong_password.h("message"), unknown_user.h("message"));
    assert_eq!(wrong_password.text(), unknown_user.text());

    let anonymous = refused(&b, None).await;
    assert_eq!(anonymous.h("message"), "login failed");
    // An empty login is no login.
    assert_eq!(
        refused(&b, Some(("", ""))).await.h("message"),
        "login failed"
    );

    // Repeated failures from one IP are slowed down: the delay doubles up to the cap (80 ms).
    let ip = "127.0.0.1".parse().unwrap();
    assert!(b.running.security.failed_logins(ip) >= 2);
    let started = Instant::now();
    refused(&b, Some(("bob", "nope"))).await;
    assert!(
        started.elapsed() >= Duration::from_millis(70),
        "{:?}",
        started.elapsed()
    );
    // Other users still log in.
    login(&b, "carol", "carol-pw").await.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_follows_the_config() {
    // allow-anonymous = true: anonymous connections get the anonymous roles.
    let mut config = secured_config(vec![grant(
        "#",
        &["send", "create-address", "create-durable-queue"],
        &["guest"],
    )]);
    config.security.allow_anonymous = Some(true);
    let b = start(config).await;
    let mut c = b.tcp().await;
    c.write(&connect_frame(None)).await;
    c.expect_frame("CONNECTED").await;
    c.send_msg("/queue/anon", "hello").await;
    // ... and only those roles.
    expect_refusal(
        &mut c,
        "SUBSCRIBE",
        &[("destination", "/queue/anon"), ("id", "1")],
        "anonymous user lacks permission 'consume' on address 'anon'",
    )
    .await;
    // With users configured, a login naming no user is refused, not made anonymous.
    assert_eq!(
        refused(&b, Some(("guest", "guest"))).await.h("message"),
        "login failed"
    );

    // Unset allow-anonymous: allowed on a loopback acceptor (the embedded default).
    let mut config = secured_config(vec![grant("#", &ALL, &["guest"])]);
    config.security.allow_anonymous = None;
    let b = start(config).await;
    let mut c = b.tcp().await;
    c.write(&connect_frame(None)).await;
    c.expect_frame("CONNECTED").await;
}

fn permissions_config() -> wrenmq::config::Config {
    let producer_roles = ["producer", "admin"];
    let consumer_roles = ["consumer", "subscriber", "admin"];
    let mut config = secured_config(vec![
        grant("#", &ALL, &["admin"]),
        {
            let mut e = grant("orders.#", &["send"], &producer_roles);
            e.consume = grant("x", &["consume"], &consumer_roles).consume;
            e.create_address = vec!["admin".into()];
            e.create_durable_queue = vec!["admin".into(), "producer".into(), "subscriber".into()];
            e.create_non_durable_queue =
                vec!["consumer".into(), "subscriber".into(), "admin".into()];
            e.delete_durable_queue = vec!["admin".into()];
            e
        },
        // More specific than orders.#: decides alone, nothing inherited from orders.#.
        grant("orders.secret", &["send", "consume"], &["admin"]),
        grant("audit.#", &["consume"], &["consumer"]),
        grant(
            "metrics.*",
            &["send", "create-address", "create-durable-queue"],
            &["producer"],
        ),
    ]);
    config.users.push(user("dave", "dave-pw", &["subscriber"]));
    let anycast = |name: &str| AddressConfig {
        name: name.to_string(),
        routing_types: vec![RoutingTypeConfig::Anycast],
        queues: vec![QueueConfig {
            name: name.to_string(),
            routing_type: RoutingTypeConfig::Anycast,
            durable: true,
            filter: None,
            ..Default::default()
        }],
    };
    let multicast = |name: &str| AddressConfig {
        name: name.to_string(),
        routing_types: vec![RoutingTypeConfig::Multicast],
        queues: Vec::new(),
    };
    config.addresses = vec![
        anycast("orders.eu"),
        anycast("orders.secret"),
        multicast("orders.news"),
        multicast("audit.log"),
    ];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_consume_are_checked_per_address() {
    let b = start(permissions_config()).await;
    let mut bob = login(&b, "bob", "bob-pw").await;
    bob.send_msg("/queue/orders.eu", "o1").await;
    let mut carol = login(&b, "carol", "carol-pw").await;
    carol.subscribe("/queue/orders.eu", "s", &[]).await;
    assert_eq!(carol.expect_frame("MESSAGE").await.text(), "o1");

    expect_refusal(
        &mut carol,
        "SEND",
        &[("destination", "/queue/orders.eu")],
        "user 'carol' lacks permission 'send' on address 'orders.eu'",
    )
    .await;
    expect_refusal(
        &mut bob,
        "SUBSCRIBE",
        &[("destination", "/queue/orders.eu"), ("id", "1")],
        "user 'bob' lacks permission 'consume' on address 'orders.eu'",
    )
    .await;
    // Most specific wins: orders.secret's entry does not inherit orders.#'s send for bob.
    let mut bob = login(&b, "bob", "bob-pw").await;
    expect_refusal(
        &mut bob,
        "SEND",
        &[("destination", "/queue/orders.secret")],
        "user 'bob' lacks permission 'send' on address 'orders.secret'",
    )
    .await;
    // ... also inside a transaction, at the SEND rather than at COMMIT.
    let mut bob = login(&b, "bob", "bob-pw").await;
    bob.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    expect_refusal(
        &mut bob,
        "SEND",
        &[
            ("destination", "/queue/orders.secret"),
            ("transaction", "t"),
        ],
        "user 'bob' lacks permission 'send' on address 'orders.secret'",
    )
    .await;
    let mut admin = login(&b, "admin", "admin-pw").await;
    admin.send_msg("/queue/orders.secret", "s1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_star_and_hash_matches() {
    let b = start(permissions_config()).await;
    let mut bob = login(&b, "bob", "bob-pw").await;
    // metrics.* matches exactly one more word.
    bob.send_msg("/queue/metrics.cpu", "1").await;
    assert!(
        b.running
            .broker
            .address_names()
            .contains(&"metrics.cpu".to_string())
    );
    expect_refusal(
        &mut bob,
        "SEND",
        &[("destination", "/queue/metrics.cpu.core0")],
        "user 'bob' lacks permission 'send' on address 'metrics.cpu.core0'",
    )
    .await;
    // orders.# matches orders itself too.
    let mut bob = login(&b, "bob", "bob-pw").await;
    expect_refusal(
        &mut bob,
        "SEND",
        &[("destination", "/queue/orders")],
        "user 'bob' lacks permission 'create-address' on address 'orders'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_auto_create_creates_nothing() {
    let b = start(permissions_config()).await;
    let before = b.running.broker.address_names();
    let mut bob = login(&b, "bob", "bob-pw").await;
    expect_refusal(
        &mut bob,
        "SEND",
        &[("destination", "/queue/orders.new")],
        "user 'bob' lacks permission 'create-address' on address 'orders.new'",
    )
    .await;
    let mut carol = login(&b, "carol", "carol-pw").await;
    expect_refusal(
        &mut carol,
        "SUBSCRIBE",
        &[("destination", "/topic/orders.fresh"), ("id", "1")],
        "user 'carol' lacks permission 'create-address' on address 'orders.fresh'",
    )
    .await;
    assert_eq!(b.running.broker.address_names(), before);
    assert!(
        !b.running
            .broker
            .address_names()
            .contains(&"orders.new".to_string())
    );
    // An FQQN queue on an existing address (a durable consumer group): the queue is not
    // created either.
    let mut carol = login(&b, "carol", "carol-pw").await;
    expect_refusal(
        &mut carol,
        "SUBSCRIBE",
        &[
            ("destination", "orders.news::mine"),
            ("id", "1"),
            ("durable", "true"),
        ],
        "user 'carol' lacks permission 'create-durable-queue' on address 'orders.news'",
    )
    .await;
    assert!(b.running.broker.queue("mine").is_none());
    // Someone allowed creates it.
    let mut admin = login(&b, "admin", "admin-pw").await;
    admin.send_msg("/queue/orders.new", "n").await;
    assert!(
        b.running
            .broker
            .address_names()
            .contains(&"orders.new".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_queues_need_their_create_and_delete_permissions() {
    let b = start(permissions_config()).await;
    // consume but no create-non-durable-queue on audit.#.
    let mut carol = login(&b, "carol", "carol-pw").await;
    expect_refusal(
        &mut carol,
        "SUBSCRIBE",
        &[("destination", "/topic/audit.log"), ("id", "1")],
        "user 'carol' lacks permission 'create-non-durable-queue' on address 'audit.log'",
    )
    .await;
    // A non-durable subscription where it is granted.
    let mut carol = login(&b, "carol", "carol-pw").await;
    carol.subscribe("/topic/orders.news", "n", &[]).await;
    // A durable subscription needs create-durable-queue, which consumer lacks.
    let mut carol_d = b.tcp().await;
    carol_d
        .write(&common::frame_bytes(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("login", "carol"),
                ("passcode", "carol-pw"),
                ("client-id", "c"),
            ],
            b"",
        ))
        .await;
    carol_d.expect_frame("CONNECTED").await;
    expect_refusal(
        &mut carol_d,
        "SUBSCRIBE",
        &[
            ("destination", "/topic/orders.news"),
            ("id", "d"),
            ("durable-subscription-name", "s"),
        ],
        "user 'carol' lacks permission 'create-durable-queue' on address 'orders.news'",
    )
    .await;
    assert!(b.running.broker.queue("c.s").is_none());
    // dave may create a durable subscription but not delete it.
    let mut dave = b.tcp().await;
    dave.write(&common::frame_bytes(
        "CONNECT",
        &[
            ("accept-version", "1.2"),
            ("login", "dave"),
            ("passcode", "dave-pw"),
            ("client-id", "d"),
        ],
        b"",
    ))
    .await;
    dave.expect_frame("CONNECTED").await;
    dave.subscribe(
        "/topic/orders.news",
        "d",
        &[("durable-subscription-name", "s")],
    )
    .await;
    assert!(b.running.broker.queue("d.s").is_some());
    expect_refusal(
        &mut dave,
        "UNSUBSCRIBE",
        &[("id", "d"), ("durable-subscription-name", "s")],
        "user 'dave' lacks permission 'delete-durable-queue' on address 'orders.news'",
    )
    .await;
    assert!(b.running.broker.queue("d.s").is_some());
    tokio::time::sleep(QUIET).await;
}
