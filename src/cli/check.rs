//! `wrenmq check node|queue`: monitoring probes with Nagios plugin output and exit codes
//! (0 OK, 2 CRITICAL, 3 UNKNOWN), so Nagios, Icinga, Sensu or a cron job can call them as
//! they call `artemis check` or `nats server check`.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::error::CliError;
use super::global::GlobalArgs;
use super::http::{Api, enc};
use super::output::{human_bytes, human_millis};
use super::units::{parse_duration, parse_size};

/// `wrenmq check WHAT` (read-only).
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub what: CheckWhat,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Nagios, global = true)]
    pub format: Format,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// The output formats of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line, `WRENMQ QUEUE OK - ... | perfdata`.
    Nagios,
    /// A JSON object with the status and every check.
    Json,
    /// One line per check, for people.
    Text,
}

/// What to check.
#[derive(Debug, Clone, Subcommand)]
pub enum CheckWhat {
    /// The broker: reachable, no memory or disk alarm, and the limits given.
    Node {
        /// CRITICAL unless /readyz says ready.
        #[arg(long)]
        ready: bool,
        /// CRITICAL when the journal's disk has less free space (e.g. 1GiB).
        #[arg(long, value_parser = parse_size, value_name = "SIZE")]
        disk_free_min: Option<u64>,
        /// CRITICAL when the broker's message memory exceeds this (e.g. 512MiB).
        #[arg(long, value_parser = parse_size, value_name = "SIZE")]
        memory_max: Option<u64>,
    },
    /// One queue: it exists, and the limits given.
    Queue {
        /// Queue name.
        #[arg(long)]
        name: String,
        /// CRITICAL when the queue holds more messages.
        #[arg(long, value_name = "N")]
        max_messages: Option<u64>,
        /// CRITICAL when the oldest message is older (e.g. 5m).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        max_age: Option<Duration>,
        /// CRITICAL when fewer consumers are attached.
        #[arg(long, value_name = "N")]
        min_consumers: Option<u64>,
    },
}

