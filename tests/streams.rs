//! Retained streams over real STOMP connections: a non-destructive queue keeps what it is
//! consumed from; consumers start where RabbitMQ's `x-stream-offset` says; every MESSAGE
//! carries its offset; retention drops whole old segments; a durable named consumer's ACKed
//! offset is stored and resumed from.

mod common;

use common::*;
use std::time::Duration;
use wrenmq::broker::SEGMENT_MESSAGES;
use wrenmq::config::{AddressSettingsEntry, Config};

/// A broker whose `stream.#` queues are non-destructive, with the given retention.
fn stream_config(retention_ms: i64, retention_bytes: i64) -> Config {
    let mut config = test_config();
    config.address_settings.push(AddressSettingsEntry {
        pattern: "stream.#".to_string(),
        default_non_destructive: Some(true),
        default_retention_ms: Some(retention_ms),
        default_retention_bytes: Some(retention_bytes),
        ..Default::default()
    });
    config
}

async fn start_streams() -> TestBroker {
    start(stream_config(-1, -1)).await
}

/// Sends `bodies` without receipts, then one more with a receipt: the connection's frames
/// are handled in order, so all are in the stream once it comes back.
async fn send_all(p: &mut Client, dest: &str, bodies: &[String]) {
    for b in bodies {
        p.send_msg_nowait(dest, b).await;
    }
    p.send_with_receipt("SEND", &[("destination", dest)], b"end", "all-sent")
        .await;
}

fn offsets(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f.h("x-stream-offset").parse().expect("numeric offset"))
        .collect()
}

fn texts(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::text).collect()
}

