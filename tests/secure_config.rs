//! The shipped `config/secure.toml`, started with its certificate paths pointed at
//! test-generated certificates and its ports at 0: anonymous and wrong-password connections
//! are refused, the documented example users log in, and TLS is served.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::net::SocketAddr;
use std::path::Path;

use common::Client;
use secure::{TestPki, connect_frame, header, read_frame, tls_connect, write_all};

fn secure_config(pki: &TestPki) -> wrenmq::config::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secure.toml");
    let mut config = wrenmq::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.security.allow_anonymous, Some(false));
    config.journal.enabled = false;
    for acceptor in &mut config.acceptors {
        acceptor.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        if let Some(tls) = &mut acceptor.tls {
            tls.cert = pki.server_cert.clone();
            tls.key = pki.server_key.clone();
            tls.client_ca = Some(pki.ca.clone());
        }
    }
    config.validate().expect("still valid");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_example_refuses_anonymous_and_wrong_passwords_and_serves_tls() {
    let pki = TestPki::new();
    let b = common::start(secure_config(&pki)).await;

    for credentials in [
        None,
        Some(("bob", "wrong")),
        Some(("mallory", "bob-secret")),
    ] {
        let mut c = b.tcp().await;
        c.write(&connect_frame(credentials)).await;
        let e = c.expect_error_and_close().await;
        assert_eq!(e.h("message"), "login failed", "{credentials:?}");
    }

    // The documented example users and permissions.
    let mut carol = Client::tcp(b.addr).await;
    carol
        .write(&connect_frame(Some(("carol", "carol-secret"))))
        .await;
    carol.expect_frame("CONNECTED").await;
    let mut bob = Client::tcp(b.addr).await;
    bob.write(&connect_frame(Some(("bob", "bob-secret")))).await;
    bob.expect_frame("CONNECTED").await;
    bob.send_msg("/queue/orders.new", "o").await;
    carol.subscribe("/queue/orders.new", "1", &[]).await;
    assert_eq!(carol.expect_frame("MESSAGE").await.text(), "o");

    // TLS: alice with a password, carol with her certificate; plain anonymous still refused.
    let tls_addr = b.running.addr_of("stomp-ssl").expect("TLS acceptor");
    let mut s = tls_connect(tls_addr, pki.client_config(None))
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(Some(("alice", "alice-secret")))).await;
    assert_eq!(
        read_frame(&mut s, &mut buf).await.expect("CONNECTED").0,
        "CONNECTED"
    );

    let mut s = tls_connect(tls_addr, pki.client_config(Some("carol")))
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(None)).await;
    assert_eq!(
        read_frame(&mut s, &mut buf).await.expect("CONNECTED").0,
        "CONNECTED"
    );

    let mut s = tls_connect(tls_addr, pki.client_config(None))
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    write_all(&mut s, &connect_frame(None)).await;
    let e = read_frame(&mut s, &mut buf).await.expect("ERROR");
    assert_eq!(header(&e, "message"), Some("login failed"));
}
