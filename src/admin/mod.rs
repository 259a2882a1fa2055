//! The admin listener: the HTTP API under `/api/v1`, `/healthz` and `/readyz`, `/metrics`, and
//! the operator console, on their own port (loopback by default). It sits beside the
//! transports: it reads the core's figures (atomics, see `broker::stats`) and the connection
//! registry, and acts through the same core calls a STOMP client's frames use, with the
//! caller's own permissions. Every console action is one of these API calls and every API call
//! a CLI verb.

mod api;
mod auth;
mod cluster;
mod console;
mod envelope;
mod follower;
mod metrics;
mod openapi;
mod process;
mod rates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::config::AdminConfig;
use crate::security::Security;
use crate::session::{Connections, ShutdownSignal};

pub use cluster::{BoxFuture, ClusterAdmin, ClusterControl, MemberRefusal};
pub use follower::spawn_follower;
pub use rates::Rates;

/// One listener the broker serves, for the overview and the readiness check.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The acceptor's name.
    pub name: String,
    /// `stomp` or `websocket`, with `+tls` when it is.
    pub protocol: String,
    /// Where it is bound.
    pub address: SocketAddr,
}

/// What the admin listener needs of the running broker.
pub struct AdminContext {
    /// The core.
    pub broker: Arc<Broker>,
    /// Users and permissions (the STOMP ones).
    pub security: Arc<Security>,
    /// Every connection.
    pub connections: Arc<Connections>,
    /// The `[admin]` section.
    pub config: AdminConfig,
    /// Whether anonymous requests are let in, as on a STOMP acceptor of the same address.
    pub anonymous_ok: bool,
    /// Whether no user is configured at all (security off): anonymous is then admin.
    pub open: bool,
    /// The broker's name (`[broker] name`).
    pub node: String,
    /// The bound acceptors.
    pub listeners: Vec<Listener>,
    /// When the broker started.
    pub started: Instant,
    /// When the configuration was loaded (ms since the epoch).
    pub config_loaded_at: u64,
    /// Rates sampled from the counters.
    pub rates: Arc<Rates>,
    /// Live configuration reload, when the broker was started from a file.
    pub reload: Option<Arc<dyn ConfigControl>>,
    /// The cluster node this broker runs as, when it runs with `[cluster]`.
    pub cluster: Option<Arc<dyn ClusterControl>>,
    auth_cache: auth::Cache,
}

impl std::fmt::Debug for AdminContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminContext").finish_non_exhaustive()
    }
}

/// What the API asks of the configuration reloader (implemented by `reload::Reloader`).
pub trait ConfigControl: Send + Sync + 'static {
    /// The effective configuration, redacted, as JSON.
    fn view(&self) -> serde_json::Value;
    /// Reloads applied and rejected since start, and when the configuration was last loaded
    /// (ms since the epoch), for `/metrics` and the overview.
    fn figures(&self) -> (u64, u64, u64);
    /// Reloads (or, with `dry_run`, only reports), as JSON.
    fn reload(
        &self,
        dry_run: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send + '_>>;
}

impl AdminContext {
    /// What authenticating a request here needs.
    pub(crate) fn gate(&self) -> auth::Gate<'_> {
        auth::Gate {
            security: &self.security,
            config: &self.config,
            anonymous_ok: self.anonymous_ok,
            open: self.open,
            cache: &self.auth_cache,
        }
    }

    /// The context for a broker's admin listener.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        broker: Arc<Broker>,
        security: Arc<Security>,
        connections: Arc<Connections>,
        config: AdminConfig,
        anonymous_ok: bool,
        open: bool,
        node: String,
        listeners: Vec<Listener>,
    ) -> AdminContext {
        let rates = Arc::new(Rates::new(config.samples));
        AdminContext {
            broker,
            security,
            connections,
            config,
            anonymous_ok,
            open,
            node,
            listeners,
            started: Instant::now(),
            config_loaded_at: crate::broker::now_millis(),
            rates,
            reload: None,
            cluster: None,
            auth_cache: auth::Cache::default(),
        }
    }
}

/// Serves the admin listener until shutdown; also runs the rate sampler.
pub fn spawn(
    listener: TcpListener,
    ctx: Arc<AdminContext>,
    mut shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    let sampler = rates::spawn_sampler(Arc::clone(&ctx));
    tokio::spawn(async move {
        let app = api::router(Arc::clone(&ctx));
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the admin listener stopped");
        }
        sampler.abort();
    })
}
