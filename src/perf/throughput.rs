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
    /// Which destination and subscriber group each producer and consumer has.
    layout: Layout,
    params: Value,
}

/// How a run's producers and consumers map onto destinations and subscriber groups (one
/// exactly-once tracker per group): the one difference between a queue, a fan-out and
/// independent queue pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Competing consumers on one destination: one group, each message to one of them.
    Shared,
    /// Every consumer is a group of its own and must get every message (topic fan-out).
    EachGetsAll,
    /// `Q` independent destinations `DEST.0` .. `DEST.Q-1` (`perf queue --queues Q`):
    /// producer `p` sends to `p % Q`, consumer `c` subscribes to `c % Q`, and each
    /// destination is a group that must get exactly its own producers' messages, so a
    /// message delivered on the wrong queue shows as lost there.
    Queues(u32),
}

impl Layout {
    /// Subscriber groups of a run with `consumers` consumers.
    fn groups(self, consumers: u32) -> usize {
        match self {
            Layout::Shared => 1,
            Layout::EachGetsAll => consumers as usize,
            Layout::Queues(q) => q.max(1) as usize,
        }
    }

    /// The group consumer `c` belongs to.
    fn consumer_group(self, c: u32) -> usize {
        match self {
            Layout::Shared => 0,
            Layout::EachGetsAll => c as usize,
            Layout::Queues(q) => (c % q.max(1)) as usize,
        }
    }

    /// Whether producer `p`'s messages are meant for group `g`.
    fn producer_feeds(self, p: usize, g: usize) -> bool {
        match self {
            Layout::Shared | Layout::EachGetsAll => true,
            Layout::Queues(q) => p % q.max(1) as usize == g,
        }
    }

    /// The destination of group `g`: `base` itself unless the run has several queues.
    fn destination(self, base: &str, g: usize) -> String {
        match self {
            Layout::Queues(q) if q > 1 => format!("{base}.{g}"),
            _ => base.to_string(),
        }
    }

    /// The destination producer `p` sends to.
    fn producer_destination(self, base: &str, p: usize) -> String {
        match self {
            Layout::Queues(q) => self.destination(base, p % q.max(1) as usize),
            _ => base.to_string(),
        }
    }

    /// The run's shared state: per group, how many messages it expects of each producer
    /// (none of a producer feeding another queue) and what its consumers' selectors pick.
    pub fn shared(self, per_producer: &[u64], groups: Vec<Expect>) -> Shared {
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(g, e)| {
                let counts = (0..per_producer.len())
                    .map(|p| {
                        if self.producer_feeds(p, g) {
                            per_producer[p]
                        } else {
                            0
                        }
                    })
                    .collect();
                (counts, e)
            })
            .collect();
        Shared::with_groups(groups)
    }
}

/// `perf queue`.
pub async fn queue(a: &QueueArgs) -> Result<Report, PerfError> {
    let queues = a.queues.max(1);
    if queues > a.producers.max(1) || queues > a.consumers.max(1) {
        return Err(PerfError::msg(format!(
            "--queues {queues} needs at least {queues} producers and {queues} consumers (one of each per queue)"
        )));
    }
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
    // Only when asked for, so that a plain run's params are as before.
    let layout = if queues > 1 {
        params["queues"] = json!(queues);
        Layout::Queues(queues)
    } else {
        Layout::Shared
    };
    a.message.add_property_params(&mut params);
    execute(Plan {
        scenario: "queue",
        common: &a.common,
        message: &a.message,
        destination: a.common.destination_or("/queue/perf"),
        producers,
        consumers: a.consumers.max(1),
        layout,
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
        layout: Layout::EachGetsAll,
        params,
    })
    .await
}

/// What each of `count` consumers must receive (from its `--selector`), and what each
/// subscriber group of `layout` must: what any of its consumers picks.
pub fn plan_expects(
    message: &MessageArgs,
    count: u32,
    layout: Layout,
) -> Result<(Vec<Expect>, Vec<Expect>), PerfError> {
    let own = (0..count)
        .map(|c| Expect::for_selector(message.selector(c), &message.property_cycles))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = if layout == Layout::EachGetsAll {
        own.clone()
    } else {
        (0..layout.groups(count))
            .map(|g| {
                Expect::union(
                    (0u32..)
                        .zip(&own)
                        .filter(|(c, _)| layout.consumer_group(*c) == g)
                        .map(|(_, e)| e),
                )
            })
            .collect()
    };
    Ok((own, groups))
}

/// Subscribes every consumer (each SUBSCRIBE confirmed by its receipt, with its selector,
/// on its group's destination) and spawns them; `own` holds what each one's selector picks.
pub async fn start_consumers(
    common: &Common,
    message: &MessageArgs,
    destination: &str,
    own: Vec<Expect>,
    layout: Layout,
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
        let group = layout.consumer_group(c);
        conn.subscribe(
            &layout.destination(destination, group),
            &format!("perf-{c}"),
            message.ack.header(),
            &headers,
        )
        .await?;
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
    let (own, groups) = plan_expects(plan.message, plan.consumers, plan.layout)?;
    let shared = Arc::new(plan.layout.shared(&plan.producers, groups));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut consumers = start_consumers(
        plan.common,
        plan.message,
        &plan.destination,
        own,
        plan.layout,
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
            destination: plan.layout.producer_destination(&plan.destination, id),
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
        per_queue: matches!(plan.layout, Layout::Queues(q) if q > 1),
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
