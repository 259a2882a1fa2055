//! Redelivery and dead letters over real connections: `redelivery-delay` (with its multiplier
//! and cap) holds a NACKed or returned message back without blocking the queue,
//! `max-delivery-attempts` moves a poison message to the dead-letter address with where it came
//! from, NACK `requeue:false` does it at once, `auto-create-dead-letter-resources` gives each
//! origin its own dead-letter queue, and `redelivered` / `redelivery-count`, a running delay
//! and a dead letter all survive a broker restart (the real binary, killed with SIGKILL).
//!
//! Time is only ever checked from below (a message must not come back before its delay); an
//! upper bound is only the generous read timeout.

mod common;
mod durable_common;

use std::time::{Duration, Instant};

use common::*;
use wrenmq::config::{AddressSettingsEntry, Config};

/// Rounding of the broker's millisecond clock: a due time may fall this much before the exact
/// delay measured here.
const SLACK: Duration = Duration::from_millis(20);

fn setting(pattern: &str) -> AddressSettingsEntry {
    AddressSettingsEntry {
        pattern: pattern.to_string(),
        ..Default::default()
    }
}

/// The test configuration (built-in `#` settings: `DLQ`, 10 attempts) plus `entries`.
fn config_with(entries: Vec<AddressSettingsEntry>) -> Config {
    let mut config = test_config();
    config.address_settings.extend(entries);
    config
}

fn delayed(pattern: &str, delay_ms: u64) -> AddressSettingsEntry {
    AddressSettingsEntry {
        redelivery_delay: Some(delay_ms),
        ..setting(pattern)
    }
}

async fn nack(c: &mut Client, m: &Frame, receipt: &str) {
    c.send_with_receipt("NACK", &[("id", m.h("ack"))], b"", receipt)
        .await;
}

/// The next MESSAGE, and how long after `since` it arrived.
async fn next_message_after(c: &mut Client, since: Instant) -> (Frame, Duration) {
    let m = c.expect_frame("MESSAGE").await;
    (m, since.elapsed())
}

fn assert_waited(waited: Duration, delay: Duration, what: &str) {
    assert!(
        waited + SLACK >= delay,
        "{what}: came back after {waited:?}, before its {delay:?} redelivery delay"
    );
}

