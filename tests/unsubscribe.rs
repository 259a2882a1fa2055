//! UNSUBSCRIBE is clean: what the subscription was handed is either delivered to it or
//! returned to the queue, never both; nothing follows its RECEIPT; a late ACK of a message it
//! received does not close the connection; and an ACK that could mean two subscriptions is
//! refused rather than guessed.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;

/// Reads frames until the RECEIPT `id`, returning the MESSAGEs before it; fails on anything
/// else (an ERROR in particular).
async fn messages_until_receipt(c: &mut Client, id: &str) -> Vec<Frame> {
    let mut got = Vec::new();
    loop {
        let f = c.expect_frame_any().await;
        match f.command.as_str() {
            "MESSAGE" => got.push(f),
            "RECEIPT" if f.get("receipt-id") == Some(id) => return got,
            _ => panic!("expected MESSAGE or RECEIPT '{id}', got {f:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_subscribe_send_unsubscribe_back_to_back_delivers_once() {
    // stomp.py's CLI tests do exactly this: SUBSCRIBE, SEND, UNSUBSCRIBE in one go. The
    // message handed to the leaving `auto` subscriber used to be written to it and also
    // given to the next subscriber, marked redelivered.
    let broker = start_default().await;
    let mut other = broker.client().await;
    other
        .subscribe("/queue/b2b", "other", &[("ack", "auto")])
        .await;
    let mut c = broker.client().await;
    let rounds = 60;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..rounds {
        let sub = format!("s{i}");
        let receipt = format!("u{i}");
        let mut bytes = frame_bytes(
            "SUBSCRIBE",
            &[("destination", "/queue/b2b"), ("id", &sub), ("ack", "auto")],
            b"",
        );
        bytes.extend(frame_bytes(
            "SEND",
            &[("destination", "/queue/b2b")],
            format!("m{i}").as_bytes(),
        ));
        bytes.extend(frame_bytes(
            "UNSUBSCRIBE",
            &[("id", &sub), ("receipt", &receipt)],
            b"",
        ));
        c.write(&bytes).await;
        for m in messages_until_receipt(&mut c, &receipt).await {
            assert_eq!(m.get("subscription"), Some(sub.as_str()), "{m:?}");
            assert_eq!(m.get("redelivered"), Some("false"), "{m:?}");
            *seen.entry(m.text()).or_default() += 1;
        }
    }
    // Whatever the leaving subscriber did not get went to the other one, exactly once.
    loop {
        match other.next_frame(QUIET).await {
            Ok(m) if m.command == "MESSAGE" => {
                assert_eq!(
                    m.get("redelivered"),
                    Some("false"),
                    "delivered twice: {m:?}"
                );
                *seen.entry(m.text()).or_default() += 1;
            }
            Ok(f) => panic!("expected MESSAGE, got {f:?}"),
            Err(ReadEnd::Timeout) => break,
            Err(e) => panic!("expected MESSAGE, got {e:?}"),
        }
    }
    for i in 0..rounds {
        assert_eq!(seen.get(&format!("m{i}")), Some(&1), "m{i}: {seen:?}");
    }
    assert_eq!(seen.len(), rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_follows_the_unsubscribe_receipt_under_load() {
    let broker = start_default().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for dest in ["/topic/flow", "/queue/flow"] {
        let mut p = broker.client().await;
        let stop = Arc::clone(&stop);
        producers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                p.send_msg(dest, &format!("f{i}")).await;
                i += 1;
            }
        }));
    }
    let mut c = broker.client().await;
    let mut gone: Vec<String> = Vec::new();
    for i in 0..40 {
        let dest = if i % 2 == 0 {
            "/topic/flow"
        } else {
            "/queue/flow"
        };
        let ack = ["auto", "client", "client-individual"][i % 3];
        let sub = format!("s{i}");
        c.subscribe(dest, &sub, &[("ack", ack)]).await;
        // Wait for the subscription to be receiving before leaving it.
        loop {
            let m = c.expect_frame("MESSAGE").await;
            let from = m.h("subscription").to_string();
            assert!(!gone.contains(&from), "MESSAGE after its RECEIPT: {m:?}");
            if from == sub {
                break;
            }
        }
        let receipt = format!("u{i}");
        c.send_frame("UNSUBSCRIBE", &[("id", &sub), ("receipt", &receipt)], b"")
            .await;
        for m in messages_until_receipt(&mut c, &receipt).await {
            let from = m.h("subscription").to_string();
            assert!(!gone.contains(&from), "MESSAGE after its RECEIPT: {m:?}");
        }
        gone.push(sub);
    }
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.expect("producer");
    }
    // Every subscription is gone: nothing more may arrive.
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_after_unsubscribe_keeps_the_connection() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    for m in numbered("late", 3) {
        p.send_msg("/queue/late", &m).await;
    }
    let mut c = broker.client().await;
    c.subscribe("/queue/late", "s", &[("ack", "client-individual")])
        .await;
    let got = c.expect_messages(3).await;
    c.send_with_receipt("UNSUBSCRIBE", &[("id", "s")], b"", "u")
        .await;
    // The messages went back at UNSUBSCRIBE; acking them now is accepted and does nothing.
    c.send_with_receipt("ACK", &[("id", got[0].h("ack"))], b"", "a0")
        .await;
    c.send_with_receipt("NACK", &[("id", got[1].h("ack"))], b"", "n1")
        .await;
    c.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    c.send_with_receipt(
        "ACK",
        &[("id", got[2].h("ack")), ("transaction", "t")],
        b"",
        "a2",
    )
    .await;
    c.send_with_receipt("COMMIT", &[("transaction", "t")], b"", "c")
        .await;
    // Still usable, and nothing was consumed: all three come back, redelivered.
    c.subscribe("/queue/late", "s2", &[("ack", "client-individual")])
        .await;
    let again = c.expect_messages(3).await;
    let texts: Vec<String> = again.iter().map(Frame::text).collect();
    assert_eq!(texts, numbered("late", 3));
    for m in &again {
        assert_eq!(m.get("redelivered"), Some("true"), "{m:?}");
    }
    // An ack id that never existed is still an error.
    c.send_frame("ACK", &[("id", "999999-1"), ("receipt", "bad")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("unknown ack id"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_and_1_1_acks_after_unsubscribe_keep_the_connection() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    p.send_msg("/queue/late11", "x").await;
    p.send_msg("/queue/late10", "y").await;

    let mut c11 = broker.client_11().await;
    c11.subscribe("/queue/late11", "s", &[("ack", "client")])
        .await;
    let m = c11.expect_frame("MESSAGE").await;
    c11.send_with_receipt("UNSUBSCRIBE", &[("id", "s")], b"", "u")
        .await;
    c11.send_with_receipt(
        "ACK",
        &[("message-id", m.h("message-id")), ("subscription", "s")],
        b"",
        "a",
    )
    .await;
    c11.send_frame(
        "ACK",
        &[
            ("message-id", "1"),
            ("subscription", "never"),
            ("receipt", "x"),
        ],
        b"",
    )
    .await;
    let e = c11.expect_error_and_close().await;
    assert!(e.h("message").contains("unknown subscription"), "{e:?}");

    let mut c10 = broker.client_10().await;
    c10.send_with_receipt(
        "SUBSCRIBE",
        &[("destination", "/queue/late10"), ("ack", "client")],
        b"",
        "s",
    )
    .await;
    let m = c10.expect_frame("MESSAGE").await;
    c10.send_with_receipt("UNSUBSCRIBE", &[("destination", "/queue/late10")], b"", "u")
        .await;
    c10.send_with_receipt("ACK", &[("message-id", m.h("message-id"))], b"", "a")
        .await;
    // A message id this connection never held is still refused.
    c10.send_frame("ACK", &[("message-id", "987654"), ("receipt", "x")], b"")
        .await;
    let e = c10.expect_error_and_close().await;
    assert!(
        e.h("message").contains("awaits no acknowledgement"),
        "{e:?}"
    );

    // Nothing was consumed by the late ACKs.
    let mut c = broker.client().await;
    c.subscribe("/queue/late11", "a", &[]).await;
    c.subscribe("/queue/late10", "b", &[]).await;
    let mut texts = bodies(&mut c, 2).await;
    texts.sort();
    assert_eq!(texts, vec!["x", "y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_by_message_id_matching_two_subscriptions_is_refused() {
    let broker = start_default().await;
    let mut c = broker.client_11().await;
    c.subscribe("/topic/amb.#", "wild", &[("ack", "client")])
        .await;
    c.subscribe("/topic/amb.x", "exact", &[("ack", "client")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/topic/amb.x", "twice").await;
    let ms = c.expect_messages(2).await;
    assert_eq!(ms[0].h("message-id"), ms[1].h("message-id"));
    c.send_frame(
        "ACK",
        &[("message-id", ms[0].h("message-id")), ("receipt", "a")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    let msg = e.h("message");
    assert!(
        msg.contains("'exact'") && msg.contains("'wild'") && msg.contains("'subscription' header"),
        "{e:?}"
    );
    assert_eq!(e.get("receipt-id"), Some("a"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_by_message_id_with_subscription_settles_only_that_copy() {
    let broker = start_default().await;
    let mut c = broker.client_11().await;
    c.subscribe("/topic/amb2.#", "wild", &[("ack", "client")])
        .await;
    c.subscribe("/topic/amb2.x", "exact", &[("ack", "client")])
        .await;
    let mut p = broker.client().await;
    p.send_msg("/topic/amb2.x", "twice").await;
    let ms = c.expect_messages(2).await;
    let id = ms[0].h("message-id");
    c.send_with_receipt(
        "ACK",
        &[("message-id", id), ("subscription", "exact")],
        b"",
        "a1",
    )
    .await;
    // Only the wildcard copy is left, so the header is no longer needed.
    c.send_with_receipt("ACK", &[("message-id", id)], b"", "a2")
        .await;
    c.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_vanishing_during_unsubscribe_returns_what_it_held() {
    // The subscriber stops reading, so its writer is stuck behind megabytes of MESSAGEs when
    // the UNSUBSCRIBE arrives and the broker waits for them to be written; then the socket
    // goes away. The subscription must still be closed and its messages handed on.
    let broker = start_default().await;
    let mut p = broker.client().await;
    let body = vec![b'x'; 1024 * 1024];
    let n = 12;
    for i in 0..n {
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/stuck"), ("x-n", &i.to_string())],
            &body,
            &format!("p{i}"),
        )
        .await;
    }
    let mut c = broker.client().await;
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/stuck"),
            ("id", "s"),
            ("ack", "client-individual"),
            ("consumer-window-size", "-1"),
        ],
        b"",
    )
    .await;
    c.send_frame("UNSUBSCRIBE", &[("id", "s"), ("receipt", "u")], b"")
        .await;
    drop(c);
    let mut d = broker.client().await;
    d.subscribe("/queue/stuck", "d", &[]).await;
    let mut got: Vec<String> = d
        .expect_messages(n)
        .await
        .iter()
        .map(|m| m.h("x-n").to_string())
        .collect();
    got.sort_by_key(|s| s.parse::<usize>().unwrap_or(usize::MAX));
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    d.expect_no_frame(QUIET).await;
}
