//! STOMP frame encoder.
//!
//! The broker writes a MESSAGE frame per subscriber per message, so encoding sits on the
//! hot path: it writes straight into a caller-owned, reused [`BytesMut`], escapes header
//! text on the fly and formats `content-length` without allocating.
//!
//! `content-length` rule (one rule for every command, so readers need not guess): the
//! encoder writes a `content-length` header exactly when the body is non-empty. It lets
//! bodies contain NULs and lets peers read the body without scanning it.

use super::escape::Escaping;
use super::frame::{Command, Frame, Version};
use bytes::{BufMut, BytesMut};

/// Writes one frame incrementally into a caller-owned, reused buffer, escaping header
/// names and values on the fly so no per-header string is allocated.
///
/// Call [`begin`](Self::begin), then [`header`](Self::header) per header, then either
/// [`finish`](Self::finish) with the body, or [`finish_headers`](Self::finish_headers) to
/// write the body yourself (e.g. as a separate `Bytes` in a vectored write, with no copy).
pub struct FrameEncoder<'a> {
    out: &'a mut BytesMut,
    escaping: Escaping,
}

impl<'a> FrameEncoder<'a> {
    /// Starts a frame: writes the command line. The version and command decide the
    /// escaping of every header that follows (none for 1.0 and for CONNECT/STOMP/CONNECTED).
    pub fn begin(out: &'a mut BytesMut, version: Version, command: Command) -> Self {
        out.extend_from_slice(command.as_str().as_bytes());
        out.put_u8(b'\n');
        FrameEncoder {
            out,
            escaping: Escaping::for_frame(version, command),
        }
    }

    /// Continues a frame of `command` whose command line is written elsewhere: encodes header
    /// lines with that frame's escaping into `out`, to be copied into frames later with
    /// [`encoded_lines`](Self::encoded_lines) (the block a multicast's copies share). Ending
    /// it with `finish` makes no sense; just drop it.
    pub fn lines(out: &'a mut BytesMut, version: Version, command: Command) -> Self {
        FrameEncoder {
            out,
            escaping: Escaping::for_frame(version, command),
        }
    }

    /// Copies header lines encoded earlier by [`lines`](Self::lines) for the same version
    /// and command, so they are already escaped as this frame needs.
    pub fn encoded_lines(&mut self, lines: &[u8]) {
        self.out.extend_from_slice(lines);
    }

    /// Writes one header line, escaped as the version requires. It is written as given:
    /// do not pass `content-length` here, [`finish`](Self::finish) writes the true one.
    ///
    /// Where the frame has no escaping, CR and LF cannot be represented and are written as
    /// spaces, so that a header value can never inject lines into the frame.
    pub fn header(&mut self, name: &str, value: &str) {
        self.escaping.escape_into(self.out, name);
        self.out.put_u8(b':');
        self.escaping.escape_into(self.out, value);
        self.out.put_u8(b'\n');
    }

    /// Writes whole header lines (`name:value\n` each) that need no escaping, as one copy: for
    /// constant lines such as a first delivery's `redelivered:false`.
    pub fn plain_lines(&mut self, lines: &'static [u8]) {
        debug_assert!(lines.ends_with(b"\n") && !lines.contains(&b'\\') && !lines.contains(&b'\r'));
        self.out.extend_from_slice(lines);
    }

    /// Writes one header whose name and value need no escaping in any version (no `:`, `\\`,
    /// CR or LF): a header name the broker chooses with a number it formats. The broker's own
    /// headers on every MESSAGE are the hottest bytes it writes, and scanning them for escapes
    /// only costs time; client-supplied text must go through [`header`](Self::header).
    pub fn plain_header(&mut self, name: &str, value: &str) {
        debug_assert!(
            !name
                .bytes()
                .chain(value.bytes())
                .any(|b| matches!(b, b':' | b'\\' | b'\r' | b'\n'))
        );
        self.out.extend_from_slice(name.as_bytes());
        self.out.put_u8(b':');
        self.out.extend_from_slice(value.as_bytes());
        self.out.put_u8(b'\n');
    }

