//! `wrenmq overview` and `wrenmq config show|reload`: the node at a glance, and the
//! configuration in force and its reload (all-or-nothing, with a dry run), over the API.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::error::{CliError, CliResult};
use super::global::GlobalArgs;
use super::http::Api;
use super::output::{Kind, cell, col, items_table, kv_table, print_json, print_line, utc_time};

/// `wrenmq overview` (read-only).
#[derive(Debug, Clone, Args)]
pub struct OverviewArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// Runs `wrenmq overview`: `/api/v1/overview` as a key/value table.
pub fn overview(a: &OverviewArgs) -> CliResult {
    let r = a.global.resolve()?;
    let v = Api::new(&r).get("/api/v1/overview")?;
    if r.json {
        print_json(&v)
    } else {
        print_line(&kv_table(&v, r.non_interactive).to_string())
    }
}

/// `wrenmq config show|reload` (the offline `config check` lives beside them in main.rs).
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigVerb {
    /// Read-only. The configuration in force (secrets redacted), where it came from, when it
    /// was loaded, and the keys changed on disk that wait for a restart.
    Show(ConfigShowArgs),
    /// Mutating. Reloads the configuration file (as SIGHUP); all-or-nothing: a bad key, or
    /// one that cannot change at run time, rejects the whole reload. Exits 65 when rejected.
    Reload(ConfigReloadArgs),
}

/// `wrenmq config show`.
#[derive(Debug, Clone, Args)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// `wrenmq config reload`.
#[derive(Debug, Clone, Args)]
pub struct ConfigReloadArgs {
    /// Only report what a reload would apply, need a restart for, or reject.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// Runs `wrenmq config show|reload`.
pub fn config(verb: &ConfigVerb) -> CliResult {
    match verb {
        ConfigVerb::Show(a) => {
            let r = a.global.resolve()?;
            let v = Api::new(&r).get("/api/v1/config")?;
            if r.json {
                return print_json(&v);
            }
            let source = v
                .get("source")
                .map_or("-".to_string(), |s| cell(s, Kind::Plain));
            let loaded = v
                .get("loaded_at")
                .and_then(Value::as_i64)
                .map_or("-".to_string(), utc_time);
            print_line(&format!("# source: {source}\n# loaded at: {loaded} UTC"))?;
            if let Some(keys) = v.get("pending_restart").and_then(Value::as_array)
                && !keys.is_empty()
            {
                print_line(&format!(
                    "# changed on disk, waiting for a restart: {}",
                    cell(&Value::Array(keys.clone()), Kind::Plain)
                ))?;
            }
            if let Some(note) = v.get("note").and_then(Value::as_str) {
                print_line(&format!("# {note}"))?;
            }
            let config = v.get("config").cloned().unwrap_or(Value::Null);
            if config.is_null() {
                return Ok(());
            }
            // TOML, the file's own language, when the value has no nulls; JSON otherwise.
            match toml::to_string(&config) {
                Ok(text) => print_line(&text),
                Err(_) => print_json(&config),
            }
        }
        ConfigVerb::Reload(a) => {
            let r = a.global.resolve()?;
            let path = if a.dry_run {
                "/api/v1/config/reload?dry_run=true"
            } else {
                "/api/v1/config/reload"
            };
            let v = Api::new(&r).post(path, None, None)?;
            let non_empty = |k: &str| {
                v.get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            };
            // A key that needs a restart rejects the whole reload, as a bad key does.
            let rejected = non_empty("rejected") || non_empty("requires_restart");
            if r.json {
                print_json(&v)?;
            } else {
                print_reload(&v, a.dry_run, r.non_interactive)?;
            }
            if rejected {
                Err(CliError::data(
                    "the reload was rejected; nothing was applied",
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn print_reload(v: &Value, dry_run: bool, plain: bool) -> CliResult {
    let items = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let applied: Vec<String> = items("applied")
        .iter()
        .map(|x| cell(x, Kind::Plain))
        .collect();
    let verb = if dry_run { "would apply" } else { "applied" };
    print_line(&format!(
        "{verb}: {}",
        if applied.is_empty() {
            "nothing".to_string()
        } else {
            applied.join(", ")
        }
    ))?;
    // Each list holds objects (`{key, reason}`, and `old`/`new` for restart-only keys).
    let sections: [(&str, &str, &[super::output::Column]); 3] = [
        (
            "requires_restart",
            "requires a restart (so nothing was applied):",
            &[
                col("KEY", "key", Kind::Plain),
                col("RUNNING", "old", Kind::Plain),
                col("IN FILE", "new", Kind::Plain),
                col("REASON", "reason", Kind::Plain),
            ],
        ),
        (
            "rejected",
            "rejected:",
            &[
                col("KEY", "key", Kind::Plain),
                col("REASON", "reason", Kind::Plain),
            ],
        ),
        (
            "kept",
            "kept as they are:",
            &[
                col("KEY", "key", Kind::Plain),
                col("REASON", "reason", Kind::Plain),
            ],
        ),
    ];
    for (key, title, cols) in sections {
        let list = items(key);
        if !list.is_empty() {
            print_line(title)?;
            print_line(&items_table(&list, cols, plain).to_string())?;
        }
    }
    Ok(())
}
