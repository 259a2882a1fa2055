//! The echo server's frame scanner: finds one client frame in a read buffer by scanning its
//! bytes once, and returns where its command, headers and body are, without copying or
//! allocating anything (the broker's `Decoder` builds a `Frame` with owned headers, which is
//! the cost the ceiling must not pay).
//!
//! Header values stay escaped: the server compares and copies them as bytes, and STOMP 1.2's
//! escaping is one-to-one, so equal escaped bytes are equal values and copied bytes mean the
//! same in the MESSAGE as in the SEND. Escapes are still checked (an undefined one is an error,
//! as the spec says), except in CONNECT/STOMP, whose headers are not escaped.

/// The most header bytes (command line, headers and the blank line) one frame may have.
pub const MAX_HEADER_BLOCK: usize = 1024 * 1024;
/// The most header lines in one frame (the broker's own limit).
pub const MAX_HEADERS: usize = 1000;
/// The largest body (the broker's own limit).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A byte range in the buffer the frame was scanned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes of this span in `buf` (the buffer it was scanned from).
    pub fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the span holds no bytes (an empty header value).
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// The client commands the echo server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// CONNECT or STOMP.
    Connect,
    /// SEND.
    Send,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// ACK, NACK, BEGIN, COMMIT, ABORT: accepted and otherwise ignored.
    Ignored,
    /// DISCONNECT.
    Disconnect,
}

/// One complete frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Its command.
    pub command: Command,
    /// The first `destination` header's value (escaped).
    pub destination: Option<Span>,
    /// The first `id` header's value.
    pub id: Option<Span>,
    /// The first `ack` header's value.
    pub ack: Option<Span>,
    /// The first `receipt` header's value.
    pub receipt: Option<Span>,
    /// The body.
    pub body: Span,
    /// Bytes the frame takes in the buffer, its NUL included.
    pub len: usize,
}

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// A whole frame.
    Frame(Frame),
    /// Not all of the frame is there yet.
    Incomplete {
        /// Where the search for a body's NUL may resume next time (bytes before it hold
        /// none), so that a large body arriving in pieces is scanned once.
        nul_from: usize,
        /// The whole frame's size when it is already known (a content-length body), so the
        /// caller can make room for it at once.
        need: Option<usize>,
    },
}

/// Why a frame is not STOMP: the text of the ERROR frame's `message` header (none contains
/// a colon or a newline, so it needs no escaping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// How many bytes at the start of `buf` are heart-beats (EOLs between frames). A lone CR at
/// the end is left for the next read; a CR followed by anything but LF is an error.
pub fn skip_eols(buf: &[u8]) -> Result<usize, Malformed> {
    let mut i = 0;
    loop {
        match buf.get(i) {
            Some(b'\n') => i += 1,
            Some(b'\r') => match buf.get(i + 1) {
                Some(b'\n') => i += 2,
                Some(_) => return Err(Malformed("a CR not followed by LF between frames")),
                None => return Ok(i),
            },
            _ => return Ok(i),
        }
    }
}

/// Headers a MESSAGE must not copy from the SEND: the broker's own (`subscription`,
/// `message-id`, `ack`), and those about the SEND itself.
fn not_copied(name: &[u8]) -> bool {
    matches!(
        name,
        b"receipt" | b"transaction" | b"content-length" | b"subscription" | b"message-id" | b"ack"
    )
}

fn command(line: &[u8]) -> Result<Command, Malformed> {
    Ok(match line {
        b"SEND" => Command::Send,
        b"ACK" | b"NACK" | b"BEGIN" | b"COMMIT" | b"ABORT" => Command::Ignored,
        b"SUBSCRIBE" => Command::Subscribe,
        b"UNSUBSCRIBE" => Command::Unsubscribe,
        b"CONNECT" | b"STOMP" => Command::Connect,
        b"DISCONNECT" => Command::Disconnect,
        _ => return Err(Malformed("unknown command")),
    })
}

