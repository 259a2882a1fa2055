//! Why the decoder refuses a frame.
//!
//! The `Display` text of a [`FrameError`] becomes the `message` header of the ERROR frame the
//! broker sends before closing the connection, so every variant says in plain words what
//! was wrong and carries just enough detail (a line number, a limit) for a client author to
//! find the fault without a packet capture.

/// Why a frame was refused. Once the decoder returns one, the byte stream cannot be resynced:
/// the caller should send an ERROR frame and close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The command line did not end within a few bytes, so it cannot be a STOMP command;
    /// refusing early keeps a garbage stream from being buffered.
    #[error("command line is longer than {limit} bytes")]
    CommandTooLong {
        /// The longest command line accepted.
        limit: usize,
    },
    /// The command line is not one of the STOMP commands (they are case-sensitive).
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// A header line without the `:` that separates name from value.
    #[error("header line {line} has no colon")]
    MissingColon {
        /// Header lines are counted from 1; the command line is not counted.
        line: usize,
    },
    /// A header line longer than [`Limits::max_header_line`](super::Limits).
    #[error("header line {line} is longer than the {limit}-byte limit")]
    HeaderLineTooLong {
        /// Header lines are counted from 1; the command line is not counted.
        line: usize,
        /// The longest header line accepted.
        limit: usize,
    },
    /// More header lines than [`Limits::max_headers`](super::Limits).
    #[error("frame has more than {limit} headers, the limit is {limit}")]
    TooManyHeaders {
        /// The most header lines accepted.
        limit: usize,
    },
    /// Header names and values are text; the spec requires UTF-8.
    #[error("header line {line} is not valid UTF-8")]
    NotUtf8 {
        /// Header lines are counted from 1; the command line is not counted.
        line: usize,
    },
    /// A backslash followed by a character the negotiated version does not define
    /// (the spec requires this to be a fatal error).
    #[error("invalid escape sequence '{sequence}' in header line {line}")]
    InvalidEscape {
        /// The backslash and the character after it, as received.
        sequence: String,
        /// Header lines are counted from 1; the command line is not counted.
        line: usize,
    },
    /// A name or value ending in a lone backslash: an escape cut in half.
    #[error("header line {line} ends with an incomplete escape sequence '\\'")]
    IncompleteEscape {
        /// Header lines are counted from 1; the command line is not counted.
        line: usize,
    },
    /// A `content-length` that is not a non-negative decimal integer.
    #[error("content-length '{0}' is not a number")]
    InvalidContentLength(String),
    /// A `content-length` announcing more than [`Limits::max_body`](super::Limits); refused
    /// before any of the body is buffered.
    #[error("content-length {length} exceeds the {limit}-byte body limit")]
    ContentLengthTooLarge {
        /// The announced length, as received (it may not fit in a `usize`).
        length: String,
        /// The largest body accepted.
        limit: usize,
    },
    /// A body without `content-length` that ran past [`Limits::max_body`](super::Limits)
    /// without its terminating NUL.
    #[error("body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The largest body accepted.
        limit: usize,
    },
    /// The frame (everything before its NUL) is larger than
    /// [`Limits::max_frame_size`](super::Limits).
    #[error("frame exceeds the {limit}-byte size limit")]
    FrameTooLarge {
        /// The largest frame accepted.
        limit: usize,
    },
    /// `content-length` bytes of body were read but the next byte was not the NUL that must
    /// end every frame: the length was wrong.
    #[error("frame body not followed by NUL")]
    MissingNul,
}

/// Longest piece of client data quoted back in an error message, so that an ERROR frame
/// stays small however large the offending input was.
const MAX_QUOTE: usize = 64;

/// Client bytes made safe to quote in an error message: lossy UTF-8, control characters
/// (NUL, CR, LF...) spelled out so they cannot break the ERROR frame, and cut after
/// [`MAX_QUOTE`] bytes of input text.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(MAX_QUOTE));
    for (at, c) in text.char_indices() {
        if at >= MAX_QUOTE {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_plain() {
        assert_eq!(
            FrameError::UnknownCommand("FOO".into()).to_string(),
            "unknown command 'FOO'"
        );
        assert_eq!(
            FrameError::MissingColon { line: 3 }.to_string(),
            "header line 3 has no colon"
        );
        assert_eq!(
            FrameError::BodyTooLarge { limit: 1048576 }.to_string(),
            "body exceeds the 1048576-byte limit"
        );
        assert_eq!(
            FrameError::InvalidEscape {
                sequence: "\\t".into(),
                line: 1
            }
            .to_string(),
            "invalid escape sequence '\\t' in header line 1"
        );
        assert_eq!(
            FrameError::InvalidContentLength("abc".into()).to_string(),
            "content-length 'abc' is not a number"
        );
        assert_eq!(
            FrameError::MissingNul.to_string(),
            "frame body not followed by NUL"
        );
    }

    #[test]
    fn quote_is_bounded_and_lossy() {
        assert_eq!(quote(b"abc"), "abc");
        assert_eq!(quote(b"a\xffb"), "a\u{fffd}b");
        let long = "é".repeat(100);
        let q = quote(long.as_bytes());
        assert!(q.len() <= MAX_QUOTE + 4);
        assert!(q.ends_with('…'));
        assert_eq!(quote(b"a\0b\n"), "a\\0b\\n");
    }
}
