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
/// back when its reads are small (a quiet subscriber); once traffic comes the next read makes
/// the full room.
const QUIET_ROOM: usize = 1024;

impl ByteSource for OwnedReadHalf {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() == 0 {
            // A quiet connection waits for its next bytes holding no buffer at all, and makes
            // the room only once they are there: thousands of idle subscribers then hold no
            // read room each. The same syscalls as a plain read: readiness first, then one
            // read (the plain read tries first and waits for readiness after).
            loop {
                self.readable().await?;
                buf.reserve(QUIET_ROOM);
                match self.try_read_buf(buf) {
                    Ok(n) => return Ok(n),
                    // Readiness that was stale (the failed read cleared it): give the room
                    // back and wait again.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => *buf = BytesMut::new(),
                    Err(e) => return Err(e),
                }
            }
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

#[cfg(test)]
mod tests {
    use std::future::{Future, poll_fn};
    use std::task::Poll;

    use bytes::BytesMut;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use crate::session::ByteSource;

    /// A quiet connection (one whose session gave its read buffer back) waits for its next
    /// bytes holding no read room: that room was 1 KiB of every idle subscriber.
    #[tokio::test]
    async fn a_quiet_connection_waits_for_bytes_holding_no_read_room() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut source, _sink) = server.into_split();
        let mut buf = BytesMut::new();
        {
            let mut read = std::pin::pin!(source.read_into(&mut buf));
            let ready = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx).is_ready())).await;
            assert!(!ready, "nothing was sent, so the read must wait");
        }
        assert_eq!(
            buf.capacity(),
            0,
            "the waiting read made room before any byte came"
        );
        client.write_all(b"\n\nSEND").await.unwrap();
        let mut got = 0;
        while got < 6 {
            got += source.read_into(&mut buf).await.unwrap();
        }
        assert_eq!(&buf[..], b"\n\nSEND");
    }
}
