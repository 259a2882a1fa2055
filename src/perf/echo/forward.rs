//! The echo server's event loop: one thread, one epoll set (mio, edge-triggered). Each
//! iteration waits for readiness, serves the connections that have bytes (scanning their
//! frames in place and appending the frames they cause to the target connections' output
//! buffers), then writes every connection with output once.
//!
//! Back-pressure: once any connection has more than [`OUT_BOUND`] bytes waiting, no
//! connection that has sent a SEND is read (their frames stay where they are, in their read
//! buffer or in the kernel) until it is back under [`OUT_RESUME`]. Connections that never
//! sent a SEND are still read, so that a consumer whose ACKs we stopped reading can never
//! wedge itself; they stop being read only past [`SELF_BOUND`], which MESSAGEs alone cannot
//! reach. So memory stays bounded and no frame to a subscribed destination is dropped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, Read1};
use super::encode;
use super::routes::{Routes, Sub};
use super::scan::{self, Command, Frame, Malformed, Scan, Span};

/// The listener's token.
pub const LISTENER: Token = Token(0);
/// The waker's token (set to stop the loop).
pub const WAKER: Token = Token(1);
/// Connection slot `i` has token `i + FIRST_CONN`.
const FIRST_CONN: usize = 2;

/// Pending output over which producers stop being read.
pub const OUT_BOUND: usize = 4 * 1024 * 1024;
/// Pending output under which they are read again (half, so reading resumes with room for
/// a good batch rather than flapping at the bound).
const OUT_RESUME: usize = OUT_BOUND / 2;
/// Pending output over which even a connection that never sent a SEND stops being read:
/// producers stop at [`OUT_BOUND`] plus one MESSAGE, so only frames a client makes us write
/// to itself (receipts, while it does not read) can get past this.
const SELF_BOUND: usize = 2 * OUT_BOUND + 2 * scan::MAX_HEADER_BLOCK + scan::MAX_BODY;
/// Subscriptions one connection may hold.
const MAX_SUBS: usize = 65_536;
/// Wait before accepting again after accept failed (out of file descriptors, say).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The event loop's state.
pub struct Forwarder {
    poll: Poll,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    routes: Routes,
    next_message_id: u64,
    /// Connections whose pending output is over [`OUT_BOUND`] (until under [`OUT_RESUME`]).
    over_bound: usize,
    /// Connections to serve in the next iteration.
    ready: Vec<usize>,
    /// Connections not read because of back-pressure.
    paused: Vec<usize>,
    /// Connections with output to write at the end of this iteration.
    dirty: Vec<usize>,
    /// The header runs a MESSAGE copies from the SEND being handled.
    copy: Vec<Span>,
    accept_retry: bool,
}

fn slot(conns: &mut [Option<Conn>], c: usize) -> Option<&mut Conn> {
    conns.get_mut(c).and_then(Option::as_mut)
}

/// Puts `c` on the list of connections to write, unless it is there already or waits for
/// its socket to drain.
fn mark_dirty(conn: &mut Conn, c: usize, dirty: &mut Vec<usize>) {
    if !conn.dirty && !conn.blocked {
        conn.dirty = true;
        dirty.push(c);
    }
}

/// Bookkeeping after frames were appended to `conn`'s output.
fn grew(conn: &mut Conn, c: usize, dirty: &mut Vec<usize>, over_bound: &mut usize) {
    mark_dirty(conn, c, dirty);
    if !conn.over && conn.pending() > OUT_BOUND {
        conn.over = true;
        *over_bound += 1;
    }
}

impl Forwarder {
    /// A loop over `listener`, registered with `poll` under [`LISTENER`], that returns once
    /// `stop` is set and the waker registered under [`WAKER`] is woken.
    pub fn new(poll: Poll, listener: TcpListener, stop: Arc<AtomicBool>) -> Forwarder {
        Forwarder {
            poll,
            listener,
            stop,
            conns: Vec::new(),
            free: Vec::new(),
            routes: Routes::default(),
            next_message_id: 0,
            over_bound: 0,
            ready: Vec::new(),
            paused: Vec::new(),
            dirty: Vec::new(),
            copy: Vec::new(),
            accept_retry: false,
        }
    }

