//! A broker configured with `[cluster]`: one node of a replicated cluster.
//!
//! Only the leader runs a broker and serves clients (as an Artemis backup stays passive).
//! A follower listens on the same acceptors and relays each connection, byte for byte, to
//! the leader's same-named acceptor (`relay`), and drops relayed connections when the leader
//! changes; with no leader known it closes them at once, so a client with a host list
//! (stomp.py) tries the next host. Its admin listener answers only for itself: `/healthz`,
//! `/readyz` (503), `/cluster/leader` (503, naming the leader) and the cluster view. The
//! node waits until it leads and has applied everything committed before, closes the
//! follower's listeners, then starts the broker on the replicated journal with what that
//! journal holds, exactly as a single broker starts after a restart: queues, messages,
//! delivery counts and duplicate-id caches come back, and a message that was delivered but
//! not acked comes back `redelivered`. It then announces, through the log, where it serves
//! clients, which is how followers know where to relay.
//!
//! When the node stops leading, the broker it runs must stop at once: it holds in memory
//! what the new leader now owns. The node then reports [`Outcome::Demoted`], and the binary
//! starts itself again (`exec`), which closes every client connection and starts the node
//! afresh as a follower; simpler and surer than unwinding every connection, queue and timer
//! in place.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::relay::{self, LeaderView};
use super::{
    RunningBroker, StartError, admin_anonymous, journal_options, recovery_load_limit, security_off,
    start_on,
};
use crate::admin::{self, ClusterAdmin, ClusterControl, MemberRefusal};
use crate::cluster::{
    ClientAddresses, ClusterNode, Control, MembershipError, NodeId, NodeOptions, PeerTls, Timing,
};
use crate::config::{ClientAuth, ClusterConfig, Config, PeerTlsConfig, TlsConfig};
use crate::reload::LogLevelSetter;
use crate::security::Security;
use crate::transport;

/// How a node's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop (a signal): stopped cleanly.
    Stopped,
    /// This node led and no longer does: its broker was dropped; start the process again.
    Demoted,
}

