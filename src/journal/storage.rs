//! Where the journal's redb file is written: straight to the file, or, in the crash tests,
//! through a backend that simulates power loss ([`super::power_cut`]). Carried from the
//! first open to every reopen after a failed write, so both go through the same storage.

use std::path::Path;

use redb::{Builder, Database, DatabaseError};

/// The storage under the journal's database.
#[derive(Clone)]
pub(crate) enum Storage {
    /// The file, as redb writes it.
    File,
    /// The file behind a simulated power switch.
    #[cfg(test)]
    PowerCut(std::sync::Arc<super::power_cut::PowerCut>),
}

impl Storage {
    /// Opens (creating if needed) the database at `path` on this storage.
    pub(crate) fn create(&self, builder: &Builder, path: &Path) -> Result<Database, DatabaseError> {
        match self {
            Storage::File => builder.create(path),
            #[cfg(test)]
            Storage::PowerCut(cut) => {
                let backend = cut
                    .backend(path)
                    .map_err(|e| DatabaseError::Storage(redb::StorageError::Io(e)))?;
                builder.create_with_backend(backend)
            }
        }
    }
}
