//! The `scheduled` scenario: many messages with `AMQ_SCHEDULED_DELAY` sent to one queue
//! nobody consumes; the broker's VmRSS before and after gives its memory per scheduled
//! message. A short probe subscription afterwards checks that none is delivered early.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use super::client::Conn;
use super::connections::vm_rss_kb;
use super::monitor::{self, Consumers, Producers};
use super::producer::{self, ProducerSpec};
use super::report::{Report, RssReport, ScheduledReport};
use super::shared::Shared;
use super::tracker::{HEADER, Stamp};
use super::{AckArg, Common, MessageArgs, PerfError, ScheduledArgs};

/// The scheduling header, as Artemis and ActiveMQ Classic name it.
pub const DELAY_HEADER: &str = "AMQ_SCHEDULED_DELAY";

/// `perf scheduled`.
pub async fn run(a: &ScheduledArgs) -> Result<Report, PerfError> {
    let destination = a.common.destination_or("/queue/perf-scheduled");
    let conn = Conn::open(&a.common).await?;
    let before = a.broker_pid.map(vm_rss_kb).transpose()?;
    // No subscriber groups: the run is complete once the producer has its last receipt.
    let shared = Arc::new(Shared::with_expects(&[a.messages], Vec::new()));
    let spec = ProducerSpec {
        id: 0,
        count: a.messages,
        destination: destination.clone(),
        message: MessageArgs {
            size: a.size,
            persistent: Some(a.persistent),
            receipt_every: a.receipt_every,
            ack: AckArg::Auto,
            ack_every: 1,
            property_cycles: Vec::new(),
            priority_cycle: None,
            selectors: Vec::new(),
        },
        extra: vec![(DELAY_HEADER.to_string(), a.delay_ms.to_string())],
    };
    let (stop_tx, _stop_rx) = watch::channel(false);
    let start = Instant::now();
    let mut producers = Producers::new();
    producers.spawn(producer::run(conn, spec, Arc::clone(&shared)));
    let mut consumers = Consumers::new();
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
    let elapsed = ended.end.saturating_duration_since(start);
    // Let the broker settle its allocations before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = a.broker_pid.map(vm_rss_kb).transpose()?;
    let mut error = ended.error;
    let mut early = None;
    if error.is_none() && a.probe_ms > 0 {
        let probe = Duration::from_millis(a.probe_ms);
        let first_due = start + Duration::from_millis(a.delay_ms);
        if Instant::now() + probe < first_due {
            match probe_early(&a.common, &destination, shared.run, probe).await {
                Ok(n) => early = Some(n),
                Err(e) => error = Some(format!("probe: {e}")),
            }
        } else {
            eprintln!("perf: the delay ends before the probe would: early delivery not checked");
        }
    }
    Ok(Report {
        scenario: "scheduled",
        broker: a.common.broker(),
        params: json!({
            "messages": a.messages, "delay_ms": a.delay_ms, "size": a.size,
            "persistent": a.persistent, "receipt_every": a.receipt_every,
            "broker_pid": a.broker_pid, "probe_ms": a.probe_ms, "destination": destination,
        }),
        sent: shared.sent.load(Ordering::Relaxed),
        elapsed_secs: elapsed.as_secs_f64(),
        message_size: a.size,
        rss: match (before, after) {
            (Some(before_kb), Some(after_kb)) => Some(RssReport {
                before_kb,
                after_kb,
            }),
            _ => None,
        },
        scheduled: Some(ScheduledReport {
            delay_ms: a.delay_ms,
            early,
            probe_ms: a.probe_ms,
        }),
        error,
        ..Report::default()
    })
}

/// Subscribes to the queue for `probe` and counts this run's messages that arrive. The
/// subscription is client-individual and never acknowledges, so a broker that ignores the
/// delay sends at most its consumer window, and every message returns to the queue on
/// disconnect.
async fn probe_early(
    common: &Common,
    destination: &str,
    run: u32,
    probe: Duration,
) -> Result<u64, PerfError> {
    let mut conn = Conn::open(common).await?;
    conn.subscribe(
        destination,
        "perf-probe",
        AckArg::ClientIndividual.header(),
        &common.sub_headers,
    )
    .await?;
    let mut early = 0u64;
    let mut count = |f: crate::stomp::Frame| {
        let ours = f
            .get(HEADER)
            .and_then(Stamp::parse)
            .is_some_and(|s| s.run == run);
        if f.command == crate::stomp::Command::Message && ours {
            early += 1;
        }
    };
    let deadline = tokio::time::Instant::now() + probe;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match conn.next_frame(left).await {
            Ok(f) => count(f),
            // The probe's time ran out without a frame: the expected case.
            Err(PerfError::Msg(_)) if tokio::time::Instant::now() >= deadline => break,
            Err(e) => return Err(e),
        }
    }
    conn.disconnect(&mut count).await?;
    Ok(early)
}
