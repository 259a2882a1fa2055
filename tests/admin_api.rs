//! The admin HTTP API against a running broker, over real sockets: every endpoint, the list
//! envelope and cursor paging under churn, browse without consuming, purge, move and retry,
//! closing a connection with a reason, and the auth refusals.

mod common;
#[path = "common/http.rs"]
mod http;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TIMEOUT, TestBroker, start, test_config};
use http::{get_json, request};
use serde_json::Value;

fn admin(b: &TestBroker) -> SocketAddr {
    b.running.admin_addr.expect("the admin listener runs")
}

async fn send_n(b: &TestBroker, dest: &str, n: usize) {
    let mut p = b.client().await;
    for i in 0..n {
        p.send_msg(dest, &format!("m{i}")).await;
    }
    p.disconnect().await;
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_overview_and_errors() {
    let b = start(test_config()).await;
    let a = admin(&b);
    assert_eq!(get_json(a, "/healthz").await["status"], "ok");
    let ready = get_json(a, "/readyz").await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(
        ready["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["name"] == "disk_alarm")
    );
    send_n(&b, "/queue/ov", 3).await;
    let o = get_json(a, "/api/v1/overview").await;
    assert_eq!(o["totals"]["messages_ready"], 3, "{o}");
    assert_eq!(o["totals"]["messages_received"], 3, "{o}");
    assert_eq!(o["listeners"][0]["protocol"], "stomp");
    let missing = request(a, "GET", "/api/v1/nothing-here", &[], None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");
    let q404 = request(a, "GET", "/api/v1/queues/nope", &[], None).await;
    assert_eq!(q404.status, 404);
    assert!(
        q404.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("nope")
    );
    // A broker without [cluster] is the only node there is: it serves clients, so a load
    // balancer's leader check passes; there is no cluster to show.
    let lead = request(a, "GET", "/cluster/leader", &[], None).await;
    assert_eq!(lead.status, 200, "{}", lead.text());
    assert_eq!(lead.json()["cluster"], false);
    assert_eq!(lead.json()["leading"], true);
    let alone = request(a, "GET", "/api/v1/cluster", &[], None).await;
    assert_eq!(alone.status, 404, "{}", alone.text());
    assert!(
        alone.text().contains("no [cluster] section"),
        "{}",
        alone.text()
    );
    let openapi = get_json(a, "/api/v1/openapi.json").await;
    assert!(openapi["paths"]["/api/v1/queues/{name}/messages"].is_object());
    // The security headers every answer carries.
    let page = request(a, "GET", "/", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("WrenMQ console"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'self'"))
    );
    b.shutdown().await;
}

/// Parses the text exposition into (name{labels}, value) samples, failing on any line that is
/// neither a comment, `# EOF` nor a sample.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line: series value");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n.to_string(), l.trim_end_matches('}').to_string()),
            None => (series.to_string(), String::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name}"
        );
        out.push((name, labels, v));
    }
    out
}

fn sample(s: &[(String, String, f64)], name: &str, label: &str) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| n == name && l.contains(label))
        .map(|(_, _, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_shows_queue_depth_after_known_sends() {
    let b = start(test_config()).await;
    let a = admin(&b);
    send_n(&b, "/queue/metered", 7).await;
    send_n(&b, "/queue/other", 2).await;
    let m = request(a, "GET", "/metrics", &[], None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.contains("openmetrics"))
    );
    let s = samples(&m.text());
    assert_eq!(
        sample(&s, "wrenmq_queue_messages_ready", "queue=\"metered\""),
        Some(7.0)
    );
    assert_eq!(
        sample(
            &s,
            "wrenmq_queue_messages_enqueued_total",
            "queue=\"metered\""
        ),
        Some(7.0)
    );
    assert_eq!(sample(&s, "wrenmq_messages_received_total", ""), Some(9.0));
    assert!(
        sample(&s, "wrenmq_connections_opened_total", "transport=\"tcp\"").unwrap_or(0.0) >= 2.0
    );
    assert!(sample(&s, "wrenmq_process_resident_memory_bytes", "").unwrap_or(0.0) > 0.0);
    assert!(
        sample(
            &s,
            "wrenmq_queue_head_message_timestamp_seconds",
            "queue=\"metered\""
        )
        .is_some_and(|t| t > 1.6e9)
    );
    // Consume them all: the gauge follows.
    let mut c = b.client().await;
    c.subscribe("/queue/metered", "s", &[]).await;
    c.expect_messages(7).await;
    let mut ready = None;
    for _ in 0..50 {
        let s = samples(&request(a, "GET", "/metrics", &[], None).await.text());
        ready = sample(&s, "wrenmq_queue_messages_ready", "queue=\"metered\"");
        let acked = sample(
            &s,
            "wrenmq_queue_messages_acknowledged_total",
            "queue=\"metered\"",
        );
        if ready == Some(0.0) && acked == Some(7.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, Some(0.0));
    // A RECEIPT and an ERROR are counted, the ERROR by why.
    let mut r = b.client().await;
    r.send_with_receipt("SEND", &[("destination", "/queue/receipted")], b"x", "rc")
        .await;
    r.send_frame("NOSUCHCOMMAND", &[], b"").await;
    r.expect_error_and_close().await;
    let mut errors = None;
    for _ in 0..50 {
        let s = samples(&request(a, "GET", "/metrics", &[], None).await.text());
        errors = sample(&s, "wrenmq_errors_sent_total", "kind=\"error\"");
        assert!(sample(&s, "wrenmq_receipts_sent_total", "").unwrap_or(0.0) >= 1.0);
        if errors == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(errors, Some(1.0));
    // ?queue= keeps only the matching queues' series.
    let only = samples(
        &request(a, "GET", "/metrics?queue=other", &[], None)
            .await
            .text(),
    );
    assert!(sample(&only, "wrenmq_queue_messages_ready", "queue=\"metered\"").is_none());
    assert_eq!(
        sample(&only, "wrenmq_queue_messages_ready", "queue=\"other\""),
        Some(2.0)
    );
    // Per-object series name the connection.
    let per = samples(
        &request(a, "GET", "/metrics/per-object", &[], None)
            .await
            .text(),
    );
    assert!(
        per.iter().any(
            |(n, l, _)| n == "wrenmq_subscription_in_flight" && l.contains("queue=\"metered\"")
        )
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_journal_group_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config();
    config.journal.enabled = true;
    config.journal.data_dir = dir.path().join("data");
    let b = start(config).await;
    let a = admin(&b);
    let mut p = b.client().await;
    for i in 0..5 {
        p.send_with_receipt(
            "SEND",
            &[("destination", "/queue/kept"), ("persistent", "true")],
            format!("p{i}").as_bytes(),
            &format!("r{i}"),
        )
        .await;
    }
    let s = samples(&request(a, "GET", "/metrics", &[], None).await.text());
    let commits = sample(&s, "wrenmq_journal_commits_total", "").expect("commits");
    assert!(commits >= 1.0, "{commits}");
    let count = sample(&s, "wrenmq_journal_commit_seconds_count", "").expect("histogram count");
    assert_eq!(count, commits, "one observation per commit");
    let inf = sample(&s, "wrenmq_journal_commit_seconds_bucket", "le=\"+Inf\"").expect("+Inf");
    assert_eq!(inf, commits);
    assert!(sample(&s, "wrenmq_journal_size_bytes", "").unwrap_or(0.0) > 0.0);
    assert!(sample(&s, "wrenmq_disk_free_bytes", "").unwrap_or(0.0) > 0.0);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_a_cursor_without_skipping_or_repeating_under_churn() {
    let b = start(test_config()).await;
    let a = admin(&b);
    for i in 0..25 {
        let r = request(
            a,
            "PUT",
            &format!("/api/v1/queues/q{i:02}"),
            &[],
            Some(r#"{"routing_type":"anycast"}"#),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/queues?limit=10&name=q&cursor={c}"),
            None => "/api/v1/queues?limit=10&name=q".to_string(),
        };
        let page = get_json(a, &path).await;
        assert!(page["total"].as_u64().is_some() && page["filtered"].as_u64().is_some());
        seen.extend(names(&page));
        pages += 1;
        // Churn between pages: a queue before the cursor goes, one after it comes.
        if pages == 1 {
            let del = request(a, "DELETE", "/api/v1/queues/q00", &[], None).await;
            assert_eq!(del.status, 204);
            let add = request(a, "PUT", "/api/v1/queues/q99", &[], Some("{}")).await;
            assert_eq!(add.status, 201);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    let mut expected: Vec<String> = (0..25).map(|i| format!("q{i:02}")).collect();
    expected.push("q99".into());
    assert_eq!(seen, expected, "every queue once, in order");
    // Sorting by a figure, descending, and a regex filter.
    send_n(&b, "/queue/q07", 3).await;
    let top = get_json(a, "/api/v1/queues?sort=messages&order=desc&limit=1").await;
    assert_eq!(names(&top), vec!["q07"]);
    let re = get_json(a, "/api/v1/queues?name_regex=%5Eq1%5B0-2%5D%24").await;
    assert_eq!(names(&re), vec!["q10", "q11", "q12"]);
    let bad = request(a, "GET", "/api/v1/queues?name_regex=%28", &[], None).await;
    assert_eq!(bad.status, 400);
    let bad_cursor = request(a, "GET", "/api/v1/queues?cursor=zzz", &[], None).await;
    assert_eq!(bad_cursor.status, 400);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_reads_without_consuming_and_purge_delete_remove() {
    let b = start(test_config()).await;
    let a = admin(&b);
    let mut p = b.client().await;
    for i in 0..30 {
        let color = if i % 3 == 0 { "red" } else { "blue" };
        p.send_frame(
            "SEND",
            &[
                ("destination", "/queue/shelf"),
                ("color", color),
                ("receipt", "r"),
            ],
            format!("item-{i}").as_bytes(),
        )
        .await;
        p.expect_frame("RECEIPT").await;
    }
    let first = get_json(a, "/api/v1/queues/shelf/messages?limit=20").await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(20));
    assert_eq!(first["items"][0]["body_preview"], "item-0");
    assert_eq!(first["items"][0]["headers"]["color"], "red");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more to come")
        .to_string();
    let second = get_json(
        a,
        &format!("/api/v1/queues/shelf/messages?limit=20&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(second["items"][0]["body_preview"], "item-20");
    assert!(second["next_cursor"].is_null());
    // Browsing consumed nothing.
    let q = get_json(a, "/api/v1/queues/shelf").await;
    assert_eq!(q["messages_ready"], 30);
    // A selector, and one message whole (and raw).
    let red = get_json(
        a,
        "/api/v1/queues/shelf/messages?selector=color%3D%27red%27&body=none",
    )
    .await;
    assert_eq!(red["items"].as_array().map(Vec::len), Some(10));
    assert!(red["items"][0].get("body_preview").is_none());
    let id = first["items"][1]["id"].as_str().expect("id").to_string();
    let one = get_json(a, &format!("/api/v1/queues/shelf/messages/{id}")).await;
    assert_eq!(one["body_preview"], "item-1");
    let raw = request(
        a,
        "GET",
        &format!("/api/v1/queues/shelf/messages/{id}"),
        &[("Accept", "application/octet-stream")],
        None,
    )
    .await;
    assert_eq!(raw.body, b"item-1");
    // Delete that one, purge the red ones, then the first five of the rest.
    let del = request(
        a,
        "DELETE",
        &format!("/api/v1/queues/shelf/messages/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(del.status, 204);
    let again = request(
        a,
        "DELETE",
        &format!("/api/v1/queues/shelf/messages/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    let purged = request(
        a,
        "DELETE",
        "/api/v1/queues/shelf/messages?selector=color%3D%27red%27",
        &[],
        None,
    )
    .await;
    assert_eq!(purged.json()["removed"], 10);
    let five = request(
        a,
        "DELETE",
        "/api/v1/queues/shelf/messages?limit=5",
        &[],
        None,
    )
    .await;
    assert_eq!(five.json()["removed"], 5);
    // What a consumer now gets is exactly what is left, in order.
    let mut c = b.client().await;
    c.subscribe("/queue/shelf", "s", &[]).await;
    let got: Vec<String> = c
        .messages_until_quiet()
        .await
        .iter()
        .map(|m| m.text())
        .collect();
    let left: Vec<String> = (0..30)
        .filter(|i| i % 3 != 0 && *i != 1)
        .skip(5)
        .map(|i| format!("item-{i}"))
        .collect();
    assert_eq!(got, left);
    let metrics = request(a, "GET", "/metrics?queue=shelf", &[], None)
        .await
        .text();
    assert!(metrics.contains("wrenmq_queue_messages_removed_total{address=\"shelf\",queue=\"shelf\",routing_type=\"anycast\"} 16"), "{metrics}");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_retried_to_its_origin_and_messages_move() {
    let b = start(test_config()).await;
    let a = admin(&b);
    send_n(&b, "/queue/orders", 1).await;
    let mut c = b.client().await;
    c.subscribe("/queue/orders", "s", &[("ack", "client-individual")])
        .await;
    let m = c.expect_frame("MESSAGE").await;
    c.send_frame(
        "NACK",
        &[("id", m.h("ack")), ("requeue", "false"), ("receipt", "n")],
        b"",
    )
    .await;
    c.expect_frame("RECEIPT").await;
    // It is in the dead-letter queue, with its origin, and the queue list flags the DLA.
    let mut dlq = Value::Null;
    for _ in 0..50 {
        dlq = get_json(a, "/api/v1/queues/DLQ/messages").await;
        if dlq["items"].as_array().is_some_and(|i| i.len() == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        dlq["items"][0]["headers"]["_AMQ_ORIG_ADDRESS"], "orders",
        "{dlq}"
    );
    let list = get_json(a, "/api/v1/queues?name=DLQ").await;
    assert_eq!(list["items"][0]["dead_letter"], true);
    let retried = request(
        a,
        "POST",
        "/api/v1/queues/DLQ/messages/retry",
        &[],
        Some("{}"),
    )
    .await;
    assert_eq!(retried.json()["retried"], 1, "{}", retried.text());
    let back = c.expect_frame("MESSAGE").await;
    assert_eq!(back.text(), "m0");
    assert!(
        back.get("_AMQ_ORIG_ADDRESS").is_none(),
        "origin headers are dropped"
    );
    assert_eq!(get_json(a, "/api/v1/queues/DLQ").await["messages"], 0);
    c.disconnect().await;

    // Move: the target must exist; then the messages arrive there.
    send_n(&b, "/queue/from", 4).await;
    let no_target = request(
        a,
        "POST",
        "/api/v1/queues/from/messages/move",
        &[],
        Some(r#"{"to":"nowhere"}"#),
    )
    .await;
    assert_eq!(no_target.status, 404, "{}", no_target.text());
    assert_eq!(
        request(a, "PUT", "/api/v1/queues/to", &[], Some("{}"))
            .await
            .status,
        201
    );
    let moved = request(
        a,
        "POST",
        "/api/v1/queues/from/messages/move",
        &[],
        Some(r#"{"to":"to","limit":3}"#),
    )
    .await;
    assert_eq!(moved.json()["moved"], 3, "{}", moved.text());
    let copied = request(
        a,
        "POST",
        "/api/v1/queues/from/messages/copy",
        &[],
        Some(r#"{"to":"to::to"}"#),
    )
    .await;
    assert_eq!(copied.json()["copied"], 1);
    assert_eq!(get_json(a, "/api/v1/queues/from").await["messages"], 1);
    let mut c = b.client().await;
    c.subscribe("/queue/to", "t", &[]).await;
    let bodies: Vec<String> = c
        .messages_until_quiet()
        .await
        .iter()
        .map(|m| m.text())
        .collect();
    assert_eq!(bodies, vec!["m0", "m1", "m2", "m3"]);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_listed_and_closed_with_a_reason() {
    let b = start(test_config()).await;
    let a = admin(&b);
    let mut c = b.client_with_id("worker-7").await;
    c.subscribe(
        "/queue/jobs",
        "sub-1",
        &[("ack", "client"), ("selector", "kind = 'x'")],
    )
    .await;
    let list = get_json(a, "/api/v1/connections").await;
    let conn = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["client_id"] == "worker-7")
        .cloned()
        .expect("the connection is listed");
    assert_eq!(conn["transport"], "tcp");
    assert_eq!(conn["version"], "1.2");
    assert_eq!(conn["subscriptions"], 1);
    let id = conn["id"].as_u64().expect("id");
    let subs = get_json(a, "/api/v1/subscriptions?queue=jobs").await;
    assert_eq!(subs["items"][0]["selector"], "kind = 'x'");
    assert_eq!(subs["items"][0]["ack_mode"], "client");
    assert_eq!(subs["items"][0]["connection"], id);
    let shown = get_json(a, &format!("/api/v1/connections/{id}")).await;
    assert_eq!(shown["subscription_list"][0]["id"], "sub-1");
    let closed = request(
        a,
        "DELETE",
        &format!("/api/v1/connections/{id}"),
        &[("X-Reason", "maintenance window")],
        None,
    )
    .await;
    assert_eq!(closed.status, 202);
    let err = c.expect_error_and_close().await;
    assert_eq!(err.h("message"), "maintenance window");
    let mut found = None;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while found.is_none() && tokio::time::Instant::now() < deadline {
        let gone = get_json(a, "/api/v1/connections?state=closed").await;
        found = gone["items"]
            .as_array()
            .and_then(|i| i.iter().find(|c| c["id"] == id).cloned());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let found = found.expect("listed among the closed");
    let paged = get_json(a, "/api/v1/connections?state=closed&limit=1&order=desc").await;
    assert_eq!(paged["items"].as_array().map(Vec::len), Some(1), "{paged}");
    assert_eq!(found["reason"], "admin");
    assert_eq!(found["detail"], "maintenance window");
    assert_eq!(
        request(a, "DELETE", &format!("/api/v1/connections/{id}"), &[], None)
            .await
            .status,
        404
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_created_shown_and_deleted() {
    let b = start(test_config()).await;
    let a = admin(&b);
    let made = request(
        a,
        "PUT",
        "/api/v1/addresses/news",
        &[],
        Some(r#"{"routing_types":["multicast"]}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let again = request(
        a,
        "PUT",
        "/api/v1/addresses/news",
        &[],
        Some(r#"{"routing_types":["multicast"]}"#),
    )
    .await;
    assert_eq!(again.status, 200, "idempotent");
    let bad = request(
        a,
        "PUT",
        "/api/v1/addresses/x",
        &[],
        Some(r#"{"routing_types":["sideways"]}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
    // Sending through the API: unroutable without a subscriber, routed to a queue.
    let sent = request(
        a,
        "POST",
        "/api/v1/addresses/news/messages",
        &[],
        Some(r#"{"body":"hello","headers":{"k":"v"}}"#),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert_eq!(sent.json()["routed_to"].as_array().map(Vec::len), Some(0));
    let shown = get_json(a, "/api/v1/addresses/news").await;
    assert_eq!(shown["routing_types"][0], "multicast");
    assert_eq!(shown["unroutable_total"], 1);
    let queue = request(
        a,
        "PUT",
        "/api/v1/queues/news.archive",
        &[],
        Some(r#"{"address":"news","routing_type":"multicast"}"#),
    )
    .await;
    assert_eq!(queue.status, 201, "{}", queue.text());
    let b64 = request(
        a,
        "POST",
        "/api/v1/addresses/news/messages",
        &[],
        Some(r#"{"body":"AAEC","body_encoding":"base64"}"#),
    )
    .await;
    assert_eq!(b64.json()["routed_to"][0], "news.archive");
    let raw_id = get_json(a, "/api/v1/queues/news.archive/messages").await["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let raw = request(
        a,
        "GET",
        &format!("/api/v1/queues/news.archive/messages/{raw_id}"),
        &[("Accept", "application/octet-stream")],
        None,
    )
    .await;
    assert_eq!(raw.body, vec![0u8, 1, 2]);
    let refused = request(a, "DELETE", "/api/v1/addresses/news", &[], None).await;
    assert_eq!(refused.status, 409, "an address with queues needs force");
    let forced = request(a, "DELETE", "/api/v1/addresses/news?force=true", &[], None).await;
    assert_eq!(forced.status, 204);
    assert_eq!(
        request(a, "GET", "/api/v1/queues/news.archive", &[], None)
            .await
            .status,
        404
    );
    assert_eq!(
        request(a, "DELETE", "/api/v1/addresses/news?strict=true", &[], None)
            .await
            .status,
        404
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_queue_holds_its_messages_until_resumed() {
    let b = start(test_config()).await;
    let a = admin(&b);
    let mut c = b.client().await;
    c.subscribe("/queue/held", "s", &[]).await;
    let paused = request(a, "POST", "/api/v1/queues/held/pause", &[], None).await;
    assert_eq!(paused.status, 200, "{}", paused.text());
    send_n(&b, "/queue/held", 2).await;
    c.expect_no_frame(Duration::from_millis(300)).await;
    assert_eq!(get_json(a, "/api/v1/queues/held").await["paused"], true);
    request(a, "POST", "/api/v1/queues/held/resume", &[], None).await;
    assert_eq!(c.expect_messages(2).await.len(), 2);
    b.shutdown().await;
}
