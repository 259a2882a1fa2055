//! `wrenmq queue ...`: the queue table (`artemis queue stat`), one queue's details, and the
//! queue operations of the console, each one call (or a loop of bounded batches) on the API.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::error::{CliError, CliResult};
use super::global::{GlobalArgs, Resolved};
use super::http::{Api, enc, query};
use super::list::{ListQuery, fetch_all};
use super::output::{Kind, col, items_table, kv_table, print_json, print_line};
use super::progress;

/// `wrenmq queue VERB`.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub verb: QueueVerb,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// Which messages a move, copy or retry takes.
#[derive(Debug, Clone, Args)]
pub struct Pick {
    /// Only messages matching this selector.
    #[arg(long, conflicts_with = "id")]
    pub selector: Option<String>,
    /// These message ids (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub id: Vec<String>,
}

/// The queue verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum QueueVerb {
    /// Read-only. The queue table: depth, consumers, oldest message age and rates.
    List {
        /// Only queues whose name contains this text.
        #[arg(long, conflicts_with = "regex")]
        name: Option<String>,
        /// Only queues whose name matches this regular expression.
        #[arg(long)]
        regex: Option<String>,
        /// Sort by this field (e.g. messages, consumers, oldest_message_age_ms).
        #[arg(long)]
        sort: Option<String>,
        /// Largest first (with --sort).
        #[arg(long)]
        desc: bool,
        /// Only the first N queues.
        #[arg(long, value_name = "N")]
        top: Option<u64>,
    },
    /// Read-only. Every attribute and counter of one queue.
    Show {
        /// Queue name.
        name: String,
    },
    /// Mutating. Creates a queue.
    Create {
        /// Queue name.
        name: String,
        /// Its address [default: the queue's name].
        #[arg(long)]
        address: Option<String>,
        /// Anycast (point-to-point) queue [the default].
        #[arg(long, conflicts_with = "multicast")]
        anycast: bool,
        /// Multicast (subscription) queue.
        #[arg(long)]
        multicast: bool,
        /// Durable (survives a restart); `--durable false` for a non-durable queue.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        durable: Option<bool>,
        /// Only messages matching this selector enter the queue.
        #[arg(long)]
        filter: Option<String>,
        /// One consumer at a time; the next takes over in order.
        #[arg(long)]
        exclusive: bool,
        /// A last-value queue keyed by this header: a new message replaces the waiting one
        /// with the same key.
        #[arg(long, value_name = "HEADER")]
        last_value_key: Option<String>,
        /// A ring queue of the newest N messages.
        #[arg(long, value_name = "N")]
        ring_size: Option<i64>,
        /// A retained stream: consumers read without removing (x-stream-offset).
        #[arg(long)]
        non_destructive: bool,
    },
    /// Mutating. Deletes a queue (and its messages); a queue that does not exist is an error
    /// (65) unless --if-exists.
    Delete {
        /// Queue name.
        name: String,
        /// Succeed when there is no such queue.
        #[arg(long)]
        if_exists: bool,
        /// Refuse if the queue holds messages.
        #[arg(long)]
        if_empty: bool,
        /// Refuse if the queue has consumers.
        #[arg(long)]
        if_unused: bool,
        /// Reason, recorded by the broker (X-Reason).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mutating. Removes messages: all, those matching --selector, or the first --limit.
    Purge {
        /// Queue name.
        name: String,
        /// Only messages matching this selector.
        #[arg(long)]
        selector: Option<String>,
        /// At most this many (the oldest first).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Reason, recorded by the broker (X-Reason).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Read-only. Lists messages without consuming them.
    Browse {
        /// Queue name.
        name: String,
        /// Only messages matching this selector.
        #[arg(long)]
        selector: Option<String>,
        /// At most this many messages.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u64,
        /// Include whole bodies (in --json; the table shows a preview either way).
        #[arg(long)]
        body: bool,
    },
    /// Mutating. Moves messages to another address (or ADDRESS::QUEUE), in batches.
    Move {
        /// Queue name.
        name: String,
        /// Target address, or ADDRESS::QUEUE.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        #[allow(missing_docs)]
        pick: Pick,
        /// At most this many messages in all.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Messages per request.
        #[arg(long, value_name = "N", default_value_t = 500)]
        batch: u64,
    },
    /// Mutating. Copies messages to another address (or ADDRESS::QUEUE); the originals stay.
    Copy {
        /// Queue name.
        name: String,
        /// Target address, or ADDRESS::QUEUE.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        #[allow(missing_docs)]
        pick: Pick,
        /// At most this many messages.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Mutating. Sends dead-lettered (or expired) messages back to the address and queue
    /// they came from, in batches.
    Retry {
        /// Queue name (usually the dead-letter queue).
        name: String,
        #[command(flatten)]
        #[allow(missing_docs)]
        pick: Pick,
        /// At most this many messages in all.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Messages per request.
        #[arg(long, value_name = "N", default_value_t = 500)]
        batch: u64,
    },
    /// Mutating. Stops deliveries from a queue (messages still arrive).
    Pause {
        /// Queue name.
        name: String,
    },
    /// Mutating. Resumes deliveries of a paused queue.
    Resume {
        /// Queue name.
        name: String,
    },
}

const LIST_COLUMNS: &[super::output::Column] = &[
    col("NAME", "name", Kind::Plain),
    col("ADDRESS", "address", Kind::Plain),
    col("TYPE", "routing_type", Kind::Plain),
    col("DURABLE", "durable", Kind::Plain),
    col("CONSUMERS", "consumers", Kind::Plain),
    col("READY", "messages_ready", Kind::Plain),
    col("IN-FLIGHT", "messages_in_flight", Kind::Plain),
    col("SCHEDULED", "messages_scheduled", Kind::Plain),
    col("MESSAGES", "messages", Kind::Plain),
    col("BYTES", "bytes", Kind::Bytes),
    col("OLDEST", "oldest_message_age_ms", Kind::Millis),
    col("IN/S", "rate_in", Kind::Rate),
    col("OUT/S", "rate_out", Kind::Rate),
    col("ACK/S", "rate_ack", Kind::Rate),
    col("PAUSED", "paused", Kind::Plain),
];

const BROWSE_COLUMNS: &[super::output::Column] = &[
    col("SEQ", "seq", Kind::Plain),
    col("ID", "id", Kind::Plain),
    col("STATE", "state", Kind::Plain),
    col("PRIORITY", "priority", Kind::Plain),
    col("DELIVERIES", "delivery_count", Kind::Plain),
    col("SIZE", "size", Kind::Bytes),
    col("ENQUEUED", "enqueued_at", Kind::Time),
    col("BODY", "body_preview", Kind::Plain),
];

/// A bound on move requests when neither --limit nor the queue depth is known.
const MAX_BATCHES: usize = 100_000;

fn path(name: &str) -> String {
    format!("/api/v1/queues/{}", enc(name))
}

/// Runs `wrenmq queue VERB`.
pub fn run(a: &QueueArgs) -> CliResult {
    let r = a.global.resolve()?;
    let api = Api::new(&r);
    let plain = r.non_interactive;
    match &a.verb {
        QueueVerb::List {
            name,
            regex,
            sort,
            desc,
            top,
        } => {
            let q = ListQuery {
                name: name.clone(),
                name_regex: regex.clone(),
                sort: sort.clone(),
                order: desc.then(|| "desc".to_string()),
                top: *top,
                extra: Vec::new(),
            };
            let items = fetch_all(&api, "/api/v1/queues", &q)?;
            if r.json {
                print_json(&Value::Array(items))
            } else {
                print_line(&items_table(&items, LIST_COLUMNS, plain).to_string())
            }
        }
        QueueVerb::Show { name } => {
            let v = api.get(&path(name))?;
            show(&r, &v)
        }
        QueueVerb::Create {
            name,
            address,
            anycast: _,
            multicast,
            durable,
            filter,
            exclusive,
            last_value_key,
            ring_size,
            non_destructive,
        } => {
            let mut body = json!({
                "address": address.clone().unwrap_or_else(|| name.clone()),
                "routing_type": if *multicast { "multicast" } else { "anycast" },
            });
            if let Some(d) = durable {
                body["durable"] = json!(d);
            }
            if let Some(f) = filter {
                body["filter"] = json!(f);
            }
            if *exclusive {
                body["exclusive"] = json!(true);
            }
            if let Some(k) = last_value_key {
                body["last_value_key"] = json!(k);
            }
            if let Some(n) = ring_size {
                body["ring_size"] = json!(n);
            }
            if *non_destructive {
                body["non_destructive"] = json!(true);
            }
            let v = api.put(&path(name), &body, None)?;
            done(&r, &v, &format!("created queue {name}"))
        }
        QueueVerb::Delete {
            name,
            if_exists,
            if_empty,
            if_unused,
            reason,
        } => {
            let q = query(&[
                ("strict", (!if_exists).then(|| "true".to_string())),
                ("if_empty", if_empty.then(|| "true".to_string())),
                ("if_unused", if_unused.then(|| "true".to_string())),
            ]);
            let v = api.delete(&format!("{}{q}", path(name)), reason.as_deref())?;
            done(&r, &v, &format!("deleted queue {name}"))
        }
        QueueVerb::Purge {
            name,
            selector,
            limit,
            reason,
        } => {
            let q = query(&[
                ("selector", selector.clone()),
                ("limit", limit.map(|l| l.to_string())),
            ]);
            let v = api.delete(&format!("{}/messages{q}", path(name)), reason.as_deref())?;
            let n = count(&v, "removed")?;
            done(&r, &v, &format!("removed {n} message(s) from {name}"))
        }
        QueueVerb::Browse {
            name,
            selector,
            limit,
            body,
        } => {
            let q = ListQuery {
                top: Some(*limit),
                extra: [
                    selector.clone().map(|s| ("selector", s)),
                    Some(("body", if *body { "full" } else { "preview" }.to_string())),
                ]
                .into_iter()
                .flatten()
                .collect(),
                ..ListQuery::default()
            };
            let items = fetch_all(&api, &format!("{}/messages", path(name)), &q)?;
            if r.json {
                print_json(&Value::Array(items))
            } else {
                print_line(&items_table(&items, BROWSE_COLUMNS, plain).to_string())
            }
        }
        QueueVerb::Move {
            name,
            to,
            pick,
            limit,
            batch,
        } => in_batches(&api, &r, Op::Move(to), name, pick, *limit, *batch),
        QueueVerb::Copy {
            name,
            to,
            pick,
            limit,
        } => {
            let mut body = pick_body(pick);
            body["to"] = json!(to);
            if let Some(l) = limit {
                body["limit"] = json!(l);
            }
            let v = api.post(&format!("{}/messages/copy", path(name)), Some(&body), None)?;
            let n = count(&v, "copied")?;
            done(
                &r,
                &v,
                &format!("copied {n} message(s) from {name} to {to}"),
            )
        }
        QueueVerb::Retry {
            name,
            pick,
            limit,
            batch,
        } => in_batches(&api, &r, Op::Retry, name, pick, *limit, *batch),
        QueueVerb::Pause { name } => {
            let v = api.post(&format!("{}/pause", path(name)), None, None)?;
            done(&r, &v, &format!("paused {name}"))
        }
        QueueVerb::Resume { name } => {
            let v = api.post(&format!("{}/resume", path(name)), None, None)?;
            done(&r, &v, &format!("resumed {name}"))
        }
    }
}

fn pick_body(p: &Pick) -> Value {
    let mut body = json!({});
    if let Some(s) = &p.selector {
        body["selector"] = json!(s);
    }
    if !p.id.is_empty() {
        body["ids"] = json!(p.id);
    }
    body
}

/// A number the API must have answered with.
pub(super) fn count(v: &Value, key: &str) -> CliResult<u64> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| CliError::protocol(format!("the answer has no \"{key}\" count: {v}")))
}

