//! Every protocol violation gets an ERROR frame naming the problem (with `receipt-id` when
//! the offending frame asked for a receipt), and then the broker closes the socket.

mod common;

use common::*;

fn small_limits_config() -> wrenmq::config::Config {
    let mut config = test_config();
    let l = &mut config.acceptors[0].limits;
    l.max_frame_size = 4096;
    l.max_body = 1024;
    l.max_header_line = 256;
    l.max_headers = 10;
    config
}

fn assert_message_mentions(e: &Frame, words: &[&str]) {
    let msg = e.h("message").to_lowercase();
    assert!(
        words.iter().any(|w| msg.contains(&w.to_lowercase())),
        "ERROR message should mention one of {words:?}: {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_without_colon() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.write(b"SEND\ndestination:/queue/bad\nthis line has no colon\n\nbody\0")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["colon"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_larger_than_limit_with_content_length() {
    let broker = start(small_limits_config()).await;
    let mut c = broker.client().await;
    let body = vec![b'z'; 2000];
    c.send_frame(
        "SEND",
        &[("destination", "/queue/big"), ("content-length", "2000")],
        &body,
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["limit", "too large", "exceeds"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_larger_than_limit_without_content_length() {
    let broker = start(small_limits_config()).await;
    let mut c = broker.client().await;
    let body = vec![b'z'; 2000];
    // The broker may refuse before the whole frame is written; ignore write errors.
    let _ = c
        .try_write(&frame_bytes(
            "SEND",
            &[("destination", "/queue/big")],
            &body,
        ))
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["limit", "too large", "exceeds"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_line_longer_than_limit() {
    let broker = start(small_limits_config()).await;
    let mut c = broker.client().await;
    let long = "v".repeat(1000);
    let _ = c
        .try_write(&frame_bytes(
            "SEND",
            &[("destination", "/queue/x"), ("x-long", &long)],
            b"",
        ))
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["limit", "too long", "longer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_headers() {
    let broker = start(small_limits_config()).await;
    let mut c = broker.client().await;
    let names: Vec<String> = (0..20).map(|i| format!("x-h{i}")).collect();
    let mut headers: Vec<(&str, &str)> = vec![("destination", "/queue/x")];
    headers.extend(names.iter().map(|n| (n.as_str(), "v")));
    let _ = c.try_write(&frame_bytes("SEND", &headers, b"")).await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["headers", "limit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.write(b"FROBNICATE\nreceipt:r\n\n\0").await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["FROBNICATE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowercase_command_is_unknown() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.write(b"send\ndestination:/queue/x\n\nbody\0").await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["send", "command"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_before_connect() {
    let broker = start_default().await;
    let mut c = broker.tcp().await;
    c.send_frame(
        "SEND",
        &[("destination", "/queue/early"), ("receipt", "early-1")],
        b"too soon",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["CONNECT"]);
    assert_eq!(e.get("receipt-id"), Some("early-1"), "{e:?}");
    // And the message was not routed.
    let mut s = broker.client().await;
    s.subscribe("/queue/early", "s", &[]).await;
    s.expect_no_frame(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_reusing_an_id() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/one", "dup", &[]).await;
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/two"),
            ("id", "dup"),
            ("receipt", "sub-2"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["dup"]);
    assert_eq!(e.get("receipt-id"), Some("sub-2"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_of_unknown_id() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/ackless", "s", &[("ack", "client-individual")])
        .await;
    c.send_frame("ACK", &[("id", "no-such-ack"), ("receipt", "ack-r")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["no-such-ack"]);
    assert_eq!(e.get("receipt-id"), Some("ack-r"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_of_well_formed_but_unknown_id() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.subscribe("/queue/ackless2", "s", &[("ack", "client-individual")])
        .await;
    c.send_frame("ACK", &[("id", "999999-1"), ("receipt", "ack-r")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["999999-1"]);
    assert_eq!(e.get("receipt-id"), Some("ack-r"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_without_id() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("NACK", &[("receipt", "n")], b"").await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["id"]);
    assert_eq!(e.get("receipt-id"), Some("n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_without_destination() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("SEND", &[("receipt", "nodest")], b"where to?")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["destination"]);
    assert_eq!(e.get("receipt-id"), Some("nodest"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_without_destination() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("SUBSCRIBE", &[("id", "s"), ("receipt", "nodest")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["destination"]);
    assert_eq!(e.get("receipt-id"), Some("nodest"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_without_id_in_1_2() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("SUBSCRIBE", &[("destination", "/queue/noid")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_bad_ack_mode() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/x"),
            ("id", "s"),
            ("ack", "sometimes"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["sometimes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_unknown_id() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("UNSUBSCRIBE", &[("id", "ghost"), ("receipt", "u")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["ghost"]);
    assert_eq!(e.get("receipt-id"), Some("u"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_may_not_send_server_frames() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame("MESSAGE", &[("destination", "/queue/x")], b"")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["MESSAGE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_escape_in_1_2_header() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.write(b"SEND\ndestination:/queue/x\nx-bad:tab\\there\n\nbody\0")
        .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["escape"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_persistent_header_value() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    c.send_frame(
        "SEND",
        &[
            ("destination", "/queue/x"),
            ("persistent", "maybe"),
            ("receipt", "p"),
        ],
        b"",
    )
    .await;
    let e = c.expect_error_and_close().await;
    assert_message_mentions(&e, &["persistent"]);
    assert_eq!(e.get("receipt-id"), Some("p"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_closes_even_with_more_frames_pipelined() {
    let broker = start_default().await;
    let mut c = broker.client().await;
    // An offending frame followed at once by valid ones: nothing after the ERROR is
    // processed, and the ERROR still reaches the client.
    let mut bytes = frame_bytes("SEND", &[("receipt", "bad")], b"no destination");
    bytes.extend(frame_bytes(
        "SEND",
        &[("destination", "/queue/after.error"), ("receipt", "good")],
        b"must not be routed",
    ));
    c.write(&bytes).await;
    let e = c.expect_error_and_close().await;
    assert_eq!(e.get("receipt-id"), Some("bad"), "{e:?}");
    let mut s = broker.client().await;
    s.subscribe("/queue/after.error", "s", &[]).await;
    s.expect_no_frame(QUIET).await;
}
