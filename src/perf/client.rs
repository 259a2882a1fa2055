//! The load generator's STOMP client: one TCP connection, framed with the broker's own codec
//! ([`Decoder`] in, [`FrameEncoder`] out). Writes are batched: callers encode many frames
//! into [`Conn::out`] and send them with one [`Conn::flush`].

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::inbound::{self, Inbound, Kind, Scanned};
use super::{Common, PerfError};
use crate::stomp::{Command, Decoded, Decoder, Frame, FrameEncoder, Limits, Version};

/// How long a connect, a handshake or a single awaited reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// One client connection to the broker under test.
pub struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    inbuf: BytesMut,
    decoder: Decoder,
    /// Frames encoded but not yet written; sent by [`Conn::flush`].
    pub out: BytesMut,
    /// The version the broker chose.
    pub version: Version,
}

impl Conn {
    /// Opens a TCP connection and performs the CONNECT/CONNECTED handshake with
    /// heart-beats off, so idle connections stay open without traffic.
    pub async fn open(common: &Common) -> Result<Conn, PerfError> {
        let addr = format!("{}:{}", common.host, common.port);
        let stream = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| PerfError::msg(format!("connecting to {addr} timed out")))?
            .map_err(|e| PerfError::io(format!("cannot connect to {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut conn = Conn {
            rd,
            wr,
            inbuf: BytesMut::with_capacity(64 * 1024),
            decoder: Decoder::new(Limits::default()),
            out: BytesMut::with_capacity(64 * 1024),
            version: Version::V1_2,
        };
        let mut enc = FrameEncoder::begin(&mut conn.out, Version::V1_2, Command::Connect);
        enc.header("accept-version", "1.2,1.1");
        enc.header("host", &common.vhost);
        enc.header("heart-beat", "0,0");
        if let Some(login) = &common.login {
            enc.header("login", login);
        }
        if let Some(passcode) = &common.passcode {
            enc.header("passcode", passcode);
        }
        enc.finish(b"");
        conn.flush().await?;
        let reply = conn.next_frame(REPLY_TIMEOUT).await?;
        if reply.command != Command::Connected {
            return Err(PerfError::msg(format!(
                "expected CONNECTED, got {}",
                reply.command
            )));
        }
        conn.version = match reply.get("version").and_then(Version::parse) {
            Some(v) => v,
            None => Version::V1_0,
        };
        conn.decoder.set_version(conn.version);
        Ok(conn)
    }

    /// Writes everything encoded into [`Conn::out`], failing after [`REPLY_TIMEOUT`] without
    /// progress (a broker that stopped reading).
    pub async fn flush(&mut self) -> Result<(), PerfError> {
        if self.out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(REPLY_TIMEOUT, self.wr.write_all(&self.out)).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(self.explain_write_failure(e).await),
            Err(_) => Err(PerfError::msg(format!(
                "the broker accepted no data for {} s",
                REPLY_TIMEOUT.as_secs()
            ))),
        }
    }

    /// After a failed write the broker has usually sent an ERROR first: report that.
    async fn explain_write_failure(&mut self, e: std::io::Error) -> PerfError {
        match self.next_frame(Duration::from_secs(1)).await {
            Err(broker @ PerfError::Broker(_)) => broker,
            _ => PerfError::io("write to the broker failed", e),
        }
    }

