//! The load tool's reader of broker frames: finds the frame at the start of a read buffer and
//! where the few headers a consumer needs are, in place, without copying or allocating.
//!
//! The load tool shares the machine's cores with the broker it measures, so every cycle it
//! spends per MESSAGE is taken from the broker: decoding each MESSAGE into a `Frame` with
//! owned, unescaped, UTF-8-checked headers was more than half of the tool's CPU in fan-out.
//! A consumer only needs the perf stamp and what its ACK must name, so this scanner looks at
//! those headers and skips the rest. Values stay as they are on the wire (escaped in 1.1 and
//! 1.2): the stamp has no character that is escaped, and an ACK copies the `ack` (or
//! `message-id` / `subscription`) bytes back verbatim, which STOMP's one-to-one escaping makes
//! the same value. Frames other than MESSAGE and RECEIPT are left to the full decoder.

/// A byte range in the buffer a frame was scanned from (the echo server's, which scans
/// client frames the same way).
pub use super::echo::scan::Span;

/// Which server frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// MESSAGE: the headers below are filled in.
    Message,
    /// RECEIPT: `receipt_id` is filled in.
    Receipt,
    /// Anything else (CONNECTED, ERROR): decode it with the full decoder.
    Other,
}

/// A whole frame at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// Its command.
    pub kind: Kind,
    /// The `wrenmq-perf` stamp.
    pub stamp: Option<Span>,
    /// The STOMP 1.2 `ack` header.
    pub ack: Option<Span>,
    /// `message-id`.
    pub message_id: Option<Span>,
    /// `subscription`.
    pub subscription: Option<Span>,
    /// A RECEIPT's `receipt-id`.
    pub receipt_id: Option<Span>,
    /// Bytes the frame takes, its NUL included.
    pub len: usize,
}

/// What [`scan`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// This many bytes of heart-beat EOLs.
    HeartBeat(usize),
    /// A whole frame.
    Frame(Inbound),
    /// Not all of the next frame is there yet.
    Incomplete,
}

/// The largest frame the tool waits for before calling the stream broken (the broker's body
/// limit plus room for headers): a missing NUL must not grow the buffer without bound.
const MAX_FRAME: usize = 17 * 1024 * 1024;

/// Scans the frame at the start of `buf`. The first occurrence of a repeated header wins,
/// as STOMP says.
pub fn scan(buf: &[u8]) -> Result<Scanned, &'static str> {
    match buf {
        [b'\n', ..] => return Ok(Scanned::HeartBeat(1)),
        [b'\r', b'\n', ..] => return Ok(Scanned::HeartBeat(2)),
        [b'\r'] | [] => return Ok(Scanned::Incomplete),
        [b'\r', ..] => return Err("a CR not followed by LF between frames"),
        _ => {}
    }
    let incomplete = || {
        if buf.len() > MAX_FRAME {
            Err("a frame larger than the broker's limits")
        } else {
            Ok(Scanned::Incomplete)
        }
    };
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return incomplete();
    };
    let kind = match trim_cr(buf.get(..nl).unwrap_or_default()) {
        b"MESSAGE" => Kind::Message,
        b"RECEIPT" => Kind::Receipt,
        _ => Kind::Other,
    };
    let mut found = Inbound {
        kind,
        stamp: None,
        ack: None,
        message_id: None,
        subscription: None,
        receipt_id: None,
        len: 0,
    };
    let mut length = None;
    let mut pos = nl + 1;
    let body_start = loop {
        let Some(end) = buf
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        else {
            return incomplete();
        };
        let line_end = pos + end;
        let line = trim_cr(buf.get(pos..line_end).unwrap_or_default());
        if line.is_empty() {
            break line_end + 1;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let value = Span {
                start: pos + colon + 1,
                end: pos + line.len(),
            };
            let slot = match line.get(..colon).unwrap_or_default() {
                b"wrenmq-perf" => &mut found.stamp,
                b"ack" => &mut found.ack,
                b"message-id" => &mut found.message_id,
                b"subscription" => &mut found.subscription,
                b"receipt-id" => &mut found.receipt_id,
                b"content-length" => {
                    if length.is_none() {
                        length =
                            Some(decimal(value.of(buf)).ok_or("content-length is not a number")?);
                    }
                    pos = line_end + 1;
                    continue;
                }
                _ => {
                    pos = line_end + 1;
                    continue;
                }
            };
            slot.get_or_insert(value);
        }
        pos = line_end + 1;
    };
    let nul = match length {
        Some(n) => {
            let nul = usize::try_from(n)
                .ok()
                .and_then(|n| body_start.checked_add(n))
                .ok_or("content-length too large")?;
            match buf.get(nul) {
                None => return incomplete(),
                Some(0) => nul,
                Some(_) => return Err("no NUL after the body content-length gave"),
            }
        }
        None => match buf
            .get(body_start..)
            .and_then(|rest| rest.iter().position(|&b| b == 0))
        {
            Some(at) => body_start + at,
            None => return incomplete(),
        },
    };
    found.len = nul + 1;
    Ok(Scanned::Frame(found))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A non-negative decimal of at most 19 digits, or `None`.
pub fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(buf: &[u8]) -> Inbound {
        match scan(buf) {
            Ok(Scanned::Frame(f)) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn a_message_yields_its_stamp_and_ack_headers_in_place() {
        let buf = b"MESSAGE\r\nsubscription:0\nmessage-id:m\\c1\nack:7\nwrenmq-perf:ab.0.3.99\n\
                    ack:8\ncontent-length:3\n\nx\0y\0NEXT";
        let f = frame(buf);
        assert_eq!(f.kind, Kind::Message);
        let text = |s: Option<Span>| s.map(|s| s.of(buf).to_vec());
        assert_eq!(text(f.stamp), Some(b"ab.0.3.99".to_vec()));
        // The first of repeated headers wins; values stay escaped.
        assert_eq!(text(f.ack), Some(b"7".to_vec()));
        assert_eq!(text(f.message_id), Some(b"m\\c1".to_vec()));
        assert_eq!(text(f.subscription), Some(b"0".to_vec()));
        // content-length covers the NUL inside the body.
        assert_eq!(&buf[f.len..], b"NEXT");
    }

    #[test]
    fn a_frame_without_content_length_ends_at_its_nul() {
        let buf = b"RECEIPT\nreceipt-id:p0-99\n\n\0\nMESSAGE";
        let f = frame(buf);
        assert_eq!(f.kind, Kind::Receipt);
        assert_eq!(f.receipt_id.map(|s| s.of(buf)), Some(&b"p0-99"[..]));
        assert_eq!(&buf[f.len..], b"\nMESSAGE");
        assert_eq!(scan(&buf[f.len..]), Ok(Scanned::HeartBeat(1)));
    }

    #[test]
    fn a_partial_frame_is_incomplete_at_every_cut() {
        let buf = b"MESSAGE\nack:1\ncontent-length:2\n\nab\0";
        for cut in 0..buf.len() {
            assert_eq!(scan(&buf[..cut]), Ok(Scanned::Incomplete), "cut at {cut}");
        }
        assert_eq!(frame(buf).len, buf.len());
    }

    #[test]
    fn a_broken_frame_is_an_error_not_a_wait() {
        assert!(scan(b"MESSAGE\ncontent-length:2\n\nabc\0").is_err());
        assert!(scan(b"MESSAGE\ncontent-length:x\n\nabc\0").is_err());
        assert!(scan(b"\rX").is_err());
        assert_eq!(frame(b"ERROR\nmessage:no\n\n\0").kind, Kind::Other);
    }
}
