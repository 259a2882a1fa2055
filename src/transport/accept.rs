//! The accept loop every transport shares: take a socket, admit it against the connection
//! limits (or refuse it the transport's way), count it for graceful shutdown, and serve it on
//! its own task until it closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::server::{AcceptorContext, ShutdownSignal};

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
    S: Fn(TcpStream, SocketAddr, Arc<AcceptorContext>, ShutdownSignal) -> F,
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
                            tracing::info!(%peer, acceptor = %ctx.acceptor.name, reason = %why, "connection refused");
                            refuse(stream, peer, why);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let guard = ctx.track_connection();
                    tracing::debug!(%peer, acceptor = %ctx.acceptor.name, "connection accepted");
                    let served = serve(stream, peer, Arc::clone(&ctx), shutdown.clone());
                    tokio::spawn(async move {
                        served.await;
                        drop(guard);
                        drop(admission);
                    });
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
