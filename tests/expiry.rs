//! Message expiry over real connections (issue 10, "Expiry"): `expires` (absolute) and
//! `expiration` (relative) on SEND, expired messages never delivered, moved to the expiry
//! address with `_AMQ_ORIG_ADDRESS`, `_AMQ_ORIG_QUEUE` and `_AMQ_ACTUAL_EXPIRY` (found at
//! dispatch, or by the reaper with nobody consuming), dropped with an empty expiry address, a
//! queue per origin with `auto-create-expiry-resources`, the `expiry-delay` / `min-` /
//! `max-expiry-delay` / `no-expiry` settings, and an expired persistent message gone from the
//! journal after a restart.

mod common;
mod durable_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Frame, QUIET, assert_bad_send_headers, start, test_config};
use wrenmq::config::{AddressSettingsEntry, Config};

/// Long enough past a short time to live for the message to be expired for sure.
const PAST_EXPIRY: Duration = Duration::from_millis(400);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The test config with the reaper scanning every `scan_ms` (-1 = off) and extra settings.
fn config(scan_ms: i64, settings: Vec<AddressSettingsEntry>) -> Config {
    let mut c = test_config();
    c.broker.message_expiry_scan_period = scan_ms;
    c.address_settings.extend(settings);
    c
}

fn setting(pattern: &str) -> AddressSettingsEntry {
    AddressSettingsEntry {
        pattern: pattern.to_string(),
        ..Default::default()
    }
}

fn body(f: &Frame) -> String {
    f.text()
}

async fn send(c: &mut common::Client, dest: &str, extra: &[(&str, &str)], body: &str) {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    c.send_with_receipt("SEND", &h, body.as_bytes(), &format!("r-{body}"))
        .await;
}

