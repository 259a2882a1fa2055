//! Heart-beat negotiation, broker-sent heart-beats, and dead-peer detection.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// Broker sends every >= 50 ms and expects every >= 50 ms, grace 2x.
fn hb_config() -> wrenmq::config::Config {
    let mut config = test_config();
    let hb = &mut config.acceptors[0].heartbeat;
    hb.send_ms = 50;
    hb.receive_ms = 50;
    hb.grace = 2.0;
    config
}

async fn connect_with_heartbeat(broker: &TestBroker, hb: &str) -> (Client, Frame) {
    let mut c = broker.tcp().await;
    c.write(
        format!("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:{hb}\n\n\0").as_bytes(),
    )
    .await;
    let f = c.expect_frame("CONNECTED").await;
    (c, f)
}

fn parse_hb(f: &Frame) -> (u64, u64) {
    let (a, b) = f.h("heart-beat").split_once(',').expect("two numbers");
    (a.parse().expect("sx"), b.parse().expect("sy"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sends_heartbeats_when_asked() {
    let broker = start(hb_config()).await;
    let (mut c, f) = connect_with_heartbeat(&broker, "0,100").await;
    let (sx, sy) = parse_hb(&f);
    assert!(sx > 0, "broker must offer to send heart-beats: {f:?}");
    assert_eq!(sy, 0, "client offered none, broker must expect none: {f:?}");
    // Bounded: at least 3 bare EOLs must arrive, well within the timeout.
    let deadline = Instant::now() + TIMEOUT;
    while c.heartbeats < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.read_item(left).await {
            Ok(Item::HeartBeat) => {}
            Ok(Item::Frame(f)) => panic!("unexpected frame {f:?}"),
            Err(e) => panic!("only {} heart-beats before {e:?}", c.heartbeats),
        }
    }
    // The connection is alive and usable in between heart-beats.
    c.send_msg("/queue/hb.alive", "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_heartbeats_when_client_wants_none() {
    let broker = start(hb_config()).await;
    let (mut c, f) = connect_with_heartbeat(&broker, "0,0").await;
    assert_eq!(parse_hb(&f), (0, 0), "{f:?}");
    match c.read_item(QUIET).await {
        Err(ReadEnd::Timeout) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    assert_eq!(c.heartbeats, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_1_0_has_no_heartbeats() {
    let broker = start(hb_config()).await;
    let mut c = broker.tcp().await;
    // A 1.0 client: heart-beat header is not part of 1.0 and must be ignored.
    c.write(b"CONNECT\nheart-beat:0,50\n\n\0").await;
    let f = c.expect_frame("CONNECTED").await;
    assert_eq!(f.get("version"), Some("1.0"));
    c.version = Ver::V10;
    match c.read_item(QUIET).await {
        Err(ReadEnd::Timeout) => {}
        other => panic!("expected silence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_connect() {
    let broker = start(hb_config()).await;
    let (mut c, f) = connect_with_heartbeat(&broker, "100,0").await;
    let (_, sy) = parse_hb(&f);
    assert!(sy > 0, "broker must ask for heart-beats: {f:?}");
    // Promised one every 100 ms (grace 2x => dropped after ~200 ms); send nothing at all
    // after CONNECT. The broker must give up well within the 5 s read timeout.
    let e = c.expect_closed().await;
    if let Some(e) = e {
        assert!(e.h("message").contains("heart-beat"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_silent_after_a_frame_is_dropped() {
    let broker = start(hb_config()).await;
    let (mut c, _) = connect_with_heartbeat(&broker, "100,0").await;
    c.send_with_receipt(
        "SUBSCRIBE",
        &[("destination", "/queue/hb.sub"), ("id", "s")],
        b"",
        "r",
    )
    .await;
    let e = c.expect_closed().await;
    if let Some(e) = e {
        assert!(e.h("message").contains("heart-beat"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sending_heartbeats_is_kept() {
    let broker = start(hb_config()).await;
    let (mut c, _) = connect_with_heartbeat(&broker, "100,0").await;
    // Send one first so the test does not depend on the CONNECT-only deadline.
    c.write(b"\n").await;
    // ~1.5 s of EOLs every 50 ms: far longer than the 200 ms grace.
    for _ in 0..30 {
        c.write(b"\n").await;
        match c.next_frame(Duration::from_millis(50)).await {
            Err(ReadEnd::Timeout) => {}
            other => panic!("connection with heart-beats was disturbed: {other:?}"),
        }
    }
    c.send_msg("/queue/hb.kept", "still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_heartbeats_count_too() {
    let broker = start(hb_config()).await;
    let (mut c, _) = connect_with_heartbeat(&broker, "100,0").await;
    for _ in 0..20 {
        c.write(b"\r\n").await;
        match c.next_frame(Duration::from_millis(50)).await {
            Err(ReadEnd::Timeout) => {}
            other => panic!("connection with CRLF heart-beats was disturbed: {other:?}"),
        }
    }
    c.send_msg("/queue/hb.crlf", "still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ttl_drops_idle_client_without_heartbeats() {
    let mut config = test_config();
    config.acceptors[0].heartbeat.connection_ttl_ms = 200;
    let broker = start(config).await;
    let (mut c, f) = connect_with_heartbeat(&broker, "0,0").await;
    assert_eq!(parse_hb(&f), (0, 0));
    let e = c.expect_closed().await;
    if let Some(e) = e {
        assert!(e.h("message").contains("TTL"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ttl_drops_client_idle_after_a_frame() {
    let mut config = test_config();
    config.acceptors[0].heartbeat.connection_ttl_ms = 200;
    let broker = start(config).await;
    let (mut c, _) = connect_with_heartbeat(&broker, "0,0").await;
    c.send_msg("/queue/ttl", "x").await;
    c.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscriber_without_heartbeats_is_kept() {
    // No connection TTL and a short handshake timeout. CONNECT and SUBSCRIBE
    // are written together (as pipelining clients do), then the client only listens, well
    // past the handshake timeout. It must never be dropped: CONNECT ends the handshake.
    let mut config = test_config();
    config.acceptors[0].heartbeat.connection_ttl_ms = 0;
    config.limits.handshake_timeout_ms = 300;
    let broker = start(config).await;
    let mut c = broker.tcp().await;
    let mut bytes = b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0".to_vec();
    bytes.extend(frame_bytes(
        "SUBSCRIBE",
        &[("destination", "/queue/idle"), ("id", "s")],
        b"",
    ));
    c.write(&bytes).await;
    c.expect_frame("CONNECTED").await;
    c.expect_no_frame(Duration::from_millis(1500)).await;
    let mut p = broker.client().await;
    p.send_msg("/queue/idle", "still subscribed").await;
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "still subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_heartbeats_follow_what_the_client_asks() {
    // Default acceptor: a stompjs-style client asks for a beat every second.
    let broker = start_default().await;
    let (mut c, f) = connect_with_heartbeat(&broker, "0,1000").await;
    let (sx, sy) = parse_hb(&f);
    assert!(
        sx > 0 && sx <= 1000,
        "the broker must offer to beat at most every 1000 ms: {f:?}"
    );
    assert_eq!(sy, 0, "{f:?}");
    // Bounded: two beats must arrive within 3.5 s (at a 1 s interval; 10 s gives none).
    let deadline = Instant::now() + Duration::from_millis(3500);
    while c.heartbeats < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.read_item(left).await {
            Ok(Item::HeartBeat) => {}
            Ok(Item::Frame(f)) => panic!("unexpected frame {f:?}"),
            Err(e) => panic!("only {} heart-beats before {e:?}", c.heartbeats),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_never_go_below_the_floor() {
    let broker = start_default().await;
    let (_c, f) = connect_with_heartbeat(&broker, "100,100").await;
    assert_eq!(
        parse_hb(&f),
        (500, 500),
        "the default floor is 500 ms: {f:?}"
    );
}
