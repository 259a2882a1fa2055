//! Message groups over real STOMP connections: every message carrying one `JMSXGroupID` (or
//! `_AMQ_GROUP_ID`) goes to one consumer while that consumer stays, in send order; when it
//! leaves, the group moves on and the first message the new consumer gets carries
//! `JMSXGroupFirstForConsumer:true`. `JMSXGroupSeq:-1` closes a group, `group-buckets = 0`
//! turns grouping off and `group-rebalance` spreads groups again when a consumer joins.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use wrenmq::config::{AddressSettingsEntry, Config};

/// A broker whose `grp.*` addresses have the given queue-kind `default-*` keys.
async fn broker_with(set: impl FnOnce(&mut AddressSettingsEntry)) -> TestBroker {
    let mut config: Config = test_config();
    let mut e = AddressSettingsEntry {
        pattern: "grp.#".into(),
        ..Default::default()
    };
    set(&mut e);
    config.address_settings.push(e);
    start(config).await
}

async fn consumer(broker: &TestBroker, dest: &str) -> Client {
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[("ack", "client-individual")])
        .await;
    c
}

/// Closes a consumer without acknowledging what it has not read: the broker gives that back.
async fn leave(mut c: Client) {
    c.send_frame("DISCONNECT", &[("receipt", "bye")], b"").await;
    loop {
        let f = c.expect_frame_any().await;
        if f.command == "RECEIPT" {
            break;
        }
    }
}

async fn ack(c: &mut Client, f: &Frame) {
    c.send_frame("ACK", &[("id", f.h("ack"))], b"").await;
}

