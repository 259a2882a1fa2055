//! Paging (`address-full-policy = PAGE`, the default) over real connections: once an address
//! (or the broker) is full, producers go on at the disk's pace while the messages wait on
//! disk, and consumers get every one in order; the broker's memory counter stays near its
//! limit. DROP discards what does not fit; BLOCK and FAIL are in `tests/memory_limits.rs`.

mod common;

use common::*;
use wrenmq::config::{AddressFullPolicyConfig, AddressSettingsEntry, Config};

const KIB4: usize = 4 * 1024;

/// A broker with a journal in `dir`, `global-max-size` of `global` and small pages, so a
/// few megabytes are enough to page.
fn paging_config(dir: &std::path::Path, global: i64) -> Config {
    let mut c = test_config();
    c.journal.enabled = true;
    c.journal.data_dir = dir.to_path_buf();
    c.broker.global_max_size = global;
    c.address_settings.push(AddressSettingsEntry {
        pattern: "#".into(),
        page_size_bytes: Some(64 * 1024),
        ..Default::default()
    });
    c
}

fn body(i: usize) -> Vec<u8> {
    let mut b = format!("{i:08}:").into_bytes();
    b.resize(KIB4, b'p');
    b
}

fn index_of(f: &Frame) -> usize {
    std::str::from_utf8(&f.body[..8])
        .expect("utf-8 index")
        .parse()
        .expect("numbered body")
}

