//! STOMP over plain TCP.

use bytes::{Bytes, BytesMut};
use std::io::{self, IoSlice};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::accept::accept_loop;
use super::admission;
use super::context::AcceptorContext;
use crate::session::{self, ByteSink, ByteSource, ShutdownSignal};

impl ByteSource for OwnedReadHalf {
    /// Waits until the socket is readable before it makes room in `buf`, so a connection
    /// waiting for its peer holds no buffer (the session drops an empty one).
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() - buf.len() >= 4096 {
            return self.read_buf(buf).await;
        }
        loop {
            self.readable().await?;
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            match self.try_read_buf(buf) {
                // Readiness is cleared only by a read that would block, so after a read that
                // got bytes it is still set: this empty read is the usual way to learn the
                // socket is idle, and the room made for it goes back before the wait.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                }
                done => return done,
            }
        }
    }
}

impl ByteSink for OwnedWriteHalf {
    async fn write_chunks(&mut self, chunks: &[Bytes]) -> io::Result<()> {
        // Vectored writes send headers and shared bodies together without copying bodies.
        let mut idx = 0;
        let mut offset = 0;
        while idx < chunks.len() {
            let slices: Vec<IoSlice<'_>> = chunks[idx..]
                .iter()
                .enumerate()
                .map(|(i, c)| IoSlice::new(if i == 0 { &c[offset..] } else { &c[..] }))
                .take(64)
                .collect();
            let mut n = self.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while n > 0 && idx < chunks.len() {
                let left = chunks[idx].len() - offset;
                if n >= left {
                    n -= left;
                    idx += 1;
                    offset = 0;
                } else {
                    offset += n;
                    n = 0;
                }
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        AsyncWriteExt::shutdown(self).await
    }
}

/// Accepts TCP connections until shutdown, serving each on its own task. A connection over
/// the limits gets a raw ERROR frame saying so.
pub async fn run(listener: TcpListener, ctx: Arc<AcceptorContext>, shutdown: ShutdownSignal) {
    accept_loop(
        listener,
        ctx,
        shutdown,
        |stream, _, why| {
            tokio::spawn(admission::refuse(stream, why));
        },
        |stream, peer, ctx, shutdown| async move {
            let (r, w) = stream.into_split();
            session::serve(r, w, ctx, shutdown, peer).await;
        },
    )
    .await
}
