//! Durable subscriptions belong to their owner, with `config/secure.toml`'s roles: another user
//! may neither re-subscribe to one (with its client-id) nor consume from it by
//! `address::queue`, nor delete it; the owner reattaches; an administrator (`manage`) may
//! attach to and delete it; the owner survives a restart. And a client-id is unique among live
//! connections.

mod common;
#[path = "common/secure.rs"]
mod secure;

use common::{Client, QUIET, TIMEOUT, TestBroker, frame_bytes};
use secure::{eventually, secure_example, user};
use wrenmq::config::Config;

/// secure.toml with its example users (password `<name>-secret`) plus dan, a second user
/// with carol's role (consumer), so ownership rather than permissions is what is tested.
fn config() -> Config {
    let mut config = secure_example(None);
    config.users.push(user("dan", "dan-secret", &["consumer"]));
    config
}

async fn connect(b: &TestBroker, who: &str, client_id: Option<&str>) -> Client {
    let mut c = b.tcp().await;
    c.write(&connect_bytes(who, client_id)).await;
    c.expect_frame("CONNECTED").await;
    c
}

fn connect_bytes(who: &str, client_id: Option<&str>) -> Vec<u8> {
    let pw = format!("{who}-secret");
    let mut headers = vec![("accept-version", "1.2"), ("login", who), ("passcode", &pw)];
    if let Some(id) = client_id {
        headers.push(("client-id", id));
    }
    frame_bytes("CONNECT", &headers, b"")
}

/// Disconnects and waits until the broker has released the connection's client-id.
async fn leave(b: &TestBroker, c: Client, client_id: &str) {
    c.disconnect().await;
    let broker = b.running.broker.clone();
    assert!(
        eventually(TIMEOUT, || !broker.client_ids().in_use(client_id)).await,
        "client-id {client_id} released"
    );
}

async fn durable_subscribe(c: &mut Client, id: &str, name: &str) {
    c.send_frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/events.audit"),
            ("id", id),
            ("durable-subscription-name", name),
            ("receipt", "sub"),
        ],
        b"",
    )
    .await;
    c.expect_frame("RECEIPT").await;
}

async fn durable_unsubscribe(c: &mut Client, id: &str, name: &str) {
    c.send_frame(
        "UNSUBSCRIBE",
        &[
            ("id", id),
            ("durable-subscription-name", name),
            ("receipt", "unsub"),
        ],
        b"",
    )
    .await;
    c.expect_frame("RECEIPT").await;
}

