//! The byte-stream interface the session driver reads from and writes to. It lives with the
//! session, its only user, so every transport (TCP, TLS, WebSocket) implements it and depends
//! on the session, never the other way round.

use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::io;

/// Where inbound bytes come from.
pub trait ByteSource: Send {
    /// Appends whatever arrived to `buf`; `Ok(0)` means the peer closed.
    fn read_into(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
}

/// Where outbound bytes go.
pub trait ByteSink: Send + 'static {
    /// Writes all chunks, in order, as one batch (one syscall where the transport allows).
    fn write_chunks(&mut self, chunks: &[Bytes]) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the write side cleanly.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}
