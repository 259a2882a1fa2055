//! `wrenmq perf echo-server`: the ceiling. A STOMP forwarder that does only framing, as fast
//! as one thread can, so that `perf` against it shows the most any STOMP broker could reach on
//! this machine with this load tool. If WrenMQ ever beats it, the ceiling is wrong.
//!
//! What it does: CONNECT/STOMP gets CONNECTED (1.2, heart-beats off); SUBSCRIBE and
//! UNSUBSCRIBE keep subscriptions by destination; each SEND becomes a MESSAGE (subscription,
//! message-id, `ack` when the subscription acknowledges, the SEND's own headers copied as
//! they came, content-length) for one subscription of a queue in turn, or for every
//! subscription of a `/topic/...` destination; any frame's `receipt` gets a RECEIPT written
//! after the MESSAGEs that frame caused. ACK, NACK and transactions are accepted and ignored,
//! and a SEND to a destination nobody subscribes to is dropped: nothing is stored, it is a
//! ceiling, not a broker. A malformed frame gets an ERROR, then the connection is closed.
//!
//! Why it is the ceiling: one OS thread on a bare epoll loop (`mio`), no runtime, no locks,
//! no channels; frames are scanned in place in each connection's read buffer (no `Frame`,
//! no allocation per message), each MESSAGE is appended straight into its target's output
//! buffer, and every connection with output is written once per loop iteration, so a
//! socket write carries as many frames as arrived meanwhile. Memory is bounded by
//! back-pressure (see `forward`): producers stop being read while a connection has more than
//! 4 MiB waiting; nothing is ever dropped for a subscribed destination.

mod conn;
mod encode;
mod forward;
mod routes;
pub(crate) mod scan;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use super::PerfError;
use forward::{Forwarder, LISTENER, WAKER};

pub use forward::OUT_BOUND;

/// A bound echo server, not yet running: bind first, so the caller knows the address (port 0
/// picks a free one) before serving starts.
pub struct EchoServer {
    forwarder: Forwarder,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl EchoServer {
    /// Listens on `host:port`.
    pub fn bind(host: &str, port: u16) -> Result<EchoServer, PerfError> {
        let what = || format!("cannot listen on {host}:{port}");
        let listener =
            std::net::TcpListener::bind((host, port)).map_err(|e| PerfError::io(what(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| PerfError::io(what(), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| PerfError::io(what(), e))?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new().map_err(|e| PerfError::io("cannot create an epoll set", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| PerfError::io(what(), e))?;
        let waker = Waker::new(poll.registry(), WAKER)
            .map_err(|e| PerfError::io("cannot create the echo server's waker", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        Ok(EchoServer {
            forwarder: Forwarder::new(poll, listener, Arc::clone(&stop)),
            waker: Arc::new(waker),
            stop,
            addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on the calling thread until stopped (through an [`EchoHandle`], so from the
    /// command line: until the process is killed). Fails only if epoll itself fails.
    pub fn run(self) -> io::Result<()> {
        let EchoServer {
            forwarder, waker, ..
        } = self;
        let result = forwarder.run();
        drop(waker);
        result
    }

    /// Serves on a new thread of its own; the handle stops it.
    pub fn spawn(self) -> Result<EchoHandle, PerfError> {
        let (waker, stop, addr) = (Arc::clone(&self.waker), Arc::clone(&self.stop), self.addr);
        let thread = std::thread::Builder::new()
            .name("wrenmq-perf-echo".into())
            .spawn(move || self.run())
            .map_err(|e| PerfError::io("cannot start the echo server's thread", e))?;
        Ok(EchoHandle {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }
}

/// An echo server running on its own thread (see [`EchoServer::spawn`]); dropping it stops
/// it and waits for the thread, closing every connection.
pub struct EchoHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl EchoHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.shut()
    }

    fn shut(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        self.waker.wake()?;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the echo server's thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for EchoHandle {
    fn drop(&mut self) {
        let _ = self.shut();
    }
}
