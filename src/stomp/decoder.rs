//! Incremental STOMP frame decoder.
//!
//! Bytes arrive from the socket in arbitrary pieces, so [`Decoder::decode`] must cope with a
//! frame cut at any byte and must not redo work each time a piece arrives: a 16 MiB body
//! trickling in must not be rescanned from the start on every read. The decoder therefore
//! keeps, between calls, what it has already learnt about the frame at the front of the
//! buffer (its command, its parsed headers as offsets, how far it has searched for the next
//! line end or NUL). Nothing is consumed until a whole item is there, and then the frame is
//! split off the buffer so the body and the unescaped header strings share its memory.
//!
//! Every limit is checked as soon as it can be known to be exceeded, so a hostile peer can
//! never make the broker buffer more than the limits allow while waiting for a line end or
//! a NUL.

use super::error::{FrameError, quote};
use super::escape::Escaping;
use super::frame::{Command, Frame, Headers, Version};
use super::parse::{self, Length};
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use std::borrow::Cow;
use std::ops::Range;

/// Longest command line accepted, line end included. The longest command, `UNSUBSCRIBE`,
/// is 11 bytes; anything much longer is garbage and should be refused before it is buffered.
pub const MAX_COMMAND_LINE: usize = 64;

/// Limits on what one inbound frame may be. Exceeding one is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole frame in bytes: command line, headers, blank line and body, not counting
    /// the terminating NUL.
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

impl Limits {
    /// These limits with no frame, header line or body larger than `max`: what a connection
    /// that has not yet authenticated gets, so it can make the broker buffer only about a
    /// CONNECT frame's worth of bytes.
    pub fn capped(self, max: usize) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size.min(max),
            max_headers: self.max_headers,
            max_header_line: self.max_header_line.min(max),
            max_body: self.max_body.min(max),
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

/// One step of [`Decoder::decode_piece`]: a whole item, or a large body in pieces.
///
/// A body over the decoder's streaming threshold is not gathered in the read buffer: the
/// decoder hands over the frame's head first ([`Piece::LargeHead`], with an empty body), then
/// the body as it arrives ([`Piece::BodyPart`]s of about [`BODY_PART`] bytes), then
/// [`Piece::BodyEnd`] once its NUL is read, so the caller can write the body elsewhere and
/// memory stays bounded whatever `max_body` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A heart-beat or a frame held whole in memory.
    Whole(Decoded),
    /// The command and headers of a frame whose body follows in pieces.
    LargeHead(Frame),
    /// The next bytes of the large body, in order.
    BodyPart(Bytes),
    /// The large body is complete (its terminating NUL was consumed).
    BodyEnd,
}

/// Body bytes gathered before a [`Piece::BodyPart`] is handed over (less only for the body's
/// last bytes): large enough that writing pieces costs few calls, small enough to bound
/// what one connection buffers.
pub const BODY_PART: usize = 256 * 1024;

/// Turns a byte stream into frames, however the stream is split.
///
/// One decoder belongs to one connection and one buffer: between calls the caller may only
/// append to the buffer (or let `decode` consume from it), because the decoder remembers
/// offsets into the frame at its front. After an error the stream cannot be resynced; the
/// decoder forgets the partial frame, and the caller should close the connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    pending: Option<Pending>,
    /// Bodies longer than this are streamed (see [`Piece`]); `None`: never.
    stream_above: Option<usize>,
    /// The large body being streamed, if one is.
    streaming: Option<body_stream::Streaming>,
}

/// What is known about the partly received frame at the front of the buffer. All offsets
/// count from the start of the buffer, which is the start of the frame.
#[derive(Debug, Clone)]
struct Pending {
    command: Command,
    escaping: Escaping,
    headers: Vec<RawHeader>,
    /// The first `content-length`, once its header line has been read.
    content_length: Option<usize>,
    /// Start of the header line being read or, once `in_body`, start of the body.
    start: usize,
    /// Where the search for the next LF (headers) or NUL (body) resumes; everything
    /// between `start` and here is known not to contain it.
    scan: usize,
    in_body: bool,
}

#[derive(Debug, Clone)]
struct RawHeader {
    name: Text,
    value: Text,
    line: usize,
}

/// A header name or value as found on the wire.
#[derive(Debug, Clone)]
enum Text {
    /// Valid UTF-8 needing no unescaping, at these offsets: it will be sliced out of the
    /// frame's bytes without a copy.
    Span(Range<usize>),
    /// Text that had escapes, already unescaped.
    Owned(ByteString),
}

impl Text {
    /// Keeps borrowed (unescaped-free) text as a span at offset `at` of the buffer.
    fn new(text: Cow<'_, str>, at: usize) -> Text {
        match text {
            Cow::Borrowed(s) => Text::Span(at..at + s.len()),
            Cow::Owned(s) => Text::Owned(s.into()),
        }
    }