    /// The next frame already buffered, if any; heart-beats are skipped and an ERROR frame
    /// becomes [`PerfError::Broker`].
    pub fn buffered_frame(&mut self) -> Result<Option<Frame>, PerfError> {
        loop {
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(Decoded::HeartBeat)) => continue,
                Ok(Some(Decoded::Frame(f))) if f.command == Command::Error => {
                    return Err(PerfError::broker(&f));
                }
                Ok(Some(Decoded::Frame(f))) => return Ok(Some(f)),
                Ok(None) => return Ok(None),
                Err(e) => return Err(PerfError::msg(format!("malformed frame from broker: {e}"))),
            }
        }
    }

    /// The next frame already buffered, found in place by [`inbound::scan`] (heart-beats
    /// skipped). A MESSAGE or RECEIPT stays at the start of the read buffer ([`Conn::read_and_out`]) until
    /// [`Conn::consume`] drops its `len` bytes: the hot path reads its headers there. Any other
    /// frame is decoded with the full decoder and handed back as [`Decoded::Frame`] (an ERROR
    /// as [`PerfError::Broker`]).
    pub fn scan_buffered(&mut self) -> Result<Option<Arrived>, PerfError> {
        loop {
            match inbound::scan(&self.inbuf) {
                Ok(Scanned::HeartBeat(n)) => self.inbuf.advance(n),
                Ok(Scanned::Incomplete) => return Ok(None),
                Ok(Scanned::Frame(f)) if f.kind != Kind::Other => {
                    return Ok(Some(Arrived::Scanned(f)));
                }
                Ok(Scanned::Frame(_)) => {
                    // Offsets the decoder kept from an earlier partial look belong to bytes
                    // the scanner may have consumed since.
                    self.decoder.reset();
                    return self.buffered_frame().map(|f| f.map(Arrived::Frame));
                }
                Err(e) => return Err(PerfError::msg(format!("malformed frame from broker: {e}"))),
            }
        }
    }

    /// The buffered bytes and the output buffer at once, so that a reply can be encoded
    /// from a frame still in the read buffer.
    pub fn read_and_out(&mut self) -> (&[u8], &mut BytesMut) {
        (&self.inbuf, &mut self.out)
    }

    /// Drops the first `n` buffered bytes (a scanned frame's `len`).
    pub fn consume(&mut self, n: usize) {
        self.inbuf.advance(n.min(self.inbuf.len()));
    }

    /// Reads more bytes from the socket (cancel-safe); an end of stream is an error.
    pub async fn fill(&mut self) -> Result<(), PerfError> {
        if self.inbuf.capacity() - self.inbuf.len() < 16 * 1024 {
            self.inbuf.reserve(64 * 1024);
        }
        match self.rd.read_buf(&mut self.inbuf).await {
            Ok(0) => Err(PerfError::msg("the broker closed the connection")),
            Ok(_) => Ok(()),
            Err(e) => Err(PerfError::io("read from the broker failed", e)),
        }
    }

    /// The next frame, waiting at most `timeout` for it.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<Frame, PerfError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.buffered_frame()? {
                return Ok(f);
            }
            tokio::time::timeout_at(deadline, self.fill())
                .await
                .map_err(|_| {
                    PerfError::msg(format!(
                        "no frame from the broker within {} s",
                        timeout.as_secs()
                    ))
                })??;
        }
    }

    /// Waits for the RECEIPT `id`, passing any other frame to `other` (e.g. MESSAGEs that
    /// arrive meanwhile on a consumer connection).
    pub async fn wait_receipt(
        &mut self,
        id: &str,
        mut other: impl FnMut(Frame),
    ) -> Result<(), PerfError> {
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next_frame(left).await.map_err(|e| match e {
                PerfError::Msg(m) => PerfError::msg(format!("waiting for receipt {id}: {m}")),
                other => other,
            })?;
            if f.command == Command::Receipt && f.get("receipt-id") == Some(id) {
                return Ok(());
            }
            other(f);
        }
    }

    /// Sends DISCONNECT with a receipt and waits for it (so that every earlier frame, acks
    /// included, has been processed), then closes.
    pub async fn disconnect(mut self, mut other: impl FnMut(Frame)) -> Result<(), PerfError> {
        let mut enc = FrameEncoder::begin(&mut self.out, self.version, Command::Disconnect);
        enc.header("receipt", "bye");
        enc.finish(b"");
        self.flush().await?;
        self.wait_receipt("bye", &mut other).await?;
        let _ = self.wr.shutdown().await;
        Ok(())
    }

    /// Encodes a SUBSCRIBE with a receipt, sends it and waits for the receipt.
    pub async fn subscribe(
        &mut self,
        destination: &str,
        id: &str,
        ack: &str,
        extra: &[(String, String)],
    ) -> Result<(), PerfError> {
        let mut enc = FrameEncoder::begin(&mut self.out, self.version, Command::Subscribe);
        enc.header("destination", destination);
        enc.header("id", id);
        enc.header("ack", ack);
        enc.header("receipt", "sub");
        for (k, v) in extra {
            enc.header(k, v);
        }
        enc.finish(b"");
        self.flush().await?;
        self.wait_receipt("sub", |_| {}).await
    }

    /// Turns the connection into a blocking socket, for a producer on its own OS thread
    /// that needs precise sleeps. Fails if bytes were already buffered for reading.
    pub fn into_std(mut self) -> Result<StdConn, PerfError> {
        // EOLs after a frame's NUL are allowed (ActiveMQ sends one after CONNECTED): not a frame.
        let eols = self
            .inbuf
            .iter()
            .take_while(|b| matches!(b, b'\n' | b'\r'))
            .count();
        let _ = self.inbuf.split_to(eols);
        if !self.inbuf.is_empty() {
            return Err(PerfError::msg("unexpected frame from the broker"));
        }
        let stream = self
            .rd
            .reunite(self.wr)
            .map_err(|_| PerfError::msg("cannot reunite socket halves"))?
            .into_std()
            .map_err(|e| PerfError::io("cannot detach the socket", e))?;
        stream
            .set_nonblocking(false)
            .map_err(|e| PerfError::io("cannot make the socket blocking", e))?;
        Ok(StdConn {
            stream,
            inbuf: self.inbuf,
            decoder: self.decoder,
            out: self.out,
            version: self.version,
        })
    }
}

