//! A broker configured with `[cluster]`: one node of a replicated cluster.
//!
//! Only the leader serves clients (as an Artemis backup stays passive): a follower keeps its
//! STOMP, WebSocket and admin listeners closed, so a client with a host list (stomp.py) is
//! refused there at once and tries the next host. The node waits until it leads and has
//! applied everything committed before, then starts the broker on the replicated journal
//! with what that journal holds, exactly as a single broker starts after a restart: queues,
//! messages, delivery counts and duplicate-id caches come back, and a message that was
//! delivered but not acked comes back `redelivered`.
//!
//! When the node stops leading, the broker it runs must stop at once: it holds in memory
//! what the new leader now owns. The node then reports [`Outcome::Demoted`], and the binary
//! starts itself again (`exec`), which closes every client connection and starts the node
//! afresh as a follower; simpler and surer than unwinding every connection, queue and timer
//! in place.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use super::{RunningBroker, StartError, journal_options, recovery_load_limit, start_on};
use crate::cluster::{ClusterNode, NodeOptions, Timing};
use crate::config::{ClusterConfig, Config};
use crate::reload::LogLevelSetter;

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
    };
    let (node, _) = ClusterNode::start(opts, listener)
        .await
        .map_err(StartError::Journal)?;
    tracing::info!(node = cluster.node_id, listen = %cluster.listen, "cluster node started; serving clients only while leading");
    tokio::pin!(stop);

    tokio::select! {
        _ = node.wait_leadership() => {}
        _ = &mut stop => {
            node.shutdown().await;
            return Ok(Outcome::Stopped);
        }
    }
    let (journal, recovered) = node
        .broker_journal(recovery_load_limit(&config))
        .await
        .map_err(StartError::Journal)?;
    tracing::info!(
        node = cluster.node_id,
        "leading: starting the broker on the replicated journal"
    );
    let running: RunningBroker = start_on(config, log_level, Some((journal, recovered))).await?;
    for (name, protocol, addr) in &running.local_addrs {
        tracing::info!(acceptor = %name, ?protocol, %addr, "WrenMQ ready (cluster leader)");
    }
    tokio::select! {
        _ = node.leadership_lost() => {
            tracing::warn!(node = cluster.node_id, "no longer the cluster's leader: dropping every client and starting again as a follower");
            Ok(Outcome::Demoted)
        }
        _ = &mut stop => {
            running.shutdown().await;
            node.shutdown().await;
            Ok(Outcome::Stopped)
        }
    }
}
