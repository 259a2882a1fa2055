//! CONNECT/STOMP handshake, version negotiation, CONNECTED headers and graceful shutdown.

mod common;

use common::*;

fn assert_connected_headers(f: &Frame, version: &str) {
    assert_eq!(f.command, "CONNECTED");
    assert_eq!(f.get("version"), Some(version), "{f:?}");
    assert!(
        f.get("server").is_some_and(|s| s.starts_with("WrenMQ/")),
        "server header should name WrenMQ: {f:?}"
    );
    assert!(
        f.get("session").is_some_and(|s| !s.is_empty()),
        "session header missing: {f:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_negotiates_highest_common_version() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:localhost\n\n\0")
        .await;
    let f = c.expect_frame("CONNECTED").await;
    assert_connected_headers(&f, "1.2");
    let hb = f.h("heart-beat");
    let (a, b) = hb.split_once(',').expect("heart-beat is two numbers");
    a.parse::<u64>().expect("sx is a number");
    b.parse::<u64>().expect("sy is a number");
    // The session is usable.
    c.send_msg("/queue/connect.ok", "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_frame_connects_like_connect() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.write(b"STOMP\naccept-version:1.1,1.2\nhost:localhost\n\n\0")
        .await;
    let f = c.expect_frame("CONNECTED").await;
    assert_connected_headers(&f, "1.2");
    assert!(f.get("heart-beat").is_some(), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_version_1_1_only_gives_1_1() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\naccept-version:1.1\nhost:localhost\n\n\0")
        .await;
    let f = c.expect_frame("CONNECTED").await;
    assert_connected_headers(&f, "1.1");
    assert!(f.get("heart-beat").is_some(), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accept_version_means_1_0() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\nlogin:guest\npasscode:guest\n\n\0").await;
    let f = c.expect_frame("CONNECTED").await;
    assert_connected_headers(&f, "1.0");
    c.version = Ver::V10;
    c.send_msg("/queue/connect.v10", "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_versions_get_error_then_close() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.write(b"CONNECT\naccept-version:2.0,3.1\nhost:localhost\n\n\0")
        .await;
    let e = c.expect_error_and_close().await;
    let msg = e.h("message");
    assert!(
        msg.contains("version") && msg.contains("2.0,3.1"),
        "ERROR should name the refused versions: {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_is_refused() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.write(b"CONNECT\naccept-version:1.2\nhost:localhost\nreceipt:again\n\n\0")
        .await;
    let e = c.expect_error_and_close().await;
    assert!(e.h("message").contains("CONNECT"), "{e:?}");
    assert_eq!(e.get("receipt-id"), Some("again"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_gets_its_own_session_id() {
    let broker = start_default().await;
    let mut a = broker.tcp().await;
    let mut b = broker.tcp().await;
    let fa = a.connect_12().await;
    let fb = b.connect_12().await;
    assert_ne!(fa.h("session"), fb.h("session"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_error_and_closes() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/shutdown", "s1", &[]).await;
    let mut idle = broker.client().await;
    let shutdown = tokio::spawn(broker.shutdown());
    let e = c.expect_error_and_close().await;
    assert!(
        e.h("message").contains("shutting down"),
        "ERROR should say the broker is shutting down: {e:?}"
    );
    let e2 = idle.expect_error_and_close().await;
    assert!(e2.h("message").contains("shutting down"), "{e2:?}");
    tokio::time::timeout(TIMEOUT, shutdown)
        .await
        .expect("shutdown completes once clients are gone")
        .expect("shutdown task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_connections() {
    let broker = start_default().await;
    let addr = broker.addr;
    broker.shutdown().await;
    // Either the connect is refused outright, or the socket never says CONNECTED.
    if let Ok(mut c) = Client::try_tcp(addr).await {
        let _ = c
            .try_write(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
            .await;
        if let Ok(f) = c.next_frame(QUIET * 3).await {
            assert_ne!(
                f.command, "CONNECTED",
                "a stopped broker accepted a connection"
            );
        }
    }
}
