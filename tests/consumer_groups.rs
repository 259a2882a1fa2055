//! Consumer groups on a topic (Kafka's consumer groups over STOMP), over real connections:
//! every group subscribed to a multicast address by `address::group` gets every message, the
//! members of one group share them round-robin, a leaving member's unacknowledged messages go
//! to the others, a durable group keeps messages while all its members are away (also across
//! a restart of the real binary), a non-durable group goes with its last member, and joining
//! or creating a group is checked against the subscriber's permissions.

mod common;
mod durable_common;
#[path = "common/secure.rs"]
mod secure;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{Client, Frame, QUIET, TestBroker, numbered, start, start_default, test_config};
use secure::{connect_frame, grant, secured_config, user};

const GROUPS: [&str; 3] = ["billing", "shipping", "audit"];

fn group_dest(group: &str) -> String {
    format!("/topic/orders::{group}")
}

/// Subscribes a fresh connection to `group` with `extra` headers.
async fn member(b: &TestBroker, group: &str, id: &str, extra: &[(&str, &str)]) -> Client {
    let mut c = b.client().await;
    c.subscribe(&group_dest(group), id, extra).await;
    c
}

async fn send_all(b: &TestBroker, bodies: &[String]) {
    let mut p = b.client().await;
    for m in bodies {
        p.send_msg("/topic/orders", m).await;
    }
    p.disconnect().await;
}

/// Acks one message (`client-individual`) with a receipt, keeping later MESSAGEs for the
/// next reads.
async fn ack(c: &mut Client, f: &Frame) {
    let tag = f.h("ack").to_string();
    c.send_with_receipt("ACK", &[("id", &tag)], b"", &format!("ack-{tag}"))
        .await;
}

