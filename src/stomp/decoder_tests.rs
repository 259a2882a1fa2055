//! Unit tests of the decoder, one per rule, plus split-at-every-byte checks.

use super::*;
use crate::stomp::encode_frame;

fn decoder() -> Decoder {
    Decoder::new(Limits::default())
}

/// Decodes everything in `input` in one buffer; returns the items and the first error.
fn decode_all(dec: &mut Decoder, input: &[u8]) -> (Vec<Decoded>, Option<FrameError>) {
    let mut buf = BytesMut::from(input);
    let mut items = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

fn one_frame(version: Version, input: &[u8]) -> Result<Frame, FrameError> {
    let mut dec = decoder();
    dec.set_version(version);
    let mut buf = BytesMut::from(input);
    match dec.decode(&mut buf)? {
        Some(Decoded::Frame(f)) => {
            assert!(buf.is_empty(), "frame must consume exactly its bytes");
            Ok(f)
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn frame(input: &[u8]) -> Frame {
    one_frame(Version::V1_2, input).unwrap()
}

fn error(input: &[u8]) -> FrameError {
    error_with(Limits::default(), input)
}

fn error_with(limits: Limits, input: &[u8]) -> FrameError {
    let mut dec = Decoder::new(limits);
    let (_, err) = decode_all(&mut dec, input);
    err.unwrap_or_else(|| panic!("expected an error for {input:?}"))
}

fn headers(f: &Frame) -> Vec<(&str, &str)> {
    f.headers.iter().collect()
}

#[test]
fn simple_frame() {
    let f = frame(b"SEND\ndestination:/queue/a\n\nhello\0");
    assert_eq!(f.command, Command::Send);
    assert_eq!(headers(&f), [("destination", "/queue/a")]);
    assert_eq!(&f.body[..], b"hello");
}

#[test]
fn body_and_headers_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"SEND\ndestination:q\n\nhello\0"[..]);
    let base = buf.as_ptr() as usize;
    let range = base..base + buf.len();
    let Some(Decoded::Frame(f)) = decoder().decode(&mut buf).unwrap() else {
        panic!("no frame")
    };
    assert!(range.contains(&(f.body.as_ptr() as usize)));
    let (name, value) = &f.headers.entries()[0];
    assert!(range.contains(&(name.as_bytes().as_ptr() as usize)));
    assert!(range.contains(&(value.as_bytes().as_ptr() as usize)));
}

#[test]
fn empty_or_partial_input_needs_more_and_consumes_nothing() {
    for partial in [
        &b""[..],
        b"\r",
        b"SEN",
        b"SEND",
        b"SEND\n",
        b"SEND\ndest",
        b"SEND\ndestination:q\n",
        b"SEND\ndestination:q\n\nhel",
        b"SEND\ncontent-length:3\n\nab",
        b"SEND\ncontent-length:3\n\nabc",
    ] {
        let mut dec = decoder();
        let mut buf = BytesMut::from(partial);
        assert_eq!(dec.decode(&mut buf), Ok(None), "{partial:?}");
        assert_eq!(&buf[..], partial);
    }
}

#[test]
fn bare_eols_are_heartbeats() {
    let (items, err) = decode_all(&mut decoder(), b"\n\r\n\nSEND\n\n\0\r\n");
    assert_eq!(err, None);
    let f = Decoded::Frame(Frame::new(Command::Send));
    let hb = Decoded::HeartBeat;
    assert_eq!(items, [hb.clone(), hb.clone(), hb.clone(), f, hb]);
}

#[test]
fn lone_cr_waits_for_lf() {
    let mut dec = decoder();
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\n");
    assert_eq!(dec.decode(&mut buf), Ok(Some(Decoded::HeartBeat)));
    assert!(buf.is_empty());
}

#[test]
fn crlf_line_ends_in_every_version() {
    for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
        let f = one_frame(v, b"SEND\r\ndestination:q\r\nid:1\r\n\r\nbody\0").unwrap();
        assert_eq!(f.command, Command::Send);
        assert_eq!(headers(&f), [("destination", "q"), ("id", "1")]);
        assert_eq!(&f.body[..], b"body");
    }
}

#[test]
fn escapes_in_1_0_are_literal() {
    let f = one_frame(Version::V1_0, b"SEND\nk\\c:a\\nb\\t\\\n\n\0").unwrap();
    assert_eq!(headers(&f), [("k\\c", "a\\nb\\t\\")]);
}

#[test]
fn escapes_in_1_1() {
    let f = one_frame(Version::V1_1, b"SEND\nk\\c:a\\nb\\\\c\\cd\n\n\0").unwrap();
    assert_eq!(headers(&f), [("k:", "a\nb\\c:d")]);
    assert_eq!(
        one_frame(Version::V1_1, b"SEND\nk:a\\rb\n\n\0"),
        Err(FrameError::InvalidEscape {
            sequence: "\\r".into(),
            line: 1
        })
    );
}

#[test]
fn escapes_in_1_2_include_cr() {
    let f = one_frame(Version::V1_2, b"SEND\nk:a\\rb\\n\\c\\\\\n\n\0").unwrap();
    assert_eq!(headers(&f), [("k", "a\rb\n:\\")]);
}

#[test]
fn handshake_frames_are_never_unescaped() {
    for v in [Version::V1_1, Version::V1_2] {
        for cmd in ["CONNECT", "STOMP", "CONNECTED"] {
            let input = format!("{cmd}\nlogin:a\\nb\\t\n\n\0");
            let f = one_frame(v, input.as_bytes()).unwrap();
            assert_eq!(headers(&f), [("login", "a\\nb\\t")], "{cmd} {v}");
        }
    }
}

#[test]
fn undefined_escape_is_an_error() {
    assert_eq!(
        error(b"SEND\nk:a\\tb\n\n\0"),
        FrameError::InvalidEscape {
            sequence: "\\t".into(),
            line: 1
        }
    );
    assert_eq!(
        error(b"SEND\na:1\nk\\x:v\n\n\0"),
        FrameError::InvalidEscape {
            sequence: "\\x".into(),
            line: 2
        }
    );
    assert_eq!(
        error(b"SEND\nk:ab\\\n\n\0"),
        FrameError::IncompleteEscape { line: 1 }
    );
}

#[test]
fn repeated_headers_kept_in_order_first_wins() {
    let f = frame(b"MESSAGE\nfoo:1\nbar:x\nfoo:2\n\n\0");
    assert_eq!(headers(&f), [("foo", "1"), ("bar", "x"), ("foo", "2")]);
    assert_eq!(f.get("foo"), Some("1"));
}

#[test]
fn value_keeps_later_colons_and_may_be_empty() {
    let f = one_frame(Version::V1_0, b"SEND\nurl:http://x:80\nempty:\n\n\0").unwrap();
    assert_eq!(headers(&f), [("url", "http://x:80"), ("empty", "")]);
}

#[test]
fn content_length_body_may_contain_nuls() {
    let f = frame(b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&f.body[..], b"a\0b\0c");
    assert_eq!(f.get("content-length"), Some("5"));
}

#[test]
fn binary_body_roundtrips() {
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let mut input = format!("SEND\ncontent-length:{}\n\n", body.len()).into_bytes();
    input.extend_from_slice(&body);
    input.push(0);
    assert_eq!(&frame(&input).body[..], &body[..]);
}

#[test]
fn zero_content_length() {
    assert!(frame(b"SEND\ncontent-length:0\n\n\0").body.is_empty());
}

#[test]
fn first_content_length_wins() {
    let f = frame(b"SEND\ncontent-length:2\ncontent-length:junk\n\na\0\0");
    assert_eq!(&f.body[..], b"a\0");
}

#[test]
fn body_without_content_length_ends_at_first_nul() {
    let (items, err) = decode_all(&mut decoder(), b"SEND\n\nab\0cd\0");
    assert_eq!(err, Some(FrameError::UnknownCommand("cd\\0".into())));
    assert_eq!(
        items,
        [Decoded::Frame(Frame::new(Command::Send).body(&b"ab"[..]))]
    );
}

#[test]
fn content_length_not_followed_by_nul() {
    assert_eq!(
        error(b"SEND\ncontent-length:2\n\nabc\0"),
        FrameError::MissingNul
    );
}

#[test]
fn invalid_content_length() {
    for bad in ["abc", "-1", "", " 3", "3 ", "1e3"] {
        let input = format!("SEND\ncontent-length:{bad}\n\n\0");
        assert_eq!(
            error(input.as_bytes()),
            FrameError::InvalidContentLength(bad.into())
        );
    }
    assert_eq!(
        error(b"SEND\ncontent-length:abc\n\n\0").to_string(),
        "content-length 'abc' is not a number"
    );
}

#[test]
fn header_text_must_be_utf8() {
    assert_eq!(
        error(b"SEND\nk:\xff\xfe\n\n\0"),
        FrameError::NotUtf8 { line: 1 }
    );
    assert_eq!(
        error(b"SEND\na:b\n\xc3:v\n\n\0"),
        FrameError::NotUtf8 { line: 2 }
    );
    let f = frame("SEND\nnäme:välue ✓\n\n\0".as_bytes());
    assert_eq!(headers(&f), [("näme", "välue ✓")]);
}

#[test]
fn unknown_command() {
    assert_eq!(
        error(b"FOO\n\n\0"),
        FrameError::UnknownCommand("FOO".into())
    );
    assert_eq!(error(b"FOO\n\n\0").to_string(), "unknown command 'FOO'");
    // Commands are case-sensitive.
    assert_eq!(
        error(b"send\n\n\0"),
        FrameError::UnknownCommand("send".into())
    );
}

#[test]
fn garbage_command_is_refused_before_its_line_end() {
    assert_eq!(
        error(b"GET / HTTP"),
        FrameError::UnknownCommand("GET / HTTP".into())
    );
    let mut buf = BytesMut::from(&b"SUBSCR"[..]);
    assert_eq!(decoder().decode(&mut buf), Ok(None));
}

#[test]
fn header_without_colon() {
    assert_eq!(
        error(b"SEND\na:1\nb:2\nnocolon\n\n\0"),
        FrameError::MissingColon { line: 3 }
    );
    assert_eq!(
        error(b"SEND\na:1\nb:2\nnocolon\n\n\0").to_string(),
        "header line 3 has no colon"
    );
}

#[test]
fn many_frames_in_one_buffer() {
    let mut input = Vec::new();
    for i in 0..100 {
        input.extend_from_slice(format!("SEND\nn:{i}\n\nbody{i}\0\n").as_bytes());
    }
    let (items, err) = decode_all(&mut decoder(), &input);
    assert_eq!(err, None);
    assert_eq!(items.len(), 200);
    for (i, pair) in items.chunks(2).enumerate() {
        let expected = Frame::new(Command::Send)
            .header("n", i.to_string())
            .body(format!("body{i}").into_bytes());
        assert_eq!(pair, [Decoded::Frame(expected), Decoded::HeartBeat]);
    }
}

// ---- limits ----

fn small_limits() -> Limits {
    Limits {
        max_frame_size: 200,
        max_headers: 3,
        max_header_line: 20,
        max_body: 50,
    }
}

#[test]
fn command_line_too_long_is_refused_before_its_end() {
    let garbage = vec![b'A'; MAX_COMMAND_LINE];
    assert_eq!(
        error(&garbage),
        FrameError::CommandTooLong {
            limit: MAX_COMMAND_LINE
        }
    );
    let mut buf = BytesMut::from(&garbage[..MAX_COMMAND_LINE - 1]);
    assert_eq!(decoder().decode(&mut buf), Ok(None));
}

#[test]
fn header_line_limit() {
    let limits = small_limits();
    let at_limit = format!("SEND\n{}:{}\n\n\0", "k".repeat(10), "v".repeat(9));
    let mut dec = Decoder::new(limits);
    let (items, err) = decode_all(&mut dec, at_limit.as_bytes());
    assert_eq!((items.len(), err), (1, None));
    let over = format!("SEND\n{}:{}\n\n\0", "k".repeat(10), "v".repeat(10));
    assert_eq!(
        error_with(limits, over.as_bytes()),
        FrameError::HeaderLineTooLong { line: 1, limit: 20 }
    );
    // At the limit with a CRLF is fine.
    let crlf = format!("SEND\r\n{}:{}\r\n\r\n\0", "k".repeat(10), "v".repeat(9));
    let (items, err) = decode_all(&mut Decoder::new(limits), crlf.as_bytes());
    assert_eq!((items.len(), err), (1, None));
}

#[test]
fn header_line_limit_is_enforced_before_the_line_ends() {
    let limits = small_limits();
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::from(&b"SEND\na:"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&[b'x'; 18]); // 20 bytes so far: could still end here
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\r"); // a CR could still be the line end
    assert_eq!(dec.decode(&mut buf), Ok(None));
    let mut buf2 = BytesMut::from(&buf[..buf.len() - 1]);
    buf2.extend_from_slice(b"x");
    assert_eq!(
        Decoder::new(limits).decode(&mut buf2),
        Err(FrameError::HeaderLineTooLong { line: 1, limit: 20 })
    );
}

#[test]
fn header_count_limit() {
    let limits = small_limits();
    let ok = b"SEND\na:1\nb:2\nc:3\n\n\0";
    let (items, err) = decode_all(&mut Decoder::new(limits), ok);
    assert_eq!((items.len(), err), (1, None));
    // Refused on reading the fourth line, before the frame is complete.
    assert_eq!(
        error_with(limits, b"SEND\na:1\nb:2\nc:3\nd:4\n"),
        FrameError::TooManyHeaders { limit: 3 }
    );
    assert_eq!(
        FrameError::TooManyHeaders { limit: 1000 }.to_string(),
        "frame has more than 1000 headers, the limit is 1000"
    );
}

#[test]
fn content_length_over_body_limit_is_refused_at_the_header() {
    let limits = small_limits();
    assert_eq!(
        error_with(limits, b"SEND\ncontent-length:51\n"),
        FrameError::ContentLengthTooLarge {
            length: "51".into(),
            limit: 50
        }
    );
    let huge = b"SEND\ncontent-length:99999999999999999999999999\n";
    assert!(matches!(
        error(huge),
        FrameError::ContentLengthTooLarge { .. }
    ));
    let mut at_limit = b"SEND\ncontent-length:50\n\n".to_vec();
    at_limit.extend_from_slice(&[7u8; 50]);
    at_limit.push(0);
    let (items, err) = decode_all(&mut Decoder::new(limits), &at_limit);
    assert_eq!((items.len(), err), (1, None));
}

#[test]
fn body_without_nul_is_refused_once_over_the_limit() {
    let limits = small_limits();
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
    buf.extend_from_slice(&[b'x'; 50]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"x");
    assert_eq!(
        dec.decode(&mut buf),
        Err(FrameError::BodyTooLarge { limit: 50 })
    );
}

#[test]
fn frame_size_limit() {
    let limits = Limits {
        max_frame_size: 40,
        max_headers: 100,
        max_header_line: 100,
        max_body: 100,
    };
    // Headers alone run past the frame limit.
    let many = "SEND\n".to_string() + &"h:1\n".repeat(20);
    assert_eq!(
        error_with(limits, many.as_bytes()),
        FrameError::FrameTooLarge { limit: 40 }
    );
    // Announced body makes the frame too large: refused before the body arrives.
    assert_eq!(
        error_with(limits, b"SEND\ncontent-length:90\n\n"),
        FrameError::FrameTooLarge { limit: 40 }
    );
    // Body without content-length runs past the frame limit.
    let long = "SEND\n\n".to_string() + &"x".repeat(60);
    assert_eq!(
        error_with(limits, long.as_bytes()),
        FrameError::FrameTooLarge { limit: 40 }
    );
    // Exactly at the limit (NUL not counted) is fine.
    let exact = "SEND\n\n".to_string() + &"x".repeat(34) + "\0";
    let (items, err) = decode_all(&mut Decoder::new(limits), exact.as_bytes());
    assert_eq!((items.len(), err), (1, None));
}

// ---- incremental behaviour ----

#[test]
fn large_body_is_not_rescanned() {
    let mut dec = decoder();
    let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
    for _ in 0..100 {
        buf.extend_from_slice(&[b'x'; 1000]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let scanned = dec.pending.as_ref().map(|p| p.scan);
        assert_eq!(scanned, Some(buf.len()), "resumes where it stopped");
    }
    buf.extend_from_slice(b"\0");
    let Some(Decoded::Frame(f)) = dec.decode(&mut buf).unwrap() else {
        panic!("no frame")
    };
    assert_eq!(f.body.len(), 100_000);
}

#[test]
fn version_change_applies_to_next_frame() {
    let mut dec = decoder();
    dec.set_version(Version::V1_0);
    let (items, err) = decode_all(&mut dec, b"SEND\nk:a\\tb\n\n\0");
    assert_eq!(err, None);
    let Decoded::Frame(f) = &items[0] else {
        panic!()
    };
    assert_eq!(f.get("k"), Some("a\\tb"));
    dec.set_version(Version::V1_1);
    let (_, err) = decode_all(&mut dec, b"SEND\nk:a\\tb\n\n\0");
    assert!(matches!(err, Some(FrameError::InvalidEscape { .. })));
}

#[test]
fn decoder_survives_a_buffer_it_did_not_expect() {
    let mut dec = decoder();
    let mut buf = BytesMut::from(&b"SEND\ndestination:q\n\nabc"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    // The caller broke the contract and handed over a shorter buffer: no panic, re-parse.
    let mut other = BytesMut::from(&b"ACK\nid:1\n\n\0"[..]);
    let got = dec.decode(&mut other).unwrap();
    assert_eq!(
        got,
        Some(Decoded::Frame(Frame::new(Command::Ack).header("id", "1")))
    );
}

#[test]
fn error_resets_the_partial_frame() {
    let mut dec = decoder();
    let mut buf = BytesMut::from(&b"SEND\nbad\n"[..]);
    assert!(dec.decode(&mut buf).is_err());
    let mut fresh = BytesMut::from(&b"BEGIN\n\n\0"[..]);
    assert!(matches!(
        dec.decode(&mut fresh),
        Ok(Some(Decoded::Frame(_)))
    ));
}

/// Representative wire streams: each must decode identically however it is split.
fn representative_streams() -> Vec<Vec<u8>> {
    let mut streams: Vec<Vec<u8>> = vec![
        b"CONNECT\naccept-version:1.2\nhost:/\nlogin:a\\nb\n\n\0".to_vec(),
        b"SEND\r\ndestination:/queue/a\r\ncontent-type:text/plain\r\n\r\nhello\0\r\n\n".to_vec(),
        b"SUBSCRIBE\nid:0\ndestination:/topic/x\nack:client\n\n\0".to_vec(),
        b"SEND\ncontent-length:4\nk\\c\\n:v\\r\\\\\n\n\0\0\0\0\0".to_vec(),
        b"\n\nDISCONNECT\nreceipt:77\n\n\0".to_vec(),
    ];
    let frame = Frame::new(Command::Message)
        .header("subscription", "0")
        .header("weird:name", "line1\nline2\r\\end ünï")
        .body((0..=255u8).collect::<Vec<u8>>());
    let mut encoded = BytesMut::new();
    encode_frame(&frame, Version::V1_2, &mut encoded);
    encode_frame(
        &Frame::new(Command::Ack).header("id", "1"),
        Version::V1_2,
        &mut encoded,
    );
    streams.push(encoded.to_vec());
    streams
}

fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Decoded> {
    let mut dec = decoder();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[from..to]);
        from = to;
        while let Some(item) = dec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    assert!(buf.is_empty(), "everything consumed");
    items
}

#[test]
fn split_at_every_byte_gives_the_same_frames() {
    for stream in representative_streams() {
        let whole = decode_in_pieces(&stream, &[]);
        assert!(!whole.is_empty());
        for cut in 0..=stream.len() {
            assert_eq!(decode_in_pieces(&stream, &[cut]), whole, "cut at {cut}");
        }
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode_in_pieces(&stream, &every), whole, "byte at a time");
    }
}

/// Feeds `input` to a streaming decoder `step` bytes at a time; returns every piece, with
/// the body parts joined back into one, and the first error.
fn stream_all(dec: &mut Decoder, input: &[u8], step: usize) -> (Vec<Piece>, Option<FrameError>) {
    let mut buf = BytesMut::new();
    let mut pieces: Vec<Piece> = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode_piece(&mut buf) {
                Ok(Some(Piece::BodyPart(part))) => {
                    assert!(part.len() <= BODY_PART + step, "a part is bounded");
                    match pieces.last_mut() {
                        Some(Piece::BodyPart(joined)) => {
                            let mut all = joined.to_vec();
                            all.extend_from_slice(&part);
                            *joined = Bytes::from(all);
                        }
                        _ => pieces.push(Piece::BodyPart(part)),
                    }
                }
                Ok(Some(p)) => pieces.push(p),
                Ok(None) => break,
                Err(e) => return (pieces, Some(e)),
            }
        }
    }
    (pieces, None)
}

