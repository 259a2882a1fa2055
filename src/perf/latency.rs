//! The `latency` scenario: a fixed send rate, latency from each message's scheduled send
//! time to its arrival.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use super::client::Conn;
use super::monitor::{self, Producers};
use super::producer::{self, ProducerSpec};
use super::report::{Latency, Report};
use super::shared::Shared;
use super::throughput::{Layout, deliveries, plan_expects, start_consumers};
use super::{LatencyArgs, PerfError};

/// `perf latency`.
pub async fn run(a: &LatencyArgs) -> Result<Report, PerfError> {
    let rate = a.rate.max(1);
    let count = rate.saturating_mul(a.time.max(1));
    let destination = a.common.destination_or("/queue/perf");
    let (own, groups) = plan_expects(&a.message, 1, Layout::Shared)?;
    let shared = Arc::new(Shared::with_expects(&[count], groups));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut consumers = start_consumers(
        &a.common,
        &a.message,
        &destination,
        own,
        Layout::Shared,
        &shared,
        &stop_rx,
    )
    .await?;
    let conn = Conn::open(&a.common).await?.into_std()?;
    let spec = ProducerSpec {
        id: 0,
        count,
        destination: destination.clone(),
        message: a.message.clone(),
        extra: Vec::new(),
    };
    // A little ahead, so the first message is not already late when the thread starts.
    let start = Instant::now() + Duration::from_millis(10);
    let mut producers = Producers::new();
    let thread_shared = Arc::clone(&shared);
    producers.spawn_blocking(move || producer::run_paced(conn, spec, rate, start, thread_shared));
    let stall = Duration::from_secs(a.common.stall_timeout.max(1));
    let ended = monitor::run_to_end(
        &shared,
        &stop_tx,
        &mut producers,
        &mut consumers,
        stall,
        start,
    )
    .await;
    let mut params = json!({
        "rate": rate, "time": a.time, "messages": count, "size": a.message.size,
        "persistent": a.message.persistent, "ack": a.message.ack.header(),
        "receipt_every": a.message.receipt_every, "destination": destination,
    });
    a.message.add_property_params(&mut params);
    Ok(Report {
        scenario: "latency",
        broker: a.common.broker(),
        params,
        sent: shared.sent.load(Ordering::Relaxed),
        received: shared.received.load(Ordering::Relaxed),
        deliveries: deliveries(&shared),
        elapsed_secs: ended.end.saturating_duration_since(start).as_secs_f64(),
        message_size: a.message.size,
        latency: Latency::from_histogram(&ended.histogram),
        receipt_latency: {
            let h = shared.receipts.lock().unwrap_or_else(|e| e.into_inner());
            (!h.is_empty()).then(|| Latency::from_histogram(&h))
        },
        error: ended.error,
        ..Report::default()
    })
}
