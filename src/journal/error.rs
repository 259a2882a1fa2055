//! Errors the journal reports to the broker.
//!
//! Every variant carries the journal file's path and a human-readable reason
//! because an operator reading a startup failure must be able to act on it
//! without a debugger. Reasons are kept as strings so the error is `Clone`:
//! one failed group commit has to be reported to every waiter in it.

use std::path::PathBuf;

/// Why the journal could not be opened, or why a submitted batch was not
/// committed. Exists so callers can tell "refuse to start" apart from
/// "this write was lost" and never mistake either for success.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The journal directory could not be created or inspected.
    #[error("cannot prepare journal directory {}: {reason}", .path.display())]
    Directory {
        /// The directory from [`super::JournalOptions::dir`].
        path: PathBuf,
        /// The underlying I/O failure.
        reason: String,
    },
    /// The file exists but is not a redb database (wrong magic bytes) or
    /// holds tables that are not a WrenMQ journal. The file is left untouched.
    #[error("journal file {} is not a WrenMQ journal: {reason}; refusing to open it (file left untouched)", .path.display())]
    NotAJournal {
        /// The journal file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Another `Journal` in this process, or another process, has the file
    /// open. Two writers would corrupt each other's state.
    #[error("journal file {} is already open by this or another process (locked); refusing to open it twice", .path.display())]
    Locked {
        /// The journal file.
        path: PathBuf,
    },
    /// The file was written by a build with an incompatible record layout.
    #[error("journal file {} has format version {found}, this build reads format version {expected}; refusing to open it (file left untouched)", .path.display())]
    FormatVersion {
        /// The journal file.
        path: PathBuf,
        /// The version recorded in the file.
        found: u64,
        /// The version this build writes and reads.
        expected: u64,
    },
    /// The file is a redb database but its content is damaged or a record
    /// cannot be decoded.
    #[error("journal file {} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// What was found damaged.
        reason: String,
    },
    /// Any other failure while opening or recovering.
    #[error("cannot open journal file {}: {reason}", .path.display())]
    Open {
        /// The journal file.
        path: PathBuf,
        /// The underlying failure.
        reason: String,
    },
    /// A group commit failed; nothing in it is durable. The journal is in
    /// the failed state until the writer has reopened the file.
    #[error("journal file {}: write failed, batch not committed: {reason}", .path.display())]
    Write {
        /// The journal file.
        path: PathBuf,
        /// The underlying failure.
        reason: String,
    },
    /// An earlier write failed and the file is not open again yet, so the
    /// journal refuses work rather than acknowledge writes it cannot store.
    #[error("journal file {} is in a failed state after an earlier write error: {reason}", .path.display())]
    Failed {
        /// The journal file.
        path: PathBuf,
        /// The first write error.
        reason: String,
    },
    /// Reading paged messages back failed (storage error or a damaged page row).
    #[error("journal file {}: cannot read paged messages back: {reason}", .path.display())]
    Read {
        /// The journal file.
        path: PathBuf,
        /// The underlying failure.
        reason: String,
    },
    /// The journal was shut down before this batch could be committed.
    #[error("journal file {} is shut down; batch not committed", .path.display())]
    ShutDown {
        /// The journal file.
        path: PathBuf,
    },
}
