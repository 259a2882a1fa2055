//! Header (un)escaping, the one place where the STOMP versions disagree on the wire format.
//!
//! 1.0 has no escaping at all; 1.1 escapes `\n`, `:` and `\`; 1.2 also escapes `\r`.
//! CONNECT, STOMP and CONNECTED are never escaped, whatever the version, so that a 1.0 peer
//! can read the handshake. Both directions go through [`Escaping`] so that the rules cannot
//! drift apart between the decoder and the encoder.

use super::error::FrameError;
use super::frame::{Command, Version};
use bytes::{BufMut, BytesMut};
use std::borrow::Cow;

/// Which escaping rules apply to one frame's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// 1.0, and the handshake frames of every version.
    None,
    /// `\n`, `\c`, `\\`.
    V1_1,
    /// `\n`, `\c`, `\\` and `\r`.
    V1_2,
}

impl Escaping {
    /// The rules for a frame, from the negotiated version and its command.
    pub(crate) fn for_frame(version: Version, command: Command) -> Escaping {
        if !command.escapes_headers() {
            return Escaping::None;
        }
        match version {
            Version::V1_0 => Escaping::None,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        }
    }

    /// Undoes the escaping of one header name or value. Borrows when there is nothing to
    /// undo, which is the common case, so that the decoder can keep the text zero-copy.
    /// `line` only feeds the error message.
    pub(crate) fn unescape(self, text: &str, line: usize) -> Result<Cow<'_, str>, FrameError> {
        if self == Escaping::None || !text.contains('\\') {
            return Ok(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let mut after = rest[at + 1..].chars();
            let decoded = match after.next() {
                None => return Err(FrameError::IncompleteEscape { line }),
                Some('n') => '\n',
                Some('c') => ':',
                Some('\\') => '\\',
                Some('r') if self == Escaping::V1_2 => '\r',
                Some(other) => {
                    return Err(FrameError::InvalidEscape {
                        sequence: format!("\\{other}"),
                        line,
                    });
                }
            };
            out.push(decoded);
            rest = after.as_str();
        }
        out.push_str(rest);
        Ok(Cow::Owned(out))
    }

    /// Appends one header name or value to `out`, escaped, without an intermediate string.
    ///
    /// Where the rules have no escaping, a CR or LF cannot be represented at all: it would
    /// end the header line and let one peer inject headers into another's frame (a 1.2
    /// sender's value relayed to a 1.0 subscriber, say). Those bytes are written as a space.
    pub(crate) fn escape_into(self, out: &mut BytesMut, text: &str) {
        let table = self.table();
        let mut rest = text.as_bytes();
        while let Some(at) = rest.iter().position(|&b| table[b as usize]) {
            let (plain, tail) = rest.split_at(at);
            out.extend_from_slice(plain);
            let (special, tail) = match tail.split_first() {
                Some(split) => split,
                None => break,
            };
            match (self, *special) {
                (Escaping::None, _) => out.put_u8(b' '),
                (_, b'\n') => out.extend_from_slice(b"\\n"),
                (_, b'\r') => out.extend_from_slice(b"\\r"),
                (_, b':') => out.extend_from_slice(b"\\c"),
                (_, other) => out.extend_from_slice(&[b'\\', other]),
            }
            rest = tail;
        }
        out.extend_from_slice(rest);
    }

    /// Which bytes need escaping, as a lookup table: the encoder scans every header value
    /// of every MESSAGE, so the per-byte test is one load instead of a match on the rules.
    fn table(self) -> &'static [bool; 256] {
        const fn table(special: &[u8]) -> [bool; 256] {
            let mut t = [false; 256];
            let mut i = 0;
            while i < special.len() {
                t[special[i] as usize] = true;
                i += 1;
            }
            t
        }
        static NONE: [bool; 256] = table(b"\n\r");
        static V1_1: [bool; 256] = table(b"\n:\\");
        static V1_2: [bool; 256] = table(b"\n\r:\\");
        match self {
            Escaping::None => &NONE,
            Escaping::V1_1 => &V1_1,
            Escaping::V1_2 => &V1_2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(esc: Escaping, text: &str) -> String {
        let mut out = BytesMut::new();
        esc.escape_into(&mut out, text);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn handshake_frames_never_escape() {
        for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
            for c in [Command::Connect, Command::Stomp, Command::Connected] {
                assert_eq!(Escaping::for_frame(v, c), Escaping::None);
            }
        }
        assert_eq!(
            Escaping::for_frame(Version::V1_0, Command::Send),
            Escaping::None
        );
        assert_eq!(
            Escaping::for_frame(Version::V1_1, Command::Send),
            Escaping::V1_1
        );
        assert_eq!(
            Escaping::for_frame(Version::V1_2, Command::Message),
            Escaping::V1_2
        );
    }

    #[test]
    fn escape_per_version() {
        let s = "a:b\\c\nd\re";
        assert_eq!(escaped(Escaping::V1_2, s), "a\\cb\\\\c\\nd\\re");
        assert_eq!(escaped(Escaping::V1_1, s), "a\\cb\\\\c\\nd\re");
        assert_eq!(escaped(Escaping::None, s), "a:b\\c d e");
        assert_eq!(escaped(Escaping::V1_2, "plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn unescape_per_version() {
        let wire = "a\\cb\\\\c\\nd";
        assert_eq!(
            Escaping::V1_1.unescape(wire, 1).unwrap(),
            "a:b\\c\nd".to_string()
        );
        assert_eq!(Escaping::V1_2.unescape("x\\ry", 1).unwrap(), "x\ry");
        assert_eq!(Escaping::None.unescape(wire, 1).unwrap(), wire);
        assert!(matches!(
            Escaping::V1_2.unescape("plain", 1).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn undefined_escapes_are_errors() {
        assert_eq!(
            Escaping::V1_1.unescape("x\\ry", 2),
            Err(FrameError::InvalidEscape {
                sequence: "\\r".into(),
                line: 2
            })
        );
        assert_eq!(
            Escaping::V1_2.unescape("x\\ty", 4),
            Err(FrameError::InvalidEscape {
                sequence: "\\t".into(),
                line: 4
            })
        );
        assert_eq!(
            Escaping::V1_2.unescape("x\\é", 1),
            Err(FrameError::InvalidEscape {
                sequence: "\\é".into(),
                line: 1
            })
        );
        assert_eq!(
            Escaping::V1_2.unescape("x\\", 5),
            Err(FrameError::IncompleteEscape { line: 5 })
        );
    }

    #[test]
    fn escape_then_unescape_roundtrips() {
        let s = "k:v\\w\nx\ry∑";
        let wire = escaped(Escaping::V1_2, s);
        assert_eq!(Escaping::V1_2.unescape(&wire, 1).unwrap(), s);
    }
}
