//! The replicated journal: openraft's own storage suite on our log store and state machine,
//! and three nodes on loopback that must keep every committed batch through the loss of
//! the leader and the wiping of a follower.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{StorageError, TypeConfig};
use super::{ClusterNode, NodeId, NodeOptions, Timing, WriteError};
use crate::journal::{
    AddressRecord, Journal, JournalOp, JournalOptions, QueueRecord, RoutingKind, StoredMessage,
};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(dir.path()).expect("log store");
        let (sm, _) = StateMachine::open(
            JournalOptions::new(dir.path().join("journal")),
            &dir.path().join("snapshots"),
        )
        .expect("state machine");
        Ok((dir, log, sm))
    }
}

/// openraft's conformance suite for storage: votes, appends, truncation, purging, the
/// applied state and membership, across reopen-free calls.
#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

const QUEUE: &str = "orders";

fn setup_ops() -> Vec<JournalOp> {
    vec![
        JournalOp::PutAddress(AddressRecord {
            name: QUEUE.into(),
            anycast: true,
            multicast: false,
            auto_created: false,
        }),
        JournalOp::PutQueue(QueueRecord {
            name: QUEUE.into(),
            address: QUEUE.into(),
            routing_type: RoutingKind::Anycast,
            filter: None,
            auto_created: false,
            durable_subscription: None,
            incarnation: 1,
            owner: None,
        }),
    ]
}

fn send_ops(id: u64) -> Vec<JournalOp> {
    vec![
        JournalOp::PutMessage(Arc::new(StoredMessage {
            id,
            address: QUEUE.into(),
            destination: format!("/queue/{QUEUE}"),
            properties: vec![("n".into(), id.to_string())],
            body: bytes::Bytes::from(format!("message {id}")),
            priority: 4,
            expires: 0,
            timestamp: 1,
            deliver_at: 0,
            large: None,
        })),
        JournalOp::PutRef {
            queue: Arc::from(QUEUE),
            incarnation: 1,
            message_id: id,
        },
    ]
}

fn ack_ops(id: u64) -> Vec<JournalOp> {
    vec![JournalOp::DeleteRef {
        queue: Arc::from(QUEUE),
        incarnation: 1,
        message_id: id,
    }]
}

/// Binds `addr` (port 0 for a fresh one) with SO_REUSEADDR, so a restarted node can take
/// its old port back while connections to the old one linger in TIME_WAIT.
fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.set_reuseaddr(true).expect("reuseaddr");
    s.bind(addr).expect("bind");
    s.listen(64).expect("listen")
}

struct Cluster {
    root: tempfile::TempDir,
    addrs: BTreeMap<NodeId, SocketAddr>,
    nodes: BTreeMap<NodeId, ClusterNode>,
    timing: Timing,
}

impl Cluster {
    async fn start(timing: Timing) -> Cluster {
        let root = tempfile::tempdir().expect("temp dir");
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for id in 1..=3u64 {
            let l = bind("127.0.0.1:0".parse().expect("addr"));
            addrs.insert(id, l.local_addr().expect("local addr"));
            listeners.insert(id, l);
        }
        let mut c = Cluster {
            root,
            addrs,
            nodes: BTreeMap::new(),
            timing,
        };
        for (id, l) in listeners {
            c.start_node(id, l).await;
        }
        c
    }

    fn dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    async fn start_node(&mut self, id: NodeId, listener: tokio::net::TcpListener) {
        let opts = NodeOptions {
            id,
            dir: self.dir(id),
            members: self
                .addrs
                .iter()
                .map(|(i, a)| (*i, a.to_string()))
                .collect(),
            journal: JournalOptions::new(self.dir(id).join("journal")),
            timing: self.timing,
            tls: None,
        };
        let (node, _) = ClusterNode::start(opts, listener)
            .await
            .expect("node starts");
        self.nodes.insert(id, node);
    }

    async fn restart(&mut self, id: NodeId) {
        let l = bind(self.addrs[&id]);
        self.start_node(id, l).await;
    }

    async fn stop(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.remove(&id) {
            n.shutdown().await;
        }
    }

