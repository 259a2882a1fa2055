//! Duplicate detection (`_AMQ_DUPL_ID`, as in Artemis): a SEND repeating an id its address
//! remembers is dropped but answered with its RECEIPT; the cache is bounded by
//! `id-cache-size`, per address, survives a restart and holds inside transactions.

mod common;
mod durable_common;

use common::*;
use wrenmq::config::{AddressSettingsEntry, Config};

const DUP: &str = "_AMQ_DUPL_ID";

/// A SEND with a duplicate id, confirmed by its RECEIPT.
async fn send_id(p: &mut Client, dest: &str, id: &str, body: &str) {
    p.send_with_receipt(
        "SEND",
        &[("destination", dest), (DUP, id)],
        body.as_bytes(),
        &format!("r-{dest}-{id}-{body}"),
    )
    .await;
}

/// The default test configuration with `id-cache-size` set for addresses matching `pattern`.
fn cache_config(pattern: &str, size: u32) -> Config {
    let mut config = test_config();
    config.address_settings.push(AddressSettingsEntry {
        pattern: pattern.to_string(),
        id_cache_size: Some(size),
        ..Default::default()
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_id_is_dropped_but_still_answered() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/dup.basic", "s", &[]).await;
    let mut p = broker.client().await;
    send_id(&mut p, "/queue/dup.basic", "order-1", "first").await;
    // The retry gets its RECEIPT like any SEND (send_id waits for it) …
    send_id(&mut p, "/queue/dup.basic", "order-1", "retry").await;
    send_id(&mut p, "/queue/dup.basic", "order-2", "second").await;
    p.send_msg("/queue/dup.basic", "no-id").await;
    // … but only the first copy reaches the queue.
    assert_eq!(c.bodies_until_quiet().await, ["first", "second", "no-id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_on_another_address_is_not_a_duplicate() {
    let broker = start_default().await;
    let mut a = broker.client().await;
    a.subscribe("/queue/dup.a", "s", &[]).await;
    let mut b = broker.client().await;
    b.subscribe("/queue/dup.b", "s", &[]).await;
    let mut p = broker.client().await;
    send_id(&mut p, "/queue/dup.a", "x", "to-a").await;
    send_id(&mut p, "/queue/dup.b", "x", "to-b").await;
    assert_eq!(a.bodies_until_quiet().await, ["to-a"]);
    assert_eq!(b.bodies_until_quiet().await, ["to-b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_ids_than_the_cache_holds_forget_the_oldest() {
    let broker = start(cache_config("small.#", 3)).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/small.ring", "s", &[]).await;
    let mut p = broker.client().await;
    for id in ["1", "2", "3", "4"] {
        send_id(&mut p, "/queue/small.ring", id, id).await;
    }
    // The ring holds 2, 3, 4: "2" is still a duplicate, "1" was forgotten.
    send_id(&mut p, "/queue/small.ring", "2", "2-again").await;
    send_id(&mut p, "/queue/small.ring", "1", "1-again").await;
    // Sending "1" again forgot "2".
    send_id(&mut p, "/queue/small.ring", "4", "4-again").await;
    send_id(&mut p, "/queue/small.ring", "2", "2-third").await;
    assert_eq!(
        c.bodies_until_quiet().await,
        ["1", "2", "3", "4", "1-again", "2-third"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_size_of_zero_turns_detection_off() {
    let broker = start(cache_config("nodup.#", 0)).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/nodup.q", "s", &[]).await;
    let mut p = broker.client().await;
    send_id(&mut p, "/queue/nodup.q", "same", "one").await;
    send_id(&mut p, "/queue/nodup.q", "same", "two").await;
    assert_eq!(c.bodies_until_quiet().await, ["one", "two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_deleted_and_created_again_keeps_its_ids() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let mut c = broker.client().await;
    c.subscribe("/topic/dup.gone", "s", &[]).await;
    send_id(&mut p, "/topic/dup.gone", "once", "first").await;
    assert_eq!(c.bodies_until_quiet().await, ["first"]);
    // The only subscription goes, and with it the auto-created address.
    c.disconnect().await;
    let mut c = broker.client().await;
    c.subscribe("/topic/dup.gone", "s", &[]).await;
    send_id(&mut p, "/topic/dup.gone", "once", "retry").await;
    send_id(&mut p, "/topic/dup.gone", "other", "new").await;
    assert_eq!(c.bodies_until_quiet().await, ["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_transaction_each_duplicate_is_dropped_alone() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/dup.tx", "s", &[]).await;
    let mut p = broker.client().await;
    send_id(&mut p, "/queue/dup.tx", "seen", "outside").await;
    p.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    for (id, body) in [
        ("seen", "dup-of-earlier"),
        ("a", "a"),
        ("a", "dup-in-tx"),
        ("b", "b"),
    ] {
        p.send_with_receipt(
            "SEND",
            &[
                ("destination", "/queue/dup.tx"),
                ("transaction", "t"),
                (DUP, id),
            ],
            body.as_bytes(),
            &format!("s-{body}"),
        )
        .await;
    }
    p.send_with_receipt("COMMIT", &[("transaction", "t")], b"", "c")
        .await;
    assert_eq!(c.bodies_until_quiet().await, ["outside", "a", "b"]);
    // What the transaction committed is remembered for later sends.
    send_id(&mut p, "/queue/dup.tx", "b", "b-again").await;
    // A transaction of nothing but duplicates still commits (and is answered).
    p.send_with_receipt("BEGIN", &[("transaction", "t2")], b"", "b2")
        .await;
    p.send_with_receipt(
        "SEND",
        &[
            ("destination", "/queue/dup.tx"),
            ("transaction", "t2"),
            (DUP, "a"),
        ],
        b"a-again",
        "s2",
    )
    .await;
    p.send_with_receipt("COMMIT", &[("transaction", "t2")], b"", "c2")
        .await;
    assert_eq!(c.bodies_until_quiet().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_of_one_id_route_exactly_one() {
    const IDS: usize = 200;
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/dup.race", "s", &[]).await;
    let mut producers = Vec::new();
    for p in 0..2 {
        let mut client = broker.client().await;
        producers.push(tokio::spawn(async move {
            for i in 0..IDS {
                let id = format!("id-{i}");
                client
                    .send_frame(
                        "SEND",
                        &[("destination", "/queue/dup.race"), (DUP, &id)],
                        format!("{i}-from-{p}").as_bytes(),
                    )
                    .await;
            }
            client.disconnect().await;
        }));
    }
    for p in producers {
        p.await.expect("producer task");
    }
    let got = c.bodies_until_quiet().await;
    let mut ids: Vec<usize> = got
        .iter()
        .map(|b| {
            b.split('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("numbered body")
        })
        .collect();
    ids.sort_unstable();
    let twice: Vec<usize> = ids
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(twice.is_empty(), "ids routed twice: {twice:?}");
    ids.dedup();
    assert_eq!(ids.len(), IDS, "every id routed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_longer_than_1024_bytes_is_refused() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    // At the limit it is accepted.
    let max = "k".repeat(1024);
    send_id(&mut p, "/queue/dup.long", &max, "ok").await;
    let long = "k".repeat(1025);
    p.send_frame(
        "SEND",
        &[
            ("destination", "/queue/dup.long"),
            (DUP, &long),
            ("receipt", "r"),
        ],
        b"too long",
    )
    .await;
    let e = p.expect_error_and_close().await;
    let text = format!("{} {}", e.h("message"), e.text());
    assert!(
        text.contains("_AMQ_DUPL_ID") && text.contains("1024"),
        "{e:?}"
    );

    // Inside a transaction it is refused at the SEND, not at COMMIT.
    let mut t = broker.client().await;
    t.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "b")
        .await;
    t.send_frame(
        "SEND",
        &[
            ("destination", "/queue/dup.long"),
            ("transaction", "t"),
            (DUP, &long),
        ],
        b"too long",
    )
    .await;
    let e = t.expect_error_and_close().await;
    assert!(e.h("message").contains("_AMQ_DUPL_ID"), "{e:?}");
}

/// The real binary, killed (SIGKILL) after the first send was confirmed: the id was stored
/// with its message, so the retry after the restart is still a duplicate.
#[test]
fn the_cache_survives_a_crash_and_restart() {
    use durable_common::Broker;
    use std::time::Duration;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let broker = Broker::start(&dir);
    let mut p = broker.client();
    p.send_confirmed("/queue/dup.crash", &[(DUP, "pay-7")], b"original", "r1");
    // Another address with an id, to check the restart keeps caches apart.
    p.send_confirmed("/queue/dup.other", &[(DUP, "pay-8")], b"other", "r2");
    broker.kill();

    let broker = Broker::start(&dir);
    let mut p = broker.client();
    p.send_confirmed("/queue/dup.crash", &[(DUP, "pay-7")], b"retry", "r3");
    p.send_confirmed("/queue/dup.crash", &[(DUP, "pay-8")], b"new-id", "r4");
    let mut c = broker.client();
    c.subscribe("/queue/dup.crash", "s", "auto", &[]);
    let got: Vec<String> = c
        .drain(Duration::from_secs(1), Duration::from_secs(20))
        .iter()
        .map(|f| f.body_str())
        .collect();
    assert_eq!(got, ["original", "new-id"]);
    // A graceful restart keeps it too.
    drop(p);
    drop(c);
    let exit = broker.terminate();
    assert!(exit.status.success(), "{}", exit.stderr);
    let broker = Broker::start(&dir);
    let mut p = broker.client();
    p.send_confirmed("/queue/dup.crash", &[(DUP, "pay-7")], b"again", "r5");
    p.send_confirmed("/queue/dup.other", &[(DUP, "pay-8")], b"again", "r6");
    let mut c = broker.client();
    c.subscribe("/queue/dup.crash", "s", "auto", &[]);
    assert!(
        c.drain(Duration::from_secs(1), Duration::from_secs(20))
            .is_empty()
    );
    c.subscribe("/queue/dup.other", "o", "auto", &[]);
    let got: Vec<String> = c
        .drain(Duration::from_secs(1), Duration::from_secs(20))
        .iter()
        .map(|f| f.body_str())
        .collect();
    assert_eq!(got, ["other"]);
}

/// A duplicate's RECEIPT must not come before its original is stored: otherwise a crash
/// right after it could lose both. The original is visible (delivered) at once but waits
/// behind a backlog in the journal when the retry arrives on another connection; the broker
/// is killed the moment the retry is confirmed, and the original must be there after it.
#[test]
fn a_duplicates_receipt_waits_until_the_original_is_stored() {
    use durable_common::Broker;
    use std::time::Duration;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let broker = Broker::start(&dir);
    let mut c = broker.client();
    c.subscribe("/queue/dup.order", "s", "client", &[]);
    // Keep the journal busy, so what is sent next waits its turn there.
    let mut backlog = broker.client();
    let big = vec![b'x'; 1 << 20];
    for _ in 0..24 {
        backlog
            .send_frame("SEND", &[("destination", "/queue/dup.backlog")], &big)
            .expect("write SEND");
    }
    let mut a = broker.client();
    a.send_frame(
        "SEND",
        &[("destination", "/queue/dup.order"), (DUP, "k")],
        b"original",
    )
    .expect("write SEND");
    let m = c.expect_frame();
    assert_eq!(
        (m.command.as_str(), m.body_str().as_str()),
        ("MESSAGE", "original")
    );
    let mut b = broker.client();
    b.send_confirmed("/queue/dup.order", &[(DUP, "k")], b"retry", "r");
    broker.kill();

    let broker = Broker::start(&dir);
    let mut c = broker.client();
    c.subscribe("/queue/dup.order", "s", "auto", &[]);
    let got: Vec<String> = c
        .drain(Duration::from_secs(1), Duration::from_secs(20))
        .iter()
        .map(|f| f.body_str())
        .collect();
    assert_eq!(
        got,
        ["original"],
        "the retry was confirmed, so the original is stored"
    );
}

/// The ring resumes after a restart exactly where it was: the same ids are remembered and
/// the next id overwrites the oldest, not an arbitrary one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ring_forgets_in_the_same_order() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = cache_config("small.#", 3);
    config.journal.enabled = true;
    config.journal.data_dir = tmp.path().join("data");
    let broker = start(config.clone()).await;
    let mut p = broker.client().await;
    for id in ["1", "2", "3", "4", "5"] {
        send_id(&mut p, "/queue/small.restart", id, id).await;
    }
    p.disconnect().await;
    broker.shutdown().await;

    let broker = start(config).await;
    let mut p = broker.client().await;
    // Remembered: 3, 4, 5. "6" then overwrites the oldest, "3".
    send_id(&mut p, "/queue/small.restart", "5", "5-again").await;
    send_id(&mut p, "/queue/small.restart", "6", "6").await;
    send_id(&mut p, "/queue/small.restart", "4", "4-again").await;
    send_id(&mut p, "/queue/small.restart", "3", "3-again").await;
    let mut c = broker.client().await;
    c.subscribe("/queue/small.restart", "s", &[]).await;
    assert_eq!(
        c.bodies_until_quiet().await,
        ["1", "2", "3", "4", "5", "6", "3-again"]
    );
}
