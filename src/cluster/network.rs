//! The raft transport between nodes: TCP, one request and one response at a time per
//! connection, each a length-prefixed postcard frame.
//!
//! ```text
//! [length: u32 little-endian][postcard of RpcRequest / RpcResponse]
//! ```
//!
//! TCP, or mutual TLS when `[cluster.tls]` is set ([`PeerTls`]: every node shows its
//! certificate and checks its peer's against the cluster's CA, both ways), and postcard
//! because both ends are WrenMQ of the same build: no schema to negotiate, and postcard is
//! already how the journal encodes records. A frame longer than
//! [`MAX_FRAME`] is refused before anything is allocated for it, so a stray client on the
//! cluster port cannot make a node reserve memory. openraft keeps one client per peer for
//! replication and makes short-lived ones for votes; a client reconnects lazily after any
//! error, and a failed call is reported as unreachable so openraft backs off.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::types::{Node, NodeId, Raft, TypeConfig};

/// The largest frame either side accepts: a full append of [`super::MAX_PAYLOAD_ENTRIES`]
/// batches, or a snapshot chunk, fits with room to spare.
pub const MAX_FRAME: usize = 256 << 20;

/// How long a peer may take over the TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS on the peer port: the acceptor for calls in, the connector for calls out, both with
/// this node's certificate and the cluster's CA (built by the server from `[cluster.tls]`).
#[derive(Clone)]
pub struct PeerTls {
    /// Accepts peers whose certificate the CA signed.
    pub acceptor: TlsAcceptor,
    /// Calls peers, checking their certificate names the host called.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

/// A connection to or from a peer, TCP or TLS.
trait PeerIo: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> PeerIo for T {}
type PeerStream = Box<dyn PeerIo>;
/// An open call channel to a peer: buffered halves of one stream.
type Connection = (
    BufReader<ReadHalf<PeerStream>>,
    BufWriter<WriteHalf<PeerStream>>,
);

/// A call from one node to another.
#[derive(Debug, Serialize, Deserialize)]
enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Whether the peer holds any log (or snapshot): asked by a node with an empty log
    /// before it forms the cluster (see [`peers_logs`]). Last, so older variants keep
    /// their numbers on the wire.
    HasLog,
}

/// Its answer: what the peer's raft returned.
#[derive(Debug, Serialize, Deserialize)]
enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    HasLog(bool),
}

async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> io::Result<()> {
    let bytes = postcard::to_stdvec(value).map_err(io::Error::other)?;
    if bytes.len() > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {} bytes is over the {MAX_FRAME}-byte limit",
            bytes.len()
        )));
    }
    w.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    w.write_all(&bytes).await?;
    w.flush().await
}

async fn read_frame<R: AsyncReadExt + Unpin, T: serde::de::DeserializeOwned>(
    r: &mut R,
) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    postcard::from_bytes(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Serves raft calls from the other nodes on `listener`, until this future is dropped
/// (aborted): the connections are served by tasks it owns, so they end with it and a
/// stopped node stops answering at once instead of replying "raft stopped" for as long as
/// a peer keeps its connection.
pub async fn serve(listener: TcpListener, raft: Raft, tls: Option<TlsAcceptor>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow with churn.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "cluster listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let stream: PeerStream = match tls {
                None => Box::new(stream),
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(s)) => Box::new(s),
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "cluster peer refused: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "cluster peer refused: no TLS handshake in time");
                        return;
                    }
                },
            };
            if let Err(e) = serve_connection(stream, raft).await
                && e.kind() != io::ErrorKind::UnexpectedEof
            {
                tracing::debug!(%peer, error = %e, "cluster connection closed");
            }
        });
    }
}

