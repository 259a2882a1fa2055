//! The broker-wide memory bound over real connections: `[broker] global-max-size` counts the
//! messages every address holds, so one full address holds back producers of every address
//! (BLOCK: by TCP back-pressure, nothing lost), FAIL answers with an ERROR, and transaction
//! buffers are capped per connection (`[limits] max-transaction-bytes`) and counted too.

mod common;

use common::*;
use wrenmq::config::{AddressFullPolicyConfig, AddressSettingsEntry, Config};

const KIB64: usize = 64 * 1024;

fn config(global: i64) -> Config {
    let mut c = test_config();
    c.broker.global_max_size = global;
    c
}

/// SEND of a 64 KiB body with a receipt, not waiting for it.
async fn send_big(c: &mut Client, dest: &str, receipt: &str) {
    c.send_frame(
        "SEND",
        &[
            ("destination", dest),
            ("receipt", receipt),
            ("persistent", "false"),
        ],
        &vec![b'x'; KIB64],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_broker_blocks_producers_of_every_address_until_consumers_catch_up() {
    let broker = start(config(1024 * 1024)).await;
    let mut p = broker.client().await;
    // 16 x 64 KiB fill the 1 MiB limit; the 17th SEND waits.
    for i in 0..16 {
        send_big(&mut p, "/queue/mem.a", &format!("a{i}")).await;
        assert_eq!(
            p.expect_frame("RECEIPT").await.h("receipt-id"),
            format!("a{i}")
        );
    }
    send_big(&mut p, "/queue/mem.a", "a16").await;
    p.expect_no_frame(QUIET).await;
    // Another address, another producer: held back as well, since the broker is full.
    let mut q = broker.client().await;
    send_big(&mut q, "/queue/mem.b", "b0").await;
    q.expect_no_frame(QUIET).await;
    // A consumer drains mem.a: both producers go on, and nothing was lost.
    let mut c = broker.client().await;
    c.subscribe("/queue/mem.a", "s", &[]).await;
    let got = c.expect_messages(17).await;
    assert!(got.iter().all(|f| f.body.len() == KIB64));
    assert_eq!(p.expect_frame("RECEIPT").await.h("receipt-id"), "a16");
    assert_eq!(q.expect_frame("RECEIPT").await.h("receipt-id"), "b0");
    let mut d = broker.client().await;
    d.subscribe("/queue/mem.b", "s", &[]).await;
    assert_eq!(d.expect_messages(1).await.len(), 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_full_broker_refuses_a_send_to_a_fail_address_naming_the_limit() {
    let mut cfg = config(256 * 1024);
    cfg.address_settings.push(AddressSettingsEntry {
        pattern: "strict.#".into(),
        address_full_policy: Some(AddressFullPolicyConfig::Fail),
        ..Default::default()
    });
    let broker = start(cfg).await;
    let mut p = broker.client().await;
    for i in 0..4 {
        send_big(&mut p, "/queue/mem.fill", &format!("f{i}")).await;
        p.expect_frame("RECEIPT").await;
    }
    // strict.x does not exist yet: the broker's limit alone refuses it.
    let mut s = broker.client().await;
    send_big(&mut s, "/queue/strict.x", "s0").await;
    let e = s.expect_error_and_close().await;
    assert!(e.h("message").contains("global-max-size"), "{e:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn transaction_buffers_are_capped_per_connection() {
    let mut cfg = config(-1);
    cfg.limits.max_transaction_bytes = 100 * 1024;
    let broker = start(cfg).await;
    let mut p = broker.client().await;
    p.send_frame("BEGIN", &[("transaction", "t1")], b"").await;
    p.send_frame(
        "SEND",
        &[("destination", "/queue/mem.tx"), ("transaction", "t1")],
        &vec![b'x'; KIB64],
    )
    .await;
    p.send_frame("BEGIN", &[("transaction", "t2")], b"").await;
    // The cap is over all of the connection's transactions, not per transaction.
    p.send_frame(
        "SEND",
        &[("destination", "/queue/mem.tx"), ("transaction", "t2")],
        &vec![b'x'; KIB64],
    )
    .await;
    let e = p.expect_error_and_close().await;
    assert!(e.h("message").contains("max-transaction-bytes"), "{e:?}");
    // Nothing of either transaction was delivered.
    let mut c = broker.client().await;
    c.subscribe("/queue/mem.tx", "s", &[]).await;
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn buffered_transactions_count_against_the_global_limit() {
    let broker = start(config(256 * 1024)).await;
    let mut t = broker.client().await;
    t.send_frame("BEGIN", &[("transaction", "t")], b"").await;
    for i in 0..4 {
        t.send_with_receipt(
            "SEND",
            &[("destination", "/queue/mem.txg"), ("transaction", "t")],
            &vec![b'x'; KIB64],
            &format!("t{i}"),
        )
        .await;
    }
    // 256 KiB sit in an open transaction: another producer is held back.
    let mut p = broker.client().await;
    send_big(&mut p, "/queue/mem.other", "o0").await;
    p.expect_no_frame(QUIET).await;
    // ABORT frees them.
    t.send_frame("ABORT", &[("transaction", "t")], b"").await;
    assert_eq!(p.expect_frame("RECEIPT").await.h("receipt-id"), "o0");
    broker.shutdown().await;
}

#[tokio::test]
async fn max_size_messages_holds_a_producer_once_the_address_holds_that_many() {
    let mut cfg = config(-1);
    cfg.address_settings.push(AddressSettingsEntry {
        pattern: "counted.#".into(),
        max_size_messages: Some(3),
        ..Default::default()
    });
    let broker = start(cfg).await;
    let mut p = broker.client().await;
    for i in 0..3 {
        p.send_msg("/queue/counted.q", &format!("m{i}")).await;
    }
    p.send_frame(
        "SEND",
        &[("destination", "/queue/counted.q"), ("receipt", "m3")],
        b"m3",
    )
    .await;
    p.expect_no_frame(QUIET).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/counted.q", "s", &[]).await;
    assert_eq!(c.expect_messages(4).await.len(), 4);
    assert_eq!(p.expect_frame("RECEIPT").await.h("receipt-id"), "m3");
    broker.shutdown().await;
}
