//! The process's log subscriber with a filter a reload can replace (`[broker] log-level`).

use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt, reload};

use super::LogLevelSetter;

/// Installs the global subscriber (to stderr) filtered by `RUST_LOG` when it is set and
/// valid, else by `level` (the configuration's `log-level`), and returns the setter a reload
/// uses to change the filter. Call once, from the binary. `json` (`--log-format json`) writes
/// one JSON object per line for log shippers; text is coloured only for a person (stderr a
/// terminal, `NO_COLOR` unset or empty, https://no-color.org), so a file or the systemd
/// journal never gets escape codes.
pub fn init_logging(level: &str, json: bool) -> LogLevelSetter {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = !no_color && std::io::stderr().is_terminal();
    let layer = fmt::layer().with_writer(std::io::stderr);
    let layer = if json {
        layer.json().with_ansi(false).boxed()
    } else {
        layer.with_ansi(colour).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    Arc::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}