/// What the test saw of one group: who processed each message, in processing order.
#[derive(Default)]
struct GroupLog {
    seqs: Vec<u32>,
    owners: Vec<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_groups_keep_order_at_one_consumer_at_a_time_while_consumers_come_and_go() {
    const GROUPS: u32 = 1000;
    const PER_GROUP: u32 = 5;
    let broker = broker_with(|_| {}).await;
    let dest = "/queue/grp.orders";
    let mut consumers: Vec<Option<Client>> = Vec::new();
    for _ in 0..4 {
        consumers.push(Some(consumer(&broker, dest).await));
    }
    let mut producer = broker.client().await;
    for seq in 0..PER_GROUP {
        for g in 0..GROUPS {
            let id = format!("g{g}");
            let header = if g % 2 == 0 {
                "JMSXGroupID"
            } else {
                "_AMQ_GROUP_ID"
            };
            producer
                .send_frame(
                    "SEND",
                    &[("destination", dest), (header, &id)],
                    format!("{g}:{seq}").as_bytes(),
                )
                .await;
        }
    }
    producer
        .send_with_receipt("SEND", &[("destination", "/queue/grp.sync")], b"", "sent")
        .await;

    let total = (GROUPS * PER_GROUP) as usize;
    let mut logs: HashMap<u32, GroupLog> = HashMap::new();
    let mut first_seen: HashSet<(u32, usize)> = HashSet::new();
    let mut closed: HashSet<usize> = HashSet::new();
    let mut processed = 0usize;
    let mut idle_rounds = 0;
    while processed < total {
        let mut progress = false;
        for i in 0..consumers.len() {
            let Some(c) = consumers[i].as_mut() else {
                continue;
            };
            while let Ok(f) = c.next_frame(Duration::from_millis(20)).await {
                assert_eq!(f.command, "MESSAGE", "{f:?}");
                let body = f.text();
                let (g, seq) = body.split_once(':').expect("body is group:seq");
                let (g, seq): (u32, u32) = (g.parse().unwrap(), seq.parse().unwrap());
                let first = f.get("JMSXGroupFirstForConsumer") == Some("true");
                assert_eq!(
                    first,
                    first_seen.insert((g, i)),
                    "JMSXGroupFirstForConsumer must mark exactly the first message of group {g} at consumer {i}: {f:?}"
                );
                let log = logs.entry(g).or_default();
                if let Some(&prev) = log.owners.last()
                    && prev != i
                {
                    assert!(
                        closed.contains(&prev),
                        "group {g} moved from consumer {prev} to {i} while {prev} was still there"
                    );
                }
                log.seqs.push(seq);
                log.owners.push(i);
                ack(c, &f).await;
                processed += 1;
                progress = true;
                if processed.is_multiple_of(1500) {
                    break;
                }
            }
            if processed.is_multiple_of(1500) && processed < total && progress {
                // Consumers come and go: the oldest open one leaves, a new one joins.
                let leaving = (0..consumers.len())
                    .find(|&k| consumers[k].is_some())
                    .expect("an open consumer");
                if let Some(c) = consumers[leaving].take() {
                    leave(c).await;
                }
                closed.insert(leaving);
                consumers.push(Some(consumer(&broker, dest).await));
                break;
            }
        }
        idle_rounds = if progress { 0 } else { idle_rounds + 1 };
        assert!(
            idle_rounds < 100,
            "stalled after {processed} of {total} messages"
        );
    }
    assert_eq!(logs.len(), GROUPS as usize);
    let mut owners_used = HashSet::new();
    for (g, log) in &logs {
        assert_eq!(
            log.seqs,
            (0..PER_GROUP).collect::<Vec<_>>(),
            "group {g} out of order or with gaps/duplicates"
        );
        owners_used.extend(log.owners.iter().copied());
    }
    assert!(
        owners_used.len() >= 4,
        "groups should spread over the consumers, used {owners_used:?}"
    );
    for c in consumers.iter_mut().flatten() {
        c.expect_no_frame(QUIET).await;
    }
    broker.shutdown().await;
}

/// Sends `bodies` in group `g`, the last one with `extra` headers.
async fn send_group(p: &mut Client, dest: &str, g: &str, bodies: &[&str], last: &[(&str, &str)]) {
    for (i, b) in bodies.iter().enumerate() {
        let mut h = vec![("destination", dest), ("JMSXGroupID", g)];
        if i + 1 == bodies.len() {
            h.extend_from_slice(last);
        }
        p.send_with_receipt("SEND", &h, b.as_bytes(), &format!("r-{b}"))
            .await;
    }
}

#[tokio::test]
async fn group_seq_minus_one_closes_the_group_so_it_binds_afresh() {
    let broker = broker_with(|_| {}).await;
    let dest = "/queue/grp.close";
    let mut a = consumer(&broker, dest).await;
    let mut p = broker.client().await;
    send_group(&mut p, dest, "g", &["1", "2"], &[("JMSXGroupSeq", "-1")]).await;
    let got = a.expect_messages(2).await;
    assert_eq!(got[0].get("JMSXGroupFirstForConsumer"), Some("true"));
    assert_eq!(got[1].get("JMSXGroupFirstForConsumer"), None);
    // The group is closed: its next message is a first again, even at the same consumer.
    send_group(&mut p, dest, "g", &["3"], &[]).await;
    let again = a.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "3");
    assert_eq!(
        again.get("JMSXGroupFirstForConsumer"),
        Some("true"),
        "a closed group starts again: {again:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_bound_group_waits_for_its_consumer_instead_of_moving() {
    let broker = broker_with(|_| {}).await;
    let dest = "/queue/grp.wait";
    let mut a = broker.client().await;
    a.subscribe(
        dest,
        "s",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    let mut p = broker.client().await;
    send_group(&mut p, dest, "g", &["1"], &[]).await;
    let m1 = a.expect_frame("MESSAGE").await;
    // B joins while A holds the group's first message unacknowledged.
    let mut b = consumer(&broker, dest).await;
    send_group(&mut p, dest, "g", &["2", "3"], &[]).await;
    b.expect_no_frame(QUIET).await;
    ack(&mut a, &m1).await;
    let rest: Vec<String> = a.expect_messages(1).await.iter().map(Frame::text).collect();
    assert_eq!(rest, ["2"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn group_buckets_zero_ignores_groups() {
    let broker = broker_with(|e| e.default_group_buckets = Some(0)).await;
    let dest = "/queue/grp.off";
    let mut a = consumer(&broker, dest).await;
    let mut b = consumer(&broker, dest).await;
    let mut p = broker.client().await;
    send_group(&mut p, dest, "g", &["1", "2", "3", "4"], &[]).await;
    let (x, y) = (
        a.messages_until_quiet().await,
        b.messages_until_quiet().await,
    );
    assert_eq!((x.len(), y.len()), (2, 2), "round-robin, not grouped");
    assert!(
        x.iter()
            .chain(&y)
            .all(|f| f.get("JMSXGroupFirstForConsumer").is_none())
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn group_rebalance_rebinds_groups_when_a_consumer_joins() {
    for rebalance in [false, true] {
        let broker = broker_with(|e| e.default_group_rebalance = Some(rebalance)).await;
        let dest = "/queue/grp.rebalance";
        let mut a = consumer(&broker, dest).await;
        let mut p = broker.client().await;
        let groups: Vec<String> = (0..8).map(|g| format!("g{g}")).collect();
        for g in &groups {
            send_group(&mut p, dest, g, &[&format!("{g}-1")], &[]).await;
        }
        for f in a.expect_messages(8).await {
            ack(&mut a, &f).await;
        }
        let mut b = consumer(&broker, dest).await;
        for g in &groups {
            send_group(&mut p, dest, g, &[&format!("{g}-2")], &[]).await;
        }
        let at_b = b.messages_until_quiet().await;
        let at_a = a.messages_until_quiet().await;
        assert_eq!(at_a.len() + at_b.len(), 8);
        if rebalance {
            assert!(
                !at_b.is_empty(),
                "rebalanced groups should reach the new consumer"
            );
            assert!(
                at_a.iter()
                    .chain(&at_b)
                    .all(|f| f.get("JMSXGroupFirstForConsumer") == Some("true")),
                "every group was bound afresh"
            );
        } else {
            assert!(
                at_b.is_empty(),
                "without rebalance groups stay with A: {at_b:?}"
            );
        }
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn a_message_its_consumers_selector_refuses_does_not_move_the_group() {
    let broker = broker_with(|_| {}).await;
    let dest = "/queue/grp.selective";
    let mut a = broker.client().await;
    a.subscribe(dest, "a", &[("selector", "x = 1")]).await;
    let mut p = broker.client().await;
    send_group(&mut p, dest, "g", &["one"], &[("x", "1")]).await;
    assert_eq!(a.expect_frame("MESSAGE").await.text(), "one");
    let mut b = broker.client().await;
    b.subscribe(dest, "b", &[]).await;
    // A refuses this one, so B takes it; the group stays bound to A.
    send_group(&mut p, dest, "g", &["two"], &[("x", "2")]).await;
    assert_eq!(b.expect_frame("MESSAGE").await.text(), "two");
    send_group(&mut p, dest, "g", &["three"], &[("x", "1")]).await;
    let three = a.expect_frame("MESSAGE").await;
    assert_eq!(three.text(), "three");
    assert_eq!(
        three.get("JMSXGroupFirstForConsumer"),
        None,
        "still A's group"
    );
    b.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_topic_subscription_keeps_no_group_bindings_but_a_consumer_group_does() {
    let broker = broker_with(|_| {}).await;
    // A plain subscription has one consumer ever: nothing to bind, no first-for-consumer.
    let mut sub = broker.client().await;
    sub.subscribe("/topic/grp.news", "s", &[]).await;
    // Members of a consumer group on the same address share a group's messages by group.
    let mut m1 = broker.client().await;
    m1.subscribe("/topic/grp.news::team", "m", &[]).await;
    let mut m2 = broker.client().await;
    m2.subscribe("/topic/grp.news::team", "m", &[]).await;
    let mut p = broker.client().await;
    send_group(&mut p, "/topic/grp.news", "g", &["1", "2", "3", "4"], &[]).await;
    let plain = sub.messages_until_quiet().await;
    assert_eq!(plain.len(), 4);
    assert!(
        plain
            .iter()
            .all(|f| f.get("JMSXGroupFirstForConsumer").is_none()),
        "{plain:?}"
    );
    let (a, b) = (m1.bodies_until_quiet().await, m2.bodies_until_quiet().await);
    assert!(
        (a.len(), b.len()) == (4, 0) || (a.len(), b.len()) == (0, 4),
        "one member has the whole group: {a:?} {b:?}"
    );
    broker.shutdown().await;
}
