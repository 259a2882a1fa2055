//! The `queue` and `fanout` scenarios: as fast as the broker goes, then exactly-once checks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::client::Conn;
use super::consumer::{self, AckPolicy};
use super::monitor::{self, Consumers, Producers};
use super::producer::{self, ProducerSpec};
use super::report::{Delivery, Latency, Report};
use super::select::Expect;
use super::shared::Shared;
use super::{Common, FanoutArgs, MessageArgs, PerfError, QueueArgs};

/// What a throughput run does.
struct Plan<'a> {
    scenario: &'static str,
    common: &'a Common,
    message: &'a MessageArgs,
    destination: String,
    /// Messages per producer.
    producers: Vec<u64>,
    consumers: u32,
    /// Whether each consumer must see every message (fanout) or they share them (queue).
    each_gets_all: bool,
    params: Value,
}

/// `perf queue`.
pub async fn queue(a: &QueueArgs) -> Result<Report, PerfError> {
    let p = u64::from(a.producers.max(1));
    let producers = (0..p)
        .map(|i| a.messages / p + u64::from(i < a.messages % p))
        .collect();
    let mut params = json!({
        "producers": p, "consumers": a.consumers.max(1), "messages": a.messages,
        "size": a.message.size, "persistent": a.message.persistent,
        "ack": a.message.ack.header(), "ack_every": a.message.ack_every,
        "receipt_every": a.message.receipt_every,
        "destination": a.common.destination_or("/queue/perf"),
    });
    a.message.add_property_params(&mut params);
    execute(Plan {
        scenario: "queue",
        common: &a.common,
        message: &a.message,
        destination: a.common.destination_or("/queue/perf"),
        producers,
        consumers: a.consumers.max(1),
        each_gets_all: false,
        params,
    })
    .await
}

/// `perf fanout`.
pub async fn fanout(a: &FanoutArgs) -> Result<Report, PerfError> {
    let mut params = json!({
        "producers": 1, "consumers": a.consumers.max(1), "messages": a.messages,
        "size": a.message.size, "persistent": a.message.persistent,
        "ack": a.message.ack.header(), "receipt_every": a.message.receipt_every,
        "destination": a.common.destination_or("/topic/perf"),
    });
    a.message.add_property_params(&mut params);
    execute(Plan {
        scenario: "fanout",
        common: &a.common,
        message: &a.message,
        destination: a.common.destination_or("/topic/perf"),
        producers: vec![a.messages],
        consumers: a.consumers.max(1),
        each_gets_all: true,
        params,
    })
    .await
}

/// What each of `count` consumers must receive (from its `--selector`), and what each
/// subscriber group must: one group per consumer when each gets all, else one for all.
pub fn plan_expects(
    message: &MessageArgs,
    count: u32,
    each_gets_all: bool,
) -> Result<(Vec<Expect>, Vec<Expect>), PerfError> {
    let own = (0..count)
        .map(|c| Expect::for_selector(message.selector(c), &message.property_cycles))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = if each_gets_all {
        own.clone()
    } else {
        vec![Expect::union(&own)]
    };
    Ok((own, groups))
}

/// Subscribes every consumer (each SUBSCRIBE confirmed by its receipt, with its selector)
/// and spawns them; `own` holds what each one's selector picks.
pub async fn start_consumers(
    common: &Common,
    message: &MessageArgs,
    destination: &str,
    own: Vec<Expect>,
    each_gets_all: bool,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> Result<Consumers, PerfError> {
    let mut consumers = Consumers::new();
    let policy = AckPolicy {
        mode: message.ack,
        every: message.ack_every,
    };
    for (c, expect) in (0u32..).zip(own) {
        let mut conn = Conn::open(common).await?;
        let mut headers = common.sub_headers.clone();
        if let Some(sel) = message.selector(c) {
            headers.push(("selector".to_string(), sel.to_string()));
        }
        conn.subscribe(
            destination,
            &format!("perf-{c}"),
            message.ack.header(),
            &headers,
        )
        .await?;
        let group = if each_gets_all { c as usize } else { 0 };
        consumers.spawn(consumer::run(
            conn,
            Arc::clone(shared),
            group,
            expect,
            policy,
            stop.clone(),
        ));
    }
    Ok(consumers)
}

async fn execute(plan: Plan<'_>) -> Result<Report, PerfError> {
    let (own, groups) = plan_expects(plan.message, plan.consumers, plan.each_gets_all)?;
    let shared = Arc::new(Shared::with_expects(&plan.producers, groups));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut consumers = start_consumers(
        plan.common,
        plan.message,
        &plan.destination,
        own,
        plan.each_gets_all,
        &shared,
        &stop_rx,
    )
    .await?;
    let mut conns = Vec::with_capacity(plan.producers.len());
    for _ in &plan.producers {
        conns.push(Conn::open(plan.common).await?);
    }
    let start = Instant::now();
    let mut producers = Producers::new();
    for (id, (conn, count)) in conns.into_iter().zip(&plan.producers).enumerate() {
        let spec = ProducerSpec {
            id: id as u32,
            count: *count,
            destination: plan.destination.clone(),
            message: plan.message.clone(),
            extra: Vec::new(),
        };
        producers.spawn(producer::run(conn, spec, Arc::clone(&shared)));
    }
    let stall = Duration::from_secs(plan.common.stall_timeout.max(1));
    let ended = monitor::run_to_end(
        &shared,
        &stop_tx,
        &mut producers,
        &mut consumers,
        stall,
        start,
    )
    .await;
    Ok(Report {
        scenario: plan.scenario,
        broker: plan.common.broker(),
        params: plan.params,
        sent: shared.sent.load(Ordering::Relaxed),
        received: shared.received.load(Ordering::Relaxed),
        deliveries: deliveries(&shared),
        elapsed_secs: ended.end.saturating_duration_since(start).as_secs_f64(),
        message_size: plan.message.size,
        latency: Latency::from_histogram(&ended.histogram),
        error: ended.error,
        ..Report::default()
    })
}

/// Exactly-once figures of every tracker.
pub fn deliveries(shared: &Shared) -> Vec<Delivery> {
    shared
        .trackers
        .iter()
        .map(|t| Delivery {
            expected: t.expected(),
            lost: t.lost(),
            duplicated: t.duplicated(),
            foreign: t.foreign(),
            excluded: t.excluded(),
        })
        .collect()
}
