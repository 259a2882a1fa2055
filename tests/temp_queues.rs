//! Temporary destinations (`/temp-queue/NAME`, `/temp-topic/NAME`) over real connections:
//! request/reply with `reply-to` rewritten, one destination per NAME per connection, private
//! to their connection, gone (and not re-created) when it closes, temp-topic fan-out, and the
//! per-connection bound.

mod common;
#[path = "common/secure.rs"]
mod secure;

use common::{Client, QUIET, TestBroker, start, start_default, test_config};
use secure::{connect_frame, grant, secured_config};

/// Sends a request to `/queue/rpc` with `reply-to`, confirmed by a receipt.
async fn request(c: &mut Client, reply_to: &str, body: &str) {
    c.send_with_receipt(
        "SEND",
        &[("destination", "/queue/rpc"), ("reply-to", reply_to)],
        body.as_bytes(),
        &format!("req-{body}"),
    )
    .await;
}

/// Sends `body` to `destination` with a receipt and expects an ERROR containing `needle`.
async fn refused_send(c: &mut Client, destination: &str, needle: &str) -> String {
    c.send_frame(
        "SEND",
        &[("destination", destination), ("receipt", "r")],
        b"late",
    )
    .await;
    let e = c.expect_error_and_close().await;
    let message = e.h("message").to_string();
    assert!(message.contains(needle), "{e:?}");
    message
}

/// Subscribes with a receipt and expects an ERROR containing `needle`.
async fn refused_subscribe(
    c: &mut Client,
    destination: &str,
    extra: &[(&str, &str)],
    needle: &str,
) {
    let mut headers = vec![("destination", destination), ("id", "x"), ("receipt", "r")];
    headers.extend_from_slice(extra);
    c.send_frame("SUBSCRIBE", &headers, b"").await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains(needle), "{e:?}");
}

/// The responder's side: takes one request and returns its (rewritten) `reply-to`.
async fn take_request(responder: &mut Client) -> (String, String) {
    let m = responder.expect_frame("MESSAGE").await;
    (m.h("reply-to").to_string(), m.text())
}