/// Runs this broker as node `cluster.node-id` until `stop` resolves or it loses the lead.
pub async fn run(
    config: Config,
    cluster: ClusterConfig,
    log_level: Option<LogLevelSetter>,
    stop: impl Future<Output = ()>,
) -> Result<Outcome, StartError> {
    let listener = tokio::net::TcpListener::bind(cluster.listen)
        .await
        .map_err(|source| StartError::Bind {
            name: "cluster".into(),
            addr: cluster.listen,
            source,
        })?;
    let members: BTreeMap<u64, String> = cluster
        .peers
        .iter()
        .map(|p| (p.id, p.address.clone()))
        .collect();
    let dir = config.journal.data_dir.clone();
    let opts = NodeOptions {
        id: cluster.node_id,
        journal: journal_options(&config, dir.join("journal")),
        dir,
        members,
        timing: Timing {
            heartbeat: Duration::from_millis(cluster.heartbeat_ms),
            election: (
                Duration::from_millis(cluster.election_timeout_min_ms),
                Duration::from_millis(cluster.election_timeout_max_ms),
            ),
            ..Timing::default()
        },
        tls: cluster.tls.as_ref().map(peer_tls).transpose()?,
    };
    let (node, _) = ClusterNode::start(opts, listener)
        .await
        .map_err(StartError::Journal)?;
    tracing::info!(node = cluster.node_id, listen = %cluster.listen, "cluster node started; serving clients only while leading, relaying them to the leader otherwise");
    tokio::pin!(stop);
    let (leader, leader_task) = leader_watch(&node);
    let control: Arc<dyn ClusterControl> = Arc::new(NodeControl {
        control: node.control(),
        clients: node.clients(),
    });
    let view = LeaderView {
        me: cluster.node_id,
        leader,
        clients: node.clients(),
    };
    let follower = follow(&config, view, Arc::clone(&control)).await?;

    // Lead only with a majority's word for it (see `confirm_lead`); until then, follow.
    loop {
        let confirmed = async {
            node.wait_leadership().await;
            node.confirm_lead().await
        };
        let confirmed = tokio::select! {
            c = confirmed => c,
            why = node.raft_stopped() => {
                stop_all(follower).await;
                leader_task.abort();
                return Err(StartError::RaftStopped { node: cluster.node_id, reason: why });
            }
            _ = &mut stop => {
                stop_all(follower).await;
                leader_task.abort();
                node.shutdown().await;
                return Ok(Outcome::Stopped);
            }
        };
        if confirmed {
            break;
        }
        tracing::warn!(
            node = cluster.node_id,
            "raft says this node leads, but no majority confirms it: not serving clients yet"
        );
        tokio::time::sleep(Duration::from_millis(cluster.heartbeat_ms)).await;
    }
    // The broker binds the same ports: the follower's listeners must be closed first.
    stop_all(follower).await;
    leader_task.abort();
    let (journal, recovered) = node
        .broker_journal(recovery_load_limit(&config))
        .await
        .map_err(StartError::Journal)?;
    tracing::info!(
        node = cluster.node_id,
        "leading: starting the broker on the replicated journal"
    );
    let peer_host = own_host(&cluster);
    let config = bodies_in_the_log(config);
    let running: RunningBroker =
        start_on(config, log_level, Some((journal, recovered)), Some(control)).await?;
    for (name, protocol, addr) in &running.local_addrs {
        tracing::info!(acceptor = %name, ?protocol, %addr, "WrenMQ ready (cluster leader)");
    }
    let announcement = ClientAddresses {
        node: cluster.node_id,
        acceptors: running
            .local_addrs
            .iter()
            .map(|(name, _, addr)| (name.clone(), reachable(*addr, &peer_host)))
            .collect(),
    };
    if let Err(e) = node.announce(announcement).await {
        // Followers then close clients rather than relay them; the lead is probably lost.
        tracing::warn!(node = cluster.node_id, error = %e, "could not announce the client listeners to the followers");
    }
    tokio::select! {
        _ = node.leadership_lost() => {
            tracing::warn!(node = cluster.node_id, "no longer the cluster's leader: dropping every client and starting again as a follower");
            Ok(Outcome::Demoted)
        }
        why = node.raft_stopped() => {
            running.shutdown().await;
            Err(StartError::RaftStopped { node: cluster.node_id, reason: why })
        }
        _ = &mut stop => {
            running.shutdown().await;
            node.shutdown().await;
            Ok(Outcome::Stopped)
        }
    }
}

/// TLS for the peer port from `[cluster.tls]`: this node's certificate both ways, and only
/// peers whose certificate the CA signed are let in (a client certificate is required).
fn peer_tls(tls: &PeerTlsConfig) -> Result<PeerTls, StartError> {
    let bad = |(key, reason): (&str, String)| StartError::PeerTls {
        key: format!("cluster.tls.{key}"),
        reason,
    };
    let server = TlsConfig {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        client_ca: Some(tls.ca.clone()),
        client_auth: Some(ClientAuth::Required),
    };
    let acceptor = transport::tls::acceptor(&server)
        .map_err(|(key, reason)| bad((if key == "client-ca" { "ca" } else { key }, reason)))?;
    let connector = transport::tls::connector(&tls.cert, &tls.key, &tls.ca).map_err(bad)?;
    Ok(PeerTls {
        acceptor,
        connector,
    })
}

/// A large message's body lives in a file of its own, outside the journal, so it would not
/// travel through the log and would be lost with the leader. A cluster's leader therefore
/// takes bodies up to `large-message-threshold` only (each acceptor's `max-body` lowered to
/// it): a larger one is refused with an ERROR naming the limit, never receipted and lost.
fn bodies_in_the_log(mut config: Config) -> Config {
    let threshold = config.broker.large_message_threshold;
    for a in &mut config.acceptors {
        if a.limits.max_body > threshold {
            tracing::info!(acceptor = %a.name, max_body = threshold, "a cluster replicates bodies up to broker.large-message-threshold: max-body lowered to it");
            a.limits.max_body = threshold;
        }
    }
    config
}

