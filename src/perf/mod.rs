//! `wrenmq perf`: a STOMP load generator usable against any broker.
//!
//! Scenarios: [`Scenario::Queue`] (producers and competing consumers), [`Scenario::Fanout`]
//! (one producer, many topic subscribers), [`Scenario::Latency`] (fixed rate, latency
//! measured from each message's intended send time, so without coordinated omission),
//! [`Scenario::Connections`] (many idle subscribed connections, broker RSS),
//! [`Scenario::Scheduled`] (many scheduled messages held by the broker, RSS per message),
//! [`Scenario::Replay`] (a retained stream preloaded, then read from its first offset: rate
//! and broker RSS while replaying) and
//! [`Scenario::EchoServer`] (a single-threaded forwarder that does only STOMP framing: the
//! ceiling any broker could reach with this tool on this machine).
//!
//! Every message carries `wrenmq-perf: RUN.PRODUCER.SEQ.SENT_US`; each subscriber's
//! [`tracker::Tracker`] reports lost and duplicated messages, and [`run`] returns a
//! [`Report`] whose [`Report::ok`] is false on any loss, duplicate or error. With
//! `--property-cycle` and `--selector` ([`select`]) a subscriber is expected to get exactly
//! the messages its selector picks, and a message outside it is reported too.

pub mod client;
mod connections;
mod consumer;
pub mod echo;
pub mod inbound;
mod latency;
mod monitor;
mod producer;
mod replay;
mod report;
mod scheduled;
pub mod select;
mod shared;
mod throughput;
pub mod tracker;

pub use report::{Latency, Report, RssReport};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Arguments of `wrenmq perf`.
#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// What to measure (boxed: the scenarios' options are large, and `wrenmq`'s command
    /// enum holds this by value).
    #[command(subcommand)]
    pub scenario: Box<Scenario>,
}

/// The perf scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Producers and competing consumers on one destination (or, with `--queues`, on several
    /// independent ones): throughput and latency.
    Queue(QueueArgs),
    /// One producer, many subscribers on a topic: every subscriber must get every message.
    Fanout(FanoutArgs),
    /// One producer at a fixed rate, one consumer: latency percentiles (HDR histogram)
    /// measured from each message's scheduled send time.
    Latency(LatencyArgs),
    /// Opens many idle connections, each with one subscription; reports the time taken and
    /// the broker's memory per connection.
    Connections(ConnectionsArgs),
    /// Sends messages with `AMQ_SCHEDULED_DELAY` to a queue nobody consumes; reports the
    /// broker's memory per scheduled message and checks that none is delivered early.
    Scheduled(ScheduledArgs),
    /// Preloads a retained stream (a non-destructive queue) with N messages, then times one
    /// consumer reading them all from `x-stream-offset:first`, sampling the broker's memory
    /// while it replays.
    Replay(ReplayArgs),
    /// Runs the ceiling: a single-threaded STOMP forwarder that does only framing (SEND to
    /// MESSAGE, round-robin on queues, a copy per topic subscriber, receipts), so that no
    /// broker can beat it with this tool on this machine.
    EchoServer(EchoArgs),
}

/// Options shared by every client scenario.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker STOMP port.
    #[arg(long, default_value_t = 61613)]
    pub port: u16,
    /// CONNECT `login`.
    #[arg(long)]
    pub login: Option<String>,
    /// CONNECT `passcode`.
    #[arg(long)]
    pub passcode: Option<String>,
    /// CONNECT `host` header (virtual host).
    #[arg(long, default_value = "/")]
    pub vhost: String,
    /// Destination, used verbatim (e.g. /queue/perf, /topic/perf). Default: /queue/perf, or
    /// /topic/perf for fanout.
    #[arg(long)]
    pub destination: Option<String>,
    /// Extra SUBSCRIBE header as NAME:VALUE (repeatable), e.g. activemq.prefetchSize:1000.
    #[arg(long = "sub-header", value_name = "NAME:VALUE", value_parser = parse_header)]
    pub sub_headers: Vec<(String, String)>,
    /// Print only the JSON line on stdout (the human summary goes to stderr). The JSON line
    /// is printed in every case.
    #[arg(long)]
    pub json: bool,
    /// Abort when neither sends nor receives progress for this many seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub stall_timeout: u64,
}

impl Common {
    /// `host:port` of the broker under test.
    pub fn broker(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn destination_or(&self, default: &str) -> String {
        self.destination
            .clone()
            .unwrap_or_else(|| default.to_string())
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not NAME:VALUE")),
    }
}

/// SUBSCRIBE ack modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckArg {
    /// The broker considers a message consumed once sent.
    Auto,
    /// Cumulative ACK of every k-th message (see `--ack-every`).
    Client,
    /// One ACK per message (written in batches).
    ClientIndividual,
}

