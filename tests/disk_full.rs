//! A full disk over real connections: `max-disk-usage` holds persistent SENDs (refuses them on
//! FAIL addresses) while non-persistent traffic flows, and a journal commit that hits ENOSPC
//! answers its producer with an ERROR while the broker keeps serving, writes again once
//! space frees, and leaves a journal that recovers every acknowledged message.
//!
//! The tmpfs tests need root (to mount an 8 MiB tmpfs) and are skipped with a message
//! otherwise.

mod common;
mod tmpfs;

use common::{QUIET, start, test_config};
use std::path::Path;
use std::time::{Duration, Instant};
use tmpfs::Tmpfs;
use wrenmq::config::{AddressFullPolicyConfig, AddressSettingsEntry, Config};

/// A journaled broker on `dir` with `max-disk-usage` = `max` and a fast disk scan, and
/// address `failing.#` on policy FAIL.
fn disk_config(dir: &Path, max: i64) -> Config {
    let mut config = test_config();
    config.journal.enabled = true;
    config.journal.data_dir = dir.to_path_buf();
    config.broker.max_disk_usage = max;
    config.broker.disk_scan_period = 50;
    config.address_settings.push(AddressSettingsEntry {
        pattern: "failing.#".into(),
        address_full_policy: Some(AddressFullPolicyConfig::Fail),
        ..Default::default()
    });
    config
}

/// Any filesystem is at or above 0%: persistent sends are held, or refused on FAIL, while
/// non-persistent ones go through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_disk_usage_persistent_sends_wait_or_fail_and_non_persistent_flow() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = start(disk_config(&tmp.path().join("data"), 0)).await;

    let mut held = broker.client().await;
    held.send_frame(
        "SEND",
        &[
            ("destination", "/queue/disk.held"),
            ("persistent", "true"),
            ("receipt", "r-held"),
        ],
        b"held",
    )
    .await;
    held.expect_no_frame(QUIET).await;

    // No `persistent` header: the address default (persistent) applies.
    let mut failing = broker.client().await;
    failing
        .send_frame(
            "SEND",
            &[("destination", "/queue/failing.one"), ("receipt", "r-fail")],
            b"refused",
        )
        .await;
    let e = failing.expect_error_and_close().await;
    assert_eq!(e.get("receipt-id"), Some("r-fail"), "{e:?}");
    let text = format!("{} {}", e.h("message"), e.text());
    assert!(
        text.contains("at or above max-disk-usage 0%") && text.contains("disk usage"),
        "{text}"
    );

    let mut fast = broker.client().await;
    fast.subscribe("/queue/disk.fast", "s", &[]).await;
    fast.send_with_receipt(
        "SEND",
        &[("destination", "/queue/disk.fast"), ("persistent", "false")],
        b"light",
        "r-fast",
    )
    .await;
    assert_eq!(fast.bodies_until_quiet().await, ["light"]);

    // A transaction's persistent sends are held at COMMIT, as the journal write is there.
    let mut tx = broker.client().await;
    tx.send_with_receipt("BEGIN", &[("transaction", "t")], b"", "r-begin")
        .await;
    tx.send_with_receipt(
        "SEND",
        &[("destination", "/queue/disk.held"), ("transaction", "t")],
        b"in tx",
        "r-tx-send",
    )
    .await;
    tx.send_frame(
        "COMMIT",
        &[("transaction", "t"), ("receipt", "r-commit")],
        b"",
    )
    .await;
    tx.expect_no_frame(QUIET).await;

    // Still held, and nothing of it reached a queue.
    held.expect_no_frame(QUIET).await;
    let mut probe = broker.client().await;
    probe.subscribe("/queue/disk.held", "p", &[]).await;
    probe.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

/// On a small tmpfs: with a filler file the disk is over the limit and a persistent send
/// waits; deleting the filler brings usage under it and the send completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_persistent_send_completes_when_space_frees() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![1u8; 5 << 20]).expect("filler");
    // 5 of 8 MiB is 62% before the journal adds its own; without the filler the journal alone
    // is far below 55%.
    let broker = start(disk_config(&fs.path().join("data"), 55)).await;

    let mut p = broker.client().await;
    p.send_frame(
        "SEND",
        &[
            ("destination", "/queue/disk.wait"),
            ("persistent", "true"),
            ("receipt", "r1"),
        ],
        b"waited",
    )
    .await;
    p.expect_no_frame(QUIET).await;

    std::fs::remove_file(&filler).expect("remove filler");
    let r = p.expect_frame("RECEIPT").await;
    assert_eq!(r.get("receipt-id"), Some("r1"));
    let mut c = broker.client().await;
    c.subscribe("/queue/disk.wait", "s", &[]).await;
    assert_eq!(c.bodies_until_quiet().await, ["waited"]);
    broker.shutdown().await;
}

/// What the test producer saw of one persistent send.
enum Sent {
    Receipt,
    Error(common::Frame),
}