/// Prints a mutation's result: the API's JSON, or one line for people.
pub(super) fn done(r: &Resolved, v: &Value, line: &str) -> CliResult {
    if r.json {
        print_json(v)
    } else {
        print_line(line)
    }
}

/// Prints one object as a key/value table or JSON.
pub(super) fn show(r: &Resolved, v: &Value) -> CliResult {
    if r.json {
        print_json(v)
    } else {
        print_line(&kv_table(v, r.non_interactive).to_string())
    }
}

/// A message operation that takes messages off the queue, so it can go in batches.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// To another address or queue.
    Move(&'a str),
    /// Back to where each came from.
    Retry,
}

/// Moves or retries up to `limit` messages, `batch` per request, so a large operation shows
/// progress and each request stays short; stops when a batch takes fewer than asked (the
/// queue has no more that match).
fn in_batches(
    api: &Api,
    r: &Resolved,
    op: Op<'_>,
    name: &str,
    pick: &Pick,
    limit: Option<u64>,
    batch: u64,
) -> CliResult {
    if batch == 0 {
        return Err(CliError::usage("--batch must be at least 1"));
    }
    let (url, key, verb, to) = match op {
        Op::Move(to) => (
            format!("{}/messages/move", path(name)),
            "moved",
            "moving",
            format!(" to {to}"),
        ),
        Op::Retry => (
            format!("{}/messages/retry", path(name)),
            "retried",
            "retrying",
            String::new(),
        ),
    };
    let mut body = pick_body(pick);
    if let Op::Move(to) = op {
        body["to"] = json!(to);
    }
    let summary = |n: u64| format!("{key} {n} message(s) from {name}{to}");
    if !pick.id.is_empty() {
        let v = api.post(&url, Some(&body), None)?;
        let n = count(&v, key)?;
        return done(r, &json!({ key: n }), &summary(n));
    }
    // The bar's length is the queue's depth now (or the limit): an estimate, as messages
    // may arrive or be consumed meanwhile.
    let depth = api
        .get(&path(name))
        .ok()
        .and_then(|q| q.get("messages").and_then(Value::as_u64));
    let len = match (depth, limit) {
        (Some(d), Some(l)) => Some(d.min(l)),
        (d, l) => d.or(l),
    };
    let pb = progress::bar(len, verb, r);
    // Without --limit, the messages there when it started: a move into an address that
    // routes back to this queue must not loop for ever.
    let cap = limit.or(depth);
    let mut total = 0u64;
    for _ in 0..MAX_BATCHES {
        let want = cap.map_or(batch, |l| l.saturating_sub(total).min(batch));
        if want == 0 {
            break;
        }
        body["limit"] = json!(want);
        let v = api.post(&url, Some(&body), None)?;
        let n = count(&v, key)?;
        total += n;
        pb.inc(n);
        if n < want {
            break;
        }
    }
    pb.finish_and_clear();
    done(r, &json!({ key: total }), &summary(total))
}
