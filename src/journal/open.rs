//! Opening the file safely: refuse anything that is not our journal without
//! modifying it, and refuse a second writer.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable};

use super::error::JournalError;
use super::recovery::{self, Fingerprint, LoadLimit, Recovered, VersionState};
use super::storage::Storage;
use super::tables::{FORMAT_VERSION_KEY, Tables};
use super::{FORMAT_VERSION, REDB_MAGIC};

/// Paths open in this process. redb's locks stop other processes; this stops
/// a second `Journal` in the same process regardless of lock semantics.
fn open_paths() -> &'static Mutex<HashSet<PathBuf>> {
    static OPEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Ownership of a journal path in this process, released on drop.
pub(crate) struct PathClaim(PathBuf);

impl PathClaim {
    pub(crate) fn take(path: &Path) -> Result<Self, JournalError> {
        let mut set = match open_paths().lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !set.insert(path.to_path_buf()) {
            return Err(JournalError::Locked {
                path: path.to_path_buf(),
            });
        }
        Ok(PathClaim(path.to_path_buf()))
    }
}

impl Drop for PathClaim {
    fn drop(&mut self) {
        let mut set = match open_paths().lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        set.remove(&self.0);
    }
}

/// Runs `f`, turning a panic inside redb (which its docs allow for files
/// damaged outside redb) into a `Corrupt` error instead of crashing start-up.
pub(crate) fn guard_panic<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            reason: "the storage engine panicked while reading the file".into(),
        })
    })
}

/// What [`precheck`] learned from the file without writing to it.
pub(crate) enum Precheck {
    /// No file, an empty one, or a redb file without tables: nothing to
    /// recover and nothing to lose.
    New,
    /// Cleanly closed, of our format version, and read back in full.
    Recovered(Box<Recovered>, Option<Fingerprint>),
    /// Not shut down cleanly: only the read-write open may repair it, so
    /// recovery has to wait until after that open.
    NeedsRepair,
}

/// Inspects an existing file without writing to it: magic bytes, then a
/// read-only redb open to check the lock and the format version, then the
/// full recovery (which verifies every record's checksum). This is what
/// guarantees refused files are left untouched: redb's read-write open
/// writes to the header straight away (it marks the file as in use), and
/// closing it again records allocator state, so nothing that can fail the
/// open may run after it.
pub(crate) fn precheck(
    path: &Path,
    limit: LoadLimit,
    cache_size: usize,
) -> Result<Precheck, JournalError> {
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    match std::fs::File::open(path) {
        Ok(f) => {
            f.take(REDB_MAGIC.len() as u64)
                .read_to_end(&mut head)
                .map_err(|e| JournalError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Precheck::New),
        Err(e) => {
            return Err(JournalError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    if head.is_empty() {
        // An empty file holds nothing to lose; redb initialises it.
        return Ok(Precheck::New);
    }
    if head != REDB_MAGIC {
        return Err(JournalError::NotAJournal {
            path: path.to_path_buf(),
            reason: "not a redb database (magic bytes do not match)".into(),
        });
    }
    guard_panic(path, || {
        let ro = match Database::builder()
            .set_cache_size(cache_size)
            .open_read_only(path)
        {
            Ok(ro) => ro,
            // Not shut down cleanly: only the read-write open may recover it.
            Err(DatabaseError::RepairAborted) => return Ok(Precheck::NeedsRepair),
            Err(e) => return Err(open_error(path, e)),
        };
        let version = {
            let txn = ro.begin_read().map_err(|e| redb_error(path, e.into()))?;
            recovery::format_version(&txn).map_err(|e| redb_error(path, e))?
        };
        if let VersionState::Fresh = version {
            return Ok(Precheck::New);
        }
        check_version(path, version)?;
        let recovered = recovery::recover(&ro, path, limit)?;
        Ok(Precheck::Recovered(
            Box::new(recovered),
            recovery::fingerprint(&ro),
        ))
    })
}

/// Runs right after the read-write open and before anything else writes:
/// re-checks the version (the pre-check could not for a file that needed
/// crash repair), recovers if the pre-check could not (crash repair) or the
/// file changed in between (another process wrote it between the two opens),
/// and only then creates the tables of a new file.
pub(crate) fn recover_after_open(
    db: &Database,
    path: &Path,
    pre: Precheck,
    limit: LoadLimit,
) -> Result<Recovered, JournalError> {
    let version = {
        let txn = db.begin_read().map_err(|e| redb_error(path, e.into()))?;
        recovery::format_version(&txn).map_err(|e| redb_error(path, e))?
    };
    check_version(path, version.clone())?;
    if let VersionState::Fresh = version {
        init_meta(db, path)?;
        return recovery::recover(db, path, limit);
    }
    if let Precheck::Recovered(recovered, Some(before)) = pre {
        if recovery::fingerprint(db).as_ref() == Some(&before) {
            return Ok(*recovered);
        }
        tracing::warn!(journal = %path.display(), "journal changed between the read-only check and the open; reading it again");
    }
    recovery::recover(db, path, limit)
}

fn check_version(path: &Path, v: VersionState) -> Result<(), JournalError> {
    match v {
        VersionState::Fresh => Ok(()),
        VersionState::Version(FORMAT_VERSION) => Ok(()),
        VersionState::Version(found) => Err(JournalError::FormatVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        }),
        VersionState::Missing => Err(JournalError::NotAJournal {
            path: path.to_path_buf(),
            reason: "a redb database without a WrenMQ format-version record".into(),
        }),
    }
}

pub(crate) fn open_rw(
    path: &Path,
    cache_size: usize,
    storage: &Storage,
) -> Result<Database, JournalError> {
    guard_panic(path, || {
        let mut builder = Database::builder();
        builder.set_cache_size(cache_size);
        storage
            .create(&builder, path)
            .map_err(|e| open_error(path, e))
    })
}

/// Where a new journal is built before it takes the journal's name.
pub(crate) fn creating_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".creating");
    PathBuf::from(name)
}

/// Makes a new journal at `path` in one step a crash cannot split: the file is built under a
/// temporary name (tables made, format version stamped, synced), then renamed into place and
/// the directory synced. A power cut while redb wrote a new file's first pages used to leave
/// a torn file under the journal's own name, which the next start refused as not a journal;
/// now it leaves either no journal or a stray temporary file, removed here next time.
pub(crate) fn create_atomically(
    path: &Path,
    cache_size: usize,
    storage: &Storage,
) -> Result<(), JournalError> {
    let creating = creating_path(path);
    let io_error = |e: std::io::Error| JournalError::Open {
        path: path.to_path_buf(),
        reason: format!("cannot create the journal via {}: {e}", creating.display()),
    };
    match std::fs::remove_file(&creating) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(e)),
        _ => {}
    }
    {
        let db = open_rw(&creating, cache_size, storage)?;
        init_meta(&db, &creating)?;
    }
    std::fs::rename(&creating, path).map_err(io_error)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error)?;
    }
    Ok(())
}

