//! Replication of the journal across nodes, on openraft.
//!
//! One raft group for the whole broker, because the address model needs atomic fan-out: a
//! SEND to a multicast address stores the message and one ref per durable queue in one
//! batch, and a transaction commits its sends and acks in one batch; per-queue groups would
//! need two-phase commit between them. One raft entry carries one such batch
//! ([`types::Batch`]) and every node applies it to its own [`crate::journal::Journal`], so a
//! follower holds the same journal file the leader's broker writes and can take over by
//! opening it as a single broker would after a restart.
//!
//! A write is committed when a majority has synced it to its raft log ([`log_store`]); only
//! then is it applied, and only then may the broker answer the client. The state machine
//! records with every batch which entry it came from, atomically with the batch
//! ([`state_machine`]), so a crash re-applies exactly what is missing. Snapshots are copies
//! of the journal file; a follower that fell behind the purged log, or a new node, gets one.
//!
//! Layering: this module sits between the broker core and the journal. It knows journal ops
//! and nothing of the broker or STOMP.
//!
//! The leader's broker writes through [`proposer::Proposer`], a
//! [`crate::journal::Replicator`]: its journal handle sends writes here instead of to the
//! writer, so the broker core is the same on one node or three. `server::cluster` runs a
//! node and starts the broker while it leads (`docs/cluster.md`).

pub mod control;
pub mod log_store;
pub mod network;
pub mod node;
pub mod proposer;
pub mod snapshot_file;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod tests;

pub use control::{Control, Member, MembershipError, Status};
pub use network::PeerTls;
pub use node::{ClusterNode, MAX_PAYLOAD_ENTRIES, NodeOptions, Timing, WriteError};
pub use state_machine::ClientAddresses;
pub use types::{Batch, NodeId, TypeConfig};
