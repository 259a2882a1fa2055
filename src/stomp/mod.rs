//! The STOMP codec: bytes in, frames out, and back. Pure: no I/O, no async, no broker types,
//! so that it can be unit-tested, property-tested and fuzzed on its own.

mod decoder;
mod encoder;
mod frame;

pub use decoder::{Decoded, Decoder, FrameError, Limits};
pub use encoder::{FrameEncoder, encode_frame};
pub use frame::{Command, Frame, Headers, Version};