async fn serve_connection(stream: PeerStream, raft: Raft) -> io::Result<()> {
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    loop {
        let req: RpcRequest = read_frame(&mut r).await?;
        let resp = match req {
            RpcRequest::AppendEntries(rpc) => {
                RpcResponse::AppendEntries(raft.append_entries(rpc).await)
            }
            RpcRequest::Vote(rpc) => RpcResponse::Vote(raft.vote(rpc).await),
            RpcRequest::InstallSnapshot(rpc) => {
                RpcResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            RpcRequest::HasLog => RpcResponse::HasLog(has_log(&raft)),
        };
        write_frame(&mut w, &resp).await?;
    }
}

/// Whether this node holds any of the cluster's history: a log entry (the one `initialize`
/// writes included), a snapshot, or a vote.
pub fn has_log(raft: &Raft) -> bool {
    let m = raft.metrics();
    let m = m.borrow();
    m.last_log_index.is_some() || m.snapshot.is_some() || m.current_term > 0
}

/// What the peers say of their logs, asked at once with `ttl` each: `Some(true)` for a peer
/// that holds history, `Some(false)` for one that holds none, `None` for one that did not
/// answer.
pub async fn peers_logs(
    peers: &[(NodeId, String)],
    tls: Option<&TlsConnector>,
    ttl: Duration,
) -> Vec<Option<bool>> {
    let calls = peers.iter().map(|(id, addr)| async move {
        let mut c = PeerClient {
            target: *id,
            addr: addr.clone(),
            tls: tls.cloned(),
            conn: None,
        };
        match c.call(RpcRequest::HasLog, ttl).await {
            Ok(RpcResponse::HasLog(b)) => Some(b),
            _ => None,
        }
    });
    futures_util::future::join_all(calls).await
}

/// Makes a [`PeerClient`] for each peer openraft talks to.
#[derive(Clone, Default)]
pub struct Network {
    tls: Option<TlsConnector>,
}

impl Network {
    /// Calls peers over TLS with `tls`, else plain TCP.
    pub fn new(tls: Option<TlsConnector>) -> Network {
        Network { tls }
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.tls.is_some() {
            "Network(tls)"
        } else {
            "Network(tcp)"
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            conn: None,
        }
    }
}

/// One node's connection to one peer.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    tls: Option<TlsConnector>,
    conn: Option<Connection>,
}

impl PeerClient {
    /// Sends `req` and waits for the answer, within `ttl`; any failure drops the connection
    /// so the next call starts on a fresh one (a half-read response must not be taken for
    /// the next call's).
    async fn call(&mut self, req: RpcRequest, ttl: Duration) -> io::Result<RpcResponse> {
        let res = tokio::time::timeout(ttl, async {
            if self.conn.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                let _ = s.set_nodelay(true);
                let s: PeerStream = match &self.tls {
                    None => Box::new(s),
                    Some(tls) => Box::new(tls.connect(server_name(&self.addr)?, s).await?),
                };
                let (r, w) = tokio::io::split(s);
                self.conn = Some((BufReader::new(r), BufWriter::new(w)));
            }
            let Some((r, w)) = self.conn.as_mut() else {
                return Err(io::Error::other("not connected"));
            };
            write_frame(w, &req).await?;
            read_frame(r).await
        })
        .await;
        let res = match res {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer from node {} at {} within {ttl:?}",
                    self.target, self.addr
                ),
            )),
        };
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    fn unreachable<E: std::error::Error>(&self, e: io::Error) -> RPCError<NodeId, Node, E> {
        if e.kind() == io::ErrorKind::InvalidData {
            RPCError::Network(NetworkError::new(&e))
        } else {
            RPCError::Unreachable(Unreachable::new(&e))
        }
    }

    /// The peer's answer to a call as openraft wants it: `pick` takes the call's own kind of
    /// response out of the envelope (another kind means the stream is out of step).
    #[allow(clippy::result_large_err)] // openraft's own error type, as its trait returns it
    fn answer<T, E: std::error::Error>(
        &self,
        r: io::Result<RpcResponse>,
        pick: impl FnOnce(RpcResponse) -> Option<Result<T, E>>,
    ) -> Result<T, RPCError<NodeId, Node, E>> {
        match r.map(pick) {
            Ok(Some(Ok(r))) => Ok(r),
            Ok(Some(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(None) => {
                let e = io::Error::other(format!("node {} answered a different call", self.target));
                Err(RPCError::Network(NetworkError::new(&e)))
            }
            Err(e) => Err(self.unreachable(e)),
        }
    }
}

/// The name a peer's certificate must carry: the host of its address (`[::1]:7001` too).
fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: not a name a certificate can carry: {e}"),
        )
    })
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let r = self
            .call(RpcRequest::AppendEntries(rpc), option.hard_ttl())
            .await;
        self.answer(r, |x| match x {
            RpcResponse::AppendEntries(a) => Some(a),
            _ => None,
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let r = self
            .call(RpcRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await;
        self.answer(r, |x| match x {
            RpcResponse::InstallSnapshot(a) => Some(a),
            _ => None,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let r = self.call(RpcRequest::Vote(rpc), option.hard_ttl()).await;
        self.answer(r, |x| match x {
            RpcResponse::Vote(a) => Some(a),
            _ => None,
        })
    }
}
