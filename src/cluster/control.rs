//! What operators see of and do to a running node: its view of the cluster (members, leader,
//! term, commit index, each follower's lag) and membership changes at run time.
//!
//! A cheap clone of the raft handle, so the admin listener can hold one while the node runs.

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::Serialize;

use super::types::{Node, NodeId, Raft};

/// One node's view of the cluster, as `wrenmq cluster status` and `GET /api/v1/cluster` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// This node's id.
    pub node: NodeId,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub state: &'static str,
    /// The raft term this node is in.
    pub term: u64,
    /// The leader this node knows, if any.
    pub leader: Option<NodeId>,
    /// The last index in this node's raft log.
    pub last_log_index: Option<u64>,
    /// The last entry applied to this node's journal.
    pub applied_index: Option<u64>,
    /// The highest index committed (held by a majority): computed from what each voter holds
    /// on the leader; on another node, what it has applied (committed entries are applied in
    /// order, so that is a lower bound).
    pub commit_index: Option<u64>,
    /// On the leader: milliseconds since a majority last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Every member, voters first.
    pub members: Vec<Member>,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// Its cluster address.
    pub address: String,
    /// Whether it votes (a learner only receives the log).
    pub voter: bool,
    /// On the leader: the last index it holds.
    pub matched_index: Option<u64>,
    /// On the leader: how many entries it is behind the leader's log.
    pub lag: Option<u64>,
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader changes membership; `leader` is who is, if known.
    #[error("this node is not the leader (leader: {})", leader.map_or("unknown".to_string(), |l| format!("node {l}")))]
    NotLeader {
        /// The leader's id, if known.
        leader: Option<NodeId>,
    },
    /// The change itself is not allowed (removing the last voter, a change already running, ...).
    #[error("{0}")]
    Refused(String),
}

/// A handle on a node for status and membership.
#[derive(Clone)]
pub struct Control {
    raft: Raft,
}

impl Control {
    pub(super) fn new(raft: Raft) -> Control {
        Control { raft }
    }

    /// This node's view, as of now.
    pub fn status(&self) -> Status {
        // Cloned out at once: holding the borrow would block raft's metrics updates.
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched = |id: &NodeId| -> Option<u64> {
            if *id == m.id {
                return m.last_log_index;
            }
            m.replication
                .as_ref()
                .and_then(|r| r.get(id).cloned())
                .map(|l| l.map_or(0, |l| l.index))
        };
        let leading = m.state == ServerState::Leader;
        let mut members: Vec<Member> = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                address: node.addr.clone(),
                voter: voters.contains(id),
                matched_index: leading.then(|| matched(id)).flatten(),
                lag: leading
                    .then(|| matched(id))
                    .flatten()
                    .map(|h| m.last_log_index.unwrap_or(0).saturating_sub(h)),
            })
            .collect();
        members.sort_by_key(|x| (!x.voter, x.id));
        let commit_index = if leading {
            quorum_index(voters.iter().map(|v| matched(v).unwrap_or(0)).collect())
        } else {
            m.last_applied.map(|l| l.index)
        };
        Status {
            node: m.id,
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            commit_index,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            members,
        }
    }

    /// Adds node `id` at cluster address `address`: first as a learner, waiting until it has
    /// caught up (from the log or a snapshot), then as a voter. Leader only.
    pub async fn add_member(&self, id: NodeId, address: String) -> Result<Status, MembershipError> {
        let learning = self.raft.add_learner(
            id,
            Node {
                addr: address.clone(),
            },
            true,
        );
        match tokio::time::timeout(CATCH_UP, learning).await {
            Ok(added) => {
                added.map_err(refused)?;
            }
            Err(_) => {
                return Err(MembershipError::Refused(format!(
                    "node {id} at {address} did not catch up within {}s, so it stays a learner (it receives the log but does not vote): check that it runs and that this node reaches it, then join it again, or remove it",
                    CATCH_UP.as_secs()
                )));
            }
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(refused)?;
        Ok(self.status())
    }

    /// Removes node `id` from the cluster (voter or learner). Leader only. A leader that
    /// removes itself steps down once the change is committed.
    pub async fn remove_member(&self, id: NodeId) -> Result<Status, MembershipError> {
        let status = self.status();
        let voter = status.members.iter().any(|m| m.id == id && m.voter);
        let change = if voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(refused)?;
        Ok(self.status())
    }
}

/// How long a joining node may take to catch up as a learner before the join gives up
/// (it stays a learner, and a later join picks up where it left off).
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

/// The highest index a majority of voters holds: the median from the top.
fn quorum_index(mut held: Vec<u64>) -> Option<u64> {
    if held.is_empty() {
        return None;
    }
    held.sort_unstable_by(|a, b| b.cmp(a));
    held.get(held.len() / 2).copied()
}

fn refused(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MembershipError::NotLeader {
            leader: f.leader_id,
        },
        other => MembershipError::Refused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::quorum_index;

    #[test]
    fn the_commit_index_is_what_a_majority_holds() {
        assert_eq!(quorum_index(vec![10, 7, 3]), Some(7));
        assert_eq!(quorum_index(vec![10, 3]), Some(3));
        assert_eq!(quorum_index(vec![5]), Some(5));
        assert_eq!(quorum_index(vec![9, 9, 1, 1, 1]), Some(1));
        assert_eq!(quorum_index(vec![9, 9, 9, 1, 1]), Some(9));
        assert_eq!(quorum_index(vec![]), None);
    }
}