#[tokio::test]
async fn consuming_does_not_remove_every_consumer_reads_everything() {
    let broker = start_streams().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    a.subscribe("/queue/stream.orders", "a", &[]).await;
    b.subscribe("/queue/stream.orders", "b", &[]).await;
    let mut p = broker.client().await;
    for body in numbered("m", 5) {
        p.send_msg("/queue/stream.orders", &body).await;
    }
    let got_a = a.messages_until_quiet().await;
    let got_b = b.messages_until_quiet().await;
    assert_eq!(
        texts(&got_a),
        numbered("m", 5),
        "both consumers get every message"
    );
    assert_eq!(texts(&got_b), numbered("m", 5));
    assert_eq!(offsets(&got_a), [0, 1, 2, 3, 4]);
    assert_eq!(offsets(&got_b), [0, 1, 2, 3, 4]);
    // auto acks removed nothing: a later consumer replays it all.
    let mut late = broker.client().await;
    late.subscribe(
        "/queue/stream.orders",
        "late",
        &[("x-stream-offset", "first")],
    )
    .await;
    let replay = late.messages_until_quiet().await;
    assert_eq!(texts(&replay), numbered("m", 5));
    assert_eq!(offsets(&replay), [0, 1, 2, 3, 4]);
    for f in &replay {
        assert_eq!(
            f.get("redelivered"),
            Some("false"),
            "a read is a first read: {f:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn offsets_are_dense_and_increasing_and_a_producer_cannot_fake_them() {
    let broker = start_streams().await;
    let mut p = broker.client().await;
    for i in 0..20 {
        p.send_with_receipt(
            "SEND",
            &[
                ("destination", "/queue/stream.dense"),
                ("x-stream-offset", "999"),
            ],
            format!("m{i}").as_bytes(),
            &format!("r{i}"),
        )
        .await;
    }
    let mut c = broker.client().await;
    c.subscribe("/queue/stream.dense", "s", &[("x-stream-offset", "first")])
        .await;
    let got = c.messages_until_quiet().await;
    assert_eq!(offsets(&got), (0..20).collect::<Vec<_>>());
    for f in &got {
        let n = f.headers.iter().filter(|(k, _)| k == "x-stream-offset");
        assert_eq!(n.count(), 1, "one offset header, the broker's: {f:?}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn start_points_first_last_next_offset() {
    let broker = start_streams().await;
    let mut p = broker.client().await;
    for body in numbered("m", 5) {
        p.send_msg("/queue/stream.points", &body).await;
    }
    let mut c = broker.client().await;
    let cases: [(&str, &[u64]); 5] = [
        ("first", &[0, 1, 2, 3, 4]),
        ("last", &[4]),
        ("2", &[2, 3, 4]),
        ("next", &[]),
        ("77", &[]),
    ];
    for (i, (start, want)) in cases.iter().enumerate() {
        c.subscribe(
            "/queue/stream.points",
            &format!("s{i}"),
            &[("x-stream-offset", start)],
        )
        .await;
        let got = c.messages_until_quiet().await;
        assert_eq!(offsets(&got), *want, "x-stream-offset:{start}");
        c.send_with_receipt(
            "UNSUBSCRIBE",
            &[("id", &format!("s{i}"))],
            b"",
            &format!("u{i}"),
        )
        .await;
    }
    // Without the header: next (RabbitMQ's default).
    c.subscribe("/queue/stream.points", "plain", &[]).await;
    c.subscribe(
        "/queue/stream.points",
        "nxt",
        &[("x-stream-offset", "next")],
    )
    .await;
    c.expect_no_frame(QUIET).await;
    p.send_msg("/queue/stream.points", "new").await;
    let got = c.expect_messages(2).await;
    assert_eq!(offsets(&got), [5, 5]);
    assert_eq!(texts(&got), ["new", "new"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn timestamp_starts_at_the_first_message_sent_at_or_after_it() {
    let broker = start_streams().await;
    let mut p = broker.client().await;
    for body in numbered("before", 3) {
        p.send_msg("/queue/stream.time", &body).await;
    }
    let now = wrenmq::broker::now_millis();
    let second = now / 1000 + 1;
    tokio::time::sleep(Duration::from_millis(second * 1000 - now + 20)).await;
    for body in numbered("after", 2) {
        p.send_msg("/queue/stream.time", &body).await;
    }
    let mut c = broker.client().await;
    let ts = format!("timestamp={second}");
    c.subscribe("/queue/stream.time", "t", &[("x-stream-offset", &ts)])
        .await;
    let got = c.messages_until_quiet().await;
    assert_eq!(texts(&got), numbered("after", 2));
    assert_eq!(offsets(&got), [3, 4]);
    c.subscribe(
        "/queue/stream.time",
        "t0",
        &[("x-stream-offset", "timestamp=0")],
    )
    .await;
    assert_eq!(c.messages_until_quiet().await.len(), 5);
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_stream_offset_is_an_error_naming_it() {
    let broker = start_streams().await;
    for bad in ["firstish", "-3", "timestamp=soon"] {
        let mut c = broker.client().await;
        c.send_frame(
            "SUBSCRIBE",
            &[
                ("destination", "/queue/stream.bad"),
                ("id", "s"),
                ("x-stream-offset", bad),
            ],
            b"",
        )
        .await;
        let e = c.expect_error_and_close().await;
        let m = e.h("message");
        assert!(
            m.contains("x-stream-offset") && m.contains(bad),
            "{bad}: {e:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_selector_on_a_stream_consumer_is_refused() {
    let broker = start_streams().await;
    let mut c = broker.client().await;
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/stream.sel"),
            ("id", "s"),
            ("selector", "colour = 'red'"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("retained stream"), "{e:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn nack_frees_the_window_and_requeues_nothing() {
    let broker = start_streams().await;
    let mut p = broker.client().await;
    for body in numbered("m", 4) {
        p.send_msg("/queue/stream.nack", &body).await;
    }
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/stream.nack",
        "s",
        &[
            ("x-stream-offset", "first"),
            ("ack", "client-individual"),
            ("activemq.prefetchSize", "2"),
        ],
    )
    .await;
    let got = c.expect_messages(2).await;
    assert_eq!(offsets(&got), [0, 1]);
    c.expect_no_frame(QUIET).await;
    c.send_with_receipt("NACK", &[("id", got[0].h("ack"))], b"", "n0")
        .await;
    let next = c.messages_until_quiet().await;
    assert_eq!(
        offsets(&next),
        [2],
        "the NACK made room; offset 0 is not offered again"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_durable_named_consumer_resumes_after_its_acked_offset() {
    let broker = start_streams().await;
    let mut p = broker.client().await;
    for body in numbered("m", 6) {
        p.send_msg("/queue/stream.resume", &body).await;
    }
    let named = [
        ("durable-subscription-name", "reader"),
        ("ack", "client-individual"),
    ];
    let mut c = broker.client_with_id("app-1").await;
    let mut first = named.to_vec();
    first.push(("x-stream-offset", "first"));
    c.subscribe("/queue/stream.resume", "s", &first).await;
    let got = c.messages_until_quiet().await;
    assert_eq!(offsets(&got), [0, 1, 2, 3, 4, 5]);
    c.send_with_receipt("ACK", &[("id", got[0].h("ack"))], b"", "a0")
        .await;
    c.send_with_receipt("ACK", &[("id", got[2].h("ack"))], b"", "a2")
        .await;
    c.disconnect().await;

    let mut again = broker.client_with_id("app-1").await;
    again.subscribe("/queue/stream.resume", "s", &named).await;
    let resumed = again.messages_until_quiet().await;
    assert_eq!(
        offsets(&resumed),
        [3, 4, 5],
        "after the highest ACKed offset"
    );
    assert_eq!(texts(&resumed), ["m3", "m4", "m5"]);
    again.disconnect().await;

    // Another name has no stored offset: next.
    let mut other = broker.client_with_id("app-2").await;
    other.subscribe("/queue/stream.resume", "s", &named).await;
    other.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn retention_bytes_drops_whole_old_segments() {
    let body = "x".repeat(100);
    let n = 4 * SEGMENT_MESSAGES;
    // About two segments' worth.
    let broker = start(stream_config(-1, (2 * SEGMENT_MESSAGES * 100) as i64)).await;
    let mut p = broker.client().await;
    let bodies: Vec<String> = (0..n).map(|_| body.clone()).collect();
    send_all(&mut p, "/queue/stream.bytes", &bodies).await;
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/stream.bytes",
        "s",
        &[
            ("x-stream-offset", "first"),
            ("activemq.prefetchSize", "-1"),
        ],
    )
    .await;
    let got = c.messages_until_quiet().await;
    let offs = offsets(&got);
    let first = offs[0] as usize;
    assert!(first > 0, "old segments were dropped");
    assert_eq!(
        first % SEGMENT_MESSAGES,
        0,
        "only whole segments go: {first}"
    );
    assert!(
        first <= n - 2 * SEGMENT_MESSAGES,
        "kept at least the retention: {first}"
    );
    assert_eq!(offs, (first as u64..=n as u64).collect::<Vec<_>>());
    broker.shutdown().await;
}

#[tokio::test]
async fn retention_ms_drops_old_segments_on_the_clock_scan() {
    let mut config = stream_config(300, -1);
    config.broker.message_expiry_scan_period = 50;
    let broker = start(config).await;
    let mut p = broker.client().await;
    let bodies = numbered("old", SEGMENT_MESSAGES + 10);
    send_all(&mut p, "/queue/stream.age", &bodies).await;
    let mut c = broker.client().await;
    c.subscribe(
        "/queue/stream.age",
        "now",
        &[
            ("x-stream-offset", "first"),
            ("activemq.prefetchSize", "-1"),
        ],
    )
    .await;
    assert_eq!(c.messages_until_quiet().await.len(), SEGMENT_MESSAGES + 11);
    // Nothing is sent meanwhile: the broker clock's scan applies the age.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut probe = broker.client().await;
        probe
            .subscribe("/queue/stream.age", "p", &[("x-stream-offset", "first")])
            .await;
        if probe.messages_until_quiet().await.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old segments never went"
        );
    }
    // Offsets go on from where they were.
    p.send_msg("/queue/stream.age", "new").await;
    let mut late = broker.client().await;
    late.subscribe("/queue/stream.age", "l", &[("x-stream-offset", "first")])
        .await;
    let got = late.messages_until_quiet().await;
    assert_eq!(offsets(&got), [SEGMENT_MESSAGES as u64 + 11]);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_browse_shows_what_the_stream_retains_after_it_was_consumed() {
    let broker = start_streams().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/stream.browse", "s", &[]).await;
    let mut p = broker.client().await;
    for body in numbered("m", 3) {
        p.send_msg("/queue/stream.browse", &body).await;
    }
    assert_eq!(c.messages_until_quiet().await.len(), 3);
    let mut b = broker.client().await;
    b.subscribe("/queue/stream.browse", "b", &[("browser", "true")])
        .await;
    let got = b.messages_until_quiet().await;
    let bodies: Vec<String> = got
        .iter()
        .filter(|f| f.get("browser") != Some("end"))
        .map(Frame::text)
        .collect();
    assert_eq!(bodies, numbered("m", 3));
    assert_eq!(got.last().and_then(|f| f.get("browser")), Some("end"));
    broker.shutdown().await;
}
