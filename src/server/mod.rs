//! Starting and stopping the broker: binds every configured acceptor, shares the core with
//! them, and on shutdown stops accepting, tells each connection to close, and waits for them.
//! A broker configured with `[cluster]` runs as a node instead ([`cluster`]).

pub mod cluster;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin;
use crate::broker::Broker;
use crate::config::{AcceptorConfig, AcceptorProtocol, Config};
use crate::journal::{Journal, JournalOptions};
use crate::reload::{LogLevelSetter, Reloader};
use crate::security::Security;
use crate::session::{Connections, SessionContext, ShutdownSignal};
use crate::stomp::Limits;
use crate::transport;
use crate::transport::admission::{AcceptorSlots, ConnectionLimiter};
use crate::transport::context::{AcceptorContext, ConnectionCount};

/// A running broker: its bound addresses and the means to stop it.
pub struct RunningBroker {
    /// The core, for in-process inspection (tests).
    pub broker: Arc<Broker>,
    /// Bound address of each acceptor, in config order (port 0 resolved).
    pub local_addrs: Vec<(String, AcceptorProtocol, SocketAddr)>,
    /// Users and permissions, for in-process inspection (tests).
    pub security: Arc<Security>,
    limiter: Arc<ConnectionLimiter>,
    stop: watch::Sender<bool>,
    connections: Arc<ConnectionCount>,
    acceptors: Vec<JoinHandle<()>>,
    grace: Duration,
    /// Every connection, for operators.
    pub registry: Arc<Connections>,
    /// Where the admin listener is bound, when it runs.
    pub admin_addr: Option<SocketAddr>,
    reloader: Option<Arc<Reloader>>,
}

impl RunningBroker {
    /// The first bound address of a protocol.
    pub fn addr(&self, protocol: AcceptorProtocol) -> Option<SocketAddr> {
        self.local_addrs
            .iter()
            .find(|(_, p, _)| *p == protocol)
            .map(|(_, _, a)| *a)
    }

    /// The bound address of the acceptor named `name`.
    pub fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.local_addrs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, a)| *a)
    }

    /// The configuration reloader, when the broker was started from a file (for the admin
    /// API's `/config` endpoints; SIGHUP and the file watcher already use it).
    pub fn reloader(&self) -> Option<Arc<Reloader>> {
        self.reloader.clone()
    }

    /// Connections admitted and not yet closed, over all acceptors.
    pub fn open_connections(&self) -> usize {
        self.limiter.open()
    }

    /// Stops accepting, asks every connection to close (they send ERROR and close), and waits
    /// up to the configured grace period for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for a in &self.acceptors {
            a.abort();
        }
        let wait_closed = self.connections.all_closed();
        if tokio::time::timeout(self.grace, wait_closed).await.is_err() {
            tracing::warn!("some connections did not close within the shutdown grace period");
        }
        let broker = Arc::clone(&self.broker);
        let _ = tokio::task::spawn_blocking(move || broker.shutdown_journal()).await;
    }
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An acceptor could not bind.
    #[error("acceptor '{name}' cannot listen on {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The core refused the configuration.
    #[error("{0}")]
    Broker(#[from] crate::broker::BrokerError),
    /// The journal could not be opened; it was left as it was.
    #[error("cannot open the journal: {0}")]
    Journal(String),
    /// An acceptor's TLS certificate, key or CA could not be loaded.
    #[error("acceptor '{name}': {key}: {reason}")]
    Tls {
        name: String,
        key: String,
        reason: String,
    },
    /// `[cluster.tls]`: a certificate, key or CA could not be loaded.
    #[error("{key}: {reason}")]
    PeerTls { key: String, reason: String },
    /// This cluster node's raft stopped for good (a storage failure, or openraft refusing to
    /// go on): the process ends so that its supervisor starts it afresh.
    #[error("cluster node {node}: raft stopped: {reason}")]
    RaftStopped { node: u64, reason: String },
    /// An acceptor of a kind this build cannot serve yet.
    #[error("acceptor '{0}': protocol not supported by this build")]
    Unsupported(String),
}

/// Builds the core (recovering from the journal when persistence is on) and binds every
/// acceptor; a broker started from a file also reloads it (see [`start_with`]).
pub async fn start(config: Config) -> Result<RunningBroker, StartError> {
    start_with(config, None).await
}

/// [`start`], with the means to apply `[broker] log-level` on a reload (the binary's log
/// subscriber). When `config` came from a file, the broker reloads it on SIGHUP and, unless
/// `[broker] watch-config = false`, when the file changes.
pub async fn start_with(
    config: Config,
    log_level: Option<LogLevelSetter>,
) -> Result<RunningBroker, StartError> {
    let journal = if config.journal.enabled {
        let opts = journal_options(&config, config.journal.data_dir.clone());
        // Opening reads and may compact the whole file: keep it off the async workers.
        let opened = tokio::task::spawn_blocking(move || Journal::open(opts))
            .await
            .map_err(|e| StartError::Journal(format!("journal open task failed: {e}")))?;
        Some(opened.map_err(|e| StartError::Journal(e.to_string()))?)
    } else {
        None
    };
    start_on(config, log_level, journal, None).await
}