fn streaming_decoder(threshold: usize, max_body: usize) -> Decoder {
    let mut dec = Decoder::new(Limits {
        max_body,
        ..Limits::default()
    });
    dec.stream_bodies_above(Some(threshold));
    dec
}

fn send_with_body(body: &[u8], content_length: bool) -> Vec<u8> {
    let mut raw = b"SEND\ndestination:/queue/q\n".to_vec();
    if content_length {
        raw.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\n");
    raw.extend_from_slice(body);
    raw.extend_from_slice(b"\0");
    raw
}

#[test]
fn a_body_over_the_threshold_comes_out_as_head_parts_and_end_however_it_is_split() {
    let body: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8 + 1).collect();
    for content_length in [true, false] {
        for step in [1000, 4096, 65_536, 1 << 20] {
            let mut input = send_with_body(&body, content_length);
            input.extend_from_slice(b"\nSEND\ndestination:/queue/q\n\nnext\0");
            let mut dec = streaming_decoder(100_000, 1 << 20);
            let (pieces, err) = stream_all(&mut dec, &input, step);
            assert_eq!(err, None);
            assert_eq!(pieces.len(), 5, "head, body, end, heart-beat, next frame");
            let Piece::LargeHead(head) = &pieces[0] else {
                panic!("head first, got {:?}", pieces[0]);
            };
            assert_eq!(head.command, Command::Send);
            assert_eq!(head.get("destination"), Some("/queue/q"));
            assert!(head.body.is_empty());
            assert_eq!(pieces[1], Piece::BodyPart(Bytes::from(body.clone())));
            assert_eq!(pieces[2], Piece::BodyEnd);
            assert_eq!(pieces[3], Piece::Whole(Decoded::HeartBeat));
            let Piece::Whole(Decoded::Frame(next)) = &pieces[4] else {
                panic!("then a whole frame, got {:?}", pieces[4]);
            };
            assert_eq!(&next.body[..], b"next");
        }
    }
}

