//! One client's wildcard subscription must not make routing expensive for everyone: matching
//! is linear-ish whatever the pattern, and addresses have a bounded number of words.

mod common;

use common::*;

/// `w0.w1.…` with `n` words, ending in `last` when given.
fn address(n: usize, tag: usize, last: Option<&str>) -> String {
    let mut words: Vec<String> = (0..n).map(|i| format!("w{tag}x{i}")).collect();
    if let Some(l) = last {
        words.pop();
        words.push(l.to_string());
    }
    words.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hash_pattern_does_not_stall_routing_for_others() {
    let broker = start_default().await;
    let mut watcher = broker.client().await;
    let pattern = format!("/topic/{}z", "#.".repeat(20));
    watcher.subscribe(&pattern, "hashes", &[]).await;

    let mut echo = broker.client().await;
    echo.subscribe("/queue/round-trips", "rt", &[]).await;

    let mut producer = broker.client().await;
    let sends = 60;
    let produce = async {
        for i in 0..sends {
            // Every fifth address ends in `z` and matches; the others make a naive matcher
            // try every way of sharing 40 words among 20 `#`s.
            let last = (i % 5 == 0).then_some("z");
            let dest = format!("/topic/{}", address(40, i, last));
            producer.send_msg(&dest, &format!("t{i}")).await;
        }
    };
    let round_trips = async {
        let mut other = broker.client().await;
        for i in 0..30 {
            other
                .send_msg_nowait("/queue/round-trips", &format!("r{i}"))
                .await;
            let m = echo.expect_frame("MESSAGE").await;
            assert_eq!(m.text(), format!("r{i}"));
        }
    };
    tokio::join!(produce, round_trips);

    let got = bodies(&mut watcher, sends / 5).await;
    let want: Vec<String> = (0..sends).step_by(5).map(|i| format!("t{i}")).collect();
    assert_eq!(
        got, want,
        "the wildcard subscriber gets exactly the matching sends"
    );
    watcher.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_up_to_the_word_limit_work() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    let dest = format!("/topic/{}", address(64, 0, None));
    c.subscribe(&dest, "long", &[]).await;
    c.send_msg(&dest, "fits").await;
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_above_the_word_limit_gets_an_error() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    let dest = format!("/topic/{}", address(65, 0, None));
    c.send_frame("SEND", &[("destination", &dest), ("receipt", "r")], b"x")
        .await;
    let e = c.expect_error_and_close().await;
    let msg = e.h("message");
    assert!(
        msg.contains("65") && msg.contains("64") && msg.contains("max-address-words"),
        "{e:?}"
    );
    assert_eq!(e.get("receipt-id"), Some("r"), "{e:?}");
    assert_eq!(
        broker.running.broker.address_names(),
        ["DLQ", "ExpiryQueue"],
        "nothing was created for the refused address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_above_a_configured_word_limit_gets_an_error() {
    let mut config = test_config();
    config.limits.max_address_words = 3;
    let broker = start(config).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/a.b.c", "ok", &[]).await;
    c.send_frame(
        "SUBSCRIBE",
        &[("destination", "/topic/a.#.b.*"), ("id", "long")],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("limit of 3 (max-address-words)"),
        "{e:?}"
    );
}