/// Waits (bounded) until the group's queue has `n` consumers: a member that disconnected is
/// detached only once its connection has wound down, and until then could still be handed a
/// message it would give back.
async fn wait_for_members(b: &TestBroker, group: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        let count = b.running.broker.queue(group).map(|q| q.consumer_count());
        if count == Some(n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} has {count:?} members, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts that `got` holds every one of `sent` exactly once, in any order.
fn assert_exactly_once(what: &str, got: &[String], sent: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in got {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "{what}: delivered more than once: {dup:?}");
    let want: HashSet<&str> = sent.iter().map(String::as_str).collect();
    let have: HashSet<&str> = counts.keys().copied().collect();
    assert_eq!(have, want, "{what}: not every message exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_groups_of_three_each_get_every_message_spread_over_their_members() {
    const N: usize = 90;
    let b = start_default().await;
    let mut members = Vec::new();
    for g in GROUPS {
        for i in 0..3 {
            members.push((g, member(&b, g, &format!("{g}-{i}"), &[]).await));
        }
    }
    // A plain subscriber of the topic is one more independent receiver.
    let mut plain = b.client().await;
    plain.subscribe("/topic/orders", "plain", &[]).await;
    let sent = numbered("m", N);
    send_all(&b, &sent).await;

    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (g, c) in &mut members {
        let got = c.bodies_until_quiet().await;
        // Round-robin among three members with room: a third each.
        assert_eq!(got.len(), N / 3, "member of {g} got {got:?}");
        by_group.entry(g).or_default().extend(got);
    }
    for g in GROUPS {
        assert_exactly_once(g, &by_group[g], &sent);
    }
    assert_eq!(plain.bodies_until_quiet().await, sent);
    // One queue per group on the address, plus the plain subscription's.
    let queues = b.running.broker.queues_of("orders");
    for g in GROUPS {
        assert!(queues.iter().any(|q| &*q.name == g), "no queue {g}");
    }
    assert_eq!(queues.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaving_mid_way_hands_its_unacked_messages_to_the_others() {
    const N: usize = 30;
    let b = start_default().await;
    let ci = [("ack", "client-individual")];
    let mut stays = Vec::new();
    for i in 0..2 {
        stays.push(member(&b, "billing", &format!("s{i}"), &ci).await);
    }
    let mut leaves = member(&b, "billing", "l", &ci).await;
    let first = numbered("a", N);
    send_all(&b, &first).await;

    // The leaving member holds its share unacked and goes away mid-way.
    let held: Vec<String> = leaves
        .messages_until_quiet()
        .await
        .iter()
        .map(Frame::text)
        .collect();
    assert_eq!(held.len(), N / 3, "{held:?}");
    leaves.disconnect().await;
    wait_for_members(&b, "billing", 2).await;
    let second = numbered("b", N);
    send_all(&b, &second).await;

    let mut got = Vec::new();
    let mut redelivered = Vec::new();
    for c in &mut stays {
        let frames = c.messages_until_quiet().await;
        for f in &frames {
            ack(c, f).await;
            if f.get("redelivered") == Some("true") {
                redelivered.push(f.text());
            }
            got.push(f.text());
        }
        // Acks freed no window room for anything left over.
        got.extend(c.bodies_until_quiet().await);
    }
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_exactly_once("the two staying members", &got, &all);
    redelivered.sort();
    let mut held_sorted = held.clone();
    held_sorted.sort();
    assert_eq!(
        redelivered, held_sorted,
        "what the leaver held comes back marked redelivered"
    );
    // Acked by the members that stayed: the group's queue is now empty.
    let q = b.running.broker.queue("billing").expect("group queue");
    assert_eq!(q.message_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_group_keeps_messages_while_all_its_members_are_away() {
    let b = start_default().await;
    // RabbitMQ's header, and an Artemis-style durable subscription name that is the group's.
    let durable_ways: [(&str, &[(&str, &str)]); 2] = [
        ("billing", &[("durable", "true")]),
        ("shipping", &[("durable-subscription-name", "shipping")]),
    ];
    for (g, headers) in durable_ways {
        let mut a = member(&b, g, "a", headers).await;
        let c = member(&b, g, "c", headers).await;
        // One leaves by UNSUBSCRIBE without the durable header, the other by disconnecting.
        a.send_with_receipt("UNSUBSCRIBE", &[("id", "a")], b"", "u")
            .await;
        a.disconnect().await;
        c.disconnect().await;
        wait_for_members(&b, g, 0).await;
    }
    let sent = numbered("m", 12);
    send_all(&b, &sent).await;
    for (g, headers) in durable_ways {
        let q = b.running.broker.queue(g).expect("durable group kept");
        assert_eq!(q.message_count(), sent.len(), "{g}");
        let mut back = member(&b, g, "back", headers).await;
        assert_eq!(back.bodies_until_quiet().await, sent, "{g}");
        back.disconnect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_durable_group_is_gone_when_its_last_member_leaves() {
    let b = start_default().await;
    let ci = [("ack", "client-individual")];
    let a = member(&b, "live", "a", &ci).await;
    let mut c = member(&b, "live", "c", &ci).await;
    a.disconnect().await;
    wait_for_members(&b, "live", 1).await;
    // The group outlives a member while another remains.
    send_all(&b, &["kept".to_string()]).await;
    let held = c.messages_until_quiet().await;
    assert_eq!(held.len(), 1);
    assert!(b.running.broker.queue("live").is_some());
    // The last member leaves holding an unacked message: the group goes, message included
    // (a JMS shared non-durable subscription), and nothing sent later is kept for it.
    c.send_with_receipt("UNSUBSCRIBE", &[("id", "c")], b"", "u")
        .await;
    assert!(b.running.broker.queue("live").is_none());
    send_all(&b, &["lost".to_string()]).await;
    let mut again = member(&b, "live", "n", &[]).await;
    again.expect_no_frame(QUIET).await;
    // The new group is a fresh one and works.
    send_all(&b, &["fresh".to_string()]).await;
    assert_eq!(again.bodies_until_quiet().await, ["fresh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_with_the_durable_header_deletes_a_durable_group_only_with_its_last_member() {
    let b = start_default().await;
    let d = [("durable", "true"), ("ack", "client-individual")];
    let mut a = member(&b, "billing", "a", &d).await;
    let mut c = member(&b, "billing", "c", &d).await;
    a.send_with_receipt("UNSUBSCRIBE", &[("id", "a"), ("durable", "true")], b"", "u")
        .await;
    // Another member still consumes: the group stays and keeps delivering.
    assert!(b.running.broker.queue("billing").is_some());
    send_all(&b, &["one".to_string()]).await;
    assert_eq!(c.bodies_until_quiet().await, ["one"]);
    // The last member leaves with the header, holding "one" unacked: the group is deleted,
    // what it held included (a plain UNSUBSCRIBE would have kept both).
    c.send_with_receipt("UNSUBSCRIBE", &[("id", "c"), ("durable", "true")], b"", "u")
        .await;
    assert!(b.running.broker.queue("billing").is_none());
    // Nothing is kept for a deleted group.
    send_all(&b, &["gone".to_string()]).await;
    let mut back = member(&b, "billing", "back", &d).await;
    back.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_durability_a_group_cannot_give_is_an_error() {
    let b = start_default().await;
    // A non-durable group exists; a member asking for a durable one is told so.
    let _live = member(&b, "live", "a", &[]).await;
    let mut d = b.client().await;
    d.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/orders::live"),
            ("id", "d"),
            ("durable", "true"),
        ],
        b"",
    )
    .await;
    let e = d.expect_error_and_close().await;
    assert!(e.h("message").contains("'live'"), "{e:?}");
    assert!(e.h("message").contains("not durable"), "{e:?}");
    // A durable subscription name other than the group's is ambiguous.
    let mut d = b.client().await;
    d.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/orders::billing"),
            ("id", "d"),
            ("durable-subscription-name", "sub1"),
        ],
        b"",
    )
    .await;
    let e = d.expect_error_and_close().await;
    assert!(
        e.h("message").contains("durable-subscription-name"),
        "{e:?}"
    );
    assert!(b.running.broker.queue("billing").is_none());
    // A bad flag value names the header.
    let mut d = b.client().await;
    d.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/orders::billing"),
            ("id", "d"),
            ("durable", "yes"),
        ],
        b"",
    )
    .await;
    let e = d.expect_error_and_close().await;
    assert!(e.h("message").contains("'durable'"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_members_joining_while_the_last_one_leaves_never_attach_to_a_deleted_group() {
    // A non-durable group is deleted when its last member leaves; one joining at that moment
    // must end up on a live queue that receives what is sent next.
    let b = start_default().await;
    let mut p = b.client().await;
    for round in 0..20 {
        let group = format!("g{round}");
        let leaving = member(&b, &group, "l", &[]).await;
        let addr = b.addr;
        let dest = group_dest(&group);
        let join = tokio::spawn(async move {
            let mut c = Client::tcp(addr).await;
            c.connect_12().await;
            c.subscribe(&dest, "j", &[]).await;
            c
        });
        leaving.disconnect().await;
        let mut joined = join.await.expect("join task");
        let body = format!("r{round}");
        p.send_msg("/topic/orders", &body).await;
        assert_eq!(joined.bodies_until_quiet().await, [body], "round {round}");
    }
}

fn auth_config() -> wrenmq::config::Config {
    // One entry for the address (the most specific entry decides): producers send, consumers
    // may join and create non-durable groups, owners may also create durable ones.
    let mut orders = grant("orders", &["send"], &["producer"]);
    let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    orders.consume = roles(&["consumer", "owner"]);
    orders.create_non_durable_queue = roles(&["consumer", "owner"]);
    orders.create_durable_queue = roles(&["owner"]);
    let mut config = secured_config(vec![orders]);
    // The address exists (creating addresses is another permission, tested elsewhere).
    config.addresses = vec![wrenmq::config::AddressConfig {
        name: "orders".to_string(),
        routing_types: vec![wrenmq::config::RoutingTypeConfig::Multicast],
        queues: Vec::new(),
    }];
    config.users.push(user("dave", "dave-pw", &["owner"]));
    config.users.push(user("eve", "eve-pw", &["producer"]));
    config
}

async fn login(b: &TestBroker, who: &str, password: &str) -> Client {
    let mut c = b.tcp().await;
    c.write(&connect_frame(Some((who, password)))).await;
    c.expect_frame("CONNECTED").await;
    c
}

async fn refused_subscribe(c: &mut Client, group: &str, extra: &[(&str, &str)], needle: &str) {
    let dest = group_dest(group);
    let mut headers = vec![("destination", dest.as_str()), ("id", "x")];
    headers.extend_from_slice(extra);
    headers.push(("receipt", "r"));
    c.send_frame("SUBSCRIBE", &headers, b"").await;
    let e = c.expect_error_and_close().await;
    assert_eq!(e.h("message"), needle, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_need_consume_and_the_create_permission_of_their_kind() {
    let b = start(auth_config()).await;
    // No consume on the address: no group at all.
    let mut eve = login(&b, "eve", "eve-pw").await;
    refused_subscribe(
        &mut eve,
        "billing",
        &[],
        "user 'eve' lacks permission 'consume' on address 'orders'",
    )
    .await;
    // consume + create-non-durable-queue: a non-durable group, not a durable one.
    let mut carol = login(&b, "carol", "carol-pw").await;
    carol.subscribe(&group_dest("live"), "l", &[]).await;
    let mut carol2 = login(&b, "carol", "carol-pw").await;
    refused_subscribe(
        &mut carol2,
        "billing",
        &[("durable", "true")],
        "user 'carol' lacks permission 'create-durable-queue' on address 'orders'",
    )
    .await;
    assert!(b.running.broker.queue("billing").is_none());
    // Who may create a durable group creates it; a plain consumer may then join it.
    let mut dave = login(&b, "dave", "dave-pw").await;
    dave.subscribe(&group_dest("billing"), "d", &[("durable", "true")])
        .await;
    let mut carol3 = login(&b, "carol", "carol-pw").await;
    carol3
        .subscribe(&group_dest("billing"), "c", &[("durable", "true")])
        .await;
    let mut bob = login(&b, "bob", "bob-pw").await;
    bob.send_msg("/topic/orders", "x").await;
    let mut got = dave.bodies_until_quiet().await;
    got.extend(carol3.bodies_until_quiet().await);
    assert_eq!(got, ["x"]);
    assert_eq!(carol.bodies_until_quiet().await, ["x"]);
    // Deleting it needs delete-durable-queue, which neither has.
    carol3
        .send_frame(
            "UNSUBSCRIBE",
            &[("id", "c"), ("durable", "true"), ("receipt", "u")],
            b"",
        )
        .await;
    let e = carol3.expect_error_and_close().await;
    assert_eq!(
        e.h("message"),
        "user 'carol' lacks permission 'delete-durable-queue' on address 'orders'"
    );
    assert!(b.running.broker.queue("billing").is_some());
    tokio::time::sleep(Duration::from_millis(50)).await;
}

// ---------------------------------------------------------------------------------------------
// Restart of the real binary
// ---------------------------------------------------------------------------------------------

#[test]
fn a_durable_group_and_its_messages_survive_a_restart_of_the_broker() {
    use durable_common::{Broker, Client as Raw, Frame as RawFrame};
    const QUIET_RAW: Duration = Duration::from_secs(1);
    const LIMIT: Duration = Duration::from_secs(30);
    let bodies = |fs: &[RawFrame]| -> Vec<String> { fs.iter().map(RawFrame::body_str).collect() };
    let durable = [("durable", "true")];
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");

    let broker = Broker::start(&dir);
    // Two members create the group (the RECEIPT means it is stored), then both go.
    for id in ["a", "b"] {
        let mut m = broker.client();
        m.subscribe("/topic/orders::billing", id, "client-individual", &durable);
        m.disconnect();
    }
    let mut producer = broker.client();
    let first: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for m in &first {
        producer.send_confirmed("/topic/orders", &[("persistent", "true")], m.as_bytes(), m);
    }
    broker.kill();

    let broker = Broker::start(&dir);
    let mut m = broker.client();
    m.subscribe("/topic/orders::billing", "a", "client-individual", &durable);
    let frames = m.drain(QUIET_RAW, LIMIT);
    assert_eq!(bodies(&frames), first);
    // Ack half; the rest stay with the group when its member leaves again.
    for (i, f) in frames.iter().take(5).enumerate() {
        let r = format!("ack{i}");
        m.send_frame(
            "ACK",
            &[
                ("id", f.header("ack").expect("ack header")),
                ("receipt", &r),
            ],
            b"",
        )
        .expect("send ACK");
        m.expect_receipt(&r);
    }
    m.disconnect();
    // The recovered group is still durable: it keeps what is sent with no member present.
    let mut producer = broker.client();
    producer.send_confirmed(
        "/topic/orders",
        &[("persistent", "true")],
        b"later",
        "later",
    );
    broker.kill();

    let broker = Broker::start(&dir);
    let mut m = broker.client();
    m.subscribe("/topic/orders::billing", "a", "auto", &durable);
    let frames = m.drain(QUIET_RAW, LIMIT);
    let mut want: Vec<String> = first[5..].to_vec();
    want.push("later".to_string());
    assert_eq!(bodies(&frames), want);
    // The last member's UNSUBSCRIBE with the durable header deletes it, durably.
    m.send_frame(
        "UNSUBSCRIBE",
        &[("id", "a"), ("durable", "true"), ("receipt", "del")],
        b"",
    )
    .expect("send UNSUBSCRIBE");
    m.expect_receipt("del");
    let mut producer = broker.client();
    producer.send_confirmed("/topic/orders", &[("persistent", "true")], b"gone", "gone");
    broker.kill();

    let broker = Broker::start(&dir);
    let mut m = Raw::connect(broker.addr, &[]);
    m.subscribe("/topic/orders::billing", "a", "auto", &durable);
    let left = m.drain(QUIET_RAW, LIMIT);
    assert!(
        left.is_empty(),
        "a deleted group delivered {:?}",
        bodies(&left)
    );
    broker.kill();
}

/// The test config with auto-create off for `orders`: joining a group that does not exist is
/// refused and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_create_a_group_must_exist() {
    let mut config = test_config();
    config
        .address_settings
        .push(wrenmq::config::AddressSettingsEntry {
            pattern: "orders".to_string(),
            auto_create_queues: Some(false),
            ..Default::default()
        });
    let b = start(config).await;
    let mut p = b.client().await;
    p.subscribe("/topic/orders", "plain", &[]).await;
    let mut c = b.client().await;
    c.send_frame(
        "SUBSCRIBE",
        &[("destination", "/topic/orders::billing"), ("id", "x")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("orders::billing"), "{e:?}");
    assert!(b.running.broker.queue("billing").is_none());
}
