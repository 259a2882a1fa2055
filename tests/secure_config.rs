//! The shipped `config/secure.toml`: as shipped it is refused (no usable example password);
//! with hashes filled in, its certificate paths pointed at test-generated certificates and its
//! ports at 0, anonymous and wrong-password connections are refused, the example users log
//! in, and TLS is served.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::path::Path;

use common::Client;
use secure::{TestPki, connect_frame, header, read_frame, secure_example, tls_connect, write_all};

/// The shipped file as it is: no example user has a usable password, and the refusal says
/// how to make one.
#[test]
fn secure_example_ships_no_usable_password() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secure.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        !text.contains("password-hash = \"$"),
        "no hash ships in secure.toml"
    );
    let err = wrenmq::config::load(&path).expect_err("placeholders are refused");
    let err = err.to_string();
    for i in 0..3 {
        assert!(
            err.contains(&format!("users[{i}].password-hash: is not a PHC string")),
            "{err}"
        );
    }
    assert!(err.contains("wrenmq user hash"), "{err}");
    assert!(err.contains("secure.toml"), "{err}");
}

fn secure_config(pki: &TestPki) -> wrenmq::config::Config {
    secure_example(Some(pki))
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