/// What [`Conn::scan_buffered`] found: a frame scanned in place, or one decoded in full.
pub enum Arrived {
    /// A MESSAGE or RECEIPT, still at the start of the read buffer.
    Scanned(Inbound),
    /// Any other frame, decoded and consumed.
    Frame(Frame),
}

/// A blocking connection (see [`Conn::into_std`]).
pub struct StdConn {
    stream: std::net::TcpStream,
    inbuf: BytesMut,
    decoder: Decoder,
    /// Frames encoded but not yet written.
    pub out: BytesMut,
    /// The negotiated version.
    pub version: Version,
}

impl StdConn {
    /// Writes [`StdConn::out`] (blocking, with a write timeout).
    pub fn flush(&mut self) -> Result<(), PerfError> {
        use std::io::Write;
        if self.out.is_empty() {
            return Ok(());
        }
        let _ = self.stream.set_write_timeout(Some(REPLY_TIMEOUT));
        self.stream
            .write_all(&self.out)
            .map_err(|e| PerfError::io("write to the broker failed", e))?;
        self.out.clear();
        Ok(())
    }

    /// Blocks until RECEIPT `id` arrives (or an ERROR, or the timeout).
    pub fn wait_receipt(&mut self, id: &str) -> Result<(), PerfError> {
        use std::io::Read;
        let _ = self.stream.set_read_timeout(Some(REPLY_TIMEOUT));
        let mut chunk = [0u8; 8192];
        loop {
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(Decoded::Frame(f))) if f.command == Command::Error => {
                    return Err(PerfError::broker(&f));
                }
                Ok(Some(Decoded::Frame(f)))
                    if f.command == Command::Receipt && f.get("receipt-id") == Some(id) =>
                {
                    return Ok(());
                }
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return Err(PerfError::msg(format!("malformed frame from broker: {e}"))),
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| PerfError::io(format!("waiting for receipt {id}"), e))?;
            if n == 0 {
                return Err(PerfError::msg("the broker closed the connection"));
            }
            self.inbuf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}
