//! `wrenmq cluster status|join|leave`: a cluster node's view (members, leader, term, commit
//! index, each member's lag) and run-time membership changes, over the admin API. Ask any
//! node for its status; a join or leave must go to the leader's admin listener.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::error::CliResult;
use super::global::GlobalArgs;
use super::http::Api;
use super::output::{Kind, col, items_table, kv_table, print_json, print_line};

/// `wrenmq cluster VERB`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub verb: ClusterVerb,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// The cluster verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterVerb {
    /// Read-only. This node's view: its state, the leader, term, commit index, and every
    /// member with what it holds and how far behind it is (lag is known on the leader).
    Status,
    /// Mutating. Adds a node (started with `[cluster]` listing the members and itself): it
    /// receives the log or a snapshot as a learner, then votes. Ask the leader.
    Join {
        /// The new node's `[cluster] node-id`.
        #[arg(long)]
        id: u64,
        /// Where the members reach it: its `[cluster] listen` as `host:port`.
        #[arg(long)]
        address: String,
    },
    /// Mutating. Removes a node from the cluster. Ask the leader.
    Leave {
        /// The node's id.
        #[arg(long)]
        id: u64,
    },
}

/// Runs `wrenmq cluster VERB`.
pub fn run(a: &ClusterArgs) -> CliResult {
    let r = a.global.resolve()?;
    let api = Api::new(&r);
    let v = match &a.verb {
        ClusterVerb::Status => api.get("/api/v1/cluster")?,
        ClusterVerb::Join { id, address } => api.post(
            "/api/v1/cluster/members",
            Some(&json!({"id": id, "address": address})),
            None,
        )?,
        ClusterVerb::Leave { id } => api.delete(&format!("/api/v1/cluster/members/{id}"), None)?,
    };
    if r.json {
        return print_json(&v);
    }
    let mut summary = v.clone();
    if let Some(o) = summary.as_object_mut() {
        o.remove("members");
    }
    print_line(&kv_table(&summary, r.non_interactive).to_string())?;
    let members: Vec<Value> = v
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let columns = [
        col("ID", "id", Kind::Plain),
        col("ADDRESS", "address", Kind::Plain),
        col("VOTER", "voter", Kind::Plain),
        col("MATCHED", "matched_index", Kind::Plain),
        col("LAG", "lag", Kind::Plain),
    ];
    print_line(&items_table(&members, &columns, r.non_interactive).to_string())
}