#[test]
fn a_body_at_the_threshold_is_whole_and_one_byte_more_is_streamed() {
    for content_length in [true, false] {
        let at = vec![b'a'; 5000];
        let mut dec = streaming_decoder(5000, 1 << 20);
        let (pieces, err) = stream_all(&mut dec, &send_with_body(&at, content_length), 1 << 20);
        assert_eq!(err, None);
        assert!(
            matches!(&pieces[..], [Piece::Whole(Decoded::Frame(f))] if f.body.len() == 5000),
            "{content_length}: whole at the threshold"
        );
        let over = vec![b'a'; 5001];
        let (pieces, err) = stream_all(&mut dec, &send_with_body(&over, content_length), 1 << 20);
        assert_eq!(err, None);
        assert!(
            matches!(&pieces[..], [Piece::LargeHead(_), Piece::BodyPart(b), Piece::BodyEnd] if b.len() == 5001),
            "{content_length}: streamed one byte over, got {pieces:?}"
        );
    }
}

#[test]
fn a_streamed_body_is_still_bounded_by_max_body() {
    let body = vec![b'x'; 600_000];
    let mut dec = streaming_decoder(1000, 500_000);
    let (pieces, err) = stream_all(&mut dec, &send_with_body(&body, false), 8192);
    assert_eq!(err, Some(FrameError::BodyTooLarge { limit: 500_000 }));
    let streamed: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::BodyPart(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert!(streamed <= 500_000, "never more than max-body handed over");
    let mut dec = streaming_decoder(1000, 500_000);
    let (_, err) = stream_all(&mut dec, &send_with_body(&body, true), 8192);
    assert!(matches!(
        err,
        Some(FrameError::ContentLengthTooLarge { .. })
    ));
}

#[test]
fn a_streamed_body_of_content_length_must_end_with_nul() {
    let mut input = send_with_body(&[b'y'; 3000], true);
    let last = input.len() - 1;
    input[last] = b'z';
    let mut dec = streaming_decoder(1000, 1 << 20);
    let (pieces, err) = stream_all(&mut dec, &input, 1 << 20);
    assert_eq!(err, Some(FrameError::MissingNul));
    assert!(matches!(pieces[0], Piece::LargeHead(_)));
}

#[test]
fn plain_decode_never_streams() {
    let body = vec![b'q'; 300_000];
    let mut dec = streaming_decoder(1000, 1 << 20);
    let (items, err) = decode_all(&mut dec, &send_with_body(&body, false));
    assert_eq!(err, None);
    assert!(matches!(&items[..], [Decoded::Frame(f)] if f.body.len() == 300_000));
}

#[test]
fn detached_headers_keep_nothing_of_the_read_buffer() {
    let mut buf =
        BytesMut::from(&b"SUBSCRIBE\nid:s-1\ndestination:/queue/\xc3\xa9t\xc3\xa9\n\n\0"[..]);
    buf.extend_from_slice(&[b'\n'; 8192]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Some(Decoded::Frame(mut f)) = decoder().decode(&mut buf).unwrap() else {
        panic!("no frame");
    };
    let inside = |s: &str| range.contains(&(s.as_ptr() as usize));
    assert!(f.headers.iter().all(|(k, v)| inside(k) && inside(v)));
    f.headers.detach();
    assert!(f.headers.iter().all(|(k, v)| !inside(k) && !inside(v)));
    assert_eq!(f.get("id"), Some("s-1"));
    assert_eq!(f.get("destination"), Some("/queue/été"));
    assert_eq!(f.headers.len(), 2);
}