/// Sends `n` numbered 4 KiB messages to `dest`, every one confirmed by its RECEIPT
/// (`persistent(i)` says which are persistent).
async fn send_confirmed(
    broker: &TestBroker,
    dest: &str,
    n: usize,
    persistent: impl Fn(usize) -> bool,
) {
    let mut p = broker.client().await;
    for i in 0..n {
        let persistent = if persistent(i) { "true" } else { "false" };
        p.send_with_receipt(
            "SEND",
            &[("destination", dest), ("persistent", persistent)],
            &body(i),
            &format!("r{i}"),
        )
        .await;
    }
    p.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_address_pages_and_its_consumer_gets_every_message_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 8 MiB sent into a 1 MiB broker: BLOCK would hold the producer at the 257th message.
    let broker = start(paging_config(dir.path(), 1 << 20)).await;
    send_confirmed(&broker, "/queue/paged.q", 2048, |i| i % 2 == 0).await;
    let core = &broker.running.broker;
    let held = core.memory().bytes();
    assert!(
        held <= 2 << 20,
        "memory held stays near the limit: {held} bytes"
    );
    let q = core.queue("paged.q").expect("queue");
    assert_eq!(q.message_count(), 2048, "every message counted");
    assert!(
        q.paged_count() >= 2048 - 300,
        "most wait on disk: {}",
        q.paged_count()
    );
    let mut c = broker.client().await;
    c.subscribe("/queue/paged.q", "s", &[("ack", "client-individual")])
        .await;
    for want in 0..2048 {
        let m = c.expect_frame("MESSAGE").await;
        assert_eq!(index_of(&m), want, "in order");
        assert_eq!(m.body, body(want), "body intact");
        c.send_frame("ACK", &[("id", m.h("ack"))], b"").await;
    }
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_is_never_held_while_its_address_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(paging_config(dir.path(), 256 * 1024)).await;
    // A consumer that takes its time: one message in flight at a time.
    let mut slow = broker.client().await;
    slow.subscribe(
        "/queue/paged.slow",
        "s",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    // The producer gets all its receipts although the consumer has read nothing.
    send_confirmed(&broker, "/queue/paged.slow", 512, |_| false).await;
    for want in 0..512 {
        let m = slow.expect_frame("MESSAGE").await;
        assert_eq!(index_of(&m), want);
        slow.send_frame("ACK", &[("id", m.h("ack"))], b"").await;
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_of_a_paging_topic_gets_every_message_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(paging_config(dir.path(), 512 * 1024)).await;
    let mut fast = broker.client().await;
    fast.subscribe("/topic/paged.t", "f", &[]).await;
    let mut slow = broker.client().await;
    slow.subscribe(
        "/topic/paged.t",
        "s",
        &[("ack", "client-individual"), ("activemq.prefetchSize", "1")],
    )
    .await;
    send_confirmed(&broker, "/topic/paged.t", 1024, |_| false).await;
    for want in 0..1024 {
        assert_eq!(index_of(&fast.expect_frame("MESSAGE").await), want);
    }
    for want in 0..1024 {
        let m = slow.expect_frame("MESSAGE").await;
        assert_eq!(index_of(&m), want);
        slow.send_frame("ACK", &[("id", m.h("ack"))], b"").await;
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_address_discards_what_does_not_fit_and_keeps_what_did() {
    let mut cfg = test_config();
    cfg.address_settings.push(AddressSettingsEntry {
        pattern: "lossy.#".into(),
        max_size_bytes: Some(64 * 1024),
        address_full_policy: Some(AddressFullPolicyConfig::Drop),
        ..Default::default()
    });
    let broker = start(cfg).await;
    let mut p = broker.client().await;
    // 16 x 4 KiB (plus headers) pass 64 KiB; the rest are dropped, each still receipted.
    for i in 0..40 {
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/lossy.q"), ("persistent", "false")],
            &body(i),
            &format!("r{i}"),
        )
        .await;
    }
    let mut c = broker.client().await;
    c.subscribe("/queue/lossy.q", "s", &[]).await;
    let mut got = Vec::new();
    while let Ok(f) = c.next_frame(QUIET).await {
        got.push(index_of(&f));
    }
    assert!(
        (1..40).contains(&got.len()),
        "some kept, some dropped: {got:?}"
    );
    assert_eq!(
        got,
        (0..got.len()).collect::<Vec<_>>(),
        "the first ones kept"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_committed_into_a_paging_address_arrives_whole_and_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(paging_config(dir.path(), 256 * 1024)).await;
    // Fill memory so the address pages.
    send_confirmed(&broker, "/queue/paged.tx", 100, |_| false).await;
    let mut t = broker.client().await;
    t.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    for i in 100..300 {
        t.send_frame(
            "SEND",
            &[
                ("destination", "/queue/paged.tx"),
                ("transaction", "t"),
                ("persistent", if i % 2 == 0 { "true" } else { "false" }),
            ],
            &body(i),
        )
        .await;
    }
    t.send_with_receipt("COMMIT", &[("transaction", "t")], b"", "c")
        .await;
    assert!(
        broker
            .running
            .broker
            .queue("paged.tx")
            .expect("queue")
            .paged_count()
            > 0,
        "the committed messages went to disk"
    );
    let mut c = broker.client().await;
    c.subscribe("/queue/paged.tx", "s", &[]).await;
    for want in 0..300 {
        assert_eq!(index_of(&c.expect_frame("MESSAGE").await), want);
    }
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_selector_wants_nothing_does_not_pull_the_backlog_into_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(paging_config(dir.path(), 1 << 20)).await;
    send_confirmed(&broker, "/queue/paged.sel", 2048, |_| false).await;
    let q = broker.running.broker.queue("paged.sel").expect("queue");
    let before = q.paged_count();
    let mut c = broker.client().await;
    c.subscribe("/queue/paged.sel", "s", &[("selector", "color = 'red'")])
        .await;
    c.expect_no_frame(QUIET).await;
    let after = q.paged_count();
    // One page (64 KiB, about 15 messages) may be read to find out.
    assert!(
        after + 40 >= before,
        "the queue read only a page or so: {before} on disk before, {after} after"
    );
    assert!(
        broker.running.broker.memory().bytes() <= 2 << 20,
        "memory stays near the limit"
    );
    broker.shutdown().await;
}
