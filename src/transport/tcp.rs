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

/// Room for the read of a connection that holds no buffer. The session gives an empty buffer
/// back when its reads are small (a quiet subscriber), so the read it then waits in should
/// cost little; once traffic comes the next read makes the full room.
const QUIET_ROOM: usize = 1024;

impl ByteSource for OwnedReadHalf {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() == 0 {
            buf.reserve(QUIET_ROOM);
        } else if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        self.read_buf(buf).await
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
