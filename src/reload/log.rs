//! The process's log subscriber with a filter a reload can replace (`[broker] log-level`).

use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt, reload};

use super::LogLevelSetter;

/// Installs the global subscriber (to stderr) filtered by `RUST_LOG` when it is set and
/// valid, else by `level` (the configuration's `log-level`), and returns the setter a reload
/// uses to change the filter. Call once, from the binary.
pub fn init_logging(level: &str) -> LogLevelSetter {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init();
    Arc::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}