async fn refused(c: &mut Client, command: &str, headers: &[(&str, &str)]) -> String {
    c.send_frame(command, headers, b"").await;
    c.expect_error_and_close().await.h("message").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_subscription_belongs_to_its_owner() {
    let b = common::start(config()).await;
    let mut carol = connect(&b, "carol", Some("carol-app")).await;
    durable_subscribe(&mut carol, "1", "s").await;
    leave(&b, carol, "carol-app").await;
    let mut bob = connect(&b, "bob", None).await;
    bob.send_msg("/topic/events.audit", "for carol").await;
    let queue = b.running.broker.queue("carol-app.s").expect("kept");
    let owner = queue.owner.clone().expect("owned");
    assert_eq!(owner.user.as_deref(), Some("carol"));
    assert_eq!(owner.client_id.as_deref(), Some("carol-app"));

    // dan, with carol's role and her (now free) client-id, may not take it over...
    let not_owner = "durable subscription 'carol-app.s' belongs to another user";
    let mut dan = connect(&b, "dan", Some("carol-app")).await;
    let m = refused(
        &mut dan,
        "SUBSCRIBE",
        &[
            ("destination", "/topic/events.audit"),
            ("id", "1"),
            ("durable-subscription-name", "s"),
        ],
    )
    .await;
    assert_eq!(m, not_owner);
    // ... nor read it by its fully qualified name, with either prefix or none...
    for dest in [
        "/topic/events.audit::carol-app.s",
        "/queue/events.audit::carol-app.s",
        "events.audit::carol-app.s",
    ] {
        let mut dan = connect(&b, "dan", None).await;
        let m = refused(&mut dan, "SUBSCRIBE", &[("destination", dest), ("id", "1")]).await;
        assert_eq!(m, not_owner, "{dest}");
    }
    // ... nor delete it: an UNSUBSCRIBE naming it deletes only his own, and the core refuses
    // him too.
    let mut dan = connect(&b, "dan", Some("carol-app")).await;
    dan.subscribe("/topic/events.audit", "1", &[]).await;
    durable_unsubscribe(&mut dan, "1", "s").await;
    let dan_access = wrenmq::security::Access::new(
        b.running.security.clone(),
        wrenmq::security::Principal::user("dan", vec!["consumer".into()]),
    );
    let dan_owner = wrenmq::broker::Owner {
        user: Some("dan".into()),
        client_id: Some("carol-app".into()),
    };
    assert_eq!(
        b.running
            .broker
            .delete_subscription("carol-app.s", &dan_owner, &dan_access)
            .unwrap_err()
            .to_string(),
        not_owner
    );
    leave(&b, dan, "carol-app").await;

    // carol reattaches and gets what was kept for her, then deletes it.
    let mut carol = connect(&b, "carol", Some("carol-app")).await;
    durable_subscribe(&mut carol, "1", "s").await;
    assert_eq!(carol.expect_frame("MESSAGE").await.text(), "for carol");
    durable_unsubscribe(&mut carol, "1", "s").await;
    assert!(b.running.broker.queue("carol-app.s").is_none());

    // An administrator (manage on the address) may attach to someone's subscription and
    // delete it.
    durable_subscribe(&mut carol, "2", "t").await;
    leave(&b, carol, "carol-app").await;
    let mut alice = connect(&b, "alice", Some("carol-app")).await;
    durable_subscribe(&mut alice, "1", "t").await;
    durable_unsubscribe(&mut alice, "1", "t").await;
    assert!(b.running.broker.queue("carol-app.t").is_none());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let persistent = || {
        let mut c = config();
        c.journal.enabled = true;
        c.journal.data_dir = dir.path().to_path_buf();
        c
    };
    let b = common::start(persistent()).await;
    let mut carol = connect(&b, "carol", Some("carol-app")).await;
    durable_subscribe(&mut carol, "1", "s").await;
    carol.disconnect().await;
    b.shutdown().await;

    let b = common::start(persistent()).await;
    let owner = b
        .running
        .broker
        .queue("carol-app.s")
        .and_then(|q| q.owner.clone())
        .expect("recovered with its owner");
    assert_eq!(owner.user.as_deref(), Some("carol"));
    let mut dan = connect(&b, "dan", Some("carol-app")).await;
    let m = refused(
        &mut dan,
        "SUBSCRIBE",
        &[
            ("destination", "/topic/events.audit"),
            ("id", "1"),
            ("durable-subscription-name", "s"),
        ],
    )
    .await;
    assert_eq!(
        m,
        "durable subscription 'carol-app.s' belongs to another user"
    );
    let broker = b.running.broker.clone();
    assert!(eventually(TIMEOUT, || !broker.client_ids().in_use("carol-app")).await);
    let mut carol = connect(&b, "carol", Some("carol-app")).await;
    durable_subscribe(&mut carol, "1", "s").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_is_unique_among_live_connections() {
    let b = common::start(config()).await;
    let mut first = connect(&b, "carol", Some("app")).await;
    // Any user, even the same one, is refused the live id, and the connection closes.
    for who in ["carol", "dan"] {
        let mut second = b.tcp().await;
        second.write(&connect_bytes(who, Some("app"))).await;
        let e = second.expect_error_and_close().await;
        assert_eq!(
            e.h("message"),
            "client-id 'app' is already in use by another connection"
        );
    }
    // The first is unaffected.
    first
        .send_frame("BEGIN", &[("transaction", "t"), ("receipt", "r")], b"")
        .await;
    first.expect_frame("RECEIPT").await;
    // Free again once the first is gone, whether it said DISCONNECT...
    leave(&b, first, "app").await;
    let again = connect(&b, "dan", Some("app")).await;
    // ... or just dropped its socket.
    drop(again);
    let broker = b.running.broker.clone();
    assert!(eventually(TIMEOUT, || !broker.client_ids().in_use("app")).await);
    let mut last = connect(&b, "carol", Some("app")).await;
    last.expect_no_frame(QUIET).await;
    // Connections without a client-id never conflict.
    for _ in 0..2 {
        connect(&b, "dan", None).await;
    }
    b.shutdown().await;
}
