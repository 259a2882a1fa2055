//! A redb storage backend that simulates power loss, for the journal's crash tests.
//!
//! A `kill -9` loses nothing the kernel already holds: every write redb made is still in the
//! page cache and reaches the disk. A power cut loses whatever was written after the last
//! `fsync`, in any part and any order, and may tear the page that was being written. This
//! backend keeps its own model of the disk: the image as of the last `sync_data`, and the
//! writes and resizes since. At a chosen mutating call the power goes: that call and every
//! later one fail, as they would on a machine that stopped. [`PowerCut::survivors`] then says
//! what the disk holds when the power comes back, under one of the [`Loss`] models, and the
//! test writes that image to the file and opens the journal from it as a restarted broker
//! would.
//!
//! The file itself always holds the latest (volatile) contents, so reads see what redb wrote;
//! `sync_data` updates the model instead of calling `fsync`, which keeps thousands of cuts fast.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// What survives of the writes made after the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// None of them: the disk is as it was at the last sync.
    Unsynced,
    /// Each one independently, by a coin seeded with this value (the disk's cache wrote some
    /// back before the cut, in no particular order).
    Random(u64),
    /// All of them, except the last write, of which only the first half (in 512-byte
    /// sectors) reached the platter: a torn page.
    Torn,
}

/// A write or resize made since the last sync.
#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Default)]
struct Model {
    /// Mutating calls (write, set_len, sync_data) made so far.
    calls: u64,
    /// The call at which the power goes (1-based); `None`: never.
    cut_at: Option<u64>,
    off: bool,
    /// The disk as of the last sync; `None` until the first backend opens the file.
    durable: Option<Vec<u8>>,
    pending: Vec<Pending>,
    /// The file the last backend was opened on: where the surviving image belongs (a new
    /// journal is built under a temporary name first).
    path: Option<std::path::PathBuf>,
}

/// One simulated machine's disk and power switch, shared by every backend opened on it (the
/// journal reopens its file after a failed write).
pub(crate) struct PowerCut {
    model: Mutex<Model>,
}

impl PowerCut {
    /// A disk whose power goes at mutating call `cut_at` (1-based), or never.
    pub(crate) fn new(cut_at: Option<u64>) -> Arc<PowerCut> {
        Arc::new(PowerCut {
            model: Mutex::new(Model {
                cut_at,
                ..Model::default()
            }),
        })
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A test thread that panicked while holding it leaves a model still worth reading.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mutating calls made so far (a run without a cut tells how many steps a workload has).
    pub(crate) fn calls(&self) -> u64 {
        self.model().calls
    }

    /// Whether the power went.
    pub(crate) fn happened(&self) -> bool {
        self.model().off
    }

    /// A backend on the file at `path`, created if missing.
    pub(crate) fn backend(self: &Arc<Self>, path: &Path) -> io::Result<PowerCutFile> {
        let mut m = self.model();
        if m.off {
            return Err(power_off());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if m.path.as_deref() != Some(path) {
            // A file the model has not seen (the first one, or a new journal renamed into
            // place, whose contents the model already holds under the old name).
            if m.durable.is_none() {
                m.durable = Some(std::fs::read(path)?);
            }
            m.path = Some(path.to_path_buf());
        }
        Ok(PowerCutFile {
            file,
            cut: Arc::clone(self),
        })
    }

    /// The file the surviving image belongs to.
    pub(crate) fn file(&self) -> Option<std::path::PathBuf> {
        self.model().path.clone()
    }

    /// What the disk holds after the power comes back.
    pub(crate) fn survivors(&self, loss: Loss) -> Vec<u8> {
        let m = self.model();
        let mut image = m.durable.clone().unwrap_or_default();
        let mut coin = match loss {
            Loss::Random(seed) => Some(fastrand::Rng::with_seed(seed)),
            _ => None,
        };
        let last_write = m
            .pending
            .iter()
            .rposition(|p| matches!(p, Pending::Write(..)));
        for (i, p) in m.pending.iter().enumerate() {
            let keep = match loss {
                Loss::Unsynced => false,
                Loss::Random(_) => coin.as_mut().is_some_and(|c| c.bool()),
                Loss::Torn => true,
            };
            if !keep {
                continue;
            }
            match p {
                Pending::SetLen(len) => image.resize(usize::try_from(*len).unwrap_or(0), 0),
                Pending::Write(offset, data) => {
                    let data = if loss == Loss::Torn && Some(i) == last_write {
                        data.get(..data.len() / 2 / 512 * 512).unwrap_or_default()
                    } else {
                        data.as_slice()
                    };
                    let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                    let end = start.saturating_add(data.len());
                    if image.len() < end {
                        image.resize(end, 0);
                    }
                    if let Some(dst) = image.get_mut(start..end) {
                        dst.copy_from_slice(data);
                    }
                }
            }
        }
        image
    }

    /// Counts one mutating call; fails it (and all later ones) once the power is off.
    fn step(&self) -> io::Result<MutexGuard<'_, Model>> {
        let mut m = self.model();
        if m.off {
            return Err(power_off());
        }
        m.calls += 1;
        if m.cut_at == Some(m.calls) {
            m.off = true;
            return Err(power_off());
        }
        Ok(m)
    }

    fn alive(&self) -> io::Result<()> {
        if self.model().off {
            Err(power_off())
        } else {
            Ok(())
        }
    }
}

fn power_off() -> io::Error {
    io::Error::other("simulated power loss")
}

/// The backend redb writes through (see [`PowerCut`]).
#[derive(Debug)]
pub(crate) struct PowerCutFile {
    file: File,
    cut: Arc<PowerCut>,
}

impl std::fmt::Debug for PowerCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowerCut")
    }
}

impl redb::StorageBackend for PowerCutFile {
    fn len(&self) -> io::Result<u64> {
        self.cut.alive()?;
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.cut.alive()?;
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut m = self.cut.step()?;
        self.file.set_len(len)?;
        m.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut m = self.cut.step()?;
        let pending = std::mem::take(&mut m.pending);
        let durable = m.durable.get_or_insert_with(Vec::new);
        for p in pending {
            match p {
                Pending::SetLen(len) => durable.resize(usize::try_from(len).unwrap_or(0), 0),
                Pending::Write(offset, data) => {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX);
                    let end = start.saturating_add(data.len());
                    if durable.len() < end {
                        durable.resize(end, 0);
                    }
                    if let Some(dst) = durable.get_mut(start..end) {
                        dst.copy_from_slice(&data);
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut m = self.cut.step()?;
        self.file.write_all_at(data, offset)?;
        m.pending.push(Pending::Write(offset, data.to_vec()));
        Ok(())
    }
}