// ---------------------------------------------------------------------------------------------
// redelivery-delay
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_message_waits_the_delay_while_later_messages_flow() {
    let delay = Duration::from_millis(1500);
    let broker = start(config_with(vec![delayed("slow", 1500)])).await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/slow", "s", &[("ack", "client-individual")])
        .await;
    p.send_msg("/queue/slow", "first").await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "first");
    let t0 = Instant::now();
    nack(&mut c, &m, "n1").await;
    // The delay holds back only the NACKed message: later ones are delivered meanwhile.
    for body in ["second", "third"] {
        p.send_msg("/queue/slow", body).await;
        let next = c.expect_frame("MESSAGE").await;
        assert_eq!(next.text(), body, "the delayed message blocked the queue");
        assert_eq!(next.get("redelivered"), Some("false"), "{next:?}");
        c.send_with_receipt("ACK", &[("id", next.h("ack"))], b"", body)
            .await;
    }
    let quiet_until = t0 + Duration::from_millis(900);
    c.expect_no_frame(quiet_until.saturating_duration_since(Instant::now()))
        .await;
    let (again, waited) = next_message_after(&mut c, t0).await;
    assert_eq!(again.text(), "first");
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
    assert_eq!(again.get("redelivery-count"), Some("1"), "{again:?}");
    assert_eq!(again.get("message-id"), m.get("message-id"), "same message");
    assert_waited(waited, delay, "the NACKed message");
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_grows_by_the_multiplier_up_to_max_redelivery_delay() {
    // 300 ms, then ×10 capped at 1000 ms: waits of 300, 1000 (not 3000) and 1000 (not
    // 30000). Without the multiplier the second wait would be 300 ms; without the cap the
    // third would be 30 s, far beyond the read timeout.
    let broker = start(config_with(vec![AddressSettingsEntry {
        redelivery_delay: Some(300),
        redelivery_delay_multiplier: Some(10.0),
        max_redelivery_delay: Some(1000),
        ..setting("backoff")
    }]))
    .await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/backoff", "s", &[("ack", "client-individual")])
        .await;
    p.send_msg("/queue/backoff", "b").await;
    let mut m = c.expect_frame("MESSAGE").await;
    let mut waits = Vec::new();
    for (i, at_least) in [300u64, 1000, 1000].into_iter().enumerate() {
        let t = Instant::now();
        nack(&mut c, &m, &format!("n{i}")).await;
        let (next, waited) = next_message_after(&mut c, t).await;
        assert_eq!(next.text(), "b");
        assert_eq!(
            next.get("redelivery-count"),
            Some((i + 1).to_string().as_str()),
            "{next:?}"
        );
        assert_waited(
            waited,
            Duration::from_millis(at_least),
            &format!("redelivery {}", i + 1),
        );
        waits.push(waited);
        m = next;
    }
    assert!(
        waits[1] > waits[0],
        "the second redelivery did not wait longer: {waits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_of_a_departing_consumer_waits_the_delay_too() {
    let delay = Duration::from_millis(1200);
    let broker = start(config_with(vec![delayed("leave", 1200)])).await;
    let mut p = broker.client().await;
    let mut c1 = broker.client().await;
    c1.subscribe("/queue/leave", "s", &[("ack", "client-individual")])
        .await;
    p.send_msg("/queue/leave", "held").await;
    let m = c1.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "held");
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/leave", "s", &[("ack", "client-individual")])
        .await;
    let t0 = Instant::now();
    c1.disconnect().await;
    c2.expect_no_frame(Duration::from_millis(600)).await;
    let (again, waited) = next_message_after(&mut c2, t0).await;
    assert_eq!(again.text(), "held");
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
    assert_waited(waited, delay, "the message the departed consumer held");
}

