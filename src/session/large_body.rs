//! Moving a large body between the socket and its file: an [`Upload`] writes a SEND's body
//! to a new file as its pieces arrive from the decoder, and a [`Reader`] reads a file back in
//! bounded chunks for the writer task. Every file operation runs off the async workers
//! (`spawn_blocking`), and no more than one chunk of a body is ever in memory here.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tempfile::NamedTempFile;

use super::Failure;
use crate::broker::{LargeBody, LargeStore};
use crate::stomp::{BODY_PART, Frame, FrameEncoder, Version};

/// Bytes of a file read (and written to the socket) at a time.
pub(super) const READ_CHUNK: usize = BODY_PART;

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(format!("file task failed: {e}")))?
}

/// A SEND whose body is being written to a file. Dropped unfinished (the connection closed
/// or failed mid-body), its file is deleted.
pub(super) struct Upload {
    head: Frame,
    store: Arc<LargeStore>,
    /// `None` only while a write is in flight on the blocking pool.
    file: Option<NamedTempFile>,
}

fn disk_failure(what: &str, e: std::io::Error) -> Failure {
    tracing::error!(error = %e, "{what}");
    Failure::new(format!("{what}: {e}"))
}

impl Upload {
    /// Starts the body of the SEND whose head is `head`, in a new file of `store`.
    pub(super) async fn begin(store: Arc<LargeStore>, head: Frame) -> Result<Upload, Failure> {
        let creator = Arc::clone(&store);
        let file = blocking(move || creator.create()).await.map_err(|e| {
            disk_failure(
                "the broker could not create a file for a large message body",
                e,
            )
        })?;
        Ok(Upload {
            head,
            store,
            file: Some(file),
        })
    }

    /// Appends the next piece of the body.
    pub(super) async fn write(&mut self, part: Bytes) -> Result<(), Failure> {
        let Some(mut file) = self.file.take() else {
            return Err(Failure::new("a large message body write was interrupted"));
        };
        let file = blocking(move || {
            std::io::Write::write_all(&mut file, &part)?;
            Ok(file)
        })
        .await
        .map_err(|e| disk_failure("the broker could not write a large message body to disk", e))?;
        self.file = Some(file);
        Ok(())
    }

    /// The complete body, durable on disk, with the head of its SEND.
    pub(super) async fn finish(mut self) -> Result<(Frame, Arc<LargeBody>), Failure> {
        let Some(file) = self.file.take() else {
            return Err(Failure::new("a large message body write was interrupted"));
        };
        let store = Arc::clone(&self.store);
        // A SEND that says it is not persistent is never journaled: no fsync for it.
        let may_persist = !self
            .head
            .get("persistent")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"));
        let body = blocking(move || store.finish(file, may_persist))
            .await
            .map_err(|e| {
                disk_failure("the broker could not store a large message body on disk", e)
            })?;
        Ok((self.head, body))
    }
}

/// Reads a large body back in chunks of [`READ_CHUNK`] bytes.
pub(super) struct Reader {
    file: Arc<std::fs::File>,
    len: u64,
    at: u64,
}

impl Reader {
    /// Opens the file of `body`.
    pub(super) async fn open(body: &LargeBody) -> std::io::Result<Reader> {
        let path = body.path();
        let file = blocking(move || std::fs::File::open(path)).await?;
        Ok(Reader {
            file: Arc::new(file),
            len: body.len(),
            at: 0,
        })
    }

    /// The next chunk; `None` once the whole body was read. A file shorter than its body
    /// (damaged outside the broker) is an error, so a frame is never sent short.
    pub(super) async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        let left = self.len.saturating_sub(self.at);
        if left == 0 {
            return Ok(None);
        }
        let n = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
        let (file, at) = (Arc::clone(&self.file), self.at);
        let chunk = blocking(move || {
            let mut buf = BytesMut::zeroed(n);
            file.read_exact_at(&mut buf, at)?;
            Ok(buf.freeze())
        })
        .await?;
        self.at += n as u64;
        Ok(Some(chunk))
    }
}

/// Encodes the head of a frame whose `len`-byte body will follow from a file: its headers
/// (any `content-length` replaced by the true one) and the blank line.
pub(super) fn encode_head(frame: &Frame, len: u64, version: Version, out: &mut BytesMut) {
    let mut enc = FrameEncoder::begin(out, version, frame.command);
    for (k, v) in frame.headers.iter() {
        if k != "content-length" {
            enc.header(k, v);
        }
    }
    enc.finish_headers(usize::try_from(len).unwrap_or(usize::MAX));
}
