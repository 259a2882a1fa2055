//! `perf echo-server`: the smallest STOMP "broker" the load tool can run against. It answers
//! CONNECT and receipts, and turns every SEND straight into a MESSAGE for the single
//! subscriber (the latest SUBSCRIBE), with no queue and no acknowledgement tracking (ACKs
//! are ignored). Running `perf queue` or `perf latency` against it shows the tool's own
//! ceiling. Messages sent while nobody is subscribed are dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::PerfError;
use crate::stomp::{Command, Decoded, Decoder, Frame, FrameEncoder, Limits, Version};

/// Chunks of encoded frames waiting for a connection's writer.
const CHANNEL_DEPTH: usize = 256;

/// The subscriber every MESSAGE goes to.
struct Subscriber {
    conn: u64,
    id: ByteString,
    ack_header: bool,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
struct Hub {
    subscriber: Mutex<Option<Arc<Subscriber>>>,
    next_conn: AtomicU64,
    next_message: AtomicU64,
}

impl Hub {
    fn current(&self) -> Option<Arc<Subscriber>> {
        match self.subscriber.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, s: Option<Arc<Subscriber>>, only_if_conn: Option<u64>) {
        let mut g = match self.subscriber.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if only_if_conn.is_none_or(|c| g.as_ref().is_some_and(|cur| cur.conn == c)) {
            *g = s;
        }
    }
}

/// Binds the echo server's listener.
pub async fn listen(host: &str, port: u16) -> Result<TcpListener, PerfError> {
    TcpListener::bind((host, port))
        .await
        .map_err(|e| PerfError::io(format!("cannot listen on {host}:{port}"), e))
}

/// Serves connections until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let hub = Arc::new(Hub::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let hub = Arc::clone(&hub);
                tokio::spawn(async move {
                    let conn = hub.next_conn.fetch_add(1, Ordering::Relaxed);
                    connection(stream, hub.clone(), conn).await;
                    hub.set(None, Some(conn));
                });
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

async fn connection(stream: TcpStream, hub: Arc<Hub>, conn: u64) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let writer = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(first) = rx.recv().await {
            chunks.push(first);
            while chunks.len() < 64 {
                match rx.try_recv() {
                    Ok(c) => chunks.push(c),
                    Err(_) => break,
                }
            }
            for c in chunks.drain(..) {
                if wr.write_all(&c).await.is_err() {
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut decoder = Decoder::new(Limits::default());
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut own = BytesMut::with_capacity(4 * 1024);
    let mut messages = BytesMut::with_capacity(64 * 1024);
    let mut scratch = String::new();
    'read: loop {
        if inbuf.capacity() - inbuf.len() < 16 * 1024 {
            inbuf.reserve(64 * 1024);
        }
        match rd.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let target = hub.current();
        let mut close = false;
        loop {
            let frame = match decoder.decode(&mut inbuf) {
                Ok(Some(Decoded::Frame(f))) => f,
                Ok(Some(Decoded::HeartBeat)) => continue,
                Ok(None) => break,
                Err(e) => {
                    let mut enc = FrameEncoder::begin(&mut own, Version::V1_2, Command::Error);
                    enc.header("message", &e.to_string());
                    enc.finish(b"");
                    close = true;
                    break;
                }
            };
            match frame.command {
                Command::Connect | Command::Stomp => {
                    let mut enc = FrameEncoder::begin(&mut own, Version::V1_2, Command::Connected);
                    enc.header("version", "1.2");
                    enc.header("server", "wrenmq-perf-echo");
                    enc.header("heart-beat", "0,0");
                    enc.finish(b"");
                }
                Command::Send => {
                    if let Some(sub) = &target {
                        encode_message(&frame, sub, &hub, &mut messages, &mut scratch);
                    }
                }
                Command::Subscribe => {
                    let id = frame.get("id").unwrap_or("0");
                    hub.set(
                        Some(Arc::new(Subscriber {
                            conn,
                            id: id.into(),
                            ack_header: frame.get("ack").is_some_and(|a| a != "auto"),
                            tx: tx.clone(),
                        })),
                        None,
                    );
                }
                Command::Unsubscribe => hub.set(None, Some(conn)),
                Command::Disconnect => close = true,
                _ => {}
            }
            if let Some(r) = frame.get("receipt") {
                // The MESSAGEs of earlier SENDs must go out before this receipt.
                if !messages.is_empty()
                    && let Some(sub) = &target
                    && sub.tx.send(messages.split().freeze()).await.is_err()
                {
                    messages.clear();
                }
                let mut enc = FrameEncoder::begin(&mut own, Version::V1_2, Command::Receipt);
                enc.header("receipt-id", r);
                enc.finish(b"");
            }
            if close {
                break;
            }
        }
        if !messages.is_empty() {
            let chunk = messages.split().freeze();
            if let Some(sub) = &target {
                let _ = sub.tx.send(chunk).await;
            }
        }
        if !own.is_empty() && tx.send(own.split().freeze()).await.is_err() {
            break 'read;
        }
        if close {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn encode_message(
    frame: &Frame,
    sub: &Subscriber,
    hub: &Hub,
    out: &mut BytesMut,
    scratch: &mut String,
) {
    use std::fmt::Write;
    let mut enc = FrameEncoder::begin(out, Version::V1_2, Command::Message);
    enc.header("subscription", &sub.id);
    scratch.clear();
    let _ = write!(
        scratch,
        "{}",
        hub.next_message.fetch_add(1, Ordering::Relaxed)
    );
    enc.header("message-id", scratch);
    if sub.ack_header {
        enc.header("ack", scratch);
    }
    for (k, v) in frame.headers.iter() {
        if !matches!(
            k,
            "receipt" | "content-length" | "transaction" | "subscription" | "message-id"
        ) {
            enc.header(k, v);
        }
    }
    enc.finish(&frame.body);
}
