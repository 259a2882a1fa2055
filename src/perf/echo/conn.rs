//! One echo-server connection: its socket, its read buffer (frames are scanned in place
//! there), its output buffer (frames for it are appended there by whoever causes them and
//! written once per loop iteration) and the flags the event loop keeps about it.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::routes::RouteCache;

/// Read buffer size of a new connection: idle connections stay small.
const READ_INITIAL: usize = 16 * 1024;
/// The read buffer grows (doubling) while reads fill it, up to this; only a frame larger
/// than this makes it larger, and it shrinks back once that frame is done.
const READ_MAX: usize = 256 * 1024;
/// Free space wanted before a read.
const READ_MIN_FREE: usize = 4 * 1024;
/// An output buffer with more capacity than this is freed once written out, so a burst
/// does not keep its memory.
const OUT_KEEP: usize = 1024 * 1024;

/// What one read brought.
pub enum Read1 {
    /// Bytes arrived; `more` when they filled the buffer, so the socket may hold others.
    Data {
        /// The socket may still have bytes to read.
        more: bool,
    },
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// A client connection.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read; `[start, end)` not yet consumed. Its length is its usable size.
    pub inbuf: Vec<u8>,
    /// First unconsumed byte of `inbuf`.
    pub start: usize,
    /// One past the last byte read into `inbuf`.
    pub end: usize,
    /// [`super::scan::Scan::Incomplete`]'s `nul_from` for the frame at `start`.
    pub nul_from: usize,
    /// The size of the frame at `start` when known (0: unknown).
    pub need: usize,
    /// Frames for this client; `[sent, len)` not yet written.
    pub out: Vec<u8>,
    /// Bytes of `out` already written.
    pub sent: usize,
    /// This connection has sent a SEND, so back-pressure pauses its reading.
    pub producer: bool,
    /// The socket may have bytes we have not read (edge-triggered readiness is remembered
    /// here while reading is paused or deferred).
    pub read_ready: bool,
    /// In the loop's list of connections to serve.
    pub scheduled: bool,
    /// In the loop's list of connections paused by back-pressure.
    pub paused: bool,
    /// In the loop's list of connections with output to write.
    pub dirty: bool,
    /// The last write would have blocked: wait for a WRITABLE event before writing again.
    pub blocked: bool,
    /// Its pending output is over the bound (counted in the loop's `over_bound`).
    pub over: bool,
    /// Nothing more is read; the connection closes once its output is written.
    pub closing: bool,
    /// Its subscriptions: the `id` and the destination index of each.
    pub subs: Vec<(Box<[u8]>, usize)>,
    /// Its last destination lookup.
    pub route: RouteCache,
}

impl Conn {
    /// A connection on an accepted socket.
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            inbuf: vec![0; READ_INITIAL],
            start: 0,
            end: 0,
            nul_from: 0,
            need: 0,
            out: Vec::new(),
            sent: 0,
            producer: false,
            read_ready: false,
            scheduled: false,
            paused: false,
            dirty: false,
            blocked: false,
            over: false,
            closing: false,
            subs: Vec::new(),
            route: RouteCache::default(),
        }
    }

    /// Output bytes not yet written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Makes room in the read buffer (moving the unconsumed bytes to its front, growing it
    /// for a frame that does not fit) and reads once.
    pub fn read(&mut self) -> io::Result<Read1> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.inbuf.len() > READ_MAX {
                self.inbuf = vec![0; READ_MAX];
            }
        } else if self.start > 0 && self.inbuf.len() - self.end < self.inbuf.len() / 2 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = (self.end + READ_MIN_FREE).max(self.start + self.need);
        if want > self.inbuf.len() {
            let size = want.max(self.inbuf.len() * 2);
            self.inbuf.resize(size, 0);
        }
        let free = self.inbuf.len() - self.end;
        let Some(space) = self.inbuf.get_mut(self.end..) else {
            return Ok(Read1::WouldBlock);
        };
        loop {
            return match (&self.stream).read(space) {
                Ok(0) => Ok(Read1::Eof),
                Ok(n) => {
                    self.end += n;
                    let more = n == free;
                    if more && self.inbuf.len() < READ_MAX {
                        let size = (self.inbuf.len() * 2).min(READ_MAX);
                        self.inbuf.resize(size, 0);
                    }
                    Ok(Read1::Data { more })
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read1::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Writes pending output until it is all written (`true`) or the socket is full
    /// (`false`).
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.out.len() {
            let rest = self.out.get(self.sent..).unwrap_or_default();
            match (&self.stream).write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Keep appending cheap: drop the written front once it is most of it.
                    if self.sent > self.out.len() / 2 {
                        self.out.drain(..self.sent);
                        self.sent = 0;
                    }
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.sent = 0;
        if self.out.capacity() > OUT_KEEP {
            self.out = Vec::new();
        }
        Ok(true)
    }
}
