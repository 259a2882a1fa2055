//! The STOMP codec: bytes in, frames out, and back. Pure: no I/O, no async, no broker types,
//! so that it can be unit-tested, property-tested and fuzzed on its own.
//!
//! - [`Decoder`] turns a growing read buffer into [`Decoded`] items (frames and heart-beats),
//!   enforcing [`Limits`] and refusing malformed input with a [`FrameError`] whose text is
//!   fit for an ERROR frame.
//! - [`FrameEncoder`] and [`encode_frame`] write frames into a reused write buffer.
//! - Header escaping rules per [`Version`] live in one private module shared by both.

mod decoder;
mod encoder;
mod error;
mod escape;
mod frame;
mod parse;

pub use decoder::{BODY_PART, Decoded, Decoder, Limits, MAX_COMMAND_LINE, Piece};
pub use encoder::{FrameEncoder, encode_frame};
pub use error::FrameError;
pub use frame::{Command, Frame, Headers, Version};
