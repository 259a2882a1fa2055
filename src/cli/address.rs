//! `wrenmq address ...`: addresses, their routing types and routed counts.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::error::{CliError, CliResult};
use super::global::GlobalArgs;
use super::http::{Api, enc, query};
use super::list::{ListQuery, fetch_all};
use super::output::{Kind, col, items_table, print_json, print_line};
use super::queue::{done, show};

/// `wrenmq address VERB`.
#[derive(Debug, Clone, Args)]
pub struct AddressArgs {
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub verb: AddressVerb,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// The address verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum AddressVerb {
    /// Read-only. Every address with its routing types, queues and counters.
    List {
        /// Only addresses whose name matches this regular expression.
        #[arg(long)]
        regex: Option<String>,
        /// Only the first N.
        #[arg(long, value_name = "N")]
        top: Option<u64>,
    },
    /// Read-only. One address.
    Show {
        /// Address name.
        name: String,
    },
    /// Mutating. Creates an address (or adds routing types to it).
    Create {
        /// Address name.
        name: String,
        /// Point-to-point routing.
        #[arg(long)]
        anycast: bool,
        /// Publish-subscribe routing.
        #[arg(long)]
        multicast: bool,
    },
    /// Mutating. Deletes an address; one that does not exist is an error (65) unless
    /// --if-exists.
    Delete {
        /// Address name.
        name: String,
        /// Succeed when there is no such address.
        #[arg(long)]
        if_exists: bool,
        /// Delete its queues (and their messages) too.
        #[arg(long)]
        force: bool,
        /// Reason, recorded by the broker (X-Reason).
        #[arg(long)]
        reason: Option<String>,
    },
}

const COLUMNS: &[super::output::Column] = &[
    col("NAME", "name", Kind::Plain),
    col("ROUTING", "routing_types", Kind::Plain),
    col("QUEUES", "queues", Kind::Plain),
    col("AUTO", "auto_created", Kind::Plain),
    col("ROUTED", "routed_total", Kind::Plain),
    col("UNROUTABLE", "unroutable_total", Kind::Plain),
];

/// Runs `wrenmq address VERB`.
pub fn run(a: &AddressArgs) -> CliResult {
    let r = a.global.resolve()?;
    let api = Api::new(&r);
    let path = |n: &str| format!("/api/v1/addresses/{}", enc(n));
    match &a.verb {
        AddressVerb::List { regex, top } => {
            let q = ListQuery {
                name_regex: regex.clone(),
                top: *top,
                ..ListQuery::default()
            };
            let items = fetch_all(&api, "/api/v1/addresses", &q)?;
            if r.json {
                print_json(&Value::Array(items))
            } else {
                print_line(&items_table(&items, COLUMNS, r.non_interactive).to_string())
            }
        }
        AddressVerb::Show { name } => show(&r, &api.get(&path(name))?),
        AddressVerb::Create {
            name,
            anycast,
            multicast,
        } => {
            let mut types = Vec::new();
            if *anycast {
                types.push("anycast");
            }
            if *multicast {
                types.push("multicast");
            }
            if types.is_empty() {
                return Err(CliError::usage("give --anycast, --multicast or both"));
            }
            let v = api.put(&path(name), &json!({"routing_types": types}), None)?;
            done(
                &r,
                &v,
                &format!("created address {name} ({})", types.join(", ")),
            )
        }
        AddressVerb::Delete {
            name,
            if_exists,
            force,
            reason,
        } => {
            let q = query(&[
                ("force", force.then(|| "true".to_string())),
                ("strict", (!if_exists).then(|| "true".to_string())),
            ]);
            let v = api.delete(&format!("{}{q}", path(name)), reason.as_deref())?;
            done(&r, &v, &format!("deleted address {name}"))
        }
    }
}
