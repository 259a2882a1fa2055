//! Supervises a run: a progress line each second on stderr, completion, task failures, and
//! the stall timeout that bounds every wait.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::PerfError;
use super::report::histogram;
use super::shared::Shared;

/// Producer tasks of a run.
pub type Producers = JoinSet<Result<(), PerfError>>;
/// Consumer tasks of a run; each returns its latency histogram.
pub type Consumers = JoinSet<Result<Histogram<u64>, PerfError>>;

/// How a supervised run ended.
pub struct Ended {
    /// When the last needed message arrived (or when the run was cut short).
    pub end: Instant,
    /// Every consumer's latencies, merged.
    pub histogram: Histogram<u64>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// Supervises a started run to its end and collects the consumers' results: the common tail
/// of every scenario.
pub async fn run_to_end(
    shared: &Shared,
    stop: &watch::Sender<bool>,
    producers: &mut Producers,
    consumers: &mut Consumers,
    stall: Duration,
    start: Instant,
) -> Ended {
    let failure = supervise(shared, producers, consumers, stall, start).await;
    let end = match (&failure, shared.completed_at()) {
        (None, Some(t)) => t,
        _ => Instant::now(),
    };
    let (histogram, consumer_error) = finish(failure.is_none(), stop, producers, consumers).await;
    Ended {
        end,
        histogram,
        error: failure.or(consumer_error),
    }
}

/// Waits until every producer has finished and every tracker is complete. Returns the
/// reason when the run must end early: a task failed, or nothing moved for `stall`.
async fn supervise(
    shared: &Shared,
    producers: &mut Producers,
    consumers: &mut Consumers,
    stall: Duration,
    start: Instant,
) -> Option<String> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = (0u64, 0u64);
    let mut last_change = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        if producers.is_empty() && shared.all_complete() {
            return None;
        }
        tokio::select! {
            _ = shared.done.notified() => {}
            Some(done) = producers.join_next(), if !producers.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Some(format!("producer: {e}")),
                Err(e) => return Some(format!("producer task failed: {e}")),
            },
            Some(done) = consumers.join_next(), if !consumers.is_empty() => {
                return Some(match done {
                    Ok(Err(e)) => format!("consumer: {e}"),
                    Ok(Ok(_)) => "a consumer stopped early".to_string(),
                    Err(e) => format!("consumer task failed: {e}"),
                });
            }
            _ = tick.tick() => {
                let now = (shared.sent.load(Ordering::Relaxed), shared.received.load(Ordering::Relaxed));
                let dt = last_tick.elapsed().as_secs_f64().max(1e-3);
                eprintln!(
                    "perf {:>5.1}s  sent {:>10} ({:>9.0}/s)  received {:>10} ({:>9.0}/s)",
                    start.elapsed().as_secs_f64(),
                    now.0,
                    (now.0 - last.0) as f64 / dt,
                    now.1,
                    (now.1 - last.1) as f64 / dt,
                );
                last_tick = Instant::now();
                if now != last {
                    last = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= stall {
                    let expected: u64 = shared.trackers.iter().map(|t| t.expected()).sum();
                    let got: u64 = shared.trackers.iter().map(|t| t.unique()).sum();
                    return Some(format!(
                        "no progress for {} s ({got} of {expected} expected deliveries received)",
                        stall.as_secs()
                    ));
                }
            }
        }
    }
}

/// Ends a run: after a short grace for late duplicates (when it succeeded), tells the
/// consumers to stop, waits for them (bounded), and merges their histograms. Returns the
/// merged histogram and the first consumer error.
async fn finish(
    ok: bool,
    stop: &watch::Sender<bool>,
    producers: &mut Producers,
    consumers: &mut Consumers,
) -> (Histogram<u64>, Option<String>) {
    if ok {
        tokio::time::sleep(Duration::from_millis(200)).await;
    } else {
        producers.abort_all();
    }
    let _ = stop.send(true);
    let mut merged = histogram();
    let mut error = None;
    let deadline = tokio::time::Instant::now()
        + if ok {
            super::client::REPLY_TIMEOUT
        } else {
            Duration::from_secs(5)
        };
    loop {
        match tokio::time::timeout_at(deadline, consumers.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(Ok(h)))) => {
                let _ = merged.add(&h);
            }
            Ok(Some(Ok(Err(e)))) => {
                error.get_or_insert(format!("consumer: {e}"));
            }
            Ok(Some(Err(e))) => {
                error.get_or_insert(format!("consumer task failed: {e}"));
            }
            Err(_) => {
                consumers.abort_all();
                error.get_or_insert("consumers did not finish in time".to_string());
                break;
            }
        }
    }
    (merged, error)
}
