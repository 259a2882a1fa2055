//! STOMP over plain TCP.

use bytes::{Bytes, BytesMut};
use std::io::{self, IoSlice};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::{ByteSink, ByteSource, admission};
use crate::server::{AcceptorContext, ShutdownSignal};
use crate::session;

impl ByteSource for OwnedReadHalf {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() - buf.len() < 4096 {
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

/// Accepts TCP connections until shutdown, serving each on its own task.
pub async fn run(listener: TcpListener, ctx: Arc<AcceptorContext>, mut shutdown: ShutdownSignal) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admission = match ctx.admit(peer.ip()) {
                        Ok(a) => a,
                        Err(why) => {
                            tracing::info!(%peer, reason = %why, "connection refused");
                            tokio::spawn(admission::refuse(stream, why));
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let (r, w) = stream.into_split();
                    let ctx = Arc::clone(&ctx);
                    let shutdown = shutdown.clone();
                    let guard = ctx.track_connection();
                    tokio::spawn(async move {
                        tracing::debug!(%peer, "connection accepted");
                        session::serve(r, w, ctx, shutdown, peer).await;
                        drop(guard);
                        drop(admission);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