    fn into_string(self, frame: &Bytes, line: usize) -> Result<ByteString, FrameError> {
        match self {
            Text::Owned(s) => Ok(s),
            Text::Span(range) => {
                let Some(raw) = frame.get(range.clone()) else {
                    return Err(FrameError::NotUtf8 { line });
                };
                debug_assert!(std::str::from_utf8(raw).is_ok());
                // SAFETY: a span is made only from the `&str` that `unescaped` validated
                // with `from_utf8`, over these very bytes of the same frame, and borrowed
                // unchanged (nothing to unescape). Validating them again here was a second
                // UTF-8 pass over every header of every frame.
                Ok(unsafe { ByteString::from_bytes_unchecked(frame.slice(range)) })
            }
        }
    }
}

/// How a decode step ended when it did not produce an item.
enum Progress {
    NeedMore,
    Ready,
}

impl Decoder {
    /// A decoder for a new connection (escaping rules of 1.2 until told otherwise).
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            version: Version::V1_2,
            pending: None,
            stream_above: None,
            streaming: None,
        }
    }

    /// Makes [`Decoder::decode_piece`] stream bodies longer than `threshold` bytes instead of
    /// buffering them (`None`: never). `max_body` still bounds a streamed body; the frame
    /// size limit then bounds only its head, since the body is not held.
    pub fn stream_bodies_above(&mut self, threshold: Option<usize>) {
        self.stream_above = threshold;
    }

    /// Switches escaping rules once the session has negotiated a version. A frame already
    /// partly read keeps the rules it started with.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Replaces the limits for the frames that follow, e.g. the small pre-CONNECT limits by
    /// the acceptor's own once CONNECT has succeeded. Call it between frames: a frame already
    /// partly read is checked against the new limits from its next byte on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The limits this decoder enforces, for callers that report them (e.g. in CONNECTED).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partly read frame, for a caller that discards its buffer.
    pub fn reset(&mut self) {
        self.pending = None;
        self.streaming = None;
    }

    /// Decodes at most one item from the front of `buf`, consuming exactly its bytes.
    /// `Ok(None)` means more bytes are needed; nothing has been consumed then. This never
    /// streams a body, whatever [`Decoder::stream_bodies_above`] says: every body is held
    /// whole, within the limits.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, FrameError> {
        let threshold = self.stream_above.take();
        let result = self.decode_piece(buf);
        self.stream_above = threshold;
        match result? {
            None => Ok(None),
            Some(Piece::Whole(item)) => Ok(Some(item)),
            // Only reachable after decode_piece started a large body and the caller
            // switched: refuse rather than hand out a piece as a frame.
            Some(_) => {
                self.reset();
                Err(FrameError::BodyTooLarge {
                    limit: self.limits.max_body,
                })
            }
        }
    }

    /// Like [`Decoder::decode`], but a body over the threshold set by
    /// [`Decoder::stream_bodies_above`] comes out in pieces (see [`Piece`]).
    pub fn decode_piece(&mut self, buf: &mut BytesMut) -> Result<Option<Piece>, FrameError> {
        let result = match self.streaming.as_mut() {
            Some(streaming) => streaming.step(buf, &self.limits),
            None => self.step(buf),
        };
        match &result {
            Err(_) => self.reset(),
            Ok(Some(Piece::BodyEnd)) => self.streaming = None,
            Ok(_) => {}
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Piece>, FrameError> {
        // A buffer shorter than what was already scanned is not the one we were reading:
        // start over rather than trust stale offsets.
        if self.pending.as_ref().is_some_and(|p| p.scan > buf.len()) {
            self.pending = None;
        }
        let mut pending = match self.pending.take() {
            Some(p) => p,
            None => match self.start(buf)? {
                Start::NeedMore => return Ok(None),
                Start::HeartBeat(eol) => {
                    buf.advance(eol);
                    return Ok(Some(Piece::Whole(Decoded::HeartBeat)));
                }
                Start::Frame(p) => p,
            },
        };
        let progress = if pending.in_body {
            Progress::Ready
        } else {
            read_headers(&mut pending, buf, &self.limits)?
        };
        if matches!(progress, Progress::NeedMore) {
            self.pending = Some(pending);
            return Ok(None);
        }
        let threshold = self.stream_above.unwrap_or(usize::MAX);
        if pending.content_length.is_some_and(|n| n > threshold) {
            return self.begin_streaming(pending, buf);
        }
        // Without a content-length, a body is looked for only up to the threshold: past it
        // without a NUL, the body is streamed.
        let capped = Limits {
            max_body: self.limits.max_body.min(threshold),
            ..self.limits
        };
        let nul = match find_body_end(&mut pending, buf, &capped) {
            Err(FrameError::BodyTooLarge { .. }) if threshold < self.limits.max_body => {
                return self.begin_streaming(pending, buf);
            }
            found => found?,
        };
        match nul {
            None => {
                self.pending = Some(pending);
                Ok(None)
            }
            Some(nul) => build(pending, buf, nul).map(|f| Some(Piece::Whole(Decoded::Frame(f)))),
        }
    }

    /// Hands over the head of a frame whose body is to be streamed, and remembers how the
    /// body ends.
    fn begin_streaming(
        &mut self,
        p: Pending,
        buf: &mut BytesMut,
    ) -> Result<Option<Piece>, FrameError> {
        let scanned = p.scan.saturating_sub(p.start);
        let content_length = p.content_length;
        let head = build_head(p, buf)?;
        self.streaming = Some(body_stream::Streaming::new(content_length, scanned));
        Ok(Some(Piece::LargeHead(head)))
    }

    /// Reads what starts the next item: a heart-beat EOL or a command line.
    fn start(&self, buf: &[u8]) -> Result<Start, FrameError> {
        match buf {
            [] | [b'\r'] => return Ok(Start::NeedMore),
            [b'\n', ..] => return Ok(Start::HeartBeat(1)),
            [b'\r', b'\n', ..] => return Ok(Start::HeartBeat(2)),
            _ => {}
        }
        let window = buf.get(..MAX_COMMAND_LINE).unwrap_or(buf);
        let Some(lf) = parse::find(b'\n', window) else {
            // Commands are upper-case ASCII: anything else is refused without waiting for
            // a line end that may never come.
            if window
                .iter()
                .any(|&b| !(b.is_ascii_uppercase() || b == b'\r'))
            {
                return Err(FrameError::UnknownCommand(quote(window)));
            }
            return if buf.len() >= MAX_COMMAND_LINE {
                Err(FrameError::CommandTooLong {
                    limit: MAX_COMMAND_LINE,
                })
            } else {
                Ok(Start::NeedMore)
            };
        };
        let line = parse::strip_cr(window.get(..lf).unwrap_or_default());
        let command =
            Command::parse(line).ok_or_else(|| FrameError::UnknownCommand(quote(line)))?;
        Ok(Start::Frame(Pending {
            command,
            escaping: Escaping::for_frame(self.version, command),
            headers: Vec::new(),
            content_length: None,
            start: lf + 1,
            scan: lf + 1,
            in_body: false,
        }))
    }
}

enum Start {
    NeedMore,
    HeartBeat(usize),
    Frame(Pending),
}

/// Reads header lines until the blank line that ends them.
fn read_headers(p: &mut Pending, buf: &[u8], limits: &Limits) -> Result<Progress, FrameError> {
    loop {
        let line_no = p.headers.len() + 1;
        // Never look further than the longest acceptable line (plus CR LF) or frame: past
        // that the answer is an error whatever the bytes are.
        let window_end = buf
            .len()
            .min(
                p.start
                    .saturating_add(limits.max_header_line)
                    .saturating_add(2),
            )
            .min(limits.max_frame_size.saturating_add(1));
        let searched = buf.get(p.scan..window_end).unwrap_or_default();
        let Some(lf) = parse::find(b'\n', searched).map(|i| p.scan + i) else {
            p.scan = p.scan.max(window_end);
            let partial = buf.get(p.start..window_end).unwrap_or_default();
            let too_long = partial.len() > limits.max_header_line.saturating_add(1)
                || (partial.len() > limits.max_header_line && !partial.ends_with(b"\r"));
            if too_long {
                return Err(FrameError::HeaderLineTooLong {
                    line: line_no,
                    limit: limits.max_header_line,
                });
            }
            if window_end > limits.max_frame_size {
                return Err(frame_too_large(limits));
            }
            return Ok(Progress::NeedMore);
        };
        let next = lf + 1;
        if next > limits.max_frame_size {
            return Err(frame_too_large(limits));
        }
        let line = parse::strip_cr(buf.get(p.start..lf).unwrap_or_default());
        if line.is_empty() {
            p.start = next;
            p.scan = next;
            p.in_body = true;
            return Ok(Progress::Ready);
        }
        if line.len() > limits.max_header_line {
            return Err(FrameError::HeaderLineTooLong {
                line: line_no,
                limit: limits.max_header_line,
            });
        }
        if line_no > limits.max_headers {
            return Err(FrameError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let header = read_header(p, line, line_no, limits)?;
        p.headers.push(header);
        p.start = next;
        p.scan = next;
    }
}

/// Parses one header line (without its line end) starting at offset `p.start`.
fn read_header(
    p: &mut Pending,
    line: &[u8],
    line_no: usize,
    limits: &Limits,
) -> Result<RawHeader, FrameError> {
    let (name, value) = parse::header(line).ok_or(FrameError::MissingColon { line: line_no })?;
    let name_at = p.start;
    let value_at = name_at + name.len() + 1;
    let name = unescaped(p.escaping, name, line_no)?;
    let value = unescaped(p.escaping, value, line_no)?;
    if p.content_length.is_none() && name == "content-length" {
        p.content_length = Some(content_length(&value, limits)?);
    }
    Ok(RawHeader {
        name: Text::new(name, name_at),
        value: Text::new(value, value_at),
        line: line_no,
    })
}

/// Validates one name or value as UTF-8 and undoes its escaping.
fn unescaped(escaping: Escaping, raw: &[u8], line: usize) -> Result<Cow<'_, str>, FrameError> {
    let s = std::str::from_utf8(raw).map_err(|_| FrameError::NotUtf8 { line })?;
    escaping.unescape(s, line)
}

/// The body length a `content-length` value announces, refused early if over the limit.
fn content_length(value: &str, limits: &Limits) -> Result<usize, FrameError> {
    match parse::content_length(value) {
        Length::Bytes(n) if n <= limits.max_body => Ok(n),
        Length::Bytes(_) | Length::Overflow => Err(FrameError::ContentLengthTooLarge {
            length: quote(value.as_bytes()),
            limit: limits.max_body,
        }),
        Length::Invalid => Err(FrameError::InvalidContentLength(quote(value.as_bytes()))),
    }
}

/// Finds the NUL that ends the body, once the headers are complete.
fn find_body_end(
    p: &mut Pending,
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<usize>, FrameError> {
    let body_start = p.start;
    if let Some(length) = p.content_length {
        let nul = body_start
            .checked_add(length)
            .filter(|&nul| nul <= limits.max_frame_size)
            .ok_or_else(|| frame_too_large(limits))?;
        return match buf.get(nul) {
            None => Ok(None),
            Some(0) => Ok(Some(nul)),
            Some(_) => Err(FrameError::MissingNul),
        };
    }
    let window_end = buf
        .len()
        .min(body_start.saturating_add(limits.max_body).saturating_add(1))
        .min(limits.max_frame_size.saturating_add(1));
    let searched = buf.get(p.scan..window_end).unwrap_or_default();
    if let Some(nul) = parse::find(0, searched).map(|i| p.scan + i) {
        if nul > limits.max_frame_size {
            return Err(frame_too_large(limits));
        }
        return Ok(Some(nul));
    }
    p.scan = p.scan.max(window_end);
    if window_end - body_start.min(window_end) > limits.max_body {
        return Err(FrameError::BodyTooLarge {
            limit: limits.max_body,
        });
    }
    if window_end > limits.max_frame_size {
        return Err(frame_too_large(limits));
    }
    Ok(None)
}

fn frame_too_large(limits: &Limits) -> FrameError {
    FrameError::FrameTooLarge {
        limit: limits.max_frame_size,
    }
}

/// Splits the complete frame (through its NUL at `nul`) off the buffer and assembles it,
/// slicing the body and unescaped header text out of the frame's bytes without copying.
fn build(p: Pending, buf: &mut BytesMut, nul: usize) -> Result<Frame, FrameError> {
    if nul >= buf.len() || p.start > nul {
        return Err(FrameError::MissingNul);
    }
    let bytes = buf.split_to(nul + 1).freeze();
    let body = bytes.slice(p.start..nul);
    Ok(Frame {
        headers: headers_of(p.headers, &bytes)?,
        command: p.command,
        body,
    })
}

/// The headers of a frame whose bytes are `bytes`, unescaped out of them without copying
/// where nothing needed unescaping.
fn headers_of(raw: Vec<RawHeader>, bytes: &Bytes) -> Result<Headers, FrameError> {
    let mut headers = Headers::with_capacity(raw.len());
    for h in raw {
        let name = h.name.into_string(bytes, h.line)?;
        let value = h.value.into_string(bytes, h.line)?;
        headers.push(name, value);
    }
    Ok(headers)
}

/// Splits the head (command line, headers and blank line, ending at `p.start`) of a frame
/// whose body is streamed off the buffer, and assembles it with an empty body.
fn build_head(p: Pending, buf: &mut BytesMut) -> Result<Frame, FrameError> {
    if p.start > buf.len() {
        return Err(FrameError::MissingNul);
    }
    let bytes = buf.split_to(p.start).freeze();
    Ok(Frame {
        headers: headers_of(p.headers, &bytes)?,
        command: p.command,
        body: Bytes::new(),
    })
}

#[path = "body_stream.rs"]
mod body_stream;

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
