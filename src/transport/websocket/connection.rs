//! One connection of the WebSocket port: hyper reads and answers its HTTP request, and an
//! accepted upgrade becomes a STOMP session on the same task, so the connection keeps the
//! slot the accept loop admitted it with until the session ends.

use std::convert::Infallible;
use std::future::ready;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::handshake::{self, Route};
use super::{REFUSAL_TIMEOUT, Settings, Stream, WRITE_TIMEOUT, answer, http_server, stream};
use crate::session::{self, PeerInfo, SessionContext, ShutdownSignal};

/// An upgrade the service answered 101 to, waiting for hyper to hand the socket over.
struct Accepted {
    upgrade: OnUpgrade,
    path: String,
    subprotocol: Option<&'static str>,
}

/// Serves one admitted connection (already through TLS on a wss acceptor): its request, and
/// the STOMP session if the request was an accepted upgrade.
pub async fn serve<S: Stream>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<SessionContext>,
    settings: Arc<Settings>,
    mut shutdown: ShutdownSignal,
    certificate_user: Option<String>,
) {
    let accepted: Arc<Mutex<Option<Accepted>>> = Arc::default();
    let service = {
        let accepted = Arc::clone(&accepted);
        let settings = Arc::clone(&settings);
        service_fn(move |mut request: Request<Incoming>| {
            let response = match handshake::route(&request, &settings) {
                Route::Answer(response) => {
                    tracing::debug!(%peer, status = response.status().as_u16(), "http answer");
                    response
                }
                Route::Upgrade(subprotocol) => {
                    let response = handshake::switching_protocols(&request, subprotocol);
                    let path = request.uri().path().to_string();
                    let upgrade = hyper::upgrade::on(&mut request);
                    *accepted.lock() = Some(Accepted {
                        upgrade,
                        path,
                        subprotocol,
                    });
                    response
                }
            };
            ready(Ok::<_, Infallible>(response))
        })
    };
    let http = http_server(settings.head_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    // hyper bounds the head itself (header timeout); this bounds the whole exchange, so an
    // answer written to a client that does not read cannot hold the connection either.
    let served = tokio::select! {
        _ = shutdown.wait() => return,
        served = timeout(settings.head_timeout + WRITE_TIMEOUT, http) => served,
    };
    match served {
        Ok(Ok(())) => {}
        // A head too large or not HTTP (hyper answered 431 or 400), not sent in time (dropped
        // unanswered), or a client gone.
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http request failed"),
        Err(_) => tracing::debug!(%peer, "http answer not taken in time"),
    }
    let taken = accepted.lock().take();
    let Some(Accepted {
        upgrade,
        path,
        subprotocol,
    }) = taken
    else {
        return;
    };
    // Resolved by now: hyper fulfils it when it has written the 101 (or fails it if it could
    // not), before the connection future above returns.
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "websocket upgrade failed");
            return;
        }
    };
    tracing::debug!(%peer, %path, ?subprotocol, "websocket upgraded");
    // Bytes the client sent right after its head (it need not wait for our 101) are held by
    // the upgraded socket and read first.
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(settings.ws_config),
    )
    .await;
    let (source, sink) = stream::split(ws, settings.binary);
    session::serve_with(
        source,
        sink,
        ctx,
        shutdown,
        PeerInfo {
            addr: peer,
            certificate_user,
        },
    )
    .await;
}

/// Answers a connection over the connection limits 503 with the reason, once its request
/// head is in, and closes it; at most [`REFUSAL_TIMEOUT`] in all.
pub async fn refuse(stream: TcpStream, peer: SocketAddr, http: http1::Builder, text: String) {
    let service = service_fn(move |_request: Request<Incoming>| {
        ready(Ok::<_, Infallible>(answer::text(
            StatusCode::SERVICE_UNAVAILABLE,
            text.clone(),
        )))
    });
    let served = timeout(
        REFUSAL_TIMEOUT,
        http.serve_connection(TokioIo::new(stream), service),
    )
    .await;
    tracing::debug!(%peer, ?served, "refused connection answered");
}
