//! The `replay` scenario: preload a retained stream (a non-destructive queue) with N
//! messages nobody consumes, then time one consumer reading all of them from
//! `x-stream-offset:first`, sampling the broker's VmRSS while it replays (a stream must
//! replay from what it holds, not copy it per consumer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use super::client::Conn;
use super::connections::vm_rss_kb;
use super::consumer::{self, AckPolicy};
use super::monitor::{self, Consumers, Producers};
use super::producer::{self, ProducerSpec};
use super::report::{Latency, ReplayReport, Report, RssReport};
use super::shared::Shared;
use super::throughput::{Layout, deliveries, plan_expects};
use super::{PerfError, ReplayArgs};

/// How often the broker's VmRSS is read during the replay.
const RSS_SAMPLE: Duration = Duration::from_millis(100);

/// `perf replay`.
pub async fn run(a: &ReplayArgs) -> Result<Report, PerfError> {
    let destination = a.common.destination_or("/queue/perf-stream");
    let stall = Duration::from_secs(a.common.stall_timeout.max(1));

    // 1. Preload: no subscriber, complete once the producer has its last receipt.
    let preload = Arc::new(Shared::with_expects(&[a.messages], Vec::new()));
    let conn = Conn::open(&a.common).await?;
    let spec = ProducerSpec {
        id: 0,
        count: a.messages,
        destination: destination.clone(),
        message: a.message.clone(),
        extra: Vec::new(),
    };
    let (stop_tx, _) = watch::channel(false);
    let started = Instant::now();
    let mut producers = Producers::new();
    producers.spawn(producer::run(conn, spec, Arc::clone(&preload)));
    let loaded = monitor::run_to_end(
        &preload,
        &stop_tx,
        &mut producers,
        &mut Consumers::new(),
        stall,
        started,
    )
    .await;
    let preload_secs = loaded.end.saturating_duration_since(started).as_secs_f64();
    if let Some(e) = loaded.error {
        return Err(PerfError::msg(format!("preload: {e}")));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = a.broker_pid.map(vm_rss_kb).transpose()?;

    // 2. Replay: one consumer from the first offset must get this run's N messages.
    let (own, groups) = plan_expects(&a.message, 1, Layout::Shared)?;
    let shared = Arc::new(Shared::for_run(preload.run, &[a.messages], groups));
    let mut conn = Conn::open(&a.common).await?;
    let mut headers = a.common.sub_headers.clone();
    if !headers.iter().any(|(k, _)| k == "x-stream-offset") {
        headers.push(("x-stream-offset".to_string(), "first".to_string()));
    }
    conn.subscribe(
        &destination,
        "perf-replay",
        a.message.ack.header(),
        &headers,
    )
    .await?;
    // A channel of its own: the preload's supervisor already said stop on the first one.
    let (stop_tx, stop_rx) = watch::channel(false);
    let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
    let sampler = a.broker_pid.map(|pid| {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                if let Ok(kb) = vm_rss_kb(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_SAMPLE).await;
            }
        })
    });
    let start = Instant::now();
    let mut consumers = Consumers::new();
    let policy = AckPolicy {
        mode: a.message.ack,
        every: a.message.ack_every,
    };
    let expect = own.into_iter().next().unwrap_or_default();
    consumers.spawn(consumer::run(
        conn,
        Arc::clone(&shared),
        0,
        expect,
        policy,
        stop_rx,
    ));
    let ended = monitor::run_to_end(
        &shared,
        &stop_tx,
        &mut Producers::new(),
        &mut consumers,
        stall,
        start,
    )
    .await;
    if let Some(s) = sampler {
        s.abort();
    }
    let rss = before.map(|before_kb| RssReport {
        before_kb,
        after_kb: peak.load(Ordering::Relaxed),
    });
    Ok(Report {
        scenario: "replay",
        broker: a.common.broker(),
        params: json!({
            "messages": a.messages, "size": a.message.size, "persistent": a.message.persistent,
            "ack": a.message.ack.header(), "receipt_every": a.message.receipt_every,
            "broker_pid": a.broker_pid, "destination": destination,
        }),
        sent: preload.sent.load(Ordering::Relaxed),
        received: shared.received.load(Ordering::Relaxed),
        deliveries: deliveries(&shared),
        elapsed_secs: ended.end.saturating_duration_since(start).as_secs_f64(),
        message_size: a.message.size,
        // Latency from the send, long ago, says nothing about a replay.
        latency: Latency::default(),
        rss,
        replay: Some(ReplayReport { preload_secs }),
        error: ended.error,
        ..Report::default()
    })
}
