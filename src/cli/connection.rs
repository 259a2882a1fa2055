//! `wrenmq connection ...` and `wrenmq subscription list`: who is connected, what they
//! hold, and closing a connection with a reason the client sees in its ERROR frame.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::error::CliResult;
use super::global::GlobalArgs;
use super::http::{Api, enc};
use super::list::{ListQuery, fetch_all};
use super::output::{Column, Kind, col, items_table, print_json, print_line};
use super::queue::{done, show};

/// `wrenmq connection VERB`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub verb: ConnectionVerb,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// The connection verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum ConnectionVerb {
    /// Read-only. Open connections (or recently closed ones, with --closed).
    List {
        /// Recently closed connections, with the reason.
        #[arg(long)]
        closed: bool,
        /// Sort by this field (e.g. pending_bytes, messages_in), largest first.
        #[arg(long)]
        sort: Option<String>,
        /// Only the first N.
        #[arg(long, value_name = "N")]
        top: Option<u64>,
    },
    /// Read-only. One connection.
    Show {
        /// Connection id.
        id: String,
    },
    /// Mutating. Closes a connection; the client gets an ERROR frame with the reason.
    Close {
        /// Connection id.
        id: String,
        /// Reason, sent to the client and recorded.
        #[arg(long)]
        reason: Option<String>,
    },
}

const OPEN: &[Column] = &[
    col("ID", "id", Kind::Plain),
    col("CLIENT-ID", "client_id", Kind::Plain),
    col("USER", "user", Kind::Plain),
    col("REMOTE", "remote", Kind::Plain),
    col("TRANSPORT", "transport", Kind::Plain),
    col("VERSION", "version", Kind::Plain),
    col("CONNECTED", "connected_at", Kind::Time),
    col("MSGS-IN", "messages_in", Kind::Plain),
    col("MSGS-OUT", "messages_out", Kind::Plain),
    col("BYTES-IN", "bytes_in", Kind::Bytes),
    col("BYTES-OUT", "bytes_out", Kind::Bytes),
    col("PENDING", "pending_bytes", Kind::Bytes),
    col("SUBS", "subscriptions", Kind::Plain),
];

const CLOSED: &[Column] = &[
    col("ID", "id", Kind::Plain),
    col("CLIENT-ID", "client_id", Kind::Plain),
    col("USER", "user", Kind::Plain),
    col("REMOTE", "remote", Kind::Plain),
    col("CONNECTED", "connected_at", Kind::Time),
    col("CLOSED", "closed_at", Kind::Time),
    col("REASON", "reason", Kind::Plain),
    col("DETAIL", "detail", Kind::Plain),
];

/// Runs `wrenmq connection VERB`.
pub fn run(a: &ConnectionArgs) -> CliResult {
    let r = a.global.resolve()?;
    let api = Api::new(&r);
    match &a.verb {
        ConnectionVerb::List { closed, sort, top } => {
            let q = ListQuery {
                sort: sort.clone(),
                order: sort.as_ref().map(|_| "desc".to_string()),
                top: *top,
                extra: vec![("state", if *closed { "closed" } else { "open" }.to_string())],
                ..ListQuery::default()
            };
            let items = fetch_all(&api, "/api/v1/connections", &q)?;
            if r.json {
                print_json(&Value::Array(items))
            } else {
                let cols = if *closed { CLOSED } else { OPEN };
                print_line(&items_table(&items, cols, r.non_interactive).to_string())
            }
        }
        ConnectionVerb::Show { id } => {
            show(&r, &api.get(&format!("/api/v1/connections/{}", enc(id)))?)
        }
        ConnectionVerb::Close { id, reason } => {
            let reason = reason
                .as_deref()
                .unwrap_or("closed by an operator (wrenmq connection close)");
            let v = api.delete(&format!("/api/v1/connections/{}", enc(id)), Some(reason))?;
            done(&r, &v, &format!("closed connection {id}"))
        }
    }
}

/// `wrenmq subscription VERB`.
#[derive(Debug, Clone, Args)]
pub struct SubscriptionArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub verb: SubscriptionVerb,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// The subscription verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum SubscriptionVerb {
    /// Read-only. Every subscription: destination, queue, ack mode, selector, in-flight.
    List {
        /// Only subscriptions on this queue.
        #[arg(long)]
        queue: Option<String>,
    },
}

const SUBSCRIPTIONS: &[Column] = &[
    col("ID", "id", Kind::Plain),
    col("CONNECTION", "connection", Kind::Plain),
    col("DESTINATION", "destination", Kind::Plain),
    col("QUEUE", "queue", Kind::Plain),
    col("ACK", "ack_mode", Kind::Plain),
    col("SELECTOR", "selector", Kind::Plain),
    col("PREFETCH", "prefetch", Kind::Plain),
    col("IN-FLIGHT", "in_flight", Kind::Plain),
    col("DELIVERED", "delivered", Kind::Plain),
    col("ACKED", "acked", Kind::Plain),
    col("NACKED", "nacked", Kind::Plain),
];

/// Runs `wrenmq subscription VERB`.
pub fn run_subscriptions(a: &SubscriptionArgs) -> CliResult {
    let r = a.global.resolve()?;
    let api = Api::new(&r);
    let SubscriptionVerb::List { queue } = &a.verb;
    let q = ListQuery {
        extra: queue.iter().map(|q| ("queue", q.clone())).collect(),
        ..ListQuery::default()
    };
    let items = fetch_all(&api, "/api/v1/subscriptions", &q)?;
    if r.json {
        print_json(&Value::Array(items))
    } else {
        print_line(&items_table(&items, SUBSCRIPTIONS, r.non_interactive).to_string())
    }
}
