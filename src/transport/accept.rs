//! The accept loop every transport shares: take a socket, admit it against the connection
//! limits (or refuse it the transport's way), count it for graceful shutdown, and serve it on
//! its own task until it closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

use super::context::AcceptorContext;
use crate::session::{SessionContext, ShutdownSignal};

/// Idle time before the kernel probes a silent peer, and the gap between probes: a client
/// whose machine vanished (no FIN, no RST) is found within a couple of minutes even when it
/// negotiated no heart-beats and the connection TTL is off, or a producer is blocked on a full
/// address and nothing is being read.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Socket options every accepted connection gets: no Nagle delay (STOMP frames are small and
/// latency matters) and TCP keepalive. Failing to set them is not worth refusing a client.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot enable TCP keepalive");
    }
}

/// Accepts until shutdown. `refuse` gets a socket over a limit with the reason; `serve` gets
/// an admitted one and returns the future that serves it; the slot is released when it ends.
pub async fn accept_loop<R, S, F>(
    listener: TcpListener,
    ctx: Arc<AcceptorContext>,
    mut shutdown: ShutdownSignal,
    refuse: R,
    serve: S,
) where
    R: Fn(TcpStream, SocketAddr, String),
    S: Fn(TcpStream, SocketAddr, Arc<SessionContext>, ShutdownSignal) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admission = match ctx.admit(peer.ip()) {
                        Ok(a) => a,
                        Err(why) => {
                            tracing::info!(%peer, acceptor = %ctx.session.acceptor.name, reason = %why, "connection refused");
                            refuse(stream, peer, why);
                            continue;
                        }
                    };
                    tune(&stream);
                    let guard = ctx.track_connection();
                    tracing::debug!(%peer, acceptor = %ctx.session.acceptor.name, "connection accepted");
                    let served = serve(stream, peer, Arc::clone(&ctx.session), shutdown.clone());
                    // `map`, not an async block awaiting `served`: such a block keeps the
                    // captured future and the one it awaits as two fields, which doubled
                    // every connection's task (7.3 KiB instead of 3.6 for TCP).
                    tokio::spawn(served.map(move |()| {
                        drop(guard);
                        drop(admission);
                    }));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!SockRef::from(&accepted).keepalive().unwrap());
        tune(&accepted);
        let sock = SockRef::from(&accepted);
        assert!(sock.keepalive().unwrap());
        assert!(accepted.nodelay().unwrap());
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
    }
}