/// Journal options from the configuration, for `dir`.
pub(crate) fn journal_options(config: &Config, dir: std::path::PathBuf) -> JournalOptions {
    JournalOptions {
        dir,
        sync: config.journal.sync,
        buffer_timeout: Duration::from_micros(config.journal.buffer_timeout_us),
        max_batch: config.journal.max_batch,
        load_limit: recovery_load_limit(config),
        cache_size: config.journal.cache_size,
    }
}

/// [`start_with`] on a journal already open (with what it recovered), or none: a cluster
/// node's leader hands in its replicated journal here, and its node for the admin API.
pub async fn start_on(
    config: Config,
    log_level: Option<LogLevelSetter>,
    journal: Option<(Journal, crate::journal::Recovered)>,
    cluster: Option<Arc<dyn admin::ClusterControl>>,
) -> Result<RunningBroker, StartError> {
    let broker = Broker::with_journal(&config, journal)?;
    let security = Arc::new(Security::new(&config));
    let limiter = Arc::new(ConnectionLimiter::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip.unwrap_or(usize::MAX),
    ));
    let (stop, stop_rx) = watch::channel(false);
    let registry = Arc::new(Connections::default());
    let connections = Arc::new(ConnectionCount::default());
    let mut local_addrs = Vec::new();
    let mut acceptors = Vec::new();
    for (index, acceptor) in config.acceptors.iter().enumerate() {
        let tls =
            match &acceptor.tls {
                Some(tls) => Some(transport::tls::acceptor(tls).map_err(|(key, reason)| {
                    StartError::Tls {
                        name: acceptor.name.clone(),
                        key: format!("acceptors[{index}].tls.{key}"),
                        reason,
                    }
                })?),
                None => None,
            };
        let anonymous_ok = anonymous_allowed(&config, acceptor);
        let listener =
            TcpListener::bind(acceptor.bind)
                .await
                .map_err(|source| StartError::Bind {
                    name: acceptor.name.clone(),
                    addr: acceptor.bind,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            name: acceptor.name.clone(),
            addr: acceptor.bind,
            source,
        })?;
        let session = Arc::new(SessionContext {
            broker: Arc::clone(&broker),
            limits: Limits {
                max_frame_size: acceptor.limits.max_frame_size,
                max_headers: acceptor.limits.max_headers,
                max_header_line: acceptor.limits.max_header_line,
                max_body: acceptor.limits.max_body,
            },
            acceptor: acceptor.clone(),
            server_name: format!(
                "WrenMQ/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.broker.name
            ),
            security: Arc::clone(&security),
            anonymous_ok,
            session_limits: config.limits,
            handshake_timeout: Duration::from_millis(
                acceptor
                    .limits
                    .handshake_timeout_ms
                    .unwrap_or(config.limits.handshake_timeout_ms),
            ),
            connections: Arc::clone(&registry),
        });
        let ctx = Arc::new(AcceptorContext::new(
            session,
            Arc::clone(&connections),
            Arc::clone(&limiter),
            Arc::new(AcceptorSlots::new(acceptor.limits.max_connections)),
        ));
        let signal = ShutdownSignal::new(stop_rx.clone());
        let handle = match acceptor.protocol {
            AcceptorProtocol::Stomp => match tls {
                Some(tls) => tokio::spawn(transport::tls::run(listener, tls, ctx, signal)),
                None => tokio::spawn(transport::tcp::run(listener, ctx, signal)),
            },
            AcceptorProtocol::Websocket => match tls {
                Some(tls) => {
                    tokio::spawn(transport::websocket::run_tls(listener, tls, ctx, signal))
                }
                None => tokio::spawn(transport::websocket::run(listener, ctx, signal)),
            },
        };
        tracing::info!(acceptor = %acceptor.name, %addr, protocol = ?acceptor.protocol, "listening");
        local_addrs.push((acceptor.name.clone(), acceptor.protocol, addr));
        acceptors.push(handle);
    }
    let reloader = config.source.clone().map(|source| {
        let reloader = Arc::new(Reloader::new(
            source,
            config.clone(),
            Arc::clone(&broker),
            Arc::clone(&security),
            log_level,
        ));
        reloader.spawn_triggers(stop.subscribe());
        reloader
    });
    let admin_addr = if config.admin.enabled {
        let listener = TcpListener::bind(config.admin.bind)
            .await
            .map_err(|source| StartError::Bind {
                name: "admin".into(),
                addr: config.admin.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            name: "admin".into(),
            addr: config.admin.bind,
            source,
        })?;
        let listeners = local_addrs
            .iter()
            .zip(&config.acceptors)
            .map(|((name, protocol, address), a)| admin::Listener {
                name: name.clone(),
                protocol: format!(
                    "{}{}",
                    match protocol {
                        AcceptorProtocol::Stomp => "stomp",
                        AcceptorProtocol::Websocket => "websocket",
                    },
                    if a.tls.is_some() { "+tls" } else { "" }
                ),
                address: *address,
            })
            .collect();
        let mut ctx = admin::AdminContext::new(
            Arc::clone(&broker),
            Arc::clone(&security),
            Arc::clone(&registry),
            config.admin.clone(),
            admin_anonymous(&config),
            security_off(&config),
            config.broker.name.clone(),
            listeners,
        );
        if let Some(r) = &reloader {
            ctx.config_loaded_at = r.view().loaded_at;
            ctx.reload = Some(Arc::new(ReloadControl(Arc::clone(r))));
        }
        ctx.cluster = cluster;
        acceptors.push(admin::spawn(
            listener,
            Arc::new(ctx),
            ShutdownSignal::new(stop_rx.clone()),
        ));
        tracing::info!(%addr, "admin listener (HTTP API, /metrics, console)");
        Some(addr)
    } else {
        None
    };
    Ok(RunningBroker {
        reloader,
        broker,
        local_addrs,
        security,
        limiter,
        stop,
        connections,
        acceptors,
        grace: Duration::from_secs(config.broker.shutdown_grace_secs),
        registry,
        admin_addr,
    })
}

