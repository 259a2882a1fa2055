//! Server frames end with NUL and a newline by default (`frame-eol`), as RabbitMQ and ActiveMQ
//! send them: clients such as PHP's PECL stomp read one byte past the NUL. With
//! `frame-eol = false` frames end at the NUL. These tests check the exact bytes on the wire.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Writes `request`, then returns every byte that arrives until the line has been quiet for
/// [`QUIET`] (or closed), bounded by [`TIMEOUT`].
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    stream.write_all(request).await.expect("write");
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let wait = if out.is_empty() { TIMEOUT } else { QUIET };
        match timeout(wait, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
        assert!(Instant::now() < deadline, "the broker kept talking");
    }
    out
}

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_frame_ends_with_nul_and_newline() {
    let broker = start_default().await;
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    let connected = exchange(&mut s, CONNECT).await;
    assert!(connected.starts_with(b"CONNECTED\n"), "{connected:?}");
    assert!(connected.ends_with(b"\n\n\0\n"), "{connected:?}");
    assert_eq!(connected.iter().filter(|b| **b == 0).count(), 1);

    let receipt = exchange(
        &mut s,
        b"SUBSCRIBE\ndestination:/queue/eol\nid:s\nreceipt:r1\n\n\0",
    )
    .await;
    assert_eq!(receipt, b"RECEIPT\nreceipt-id:r1\n\n\0\n");

    let message = exchange(&mut s, b"SEND\ndestination:/queue/eol\n\nhi\0").await;
    assert!(message.starts_with(b"MESSAGE\n"), "{message:?}");
    assert!(message.ends_with(b"\n\nhi\0\n"), "{message:?}");

    // A body large enough to be written from its shared buffer takes the same ending.
    let big = vec![b'b'; 64 * 1024];
    let mut send = b"SEND\ndestination:/queue/eol\n\n".to_vec();
    send.extend_from_slice(&big);
    send.push(0);
    let message = exchange(&mut s, &send).await;
    assert!(message.starts_with(b"MESSAGE\n"), "{:?}", &message[..64]);
    assert!(
        message.ends_with(b"bb\0\n"),
        "{:?}",
        &message[message.len() - 8..]
    );

    let error = exchange(&mut s, b"BOGUS\n\n\0").await;
    assert!(error.starts_with(b"ERROR\n"), "{error:?}");
    assert!(error.ends_with(b"\0\n"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_eol_false_ends_frames_at_the_nul() {
    let mut config = test_config();
    config.acceptors[0].frame_eol = false;
    let broker = start(config).await;
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    let connected = exchange(&mut s, CONNECT).await;
    assert!(connected.starts_with(b"CONNECTED\n"), "{connected:?}");
    assert!(connected.ends_with(b"\n\n\0"), "{connected:?}");
    let receipt = exchange(
        &mut s,
        b"SUBSCRIBE\ndestination:/queue/eol\nid:s\nreceipt:r1\n\n\0",
    )
    .await;
    assert_eq!(receipt, b"RECEIPT\nreceipt-id:r1\n\n\0");
    let message = exchange(&mut s, b"SEND\ndestination:/queue/eol\n\nhi\0").await;
    assert!(message.ends_with(b"\n\nhi\0"), "{message:?}");
    let error = exchange(&mut s, b"BOGUS\n\n\0").await;
    assert!(error.starts_with(b"ERROR\n"), "{error:?}");
    assert!(error.ends_with(b"\0"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_one_byte_past_the_nul_loses_no_frame() {
    // What PECL stomp does: after each frame's NUL it consumes one more byte. Two frames
    // written back to back must both survive that.
    let broker = start_default().await;
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    exchange(&mut s, CONNECT).await;
    exchange(
        &mut s,
        b"SUBSCRIBE\ndestination:/queue/eol2\nid:s\nreceipt:r\n\n\0",
    )
    .await;
    let both = exchange(
        &mut s,
        b"SEND\ndestination:/queue/eol2\n\none\0SEND\ndestination:/queue/eol2\n\ntwo\0",
    )
    .await;
    let mut rest = &both[..];
    let mut bodies = Vec::new();
    while let Some(nul) = rest.iter().position(|b| *b == 0) {
        let frame = &rest[..nul];
        let body_at = frame.windows(2).position(|w| w == b"\n\n").expect("head") + 2;
        assert!(frame.starts_with(b"MESSAGE\n"), "{frame:?}");
        bodies.push(String::from_utf8_lossy(&frame[body_at..]).into_owned());
        // Skip the NUL and the one byte after it, as that client does.
        rest = rest.get(nul + 2..).unwrap_or_default();
    }
    assert_eq!(bodies, ["one", "two"]);
}
