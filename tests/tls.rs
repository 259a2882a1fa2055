//! TLS acceptors with a test PKI made by rcgen: STOMP over TLS with a password, a client
//! certificate naming the user, a plain-TCP client refused on the TLS port, and wss.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use wrenmq::config::{AcceptorConfig, AcceptorProtocol, Config};

use common::{TIMEOUT, frame_bytes};
use secure::{
    ALL, TestPki, connect_frame, grant, header, read_frame, secured_config, tls_connect, write_all,
};

fn tls_acceptor(pki: &TestPki, protocol: AcceptorProtocol, name: &str) -> AcceptorConfig {
    let mut a = AcceptorConfig::default_for(protocol);
    a.name = name.to_string();
    a.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    a.tls = Some(pki.tls_config(true));
    a
}

fn config(pki: &TestPki) -> Config {
    let mut config = secured_config(vec![
        grant("#", &ALL, &["admin"]),
        grant(
            "orders.#",
            &["consume", "create-address", "create-durable-queue"],
            &["consumer"],
        ),
    ]);
    config
        .acceptors
        .push(tls_acceptor(pki, AcceptorProtocol::Stomp, "stomp-tls"));
    config
        .acceptors
        .push(tls_acceptor(pki, AcceptorProtocol::Websocket, "wss"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_over_tls_with_a_password() {
    let pki = TestPki::new();
    let b = common::start(config(&pki)).await;
    let addr = b.running.addr_of("stomp-tls").expect("tls acceptor");
    let mut s = tls_connect(addr, pki.client_config(None))
        .await
        .expect("TLS handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(Some(("admin", "admin-pw")))).await;
    let f = read_frame(&mut s, &mut buf).await.expect("CONNECTED");
    assert_eq!(f.0, "CONNECTED", "{f:?}");
    write_all(
        &mut s,
        &frame_bytes(
            "SUBSCRIBE",
            &[("destination", "/queue/tls"), ("id", "1"), ("receipt", "s")],
            b"",
        ),
    )
    .await;
    assert_eq!(
        read_frame(&mut s, &mut buf).await.expect("RECEIPT").0,
        "RECEIPT"
    );
    write_all(
        &mut s,
        &frame_bytes("SEND", &[("destination", "/queue/tls")], b"over tls"),
    )
    .await;
    let m = read_frame(&mut s, &mut buf).await.expect("MESSAGE");
    assert_eq!((m.0.as_str(), m.2.as_str()), ("MESSAGE", "over tls"));

    // A wrong password over TLS is refused like over TCP.
    let mut s = tls_connect(addr, pki.client_config(None))
        .await
        .expect("TLS handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(Some(("admin", "wrong")))).await;
    let e = read_frame(&mut s, &mut buf).await.expect("ERROR");
    assert_eq!(
        (e.0.as_str(), header(&e, "message")),
        ("ERROR", Some("login failed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_names_the_user() {
    let pki = TestPki::new();
    let b = common::start(config(&pki)).await;
    let addr = b.running.addr_of("stomp-tls").expect("tls acceptor");
    let mut s = tls_connect(addr, pki.client_config(Some("carol")))
        .await
        .expect("TLS handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(None)).await;
    assert_eq!(
        read_frame(&mut s, &mut buf).await.expect("CONNECTED").0,
        "CONNECTED"
    );
    // Acting as carol: consume is allowed on orders.#, send is not.
    write_all(
        &mut s,
        &frame_bytes(
            "SUBSCRIBE",
            &[
                ("destination", "/queue/orders.tls"),
                ("id", "1"),
                ("receipt", "s"),
            ],
            b"",
        ),
    )
    .await;
    assert_eq!(
        read_frame(&mut s, &mut buf).await.expect("RECEIPT").0,
        "RECEIPT"
    );
    write_all(
        &mut s,
        &frame_bytes("SEND", &[("destination", "/queue/orders.tls")], b"x"),
    )
    .await;
    let e = read_frame(&mut s, &mut buf).await.expect("ERROR");
    assert_eq!(
        header(&e, "message"),
        Some("user 'carol' lacks permission 'send' on address 'orders.tls'")
    );

    // A certificate naming no known user is refused.
    let mut s = tls_connect(addr, pki.client_config(Some("nobody")))
        .await
        .expect("TLS handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(None)).await;
    let e = read_frame(&mut s, &mut buf).await.expect("ERROR");
    assert_eq!(header(&e, "message"), Some("login failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_on_the_tls_port_is_closed() {
    let pki = TestPki::new();
    let b = common::start(config(&pki)).await;
    let addr = b.running.addr_of("stomp-tls").expect("tls acceptor");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    write_all(&mut tcp, &connect_frame(Some(("admin", "admin-pw")))).await;
    let mut chunk = [0u8; 1024];
    let mut got = Vec::new();
    // Closed (EOF or reset) well before the test timeout: never a hang, never CONNECTED.
    let closed = tokio::time::timeout(TIMEOUT, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the broker kept a plain-TCP client open on the TLS port"
    );
    assert!(!String::from_utf8_lossy(&got).contains("CONNECTED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_tls() {
    let pki = TestPki::new();
    let b = common::start(config(&pki)).await;
    let addr = b.running.addr_of("wss").expect("wss acceptor");
    let tls = tls_connect(addr, pki.client_config(None))
        .await
        .expect("TLS handshake");
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("wss://127.0.0.1:{}/stomp", addr.port()), tls)
            .await
            .expect("websocket upgrade");
    ws.send(Message::binary(connect_frame(Some(("admin", "admin-pw")))))
        .await
        .expect("send");
    let reply = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("reply in time");
    let data = reply.expect("a message").expect("no error").into_data();
    assert!(
        data.starts_with(b"CONNECTED\n"),
        "{:?}",
        String::from_utf8_lossy(&data)
    );
}
