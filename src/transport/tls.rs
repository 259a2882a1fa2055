//! STOMP over TLS (`stomp+ssl`): rustls on top of the TCP accept loop. The TLS stream is split
//! into halves that implement [`ByteSource`] and [`ByteSink`], so the one session driver serves
//! it. Optional client certificates (signed by `client-ca`) name a user by their CN.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::accept::accept_loop;
use super::context::AcceptorContext;
use crate::config::{ClientAuth, TlsConfig};
use crate::session::{self, ByteSink, ByteSource, PeerInfo, SessionContext, ShutdownSignal};

/// Reading half of a server-side TLS connection.
pub struct TlsSource(ReadHalf<TlsStream<TcpStream>>);

/// Writing half of a server-side TLS connection.
pub struct TlsSink(WriteHalf<TlsStream<TcpStream>>);

impl ByteSource for TlsSource {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        self.0.read_buf(buf).await
    }
}

impl ByteSink for TlsSink {
    async fn write_chunks(&mut self, chunks: &[Bytes]) -> io::Result<()> {
        // rustls gathers the plaintext into records; one flush sends the batch.
        for chunk in chunks {
            self.0.write_all(chunk).await?;
        }
        self.0.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        AsyncWriteExt::shutdown(&mut self.0).await
    }
}

/// Builds the acceptor from `[acceptors.tls]`. An error names the key (`cert`, `key`,
/// `client-ca`) and the reason, file path included.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, (&'static str, String)> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let certs = read_certs(&tls.cert).map_err(|e| ("cert", e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        (
            "key",
            format!("{}: no usable private key: {e}", tls.key.display()),
        )
    })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ("cert", e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca).map_err(|e| ("client-ca", e))? {
                roots
                    .add(cert)
                    .map_err(|e| ("client-ca", format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match tls.client_auth.unwrap_or(ClientAuth::Optional) {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| ("client-ca", format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| ("key", format!("does not fit the certificate: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS client that trusts only `ca` and presents `cert` and `key` (a cluster node calling
/// its peers, `[cluster.tls]`). An error names the key and the reason, file path included.
pub fn connector(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<tokio_rustls::TlsConnector, (&'static str, String)> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in read_certs(ca).map_err(|e| ("ca", e))? {
        roots
            .add(c)
            .map_err(|e| ("ca", format!("{}: {e}", ca.display())))?;
    }
    let chain = read_certs(cert).map_err(|e| ("cert", e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            "key",
            format!("{}: no usable private key: {e}", key.display()),
        )
    })?;
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("cert", e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| ("key", format!("does not fit the certificate: {e}")))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// The CN of the client's verified certificate, if it sent one.
fn client_user(stream: &TlsStream<TcpStream>) -> Option<String> {
    let der = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Accepts TLS connections until shutdown. The handshake must finish within the acceptor's
/// handshake timeout; a client that does not speak TLS fails the handshake and is closed.
/// A connection over the limits is closed before the handshake, so refusing costs no crypto.
pub async fn run(
    listener: TcpListener,
    tls: TlsAcceptor,
    ctx: Arc<AcceptorContext>,
    shutdown: ShutdownSignal,
) {
    accept_loop(
        listener,
        ctx,
        shutdown,
        |_, _, _| {},
        move |stream, peer, ctx, shutdown| serve(stream, peer, tls.clone(), ctx, shutdown),
    )
    .await
}

/// Completes the server side of a TLS handshake within `limit`, returning the stream and the
/// user its client certificate names; `None` (logged) when the handshake fails or times out.
pub async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<(TlsStream<TcpStream>, Option<String>)> {
    match tokio::time::timeout(limit, tls.accept(stream)).await {
        Ok(Ok(s)) => {
            let user = client_user(&s);
            tracing::debug!(%peer, certificate_user = ?user, "TLS handshake done");
            Some((s, user))
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    ctx: Arc<SessionContext>,
    shutdown: ShutdownSignal,
) {
    let Some((stream, certificate_user)) =
        handshake(&tls, stream, peer, ctx.handshake_timeout).await
    else {
        return;
    };
    let (r, w) = tokio::io::split(stream);
    let info = PeerInfo {
        addr: peer,
        certificate_user,
    };
    session::serve_with(TlsSource(r), TlsSink(w), ctx, shutdown, info).await;
}
