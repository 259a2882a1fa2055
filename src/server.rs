//! Starting and stopping the broker: binds every configured acceptor, shares the core with
//! them, and on shutdown stops accepting, tells each connection to close, and waits for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::config::{AcceptorConfig, AcceptorProtocol, Config};
use crate::journal::{Journal, JournalOptions};
use crate::stomp::Limits;
use crate::transport;

/// Everything a connection needs from its acceptor: the core, the acceptor's settings, and
/// the broker-wide connection count used by graceful shutdown.
#[derive(Debug)]
pub struct AcceptorContext {
    /// The core.
    pub broker: Arc<Broker>,
    /// The acceptor's configuration (prefixes, limits, heart-beats).
    pub acceptor: AcceptorConfig,
    /// Frame limits derived from the configuration.
    pub limits: Limits,
    /// The CONNECTED `server` header.
    pub server_name: String,
    connections: Arc<ConnectionCount>,
}

#[derive(Debug, Default)]
struct ConnectionCount {
    open: AtomicUsize,
    all_closed: Notify,
}

/// Counts one open connection until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<ConnectionCount>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

impl AcceptorContext {
    /// Registers a connection for graceful shutdown to wait on.
    pub fn track_connection(&self) -> ConnectionGuard {
        self.connections.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(Arc::clone(&self.connections))
    }
}

/// A cloneable "the broker is stopping" signal.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// A running broker: its bound addresses and the means to stop it.
pub struct RunningBroker {
    /// The core, for in-process inspection (tests).
    pub broker: Arc<Broker>,
    /// Bound address of each acceptor, in config order (port 0 resolved).
    pub local_addrs: Vec<(String, AcceptorProtocol, SocketAddr)>,
    stop: watch::Sender<bool>,
    connections: Arc<ConnectionCount>,
    acceptors: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl RunningBroker {
    /// The first bound address of a protocol.
    pub fn addr(&self, protocol: AcceptorProtocol) -> Option<SocketAddr> {
        self.local_addrs
            .iter()
            .find(|(_, p, _)| *p == protocol)
            .map(|(_, _, a)| *a)
    }

    /// Stops accepting, asks every connection to close (they send ERROR and close), and waits
    /// up to the configured grace period for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for a in &self.acceptors {
            a.abort();
        }
        let wait_closed = async {
            loop {
                let notified = self.connections.all_closed.notified();
                if self.connections.open.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
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
    /// An acceptor of a kind this build cannot serve yet.
    #[error("acceptor '{0}': protocol not supported by this build")]
    Unsupported(String),
}

/// Builds the core (recovering from the journal when persistence is on) and binds every
/// acceptor.
pub async fn start(config: Config) -> Result<RunningBroker, StartError> {
    let journal = if config.journal.enabled {
        let opts = JournalOptions {
            dir: config.journal.data_dir.clone(),
            sync: config.journal.sync,
            buffer_timeout: Duration::from_micros(config.journal.buffer_timeout_us),
            max_batch: config.journal.max_batch,
        };
        // Opening reads and may compact the whole file: keep it off the async workers.
        let opened = tokio::task::spawn_blocking(move || Journal::open(opts))
            .await
            .map_err(|e| StartError::Journal(format!("journal open task failed: {e}")))?;
        Some(opened.map_err(|e| StartError::Journal(e.to_string()))?)
    } else {
        None
    };
    let broker = Broker::with_journal(&config, journal)?;
    let (stop, stop_rx) = watch::channel(false);
    let connections = Arc::new(ConnectionCount::default());
    let mut local_addrs = Vec::new();
    let mut acceptors = Vec::new();
    for acceptor in &config.acceptors {
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
        let ctx = Arc::new(AcceptorContext {
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
            connections: Arc::clone(&connections),
        });
        let signal = ShutdownSignal(stop_rx.clone());
        let handle = match acceptor.protocol {
            AcceptorProtocol::Stomp => tokio::spawn(transport::tcp::run(listener, ctx, signal)),
            AcceptorProtocol::Websocket => {
                tokio::spawn(transport::websocket::run(listener, ctx, signal))
            }
        };
        tracing::info!(acceptor = %acceptor.name, %addr, protocol = ?acceptor.protocol, "listening");
        local_addrs.push((acceptor.name.clone(), acceptor.protocol, addr));
        acceptors.push(handle);
    }
    Ok(RunningBroker {
        broker,
        local_addrs,
        stop,
        connections,
        acceptors,
        grace: Duration::from_secs(config.broker.shutdown_grace_secs),
    })
}
