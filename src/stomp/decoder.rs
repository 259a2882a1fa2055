//! Incremental STOMP frame decoder (stub: the codec work fills this in).

use super::frame::{Frame, Version};
use bytes::BytesMut;

/// Limits on what one inbound frame may be. Exceeding one is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole frame (command + headers + body) in bytes.
    pub max_frame_size: usize,
    /// Most header lines in one frame.
    pub max_headers: usize,
    /// Longest single header line in bytes (name, colon and value, before unescaping).
    pub max_header_line: usize,
    /// Largest body in bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 16 * 1024 * 1024 + 64 * 1024,
            max_headers: 1000,
            max_header_line: 64 * 1024,
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// What one decode step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame.
    Frame(Frame),
    /// A bare EOL between frames: a heart-beat.
    HeartBeat,
}

/// Why a frame was refused. The `Display` text goes into the ERROR frame's `message` header,
/// so it must say plainly what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Placeholder until the decoder is written.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Turns a byte stream into frames, however the stream is split.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    version: Version,
}

impl Decoder {
    /// A decoder for a new connection (escaping rules of 1.2 until told otherwise).
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            version: Version::V1_2,
        }
    }

    /// Switches escaping rules once the session has negotiated a version.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Decodes at most one item from the front of `buf`, consuming its bytes.
    /// `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, FrameError> {
        let _ = (&self.limits, self.version, buf);
        Err(FrameError::Malformed("decoder not yet implemented".into()))
    }
}
