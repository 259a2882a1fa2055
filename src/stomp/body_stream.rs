//! The decoder's state while a large body streams through: how much of it has gone by, and
//! how it ends (after `content-length` bytes, or at the first NUL). Kept apart from header
//! decoding because it has one job: cut the body into bounded pieces and find its end,
//! holding no more than [`BODY_PART`] bytes of it (plus what one read adds) at a time.

use bytes::{Buf, BytesMut};

use super::super::error::FrameError;
use super::super::parse;
use super::{BODY_PART, Limits, Piece};

/// A large body being handed over piece by piece. Offsets count from the front of the
/// buffer, where the body's unconsumed bytes start.
#[derive(Debug, Clone)]
pub(super) struct Streaming {
    /// Bytes still to come when the frame has a `content-length`.
    remaining: Option<usize>,
    /// Body bytes handed over so far, against `max_body`.
    received: usize,
    /// How far the buffer is known to hold no NUL (bodies without `content-length`).
    scan: usize,
}

impl Streaming {
    /// A body of `content_length` bytes (or up to its NUL), of which the first `scanned`
    /// bytes in the buffer are known not to hold a NUL.
    pub(super) fn new(content_length: Option<usize>, scanned: usize) -> Streaming {
        Streaming {
            remaining: content_length,
            received: 0,
            scan: scanned,
        }
    }

    /// The next piece of the body, its end, or `None` until more bytes arrive.
    pub(super) fn step(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Piece>, FrameError> {
        match self.remaining {
            Some(0) => match buf.first() {
                None => Ok(None),
                Some(0) => {
                    buf.advance(1);
                    Ok(Some(Piece::BodyEnd))
                }
                Some(_) => Err(FrameError::MissingNul),
            },
            Some(remaining) => {
                let ready = remaining.min(buf.len());
                if ready < remaining.min(BODY_PART) {
                    return Ok(None);
                }
                self.remaining = Some(remaining - ready);
                self.received += ready;
                Ok(Some(Piece::BodyPart(buf.split_to(ready).freeze())))
            }
            None => self.step_to_nul(buf, limits),
        }
    }

    fn step_to_nul(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Piece>, FrameError> {
        // Never look past the body limit: beyond it the answer is an error whatever the bytes.
        let allowed = limits.max_body.saturating_sub(self.received);
        let window_end = buf.len().min(allowed.saturating_add(1));
        let searched = buf
            .get(self.scan.min(window_end)..window_end)
            .unwrap_or_default();
        if let Some(nul) = parse::find(0, searched).map(|i| self.scan + i) {
            self.scan = 0;
            if nul == 0 {
                buf.advance(1);
                return Ok(Some(Piece::BodyEnd));
            }
            self.received += nul;
            return Ok(Some(Piece::BodyPart(buf.split_to(nul).freeze())));
        }
        if window_end > allowed {
            return Err(FrameError::BodyTooLarge {
                limit: limits.max_body,
            });
        }
        if window_end < BODY_PART {
            self.scan = window_end;
            return Ok(None);
        }
        self.scan = 0;
        self.received += window_end;
        Ok(Some(Piece::BodyPart(buf.split_to(window_end).freeze())))
    }
}