/// Creates the tables and stamps the format version on a new file. Only
/// called for a file without tables, so an existing journal is never written
/// at open (beyond redb's own open and crash repair).
fn init_meta(db: &Database, path: &Path) -> Result<(), JournalError> {
    let res = (|| -> Result<(), redb::Error> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut t = Tables::open(&txn)?;
            if t.meta.get(FORMAT_VERSION_KEY)?.is_none() {
                t.meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
            }
        }
        txn.commit()?;
        Ok(())
    })();
    res.map_err(|e| redb_error(path, e))
}

fn open_error(path: &Path, e: DatabaseError) -> JournalError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => JournalError::Locked {
            path: path.to_path_buf(),
        },
        other => redb_error(path, other.into()),
    }
}

fn redb_error(path: &Path, e: redb::Error) -> JournalError {
    let path = path.to_path_buf();
    match e {
        redb::Error::DatabaseAlreadyOpen => JournalError::Locked { path },
        redb::Error::Corrupted(reason) => JournalError::Corrupt { path, reason },
        redb::Error::UpgradeRequired(v) => JournalError::Open {
            path,
            reason: format!("written by an incompatible redb file format {v}"),
        },
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            JournalError::NotAJournal {
                path,
                reason: io.to_string(),
            }
        }
        other => JournalError::Open {
            path,
            reason: other.to_string(),
        },
    }
}

/// Empties the page table: what its rows stood for did not survive the restart (messages
/// that are not persistent) or was recovered from the refs (persistent ones), and queues
/// number their pages afresh.
pub(crate) fn clear_pages(db: &Database, path: &Path) -> Result<(), JournalError> {
    let res = (|| -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        for table in ["pages", "paged_messages", "paged_refcounts"] {
            match txn.delete_table(redb::TableDefinition::<u64, u64>::new(table)) {
                Ok(_) => {}
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        txn.commit()?;
        Ok(())
    })();
    res.map_err(|e| redb_error(path, e))
}
