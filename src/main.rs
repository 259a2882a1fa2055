//! The `wrenmq` command: runs the broker; `wrenmq perf ...` runs the load generator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wrenmq::config::{self, AcceptorProtocol, Config};
use wrenmq::server;

/// WrenMQ, a STOMP message broker with the Artemis address model.
#[derive(Debug, Parser)]
#[command(version, about)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Without a subcommand, `wrenmq` runs the broker.
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (TOML). Without it the embedded defaults apply: STOMP on
    /// 127.0.0.1:61613 with /queue/ and /topic/ prefixes and auto-create on.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen address of the STOMP (TCP) acceptor, overriding the config.
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<SocketAddr>,
    /// Listen address of the WebSocket acceptor, overriding the config.
    #[arg(long, value_name = "HOST:PORT")]
    ws_bind: Option<SocketAddr>,
    /// Journal directory, overriding the config.
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
}

/// Subcommands other than running the broker.
#[derive(Debug, Subcommand)]
enum Command {
    /// STOMP load generator, usable against any broker (see `wrenmq perf --help`).
    Perf(wrenmq::perf::PerfArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Perf(args)) = cli.command {
        return run_perf(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut config = match &cli.config {
        Some(path) => match config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("wrenmq: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(addr) = cli.bind {
        config.override_bind(AcceptorProtocol::Stomp, addr);
    }
    if let Some(addr) = cli.ws_bind {
        config.override_bind(AcceptorProtocol::Websocket, addr);
    }
    if let Some(dir) = cli.data_dir {
        config.override_data_dir(dir);
    }
    if let Err(errors) = config.validate() {
        for e in errors {
            eprintln!("wrenmq: {e}");
        }
        return ExitCode::from(2);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wrenmq: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

fn run_perf(args: wrenmq::perf::PerfArgs) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(wrenmq::perf::main(args)),
        Err(e) => {
            eprintln!("wrenmq perf: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    let running = match server::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wrenmq: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, protocol, addr) in &running.local_addrs {
        tracing::info!(acceptor = %name, ?protocol, %addr, "WrenMQ ready");
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
