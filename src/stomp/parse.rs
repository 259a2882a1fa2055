//! The small nom parsers the decoder is built from.
//!
//! The decoder owns the incremental state machine (what has been scanned, which limits
//! apply); these functions only recognise the pieces of one frame in bytes already known
//! to be there. nom's `take_until` on a one-byte needle is a `memchr` call, so scanning stays
//! fast on large bodies.

use nom::bytes::complete::{tag, take_until};
use nom::character::complete::digit1;
use nom::combinator::{all_consuming, rest};
use nom::sequence::separated_pair;
use nom::{IResult, Parser};

/// Offset of the first `needle` byte in `haystack`.
pub(crate) fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    let needle = [needle];
    let found: IResult<&[u8], &[u8]> = take_until(&needle[..]).parse(haystack);
    found.ok().map(|(_, before)| before.len())
}

/// A line without its line end: every version accepts an optional CR before the LF.
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a header line at its first colon into name and value. A value may contain
/// further colons (1.0 peers send them unescaped), so only the first one separates.
pub(crate) fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let parsed: IResult<&[u8], (&[u8], &[u8])> =
        separated_pair(take_until(":"), tag(":"), rest).parse(line);
    parsed.ok().map(|(_, pair)| pair)
}

/// What a `content-length` value turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Length {
    /// A usable length.
    Bytes(usize),
    /// Only digits, but more than a `usize` holds: too large rather than malformed.
    Overflow,
    /// Not a non-negative decimal integer.
    Invalid,
}

/// Parses a `content-length` value: decimal digits only, no sign, no spaces.
pub(crate) fn content_length(value: &str) -> Length {
    let digits: IResult<&str, &str> = all_consuming(digit1).parse(value);
    match digits {
        Err(_) => Length::Invalid,
        Ok((_, digits)) => match digits.parse::<usize>() {
            Ok(n) => Length::Bytes(n),
            Err(_) => Length::Overflow,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_bytes() {
        assert_eq!(find(b'\n', b"abc\nd\n"), Some(3));
        assert_eq!(find(0, b"abc"), None);
        assert_eq!(find(0, b""), None);
    }

    #[test]
    fn header_split_at_first_colon() {
        assert_eq!(header(b"a:b:c"), Some((&b"a"[..], &b"b:c"[..])));
        assert_eq!(header(b":v"), Some((&b""[..], &b"v"[..])));
        assert_eq!(header(b"k:"), Some((&b"k"[..], &b""[..])));
        assert_eq!(header(b"novalue"), None);
    }

    #[test]
    fn content_lengths() {
        assert_eq!(content_length("0"), Length::Bytes(0));
        assert_eq!(content_length("0012"), Length::Bytes(12));
        assert_eq!(content_length("99999999999999999999999"), Length::Overflow);
        for bad in ["", "abc", "-1", "+1", " 1", "1 ", "1.0", "١"] {
            assert_eq!(content_length(bad), Length::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn cr_is_optional() {
        assert_eq!(strip_cr(b"abc\r"), b"abc");
        assert_eq!(strip_cr(b"abc"), b"abc");
        assert_eq!(strip_cr(b"\r"), b"");
    }
}
