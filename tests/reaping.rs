//! Connections are reaped: a producer blocked on a full address still notices its socket
//! closing and the broker stopping, an idle client without heart-beats goes after the
//! connection TTL (its unacked messages to other consumers), an unauthenticated socket may
//! buffer only a CONNECT-sized frame, a frame trickled byte by byte has a deadline, and a
//! client that stops reading is closed once a write to it stalls.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::{Instant, sleep, timeout};
use wrenmq::config::{AddressFullPolicyConfig, AddressSettingsEntry, Config};

/// `/queue/small` holds at most 100 bytes and blocks producers beyond that.
fn blocking_config() -> Config {
    let mut config = test_config();
    config.address_settings.push(AddressSettingsEntry {
        pattern: "small".to_string(),
        max_size_bytes: Some(100),
        address_full_policy: Some(AddressFullPolicyConfig::Block),
        ..Default::default()
    });
    config
}

/// Fills `/queue/small`, then sends one more SEND that the broker holds.
async fn blocked_producer(broker: &TestBroker) -> Client {
    let mut p = broker.client().await;
    p.send_msg("/queue/small", &"a".repeat(200)).await;
    p.send_frame(
        "SEND",
        &[("destination", "/queue/small"), ("receipt", "blocked")],
        b"b",
    )
    .await;
    p.expect_no_frame(QUIET).await;
    p
}