impl AckArg {
    fn header(self) -> &'static str {
        match self {
            AckArg::Auto => "auto",
            AckArg::Client => "client",
            AckArg::ClientIndividual => "client-individual",
        }
    }
}

/// Message options shared by the sending scenarios.
#[derive(Debug, Clone, Args)]
pub struct MessageArgs {
    /// Body size in bytes.
    #[arg(short = 's', long = "size", default_value_t = 256)]
    pub size: usize,
    /// Send an explicit `persistent` header with this value (absent: no header).
    #[arg(long, value_name = "true|false")]
    pub persistent: Option<bool>,
    /// Ask for a RECEIPT every k sends (and always on the last) and wait for each; 0: only
    /// on the last.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub receipt_every: u64,
    /// Subscription ack mode.
    #[arg(long, value_enum, default_value_t = AckArg::Auto)]
    pub ack: AckArg,
    /// With --ack client: acknowledge cumulatively every k-th message (and when idle).
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub ack_every: u64,
    /// Give every message header NAME, cycling through the values: message i of a producer
    /// gets V[i % k] (`color=red,blue`: half red). Repeatable, one per header.
    #[arg(long = "property-cycle", value_name = "NAME=V1,V2,...", value_parser = select::parse_property_cycle)]
    pub property_cycles: Vec<select::PropertyCycle>,
    /// Send a `priority` header cycling through these (0 to 9; a list, ranges allowed:
    /// `0-9`, `0,4,9`): message i of a producer gets P[i % k].
    #[arg(long, value_name = "LIST", value_parser = select::parse_priority_cycle)]
    pub priority_cycle: Option<select::PriorityCycle>,
    /// SUBSCRIBE `selector` header. Repeatable: consumer c gets the (c % count)-th. Must be
    /// NAME = 'VALUE' over a --property-cycle NAME, so that the tool knows exactly which
    /// messages each subscriber must get (and reports any other it gets).
    #[arg(long = "selector", value_name = "SELECTOR")]
    pub selectors: Vec<String>,
}

impl MessageArgs {
    /// The selector of consumer `c`, if any.
    fn selector(&self, c: u32) -> Option<&str> {
        select::cycled(&self.selectors, c as usize).map(String::as_str)
    }

    /// Adds the property, priority and selector options to a report's params, only those
    /// given (so the params of a run without them are as before).
    fn add_property_params(&self, params: &mut Value) {
        if !self.property_cycles.is_empty() {
            params["property_cycles"] = json!(
                self.property_cycles
                    .iter()
                    .map(|c| format!("{}={}", c.name, c.values.join(",")))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(p) = &self.priority_cycle {
            params["priority_cycle"] = json!(p.0);
        }
        if !self.selectors.is_empty() {
            params["selectors"] = json!(self.selectors);
        }
    }
}

/// `perf queue`.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub message: MessageArgs,
    /// Producers.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub producers: u32,
    /// Consumers.
    #[arg(short = 'C', long, default_value_t = 1)]
    pub consumers: u32,
    /// Messages in total (split across producers).
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub messages: u64,
    /// Independent queues (the scaling scenario's P pairs): with Q > 1, producer i sends to
    /// DEST.(i % Q) and consumer c subscribes to DEST.(c % Q), each queue tracked on its
    /// own (JSON `per_queue`). Needs at least Q producers and Q consumers.
    #[arg(long, default_value_t = 1, value_name = "Q")]
    pub queues: u32,
}

/// `perf fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub message: MessageArgs,
    /// Subscribers; each must receive every message.
    #[arg(short = 'C', long, default_value_t = 4)]
    pub consumers: u32,
    /// Messages sent.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub messages: u64,
}

/// `perf latency`.
#[derive(Debug, Clone, Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub message: MessageArgs,
    /// Messages per second.
    #[arg(short = 'r', long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds to send for.
    #[arg(short = 't', long, default_value_t = 10)]
    pub time: u64,
}

/// `perf connections`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Connections to open.
    #[arg(short = 'k', long, default_value_t = 1000)]
    pub connections: u32,
    /// Broker process id, to read its VmRSS from /proc/PID/status before and after.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Seconds to keep the connections open once all are open.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub hold: u64,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 64)]
    pub parallel: u32,
}

