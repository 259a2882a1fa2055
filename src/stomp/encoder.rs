//! STOMP frame encoder (stub: the codec work fills this in).

use super::frame::{Command, Frame, Version};
use bytes::BytesMut;

/// Writes one frame incrementally into a caller-owned, reused buffer, escaping header
/// names and values on the fly so no per-header string is allocated.
pub struct FrameEncoder<'a> {
    out: &'a mut BytesMut,
    escape: bool,
    version: Version,
}

impl<'a> FrameEncoder<'a> {
    /// Starts a frame: writes the command line.
    pub fn begin(out: &'a mut BytesMut, version: Version, command: Command) -> Self {
        out.extend_from_slice(command.as_str().as_bytes());
        out.extend_from_slice(b"\n");
        FrameEncoder {
            out,
            escape: command.escapes_headers() && version != Version::V1_0,
            version,
        }
    }

    /// Writes one header line, escaped as the version requires.
    pub fn header(&mut self, name: &str, value: &str) {
        let _ = (self.escape, self.version);
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b":");
        self.out.extend_from_slice(value.as_bytes());
        self.out.extend_from_slice(b"\n");
    }

    /// Ends the header block with `content-length: body_len`; the caller then writes the
    /// body and a NUL itself (used to send large shared bodies without copying them).
    pub fn finish_headers(self, body_len: usize) {
        self.out.extend_from_slice(b"content-length:");
        self.out.extend_from_slice(body_len.to_string().as_bytes());
        self.out.extend_from_slice(b"\n\n");
    }

    /// Ends the header block (writes `content-length` when a body follows) and writes the
    /// body and the terminating NUL.
    pub fn finish(self, body: &[u8]) {
        if !body.is_empty() {
            self.out.extend_from_slice(b"content-length:");
            self.out
                .extend_from_slice(body.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\n");
        }
        self.out.extend_from_slice(b"\n");
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\0");
    }
}

/// Encodes a whole frame. Any `content-length` header in `frame` is ignored: the encoder
/// writes the true length itself.
pub fn encode_frame(frame: &Frame, version: Version, out: &mut BytesMut) {
    let mut enc = FrameEncoder::begin(out, version, frame.command);
    for (k, v) in frame.headers.iter() {
        if k != "content-length" {
            enc.header(k, v);
        }
    }
    enc.finish(&frame.body);
}
