//! The `[admin]` section: the operations listener (HTTP API, `/metrics`, the console), who may
//! use it, and how rates are sampled.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[admin]`: the admin HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AdminConfig {
    /// Whether the listener runs at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where it listens. Loopback by default, on a port none of the usual peers use (Artemis
    /// and ActiveMQ consoles 8161, RabbitMQ 15672 / 15692, NATS 8222).
    #[serde(default = "default_admin_bind")]
    pub bind: SocketAddr,
    /// STOMP roles whose users may read everything (every GET, `/metrics`).
    #[serde(default = "default_monitor_roles")]
    pub monitor_roles: Vec<String>,
    /// STOMP roles whose users may also operate on messages and close connections (still
    /// subject to the address permissions).
    #[serde(default = "default_operator_roles")]
    pub operator_roles: Vec<String>,
    /// STOMP roles whose users may do everything, reloading the configuration included.
    #[serde(default = "default_admin_roles")]
    pub admin_roles: Vec<String>,
    /// Whether `/metrics` asks for credentials too. Unset: not on a loopback listener (as
    /// RabbitMQ's Prometheus endpoint), yes on any other.
    #[serde(default)]
    pub metrics_auth: Option<bool>,
    /// Static bearer tokens, for scrapers and scripts.
    #[serde(default)]
    pub tokens: Vec<AdminToken>,
    /// Seconds between two samples of every object's counters, from which rates come.
    #[serde(default = "default_sample_interval")]
    pub sample_interval_secs: u64,
    /// Samples kept per object (the rate history: interval × samples).
    #[serde(default = "default_samples")]
    pub samples: usize,
}

/// One `[[admin.tokens]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AdminToken {
    /// Who the token is, for the log and `whoami`.
    pub name: String,
    /// SHA-256 of the token, hex (`printf %s "$TOKEN" | sha256sum`): the file never holds the
    /// secret itself.
    pub sha256: String,
    /// `monitor`, `operator` or `admin`.
    pub role: String,
}

impl AdminConfig {
    /// Whether `/metrics` needs credentials, `metrics-auth` or its default applied.
    pub fn metrics_need_auth(&self) -> bool {
        self.metrics_auth
            .unwrap_or_else(|| !self.bind.ip().is_loopback())
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            bind: default_admin_bind(),
            monitor_roles: default_monitor_roles(),
            operator_roles: default_operator_roles(),
            admin_roles: default_admin_roles(),
            metrics_auth: None,
            tokens: Vec::new(),
            sample_interval_secs: default_sample_interval(),
            samples: default_samples(),
        }
    }
}

/// The admin listener's default address.
pub const DEFAULT_ADMIN_BIND: &str = "127.0.0.1:61680";

fn default_true() -> bool {
    true
}
fn default_admin_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 61680))
}
fn default_monitor_roles() -> Vec<String> {
    vec!["monitor".into()]
}
fn default_operator_roles() -> Vec<String> {
    vec!["operator".into()]
}
fn default_admin_roles() -> Vec<String> {
    vec!["admin".into()]
}
fn default_sample_interval() -> u64 {
    5
}
fn default_samples() -> usize {
    60
}

/// Checks `[admin]`; errors name the key.
pub(super) fn check_admin(a: &AdminConfig, errors: &mut Vec<super::ValidationError>) {
    use super::ValidationError;
    if a.sample_interval_secs == 0 {
        errors.push(ValidationError::new(
            "admin.sample-interval-secs",
            "must be at least 1 (seconds between rate samples)",
        ));
    }
    if !(2..=10_000).contains(&a.samples) {
        errors.push(ValidationError::new(
            "admin.samples",
            format!(
                "{} is out of range: keep 2 to 10000 samples per object",
                a.samples
            ),
        ));
    }
    for (i, t) in a.tokens.iter().enumerate() {
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(ValidationError::new(
                format!("admin.tokens[{i}].sha256"),
                "must be the 64 hex digits of the token's SHA-256 (printf %s \"$TOKEN\" | sha256sum)",
            ));
        }
        if !matches!(t.role.as_str(), "monitor" | "operator" | "admin") {
            errors.push(ValidationError::new(
                format!("admin.tokens[{i}].role"),
                format!("'{}' is not one of monitor, operator, admin", t.role),
            ));
        }
    }
}