    /// Runs until stopped; fails only if epoll itself does.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut serving = Vec::new();
        let mut flushing = Vec::new();
        loop {
            let timeout = if !self.ready.is_empty() {
                Some(Duration::ZERO)
            } else if self.accept_retry {
                Some(ACCEPT_RETRY)
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.accept_retry {
                self.accept();
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        if self.stop.load(Ordering::Acquire) {
                            return Ok(());
                        }
                    }
                    Token(t) => self.on_event(
                        t.wrapping_sub(FIRST_CONN),
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        ev.is_writable(),
                    ),
                }
            }
            std::mem::swap(&mut serving, &mut self.ready);
            for c in serving.drain(..) {
                self.serve(c);
            }
            std::mem::swap(&mut flushing, &mut self.dirty);
            for c in flushing.drain(..) {
                self.flush(c);
            }
            if self.over_bound == 0 {
                for c in std::mem::take(&mut self.paused) {
                    if let Some(conn) = slot(&mut self.conns, c) {
                        conn.paused = false;
                        if !conn.scheduled {
                            conn.scheduled = true;
                            self.ready.push(c);
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let c = match self.free.pop() {
                        Some(c) => c,
                        None => {
                            self.conns.push(None);
                            self.conns.len() - 1
                        }
                    };
                    let token = Token(c + FIRST_CONN);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, interest)
                        .is_err()
                    {
                        self.free.push(c);
                        continue;
                    }
                    if let Some(s) = self.conns.get_mut(c) {
                        *s = Some(Conn::new(stream));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_retry = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.accept_retry = true;
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, c: usize, readable: bool, writable: bool) {
        let Some(conn) = slot(&mut self.conns, c) else {
            return;
        };
        if writable {
            conn.blocked = false;
            if conn.pending() > 0 || conn.closing {
                mark_dirty(conn, c, &mut self.dirty);
            }
        }
        if readable {
            conn.read_ready = true;
            if !conn.scheduled && !conn.paused {
                conn.scheduled = true;
                self.ready.push(c);
            }
        }
    }

    /// Handles what `c` has buffered, then reads once and handles that; stays scheduled
    /// when the read filled the buffer (the rest comes next iteration, after the writes).
    fn serve(&mut self, c: usize) {
        let Some(conn) = slot(&mut self.conns, c) else {
            return;
        };
        conn.scheduled = false;
        if conn.closing || conn.paused || !self.process(c) {
            return;
        }
        let Some(conn) = slot(&mut self.conns, c) else {
            return;
        };
        if !conn.read_ready {
            return;
        }
        if !conn.producer && conn.pending() > SELF_BOUND {
            conn.paused = true;
            self.paused.push(c);
            return;
        }
        match conn.read() {
            Ok(Read1::Data { more }) => {
                conn.read_ready = more;
                if self.process(c)
                    && more
                    && let Some(conn) = slot(&mut self.conns, c)
                    && !conn.scheduled
                {
                    conn.scheduled = true;
                    self.ready.push(c);
                }
            }
            Ok(Read1::WouldBlock) => conn.read_ready = false,
            Ok(Read1::Eof) => self.begin_close(c),
            Err(_) => self.close(c),
        }
    }

    /// Handles every whole frame in `c`'s read buffer. False when `c` must not be read
    /// now: paused by back-pressure, or closing.
    fn process(&mut self, c: usize) -> bool {
        let Some(conn) = slot(&mut self.conns, c) else {
            return false;
        };
        let buf = std::mem::take(&mut conn.inbuf);
        let (mut start, end, mut nul_from) = (conn.start, conn.end, conn.nul_from);
        let mut need = conn.need;
        let mut copy = std::mem::take(&mut self.copy);
        let mut go = true;
        loop {
            let Some(conn) = slot(&mut self.conns, c) else {
                go = false;
                break;
            };
            if conn.producer && self.over_bound > 0 {
                conn.paused = true;
                self.paused.push(c);
                go = false;
                break;
            }
            let window = buf.get(start..end).unwrap_or_default();
            match scan::skip_eols(window) {
                Ok(n) => start += n,
                Err(m) => {
                    self.fail(c, m);
                    go = false;
                    break;
                }
            }
            let window = buf.get(start..end).unwrap_or_default();
            if window.is_empty() {
                break;
            }
            match scan::scan(window, nul_from, &mut copy) {
                Ok(Scan::Frame(f)) => {
                    (nul_from, need) = (0, 0);
                    start += f.len;
                    if !self.handle(c, window, &f, &copy) {
                        go = false;
                        break;
                    }
                }
                Ok(Scan::Incomplete {
                    nul_from: n,
                    need: size,
                }) => {
                    nul_from = n;
                    need = size.unwrap_or(0);
                    break;
                }
                Err(m) => {
                    self.fail(c, m);
                    go = false;
                    break;
                }
            }
        }
        self.copy = copy;
        if let Some(conn) = slot(&mut self.conns, c) {
            conn.inbuf = buf;
            (conn.start, conn.nul_from, conn.need) = (start, nul_from, need);
        }
        go
    }

    /// Acts on one frame scanned from `buf`; false when the connection is closing.
    fn handle(&mut self, c: usize, buf: &[u8], f: &Frame, copy: &[Span]) -> bool {
        let Some(conn) = slot(&mut self.conns, c) else {
            return false;
        };
        match f.command {
            Command::Connect => encode::connected(&mut conn.out),
            Command::Send => {
                conn.producer = true;
                let Some(dest) = f.destination else {
                    self.fail(c, Malformed("SEND without a destination"));
                    return false;
                };
                if let Some(d) = conn.route.resolve(&self.routes, dest.of(buf)) {
                    for sub in self.routes.targets(d) {
                        let id = self.next_message_id;
                        self.next_message_id += 1;
                        if let Some(t) = slot(&mut self.conns, sub.conn) {
                            encode::message(&mut t.out, sub, id, buf, copy, f.body);
                            grew(t, sub.conn, &mut self.dirty, &mut self.over_bound);
                        }
                    }
                }
            }
            Command::Subscribe => {
                let (Some(dest), Some(id)) = (f.destination, f.id) else {
                    self.fail(c, Malformed("SUBSCRIBE needs a destination and an id"));
                    return false;
                };
                let ack = match f.ack.map(|a| a.of(buf)) {
                    None | Some(b"auto") => false,
                    Some(b"client" | b"client-individual") => true,
                    Some(_) => {
                        self.fail(c, Malformed("unknown ack mode"));
                        return false;
                    }
                };
                let id = id.of(buf);
                if conn.subs.iter().any(|(i, _)| **i == *id) {
                    self.fail(c, Malformed("subscription id already in use"));
                    return false;
                }
                if conn.subs.len() >= MAX_SUBS {
                    self.fail(c, Malformed("too many subscriptions"));
                    return false;
                }
                let sub = Sub {
                    conn: c,
                    id: id.into(),
                    ack,
                };
                let d = self.routes.subscribe(dest.of(buf), sub);
                conn.subs.push((id.into(), d));
            }
            Command::Unsubscribe => {
                let Some(id) = f.id else {
                    self.fail(c, Malformed("UNSUBSCRIBE without an id"));
                    return false;
                };
                let id = id.of(buf);
                if let Some(i) = conn.subs.iter().position(|(i, _)| **i == *id) {
                    let (id, d) = conn.subs.swap_remove(i);
                    self.routes.unsubscribe(d, c, &id);
                }
            }
            Command::Ignored | Command::Disconnect => {}
        }
        let Some(conn) = slot(&mut self.conns, c) else {
            return false;
        };
        // After the MESSAGEs this frame caused, which are already in their buffers.
        if let Some(r) = f.receipt {
            encode::receipt(&mut conn.out, r.of(buf));
        }
        grew(conn, c, &mut self.dirty, &mut self.over_bound);
        if f.command == Command::Disconnect {
            self.begin_close(c);
            return false;
        }
        true
    }

    /// ERROR, then close once it is written.
    fn fail(&mut self, c: usize, why: Malformed) {
        if let Some(conn) = slot(&mut self.conns, c) {
            encode::error(&mut conn.out, why.0);
        }
        self.begin_close(c);
    }

    /// Stops reading `c` and delivering to it; it closes once its output is written.
    fn begin_close(&mut self, c: usize) {
        let Some(conn) = slot(&mut self.conns, c) else {
            return;
        };
        conn.closing = true;
        for (id, d) in conn.subs.drain(..) {
            self.routes.unsubscribe(d, c, &id);
        }
        mark_dirty(conn, c, &mut self.dirty);
    }

    fn close(&mut self, c: usize) {
        let Some(mut conn) = self.conns.get_mut(c).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if conn.over {
            self.over_bound -= 1;
        }
        for (id, d) in conn.subs.drain(..) {
            self.routes.unsubscribe(d, c, &id);
        }
        self.free.push(c);
    }

    fn flush(&mut self, c: usize) {
        let Some(conn) = slot(&mut self.conns, c) else {
            return;
        };
        conn.dirty = false;
        match conn.flush() {
            Ok(drained) => {
                conn.blocked = !drained;
                if conn.over && conn.pending() <= OUT_RESUME {
                    conn.over = false;
                    self.over_bound -= 1;
                }
                if drained && conn.closing {
                    self.close(c);
                }
            }
            Err(_) => self.close(c),
        }
    }
}