/// `perf scheduled`.
#[derive(Debug, Clone, Args)]
pub struct ScheduledArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Messages to schedule.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub messages: u64,
    /// `AMQ_SCHEDULED_DELAY` of every message, ms (default one hour: longer than the run).
    #[arg(long, default_value_t = 3_600_000, value_name = "MS")]
    pub delay_ms: u64,
    /// Body size in bytes.
    #[arg(short = 's', long = "size", default_value_t = 16)]
    pub size: usize,
    /// `persistent` header of every message.
    #[arg(long, value_name = "true|false", default_value_t = false, action = clap::ArgAction::Set)]
    pub persistent: bool,
    /// Ask for a RECEIPT every k sends (and on the last) and wait for each, so the broker
    /// has every message before its memory is read.
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub receipt_every: u64,
    /// Broker process id, to read its VmRSS from /proc/PID/status before and after.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Afterwards, subscribe for this long and fail if any message arrives before its time
    /// (0: skip the check).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub probe_ms: u64,
}

/// `perf replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub message: MessageArgs,
    /// Messages to preload and replay. Default destination: /queue/perf-stream, which the
    /// broker must hold as a non-destructive queue.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Broker process id, to sample its VmRSS from /proc/PID/status while replaying.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
}

/// `perf echo-server`.
#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 61613)]
    pub port: u16,
}

/// Why a perf run could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// A failure described in words.
    #[error("{0}")]
    Msg(String),
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The broker sent an ERROR frame.
    #[error("the broker sent ERROR: {0}")]
    Broker(String),
}

impl PerfError {
    fn msg(m: impl Into<String>) -> Self {
        PerfError::Msg(m.into())
    }

    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PerfError::Io {
            what: what.into(),
            source,
        }
    }

    fn broker(f: &crate::stomp::Frame) -> Self {
        let message = f.get("message").unwrap_or("(no message header)");
        let body = String::from_utf8_lossy(&f.body);
        let body = body.trim();
        if body.is_empty() || body == message {
            PerfError::Broker(message.to_string())
        } else {
            PerfError::Broker(format!("{message} ({body})"))
        }
    }
}

/// Runs a client scenario to its end and returns its report. The echo server never ends
/// by itself and is run by [`echo_server`] instead; asking for it here is an error.
pub async fn run(args: &PerfArgs) -> Result<Report, PerfError> {
    match args.scenario.as_ref() {
        Scenario::Queue(a) => throughput::queue(a).await,
        Scenario::Fanout(a) => throughput::fanout(a).await,
        Scenario::Latency(a) => latency::run(a).await,
        Scenario::Connections(a) => connections::run(a).await,
        Scenario::Scheduled(a) => scheduled::run(a).await,
        Scenario::Replay(a) => replay::run(a).await,
        Scenario::EchoServer(_) => Err(PerfError::msg(
            "echo-server is a server: start it with echo_server",
        )),
    }
}

/// `wrenmq perf echo-server`: binds, prints the listening line on stderr, and forwards on
/// the calling thread (no async runtime: see [`echo`]) until the process is killed.
pub fn echo_server(e: &EchoArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    match echo::EchoServer::bind(&e.host, e.port) {
        Ok(server) => {
            eprintln!("perf echo-server listening on {}", server.local_addr());
            match server.run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("wrenmq perf: echo-server: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(err) => {
            eprintln!("wrenmq perf: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The command-line entry point: runs the scenario (or the echo server until Ctrl-C),
/// prints the summary and the JSON line, and returns the process exit code (0 only when
/// every message arrived exactly once and nothing failed).
pub async fn main(args: PerfArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    if let Scenario::EchoServer(e) = args.scenario.as_ref() {
        // Never on a runtime worker: the forwarder is a blocking loop on a thread of its own.
        let e = e.clone();
        return tokio::task::spawn_blocking(move || echo_server(&e))
            .await
            .unwrap_or(ExitCode::FAILURE);
    }
    let json_only = match args.scenario.as_ref() {
        Scenario::Queue(a) => a.common.json,
        Scenario::Fanout(a) => a.common.json,
        Scenario::Latency(a) => a.common.json,
        Scenario::Connections(a) => a.common.json,
        Scenario::Scheduled(a) => a.common.json,
        Scenario::Replay(a) => a.common.json,
        Scenario::EchoServer(_) => false,
    };
    match run(&args).await {
        Ok(report) => {
            if json_only {
                eprint!("{}", report.human());
            } else {
                print!("{}", report.human());
            }
            println!("{}", report.json_line());
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("wrenmq perf: {e}");
            ExitCode::from(2)
        }
    }
}