async fn wait_until(b: &TestBroker, what: &str, done: impl Fn(&TestBroker) -> bool) {
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    while !done(b) {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_round_trip_with_reply_to_rewritten() {
    let b = start_default().await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut requester = b.client().await;
    requester.subscribe("/temp-queue/r", "replies", &[]).await;
    request(&mut requester, "/temp-queue/r", "ping").await;

    let (reply_to, body) = take_request(&mut server).await;
    assert_eq!(body, "ping");
    // The responder sees a destination anyone can send to, named uniquely.
    assert!(reply_to.starts_with("/queue/temp-queue."), "{reply_to}");
    assert!(!reply_to.contains("/temp-queue/"), "{reply_to}");
    let name = reply_to.trim_start_matches("/queue/");
    assert!(b.running.broker.queue(name).is_some(), "{name}");
    assert!(!b.running.broker.queue(name).is_some_and(|q| q.durable));

    server.send_msg(&reply_to, "pong").await;
    let reply = requester.expect_frame("MESSAGE").await;
    assert_eq!(reply.text(), "pong");
    assert_eq!(reply.h("subscription"), "replies");

    // The same NAME on the same connection is the same destination; another connection's
    // same NAME is another one.
    request(&mut requester, "/temp-queue/r", "again").await;
    let (second, _) = take_request(&mut server).await;
    assert_eq!(second, reply_to);
    let mut other = b.client().await;
    request(&mut other, "/temp-queue/r", "other").await;
    let (third, _) = take_request(&mut server).await;
    assert_ne!(third, reply_to);
    assert!(third.starts_with("/queue/temp-queue."), "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_before_the_requester_subscribes_waits_for_it() {
    let b = start_default().await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut requester = b.client().await;
    request(&mut requester, "/temp-queue/late", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    server.send_msg(&reply_to, "pong").await;
    // The owner may also send to its own temporary queue by the short name.
    requester.send_msg("/temp-queue/late", "self").await;
    requester
        .subscribe("/temp-queue/late", "replies", &[])
        .await;
    assert_eq!(requester.bodies_until_quiet().await, vec!["pong", "self"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_connection_may_send_but_not_subscribe_or_browse() {
    let b = start_default().await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut requester = b.client().await;
    request(&mut requester, "/temp-queue/r", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    let name = reply_to.trim_start_matches("/queue/").to_string();

    let mut thief = b.client().await;
    refused_subscribe(&mut thief, &reply_to, &[], "belongs to another connection").await;
    let mut thief = b.client().await;
    refused_subscribe(
        &mut thief,
        &format!("{name}::{name}"),
        &[],
        "belongs to another connection",
    )
    .await;
    let mut thief = b.client().await;
    refused_subscribe(
        &mut thief,
        &reply_to,
        &[("browser", "true")],
        "belongs to another connection",
    )
    .await;
    // Nothing may be added to it either: no other routing type, no other queue.
    let mut meddler = b.client().await;
    refused_send(
        &mut meddler,
        &format!("/topic/{name}"),
        "cannot be extended",
    )
    .await;
    let mut meddler = b.client().await;
    refused_send(
        &mut meddler,
        &format!("{name}::extra"),
        "cannot be extended",
    )
    .await;

    // Sending to it still works, and the owner gets it.
    server.send_msg(&reply_to, "pong").await;
    requester.subscribe("/temp-queue/r", "replies", &[]).await;
    assert_eq!(requester.bodies_until_quiet().await, vec!["pong"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_with_its_connection_and_never_recreated() {
    let b = start_default().await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut requester = b.client().await;
    request(&mut requester, "/temp-queue/r", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    let name = reply_to.trim_start_matches("/queue/").to_string();
    // A reply waits in it, unread.
    server.send_msg(&reply_to, "unread").await;
    assert_eq!(
        b.running.broker.queue(&name).map(|q| q.ready_count()),
        Some(1)
    );

    requester.disconnect().await;
    wait_until(&b, "temp queue deleted", |b| {
        b.running.broker.queue(&name).is_none()
    })
    .await;
    assert!(!b.running.broker.address_names().contains(&name));

    // A late reply is refused, and creates nothing that nobody would read.
    let message = refused_send(&mut server, &reply_to, "does not exist").await;
    assert!(message.contains(&name), "{message}");
    assert!(b.running.broker.queue(&name).is_none());
    assert!(!b.running.broker.address_names().contains(&name));
    // Nor by subscribing to it.
    let mut late = b.client().await;
    refused_subscribe(&mut late, &reply_to, &[], "does not exist").await;
    assert!(b.running.broker.queue(&name).is_none());

    // A connection that just drops (no DISCONNECT) loses its temporary queues too.
    let mut dropped = b.client().await;
    dropped.subscribe("/temp-queue/d", "d", &[]).await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    request(&mut dropped, "/temp-queue/d", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    let name = reply_to.trim_start_matches("/queue/").to_string();
    assert!(b.running.broker.queue(&name).is_some());
    drop(dropped);
    wait_until(&b, "dropped connection's temp queue deleted", |b| {
        b.running.broker.queue(&name).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_topic_fans_out_to_its_owners_subscriptions_only() {
    let b = start_default().await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut watcher = b.client().await;
    watcher.subscribe("/topic/#", "all", &[]).await;
    let mut owner = b.client().await;
    owner.subscribe("/temp-topic/t", "one", &[]).await;
    owner.subscribe("/temp-topic/t", "two", &[]).await;
    request(&mut owner, "/temp-topic/t", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    assert!(reply_to.starts_with("/topic/temp-topic."), "{reply_to}");

    server.send_msg(&reply_to, "news").await;
    let got = owner.messages_until_quiet().await;
    let mut subs: Vec<&str> = got.iter().map(|m| m.h("subscription")).collect();
    subs.sort_unstable();
    assert_eq!(subs, vec!["one", "two"], "{got:?}");
    assert!(got.iter().all(|m| m.text() == "news"));
    // A wildcard subscription on another connection never sees a private topic.
    watcher.expect_no_frame(QUIET).await;

    let name = reply_to.trim_start_matches("/topic/").to_string();
    let mut thief = b.client().await;
    refused_subscribe(&mut thief, &reply_to, &[], "belongs to another connection").await;
    // Not even its owner may make a durable subscription on it (it would outlive it).
    let mut c = b.tcp().await;
    c.write(b"CONNECT\naccept-version:1.2\nhost:localhost\nclient-id:dur\n\n\0")
        .await;
    c.expect_frame("CONNECTED").await;
    c.subscribe("/temp-topic/x", "plain", &[]).await;
    c.send_with_receipt(
        "SEND",
        &[("destination", "/queue/rpc"), ("reply-to", "/temp-topic/x")],
        b"q",
        "q",
    )
    .await;
    let (own, _) = take_request(&mut server).await;
    refused_subscribe(
        &mut c,
        &own,
        &[("durable-subscription-name", "d")],
        "cannot be extended",
    )
    .await;

    // Once its owner closes, the topic is gone and a send to it is refused.
    owner.disconnect().await;
    wait_until(&b, "temp topic deleted", |b| {
        !b.running.broker.address_names().contains(&name)
    })
    .await;
    refused_send(&mut server, &reply_to, "does not exist").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_holds_a_bounded_number() {
    let mut config = test_config();
    config.limits.max_subscriptions_per_connection = 3;
    let b = start(config).await;
    let mut c = b.client().await;
    c.subscribe("/temp-queue/a", "a", &[]).await;
    c.send_msg("/temp-queue/b", "x").await;
    c.send_with_receipt(
        "SEND",
        &[
            ("destination", "/temp-queue/b"),
            ("reply-to", "/temp-topic/c"),
        ],
        b"y",
        "y",
    )
    .await;
    // Reusing a NAME costs nothing more.
    c.send_with_receipt(
        "SEND",
        &[
            ("destination", "/temp-queue/b"),
            ("reply-to", "/temp-queue/b"),
        ],
        b"z",
        "z",
    )
    .await;
    c.send_frame(
        "SEND",
        &[
            ("destination", "/queue/rpc"),
            ("reply-to", "/temp-queue/d"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("too many temporary destinations")
            && e.h("message").contains("max-subscriptions-per-connection"),
        "{e:?}"
    );
    // The request that failed went nowhere.
    let mut reader = b.client().await;
    reader.subscribe("/queue/rpc", "s", &[]).await;
    reader.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_one_needs_create_non_durable_queue_on_its_name() {
    let b = start(secured_config(vec![
        grant(
            "rpc",
            &["send", "consume", "create-address", "create-durable-queue"],
            &["producer"],
        ),
        grant(
            "temp-queue.#",
            &[
                "send",
                "consume",
                "create-address",
                "create-non-durable-queue",
            ],
            &["consumer"],
        ),
    ]))
    .await;
    // bob may use rpc but not create temporary queues.
    let mut bob = b.tcp().await;
    bob.write(&connect_frame(Some(("bob", "bob-pw")))).await;
    bob.expect_frame("CONNECTED").await;
    bob.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/temp-queue/r"),
            ("id", "r"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = bob.expect_error_and_close().await;
    assert!(
        e.h("message").contains("create-address") && e.h("message").contains("temp-queue."),
        "{e:?}"
    );
    // carol may.
    let mut carol = b.tcp().await;
    carol
        .write(&connect_frame(Some(("carol", "carol-pw"))))
        .await;
    carol.expect_frame("CONNECTED").await;
    carol.subscribe("/temp-queue/r", "r", &[]).await;
    carol.send_msg("/temp-queue/r", "mine").await;
    assert_eq!(carol.bodies_until_quiet().await, vec!["mine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_are_never_auto_created() {
    let b = start_default().await;
    let mut c = b.client().await;
    refused_send(&mut c, "/queue/temp-queue.made-up", "does not exist").await;
    let mut c = b.client().await;
    refused_subscribe(&mut c, "/topic/temp-topic.made-up", &[], "does not exist").await;
    let mut c = b.client().await;
    refused_subscribe(
        &mut c,
        "/temp-queue/",
        &[],
        "names no temporary destination",
    )
    .await;
    assert!(
        !b.running
            .broker
            .address_names()
            .iter()
            .any(|a| a.starts_with("temp-")),
        "{:?}",
        b.running.broker.address_names()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_it_reaches_the_journal() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let mut config = test_config();
    config.journal.enabled = true;
    config.journal.data_dir = dir.clone();
    let b = start(config).await;
    let mut server = b.client().await;
    server.subscribe("/queue/rpc", "s", &[]).await;
    let mut requester = b.client().await;
    requester.subscribe("/temp-topic/t", "t", &[]).await;
    request(&mut requester, "/temp-queue/r", "ping").await;
    let (reply_to, _) = take_request(&mut server).await;
    // A persistent reply waits in the temporary queue while its broker stops.
    server
        .send_with_receipt(
            "SEND",
            &[("destination", &reply_to), ("persistent", "true")],
            b"pong",
            "p",
        )
        .await;
    // A durable queue gets a persistent message too, so the journal is in use.
    server
        .send_with_receipt(
            "SEND",
            &[("destination", "/queue/kept"), ("persistent", "true")],
            b"kept",
            "k",
        )
        .await;
    b.shutdown().await;

    let (journal, recovered) =
        wrenmq::journal::Journal::open(wrenmq::journal::JournalOptions::new(&dir)).expect("opens");
    journal.shutdown();
    let temp = |name: &str| name.starts_with("temp-");
    assert!(recovered.queues.iter().any(|q| q.name == "kept"));
    assert!(
        !recovered
            .queues
            .iter()
            .any(|q| temp(&q.name) || temp(&q.address))
    );
    assert!(!recovered.addresses.iter().any(|a| temp(&a.name)));
    let refs: Vec<_> = recovered.messages.iter().flat_map(|q| &q.refs).collect();
    assert_eq!(refs.len(), 1, "{:?}", recovered.messages);
    assert_eq!(&refs[0].message.body[..], b"kept");
}
