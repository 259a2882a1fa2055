//! The `wrenmq` client verbs: message verbs over STOMP (`send`, `receive`) and admin verbs
//! over the admin HTTP API (`overview`, `queue`, `address`, `connection`, `subscription`,
//! `config show|reload`, `check`, `cluster`), plus shell completion and the man page.
//!
//! A client layer like [`crate::perf`]: it talks to a broker only through its public
//! protocols (the codec and perf's STOMP client for STOMP, ureq for HTTP), never through the
//! broker core, so it works against a remote broker exactly as against a local one.
//! Every failure exits with a `sysexits.h` code ([`error::CliError`]); checks exit with
//! Nagios codes.

pub mod address;
pub mod admin;
pub mod check;
pub mod cluster;
pub mod connection;
pub mod error;
pub mod global;
pub mod http;
pub mod list;
pub mod output;
pub mod progress;
pub mod queue;
pub mod stomp;
pub mod units;

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

pub use admin::ConfigVerb;
pub use error::{CliError, CliResult};

/// The client subcommands, flattened into `wrenmq`'s own (main.rs).
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Mutating. Send messages over STOMP.
    Send(stomp::SendArgs),
    /// Mutating (consumes). Receive messages over STOMP and print or store them.
    Receive(stomp::ReceiveArgs),
    /// Read-only. Version, uptime, listeners, totals, rates, alarms and memory.
    Overview(admin::OverviewArgs),
    /// Queues: list, show, create, delete, purge, browse, move, copy, retry, pause, resume.
    Queue(queue::QueueArgs),
    /// Addresses: list, show, create, delete.
    Address(address::AddressArgs),
    /// Connections: list, show, close.
    Connection(connection::ConnectionArgs),
    /// Subscriptions (consumers): list.
    Subscription(connection::SubscriptionArgs),
    /// Read-only. Monitoring probes with Nagios output and exit codes (0 OK, 2 CRITICAL,
    /// 3 UNKNOWN).
    Check(check::CheckArgs),
    /// A cluster node's view (status) and membership changes (join, leave).
    Cluster(cluster::ClusterArgs),
}

/// Runs a client verb and turns its failure into the message and exit code.
pub fn run(cmd: &ClientCommand) -> ExitCode {
    let result = match cmd {
        ClientCommand::Send(a) => stomp::send(a),
        ClientCommand::Receive(a) => stomp::receive(a),
        ClientCommand::Overview(a) => admin::overview(a),
        ClientCommand::Queue(a) => queue::run(a),
        ClientCommand::Address(a) => address::run(a),
        ClientCommand::Connection(a) => connection::run(a),
        ClientCommand::Subscription(a) => connection::run_subscriptions(a),
        ClientCommand::Check(a) => return check::run(a),
        ClientCommand::Cluster(a) => cluster::run(a),
    };
    finish(result)
}

/// Prints a verb's failure (if any) and returns its exit code.
pub fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wrenmq: {e}");
            e.exit_code()
        }
    }
}

/// The shells `wrenmq completion` writes scripts for.
pub use clap_complete::Shell;

/// Writes the completion script of `cmd` for `shell` to stdout.
pub fn completion(shell: Shell, cmd: &mut clap::Command) -> ExitCode {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, name, &mut out);
    write_stdout(&out)
}

/// The man page (roff) of `cmd`, as `packaging/wrenmq.1` holds it.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

/// Writes the man page of `cmd` to stdout.
pub fn man(cmd: clap::Command) -> ExitCode {
    match man_page(cmd) {
        Ok(out) => write_stdout(&out),
        Err(e) => finish(Err(CliError::io(format!("rendering the man page: {e}")))),
    }
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    finish(
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::io(format!("writing to stdout: {e}"))),
    )
}
