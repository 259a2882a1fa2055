//! What starts a reload besides the admin API: SIGHUP, and a change to the configuration
//! file (or its users file) seen by watching their directory, since editors usually replace
//! a file (write a new one, rename it over the old) rather than write into it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::Reloader;

/// Quiet time after the last file event before reloading: an editor's save is several events
/// (create, write, rename), and a reload in the middle of them would read a partial file.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

impl Reloader {
    /// Starts the triggers: SIGHUP always (on Unix), the file watcher unless
    /// `[broker] watch-config = false`. They end when `stop` turns true.
    pub fn spawn_triggers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        #[cfg(unix)]
        spawn_sighup(Arc::clone(self), stop.clone());
        if self.current().broker.watch_config
            && let Err(e) = spawn_watcher(Arc::clone(self), stop)
        {
            tracing::warn!(file = %self.source().display(), "cannot watch the configuration file ({e}); SIGHUP and the admin API still reload it");
        }
    }
}

#[cfg(unix)]
fn spawn_sighup(reloader: Arc<Reloader>, mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "cannot listen for SIGHUP ({e}); the configuration reloads only through the file watcher and the admin API"
            );
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    reloader.reload(false).await.log("SIGHUP");
                }
                _ = stop.changed() => return,
            }
        }
    });
}

/// The directories to watch and the file names in them that matter.
fn watched(reloader: &Reloader) -> Vec<(PathBuf, OsString)> {
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let source = reloader.source();
    let mut files = vec![source.to_path_buf()];
    if let Some(users) = &reloader.current().security.users_file {
        files.push(dir_of(source).join(users));
    }
    files
        .iter()
        .filter_map(|f| Some((dir_of(f), f.file_name()?.to_os_string())))
        .collect()
}

fn spawn_watcher(reloader: Arc<Reloader>, mut stop: watch::Receiver<bool>) -> notify::Result<()> {
    let targets = watched(&reloader);
    let names: BTreeSet<OsString> = targets.iter().map(|(_, n)| n.clone()).collect();
    // One slot: while a reload is pending, further events only extend the quiet wait.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.contains(n)));
        if ours {
            let _ = tx.try_send(());
        }
    })?;
    let dirs: BTreeSet<PathBuf> = targets.into_iter().map(|(d, _)| d).collect();
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tracing::info!(dirs = ?dirs, "watching the configuration for changes");
    tokio::spawn(async move {
        // Owned by the task: dropping it stops the watching.
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = rx.recv() => if got.is_none() { return },
                _ = stop.changed() => return,
            }
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if *stop.borrow() {
                return;
            }
            reloader.reload(false).await.log("file change");
        }
    });
    Ok(())
}
