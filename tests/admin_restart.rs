//! What an operator creates through the admin API is kept like what a client creates: a
//! durable queue made with `PUT /api/v1/queues/{q}` and the persistent messages sent to it
//! through the API come back after the broker is killed (the real binary, SIGKILL).

mod durable_common;
#[path = "common/http.rs"]
mod http;

use durable_common::Broker;
use http::request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_made_durable_queue_and_its_messages_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = Broker::start(&data);
    let admin = broker.admin_addr();
    let made = request(
        admin,
        "PUT",
        "/api/v1/queues/ledger",
        &[],
        Some(r#"{"address":"ledger","routing_type":"anycast","durable":true}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    for i in 0..3 {
        let sent = request(
            admin,
            "POST",
            "/api/v1/addresses/ledger/messages",
            &[],
            Some(&format!(r#"{{"body":"entry-{i}","persistent":true}}"#)),
        )
        .await;
        assert_eq!(sent.status, 200, "{}", sent.text());
    }
    broker.kill();
    let broker = Broker::start(&data);
    let admin = broker.admin_addr();
    let q = request(admin, "GET", "/api/v1/queues/ledger", &[], None).await;
    assert_eq!(q.status, 200, "{}", q.text());
    assert_eq!(q.json()["messages_ready"], 3);
    let browsed = request(admin, "GET", "/api/v1/queues/ledger/messages", &[], None).await;
    let bodies: Vec<String> = browsed.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["body_preview"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(bodies, vec!["entry-0", "entry-1", "entry-2"]);
    broker.kill();
}
