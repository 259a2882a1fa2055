//! The `wrenmq` command: runs the broker; `wrenmq perf ...` runs the load generator,
//! `wrenmq user ...` prepares user entries, and the client verbs (`wrenmq send`,
//! `wrenmq queue list`, ...; `src/cli/`) talk to a running broker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
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
    /// Listen address of the admin HTTP listener (API, /metrics, console), overriding the
    /// config's `[admin] bind`.
    #[arg(long, value_name = "HOST:PORT")]
    admin_bind: Option<SocketAddr>,
    /// Journal directory, overriding the config.
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Log line format on stderr: `text` for people, `json` (one object per line) for log
    /// shippers. Colour only when stderr is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// `wrenmq user ...`.
#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Hash a password (read from stdin, or prompted for on a terminal) and print the PHC
    /// string for `password-hash`.
    Hash,
    /// Print a ready `[[users]]` entry (password read as for `hash`), or append it to a
    /// users file.
    Add {
        /// The login name.
        #[arg(long)]
        name: String,
        /// Comma-separated roles, e.g. `producer,consumer`.
        #[arg(long, default_value = "")]
        roles: String,
        /// Append to this users file (`[security] users-file`) instead of printing.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
}

/// `wrenmq config ...`.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse and validate a configuration file offline: list unknown keys, print the
    /// effective value of every key, exit 2 naming file, key and reason when it is invalid.
    /// Without FILE, prints the built-in defaults.
    Check {
        /// The configuration file (TOML).
        file: Option<PathBuf>,
    },
    #[command(flatten)]
    Remote(wrenmq::cli::ConfigVerb),
}

/// Subcommands other than running the broker.
#[derive(Debug, Subcommand)]
enum Command {
    /// STOMP load generator, usable against any broker (see `wrenmq perf --help`).
    Perf(wrenmq::perf::PerfArgs),
    /// Prepare users for the configuration (passwords are stored as argon2 hashes).
    #[command(subcommand)]
    User(UserCommand),
    #[command(flatten)]
    Client(wrenmq::cli::ClientCommand),
    /// Configuration: check a file offline; show or reload a running broker's.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script, e.g. `wrenmq completion bash > /etc/bash_completion.d/wrenmq`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: wrenmq::cli::Shell,
    },
    /// Print the man page (roff), as packaging/wrenmq.1 holds it.
    #[command(hide = true)]
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Perf(args)) => return run_perf(args),
        Some(Command::User(cmd)) => {
            return match user_command(&cmd) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("wrenmq: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Client(cmd)) => return wrenmq::cli::run(&cmd),
        Some(Command::Config(ConfigCommand::Remote(verb))) => {
            return wrenmq::cli::finish(wrenmq::cli::admin::config(&verb));
        }
        Some(Command::Completion { shell }) => {
            return wrenmq::cli::completion(shell, &mut Cli::command());
        }
        Some(Command::Man) => return wrenmq::cli::man(Cli::command()),
        Some(Command::Config(ConfigCommand::Check { file })) => {
            let outcome = wrenmq::reload::check(file.as_deref());
            print!("{}", outcome.stdout);
            eprint!("{}", outcome.stderr);
            return if outcome.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
        None => {}
    }
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
    if let Some(addr) = cli.admin_bind {
        config.override_admin_bind(addr);
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
    let log_level =
        wrenmq::reload::init_logging(&config.broker.log_level, cli.log_format == LogFormat::Json);

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
    runtime.block_on(run(config, log_level))
}

fn run_perf(args: wrenmq::perf::PerfArgs) -> ExitCode {
    // The ceiling runs on this thread alone, with no runtime's threads beside it.
    if let wrenmq::perf::Scenario::EchoServer(e) = args.scenario.as_ref() {
        return wrenmq::perf::echo_server(e);
    }
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

async fn run(config: Config, log_level: wrenmq::reload::LogLevelSetter) -> ExitCode {
    if let Some(cluster) = config.cluster.clone() {
        return run_cluster_node(config, cluster, log_level).await;
    }
    let running = match server::start_with(config, Some(log_level)).await {
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

async fn run_cluster_node(
    config: Config,
    cluster: wrenmq::config::ClusterConfig,
    log_level: wrenmq::reload::LogLevelSetter,
) -> ExitCode {
    match server::cluster::run(config, cluster, Some(log_level), wait_for_signal()).await {
        Ok(server::cluster::Outcome::Stopped) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(server::cluster::Outcome::Demoted) => restart_self(),
        Err(e) => {
            eprintln!("wrenmq: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts this binary again with the same arguments in place of this process (a demoted
/// cluster leader; see `server::cluster`). Every socket is close-on-exec, so clients are
/// dropped and reconnect to the new leader.
fn restart_self() -> ExitCode {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("wrenmq: cannot find this binary to start again: {e}");
                return ExitCode::FAILURE;
            }
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec();
        eprintln!("wrenmq: cannot start again after losing the cluster's lead: {err}");
    }
    ExitCode::FAILURE
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

fn user_command(cmd: &UserCommand) -> Result<(), String> {
    let hash = wrenmq::security::hash_password(&read_password()?)?;
    match cmd {
        UserCommand::Hash => println!("{hash}"),
        UserCommand::Add { name, roles, file } => {
            if name.is_empty() {
                return Err("--name must not be empty".to_string());
            }
            let entry =
                wrenmq::security::user_entry(name, &wrenmq::security::parse_roles(roles), &hash);
            match file {
                None => print!("{entry}"),
                Some(path) => append_user(path, name, &entry)?,
            }
        }
    }
    Ok(())
}

/// Reads the password: prompted twice without echo on a terminal, else one line of stdin.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".to_string());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err("the password is empty".to_string());
    }
    Ok(password)
}

/// Appends `entry` to a users file, refusing a file that does not parse or already has `name`.
fn append_user(path: &std::path::Path, name: &str, entry: &str) -> Result<(), String> {
    use std::io::Write;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let parsed: config::UsersFile =
        toml::from_str(&existing).map_err(|e| format!("{}: {e}", path.display()))?;
    if parsed.users.iter().any(|u| u.name == name) {
        return Err(format!(
            "{}: user \"{name}\" already exists",
            path.display()
        ));
    }
    let separator = if existing.is_empty() || existing.ends_with("\n\n") {
        ""
    } else if existing.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    // The file holds password hashes: private from its creation (the broker refuses it
    // otherwise), not after a window in which the umask's mode applied.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    make_private(path, &file)?;
    file.write_all(format!("{separator}{entry}").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrenmq: added user \"{name}\" to {}", path.display());
    Ok(())
}

/// Tightens an existing users file that group or others may access to 0600, before a hash is
/// written to it, so a rewrite never leaves it readable (the broker would refuse it anyway).
#[cfg(unix)]
fn make_private(path: &std::path::Path, file: &std::fs::File) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mode = file.metadata().map_err(err)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        eprintln!(
            "wrenmq: {} had mode {mode:04o}; made it 0600 (it holds password hashes)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &std::path::Path, _file: &std::fs::File) -> Result<(), String> {
    Ok(())
}
