//! The `connections` scenario: many idle connections, each with one confirmed subscription.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::Conn;
use super::report::{Report, RssReport};
use super::{ConnectionsArgs, PerfError};

/// VmRSS of a process in KiB, from /proc/PID/status.
pub fn vm_rss_kb(pid: u32) -> Result<u64, PerfError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| PerfError::io(format!("cannot read {path}"), e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| PerfError::msg(format!("no VmRSS in {path}")))
}

/// `perf connections`.
pub async fn run(a: &ConnectionsArgs) -> Result<Report, PerfError> {
    let destination = a.common.destination_or("/queue/perf-idle");
    let before = a.broker_pid.map(vm_rss_kb).transpose()?;
    let limit = Arc::new(Semaphore::new(a.parallel.max(1) as usize));
    let common = Arc::new(a.common.clone());
    let start = Instant::now();
    let mut opening = JoinSet::new();
    for i in 0..a.connections {
        let limit = Arc::clone(&limit);
        let common = Arc::clone(&common);
        let destination = destination.clone();
        opening.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .map_err(|_| PerfError::msg("closed"))?;
            let mut conn = Conn::open(&common).await?;
            conn.subscribe(
                &destination,
                &format!("idle-{i}"),
                "auto",
                &common.sub_headers,
            )
            .await?;
            Ok::<Conn, PerfError>(conn)
        });
    }
    let mut open = Vec::with_capacity(a.connections as usize);
    let mut error = None;
    let mut last_print = Instant::now();
    while let Some(done) = opening.join_next().await {
        match done {
            Ok(Ok(c)) => open.push(c),
            Ok(Err(e)) => {
                error.get_or_insert(format!("connection {}: {e}", open.len() + 1));
                opening.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                error.get_or_insert(format!("task failed: {e}"));
            }
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "perf {:>5.1}s  {} connections open",
                start.elapsed().as_secs_f64(),
                open.len()
            );
            last_print = Instant::now();
        }
    }
    let elapsed = start.elapsed();
    // Let the broker settle its allocations before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = a.broker_pid.map(vm_rss_kb).transpose()?;
    eprintln!(
        "perf: {} connections open; holding them {} s",
        open.len(),
        a.hold
    );
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    let opened = open.len() as u64;
    drop(open);
    Ok(Report {
        scenario: "connections",
        broker: a.common.broker(),
        params: json!({
            "connections": a.connections, "hold": a.hold, "parallel": a.parallel,
            "broker_pid": a.broker_pid, "destination": destination,
        }),
        elapsed_secs: elapsed.as_secs_f64(),
        connections: opened,
        rss: match (before, after) {
            (Some(before_kb), Some(after_kb)) => Some(RssReport {
                before_kb,
                after_kb,
            }),
            _ => None,
        },
        error: error.or_else(|| {
            (opened < u64::from(a.connections))
                .then(|| format!("only {opened} of {} connections opened", a.connections))
        }),
        ..Report::default()
    })
}
