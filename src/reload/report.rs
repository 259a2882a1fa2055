//! What a reload answers and what the running configuration looks like, as the admin API
//! serializes them (`POST /api/v1/config/reload`, `GET /api/v1/config`).

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::diff::{KeyReason, RestartOnly};
use crate::config::ConfigError;

/// The outcome of one reload (or dry run): nothing was applied unless both `rejected` and
/// `requires_restart` are empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadReport {
    /// Only computed: nothing was applied whatever the lists say.
    pub dry_run: bool,
    /// Keys (or whole entries, `users[bob]`) applied, or that a dry run would apply.
    pub applied: Vec<String>,
    /// Changed keys that need a restart; any of them rejects the whole reload.
    pub requires_restart: Vec<RestartOnly>,
    /// Problems with the file (naming file, key and reason); any of them rejects the reload.
    pub rejected: Vec<KeyReason>,
    /// Changes reported but not carried out: declared addresses, queues and routing types
    /// removed from the file, which the broker keeps (a reload never deletes messages), and a
    /// log level an embedded broker cannot apply.
    pub kept: Vec<KeyReason>,
    /// When the file was applied (ms since the Unix epoch); `null` when nothing was.
    pub loaded_at: Option<u64>,
}

impl ReloadReport {
    pub(crate) fn new(dry_run: bool) -> ReloadReport {
        ReloadReport {
            dry_run,
            applied: Vec::new(),
            requires_restart: Vec::new(),
            rejected: Vec::new(),
            kept: Vec::new(),
            loaded_at: None,
        }
    }

    /// Whether the file was refused (invalid, or a key that needs a restart changed).
    pub fn is_rejected(&self) -> bool {
        !self.rejected.is_empty() || !self.requires_restart.is_empty()
    }

    /// Logs the report for `trigger`: info when applied, warn when rejected, naming the keys.
    pub fn log(&self, trigger: &str) {
        fn keys(v: &[KeyReason]) -> Vec<&str> {
            v.iter().map(|r| r.key.as_str()).collect()
        }
        if self.is_rejected() {
            let restart: Vec<&str> = self
                .requires_restart
                .iter()
                .map(|r| r.key.as_str())
                .collect();
            let reasons: Vec<String> = self
                .rejected
                .iter()
                .map(|r| format!("{}: {}", r.key, r.reason))
                .collect();
            tracing::warn!(
                trigger,
                requires_restart = ?restart,
                rejected = ?reasons,
                "configuration reload rejected: nothing was applied"
            );
        } else if self.dry_run {
            tracing::info!(trigger, would_apply = ?self.applied, kept = ?keys(&self.kept), "configuration reload dry run");
        } else {
            tracing::info!(trigger, applied = ?self.applied, kept = ?keys(&self.kept), "configuration reloaded");
        }
    }
}

/// The problems of a refused file, one per key.
pub(crate) fn rejections(error: &ConfigError) -> Vec<KeyReason> {
    match error {
        ConfigError::Invalid { path, errors } => errors
            .iter()
            .map(|e| KeyReason {
                key: e.key.clone(),
                reason: format!("{}: {}: {}", path.display(), e.key, e.reason),
            })
            .collect(),
        ConfigError::Parse { key, .. } => vec![KeyReason {
            key: key.clone().unwrap_or_default(),
            reason: error.to_string(),
        }],
        ConfigError::Read { .. } => vec![KeyReason {
            key: String::new(),
            reason: error.to_string(),
        }],
    }
}

/// The running configuration (`GET /api/v1/config`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigView {
    /// The file it was loaded from; `null` for a broker started without one.
    pub source: Option<PathBuf>,
    /// When it was loaded or last reloaded (ms since the Unix epoch).
    pub loaded_at: u64,
    /// The effective configuration, every key with its value, secrets redacted.
    pub config: Value,
    /// Keys changed in the file (as last read) that only a restart applies.
    pub pending_restart: Vec<String>,
}
