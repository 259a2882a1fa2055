//! Scheduled delivery over real connections (issue 10, "Scheduled delivery"):
//! `AMQ_SCHEDULED_DELAY` (relative ms) and `AMQ_SCHEDULED_TIME` (epoch ms) on SEND keep a
//! message invisible until then, let later unscheduled messages pass, keep its priority, and
//! survive a restart of the broker binary.

mod common;
mod durable_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{QUIET, TIMEOUT, assert_bad_send_headers, start, test_config};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn send(c: &mut common::Client, dest: &str, extra: &[(&str, &str)], body: &str) {
    let mut h = vec![("destination", dest)];
    h.extend_from_slice(extra);
    c.send_with_receipt("SEND", &h, body.as_bytes(), &format!("r-{body}"))
        .await;
}

/// The next MESSAGE, which must arrive no earlier than `due` and within [`TIMEOUT`] after it.
/// Early delivery is judged by when the frame arrived, not by a quiet read timing out: on a
/// loaded machine a read's timer can fire late, when the frame is already there.
async fn message_at_or_after(c: &mut common::Client, due: u64) -> common::Frame {
    let wait = Duration::from_millis(due.saturating_sub(now_ms())) + TIMEOUT;
    let f = match c.next_frame(wait).await {
        Ok(f) => f,
        Err(e) => panic!("nothing within {TIMEOUT:?} of the due time {due}: {e:?}"),
    };
    let arrived = now_ms();
    assert_eq!(f.command, "MESSAGE", "{f:?}");
    assert!(
        arrived >= due,
        "delivered at {arrived}, before {due}: {f:?}"
    );
    f
}

/// A subscriber present from the start sees the unscheduled message at once, then nothing
/// until the scheduled one at its time, then nothing more.
async fn invisible_until(header: &str, value: &str, due: u64, dest: &str) {
    let broker = start(test_config()).await;
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[]).await;
    let mut p = broker.client().await;
    send(&mut p, dest, &[(header, value)], "scheduled").await;
    send(&mut p, dest, &[], "now").await;
    assert_eq!(c.expect_frame("MESSAGE").await.text(), "now");
    assert_eq!(message_at_or_after(&mut c, due).await.text(), "scheduled");
    c.expect_no_frame(QUIET).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn scheduled_delay_hides_a_message_until_then_and_lets_later_ones_pass() {
    let due = now_ms() + 1500;
    invisible_until("AMQ_SCHEDULED_DELAY", "1500", due, "/queue/sch.delay").await;
}

#[tokio::test]
async fn scheduled_time_hides_a_message_until_then_and_lets_later_ones_pass() {
    let due = now_ms() + 1500;
    invisible_until(
        "AMQ_SCHEDULED_TIME",
        &due.to_string(),
        due,
        "/queue/sch.time",
    )
    .await;
}

#[tokio::test]
async fn a_scheduled_message_reaches_every_topic_subscriber_at_its_time() {
    let broker = start(test_config()).await;
    let mut subs = Vec::new();
    for id in ["a", "b"] {
        let mut c = broker.client().await;
        c.subscribe("/topic/sch.news", id, &[]).await;
        subs.push(c);
    }
    let mut p = broker.client().await;
    let due = now_ms() + 1000;
    send(
        &mut p,
        "/topic/sch.news",
        &[("AMQ_SCHEDULED_DELAY", "1000")],
        "news",
    )
    .await;
    for c in &mut subs {
        assert_eq!(message_at_or_after(c, due).await.text(), "news");
        c.expect_no_frame(QUIET).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_time_in_the_past_or_a_zero_delay_delivers_at_once() {
    let broker = start(test_config()).await;
    let mut c = broker.client().await;
    c.subscribe("/queue/sch.past", "s", &[]).await;
    let mut p = broker.client().await;
    let past = (now_ms() - 60_000).to_string();
    send(
        &mut p,
        "/queue/sch.past",
        &[("AMQ_SCHEDULED_TIME", &past)],
        "past",
    )
    .await;
    send(
        &mut p,
        "/queue/sch.past",
        &[("AMQ_SCHEDULED_DELAY", "0")],
        "zero",
    )
    .await;
    let got: Vec<String> = c
        .expect_messages(2)
        .await
        .iter()
        .map(|f| f.text())
        .collect();
    assert_eq!(got, ["past", "zero"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_released_message_keeps_its_priority() {
    let broker = start(test_config()).await;
    let mut p = broker.client().await;
    let dest = "/queue/sch.prio";
    send(
        &mut p,
        dest,
        &[("priority", "9"), ("AMQ_SCHEDULED_DELAY", "300")],
        "high",
    )
    .await;
    send(&mut p, dest, &[("priority", "0")], "low1").await;
    send(&mut p, dest, &[("priority", "0")], "low2").await;
    // Released while nobody consumes: it then waits with the others, ahead of them.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut c = broker.client().await;
    c.subscribe(dest, "s", &[]).await;
    let got: Vec<String> = c
        .expect_messages(3)
        .await
        .iter()
        .map(|f| f.text())
        .collect();
    assert_eq!(got, ["high", "low1", "low2"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_schedule_values_get_an_error_naming_the_header() {
    let broker = start(test_config()).await;
    assert_bad_send_headers(
        &broker,
        "/queue/sch.bad",
        &[
            ("AMQ_SCHEDULED_DELAY", "soon"),
            ("AMQ_SCHEDULED_DELAY", "-100"),
            ("AMQ_SCHEDULED_TIME", "tomorrow"),
            ("AMQ_SCHEDULED_TIME", "1.5e12"),
        ],
    )
    .await;
    broker.shutdown().await;
}

#[test]
fn a_scheduled_message_survives_a_restart_and_is_delivered_once_at_its_time() {
    use durable_common::Broker;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let broker = Broker::start(&dir);
    let mut p = broker.client();
    let due = now_ms() + 3000;
    p.send_confirmed(
        "/queue/sch.durable",
        &[
            ("persistent", "true"),
            ("AMQ_SCHEDULED_TIME", &due.to_string()),
        ],
        b"later",
        "r1",
    );
    broker.kill();

    let broker = Broker::start(&dir);
    let mut c = broker.client();
    c.subscribe("/queue/sch.durable", "s", "client", &[]);
    // Nothing before the time (judged by when it arrives), then within a bounded wait.
    let wait = Duration::from_millis(due.saturating_sub(now_ms())) + TIMEOUT;
    let f = c
        .read_frame(wait)
        .expect("read the scheduled message")
        .unwrap_or_else(|| panic!("not delivered within {TIMEOUT:?} of its time"));
    let arrived = now_ms();
    assert!(
        arrived >= due,
        "delivered at {arrived}, before {due}: {f:?}"
    );
    assert_eq!(f.command, "MESSAGE", "{f:?}");
    assert_eq!(f.body_str(), "later");
    let more = c.drain(Duration::from_millis(500), Duration::from_secs(5));
    assert!(more.is_empty(), "delivered more than once: {more:?}");
    let ack = f.header("ack").expect("ack header").to_string();
    c.send_frame("ACK", &[("id", &ack), ("receipt", "acked")], b"")
        .expect("write ACK");
    c.expect_receipt("acked");
    broker.kill();

    // Acknowledged: gone for good, also after another restart.
    let broker = Broker::start(&dir);
    let mut c = broker.client();
    c.subscribe("/queue/sch.durable", "s", "auto", &[]);
    let after = c.drain(Duration::from_millis(500), Duration::from_secs(5));
    assert!(after.is_empty(), "came back after its ACK: {after:?}");
    broker.kill();
}
