//! `wrenmq perf` against an in-process broker and against its own echo server: the
//! exactly-once verdict, the JSON line, and the binary's exit code.

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
    let running = server::start(config).await.expect("broker starts");
    let addr = running
        .addr(AcceptorProtocol::Stomp)
        .expect("stomp acceptor");
    (running, addr)
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
    let listener = perf::echo::listen("127.0.0.1", 0).await.expect("listen");
    let port = listener.local_addr().expect("addr").port().to_string();
    let server = tokio::spawn(perf::echo::serve(listener));
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
    server.abort();
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