/// A follower's listeners: each acceptor relaying to the leader, and the small admin one.
async fn follow(
    config: &Config,
    view: LeaderView,
    control: Arc<dyn ClusterControl>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut tasks = Vec::new();
    for acceptor in &config.acceptors {
        let listener = bind(&acceptor.name, acceptor.bind).await?;
        let max = acceptor
            .limits
            .max_connections
            .unwrap_or(config.limits.max_connections);
        tasks.push(tokio::spawn(relay::serve(
            listener,
            acceptor.name.clone(),
            view.clone(),
            max,
        )));
    }
    if config.admin.enabled {
        let listener = bind("admin", config.admin.bind).await?;
        let state = ClusterAdmin::new(
            Arc::new(Security::new(config)),
            config.admin.clone(),
            admin_anonymous(config),
            security_off(config),
            Some(control),
            false,
        );
        tasks.push(admin::spawn_follower(listener, Arc::new(state)));
    }
    Ok(tasks)
}

async fn bind(name: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            name: name.into(),
            addr,
            source,
        })
}

/// Stops the follower's tasks and waits until each has let go of its socket.
async fn stop_all(tasks: Vec<JoinHandle<()>>) {
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The leader this node knows, as a watch of its own (raft's metrics change far more often).
fn leader_watch(node: &ClusterNode) -> (watch::Receiver<Option<NodeId>>, JoinHandle<()>) {
    let mut metrics = node.metrics();
    let (tx, rx) = watch::channel(metrics.borrow().current_leader);
    let task = tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let now = metrics.borrow_and_update().current_leader;
            tx.send_if_modified(|l| {
                let changed = *l != now;
                *l = now;
                changed
            });
        }
    });
    (rx, task)
}

/// The host followers reach this node at: its `[cluster] listen` address, unless that is a
/// wildcard, then the host of its own entry in `peers`.
fn own_host(cluster: &ClusterConfig) -> String {
    if !cluster.listen.ip().is_unspecified() {
        return cluster.listen.ip().to_string();
    }
    cluster
        .peers
        .iter()
        .find(|p| p.id == cluster.node_id)
        .and_then(|p| p.address.rsplit_once(':').map(|(h, _)| h.to_string()))
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Where a follower reaches an acceptor bound at `addr`: a wildcard bind is reached at the
/// node's own host.
fn reachable(addr: SocketAddr, host: &str) -> String {
    if addr.ip().is_unspecified() {
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", addr.port())
        } else {
            format!("{host}:{}", addr.port())
        }
    } else {
        addr.to_string()
    }
}

/// The admin API's handle on the node.
struct NodeControl {
    control: Control,
    clients: watch::Receiver<Option<ClientAddresses>>,
}

impl ClusterControl for NodeControl {
    fn leadership(&self) -> (u64, Option<u64>) {
        let s = self.control.status();
        (s.node, s.leader)
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.control.status()).unwrap_or(serde_json::Value::Null)
    }

    fn leader_listeners(&self) -> Option<Vec<(String, String)>> {
        let leader = self.control.status().leader?;
        let clients = self.clients.borrow();
        clients
            .as_ref()
            .filter(|c| c.node == leader)
            .map(|c| c.acceptors.clone())
    }

    fn add_member(
        &self,
        id: u64,
        address: String,
    ) -> admin::BoxFuture<'_, Result<serde_json::Value, MemberRefusal>> {
        Box::pin(async move {
            let status = self
                .control
                .add_member(id, address)
                .await
                .map_err(refusal)?;
            Ok(serde_json::to_value(status).unwrap_or(serde_json::Value::Null))
        })
    }

    fn remove_member(
        &self,
        id: u64,
    ) -> admin::BoxFuture<'_, Result<serde_json::Value, MemberRefusal>> {
        Box::pin(async move {
            let status = self.control.remove_member(id).await.map_err(refusal)?;
            Ok(serde_json::to_value(status).unwrap_or(serde_json::Value::Null))
        })
    }
}

fn refusal(e: MembershipError) -> MemberRefusal {
    match e {
        MembershipError::NotLeader { leader } => MemberRefusal::NotLeader(leader),
        MembershipError::Refused(m) => MemberRefusal::Refused(m),
    }
}