// ---------------------------------------------------------------------------------------------
// max-delivery-attempts and the dead-letter address
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_attempts_by_default_then_dlq_with_the_origin() {
    let broker = start_default().await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/poison", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_with_receipt(
        "SEND",
        &[("destination", "/queue/poison"), ("colour", "red")],
        b"bad apple",
        "sent",
    )
    .await;
    let mut original_id = String::new();
    for attempt in 1..=10u32 {
        let m = c.expect_frame("MESSAGE").await;
        assert_eq!(m.text(), "bad apple", "attempt {attempt}");
        let redelivered = if attempt == 1 { "false" } else { "true" };
        assert_eq!(m.get("redelivered"), Some(redelivered), "{m:?}");
        assert_eq!(
            m.get("redelivery-count"),
            Some((attempt - 1).to_string().as_str()),
            "{m:?}"
        );
        original_id = m.h("message-id").to_string();
        nack(&mut c, &m, &format!("n{attempt}")).await;
    }
    let d = dlq.expect_frame("MESSAGE").await;
    assert_eq!(d.text(), "bad apple", "{d:?}");
    assert_eq!(d.get("colour"), Some("red"), "headers kept: {d:?}");
    assert_eq!(d.get("_AMQ_ORIG_ADDRESS"), Some("poison"), "{d:?}");
    assert_eq!(d.get("_AMQ_ORIG_QUEUE"), Some("poison"), "{d:?}");
    assert_eq!(d.get("_AMQ_ORIG_DELIVERY_COUNT"), Some("10"), "{d:?}");
    assert_eq!(
        d.get("_AMQ_ORIG_MESSAGE_ID"),
        Some(original_id.as_str()),
        "{d:?}"
    );
    assert_eq!(
        d.get("original-destination"),
        Some("/queue/poison"),
        "{d:?}"
    );
    assert_eq!(d.get("redelivered"), Some("false"), "a new message: {d:?}");
    // Gone from the original queue, for this consumer and any new one.
    c.expect_no_frame(QUIET).await;
    let mut fresh = broker.client().await;
    fresh
        .subscribe("/queue/poison", "f", &[("ack", "client-individual")])
        .await;
    fresh.expect_no_frame(QUIET).await;
    dlq.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_attempts_keep_the_message_coming_back() {
    let broker = start(config_with(vec![AddressSettingsEntry {
        max_delivery_attempts: Some(-1),
        ..setting("forever")
    }]))
    .await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/forever", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/forever", "again").await;
    for attempt in 1..=15u32 {
        let m = c.expect_frame("MESSAGE").await;
        assert_eq!(m.text(), "again", "attempt {attempt}");
        nack(&mut c, &m, &format!("n{attempt}")).await;
    }
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "again");
    assert_eq!(m.get("redelivery-count"), Some("15"), "{m:?}");
    dlq.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_attempts_without_a_dead_letter_address_is_dropped() {
    let broker = start(config_with(vec![AddressSettingsEntry {
        max_delivery_attempts: Some(2),
        dead_letter_address: Some(String::new()),
        ..setting("nowhere")
    }]))
    .await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/nowhere", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/nowhere", "doomed").await;
    for attempt in 1..=2 {
        let m = c.expect_frame("MESSAGE").await;
        assert_eq!(m.text(), "doomed", "attempt {attempt}");
        nack(&mut c, &m, &format!("n{attempt}")).await;
    }
    c.expect_no_frame(QUIET).await;
    dlq.expect_no_frame(QUIET).await;
    // Not parked anywhere either: the queue is empty for a newcomer.
    p.send_msg("/queue/nowhere", "marker").await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_requeue_false_dead_letters_after_one_delivery() {
    let broker = start_default().await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/reject", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/reject", "nope").await;
    p.send_msg("/queue/reject", "kept").await;
    let got = c.expect_messages(2).await;
    c.send_with_receipt(
        "NACK",
        &[("id", got[0].h("ack")), ("requeue", "false")],
        b"",
        "rej",
    )
    .await;
    // `requeue:true` is an ordinary NACK.
    c.send_with_receipt(
        "NACK",
        &[("id", got[1].h("ack")), ("requeue", "true")],
        b"",
        "req",
    )
    .await;
    let d = dlq.expect_frame("MESSAGE").await;
    assert_eq!(d.text(), "nope");
    assert_eq!(d.get("_AMQ_ORIG_DELIVERY_COUNT"), Some("1"), "{d:?}");
    assert_eq!(d.get("_AMQ_ORIG_QUEUE"), Some("reject"), "{d:?}");
    let back = c.expect_frame("MESSAGE").await;
    assert_eq!(back.text(), "kept", "requeue:true redelivers");
    assert_eq!(back.get("redelivered"), Some("true"), "{back:?}");
    c.expect_no_frame(QUIET).await;
    dlq.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_a_bogus_requeue_is_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/bogus", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/bogus", "x").await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_frame(
        "NACK",
        &[("id", m.h("ack")), ("requeue", "maybe"), ("receipt", "r")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("requeue") && e.h("message").contains("maybe"),
        "{e:?}"
    );
    // The refused NACK settled nothing: the message went back with the connection.
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/bogus", "s", &[("ack", "client-individual")])
        .await;
    let again = c2.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "x");
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
}

// ---------------------------------------------------------------------------------------------
// auto-create-dead-letter-resources
// ---------------------------------------------------------------------------------------------

/// Rejects one message sent to each of `addresses` (anycast), so each is dead-lettered.
async fn reject_one_each(broker: &TestBroker, addresses: &[&str]) {
    let mut p = broker.client().await;
    for a in addresses {
        let dest = format!("/queue/{a}");
        let mut c = broker.client().await;
        c.subscribe(&dest, "s", &[("ack", "client-individual")])
            .await;
        p.send_msg(&dest, &format!("from-{a}")).await;
        let m = c.expect_frame("MESSAGE").await;
        c.send_with_receipt(
            "NACK",
            &[("id", m.h("ack")), ("requeue", "false")],
            b"",
            "rej",
        )
        .await;
        c.disconnect().await;
    }
}