#[tokio::test]
async fn an_expired_message_is_never_delivered_but_a_later_one_is() {
    // No reaper: only dispatch can notice the expiry.
    let broker = start(config(-1, vec![])).await;
    let mut p = broker.client().await;
    let at = (now_ms() + 100).to_string();
    send(&mut p, "/queue/exp.never", &[("expires", &at)], "absolute").await;
    send(
        &mut p,
        "/queue/exp.never",
        &[("expiration", "100")],
        "relative",
    )
    .await;
    tokio::time::sleep(PAST_EXPIRY).await;
    send(
        &mut p,
        "/queue/exp.never",
        &[("expires", "0")],
        "zero-is-never",
    )
    .await;
    send(&mut p, "/queue/exp.never", &[], "fresh").await;
    let far = (now_ms() + 600_000).to_string();
    send(&mut p, "/queue/exp.never", &[("expires", &far)], "far").await;

    let mut c = broker.client().await;
    c.subscribe("/queue/exp.never", "s", &[]).await;
    let got: Vec<String> = c.expect_messages(3).await.iter().map(body).collect();
    assert_eq!(got, ["zero-is-never", "fresh", "far"]);
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_expiry_values_get_an_error_naming_the_header() {
    let broker = start(config(-1, vec![])).await;
    assert_bad_send_headers(
        &broker,
        "/queue/exp.bad",
        &[
            ("expires", "soon"),
            ("expires", "-1"),
            ("expiration", "-5"),
            ("expiration", "1.5"),
            ("expiration", "99999999999999999999999"),
        ],
    )
    .await;
    broker.shutdown().await;
}

/// The copy an expiry leaves on the expiry address names where it came from and when it
/// expired (at or after its expiry, not after now).
fn assert_expired_copy(f: &Frame, address: &str, queue: &str, expired_at: u64, body: &str) {
    assert_eq!(f.text(), body, "{f:?}");
    assert_eq!(f.get("_AMQ_ORIG_ADDRESS"), Some(address), "{f:?}");
    assert_eq!(f.get("_AMQ_ORIG_QUEUE"), Some(queue), "{f:?}");
    let actual: u64 = f
        .get("_AMQ_ACTUAL_EXPIRY")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric _AMQ_ACTUAL_EXPIRY: {f:?}"));
    assert!(
        actual >= expired_at && actual <= now_ms(),
        "_AMQ_ACTUAL_EXPIRY {actual} not between {expired_at} and now: {f:?}"
    );
    // The copy no longer carries the producer's expiry (it does not expire).
    assert_eq!(f.get("expiration"), None, "{f:?}");
    assert_eq!(f.get("expires"), None, "{f:?}");
}

#[tokio::test]
async fn a_message_found_expired_at_dispatch_goes_to_the_expiry_queue() {
    let broker = start(config(-1, vec![])).await;
    let mut p = broker.client().await;
    let sent = now_ms();
    send(&mut p, "/queue/exp.found", &[("expiration", "100")], "late").await;
    tokio::time::sleep(PAST_EXPIRY).await;

    let mut c = broker.client().await;
    c.subscribe("/queue/exp.found", "s", &[]).await;
    c.expect_no_frame(QUIET).await;

    let mut e = broker.client().await;
    e.subscribe("/queue/ExpiryQueue", "e", &[]).await;
    let f = e.expect_frame("MESSAGE").await;
    assert_expired_copy(&f, "exp.found", "exp.found", sent + 100, "late");
    e.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn the_reaper_moves_expired_messages_nobody_consumes_and_the_copy_stays() {
    let broker = start(config(100, vec![])).await;
    let mut p = broker.client().await;
    let sent = now_ms();
    send(
        &mut p,
        "/queue/exp.reaped",
        &[("expiration", "50")],
        "reaped",
    )
    .await;
    // Several scans pass: the message is moved by the reaper (nobody ever consumes
    // exp.reaped), and its copy must not expire in turn (it would be dropped: it is already
    // on the expiry address).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut e = broker.client().await;
    e.subscribe("/queue/ExpiryQueue", "e", &[]).await;
    let f = e.expect_frame("MESSAGE").await;
    assert_expired_copy(&f, "exp.reaped", "exp.reaped", sent + 50, "reaped");
    e.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn the_reaper_works_while_the_expiry_queue_is_consumed() {
    let broker = start(config(100, vec![])).await;
    let mut e = broker.client().await;
    e.subscribe("/queue/ExpiryQueue", "e", &[]).await;
    let mut p = broker.client().await;
    let sent = now_ms();
    send(&mut p, "/queue/exp.live", &[("expiration", "50")], "moved").await;
    let f = e.expect_frame("MESSAGE").await;
    assert_expired_copy(&f, "exp.live", "exp.live", sent + 50, "moved");
    broker.shutdown().await;
}

#[tokio::test]
async fn an_empty_expiry_address_drops_expired_messages() {
    let mut drop = setting("drop.#");
    drop.expiry_address = Some(String::new());
    let broker = start(config(100, vec![drop])).await;
    let mut e = broker.client().await;
    e.subscribe("/queue/ExpiryQueue", "e", &[]).await;
    let mut p = broker.client().await;
    send(&mut p, "/queue/drop.a", &[("expiration", "30")], "dropped").await;
    // The control expires later, so the dropped one was scanned before it arrives.
    send(&mut p, "/queue/keep.a", &[("expiration", "150")], "kept").await;
    let f = e.expect_frame("MESSAGE").await;
    assert_eq!(f.get("_AMQ_ORIG_ADDRESS"), Some("keep.a"), "{f:?}");
    e.expect_no_frame(QUIET).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/drop.a", "s", &[]).await;
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn auto_create_expiry_resources_makes_a_queue_per_origin() {
    let mut per = setting("per.#");
    per.expiry_address = Some("EXPIRED".to_string());
    per.auto_create_expiry_resources = Some(true);
    let broker = start(config(100, vec![per])).await;
    // A subscription on the expiry address sees every move, so once it has all three the
    // per-origin queues exist and hold theirs.
    let mut all = broker.client().await;
    all.subscribe("/topic/EXPIRED", "all", &[]).await;
    let mut p = broker.client().await;
    send(&mut p, "/queue/per.a", &[("expiration", "30")], "a1").await;
    send(&mut p, "/queue/per.b", &[("expiration", "30")], "b1").await;
    send(&mut p, "/queue/per.a", &[("expiration", "30")], "a2").await;
    let mut moved: Vec<String> = all.expect_messages(3).await.iter().map(body).collect();
    moved.sort();
    assert_eq!(moved, ["a1", "a2", "b1"]);

    let mut a = broker.client().await;
    a.subscribe("EXPIRED::EXP.per.a", "a", &[]).await;
    let got: Vec<String> = a.expect_messages(2).await.iter().map(body).collect();
    assert_eq!(got, ["a1", "a2"]);
    a.expect_no_frame(QUIET).await;
    let mut b = broker.client().await;
    b.subscribe("EXPIRED::EXP.per.b", "b", &[]).await;
    let f = b.expect_frame("MESSAGE").await;
    assert_eq!(f.text(), "b1");
    assert_eq!(f.get("_AMQ_ORIG_ADDRESS"), Some("per.b"));
    b.expect_no_frame(QUIET).await;
    // Nothing went to the default expiry queue.
    let mut d = broker.client().await;
    d.subscribe("/queue/ExpiryQueue", "d", &[]).await;
    d.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// expiry-delay, min-expiry-delay, max-expiry-delay, no-expiry
// ---------------------------------------------------------------------------------------------

/// Sends `(extra headers, body)` to `dest`, waits past a short expiry, subscribes and returns
/// the bodies delivered.
async fn survivors(
    broker: &common::TestBroker,
    dest: &str,
    sends: &[(&[(&str, &str)], &str)],
) -> Vec<String> {
    let mut p = broker.client().await;
    for (extra, b) in sends {
        send(&mut p, dest, extra, b).await;
    }
    tokio::time::sleep(PAST_EXPIRY).await;
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[]).await;
    let mut got = Vec::new();
    while let Ok(f) = c.next_frame(QUIET).await {
        assert_eq!(f.command, "MESSAGE", "{f:?}");
        got.push(f.text());
    }
    got
}

#[tokio::test]
async fn expiry_delay_applies_only_to_messages_without_expiry() {
    let mut s = setting("ed.#");
    s.expiry_delay = Some(100);
    let broker = start(config(-1, vec![s])).await;
    let got = survivors(
        &broker,
        "/queue/ed.q",
        &[
            (&[], "no-expiry"),
            (&[("expiration", "600000")], "own-expiry"),
        ],
    )
    .await;
    assert_eq!(got, ["own-expiry"]);
    // The one that got the delay went to the expiry queue.
    let mut e = broker.client().await;
    e.subscribe("/queue/ExpiryQueue", "e", &[]).await;
    assert_eq!(e.expect_frame("MESSAGE").await.text(), "no-expiry");
    broker.shutdown().await;
}

#[tokio::test]
async fn max_expiry_delay_caps_and_gives_one_to_messages_without() {
    let mut s = setting("max.#");
    s.max_expiry_delay = Some(100);
    let broker = start(config(-1, vec![s])).await;
    let got = survivors(
        &broker,
        "/queue/max.q",
        &[
            (&[], "none"),
            (&[("expiration", "600000")], "long"),
            (&[("expires", "0")], "zero"),
        ],
    )
    .await;
    assert!(got.is_empty(), "{got:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn min_expiry_delay_raises_a_short_expiry() {
    let mut s = setting("min.#");
    s.min_expiry_delay = Some(60_000);
    let broker = start(config(-1, vec![s])).await;
    let got = survivors(
        &broker,
        "/queue/min.q",
        &[
            (&[("expiration", "1")], "short"),
            (&[("expires", &(now_ms() + 50).to_string())], "short-abs"),
            (&[], "none"),
        ],
    )
    .await;
    // A message without expiry gets min-expiry-delay (no max set): also still alive.
    assert_eq!(got, ["short", "short-abs", "none"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn no_expiry_wins_over_every_other_expiry() {
    let mut s = setting("forever.#");
    s.no_expiry = Some(true);
    s.expiry_delay = Some(1);
    s.max_expiry_delay = Some(1);
    let broker = start(config(100, vec![s])).await;
    let got = survivors(
        &broker,
        "/queue/forever.q",
        &[(&[("expiration", "1")], "relative"), (&[], "none")],
    )
    .await;
    assert_eq!(got, ["relative", "none"]);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Persistence: the reaper removes an expired message from the journal
// ---------------------------------------------------------------------------------------------

#[test]
fn the_reaper_removes_an_expired_persistent_message_from_the_journal() {
    use durable_common::{Broker, Frame};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let reaping = tmp.path().join("reaping.toml");
    std::fs::write(&reaping, "[broker]\nmessage-expiry-scan-period = 100\n").expect("config");
    // After the restart no reaper runs: only dispatch could move a message that came back.
    let no_reaper = tmp.path().join("no-reaper.toml");
    std::fs::write(&no_reaper, "[broker]\nmessage-expiry-scan-period = -1\n").expect("config");

    let broker = Broker::start_with_config(&dir, &reaping);
    let mut p = broker.client();
    let persistent = ("persistent", "true");
    p.send_confirmed(
        "/queue/exp.durable",
        &[persistent, ("expiration", "50")],
        b"gone",
        "r1",
    );
    p.send_confirmed("/queue/exp.durable", &[persistent], b"stays", "r2");
    // The reaper moves it to ExpiryQueue and forgets it in exp.durable. Its copy is read but
    // not acknowledged, so it is back in ExpiryQueue when the broker stops.
    let mut e = broker.client();
    e.subscribe("/queue/ExpiryQueue", "e", "client", &[]);
    assert_eq!(e.expect_frame().body_str(), "gone");
    e.disconnect();
    // The move was written without anyone waiting; the journal commits in order, so once a
    // later confirmed write is stored, so is the move.
    p.send_confirmed("/queue/exp.flush", &[persistent], b"flush", "r3");
    p.disconnect();
    broker.kill();

    let broker = Broker::start_with_config(&dir, &no_reaper);
    let drain = |c: &mut durable_common::Client| -> Vec<Frame> {
        c.drain(Duration::from_millis(500), Duration::from_secs(10))
    };
    // The reaper's copy was stored before the restart.
    let mut e = broker.client();
    e.subscribe("/queue/ExpiryQueue", "e", "auto", &[]);
    let moved = drain(&mut e);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].body_str(), "gone");
    assert_eq!(moved[0].header("_AMQ_ORIG_QUEUE"), Some("exp.durable"));
    // The original is not in the journal any more: not delivered, and not found expired
    // (which would send a second copy to ExpiryQueue).
    let mut c = broker.client();
    c.subscribe("/queue/exp.durable", "s", "auto", &[]);
    let got: Vec<String> = drain(&mut c).iter().map(Frame::body_str).collect();
    assert_eq!(got, ["stays"]);
    let again = drain(&mut e);
    assert!(
        again.is_empty(),
        "expired again after the restart: {again:?}"
    );
    broker.kill();
}
