//! The `[cluster]` section: this broker as one node of a replicated cluster
//! (docs/cluster.md). Absent, the broker runs alone.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::ValidationError;

/// `[cluster]`: who this node is and who its peers are.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id: unique in the cluster, never reused for another machine.
    pub node_id: u64,
    /// Where this node listens for its peers (raft traffic).
    pub listen: SocketAddr,
    /// Every member, this node included, as at the cluster's first start. The lowest id forms
    /// the cluster when its log is empty and every other member says it is new too.
    pub peers: Vec<PeerConfig>,
    /// How often the leader heartbeats, in milliseconds.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// A follower that hears nothing for a random time between this and
    /// `election-timeout-max-ms` stands for election. Above openraft's defaults (150-300),
    /// so that nodes sharing a busy machine do not hold needless elections.
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    /// See `election-timeout-min-ms`.
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// TLS on the peer port, both ways; unset: plain TCP (keep the port on a private network).
    #[serde(default)]
    pub tls: Option<PeerTlsConfig>,
}

/// `[cluster.tls]`: every node presents `cert` to its peers, as server and as client, and
/// accepts only peers whose certificate `ca` signed (mutual TLS). A peer's certificate must
/// name the host its `peers` address gives (a DNS name or an IP address).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PeerTlsConfig {
    /// PEM file with this node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with its private key.
    pub key: PathBuf,
    /// PEM file of the CA certificates that sign the nodes' certificates.
    pub ca: PathBuf,
}

/// One `[[cluster.peers]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PeerConfig {
    /// The node's id.
    pub id: u64,
    /// Where its peers reach it (`host:port` of its `listen`).
    pub address: String,
}

fn default_heartbeat() -> u64 {
    100
}
fn default_election_min() -> u64 {
    500
}
fn default_election_max() -> u64 {
    1000
}

/// The rules serde cannot express.
pub(super) fn check_cluster(
    c: &ClusterConfig,
    journal_on: bool,
    errors: &mut Vec<ValidationError>,
) {
    let mut ids = BTreeSet::new();
    for (i, p) in c.peers.iter().enumerate() {
        if !ids.insert(p.id) {
            errors.push(ValidationError::new(
                format!("cluster.peers[{i}].id"),
                format!("node id {} is listed twice", p.id),
            ));
        }
        if p.address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            errors.push(ValidationError::new(
                format!("cluster.peers[{i}].address"),
                format!("\"{}\" is not host:port", p.address),
            ));
        }
    }
    if !ids.contains(&c.node_id) {
        errors.push(ValidationError::new(
            "cluster.node-id",
            format!(
                "node {} is not among cluster.peers; list every member, this one included",
                c.node_id
            ),
        ));
    }
    if !journal_on {
        errors.push(ValidationError::new(
            "journal.enabled",
            "a cluster replicates the journal: it cannot be off on a cluster node",
        ));
    }
    if c.heartbeat_ms == 0 || c.heartbeat_ms >= c.election_timeout_min_ms {
        errors.push(ValidationError::new(
            "cluster.heartbeat-ms",
            format!(
                "{} must be above 0 and below election-timeout-min-ms ({})",
                c.heartbeat_ms, c.election_timeout_min_ms
            ),
        ));
    }
    if c.election_timeout_max_ms <= c.election_timeout_min_ms {
        errors.push(ValidationError::new(
            "cluster.election-timeout-max-ms",
            format!(
                "{} must be above election-timeout-min-ms ({})",
                c.election_timeout_max_ms, c.election_timeout_min_ms
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(text: &str) -> String {
        match crate::config::parse(text, Path::new("node.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = r#"
[cluster]
node-id = 2
listen = "127.0.0.1:7002"
peers = [{ id = 1, address = "127.0.0.1:7001" }, { id = 2, address = "127.0.0.1:7002" }, { id = 3, address = "h3:7003" }]
"#;

    #[test]
    fn a_cluster_section_parses_with_its_defaults() {
        let c = crate::config::parse(GOOD, Path::new("node.toml")).expect("valid");
        let cl = c.cluster.expect("cluster");
        assert_eq!((cl.node_id, cl.peers.len(), cl.heartbeat_ms), (2, 3, 100));
        assert_eq!(
            (cl.election_timeout_min_ms, cl.election_timeout_max_ms),
            (500, 1000)
        );
    }

    #[test]
    fn bad_cluster_settings_name_the_file_the_key_and_the_reason() {
        let e = errors(&GOOD.replace("node-id = 2", "node-id = 9"));
        assert!(
            e.contains("node.toml")
                && e.contains("cluster.node-id")
                && e.contains("not among cluster.peers"),
            "{e}"
        );
        let e = errors(&GOOD.replace("id = 3,", "id = 1,"));
        assert!(
            e.contains("cluster.peers[2].id") && e.contains("listed twice"),
            "{e}"
        );
        let e = errors(&GOOD.replace("h3:7003", "h3"));
        assert!(
            e.contains("cluster.peers[2].address") && e.contains("not host:port"),
            "{e}"
        );
        let e = errors(&format!("{GOOD}heartbeat-ms = 800\n"));
        assert!(e.contains("cluster.heartbeat-ms"), "{e}");
        let e = errors(&format!("{GOOD}\n[journal]\nenabled = false\n"));
        assert!(
            e.contains("journal.enabled") && e.contains("cluster"),
            "{e}"
        );
        let e = errors(&GOOD.replace("listen =", "lisen ="));
        assert!(e.contains("lisen"), "{e}");
    }
}