async fn drain_bodies(broker: &TestBroker, destination: &str) -> Vec<String> {
    let mut c = broker.client().await;
    c.subscribe(destination, "q", &[]).await;
    let mut out = Vec::new();
    while let Ok(f) = c.next_frame(QUIET).await {
        assert_eq!(f.command, "MESSAGE", "{f:?}");
        out.push(f.text());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_dead_letter_queue_per_origin_address() {
    let mut config = test_config();
    config.address_settings[0].auto_create_dead_letter_resources = Some(true);
    let broker = start(config).await;
    reject_one_each(&broker, &["orders", "billing", "orders"]).await;
    assert_eq!(
        drain_bodies(&broker, "DLQ::DLQ.orders").await,
        vec!["from-orders", "from-orders"],
        "DLQ.orders holds exactly the dead letters of 'orders'"
    );
    assert_eq!(
        drain_bodies(&broker, "DLQ::DLQ.billing").await,
        vec!["from-billing"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_queue_prefix_and_suffix_name_the_queue() {
    let mut config = test_config();
    let all = &mut config.address_settings[0];
    all.dead_letter_address = Some("DLA".to_string());
    all.auto_create_dead_letter_resources = Some(true);
    all.dead_letter_queue_prefix = Some(String::new());
    all.dead_letter_queue_suffix = Some(".DLQ".to_string());
    let broker = start(config).await;
    reject_one_each(&broker, &["orders", "billing"]).await;
    assert_eq!(
        drain_bodies(&broker, "DLA::orders.DLQ").await,
        vec!["from-orders"]
    );
    assert_eq!(
        drain_bodies(&broker, "DLA::billing.DLQ").await,
        vec!["from-billing"]
    );
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_in_a_committed_transaction_is_an_attempt_and_waits_the_delay() {
    let delay = Duration::from_millis(800);
    let broker = start(config_with(vec![AddressSettingsEntry {
        redelivery_delay: Some(800),
        max_delivery_attempts: Some(2),
        ..setting("txq")
    }]))
    .await;
    let mut dlq = broker.client().await;
    dlq.subscribe("/queue/DLQ", "d", &[]).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/txq", "s", &[("ack", "client-individual")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/queue/txq", "t").await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_with_receipt("BEGIN", &[("transaction", "tx1")], b"", "b1")
        .await;
    c.send_with_receipt(
        "NACK",
        &[("id", m.h("ack")), ("transaction", "tx1")],
        b"",
        "n1",
    )
    .await;
    // Nothing happens before COMMIT.
    c.expect_no_frame(QUIET).await;
    let t0 = Instant::now();
    c.send_with_receipt("COMMIT", &[("transaction", "tx1")], b"", "c1")
        .await;
    let (again, waited) = next_message_after(&mut c, t0).await;
    assert_eq!(again.text(), "t");
    assert_eq!(again.get("redelivery-count"), Some("1"), "{again:?}");
    assert_waited(waited, delay, "the message NACKed in a transaction");
    // The second transactional NACK is the last allowed attempt.
    c.send_with_receipt("BEGIN", &[("transaction", "tx2")], b"", "b2")
        .await;
    c.send_with_receipt(
        "NACK",
        &[("id", again.h("ack")), ("transaction", "tx2")],
        b"",
        "n2",
    )
    .await;
    c.send_with_receipt("COMMIT", &[("transaction", "tx2")], b"", "c2")
        .await;
    let d = dlq.expect_frame("MESSAGE").await;
    assert_eq!(d.text(), "t");
    assert_eq!(d.get("_AMQ_ORIG_DELIVERY_COUNT"), Some("2"), "{d:?}");
    c.expect_no_frame(QUIET).await;
}

// ---------------------------------------------------------------------------------------------
// Across a restart (the real binary, SIGKILL)
// ---------------------------------------------------------------------------------------------

mod restart {
    use super::durable_common::{Broker, Client, Frame};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    /// Long enough to be sure nothing (more) arrives.
    const QUIET: Duration = Duration::from_millis(400);

    fn data_dir(tmp: &tempfile::TempDir) -> PathBuf {
        tmp.path().join("data")
    }

    /// NACKs `m` and waits for the RECEIPT; a MESSAGE the NACK set free may arrive before
    /// the RECEIPT (STOMP does not order them) and is returned.
    fn nack(c: &mut Client, m: &Frame, extra: &[(&str, &str)], receipt: &str) -> Vec<Frame> {
        let ack = m.header("ack").expect("client-individual MESSAGE has ack");
        let mut h = vec![("id", ack), ("receipt", receipt)];
        h.extend_from_slice(extra);
        c.send_frame("NACK", &h, b"").expect("write NACK");
        let mut early = Vec::new();
        loop {
            let f = c.expect_frame();
            match f.command.as_str() {
                "RECEIPT" if f.header("receipt-id") == Some(receipt) => return early,
                "MESSAGE" => early.push(f),
                _ => panic!("expected RECEIPT {receipt}, got {f:?}"),
            }
        }
    }

    fn expect_message(c: &mut Client) -> Frame {
        let f = c.expect_frame();
        assert_eq!(f.command, "MESSAGE", "{f:?}");
        f
    }

    fn expect_nothing(c: &mut Client, within: Duration) {
        match c.read_frame(within) {
            Ok(None) => {}
            Ok(Some(f)) => panic!("expected nothing, got {f:?}"),
            Err(e) => panic!("connection failed: {e}"),
        }
    }

    fn write_config(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("broker.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn redelivery_count_is_kept_across_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::start(&data_dir(&tmp));
        let mut p = broker.client();
        p.send_confirmed("/queue/kept", &[("persistent", "true")], b"k", "s1");
        let mut c = broker.client();
        c.subscribe("/queue/kept", "s", "client-individual", &[]);
        let mut m = expect_message(&mut c);
        assert_eq!(m.header("redelivery-count"), Some("0"), "{m:?}");
        for n in 1..=2 {
            let early = nack(&mut c, &m, &[], &format!("n{n}"));
            m = match early.into_iter().next() {
                Some(f) => f,
                None => expect_message(&mut c),
            };
            assert_eq!(
                m.header("redelivery-count"),
                Some(n.to_string().as_str()),
                "{m:?}"
            );
        }
        // Third delivery held unacknowledged when the broker dies.
        broker.kill();
        let broker = Broker::start(&data_dir(&tmp));
        let mut c = broker.client();
        c.subscribe("/queue/kept", "s", "client-individual", &[]);
        let m = expect_message(&mut c);
        assert_eq!(m.body_str(), "k");
        assert_eq!(m.header("redelivered"), Some("true"), "{m:?}");
        let count: u32 = m
            .header("redelivery-count")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric redelivery-count: {m:?}"));
        // Three deliveries happened; the NACK RECEIPTs waited for their records (the third
        // delivery was recorded before the second NACK's RECEIPT), so this is the fourth.
        assert_eq!(
            count, 3,
            "delivery count not kept across the restart: {m:?}"
        );
        expect_nothing(&mut c, QUIET);
    }

    #[test]
    fn running_redelivery_delay_survives_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            tmp.path(),
            r##"
[[address-settings]]
match = "#"
dead-letter-address = "DLQ"
expiry-address = "ExpiryQueue"

[[address-settings]]
match = "later"
redelivery-delay = 3000
"##,
        );
        let delay = Duration::from_millis(3000);
        let broker = Broker::start_with_config(&data_dir(&tmp), &config);
        let mut p = broker.client();
        p.send_confirmed("/queue/later", &[("persistent", "true")], b"l", "s1");
        let mut c = broker.client();
        c.subscribe("/queue/later", "s", "client-individual", &[]);
        let m = expect_message(&mut c);
        let t0 = Instant::now();
        let early = nack(&mut c, &m, &[], "n1");
        assert!(early.is_empty(), "redelivered at once: {early:?}");
        broker.kill();
        let broker = Broker::start_with_config(&data_dir(&tmp), &config);
        let mut c = broker.client();
        c.subscribe("/queue/later", "s", "client-individual", &[]);
        let quiet_until = t0 + Duration::from_millis(2000);
        let left = quiet_until.saturating_duration_since(Instant::now());
        assert!(
            left >= Duration::from_millis(500),
            "the restart took too long to check the delay"
        );
        expect_nothing(&mut c, left);
        let again = expect_message(&mut c);
        let waited = t0.elapsed();
        assert_eq!(again.body_str(), "l");
        assert_eq!(again.header("redelivered"), Some("true"), "{again:?}");
        assert!(
            waited + super::SLACK >= delay,
            "came back {waited:?} after the NACK, before its {delay:?} delay"
        );
    }

    #[test]
    fn dead_letter_stays_dead_after_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::start(&data_dir(&tmp));
        let mut p = broker.client();
        p.send_confirmed(
            "/queue/gone",
            &[("persistent", "true"), ("colour", "blue")],
            b"g",
            "s1",
        );
        let mut c = broker.client();
        c.subscribe("/queue/gone", "s", "client-individual", &[]);
        let m = expect_message(&mut c);
        let early = nack(&mut c, &m, &[("requeue", "false")], "rej");
        assert!(early.is_empty(), "{early:?}");
        broker.kill();
        let broker = Broker::start(&data_dir(&tmp));
        let mut c = broker.client();
        c.subscribe("/queue/gone", "s", "client-individual", &[]);
        expect_nothing(&mut c, QUIET);
        let mut d = broker.client();
        d.subscribe("/queue/DLQ", "d", "client-individual", &[]);
        let dead = expect_message(&mut d);
        assert_eq!(dead.body_str(), "g");
        assert_eq!(dead.header("colour"), Some("blue"), "{dead:?}");
        assert_eq!(dead.header("_AMQ_ORIG_ADDRESS"), Some("gone"), "{dead:?}");
        assert_eq!(dead.header("_AMQ_ORIG_QUEUE"), Some("gone"), "{dead:?}");
        expect_nothing(&mut d, QUIET);
    }

    #[test]
    fn dead_letter_of_a_committed_transaction_stays_dead_after_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::start(&data_dir(&tmp));
        let mut p = broker.client();
        p.send_confirmed("/queue/txgone", &[("persistent", "true")], b"t", "s1");
        let mut c = broker.client();
        c.subscribe("/queue/txgone", "s", "client-individual", &[]);
        let m = expect_message(&mut c);
        c.send_frame("BEGIN", &[("transaction", "tx"), ("receipt", "b")], b"")
            .expect("write BEGIN");
        c.expect_receipt("b");
        let early = nack(
            &mut c,
            &m,
            &[("requeue", "false"), ("transaction", "tx")],
            "n",
        );
        assert!(early.is_empty(), "{early:?}");
        c.send_frame("COMMIT", &[("transaction", "tx"), ("receipt", "c")], b"")
            .expect("write COMMIT");
        c.expect_receipt("c");
        broker.kill();
        let broker = Broker::start(&data_dir(&tmp));
        let mut c = broker.client();
        c.subscribe("/queue/txgone", "s", "client-individual", &[]);
        expect_nothing(&mut c, QUIET);
        let mut d = broker.client();
        d.subscribe("/queue/DLQ", "d", "client-individual", &[]);
        let dead = expect_message(&mut d);
        assert_eq!(dead.body_str(), "t");
        assert_eq!(dead.header("_AMQ_ORIG_QUEUE"), Some("txgone"), "{dead:?}");
    }
}
