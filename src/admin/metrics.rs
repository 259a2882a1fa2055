//! `/metrics`: the Prometheus text exposition of the core's counters and gauges, encoded at
//! scrape time by prometheus-client from a collector that reads the atomics (nothing is
//! registered, updated or locked for metrics on the message path). `?queue=<regex>` keeps
//! only the matching queues' series; `/metrics/per-object` adds per-connection and
//! per-subscription series (high cardinality, so opt-in).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::AdminContext;
use crate::broker::RoutingType;
use crate::session::{CloseReason, Transport};

/// One scrape's view of the broker.
#[derive(Debug)]
struct Scrape {
    ctx: Arc<AdminContext>,
    queues: Option<regex::Regex>,
    per_object: bool,
}

type Labels = Vec<(&'static str, String)>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn routing(r: RoutingType) -> String {
    match r {
        RoutingType::Anycast => "anycast".into(),
        RoutingType::Multicast => "multicast".into(),
    }
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let ctx = &self.ctx;
        let b = &ctx.broker;
        let s = b.stats();
        let e = &mut e;
        let mut m = e.encode_descriptor(
            "wrenmq_build_info",
            "The running build (value 1).",
            None,
            MetricType::Gauge,
        )?;
        let build: Labels = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
        ConstGauge::new(1i64).encode(m.encode_family(&build)?)?;
        gauge(
            e,
            "wrenmq_uptime_seconds",
            "Seconds since the broker started.",
            ctx.started.elapsed().as_secs_f64(),
        )?;

        // Connections, by transport.
        let live = ctx.connections.live();
        let t = &ctx.connections.totals;
        let by_transport = |f: &dyn Fn(Transport) -> u64| -> Vec<(Labels, u64)> {
            Transport::ALL
                .iter()
                .map(|&tr| (vec![("transport", tr.as_str().to_string())], f(tr)))
                .collect()
        };
        gauges(
            e,
            "wrenmq_connections",
            "Open connections.",
            &Transport::ALL
                .iter()
                .map(|&tr| {
                    (
                        vec![("transport", tr.as_str().to_string())],
                        live.iter().filter(|c| c.transport == tr).count() as f64,
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "wrenmq_connections_opened",
            "Connections accepted.",
            &by_transport(&|tr| t.opened(tr)),
        )?;
        let mut closed = Vec::new();
        for tr in Transport::ALL {
            for r in CloseReason::ALL {
                closed.push((
                    vec![
                        ("transport", tr.as_str().to_string()),
                        ("reason", r.as_str().to_string()),
                    ],
                    t.closed(tr, r),
                ));
            }
        }
        counters(
            e,
            "wrenmq_connections_closed",
            "Connections closed, by why.",
            &closed,
        )?;
        counters(
            e,
            "wrenmq_auth_attempts",
            "CONNECT authentications, by result.",
            &[
                (vec![("result", "success".to_string())], t.auth_ok.get()),
                (vec![("result", "failure".to_string())], t.auth_failed.get()),
            ],
        )?;
        counters(
            e,
            "wrenmq_bytes_received",
            "Bytes read from clients.",
            &by_transport(&|tr| t.bytes_in(tr)),
        )?;
        counters(
            e,
            "wrenmq_bytes_sent",
            "Bytes written to clients.",
            &by_transport(&|tr| t.bytes_out(tr)),
        )?;
        counter(
            e,
            "wrenmq_receipts_sent",
            "RECEIPT frames sent.",
            t.receipts.get(),
        )?;
        counters(
            e,
            "wrenmq_errors_sent",
            "ERROR frames sent (each closes its connection), by why.",
            &[
                CloseReason::Error,
                CloseReason::HeartbeatTimeout,
                CloseReason::Admin,
                CloseReason::AuthFailed,
                CloseReason::Shutdown,
            ]
            .iter()
            .map(|&r| (vec![("kind", r.as_str().to_string())], t.errors(r)))
            .collect::<Vec<_>>(),
        )?;
        counter(
            e,
            "wrenmq_slow_consumer_disconnects",
            "Connections closed because a write to them timed out.",
            Transport::ALL
                .iter()
                .map(|&tr| t.closed(tr, CloseReason::SlowConsumer))
                .sum(),
        )?;

        // Messages.
        counter(
            e,
            "wrenmq_messages_received",
            "Messages producers handed to the broker.",
            s.received.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_routed",
            "Messages that reached at least one queue.",
            s.routed.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_unroutable",
            "Messages that reached no queue.",
            s.unroutable.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_delivered",
            "Deliveries to consumers.",
            s.delivered.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_acknowledged",
            "Messages acknowledged.",
            s.acknowledged.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_nacked",
            "Deliveries refused by NACK.",
            s.nacked.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_redelivered",
            "Deliveries of messages delivered before.",
            s.redelivered.get(),
        )?;
        counter(
            e,
            "wrenmq_messages_expired",
            "Messages that expired.",
            s.expired.get(),
        )?;
        counters(
            e,
            "wrenmq_messages_dead_lettered",
            "Messages sent to a dead-letter address, by why.",
            &[
                (
                    vec![("reason", "max_deliveries".to_string())],
                    s.dead_max_deliveries.get(),
                ),
                (
                    vec![("reason", "rejected".to_string())],
                    s.dead_rejected.get(),
                ),
            ],
        )?;
        counter(
            e,
            "wrenmq_queues_created",
            "Queues created since start.",
            s.queues_created.get(),
        )?;
        counter(
            e,
            "wrenmq_queues_deleted",
            "Queues deleted since start.",
            s.queues_deleted.get(),
        )?;

        // Memory and disk.
        let memory = b.memory();
        gauge(
            e,
            "wrenmq_memory_messages_bytes",
            "Bytes of messages held in memory (global-max-size counts these).",
            memory.bytes() as f64,
        )?;
        gauge(
            e,
            "wrenmq_memory_limit_bytes",
            "global-max-size.",
            memory.limit().unwrap_or(0) as f64,
        )?;
        let disk = b.disk();
        let usage = b
            .persistent()
            .then(|| crate::broker::read_usage(disk.dir()).ok())
            .flatten();
        if let Some(u) = usage {
            gauge(
                e,
                "wrenmq_disk_free_bytes",
                "Bytes the broker may still write on the journal's filesystem.",
                (u.total - u.used) as f64,
            )?;
            if let Some(max) = disk.max_percent() {
                gauge(
                    e,
                    "wrenmq_disk_free_limit_bytes",
                    "Free bytes below which persistent sends wait (max-disk-usage).",
                    (u.total as f64) * (100.0 - f64::from(max)) / 100.0,
                )?;
            }
        }
        gauges(
            e,
            "wrenmq_resource_alarm",
            "1 while a resource limit holds producers back.",
            &[
                (
                    vec![("resource", "memory".to_string())],
                    f64::from(u8::from(memory.is_full())),
                ),
                (
                    vec![("resource", "disk".to_string())],
                    f64::from(u8::from(disk.is_full())),
                ),
            ],
        )?;
        let p = super::process::read();
        gauge(
            e,
            "wrenmq_process_resident_memory_bytes",
            "Resident memory of the broker process.",
            p.rss_bytes as f64,
        )?;
        gauge(
            e,
            "wrenmq_process_open_fds",
            "Open file descriptors of the broker process.",
            p.open_fds as f64,
        )?;
        let mut cpu = e.encode_descriptor(
            "wrenmq_process_cpu_seconds",
            "CPU time of the broker process.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(p.cpu_seconds)
            .encode(cpu.encode_family(&Vec::<(&str, String)>::new())?)?;

        // Configuration reloads.
        if let Some(r) = &ctx.reload {
            let (applied, rejected, loaded_at) = r.figures();
            counters(
                e,
                "wrenmq_config_reloads",
                "Configuration reloads (SIGHUP, file watcher, API), by result.",
                &[
                    (vec![("result", "applied".to_string())], applied),
                    (vec![("result", "rejected".to_string())], rejected),
                ],
            )?;
            gauge(
                e,
                "wrenmq_config_last_reload_success_timestamp_seconds",
                "When the running configuration was loaded (Unix seconds).",
                loaded_at as f64 / 1000.0,
            )?;
        }

        // The journal's group commits.
        if let Some(j) = b.journal() {
            counter(
                e,
                "wrenmq_journal_commits",
                "Group commits of the journal.",
                j.commit_count(),
            )?;
            counter(
                e,
                "wrenmq_journal_commit_failures",
                "Group commits that failed (their producers got an ERROR).",
                j.stats().failures.load(Ordering::Relaxed),
            )?;
            let f = j.stats().commit_seconds.figures();
            e.encode_descriptor(
                "wrenmq_journal_commit_seconds",
                "Time one group commit took (write and fsync).",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                f.sum, f.count, &f.buckets, None,
            )?;
            let f = j.stats().commit_ops.figures();
            e.encode_descriptor(
                "wrenmq_journal_commit_messages",
                "Operations one group commit carried (the batch size).",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                f.sum, f.count, &f.buckets, None,
            )?;
            gauge(
                e,
                "wrenmq_journal_size_bytes",
                "Size of the journal file.",
                j.file_size() as f64,
            )?;
        }

        // Addresses and queues.
        let addresses = b.addresses();
        let queues = b.queues();
        gauge(e, "wrenmq_addresses", "Addresses.", addresses.len() as f64)?;
        gauge(e, "wrenmq_queues", "Queues.", queues.len() as f64)?;
        gauge(
            e,
            "wrenmq_subscriptions",
            "Subscriptions of live connections.",
            live.iter().map(|c| c.subscriptions().len()).sum::<usize>() as f64,
        )?;
        let addr = |a: &crate::broker::AddressView| vec![("address", a.name.to_string())];
        counters(
            e,
            "wrenmq_address_messages_routed",
            "Messages sent to the address that reached a queue.",
            &addresses
                .iter()
                .map(|a| (addr(a), a.usage.stats.routed.load(Ordering::Relaxed)))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "wrenmq_address_messages_unroutable",
            "Messages sent to the address that reached no queue.",
            &addresses
                .iter()
                .map(|a| (addr(a), a.usage.stats.unroutable.load(Ordering::Relaxed)))
                .collect::<Vec<_>>(),
        )?;
        let shown: Vec<_> = queues
            .iter()
            // Temporary queues and non-durable topic subscriptions come and go with their
            // connections: in the per-object view only, so the default scrape's series stay
            // few and stable (Artemis keeps such queues out of its metrics too).
            .filter(|q| {
                self.per_object
                    || !(q.exclusive_to_subscriber || crate::broker::is_temporary_name(&q.address))
            })
            .filter(|q| self.queues.as_ref().is_none_or(|r| r.is_match(&q.name)))
            .map(|q| {
                let labels: Labels = vec![
                    ("address", q.address.to_string()),
                    ("queue", q.name.to_string()),
                    ("routing_type", routing(q.routing)),
                ];
                (labels, q.stats.snapshot())
            })
            .collect();
        type Pick = fn(&crate::broker::QueueFigures) -> u64;
        let queue_gauges: [(&str, &str, Pick); 9] = [
            (
                "wrenmq_queue_messages_ready",
                "Messages waiting to be delivered (in memory or paged).",
                |f| f.ready,
            ),
            ("wrenmq_queue_messages_paged", "Of those, on disk.", |f| {
                f.paged
            }),
            (
                "wrenmq_queue_messages_in_flight",
                "Delivered, not yet acknowledged.",
                |f| f.in_flight,
            ),
            (
                "wrenmq_queue_messages_scheduled",
                "Waiting for their delivery time or redelivery delay.",
                |f| f.scheduled,
            ),
            (
                "wrenmq_queue_messages",
                "Every message the queue holds.",
                |f| f.messages(),
            ),
            (
                "wrenmq_queue_messages_bytes",
                "Bytes of the messages waiting in memory.",
                |f| f.bytes,
            ),
            ("wrenmq_queue_consumers", "Consumers attached.", |f| {
                f.consumers
            }),
            (
                "wrenmq_queue_head_message_timestamp_seconds",
                "Arrival time (Unix seconds) of the oldest waiting message; absent when none waits.",
                |f| f.oldest_ms,
            ),
            (
                "wrenmq_queue_paused",
                "1 while an operator paused dispatch.",
                |f| u64::from(f.paused),
            ),
        ];
        for (name, help, pick) in queue_gauges {
            let head = name.ends_with("timestamp_seconds");
            let rows: Vec<(Labels, f64)> = shown
                .iter()
                .filter(|(_, f)| !head || f.oldest_ms > 0)
                .map(|(l, f)| {
                    let v = pick(f) as f64;
                    (l.clone(), if head { v / 1000.0 } else { v })
                })
                .collect();
            gauges(e, name, help, &rows)?;
        }
        let queue_counters: [(&str, &str, Pick); 8] = [
            (
                "wrenmq_queue_messages_enqueued",
                "Messages that entered the queue.",
                |f| f.enqueued,
            ),
            (
                "wrenmq_queue_messages_delivered",
                "Deliveries to its consumers.",
                |f| f.delivered,
            ),
            (
                "wrenmq_queue_messages_acknowledged",
                "Messages acknowledged.",
                |f| f.acknowledged,
            ),
            (
                "wrenmq_queue_messages_redelivered",
                "Deliveries of messages delivered before.",
                |f| f.redelivered,
            ),
            (
                "wrenmq_queue_messages_nacked",
                "Deliveries refused by NACK.",
                |f| f.nacked,
            ),
            (
                "wrenmq_queue_messages_expired",
                "Messages that expired here.",
                |f| f.expired,
            ),
            (
                "wrenmq_queue_messages_dead_lettered",
                "Messages sent on to the dead-letter address.",
                |f| f.dead_lettered,
            ),
            (
                "wrenmq_queue_messages_removed",
                "Messages an operator removed (purge, delete, move).",
                |f| f.removed,
            ),
        ];
        for (name, help, pick) in queue_counters {
            let rows: Vec<(Labels, u64)> =
                shown.iter().map(|(l, f)| (l.clone(), pick(f))).collect();
            counters(e, name, help, &rows)?;
        }

        if self.per_object {
            let conn = |c: &crate::session::ConnectionInfo| vec![("connection", c.id.to_string())];
            type PickC = fn(&crate::session::ConnectionInfo) -> u64;
            let per_conn: [(&str, &str, PickC); 4] = [
                (
                    "wrenmq_connection_messages_received",
                    "SEND frames accepted from the connection.",
                    |c| c.messages_in.load(Ordering::Relaxed),
                ),
                (
                    "wrenmq_connection_messages_sent",
                    "MESSAGE frames written to the connection.",
                    |c| c.messages_out.load(Ordering::Relaxed),
                ),
                (
                    "wrenmq_connection_bytes_received",
                    "Bytes read from the connection.",
                    |c| c.bytes_in.load(Ordering::Relaxed),
                ),
                (
                    "wrenmq_connection_bytes_sent",
                    "Bytes written to the connection.",
                    |c| c.bytes_out.load(Ordering::Relaxed),
                ),
            ];
            for (name, help, pick) in per_conn {
                let rows: Vec<(Labels, u64)> = live.iter().map(|c| (conn(c), pick(c))).collect();
                counters(e, name, help, &rows)?;
            }
            let rows: Vec<(Labels, f64)> = live
                .iter()
                .map(|c| (conn(c), c.pending_bytes.load(Ordering::Relaxed) as f64))
                .collect();
            gauges(
                e,
                "wrenmq_connection_pending_bytes",
                "Bytes of deliveries handed to the connection and not yet written.",
                &rows,
            )?;
            let mut rows: Vec<(Labels, f64)> = Vec::new();
            for c in &live {
                for sub in c.subscriptions() {
                    let st = &sub.stats;
                    let out = st.delivered.load(Ordering::Relaxed);
                    let settled =
                        st.acked.load(Ordering::Relaxed) + st.nacked.load(Ordering::Relaxed);
                    rows.push((
                        vec![
                            ("connection", c.id.to_string()),
                            ("subscription", sub.id.clone()),
                            ("queue", sub.queue.clone()),
                        ],
                        out.saturating_sub(settled) as f64,
                    ));
                }
            }
            gauges(
                e,
                "wrenmq_subscription_in_flight",
                "Messages written to the subscription and not yet settled.",
                &rows,
            )?;
        }
        Ok(())
    }
}

/// Encodes one scrape.
pub fn render(
    ctx: Arc<AdminContext>,
    queues: Option<regex::Regex>,
    per_object: bool,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        ctx,
        queues,
        per_object,
    }));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}
