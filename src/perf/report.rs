//! The end-of-run report: a human summary and one JSON line.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Samples.
    pub count: u64,
}

impl Latency {
    /// Percentiles of a histogram (all zero when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            count: h.len(),
        }
    }
}

/// Broker memory measured by `perf connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RssReport {
    /// VmRSS before opening the connections, KiB.
    pub before_kb: u64,
    /// VmRSS with every connection open, KiB.
    pub after_kb: u64,
}

/// What the replay scenario adds: how long the preload took (its replay time is the
/// report's `elapsed_secs`, and the peak VmRSS while replaying its `rss.after_kb`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReplayReport {
    /// Seconds to send the retained messages.
    pub preload_secs: f64,
}

/// Exactly-once figures of one subscriber (fanout) or of the whole queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Messages it should have received.
    pub expected: u64,
    /// Expected messages never received.
    pub lost: u64,
    /// Extra copies received.
    pub duplicated: u64,
    /// Messages received that this run did not send.
    pub foreign: u64,
    /// Messages of this run received although the subscriber's selector excludes them.
    pub excluded: u64,
}

/// What `perf scheduled` found besides the broker's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduledReport {
    /// The `AMQ_SCHEDULED_DELAY` every message carried, ms.
    pub delay_ms: u64,
    /// Messages of this run a subscriber got before their time, when the probe ran.
    pub early: Option<u64>,
    /// How long the probe subscriber listened, ms.
    pub probe_ms: u64,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// `host:port` of the broker.
    pub broker: String,
    /// The run's parameters.
    pub params: Value,
    /// Messages sent.
    pub sent: u64,
    /// MESSAGE frames received, over all subscribers, duplicates and foreign included.
    pub received: u64,
    /// Exactly-once figures per subscriber group (one entry, or one per fanout subscriber).
    pub deliveries: Vec<Delivery>,
    /// Seconds from the first send to the last needed arrival.
    pub elapsed_secs: f64,
    /// Body bytes of each message.
    pub message_size: usize,
    /// Latency from (intended) send to receipt.
    pub latency: Latency,
    /// How long RECEIPTs took, from writing the SEND that asked for one to reading it
    /// (the latency scenario with `--receipt-every`).
    pub receipt_latency: Option<Latency>,
    /// Broker memory (connections scenario).
    pub rss: Option<RssReport>,
    /// Connections opened (connections scenario).
    pub connections: u64,
    /// The scheduled scenario's own findings.
    pub scheduled: Option<ScheduledReport>,
    /// The replay scenario's own findings.
    pub replay: Option<ReplayReport>,
    /// Why the run ended early, if it did.
    pub error: Option<String>,
    /// Whether `deliveries` holds one entry per queue (`perf queue --queues Q`) rather than
    /// one per fan-out subscriber: it decides how the summary and JSON name them.
    pub per_queue: bool,
}

impl Report {
    /// Expected messages never received, over all subscribers.
    pub fn lost(&self) -> u64 {
        self.deliveries.iter().map(|d| d.lost).sum()
    }

    /// Duplicate arrivals, over all subscribers.
    pub fn duplicated(&self) -> u64 {
        self.deliveries.iter().map(|d| d.duplicated).sum()
    }

    /// Deliveries outside the receiving subscriber's selector, over all subscribers.
    pub fn excluded(&self) -> u64 {
        self.deliveries.iter().map(|d| d.excluded).sum()
    }

    /// Messages delivered before their scheduled time (scheduled scenario).
    pub fn early(&self) -> u64 {
        self.scheduled.and_then(|s| s.early).unwrap_or(0)
    }

    /// Sent messages per second (the scheduled scenario's rate: nothing is received).
    pub fn sent_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.sent as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// Broker memory growth per sent message, bytes (scheduled scenario).
    pub fn bytes_per_message(&self) -> Option<f64> {
        let r = self.rss?;
        (self.sent > 0)
            .then(|| r.after_kb.saturating_sub(r.before_kb) as f64 * 1024.0 / self.sent as f64)
    }

