//! The one reload function behind every trigger (SIGHUP, the file watcher, the admin API):
//! read and validate the whole file, compare it with the running configuration, and apply
//! all of it or none of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::diff::{Diff, KeyReason, diff};
use super::flatten::redacted_json;
use super::report::{ConfigView, ReloadReport, rejections};
use crate::broker::Broker;
use crate::config::{self, Config, ConfigError};
use crate::security::Security;

/// Sets the broker's log filter (`[broker] log-level`); made by the binary, which owns the
/// tracing subscriber. The argument has passed [`Config::validate`].
pub type LogLevelSetter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload replaces, kept together so that a view never mixes two versions.
struct State {
    config: Arc<Config>,
    loaded_at: u64,
    pending_restart: Vec<String>,
}

/// Reloads a broker's configuration from the file it was started from.
pub struct Reloader {
    source: PathBuf,
    broker: Arc<Broker>,
    security: Arc<Security>,
    log_level: Option<LogLevelSetter>,
    state: Mutex<State>,
    /// Held for a whole reload, so concurrent triggers run one after the other and each
    /// compares the file with what the one before applied.
    serial: Mutex<()>,
    /// Reloads (not dry runs) applied and rejected since start, for `/metrics`.
    pub applied_count: AtomicU64,
    /// See [`Reloader::applied_count`].
    pub rejected_count: AtomicU64,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Reloader {
    /// A reloader for a broker started from `running` (whose `source` is the file), with its
    /// core and security service; `log_level` applies `[broker] log-level` when it changes.
    pub fn new(
        source: PathBuf,
        running: Config,
        broker: Arc<Broker>,
        security: Arc<Security>,
        log_level: Option<LogLevelSetter>,
    ) -> Reloader {
        Reloader {
            source,
            broker,
            security,
            log_level,
            state: Mutex::new(State {
                config: Arc::new(running),
                loaded_at: now_ms(),
                pending_restart: Vec::new(),
            }),
            serial: Mutex::new(()),
            applied_count: AtomicU64::new(0),
            rejected_count: AtomicU64::new(0),
        }
    }

    /// The file reloads read.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.state.lock().config)
    }

    /// The running configuration for the admin API: secrets redacted, with the keys the file
    /// changes that wait for a restart.
    pub fn view(&self) -> ConfigView {
        let state = self.state.lock();
        ConfigView {
            source: Some(self.source.clone()),
            loaded_at: state.loaded_at,
            config: redacted_json(&state.config),
            pending_restart: state.pending_restart.clone(),
        }
    }

    /// Reads the file again and applies it whole, or nothing of it; with `dry_run` only
    /// reports what it would do. Runs on the blocking pool (it reads files and takes the
    /// registry's write lock); concurrent calls run one after the other.
    pub async fn reload(self: &Arc<Self>, dry_run: bool) -> ReloadReport {
        let this = Arc::clone(self);
        match tokio::task::spawn_blocking(move || this.reload_now(dry_run)).await {
            Ok(report) => report,
            Err(e) => {
                let mut report = ReloadReport::new(dry_run);
                report.rejected.push(KeyReason {
                    key: String::new(),
                    reason: format!("the reload task failed: {e}"),
                });
                report
            }
        }
    }

    /// [`Reloader::reload`] on the calling thread.
    pub fn reload_now(&self, dry_run: bool) -> ReloadReport {
        let report = self.reload_once(dry_run);
        if !dry_run {
            let counter = if report.loaded_at.is_some() {
                &self.applied_count
            } else {
                &self.rejected_count
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        report
    }

    /// When the running configuration was last loaded (ms since the epoch).
    pub fn loaded_at(&self) -> u64 {
        self.state.lock().loaded_at
    }

    fn reload_once(&self, dry_run: bool) -> ReloadReport {
        let _serial = self.serial.lock();
        let running = self.current();
        let mut report = ReloadReport::new(dry_run);
        let new = match self.read(&running) {
            Ok(new) => new,
            Err(e) => {
                report.rejected = rejections(&e);
                return report;
            }
        };
        let changes = diff(&running, &new);
        self.state.lock().pending_restart = changes.restart.iter().map(|r| r.key.clone()).collect();
        report.rejected = self.conflicts(&running, &new);
        report.requires_restart = changes.restart.clone();
        report.kept = changes.kept.clone();
        if report.is_rejected() {
            return report;
        }
        report.applied = changes.live.clone();
        if self.log_level.is_none() {
            // An embedded broker whose host owns the log subscriber: the key is recorded in
            // the running configuration, and the report says it changed nothing.
            let key = "broker.log-level";
            if let Some(at) = report.applied.iter().position(|k| k == key) {
                report.applied.remove(at);
                report.kept.push(KeyReason {
                    key: key.to_string(),
                    reason: "this broker was started without a log subscriber it may change (embedded); the level was not applied".to_string(),
                });
            }
        }
        if dry_run {
            return report;
        }
        if let Err(reason) = self.apply(&running, &new, &changes) {
            report.applied.clear();
            report.rejected.push(KeyReason {
                key: String::new(),
                reason,
            });
            return report;
        }
        let loaded_at = now_ms();
        let mut state = self.state.lock();
        state.config = Arc::new(new);
        state.loaded_at = loaded_at;
        report.loaded_at = Some(loaded_at);
        report
    }

    /// The file, parsed and validated, with the running broker's command-line overrides.
    fn read(&self, running: &Config) -> Result<Config, ConfigError> {
        let mut new = config::load(&self.source)?;
        new.apply_overrides(&running.overrides);
        new.validate().map_err(|errors| ConfigError::Invalid {
            path: self.source.clone(),
            errors,
        })?;
        Ok(new)
    }

    /// Declared queues of the file that clash with queues the broker made since it started.
    fn conflicts(&self, running: &Config, new: &Config) -> Vec<KeyReason> {
        let added: Vec<_> = new
            .addresses
            .iter()
            .filter(|a| !running.addresses.contains(a))
            .cloned()
            .collect();
        self.broker
            .declaration_conflicts(&added)
            .into_iter()
            .map(|(key, reason)| KeyReason {
                reason: format!("{}: {key}: {reason}", self.source.display()),
                key,
            })
            .collect()
    }

    /// Applies every live change; the only steps that can fail come first and are undone,
    /// so an error leaves the broker as it was.
    fn apply(&self, running: &Config, new: &Config, changes: &Diff) -> Result<(), String> {
        let level_changed = running.broker.log_level != new.broker.log_level;
        if level_changed && let Some(set) = &self.log_level {
            set(&new.broker.log_level).map_err(|e| format!("broker.log-level: {e}"))?;
        }
        if changes.touches("addresses")
            && let Err(e) = self.broker.declare(&new.addresses)
        {
            if level_changed && let Some(set) = &self.log_level {
                let _ = set(&running.broker.log_level);
            }
            return Err(format!("addresses: {e}"));
        }
        if changes.touches("address-settings") {
            self.broker.replace_address_settings(new);
        }
        if changes.touches("users")
            || changes.touches("security-settings")
            || changes.touches("security")
        {
            self.security.replace(new);
        }
        Ok(())
    }
}
