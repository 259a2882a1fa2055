//! What the admin listener shows of, and asks of, a cluster node: the trait the node
//! implements (`server::cluster`), and the state the cluster routes run on. The routes work
//! on the leader's full admin listener and on a follower's small one alike, so they need
//! only this: no broker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use super::auth::{Cache, Gate};
use crate::config::AdminConfig;
use crate::security::Security;

/// A boxed future, as the trait's async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the API asks of a cluster node (implemented in `server::cluster`).
pub trait ClusterControl: Send + Sync + 'static {
    /// This node's id, and the leader it knows.
    fn leadership(&self) -> (u64, Option<u64>);
    /// This node's view of the cluster (members, leader, term, commit index, lag), as JSON.
    fn status(&self) -> Value;
    /// Where the leader serves clients, acceptor name to address, when it has said so.
    fn leader_listeners(&self) -> Option<Vec<(String, String)>>;
    /// Adds node `id` at cluster address `address`, once it has caught up; leader only.
    fn add_member(&self, id: u64, address: String) -> BoxFuture<'_, Result<Value, MemberRefusal>>;
    /// Removes node `id`; leader only.
    fn remove_member(&self, id: u64) -> BoxFuture<'_, Result<Value, MemberRefusal>>;
}

/// Why a membership change was not made.
#[derive(Debug)]
pub enum MemberRefusal {
    /// This node does not lead; the leader, if known.
    NotLeader(Option<u64>),
    /// The change is not allowed (the last voter, a change under way, ...).
    Refused(String),
}

/// The state of the cluster routes: how to check callers, and the node, if this broker is
/// one (a single broker answers `/cluster/leader` as the only node there is).
pub struct ClusterAdmin {
    security: Arc<Security>,
    config: AdminConfig,
    anonymous_ok: bool,
    open: bool,
    cache: Cache,
    /// The node, when the broker runs with `[cluster]`.
    pub control: Option<Arc<dyn ClusterControl>>,
    /// Whether this listener belongs to a running broker. A follower's does not, and never
    /// says it leads: in the moment between raft electing it and its broker starting, it
    /// serves no one yet.
    pub serving: bool,
}

impl ClusterAdmin {
    /// The routes' state, with the same users, roles and anonymous policy as the listener.
    pub fn new(
        security: Arc<Security>,
        config: AdminConfig,
        anonymous_ok: bool,
        open: bool,
        control: Option<Arc<dyn ClusterControl>>,
        serving: bool,
    ) -> ClusterAdmin {
        ClusterAdmin {
            security,
            config,
            anonymous_ok,
            open,
            cache: Cache::default(),
            control,
            serving,
        }
    }

    /// What authenticating a request here needs.
    pub(crate) fn gate(&self) -> Gate<'_> {
        Gate {
            security: &self.security,
            config: &self.config,
            anonymous_ok: self.anonymous_ok,
            open: self.open,
            cache: &self.cache,
        }
    }
}

impl std::fmt::Debug for ClusterAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAdmin").finish_non_exhaustive()
    }
}
