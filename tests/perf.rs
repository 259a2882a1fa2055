//! `wrenmq perf` against an in-process broker and against its own echo server: the
//! exactly-once verdict, the JSON line, and the binary's exit code; the message property,
//! priority and selector options and the scheduled scenario, seen by a raw subscriber;
//! independent queue pairs (`--queues`), each tracked on its own.

mod common;

use std::net::SocketAddr;

use clap::Parser;
use wrenmq::config::{AcceptorProtocol, Config};
use wrenmq::perf::{self, PerfArgs, Report};
use wrenmq::server::{self, RunningBroker};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    perf: Perf,
}

#[derive(clap::Subcommand)]
enum Perf {
    Perf(PerfArgs),
}

fn args(line: &[&str]) -> PerfArgs {
    let mut argv = vec!["wrenmq", "perf"];
    argv.extend_from_slice(line);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            perf: Perf::Perf(a),
        }) => a,
        Err(e) => panic!("bad arguments {line:?}: {e}"),
    }
}

async fn broker() -> (RunningBroker, SocketAddr) {
    let mut config = Config::default();
    config.journal.enabled = false;
    config.override_bind(
        AcceptorProtocol::Stomp,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    let running = server::start({
        let mut c = config;
        c.admin.bind.set_port(0);
        c
    })
    .await
    .expect("broker starts");
    let addr = running
        .addr(AcceptorProtocol::Stomp)
        .expect("stomp acceptor");
    (running, addr)
}

/// The echo server on a free port, on its own thread.
fn echo_server() -> perf::echo::EchoHandle {
    perf::echo::EchoServer::bind("127.0.0.1", 0)
        .and_then(perf::echo::EchoServer::spawn)
        .expect("the echo server starts")
}

fn check_ok(report: &Report, scenario: &str, received: u64) {
    assert!(report.ok(), "{}", report.human());
    assert_eq!(report.verdict(), "OK: every message received exactly once");
    let json: serde_json::Value =
        serde_json::from_str(&report.json_line()).expect("the JSON line parses");
    assert!(!report.json_line().contains('\n'));
    assert_eq!(json["scenario"], scenario);
    assert_eq!(json["received"], received);
    assert_eq!(json["lost"], 0);
    assert_eq!(json["duplicated"], 0);
    assert_eq!(json["ok"], true);
    for key in [
        "msgs_per_sec",
        "mb_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us",
    ] {
        assert!(json[key].is_number(), "{key} missing in {json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_fanout_against_the_broker_are_exactly_once() {
    let (running, addr) = broker().await;
    let port = addr.port().to_string();
    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "-P",
        "2",
        "-C",
        "2",
        "-n",
        "2000",
        "-s",
        "100",
        "--ack",
        "client",
        "--ack-every",
        "50",
        "--receipt-every",
        "100",
    ]))
    .await
    .expect("queue run");
    check_ok(&report, "queue", 2000);
    assert_eq!(report.sent, 2000);

    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "-n",
        "1000",
        "--ack",
        "client-individual",
        "--persistent",
        "true",
        "--destination",
        "/queue/perf-individual",
    ]))
    .await
    .expect("client-individual run");
    check_ok(&report, "queue", 1000);

    // Paced persistent sends asking for a RECEIPT every 50: the report times each RECEIPT.
    let report = perf::run(&args(&[
        "latency",
        "--port",
        &port,
        "-r",
        "1000",
        "-t",
        "1",
        "--persistent",
        "true",
        "--receipt-every",
        "50",
        "--destination",
        "/queue/perf-receipts",
    ]))
    .await
    .expect("latency run with receipts");
    check_ok(&report, "latency", 1000);
    let receipts = report.receipt_latency.expect("receipt latency reported");
    assert_eq!(receipts.count, 20, "one per 50 of 1,000 sends");
    assert!(receipts.p50_us > 0 && receipts.p99_us >= receipts.p50_us);
    assert_eq!(report.json()["receipts"], 20);

    let report = perf::run(&args(&["fanout", "--port", &port, "-C", "3", "-n", "1000"]))
        .await
        .expect("fanout run");
    check_ok(&report, "fanout", 3000);
    let json = report.json();
    assert_eq!(json["per_subscriber"].as_array().map(Vec::len), Some(3));

    let report = perf::run(&args(&[
        "connections",
        "--port",
        &port,
        "-k",
        "20",
        "--broker-pid",
        &std::process::id().to_string(),
    ]))
    .await
    .expect("connections run");
    assert!(report.ok(), "{}", report.human());
    assert_eq!(report.json()["connections"], 20);
    assert!(report.json()["rss_after_kb"].as_u64().unwrap_or(0) > 0);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_latency_against_the_echo_server() {
    let server = echo_server();
    let port = server.local_addr().port().to_string();
    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "-n",
        "5000",
        "--receipt-every",
        "500",
    ]))
    .await
    .expect("queue run");
    check_ok(&report, "queue", 5000);

    let report = perf::run(&args(&[
        "latency",
        "--port",
        &port,
        "-r",
        "500",
        "-t",
        "1",
        "--ack",
        "client-individual",
    ]))
    .await
    .expect("latency run");
    check_ok(&report, "latency", 500);
    assert!(report.latency.count == 500 && report.latency.max_us > 0);
    server.stop().expect("the echo server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_the_json_line_and_exits_zero() {
    let (running, addr) = broker().await;
    let port = addr.port().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .args(["perf", "queue", "--port", &port, "-n", "500", "--json"])
        .output()
        .await
        .expect("run wrenmq perf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    assert_eq!(json["verdict"], "OK: every message received exactly once");
    assert_eq!(json["sent"], 500);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_is_reported_and_fails_the_run() {
    // Fanout subscribers on a queue share the messages instead of each getting all of
    // them: every message is "lost" for one of the two, and the run stalls, then fails.
    let (running, addr) = broker().await;
    let port = addr.port().to_string();
    let report = perf::run(&args(&[
        "fanout",
        "--port",
        &port,
        "-C",
        "2",
        "-n",
        "200",
        "--destination",
        "/queue/shared",
        "--stall-timeout",
        "2",
    ]))
    .await
    .expect("run");
    assert!(!report.ok());
    assert_eq!(report.lost(), 200, "{}", report.human());
    assert!(
        report.verdict().starts_with("FAILED: no progress"),
        "{}",
        report.verdict()
    );
    running.shutdown().await;
}

/// The sequence number of a perf message, from its stamp header.
fn seq_of(f: &common::Frame) -> usize {
    f.h("wrenmq-perf")
        .split('.')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad stamp in {f:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_queues_deliver_every_message_on_its_own_queue() {
    let broker = common::start_default().await;
    let port = broker.addr.port().to_string();
    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "--destination",
        "/queue/pairs",
        "--queues",
        "4",
        "-P",
        "4",
        "-C",
        "4",
        "-n",
        "4002",
        "--persistent",
        "false",
    ]))
    .await
    .expect("pairs run");
    check_ok(&report, "queue", 4002);
    let json = report.json();
    assert_eq!(json["params"]["queues"], 4);
    let per_queue = json["per_queue"].as_array().cloned().unwrap_or_default();
    // 4002 split over 4 producers: 1001, 1001, 1000, 1000, one producer per queue.
    let expected: Vec<_> = per_queue.iter().map(|q| q["expected"].clone()).collect();
    assert_eq!(
        expected,
        [1001, 1001, 1000, 1000].map(serde_json::Value::from)
    );
    assert!(
        per_queue
            .iter()
            .all(|q| q["lost"] == 0 && q["duplicated"] == 0)
    );
    assert!(json.get("per_subscriber").is_none());

    // On topics the same layout lets a raw subscriber see what went to DEST.1: exactly
    // producer 1's messages, all of them.
    let mut raw = broker.client().await;
    raw.subscribe("/topic/pairs.1", "raw", &[]).await;
    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "--destination",
        "/topic/pairs",
        "--queues",
        "2",
        "-P",
        "2",
        "-C",
        "2",
        "-n",
        "20",
        "--persistent",
        "false",
    ]))
    .await
    .expect("pairs run on topics");
    check_ok(&report, "queue", 20);
    let got = raw.messages_until_quiet().await;
    let mut seqs: Vec<_> = got.iter().map(seq_of).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    assert!(
        got.iter()
            .all(|m| m.h("wrenmq-perf").split('.').nth(1) == Some("1")),
        "{got:?}"
    );

    // A queue without its own producer and consumer is refused before anything is sent.
    let err = perf::run(&args(&[
        "queue", "--port", &port, "--queues", "3", "-P", "2", "-C", "3",
    ]))
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("--queues 3 needs at least 3 producers"),
        "{err}"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_and_priority_cycles_reach_a_raw_subscriber() {
    let broker = common::start_default().await;
    let mut raw = broker.client().await;
    raw.subscribe("/topic/perf-props", "raw", &[]).await;
    let port = broker.addr.port().to_string();
    let report = perf::run(&args(&[
        "fanout",
        "--port",
        &port,
        "-C",
        "1",
        "-n",
        "12",
        "--destination",
        "/topic/perf-props",
        "--property-cycle",
        "color=red,blue",
        "--property-cycle",
        "size=s,m,l",
        "--priority-cycle",
        "0,4-5,9",
    ]))
    .await
    .expect("fanout run");
    check_ok(&report, "fanout", 12);
    assert_eq!(
        report.json()["params"]["priority_cycle"],
        serde_json::json!([0, 4, 5, 9])
    );
    let mut seen = Vec::new();
    for m in raw.expect_messages(12).await {
        let seq = seq_of(&m);
        assert_eq!(m.h("color"), ["red", "blue"][seq % 2], "{m:?}");
        assert_eq!(m.h("size"), ["s", "m", "l"][seq % 3], "{m:?}");
        assert_eq!(m.h("priority"), ["0", "4", "5", "9"][seq % 4], "{m:?}");
        seen.push(seq);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outside_the_selector_are_reported_and_fail_the_run() {
    // The echo server ignores selectors: the consumer with `color = 'red'` also gets the
    // blue half. The run still ends (the red half is all it waits for) and says so.
    let server = echo_server();
    let port = server.local_addr().port().to_string();
    let report = perf::run(&args(&[
        "queue",
        "--port",
        &port,
        "-n",
        "100",
        "--property-cycle",
        "color=red,blue",
        "--selector",
        "color = 'red'",
        "--stall-timeout",
        "5",
    ]))
    .await
    .expect("queue run");
    assert!(!report.ok(), "{}", report.human());
    assert_eq!(report.deliveries.first().map(|d| d.expected), Some(50));
    assert_eq!((report.lost(), report.duplicated()), (0, 0));
    assert_eq!(report.excluded(), 50, "{}", report.human());
    assert_eq!(
        report.verdict(),
        "DISCREPANCY: 0 lost, 0 duplicated, 50 outside the selector"
    );
    assert_eq!(report.json()["excluded"], 50);

    // A selector the tool cannot count exactly is refused before anything is sent.
    for (sel, want) in [
        ("color > 'a'", "NAME = 'VALUE'"),
        ("shape = 'x'", "no --property-cycle"),
    ] {
        let err = perf::run(&args(&[
            "queue",
            "--port",
            &port,
            "--property-cycle",
            "color=red",
            "--selector",
            sel,
        ]))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains(want), "{sel}: {err}");
    }
    server.stop().expect("the echo server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_sends_the_delay_header_and_measures_the_broker() {
    // Against the echo server a subscriber that is there first receives every SEND as it
    // was written; the probe subscribes afterwards and (the echo server keeping nothing)
    // gets nothing, so the run is OK.
    let server = echo_server();
    let addr = server.local_addr();
    let port = addr.port().to_string();
    let mut raw = common::Client::tcp(addr).await;
    raw.connect_12().await;
    raw.subscribe("/queue/perf-scheduled", "raw", &[]).await;
    let report = perf::run(&args(&[
        "scheduled",
        "--port",
        &port,
        "-n",
        "300",
        "--delay-ms",
        "600000",
        "--receipt-every",
        "100",
        "--broker-pid",
        &std::process::id().to_string(),
        "--probe-ms",
        "200",
    ]))
    .await
    .expect("scheduled run");
    assert!(report.ok(), "{}", report.human());
    assert_eq!(report.sent, 300);
    assert_eq!(
        report.verdict(),
        "OK: 300 messages scheduled, none delivered within 200 ms"
    );
    let json = report.json();
    assert_eq!(json["scenario"], "scheduled");
    assert_eq!(json["early_deliveries"], 0);
    assert!(json["bytes_per_message"].is_number(), "{json}");
    assert!(json["rss_after_kb"].as_u64().unwrap_or(0) > 0, "{json}");
    let mut seen = Vec::new();
    for m in raw.expect_messages(300).await {
        assert_eq!(m.h("AMQ_SCHEDULED_DELAY"), "600000");
        assert_eq!(m.h("persistent"), "false");
        assert_eq!(m.body.len(), 16);
        seen.push(seq_of(&m));
    }
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
    server.stop().expect("the echo server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_a_preloaded_stream_from_first_and_samples_the_broker() {
    let mut config = Config::default();
    config.journal.enabled = false;
    config.override_bind(
        AcceptorProtocol::Stomp,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    config
        .address_settings
        .push(wrenmq::config::AddressSettingsEntry {
            pattern: "perf-stream".to_string(),
            default_non_destructive: Some(true),
            ..Default::default()
        });
    let running = server::start({
        let mut c = config;
        c.admin.bind.set_port(0);
        c
    })
    .await
    .expect("broker starts");
    let addr = running.addr(AcceptorProtocol::Stomp).expect("stomp");
    let port = addr.port().to_string();
    let pid = std::process::id().to_string();
    let report = perf::run(&args(&[
        "replay",
        "--port",
        &port,
        "-n",
        "2000",
        "--receipt-every",
        "500",
        "--broker-pid",
        &pid,
    ]))
    .await
    .expect("replay run");
    check_ok(&report, "replay", 2000);
    assert_eq!(report.sent, 2000);
    let json = report.json();
    assert!(json["rss_peak_kb"].as_u64().unwrap_or(0) > 0, "{json}");
    assert!(json["preload_secs"].is_number(), "{json}");
    // The stream kept everything: a second replay gets it all again (the same run's
    // messages are duplicates to a new run's tracker, so count them raw).
    let mut raw = common::Client::tcp(addr).await;
    raw.connect_12().await;
    raw.subscribe(
        "/queue/perf-stream",
        "again",
        &[("x-stream-offset", "first")],
    )
    .await;
    assert_eq!(raw.expect_messages(2000).await.len(), 2000);
    running.shutdown().await;
}
