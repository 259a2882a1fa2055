//! One cluster node: its raft log, its journal as the state machine, the transport, and the
//! raft that ties them together.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::control::Control;
use super::log_store::LogStore;
use super::network::{self, Network, PeerTls};
use super::proposer::Proposer;
use super::state_machine::{ClientAddresses, SharedJournal, StateMachine};
use super::types::{Batch, Node, NodeId, Raft};
use crate::journal::{Journal, JournalOp, JournalOptions, LoadLimit, Recovered};

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// The node's data directory: `raft-log.redb`, `journal/` and `snapshots/` inside it.
    pub dir: PathBuf,
    /// Every member at first start, this one included: id to cluster address (`host:port`).
    /// The lowest id forms the cluster when its log and every other member's are empty;
    /// the others wait to be told.
    pub members: BTreeMap<NodeId, String>,
    /// How the journal is opened (its `dir` is replaced by `dir/journal`).
    pub journal: JournalOptions,
    /// Raft's timing.
    pub timing: Timing,
    /// TLS on the peer port (`[cluster.tls]`); `None`: plain TCP.
    pub tls: Option<PeerTls>,
}

/// Raft's clocks. The defaults suit nodes sharing a small machine: openraft's own (50 ms
/// heartbeats, 150-300 ms elections) make a busy 2-core box hold needless elections.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often the leader heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears nothing for a random time in this range stands for election.
    pub election: (Duration, Duration),
    /// A snapshot is built after this many entries since the last one.
    pub snapshot_every: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_millis(100),
            election: (Duration::from_millis(500), Duration::from_millis(1000)),
            snapshot_every: 10_000,
        }
    }
}

/// The most entries one append call carries to a follower, so a frame stays well under
/// [`network::MAX_FRAME`].
pub const MAX_PAYLOAD_ENTRIES: u64 = 64;

/// Why a write was not committed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This node is not the leader; `leader` is who is, if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader's id and address, if this node knows it.
        leader: Option<(NodeId, String)>,
    },
    /// Raft stopped (a storage failure, or shutdown).
    #[error("raft stopped: {0}")]
    Stopped(String),
}

/// A running node.
pub struct ClusterNode {
    id: NodeId,
    timing: Timing,
    raft: Raft,
    journal: SharedJournal,
    clients: watch::Receiver<Option<ClientAddresses>>,
    server: JoinHandle<()>,
    /// The lowest-id node's wait to form the cluster, while it runs.
    forming: Option<JoinHandle<()>>,
}

/// How often the forming node asks its peers again while one of them has not answered.
const FORM_PROBE_EVERY: Duration = Duration::from_millis(250);

/// Forms the cluster from `members`, as the lowest-id node with an empty log does, but only
/// once every other member has answered that it holds no history either. An empty log on
/// the lowest id is also what a wiped data directory looks like: forming then would start a
/// second history that could win an election (the other wiped or lagging nodes vote for it)
/// and truncate what the first one committed. So the node forms only when the whole
/// cluster is new, and stops asking, to be caught up by the leader like any follower, as
/// soon as one peer says it has a log. A member that never answers holds up the first start
/// alone: a cluster cannot form without knowing that member is new.
async fn form(
    raft: Raft,
    me: NodeId,
    members: BTreeMap<NodeId, String>,
    tls: Option<TlsConnector>,
) {
    let peers: Vec<(NodeId, String)> = members
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, a)| (*id, a.clone()))
        .collect();
    loop {
        if network::has_log(&raft) {
            return; // a leader reached this node first
        }
        let answers = network::peers_logs(&peers, tls.as_ref(), FORM_PROBE_EVERY * 4).await;
        if answers.contains(&Some(true)) {
            tracing::info!(
                node = me,
                "empty log, the cluster exists: waiting for its leader"
            );
            return;
        }
        if answers.iter().all(|a| *a == Some(false)) {
            break;
        }
        tokio::time::sleep(FORM_PROBE_EVERY).await;
    }
    let nodes: BTreeMap<NodeId, Node> = members
        .into_iter()
        .map(|(id, addr)| (id, Node { addr }))
        .collect();
    match raft.initialize(nodes).await {
        Ok(()) => tracing::info!(node = me, "formed the cluster"),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(e) => tracing::error!(node = me, error = %e, "cannot form the cluster"),
    }
}