/// A check's state, in Nagios order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Within the limits.
    Ok = 0,
    /// Over a limit.
    Critical = 2,
    /// Could not be decided (broker unreachable, value not reported).
    Unknown = 3,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
    /// Worst of two: CRITICAL over UNKNOWN over OK (a known failure outranks a doubt).
    fn worst(self, other: State) -> State {
        let rank = |s: State| match s {
            State::Ok => 0,
            State::Unknown => 1,
            State::Critical => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// One line of a check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Its state.
    pub state: State,
    /// For people.
    pub detail: String,
    /// Nagios perfdata (`label=value[unit];warn;crit`), if it is a measurement.
    pub perf: Option<String>,
}

fn check(name: &'static str, state: State, detail: impl Into<String>) -> Check {
    Check {
        name,
        state,
        detail: detail.into(),
        perf: None,
    }
}

/// The over-limit checks share this: CRITICAL when `bad(value, limit)`.
fn limit(
    name: &'static str,
    value: Option<u64>,
    limit: u64,
    bad: fn(u64, u64) -> bool,
    show: fn(u64) -> String,
    perf_unit: &str,
) -> Check {
    match value {
        None => check(
            name,
            State::Unknown,
            format!("{name}: not reported by the broker"),
        ),
        Some(v) => {
            let state = if bad(v, limit) {
                State::Critical
            } else {
                State::Ok
            };
            let op = if state == State::Ok {
                "within"
            } else {
                "beyond"
            };
            Check {
                name,
                state,
                detail: format!("{name} {} ({op} limit {})", show(v), show(limit)),
                perf: Some(format!("{name}={v}{perf_unit};;{limit}")),
            }
        }
    }
}

fn plain(n: u64) -> String {
    n.to_string()
}

/// Runs a check; returns the Nagios exit code (printing goes to stdout in every case).
pub fn run(a: &CheckArgs) -> std::process::ExitCode {
    let (kind, subject, checks) = match a.global.resolve() {
        Err(e) => ("NODE", String::new(), vec![unknown(&e)]),
        Ok(r) => {
            let api = Api::new(&r);
            match &a.what {
                CheckWhat::Node {
                    ready,
                    disk_free_min,
                    memory_max,
                } => (
                    "NODE",
                    r.url.clone(),
                    node(&api, *ready, *disk_free_min, *memory_max),
                ),
                CheckWhat::Queue {
                    name,
                    max_messages,
                    max_age,
                    min_consumers,
                } => (
                    "QUEUE",
                    name.clone(),
                    queue(&api, name, *max_messages, *max_age, *min_consumers),
                ),
            }
        }
    };
    let state = checks.iter().fold(State::Ok, |s, c| s.worst(c.state));
    let text = render(a.format, kind, &subject, state, &checks);
    println!("{text}");
    std::process::ExitCode::from(state as u8)
}

fn unknown(e: &CliError) -> Check {
    check("broker", State::Unknown, e.message.clone())
}

fn node(api: &Api, ready: bool, disk_free_min: Option<u64>, memory_max: Option<u64>) -> Vec<Check> {
    let overview = match api.get("/api/v1/overview") {
        Ok(v) => v,
        Err(e) => return vec![unknown(&e)],
    };
    let mut checks = Vec::new();
    for alarm in ["memory", "disk"] {
        let on = overview
            .get("alarms")
            .and_then(|a| a.get(alarm))
            .and_then(Value::as_bool);
        checks.push(match on {
            Some(true) => check("alarm", State::Critical, format!("{alarm} alarm raised")),
            Some(false) => check("alarm", State::Ok, format!("no {alarm} alarm")),
            None => check(
                "alarm",
                State::Unknown,
                format!("{alarm} alarm not reported"),
            ),
        });
    }
    if ready {
        checks.push(match api.get_status("/readyz") {
            Ok((200, _)) => check("ready", State::Ok, "ready"),
            Ok((status, v)) => {
                let failing: Vec<String> = v
                    .get("checks")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|c| c.get("ok").and_then(Value::as_bool) == Some(false))
                            .map(|c| {
                                format!(
                                    "{}: {}",
                                    c.get("name").and_then(Value::as_str).unwrap_or("?"),
                                    c.get("detail").and_then(Value::as_str).unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                check(
                    "ready",
                    State::Critical,
                    format!("not ready ({status}): {}", failing.join("; ")),
                )
            }
            Err(e) => unknown(&e),
        });
    }
    if let Some(max) = memory_max {
        let used = overview
            .get("memory")
            .and_then(|m| m.get("used_bytes"))
            .and_then(Value::as_u64);
        checks.push(limit("memory", used, max, |v, l| v > l, human_bytes, "B"));
    }
    if let Some(min) = disk_free_min {
        // The journal's filesystem: `disk: {used_bytes, total_bytes}` (null without one).
        let disk = overview.get("disk");
        let num = |k: &str| disk.and_then(|d| d.get(k)).and_then(Value::as_u64);
        let free = match (num("total_bytes"), num("used_bytes")) {
            (Some(t), Some(u)) => Some(t.saturating_sub(u)),
            _ => None,
        };
        checks.push(limit(
            "disk_free",
            free,
            min,
            |v, l| v < l,
            human_bytes,
            "B",
        ));
    }
    checks
}

fn queue(
    api: &Api,
    name: &str,
    max_messages: Option<u64>,
    max_age: Option<Duration>,
    min_consumers: Option<u64>,
) -> Vec<Check> {
    let q = match api.get(&format!("/api/v1/queues/{}", enc(name))) {
        Ok(v) => v,
        // The queue not existing is a real failure of what is watched, not a doubt.
        Err(e) if e.status == Some(404) => {
            return vec![check("exists", State::Critical, format!("no queue {name}"))];
        }
        Err(e) => return vec![unknown(&e)],
    };
    let num = |k: &str| q.get(k).and_then(Value::as_u64);
    let mut checks = vec![check("exists", State::Ok, format!("queue {name} exists"))];
    if let Some(max) = max_messages {
        checks.push(limit(
            "messages",
            num("messages"),
            max,
            |v, l| v > l,
            plain,
            "",
        ));
    }
    if let Some(max) = max_age {
        // An empty queue has no oldest message: age 0.
        let age = match q.get("oldest_message_age_ms") {
            Some(Value::Null) if num("messages") == Some(0) => Some(0),
            _ => num("oldest_message_age_ms"),
        };
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        checks.push(limit(
            "oldest_age",
            age,
            max_ms,
            |v, l| v > l,
            human_millis,
            "ms",
        ));
    }
    if let Some(min) = min_consumers {
        checks.push(limit(
            "consumers",
            num("consumers"),
            min,
            |v, l| v < l,
            plain,
            "",
        ));
    }
    checks
}

fn render(format: Format, kind: &str, subject: &str, state: State, checks: &[Check]) -> String {
    match format {
        Format::Nagios => {
            // The summary names what is wrong first, as plugins do.
            let mut shown: Vec<&Check> = checks.iter().filter(|c| c.state != State::Ok).collect();
            if shown.is_empty() {
                shown = checks.iter().collect();
            }
            let summary: Vec<&str> = shown.iter().map(|c| c.detail.as_str()).collect();
            let perf: Vec<&str> = checks.iter().filter_map(|c| c.perf.as_deref()).collect();
            let mut line = format!("WRENMQ {kind} {} - {}", state.label(), summary.join(", "));
            if !perf.is_empty() {
                line.push_str(" | ");
                line.push_str(&perf.join(" "));
            }
            line
        }
        Format::Json => json!({
            "status": state.label(),
            "code": state as u8,
            "subject": subject,
            "checks": checks.iter().map(|c| json!({
                "name": c.name, "status": c.state.label(), "detail": c.detail,
            })).collect::<Vec<_>>(),
        })
        .to_string(),
        Format::Text => {
            let mut lines = vec![format!("{kind} {subject}: {}", state.label())];
            for c in checks {
                lines.push(format!("  {:<8} {}", c.state.label(), c.detail));
            }
            lines.join("\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_outranks_unknown_and_nagios_output_names_the_failure() {
        let checks = vec![
            check("exists", State::Ok, "queue q exists"),
            limit("messages", Some(12), 10, |v, l| v > l, plain, ""),
            limit("consumers", None, 1, |v, l| v < l, plain, ""),
        ];
        let state = checks.iter().fold(State::Ok, |s, c| s.worst(c.state));
        assert_eq!(state, State::Critical);
        let line = render(Format::Nagios, "QUEUE", "q", state, &checks);
        assert!(
            line.starts_with("WRENMQ QUEUE CRITICAL - messages 12 (beyond limit 10)"),
            "{line}"
        );
        assert!(line.ends_with("| messages=12;;10"), "{line}");
        let j: Value = serde_json::from_str(&render(Format::Json, "QUEUE", "q", state, &checks))
            .expect("json");
        assert_eq!(j["code"], 2);
        assert_eq!(j["checks"][2]["status"], "UNKNOWN");
    }
}