/// Sends one persistent message with a receipt on `c` and waits for its answer.
async fn send_persistent(c: &mut common::Client, body: &[u8], receipt: &str) -> Sent {
    c.send_frame(
        "SEND",
        &[
            ("destination", "/queue/disk.fill"),
            ("persistent", "true"),
            ("receipt", receipt),
        ],
        body,
    )
    .await;
    let f = c.expect_frame_any().await;
    match f.command.as_str() {
        "RECEIPT" => {
            assert_eq!(f.get("receipt-id"), Some(receipt), "{f:?}");
            Sent::Receipt
        }
        "ERROR" => Sent::Error(f),
        _ => panic!("expected RECEIPT or ERROR, got {f:?}"),
    }
}

/// ENOSPC during a commit: the producer gets an ERROR with its receipt-id naming the reason,
/// the broker keeps serving (new connection, non-persistent traffic), persistent sends work
/// again once space frees, and a copy of the journal in a roomy place recovers every message
/// that got a RECEIPT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_during_a_commit_errors_its_producer_and_the_broker_carries_on() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![1u8; 2 << 20]).expect("filler");
    let data = fs.path().join("data");
    // -1: no max-disk-usage guard, so the journal itself meets the full disk.
    let broker = start(disk_config(&data, -1)).await;

    let body = vec![b'x'; 64 * 1024];
    let mut receipted = Vec::new();
    let mut p = broker.client().await;
    let mut error = None;
    for i in 0..400 {
        let receipt = format!("m{i}");
        let mut framed = format!("{i:05}").into_bytes();
        framed.extend_from_slice(&body);
        match send_persistent(&mut p, &framed, &receipt).await {
            Sent::Receipt => receipted.push(format!("{i:05}")),
            Sent::Error(e) => {
                error = Some((receipt, e));
                break;
            }
        }
    }
    let (receipt, e) = error.expect("an 8 MiB tmpfs fills before 25 MiB are sent");
    assert_eq!(e.get("receipt-id"), Some(receipt.as_str()), "{e:?}");
    let text = format!("{} {}", e.h("message"), e.text());
    assert!(
        text.contains("could not store the message") && text.contains("No space left"),
        "{text}"
    );
    assert!(!receipted.is_empty(), "some messages fit first");

    // The broker still serves: a new connection, non-persistent messages.
    let mut other = broker.client().await;
    other.subscribe("/queue/disk.light", "s", &[]).await;
    other
        .send_with_receipt(
            "SEND",
            &[
                ("destination", "/queue/disk.light"),
                ("persistent", "false"),
            ],
            b"still here",
            "r-light",
        )
        .await;
    assert_eq!(other.bodies_until_quiet().await, ["still here"]);

    // Space back: persistent sends are stored again (the journal reopens within a second or
    // two; until then a send is refused with an ERROR).
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut p = broker.client().await;
        match send_persistent(&mut p, b"after", "r-after").await {
            Sent::Receipt => break,
            Sent::Error(e) if Instant::now() < deadline => {
                println!("not yet: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Sent::Error(e) => panic!("persistent sends never worked again: {e:?}"),
        }
    }
    receipted.push("after".into());
    broker.shutdown().await;

    // The tmpfs cannot shrink the journal; restart on a copy in a roomy directory. Every
    // message that got a RECEIPT is there, in order, and the journal opens (it is checked).
    let roomy = tempfile::tempdir().expect("temp dir");
    let copy = roomy.path().join("data");
    std::fs::create_dir_all(&copy).expect("copy dir");
    std::fs::copy(data.join("journal.redb"), copy.join("journal.redb")).expect("copy");
    let broker = start(disk_config(&copy, -1)).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/disk.fill", "s", &[]).await;
    let got: Vec<String> = c
        .bodies_until_quiet()
        .await
        .into_iter()
        .map(|b| b.chars().take(5).collect())
        .collect();
    assert_eq!(got, receipted);
    broker.shutdown().await;
}

/// Paging writes to disk too: once memory is full, a non-persistent SEND that its address
/// would page is held like a persistent one while the disk is at max-disk-usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_disk_usage_a_send_that_would_page_is_held_even_when_not_persistent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = disk_config(&tmp.path().join("data"), 0);
    config.broker.global_max_size = 256 * 1024;
    let broker = start(config).await;
    let mut p = broker.client().await;
    let body = vec![b'n'; 4096];
    let mut held = false;
    // Memory fills after about 64 of these; then the next one would go to disk.
    for i in 0..100 {
        let receipt = format!("r{i}");
        p.send_frame(
            "SEND",
            &[
                ("destination", "/queue/disk.paged"),
                ("persistent", "false"),
                ("receipt", &receipt),
            ],
            &body,
        )
        .await;
        if p.next_frame(QUIET).await.is_err() {
            held = true;
            assert!(i >= 60, "held only once memory is full (at {i})");
            break;
        }
    }
    assert!(held, "a send that would page waits for disk space");
    broker.shutdown().await;
}