impl ClusterNode {
    /// Opens the node's storage, starts raft and serves peers on `listener`. Returns the
    /// journal's recovered contents as of start (the broker's, once this node leads).
    pub async fn start(
        opts: NodeOptions,
        listener: TcpListener,
    ) -> Result<(ClusterNode, Recovered), String> {
        let log = LogStore::open(&opts.dir)?;
        let mut jopts = opts.journal.clone();
        jopts.dir = opts.dir.join("journal");
        let snapshots = opts.dir.join("snapshots");
        let (sm, recovered) =
            tokio::task::spawn_blocking(move || StateMachine::open(jopts, &snapshots))
                .await
                .map_err(|e| e.to_string())??;
        let journal = sm.journal();
        let clients = sm.clients();
        let t = opts.timing;
        let config = openraft::Config {
            cluster_name: "wrenmq".into(),
            heartbeat_interval: t.heartbeat.as_millis() as u64,
            election_timeout_min: t.election.0.as_millis() as u64,
            election_timeout_max: t.election.1.as_millis() as u64,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_every),
            install_snapshot_timeout: 5_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("cluster timing: {e}"))?;
        let raft = Raft::new(
            opts.id,
            Arc::new(config),
            Network::new(opts.tls.as_ref().map(|t| t.connector.clone())),
            log,
            sm,
        )
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
        let server = tokio::spawn(network::serve(
            listener,
            raft.clone(),
            opts.tls.as_ref().map(|t| t.acceptor.clone()),
        ));
        let forming = (opts.members.keys().next() == Some(&opts.id) && !network::has_log(&raft))
            .then(|| {
                tokio::spawn(form(
                    raft.clone(),
                    opts.id,
                    opts.members.clone(),
                    opts.tls.map(|t| t.connector),
                ))
            });
        let node = ClusterNode {
            id: opts.id,
            timing: t,
            raft,
            journal,
            clients,
            server,
            forming,
        };
        Ok((node, recovered))
    }

    /// Replicates `ops` as one entry and returns once it is committed (on a majority's disks)
    /// and applied to this node's journal. Only the leader accepts writes.
    pub async fn write(&self, ops: Vec<JournalOp>) -> Result<(), WriteError> {
        match self.raft.client_write(Batch { ops }).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(WriteError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                })
            }
            Err(e) => Err(WriteError::Stopped(e.to_string())),
        }
    }

    /// Whether a majority confirms, within the longest election timeout, that this node
    /// still leads. A node restarted with its own committed vote resumes leading at once, in
    /// its old term, without asking anyone: a leader that stepped down because it was cut off
    /// would otherwise come back as leader of the same minority on every restart.
    pub async fn confirm_lead(&self) -> bool {
        matches!(
            tokio::time::timeout(self.timing.election.1, self.raft.ensure_linearizable()).await,
            Ok(Ok(_))
        )
    }

    /// Resolves once this node leads and has applied every entry committed before it took
    /// over (the blank entry raft appends at the start of a term is applied), so its journal
    /// holds everything any earlier leader acknowledged. Never resolves if raft stops.
    pub async fn wait_leadership(&self) {
        let mut rx = self.raft.metrics();
        loop {
            let ready = {
                let m = rx.borrow_and_update();
                m.state == ServerState::Leader
                    && m.current_leader == Some(self.id)
                    && m.last_applied.map(|l| l.leader_id.term) == Some(m.current_term)
            };
            if ready {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Resolves once this node no longer leads, or raft stopped, or it could not confirm
    /// its lead with a majority within the longest election timeout: a leader cut off in a
    /// minority knows no newer leader and would otherwise go on serving (delivering from
    /// memory) while the majority elects another. Confirming costs one heartbeat round
    /// every half election timeout.
    pub async fn leadership_lost(&self) {
        let mut rx = self.raft.metrics();
        let state_changed = async {
            loop {
                if rx.borrow_and_update().state != ServerState::Leader {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let longest = self.timing.election.1;
        let lease_lapsed = async {
            loop {
                tokio::time::sleep(longest / 2).await;
                match tokio::time::timeout(longest, self.raft.ensure_linearizable()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(node = self.id, error = %e, "cannot confirm the lead");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(
                            node = self.id,
                            "no majority confirmed the lead within {longest:?}: stepping down"
                        );
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = state_changed => {}
            _ = lease_lapsed => {}
        }
    }

    /// Resolves with the reason once raft has stopped for good (a storage failure or a
    /// broken invariant inside openraft): the node can then neither lead nor follow, and
    /// the process should end so that its supervisor starts it afresh.
    pub async fn raft_stopped(&self) -> String {
        let mut rx = self.raft.metrics();
        loop {
            if let Err(e) = &rx.borrow_and_update().running_state {
                return e.to_string();
            }
            if rx.changed().await.is_err() {
                return "raft's core ended".to_string();
            }
        }
    }

    /// The journal the broker runs on while this node leads: its writes go through raft,
    /// with what the node's journal holds now to start from. Call after
    /// [`ClusterNode::wait_leadership`].
    pub async fn broker_journal(&self, limit: LoadLimit) -> Result<(Journal, Recovered), String> {
        let local = self.journal.get();
        let recovered = local.recover_now(limit).await.map_err(|e| e.to_string())?;
        let proposer = Proposer::start(self.raft.clone(), local.clone());
        Ok((local.replicated(proposer), recovered))
    }

    /// Announces, through the log, where this leader serves clients, so followers can
    /// forward clients to it ([`ClusterNode::clients`] on every node).
    pub async fn announce(&self, clients: ClientAddresses) -> Result<(), WriteError> {
        let op = clients
            .op()
            .map_err(|e| WriteError::Stopped(e.to_string()))?;
        self.write(vec![op]).await
    }

    /// The latest leader announcement this node has applied, as it changes. It may name a
    /// node that no longer leads: compare with the leader in [`ClusterNode::control`]'s status.
    pub fn clients(&self) -> watch::Receiver<Option<ClientAddresses>> {
        self.clients.clone()
    }

    /// A handle for status and membership changes, for the admin listener.
    pub fn control(&self) -> Control {
        Control::new(self.raft.clone())
    }

    /// The leader this node knows now, if any.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// A receiver of raft's metrics, to follow leader changes.
    pub fn metrics(&self) -> watch::Receiver<openraft::RaftMetrics<NodeId, Node>> {
        self.raft.metrics()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The raft handle, for metrics and membership changes.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// This node's journal as it stands (a snapshot install replaces the handle).
    pub fn journal(&self) -> Journal {
        self.journal.get()
    }

    /// Stops raft and the peer listener, and closes the journal.
    pub async fn shutdown(self) {
        self.server.abort();
        if let Some(f) = &self.forming {
            f.abort();
        }
        let _ = self.raft.shutdown().await;
        let j = self.journal.get();
        let _ = tokio::task::spawn_blocking(move || j.shutdown()).await;
    }
}