    /// Received messages per second (every subscriber's copies count).
    pub fn msgs_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.received as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// Received body megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.msgs_per_sec() * self.message_size as f64 / 1e6
    }

    /// True when every message arrived exactly once at the subscribers meant to get it,
    /// none arrived where a selector excludes it or before its scheduled time, and nothing
    /// failed.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.lost() == 0
            && self.duplicated() == 0
            && self.excluded() == 0
            && self.early() == 0
    }

    /// One sentence on exactly-once delivery.
    pub fn verdict(&self) -> String {
        if let Some(e) = &self.error {
            return match self.scenario {
                "connections" | "scheduled" => format!("FAILED: {e}"),
                _ => format!(
                    "FAILED: {e}; {} lost, {} duplicated",
                    self.lost(),
                    self.duplicated()
                ),
            };
        }
        if self.ok() && self.scenario == "connections" {
            return format!(
                "OK: all {} connections opened and subscribed",
                self.connections
            );
        }
        if let Some(sch) = self.scheduled {
            return match sch.early {
                Some(0) => format!(
                    "OK: {} messages scheduled, none delivered within {} ms",
                    self.sent, sch.probe_ms
                ),
                None => format!(
                    "OK: {} messages scheduled (early delivery not checked)",
                    self.sent
                ),
                Some(n) => format!(
                    "DISCREPANCY: {n} of {} scheduled messages delivered before their time",
                    self.sent
                ),
            };
        }
        if self.ok() {
            return "OK: every message received exactly once".to_string();
        }
        let mut s = format!(
            "DISCREPANCY: {} lost, {} duplicated",
            self.lost(),
            self.duplicated()
        );
        if self.excluded() > 0 {
            let _ = write!(s, ", {} outside the selector", self.excluded());
        }
        if self.deliveries.len() > 1 {
            let what = if self.per_queue {
                "queue"
            } else {
                "subscriber"
            };
            for (i, d) in self.deliveries.iter().enumerate() {
                if d.lost > 0 || d.duplicated > 0 || d.excluded > 0 {
                    let _ = write!(
                        s,
                        "; {what} {i}: {} lost, {} duplicated",
                        d.lost, d.duplicated
                    );
                    if d.excluded > 0 {
                        let _ = write!(s, ", {} outside the selector", d.excluded);
                    }
                }
            }
        }
        s
    }

    /// The human-readable summary (several lines).
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "scenario {} against {}", self.scenario, self.broker);
        if let Some(sch) = self.scheduled {
            let _ = writeln!(
                s,
                "scheduled {} messages (delay {} ms) in {:.3} s: {:.0} msgs/s sent",
                self.sent,
                sch.delay_ms,
                self.elapsed_secs,
                self.sent_per_sec()
            );
            if let (Some(r), Some(b)) = (self.rss, self.bytes_per_message()) {
                let _ = writeln!(
                    s,
                    "broker VmRSS {} KiB before, {} KiB after: {:.0} bytes per scheduled message",
                    r.before_kb, r.after_kb, b
                );
            }
        } else if self.scenario == "connections" {
            let _ = writeln!(
                s,
                "opened {} connections in {:.3} s ({:.0} conn/s)",
                self.connections,
                self.elapsed_secs,
                if self.elapsed_secs > 0.0 {
                    self.connections as f64 / self.elapsed_secs
                } else {
                    0.0
                }
            );
            if let Some(r) = self.rss {
                let _ = writeln!(
                    s,
                    "broker VmRSS {} KiB before, {} KiB after: {:.1} KiB per connection",
                    r.before_kb,
                    r.after_kb,
                    per_connection_kb(r, self.connections)
                );
            }
        } else {
            let _ = writeln!(
                s,
                "sent {} received {} in {:.3} s: {:.0} msgs/s, {:.2} MB/s",
                self.sent,
                self.received,
                self.elapsed_secs,
                self.msgs_per_sec(),
                self.mb_per_sec()
            );
            if let Some(r) = self.replay {
                let _ = writeln!(
                    s,
                    "preloaded {} messages in {:.3} s",
                    self.sent, r.preload_secs
                );
                if let Some(rss) = self.rss {
                    let _ = writeln!(
                        s,
                        "broker VmRSS {} KiB before the replay, {} KiB at most during it",
                        rss.before_kb, rss.after_kb
                    );
                }
            }
            let l = self.latency;
            let _ = writeln!(
                s,
                "latency us: p50 {} p99 {} p99.9 {} max {} ({} samples)",
                l.p50_us, l.p99_us, l.p999_us, l.max_us, l.count
            );
            if let Some(r) = self.receipt_latency {
                let _ = writeln!(
                    s,
                    "RECEIPT us: p50 {} p99 {} p99.9 {} max {} ({} receipts)",
                    r.p50_us, r.p99_us, r.p999_us, r.max_us, r.count
                );
            }
            let foreign: u64 = self.deliveries.iter().map(|d| d.foreign).sum();
            if foreign > 0 {
                let _ = writeln!(s, "ignored {foreign} messages not sent by this run");
            }
        }
        let _ = writeln!(s, "{}", self.verdict());
        s
    }

    /// The report as one JSON object.
    pub fn json(&self) -> Value {
        let mut v = json!({
            "scenario": self.scenario,
            "broker": self.broker,
            "params": self.params,
            "ok": self.ok(),
            "verdict": self.verdict(),
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost(),
            "duplicated": self.duplicated(),
            "foreign": self.deliveries.iter().map(|d| d.foreign).sum::<u64>(),
            "elapsed_secs": round3(self.elapsed_secs),
            "msgs_per_sec": round3(self.msgs_per_sec()),
            "mb_per_sec": round3(self.mb_per_sec()),
            "p50_us": self.latency.p50_us,
            "p99_us": self.latency.p99_us,
            "p999_us": self.latency.p999_us,
            "max_us": self.latency.max_us,
            "error": self.error,
        });
        if self.deliveries.len() > 1 {
            let key = if self.per_queue {
                "per_queue"
            } else {
                "per_subscriber"
            };
            v[key] = self
                .deliveries
                .iter()
                .map(
                    |d| json!({"expected": d.expected, "lost": d.lost, "duplicated": d.duplicated}),
                )
                .collect();
        }
        if self.scenario == "connections" {
            v["connections"] = json!(self.connections);
        }
        if let Some(r) = self.receipt_latency {
            v["receipt_p50_us"] = json!(r.p50_us);
            v["receipt_p99_us"] = json!(r.p99_us);
            v["receipt_p999_us"] = json!(r.p999_us);
            v["receipts"] = json!(r.count);
        }
        if self.excluded() > 0 || self.params.get("selectors").is_some() {
            v["excluded"] = json!(self.excluded());
        }
        if let Some(r) = self.rss {
            v["rss_before_kb"] = json!(r.before_kb);
            v["rss_after_kb"] = json!(r.after_kb);
            if self.scenario == "replay" {
                v["rss_peak_kb"] = json!(r.after_kb);
            } else if self.scheduled.is_none() {
                v["rss_per_connection_kb"] = json!(round3(per_connection_kb(r, self.connections)));
            }
        }
        if let Some(r) = self.replay {
            v["preload_secs"] = json!(round3(r.preload_secs));
        }
        if let Some(sch) = self.scheduled {
            v["delay_ms"] = json!(sch.delay_ms);
            v["sent_per_sec"] = json!(round3(self.sent_per_sec()));
            v["early_deliveries"] = json!(sch.early);
            v["probe_ms"] = json!(sch.probe_ms);
            v["bytes_per_message"] = json!(self.bytes_per_message().map(round3));
        }
        v
    }

    /// [`Report::json`] on one line.
    pub fn json_line(&self) -> String {
        self.json().to_string()
    }
}

fn per_connection_kb(r: RssReport, connections: u64) -> f64 {
    if connections == 0 {
        return 0.0;
    }
    r.after_kb.saturating_sub(r.before_kb) as f64 / connections as f64
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A latency histogram covering 1 µs to 1 hour at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}
