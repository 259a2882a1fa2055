//! Large message bodies: a body over `[broker] large-message-threshold` lives in a file of its
//! own instead of in memory, so a message of any size costs the broker a few hundred bytes of
//! memory. The file is written as the SEND arrives (by the session) and read in bounded
//! chunks as it is written to each consumer (by the writer task). Every copy of the message
//! (each multicast queue, a dead-letter copy) shares one [`LargeBody`]; the file goes when
//! the last of them does.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tempfile::{NamedTempFile, TempDir};

/// What a file body is charged in memory, beyond its headers: the handle and its path.
pub const FILE_BODY_MEMORY: usize = 256;

/// Name of the large-message directory inside the journal's data directory.
pub const LARGE_MESSAGES_DIR: &str = "large-messages";

/// Prefix and suffix of a large-message file's name, so start-up cleaning removes only the
/// broker's own files.
const FILE_PREFIX: &str = "msg-";
const FILE_SUFFIX: &str = ".body";

/// A message's payload: in memory, or in a file of its own.
#[derive(Debug, Clone)]
pub enum Body {
    /// Held in memory (possibly shared with the frame it arrived in).
    Inline(Bytes),
    /// Held on disk, shared by every copy of the message.
    File(Arc<LargeBody>),
}

impl Default for Body {
    fn default() -> Self {
        Body::Inline(Bytes::new())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::Inline(b)
    }
}

impl Body {
    /// The payload's length in bytes, wherever it is.
    pub fn len(&self) -> usize {
        match self {
            Body::Inline(b) => b.len(),
            Body::File(f) => usize::try_from(f.len()).unwrap_or(usize::MAX),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload when it is in memory.
    pub fn inline(&self) -> Option<&Bytes> {
        match self {
            Body::Inline(b) => Some(b),
            Body::File(_) => None,
        }
    }

    /// Bytes of memory the payload holds: what memory limits charge for it.
    pub fn in_memory(&self) -> usize {
        match self {
            Body::Inline(b) => b.len(),
            Body::File(_) => FILE_BODY_MEMORY,
        }
    }
}

/// One large-message file. Dropping the last handle deletes the file, unless the broker is
/// stopping (a persistent message's file must outlive the process).
#[derive(Debug)]
pub struct LargeBody {
    store: Arc<LargeStore>,
    name: String,
    len: u64,
}

impl LargeBody {
    /// The file's name inside the large-message directory, as the journal records it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty body (never made by the broker, which streams only large ones).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the body is, for reading it.
    pub fn path(&self) -> PathBuf {
        self.store.dir.join(&self.name)
    }
}

impl Drop for LargeBody {
    fn drop(&mut self) {
        if self.store.keeping.load(Ordering::Acquire) {
            return;
        }
        let path = self.path();
        let remove = move || {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a large message's file");
            }
        };
        // The last copy usually goes on an async worker (an ACK, a written `auto`
        // delivery): the unlink runs on the blocking pool instead.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Where large bodies are kept: `<data-dir>/large-messages/` with the journal, else a
/// temporary directory of the broker's own, deleted when it stops.
#[derive(Debug)]
pub struct LargeStore {
    dir: PathBuf,
    /// Keeps the temporary directory (journal off) alive as long as any body in it.
    _temp: Option<TempDir>,
    /// Bodies over this many bytes go to a file.
    threshold: usize,
    /// fsync each file (and the directory) before its message is confirmed.
    sync: bool,
    /// Set when the broker stops: files then stay for the next start to recover or clean.
    keeping: AtomicBool,
}

impl LargeStore {
    /// A store in `dir` (created if missing), or in a new temporary directory when `None`.
    pub fn open(dir: Option<&Path>, threshold: usize, sync: bool) -> std::io::Result<Arc<Self>> {
        let (dir, temp) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.to_path_buf(), None)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("wrenmq-large-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        Ok(Arc::new(LargeStore {
            dir,
            _temp: temp,
            threshold,
            sync,
            keeping: AtomicBool::new(false),
        }))
    }

    /// Bodies over this many bytes are kept in files.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty file for a body that is arriving. It is deleted when dropped before
    /// [`LargeStore::finish`]: an upload cut short leaves nothing behind. Blocking.
    pub fn create(&self) -> std::io::Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix(FILE_PREFIX)
            .suffix(FILE_SUFFIX)
            .rand_bytes(16)
            .tempfile_in(&self.dir)
    }

    /// Makes a completely written file a body: flushed and (with `journal.sync`, unless the
    /// message cannot be persistent) fsynced together with its directory entry, so a journal
    /// record naming it is never committed before the file is durable. Blocking.
    pub fn finish(
        self: &Arc<Self>,
        file: NamedTempFile,
        may_persist: bool,
    ) -> std::io::Result<Arc<LargeBody>> {
        let mut file = file;
        let sync = self.sync && may_persist;
        file.flush()?;
        if sync {
            file.as_file().sync_all()?;
        }
        let len = file.as_file().metadata()?.len();
        let (_, path) = file.keep().map_err(|e| e.error)?;
        if sync {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| std::io::Error::other("large message file name is not UTF-8"))?;
        Ok(Arc::new(LargeBody {
            store: Arc::clone(self),
            name,
            len,
        }))
    }

    /// The body a recovered message names, if its file is there with the length recorded;
    /// a warning and `None` otherwise (the message is then skipped). Blocking.
    pub fn recovered(
        self: &Arc<Self>,
        name: &str,
        len: u64,
        message: u64,
    ) -> Option<Arc<LargeBody>> {
        let plain = Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name);
        let found = plain
            .then(|| std::fs::metadata(self.dir.join(name)))
            .map(|m| m.map(|m| m.len()));
        match found {
            Some(Ok(found)) if found == len => Some(Arc::new(LargeBody {
                store: Arc::clone(self),
                name: name.to_string(),
                len,
            })),
            Some(Ok(found)) => {
                tracing::warn!(
                    message,
                    file = name,
                    expected = len,
                    found,
                    "a large message's file has the wrong length; message skipped"
                );
                None
            }
            Some(Err(e)) => {
                tracing::warn!(message, file = name, error = %e, "a large message's file is missing; message skipped");
                None
            }
            None => {
                tracing::warn!(
                    message,
                    file = name,
                    "a large message names no file of the large-message directory; message skipped"
                );
                None
            }
        }
    }

    /// Deletes every large-message file no recovered message names: bodies of messages
    /// that were not persistent, acknowledged before the stop, or never confirmed. Blocking.
    pub fn remove_unreferenced(&self, referenced: &HashSet<String>) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the large-message directory");
                return;
            }
        };
        let mut removed = 0usize;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX);
            if ours && !referenced.contains(name) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(file = name, error = %e, "could not delete an unreferenced large message file")
                    }
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.dir.display(), "deleted large message files no stored message references");
        }
    }

    /// From now on dropping a body keeps its file: the broker is stopping, and a
    /// persistent message's file must be there at the next start.
    pub fn keep_files(&self) {
        self.keeping.store(true, Ordering::Release);
    }
}