    /// The leader every running node agrees on, within 20 s.
    async fn leader(&self) -> NodeId {
        for _ in 0..400 {
            let seen: Vec<Option<NodeId>> = self
                .nodes
                .values()
                .map(|n| n.raft().metrics().borrow().current_leader)
                .collect();
            if let Some(Some(l)) = seen.first()
                && seen.iter().all(|s| *s == Some(*l))
                && self.nodes.contains_key(l)
            {
                return *l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader agreed on within 20 s");
    }

    async fn write(&self, ops: Vec<JournalOp>) {
        let l = self.leader().await;
        self.nodes[&l].write(ops).await.expect("leader commits");
    }

    /// Waits until node `id` has applied everything the leader has.
    async fn caught_up(&self, id: NodeId) {
        let l = self.leader().await;
        let want = self.nodes[&l]
            .raft()
            .metrics()
            .borrow()
            .last_applied
            .map(|x| x.index);
        self.nodes[&id]
            .raft()
            .wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(want, "follower catches up")
            .await
            .expect("caught up");
    }

    async fn stop_all(mut self) -> tempfile::TempDir {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
        self.root
    }
}

/// The message ids on the queue in the journal at `dir`, opened as a single broker would.
fn queued(dir: &Path) -> Vec<u64> {
    let (j, rec) = Journal::open(JournalOptions::new(dir)).expect("journal opens");
    j.shutdown();
    rec.messages
        .iter()
        .filter(|q| q.queue == QUEUE)
        .flat_map(|q| q.refs.iter().map(|r| r.message.id))
        .collect()
}

fn quick() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(300), Duration::from_millis(600)),
        snapshot_every: 10_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_batch_is_in_every_nodes_journal_and_followers_refuse_writes() {
    let c = Cluster::start(quick()).await;
    c.write(setup_ops()).await;
    for id in 1..=5 {
        c.write(send_ops(id)).await;
    }
    c.write(ack_ops(2)).await;
    let leader = c.leader().await;
    for id in 1..=3 {
        c.caught_up(id).await;
        if id != leader {
            match c.nodes[&id].write(send_ops(99)).await {
                Err(WriteError::NotLeader {
                    leader: Some((l, _)),
                }) => assert_eq!(l, leader),
                other => panic!("a follower took a write: {other:?}"),
            }
        }
    }
    let root = c.stop_all().await;
    for id in 1..=3 {
        let got = queued(&root.path().join(format!("node-{id}/journal")));
        assert_eq!(got, vec![1, 3, 4, 5], "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_keeps_committed_batches_through_the_loss_of_its_leader() {
    let mut c = Cluster::start(quick()).await;
    c.write(setup_ops()).await;
    c.write(send_ops(1)).await;
    let first = c.leader().await;
    c.stop(first).await;
    // The two left elect one of themselves and go on committing.
    let second = c.leader().await;
    assert_ne!(second, first);
    c.write(send_ops(2)).await;
    c.write(ack_ops(1)).await;
    // The old leader comes back with its data and catches up.
    c.restart(first).await;
    c.caught_up(first).await;
    let root = c.stop_all().await;
    for id in 1..=3 {
        let got = queued(&root.path().join(format!("node-{id}/journal")));
        assert_eq!(got, vec![2], "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_follower_rejoins_from_a_snapshot() {
    let mut c = Cluster::start(quick()).await;
    c.write(setup_ops()).await;
    for id in 1..=20 {
        c.write(send_ops(id)).await;
    }
    let leader = c.leader().await;
    let wiped = (1..=3).find(|i| *i != leader).expect("a follower");
    c.stop(wiped).await;
    std::fs::remove_dir_all(c.dir(wiped)).expect("wipe");
    for id in 21..=30 {
        c.write(send_ops(id)).await;
    }
    c.write(ack_ops(5)).await;
    // Snapshot on the leader and purge its log, so the wiped node cannot be sent entries
    // from the start and must take the snapshot.
    let raft = c.nodes[&leader].raft().clone();
    // Read the metrics into a local first: a borrow of the watch held across an await
    // would block raft's next metrics update, and with it the node.
    let last = raft.metrics().borrow().last_applied.expect("applied");
    raft.trigger().snapshot().await.expect("snapshot");
    raft.wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= last.index),
            "snapshot built",
        )
        .await
        .expect("snapshot built");
    raft.trigger().purge_log(last.index).await.expect("purge");
    raft.wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= last.index),
            "log purged",
        )
        .await
        .expect("log purged");
    c.restart(wiped).await;
    c.caught_up(wiped).await;
    c.write(send_ops(31)).await;
    c.caught_up(wiped).await;
    let root = c.stop_all().await;
    let want: Vec<u64> = (1..=31).filter(|i| *i != 5).collect();
    for id in 1..=3 {
        let got = queued(&root.path().join(format!("node-{id}/journal")));
        assert_eq!(got, want, "node {id}");
    }
    let snaps = root
        .path()
        .join(format!("node-{wiped}/snapshots/current.redb"));
    assert!(
        snaps.exists(),
        "the wiped node kept the snapshot it installed"
    );
}

/// The applied marker commits with each batch, so a reopened state machine knows the last
/// entry its journal holds and raft re-applies only what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_state_machine_knows_its_last_applied_entry() {
    use openraft::storage::RaftStateMachine;
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        StateMachine::open(
            JournalOptions::new(dir.path().join("journal")),
            &dir.path().join("snapshots"),
        )
        .expect("state machine")
    };
    let entry = |index: u64, ops: Vec<JournalOp>| openraft::Entry::<TypeConfig> {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(super::Batch { ops }),
    };
    {
        let (mut sm, _) = open();
        sm.apply([entry(1, setup_ops()), entry(2, send_ops(7))])
            .await
            .expect("apply");
        sm.journal().get().shutdown();
    }
    let (mut sm, rec) = open();
    let (applied, _) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied.map(|l| l.index), Some(2));
    assert_eq!(rec.messages[0].refs[0].message.id, 7);
    sm.journal().get().shutdown();
}