    /// Ends the header block (writing `content-length` when the body is non-empty) and
    /// writes the body and the terminating NUL.
    pub fn finish(self, body: &[u8]) {
        let out = self.finish_headers(body.len());
        out.extend_from_slice(body);
        out.put_u8(0);
    }

    /// Ends the header block for a body the caller writes itself: writes `content-length`
    /// when `body_len` is non-zero, then the blank line. The caller must then send exactly
    /// `body_len` body bytes followed by one `\0` byte; the returned buffer is handed back
    /// for that, but the body may equally go out as a separate buffer in a vectored write.
    pub fn finish_headers(self, body_len: usize) -> &'a mut BytesMut {
        if body_len > 0 {
            self.out.extend_from_slice(b"content-length:");
            write_decimal(self.out, body_len);
            self.out.put_u8(b'\n');
        }
        self.out.put_u8(b'\n');
        self.out
    }
}

/// Writes `n` in decimal without a heap allocation.
fn write_decimal(out: &mut BytesMut, mut n: usize) {
    // 20 digits hold u64::MAX, the largest usize on supported targets.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Encodes a whole frame. Any `content-length` header in `frame` is ignored: the encoder
/// writes the true length itself (see the module docs for when).
pub fn encode_frame(frame: &Frame, version: Version, out: &mut BytesMut) {
    let mut enc = FrameEncoder::begin(out, version, frame.command);
    for (k, v) in frame.headers.iter() {
        if k != "content-length" {
            enc.header(k, v);
        }
    }
    enc.finish(&frame.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame, version: Version) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_frame(frame, version, &mut out);
        out.to_vec()
    }

    #[test]
    fn decimal_formatting() {
        for n in [0usize, 1, 9, 10, 99, 100, 12345, usize::MAX] {
            let mut out = BytesMut::new();
            write_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn frame_without_body_has_no_content_length() {
        let f = Frame::new(Command::Subscribe)
            .header("destination", "/queue/a")
            .header("id", "0");
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"SUBSCRIBE\ndestination:/queue/a\nid:0\n\n\0"
        );
    }

    #[test]
    fn body_gets_true_content_length() {
        let f = Frame::new(Command::Send)
            .header("content-length", "999")
            .header("destination", "q")
            .body(&b"a\0b"[..]);
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"SEND\ndestination:q\ncontent-length:3\n\na\0b\0"
        );
    }

    #[test]
    fn escapes_per_version() {
        let f = Frame::new(Command::Message).header("k:1", "a\nb\rc\\d");
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"MESSAGE\nk\\c1:a\\nb\\rc\\\\d\n\n\0"
        );
        assert_eq!(
            encoded(&f, Version::V1_1),
            b"MESSAGE\nk\\c1:a\\nb\rc\\\\d\n\n\0"
        );
        assert_eq!(encoded(&f, Version::V1_0), b"MESSAGE\nk:1:a b c\\d\n\n\0");
    }

    #[test]
    fn handshake_is_not_escaped() {
        let f = Frame::new(Command::Connected).header("server", "wren:1\\x");
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"CONNECTED\nserver:wren:1\\x\n\n\0"
        );
        let f = Frame::new(Command::Connect).header("login", "a:b");
        assert_eq!(encoded(&f, Version::V1_1), b"CONNECT\nlogin:a:b\n\n\0");
    }

    #[test]
    fn finish_headers_leaves_body_to_caller() {
        let mut out = BytesMut::new();
        let mut enc = FrameEncoder::begin(&mut out, Version::V1_2, Command::Message);
        enc.header("destination", "q");
        let out = enc.finish_headers(5);
        out.extend_from_slice(b"hello\0");
        assert_eq!(
            &out[..],
            b"MESSAGE\ndestination:q\ncontent-length:5\n\nhello\0"
        );
    }

    #[test]
    fn appends_to_existing_buffer() {
        let mut out = BytesMut::from(&b"PREV"[..]);
        encode_frame(&Frame::new(Command::Receipt), Version::V1_2, &mut out);
        assert_eq!(&out[..], b"PREVRECEIPT\n\n\0");
    }
}