fn content_length(v: &[u8]) -> Result<usize, Malformed> {
    if v.is_empty() || v.len() > 10 {
        return Err(Malformed("content-length is not a number"));
    }
    let mut n = 0usize;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(Malformed("content-length is not a number"));
        }
        n = n * 10 + usize::from(b - b'0');
    }
    if n > MAX_BODY {
        return Err(Malformed("body too large"));
    }
    Ok(n)
}

/// Scans the frame at the start of `buf` (heart-beats already skipped). For a SEND, `copy`
/// receives the runs of header lines a MESSAGE copies verbatim (each run whole lines, EOLs
/// included); for other frames it is left empty. `nul_from` is what the last
/// [`Scan::Incomplete`] for this frame said (0 the first time).
pub fn scan(buf: &[u8], nul_from: usize, copy: &mut Vec<Span>) -> Result<Scan, Malformed> {
    copy.clear();
    let incomplete = |nul_from: usize| {
        if buf.len() > MAX_HEADER_BLOCK {
            Err(Malformed("header block too large"))
        } else {
            Ok(Scan::Incomplete {
                nul_from,
                need: None,
            })
        }
    };
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return incomplete(0);
    };
    let cmd_end = if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
        nl - 1
    } else {
        nl
    };
    let cmd = command(buf.get(..cmd_end).unwrap_or_default())?;
    let escaped = cmd != Command::Connect;
    let is_send = cmd == Command::Send;
    let mut frame = Frame {
        command: cmd,
        destination: None,
        id: None,
        ack: None,
        receipt: None,
        body: Span::default(),
        len: 0,
    };
    let mut length = None;
    let mut headers = 0;
    let mut pos = nl + 1;
    // The run of copied header lines being collected (SEND only).
    let mut run_start = pos;
    let body_start = loop {
        let line = pos;
        let mut colon = None;
        let mut i = pos;
        let nl = loop {
            match buf.get(i) {
                None => return incomplete(0),
                Some(b'\n') => break i,
                Some(b':') if colon.is_none() => colon = Some(i),
                Some(b'\\') if escaped => match buf.get(i + 1) {
                    None => return incomplete(0),
                    Some(b'\\' | b'n' | b'c' | b'r') => i += 1,
                    Some(_) => return Err(Malformed("undefined escape sequence in a header")),
                },
                Some(_) => {}
            }
            i += 1;
        };
        pos = nl + 1;
        let end = if nl > line && buf.get(nl - 1) == Some(&b'\r') {
            nl - 1
        } else {
            nl
        };
        if end == line {
            if is_send && line > run_start {
                copy.push(Span {
                    start: run_start,
                    end: line,
                });
            }
            break pos;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(Malformed("too many headers"));
        }
        let Some(colon) = colon else {
            return Err(Malformed("header line without a colon"));
        };
        let name = buf.get(line..colon).unwrap_or_default();
        let value = Span {
            start: colon + 1,
            end,
        };
        let slot = match name {
            b"destination" => Some(&mut frame.destination),
            b"id" => Some(&mut frame.id),
            b"ack" => Some(&mut frame.ack),
            b"receipt" => Some(&mut frame.receipt),
            _ => None,
        };
        if let Some(slot) = slot {
            slot.get_or_insert(value);
        }
        if name == b"content-length" && length.is_none() {
            length = Some(content_length(value.of(buf))?);
        }
        if is_send && not_copied(name) {
            if line > run_start {
                copy.push(Span {
                    start: run_start,
                    end: line,
                });
            }
            run_start = pos;
        }
    };
    if body_start > MAX_HEADER_BLOCK {
        return Err(Malformed("header block too large"));
    }
    let body_end = match length {
        Some(n) => {
            let end = body_start + n;
            match buf.get(end) {
                None => {
                    return Ok(Scan::Incomplete {
                        nul_from: 0,
                        need: Some(end + 1),
                    });
                }
                Some(0) => end,
                Some(_) => return Err(Malformed("no NUL after content-length bytes of body")),
            }
        }
        None => {
            let from = nul_from.max(body_start);
            match buf
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
            {
                Some(p) => from + p,
                None if buf.len() - body_start > MAX_BODY => {
                    return Err(Malformed("body too large"));
                }
                None => {
                    return Ok(Scan::Incomplete {
                        nul_from: buf.len(),
                        need: None,
                    });
                }
            }
        }
    };
    frame.body = Span {
        start: body_start,
        end: body_end,
    };
    frame.len = body_end + 1;
    Ok(Scan::Frame(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(buf: &[u8]) -> (Frame, Vec<Span>) {
        let mut copy = Vec::new();
        match scan(buf, 0, &mut copy) {
            Ok(Scan::Frame(f)) => (f, copy),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_send_copies_every_header_but_its_own() {
        let buf = b"SEND\ndestination:/queue/a\nreceipt:r1\ncolor:re\\cd\r\ncontent-length:3\nx:y\n\nabc\0rest";
        let (f, copy) = whole(buf);
        assert_eq!(f.command, Command::Send);
        assert_eq!(f.destination.map(|s| s.of(buf)), Some(&b"/queue/a"[..]));
        assert_eq!(f.receipt.map(|s| s.of(buf)), Some(&b"r1"[..]));
        assert_eq!(f.body.of(buf), b"abc");
        assert_eq!(f.len, buf.len() - 4);
        let copied: Vec<u8> = copy.iter().flat_map(|s| s.of(buf).to_vec()).collect();
        assert_eq!(copied, b"destination:/queue/a\ncolor:re\\cd\r\nx:y\n");
    }

    #[test]
    fn bodies_with_and_without_content_length() {
        let buf = b"SEND\ndestination:d\ncontent-length:3\n\na\0b\0";
        assert_eq!(whole(buf).0.body.of(buf), b"a\0b");
        let buf = b"SEND\ndestination:d\n\nhello\0";
        assert_eq!(whole(buf).0.body.of(buf), b"hello");
    }

    #[test]
    fn a_partial_frame_is_incomplete_and_resumes() {
        let mut copy = Vec::new();
        let full = b"SEND\ndestination:d\n\nhello world\0";
        for cut in 0..full.len() {
            let r = scan(&full[..cut], 0, &mut copy);
            assert!(matches!(r, Ok(Scan::Incomplete { .. })), "{cut}: {r:?}");
        }
        let Ok(Scan::Incomplete { nul_from, .. }) = scan(&full[..26], 0, &mut copy) else {
            panic!()
        };
        assert_eq!(nul_from, 26);
        assert!(matches!(
            scan(full, nul_from, &mut copy),
            Ok(Scan::Frame(f)) if f.body.of(full) == b"hello world"
        ));
        let r = scan(b"SEND\ncontent-length:10\n\nab", 0, &mut copy);
        assert_eq!(
            r,
            Ok(Scan::Incomplete {
                nul_from: 0,
                need: Some(35)
            })
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut copy = Vec::new();
        for bad in [
            &b"HELLO\n\n\0"[..],
            b"SEND\nnocolon\n\n\0",
            b"SEND\ncontent-length:x\n\n\0",
            b"SEND\ncontent-length:2\n\nabc\0",
            b"SEND\nbad:\\t\n\n\0",
            b"MESSAGE\n\n\0",
        ] {
            assert!(scan(bad, 0, &mut copy).is_err(), "{bad:?}");
        }
        // CONNECT headers are not escaped.
        assert!(scan(b"CONNECT\nlogin:a\\b\n\n\0", 0, &mut copy).is_ok());
        assert_eq!(skip_eols(b"\n\r\n\nSEND"), Ok(4));
        assert_eq!(skip_eols(b"\n\r"), Ok(1));
        assert!(skip_eols(b"\rX").is_err());
    }

    #[test]
    fn the_first_of_a_repeated_header_wins() {
        let buf = b"SUBSCRIBE\nid:1\nid:2\ndestination:a\nack:client\n\n\0";
        let (f, copy) = whole(buf);
        assert_eq!(f.id.map(|s| s.of(buf)), Some(&b"1"[..]));
        assert_eq!(f.ack.map(|s| s.of(buf)), Some(&b"client"[..]));
        assert!(copy.is_empty());
    }
}
