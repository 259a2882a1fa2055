//! The raft type configuration: what one entry carries and how nodes are named.

use serde::{Deserialize, Serialize};

use crate::journal::JournalOp;

/// A node's id in the cluster, as in `[cluster] node-id`.
pub type NodeId = u64;

/// A cluster member as raft stores it in the membership: its id and the address of its
/// cluster listener.
pub type Node = openraft::BasicNode;

/// What one raft entry carries: one group-commit batch of journal ops, applied on every node
/// in one journal transaction. One entry per batch, not per op, because openraft 0.9's leader
/// waits for each append's fsync: batching is what makes replication affordable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The ops, in submission order.
    pub ops: Vec<JournalOp>,
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch of {} ops", self.ops.len())
    }
}

openraft::declare_raft_types!(
    /// WrenMQ's raft: entries are [`Batch`]es, snapshots are copies of a journal file.
    pub TypeConfig:
        D = Batch,
        R = (),
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = super::snapshot_file::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The raft handle of one node.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id of this configuration.
pub type LogId = openraft::LogId<NodeId>;
/// A storage error of this configuration.
pub type StorageError = openraft::StorageError<NodeId>;
/// Membership as the state machine stores it.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
