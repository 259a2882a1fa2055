//! BEGIN / COMMIT / ABORT for sends and acknowledgements.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_send_is_invisible_until_commit() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/tx.send", "s", &[]).await;
    let mut p = broker.client().await;
    p.send_with_receipt("BEGIN", &[("transaction", "tx1")], b"", "b")
        .await;
    for m in numbered("t", 3) {
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/tx.send"), ("transaction", "tx1")],
            m.as_bytes(),
            &format!("s-{m}"),
        )
        .await;
    }
    c.expect_no_frame(QUIET).await;
    p.send_with_receipt("COMMIT", &[("transaction", "tx1")], b"", "c")
        .await;
    assert_eq!(bodies(&mut c, 3).await, numbered("t", 3));
    c.expect_no_frame(QUIET).await;
    let m = {
        p.send_msg("/queue/tx.send", "after").await;
        c.expect_frame("MESSAGE").await
    };
    assert_eq!(m.get("transaction"), None, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_discards_transactional_sends() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/tx.abort", "s", &[]).await;
    let mut p = broker.client().await;
    p.send_with_receipt("BEGIN", &[("transaction", "tx")], b"", "b")
        .await;
    p.send_with_receipt(
        "SEND",
        &[("destination", "/queue/tx.abort"), ("transaction", "tx")],
        b"discarded",
        "s",
    )
    .await;
    p.send_with_receipt("ABORT", &[("transaction", "tx")], b"", "a")
        .await;
    p.send_msg("/queue/tx.abort", "marker").await;
    let m = c.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "marker");
    c.expect_no_frame(QUIET).await;
    // The aborted transaction is gone: committing it is an error.
    p.send_frame("COMMIT", &[("transaction", "tx"), ("receipt", "c")], b"")
        .await;
    let e = p.expect_error_and_close().await;
    assert!(e.h("message").contains("tx"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_ack_leaves_message_unacked() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/tx.ack.abort", "keep-me").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/tx.ack.abort", "s", &[("ack", "client-individual")])
        .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    c.send_with_receipt("ACK", &[("id", m.h("ack")), ("transaction", "t")], b"", "a")
        .await;
    c.send_with_receipt("ABORT", &[("transaction", "t")], b"", "ab")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/tx.ack.abort", "s", &[("ack", "client-individual")])
        .await;
    let again = c2.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "keep-me");
    assert_eq!(again.get("redelivered"), Some("true"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_ack_can_be_acked_again() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/tx.ack.again", "m").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/tx.ack.again", "s", &[("ack", "client-individual")])
        .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    c.send_with_receipt("ACK", &[("id", m.h("ack")), ("transaction", "t")], b"", "a")
        .await;
    c.send_with_receipt("ABORT", &[("transaction", "t")], b"", "ab")
        .await;
    // After ABORT the message awaits an acknowledgement again.
    c.send_with_receipt("ACK", &[("id", m.h("ack"))], b"", "a2")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/tx.ack.again", "s", &[]).await;
    p.send_msg("/queue/tx.ack.again", "marker").await;
    assert_eq!(c2.expect_frame("MESSAGE").await.text(), "marker");
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_ack_consumes_the_message() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/tx.ack.commit", "consumed").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/tx.ack.commit", "s", &[("ack", "client-individual")])
        .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    c.send_with_receipt("ACK", &[("id", m.h("ack")), ("transaction", "t")], b"", "a")
        .await;
    c.send_with_receipt("COMMIT", &[("transaction", "t")], b"", "c")
        .await;
    c.disconnect().await;
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/tx.ack.commit", "s", &[]).await;
    p.send_msg("/queue/tx.ack.commit", "marker").await;
    let first = c2.expect_frame("MESSAGE").await;
    assert_eq!(first.text(), "marker", "committed ack was not applied");
    c2.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_unknown_transaction_is_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame(
        "SEND",
        &[
            ("destination", "/queue/tx.unknown"),
            ("transaction", "nope"),
            ("receipt", "r"),
        ],
        b"x",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("nope"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("r"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_in_unknown_transaction_is_an_error() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/tx.unknown.ack", "x").await;
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/tx.unknown.ack",
        "s",
        &[("ack", "client-individual")],
    )
    .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_frame(
        "ACK",
        &[
            ("id", m.h("ack")),
            ("transaction", "ghost"),
            ("receipt", "r"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("ghost"), "{e:?}");
    // The message was not acked: it comes back.
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/tx.unknown.ack", "s", &[]).await;
    let again = c2.expect_frame("MESSAGE").await;
    assert_eq!(again.text(), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_abort_of_unknown_transaction_are_errors() {
    let broker = start_default().await;
    for cmd in ["COMMIT", "ABORT"] {
        let mut c = broker.client().await;
        c.send_frame(cmd, &[("transaction", "never-begun")], b"")
            .await;
        let e = c.expect_error_and_close().await;
        assert!(e.h("message").contains("never-begun"), "{cmd}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_twice_is_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_with_receipt("BEGIN", &[("transaction", "dup")], b"", "b1")
        .await;
    c.send_frame("BEGIN", &[("transaction", "dup")], b"").await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("dup"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_drop_aborts_open_transaction() {
    let broker = start_default().await;
    let mut consumer = broker.client().await;
    consumer.subscribe("/queue/tx.drop", "s", &[]).await;
    {
        let mut p = broker.client().await;
        p.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
            .await;
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/tx.drop"), ("transaction", "t")],
            b"never",
            "s",
        )
        .await;
        // Dropped without COMMIT or DISCONNECT.
    }
    let mut p2 = broker.client().await;
    p2.send_msg("/queue/tx.drop", "marker").await;
    assert_eq!(consumer.expect_frame("MESSAGE").await.text(), "marker");
    consumer.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_drop_with_open_tx_ack_redelivers() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/tx.drop.ack", "held").await;
    {
        let mut c = broker.client().await;
        c.subscribe("/queue/tx.drop.ack", "s", &[("ack", "client-individual")])
            .await;
        let m = c.expect_frame("MESSAGE").await;
        c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
            .await;
        c.send_with_receipt("ACK", &[("id", m.h("ack")), ("transaction", "t")], b"", "a")
            .await;
    }
    let mut c2 = broker.client().await;
    c2.subscribe("/queue/tx.drop.ack", "s", &[]).await;
    let m = c2.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "held");
    assert_eq!(m.get("redelivered"), Some("true"), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_delivers_none_of_the_transaction() {
    // Auto-create off, one configured anycast address: the transaction's second SEND names a
    // destination that cannot exist. Whether the broker refuses it at SEND or at COMMIT, the
    // transaction must not be half applied: its first SEND must never be delivered.
    let mut config = no_auto_create_config();
    config.addresses.push(wrenmq::config::AddressConfig {
        name: "ledger".to_string(),
        routing_types: vec![wrenmq::config::RoutingTypeConfig::Anycast],
        queues: vec![wrenmq::config::QueueConfig {
            name: "ledger".to_string(),
            routing_type: wrenmq::config::RoutingTypeConfig::Anycast,
            durable: true,
            filter: None,
            ..Default::default()
        }],
    });
    let broker = start(config).await;
    let mut consumer = broker.client().await;
    consumer.subscribe("/queue/ledger", "s", &[]).await;
    let mut p = broker.client().await;
    let mut bytes = frame_bytes("BEGIN", &[("transaction", "t")], b"");
    bytes.extend(frame_bytes(
        "SEND",
        &[("destination", "/queue/ledger"), ("transaction", "t")],
        b"debit",
    ));
    bytes.extend(frame_bytes(
        "SEND",
        &[("destination", "/queue/nowhere"), ("transaction", "t")],
        b"credit",
    ));
    bytes.extend(frame_bytes(
        "COMMIT",
        &[("transaction", "t"), ("receipt", "commit")],
        b"",
    ));
    p.write(&bytes).await;
    let e = p.expect_error_and_close().await;
    assert!(e.h("message").contains("nowhere"), "{e:?}");
    // Half a transaction must not be visible.
    consumer.expect_no_frame(QUIET).await;
}