/// The lowest-id node with a wiped data directory looks like a node at the cluster's first
/// start: it must not form the cluster again. Wiped together with another follower while
/// the node holding the history is away, it would win an election with that follower's
/// vote and commit into a second history, which the returning node then erases (found by
/// the 100-round failover campaign, where both raft cores stopped). It asks its peers
/// first: with one of them silent it waits, and once it hears the leader has a log it is
/// caught up like any follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_lowest_id_node_rejoins_and_does_not_form_a_second_cluster() {
    use openraft::ServerState;
    let mut c = Cluster::start(quick()).await;
    c.write(setup_ops()).await;
    for id in 1..=10 {
        c.write(send_ops(id)).await;
    }
    c.write(ack_ops(3)).await;
    if c.leader().await == 1 {
        c.stop(1).await;
    }
    let keeper = c.leader().await;
    let other = if keeper == 2 { 3 } else { 2 };
    let term = c.nodes[&keeper].raft().metrics().borrow().current_term;
    for id in [1, other, keeper] {
        c.stop(id).await;
    }
    std::fs::remove_dir_all(c.dir(1)).expect("wipe node 1");
    std::fs::remove_dir_all(c.dir(other)).expect("wipe the other follower");
    c.restart(1).await;
    c.restart(other).await;
    // Two empty nodes are a majority of the configured three, but not the cluster.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for id in [1, other] {
            let m = c.nodes[&id].raft().metrics().borrow().clone();
            assert!(
                m.state != ServerState::Leader && m.current_leader.is_none(),
                "wiped node {id} found a leader without the node holding the history: {m:?}"
            );
        }
    }
    c.restart(keeper).await;
    c.caught_up(1).await;
    c.caught_up(other).await;
    let m = c.nodes[&1].raft().metrics().borrow().clone();
    assert!(
        m.current_term >= term,
        "node 1 is in the cluster's term, not a new one: {m:?}"
    );
    c.write(send_ops(11)).await;
    c.caught_up(1).await;
    c.caught_up(other).await;
    let root = c.stop_all().await;
    let want: Vec<u64> = (1..=11).filter(|i| *i != 3).collect();
    for id in 1..=3 {
        let got = queued(&root.path().join(format!("node-{id}/journal")));
        assert_eq!(got, want, "node {id}");
    }
}

/// A node whose raft has ended says so (the server then exits, for its supervisor to
/// restart it) instead of waiting forever to lead or follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_raft_ended_reports_it() {
    let c = Cluster::start(quick()).await;
    let node = &c.nodes[&2];
    let pending = tokio::time::timeout(Duration::from_millis(300), node.raft_stopped()).await;
    assert!(pending.is_err(), "raft runs: {pending:?}");
    node.raft().shutdown().await.expect("raft shuts down");
    let why = tokio::time::timeout(Duration::from_secs(5), node.raft_stopped())
        .await
        .expect("reported within 5 s");
    assert!(!why.is_empty());
    c.stop_all().await;
}