/// Whether an acceptor takes anonymous connections, logging the decision: unset
/// `allow-anonymous` means loopback acceptors only; `true` on a non-loopback bind is warned of.
fn anonymous_allowed(config: &Config, acceptor: &AcceptorConfig) -> bool {
    let loopback = acceptor.bind.ip().is_loopback();
    let name = acceptor.name.as_str();
    match config.security.allow_anonymous {
        None if loopback => {
            tracing::info!(
                acceptor = name,
                "anonymous access allowed: the acceptor is loopback-only ([security] allow-anonymous unset)"
            );
            true
        }
        None => {
            tracing::info!(acceptor = name, bind = %acceptor.bind, "anonymous access refused on a non-loopback acceptor; set [security] allow-anonymous = true to allow it");
            false
        }
        Some(true) if !loopback => {
            tracing::warn!(acceptor = name, bind = %acceptor.bind, "anonymous access is allowed on a non-loopback acceptor: anyone who can reach it can connect");
            true
        }
        Some(allowed) => allowed,
    }
}

/// Whether the admin listener lets requests without credentials in: as a STOMP acceptor on
/// the same address would (loopback, unless `allow-anonymous` says otherwise).
pub(crate) fn admin_anonymous(config: &Config) -> bool {
    match config.security.allow_anonymous {
        None => config.admin.bind.ip().is_loopback(),
        Some(allowed) => allowed,
    }
}

/// Whether no user is configured at all: anonymous admin callers are then admin.
pub(crate) fn security_off(config: &Config) -> bool {
    config.users.is_empty() && config.security.users_file.is_none()
}

/// How much of a stored backlog recovery loads into memory: half of `global-max-size` in
/// all, and two pages (`page-size-bytes` of the catch-all `#` settings) per queue; the rest
/// stays on disk and each queue reads it back as its consumers catch up.
pub(crate) fn recovery_load_limit(config: &Config) -> crate::journal::LoadLimit {
    let page = config
        .address_settings
        .iter()
        .rev()
        .find(|e| e.pattern == "#")
        .and_then(|e| e.page_size_bytes)
        .unwrap_or(crate::config::DEFAULT_PAGE_SIZE_BYTES);
    crate::journal::LoadLimit {
        per_queue: u64::try_from(page).unwrap_or(1).saturating_mul(2),
        total: crate::broker::global_max_size(config.broker.global_max_size) / 2,
    }
}

/// The admin API's handle on the reloader: the API is a trigger like SIGHUP, so its reports
/// are logged the same way.
struct ReloadControl(Arc<Reloader>);

impl admin::ConfigControl for ReloadControl {
    fn view(&self) -> serde_json::Value {
        serde_json::to_value(self.0.view()).unwrap_or(serde_json::Value::Null)
    }

    fn figures(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.0.applied_count.load(Relaxed),
            self.0.rejected_count.load(Relaxed),
            self.0.loaded_at(),
        )
    }

    fn reload(
        &self,
        dry_run: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            let report = self.0.reload(dry_run).await;
            report.log("admin API");
            serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
        })
    }
}
