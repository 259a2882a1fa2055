//! Configuration reload: one function ([`Reloader::reload`]) behind SIGHUP, the file watcher
//! and the admin API. It reads and validates the whole file, compares it with the running
//! configuration key by key, and applies everything or nothing: a bad value, or a changed key
//! that only a restart can apply (listeners, TLS, the journal), rejects the whole file and is
//! reported, never silently ignored. Also `wrenmq config check`, the same reading offline.
//!
//! A layer below the admin API (which calls it) and above transport and session: it changes
//! the core's and the security service's live state, never a connection's.

mod check;
mod diff;
mod flatten;
mod log;
mod reloader;
mod report;
mod triggers;

pub use check::{CheckOutcome, check};
pub use diff::{Diff, KeyReason, RestartOnly, diff};
pub use flatten::{KeyPath, Seg, flatten, redacted_json};
pub use log::init_logging;
pub use reloader::{LogLevelSetter, Reloader};
pub use report::{ConfigView, ReloadReport};
pub use triggers::DEBOUNCE;