/// Polls until the broker has `n` open connections, failing after [`TIMEOUT`].
async fn wait_for_open(broker: &TestBroker, n: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while broker.running.open_connections() != n {
        assert!(
            Instant::now() < deadline,
            "broker still has {} open connections, expected {n}",
            broker.running.open_connections()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_producer_is_reaped_when_its_socket_closes() {
    let broker = start(blocking_config()).await;
    let p = blocked_producer(&broker).await;
    assert_eq!(broker.running.open_connections(), 1);
    drop(p);
    wait_for_open(&broker, 0).await;
    // The address is still usable: the held message never went in, the first one is there.
    let mut c = broker.client().await;
    c.subscribe("/queue/small", "s", &[]).await;
    assert_eq!(c.expect_frame("MESSAGE").await.body.len(), 200);
    c.expect_no_frame(QUIET).await;
}

/// A client that half-closes after its last frames still gets their RECEIPTs when the frame
/// being held completes soon after: only a handler that stays stuck is given up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_client_still_gets_its_receipts() {
    let broker = start(blocking_config()).await;
    let mut p = blocked_producer(&broker).await;
    p.send_frame("DISCONNECT", &[("receipt", "bye")], b"").await;
    p.shutdown_write().await;
    // Room frees up shortly after the half-close.
    sleep(Duration::from_millis(300)).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/small", "s", &[]).await;
    assert_eq!(c.expect_frame("MESSAGE").await.body.len(), 200);
    let r = p.expect_frame("RECEIPT").await;
    assert_eq!(r.get("receipt-id"), Some("blocked"));
    let r = p.expect_frame("RECEIPT").await;
    assert_eq!(r.get("receipt-id"), Some("bye"));
    p.expect_eof().await;
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_blocked_producer() {
    let mut config = blocking_config();
    // Far beyond TIMEOUT: shutdown finishing within TIMEOUT proves it did not wait for it.
    config.broker.shutdown_grace_secs = 60;
    let broker = start(config).await;
    let mut p = blocked_producer(&broker).await;
    let shutdown = tokio::spawn(broker.running.shutdown());
    let e = p.expect_error_and_close().await;
    assert!(e.h("message").contains("shutting down"), "{e:?}");
    match timeout(TIMEOUT, shutdown).await {
        Ok(Ok(())) => {}
        other => panic!("shutdown did not finish: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_connection_ttl_is_artemis_sixty_seconds() {
    let config = Config::default();
    assert_eq!(config.acceptors[0].heartbeat.connection_ttl_ms, 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_is_dropped_after_ttl_and_its_unacked_message_redelivered() {
    let mut config = test_config();
    config.acceptors[0].heartbeat.connection_ttl_ms = 1000;
    let broker = start(config).await;
    let mut idle = broker.tcp().await;
    idle.write(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
        .await;
    idle.expect_frame("CONNECTED").await;
    idle.subscribe("/queue/ttl.held", "s", &[("ack", "client")])
        .await;
    // The other consumer keeps its connection alive with heart-beats.
    let mut other = broker.tcp().await;
    other
        .write(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:200,0\n\n\0")
        .await;
    other.expect_frame("CONNECTED").await;
    let mut p = broker.client().await;
    p.send_msg("/queue/ttl.held", "held").await;
    assert_eq!(idle.expect_frame("MESSAGE").await.text(), "held");
    other
        .subscribe("/queue/ttl.held", "s", &[("ack", "client")])
        .await;
    let beats = tokio::spawn(async move {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            other.write(b"\n").await;
            match other.next_frame(Duration::from_millis(150)).await {
                Ok(f) => return f,
                Err(ReadEnd::Timeout) if Instant::now() < deadline => continue,
                Err(e) => panic!("no redelivery: {e:?}"),
            }
        }
    });
    // The idle client never acks and never sends: the TTL closes it.
    let e = idle.expect_closed().await;
    if let Some(e) = e {
        assert!(e.h("message").contains("TTL"), "{e:?}");
    }
    let f = timeout(TIMEOUT + TIMEOUT, beats)
        .await
        .expect("bounded")
        .expect("task");
    assert_eq!(f.command, "MESSAGE", "{f:?}");
    assert_eq!(f.text(), "held");
    assert_eq!(f.get("redelivered"), Some("true"), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_frame_before_connect_is_refused_at_the_connect_limit() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    // 32 KiB of header: within every normal limit, far above max-connect-frame-size (8 KiB).
    let big = "x".repeat(32 * 1024);
    let mut bytes = b"CONNECT\naccept-version:1.2\nhost:localhost\n".to_vec();
    bytes.extend_from_slice(format!("pad:{big}\n\n\0").as_bytes());
    // The broker may close before all of it is written; that is the point.
    let _ = c.try_write(&bytes).await;
    let e = c.expect_frame("ERROR").await;
    assert!(
        e.h("message").contains("max-connect-frame-size"),
        "the ERROR must name the limit: {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_connect_the_normal_frame_limits_apply() {
    let broker = start_default().await;
    let mut p = broker.client().await;
    let body = "y".repeat(64 * 1024);
    p.send_with_receipt(
        "SEND",
        &[("destination", "/queue/big.after.connect")],
        body.as_bytes(),
        "big",
    )
    .await;
    let mut c = broker.client().await;
    c.subscribe("/queue/big.after.connect", "s", &[]).await;
    assert_eq!(c.expect_frame("MESSAGE").await.body.len(), body.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_frame_fits_the_connect_limit() {
    let mut config = test_config();
    config.acceptors[0].limits.max_connect_frame_size = 200;
    let broker = start(config).await;
    // A normal CONNECT is well under 200 bytes.
    let mut c = broker.client().await;
    c.send_msg("/queue/fits", "ok").await;
    let mut big = broker.tcp().await;
    let pad = "p".repeat(300);
    let _ = big
        .try_write(format!("CONNECT\naccept-version:1.2\npad:{pad}\n\n\0").as_bytes())
        .await;
    let e = big.expect_frame("ERROR").await;
    assert!(e.h("message").contains("200"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_trickled_byte_by_byte_is_dropped_after_the_frame_timeout() {
    let mut config = test_config();
    config.acceptors[0].limits.frame_timeout_ms = 500;
    let broker = start(config).await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0")
        .await;
    c.expect_frame("CONNECTED").await;
    // Every byte is a sign of life for the TTL, but the frame never completes in time.
    let frame = frame_bytes("SEND", &[("destination", "/queue/trickle")], &[b'z'; 200]);
    let deadline = Instant::now() + TIMEOUT;
    let mut closed = false;
    for byte in frame.iter() {
        if c.try_write(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        match c.next_frame(Duration::from_millis(100)).await {
            Err(ReadEnd::Timeout) => {}
            Ok(f) if f.command == "ERROR" => {
                assert!(f.h("message").contains("frame-timeout-ms"), "{f:?}");
                closed = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline, "still open after {TIMEOUT:?}");
    }
    assert!(closed, "the trickled frame was accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_between_frames_do_not_start_the_frame_timeout() {
    let mut config = test_config();
    config.acceptors[0].limits.frame_timeout_ms = 300;
    let broker = start(config).await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\naccept-version:1.2\nheart-beat:100,0\n\n\0")
        .await;
    c.expect_frame("CONNECTED").await;
    let until = Instant::now() + Duration::from_millis(900);
    while Instant::now() < until {
        c.write(b"\n").await;
        c.expect_no_frame(Duration::from_millis(100)).await;
    }
    c.send_msg("/queue/beating", "alive").await;
}

/// A client that stops reading is closed once a write to it stalls past `write-timeout-ms`,
/// and the messages it held go to another consumer instead of waiting on it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_closed_and_its_messages_move_on() {
    const N: usize = 300;
    let mut config = test_config();
    config.acceptors[0].limits.write_timeout_ms = 500;
    let broker = start(config).await;
    // Subscribes without a window and then never reads again.
    let mut stuck = broker.client().await;
    stuck
        .subscribe(
            "/queue/stall",
            "s",
            &[("ack", "client"), ("consumer-window-size", "-1")],
        )
        .await;
    let mut p = broker.client().await;
    let body = vec![b'x'; 64 * 1024];
    for i in 0..N {
        let n = i.to_string();
        p.send_frame("SEND", &[("destination", "/queue/stall"), ("n", &n)], &body)
            .await;
    }
    p.send_with_receipt(
        "SEND",
        &[("destination", "/queue/stall"), ("n", "end")],
        b"",
        "end",
    )
    .await;
    wait_for_open(&broker, 1).await;
    let mut other = broker.client().await;
    other.subscribe("/queue/stall", "o", &[]).await;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < N + 1 {
        let m = other.expect_frame("MESSAGE").await;
        seen.insert(m.h("n").to_string());
    }
    drop(stuck);
}
