//! Property tests of the STOMP codec: what the encoder writes, the decoder reads back
//! unchanged, and no input at all makes the decoder panic.

use bytes::BytesMut;
use proptest::prelude::*;
use wrenmq::stomp::{Command, Decoded, Decoder, Frame, FrameError, Limits, Version, encode_frame};

const CLIENT_COMMANDS: [Command; 11] = [
    Command::Connect,
    Command::Stomp,
    Command::Send,
    Command::Subscribe,
    Command::Unsubscribe,
    Command::Ack,
    Command::Nack,
    Command::Begin,
    Command::Commit,
    Command::Abort,
    Command::Disconnect,
];

/// Header text biased towards the characters escaping must handle.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec![':', '\n', '\r', '\\', 'c', 'n', 'r', ' ']),
            2 => prop::char::range('a', 'z'),
            1 => any::<char>(),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        prop::sample::select(CLIENT_COMMANDS.to_vec()),
        prop::collection::vec((text(), text()), 0..8),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(command, headers, body)| {
            let mut frame = Frame::new(command).body(body);
            for (name, value) in headers {
                frame.headers.push(name, value);
            }
            frame
        })
}

/// Drops what `version` cannot carry at all: in unescaped frames (CONNECT, STOMP) a colon
/// in a name would split it; 1.1 has no escape for CR.
fn carriable(frame: &Frame, version: Version) -> Frame {
    let escapes = frame.command.escapes_headers();
    let mut out = Frame::new(frame.command).body(frame.body.clone());
    for (name, value) in frame.headers.iter() {
        if !escapes && name.contains(':') {
            continue;
        }
        if version == Version::V1_1 {
            out.headers
                .push(name.replace('\r', ""), value.replace('\r', ""));
        } else {
            out.headers.push(name, value);
        }
    }
    out
}

/// What the decoder should give back for a carriable `frame`: CR/LF blanked where there is
/// no escaping, `content-length` replaced by the true one, appended when there is a body.
fn expected(frame: &Frame) -> Frame {
    let escapes = frame.command.escapes_headers();
    let blank = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if !escapes && matches!(c, '\r' | '\n') {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    };
    let mut out = Frame::new(frame.command).body(frame.body.clone());
    for (name, value) in frame.headers.iter() {
        if name != "content-length" {
            out.headers.push(blank(name), blank(value));
        }
    }
    if !frame.body.is_empty() {
        out.headers
            .push("content-length", frame.body.len().to_string());
    }
    out
}

fn encode_decode(frame: &Frame, version: Version) -> Result<Option<Decoded>, FrameError> {
    let mut buf = BytesMut::new();
    encode_frame(frame, version, &mut buf);
    let mut dec = Decoder::new(Limits::default());
    dec.set_version(version);
    let out = dec.decode(&mut buf);
    assert!(buf.is_empty() || out.is_err(), "frame consumed exactly");
    out
}

/// Decodes until the decoder needs more input or refuses; returns how many items it gave.
fn drain(dec: &mut Decoder, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = dec.decode(buf) {
        n += 1;
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_1_2(frame in frame()) {
        let carried = carriable(&frame, Version::V1_2);
        if frame.command.escapes_headers() {
            // 1.2 escaping can carry every name and value.
            prop_assert_eq!(&carried, &frame);
        }
        let frame = carried;
        let want = expected(&frame);
        prop_assert_eq!(encode_decode(&frame, Version::V1_2), Ok(Some(Decoded::Frame(want))));
    }

    #[test]
    fn roundtrip_1_1(frame in frame()) {
        let frame = carriable(&frame, Version::V1_1);
        let want = expected(&frame);
        prop_assert_eq!(encode_decode(&frame, Version::V1_1), Ok(Some(Decoded::Frame(want))));
    }

    #[test]
    fn roundtrip_survives_any_split(frame in frame(), cut in any::<prop::sample::Index>()) {
        let frame = carriable(&frame, Version::V1_2);
        let mut wire = BytesMut::new();
        encode_frame(&frame, Version::V1_2, &mut wire);
        let at = cut.index(wire.len() + 1);
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&wire[..at]);
        let first = dec.decode(&mut buf);
        let item = match first {
            Ok(Some(item)) => item,
            Ok(None) => {
                buf.extend_from_slice(&wire[at..]);
                dec.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?
                    .ok_or_else(|| TestCaseError::fail("incomplete"))?
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(item, Decoded::Frame(expected(&frame)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        cut in any::<prop::sample::Index>(),
        small in any::<bool>(),
    ) {
        let limits = if small {
            Limits { max_frame_size: 256, max_headers: 4, max_header_line: 32, max_body: 64 }
        } else {
            Limits::default()
        };
        for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let mut dec = Decoder::new(limits);
            dec.set_version(version);
            let at = cut.index(data.len() + 1);
            let mut buf = BytesMut::from(&data[..at]);
            drain(&mut dec, &mut buf);
            buf.extend_from_slice(&data[at..]);
            drain(&mut dec, &mut buf);
        }
    }

    #[test]
    fn frame_like_bytes_never_panic(
        pieces in prop::collection::vec(
            prop_oneof![
                Just(&b"SEND\n"[..]), Just(&b"MESSAGE\r\n"[..]), Just(&b"\n"[..]),
                Just(&b"\r\n"[..]), Just(&b"content-length:"[..]), Just(&b"5"[..]),
                Just(&b":"[..]), Just(&b"\\"[..]), Just(&b"\0"[..]), Just(&b"a"[..]),
                Just(&b"\xff"[..]), Just(&b"\\r"[..]),
            ],
            0..60,
        ),
    ) {
        let data: Vec<u8> = pieces.concat();
        let mut dec = Decoder::new(Limits {
            max_frame_size: 128, max_headers: 8, max_header_line: 24, max_body: 16,
        });
        let mut buf = BytesMut::new();
        for b in data {
            buf.extend_from_slice(&[b]);
            if dec.decode(&mut buf).is_err() {
                break;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A streaming decoder gives back every SEND's body exactly, however the bytes are split
    /// and whether the body has a content-length or ends at its NUL: whole when at most the
    /// threshold, otherwise as head, parts and end; and never a part beyond max-body.
    #[test]
    fn streamed_bodies_come_back_exactly(
        bodies in prop::collection::vec((0usize..3000, any::<bool>(), any::<u8>()), 1..5),
        threshold in 1usize..1500,
        split in 1usize..700,
    ) {
        use wrenmq::stomp::Piece;
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (len, with_length, seed) in &bodies {
            // No NUL in a body without content-length: it would end the body.
            let body: Vec<u8> = (0..*len).map(|i| (i as u8).wrapping_add(*seed) | 1).collect();
            input.extend_from_slice(b"SEND\ndestination:/queue/q\n");
            if *with_length {
                input.extend_from_slice(format!("content-length:{len}\n").as_bytes());
            }
            input.extend_from_slice(b"\n");
            input.extend_from_slice(&body);
            input.extend_from_slice(b"\0\n");
            expected.push(body);
        }
        let mut dec = Decoder::new(Limits { max_body: 2500, ..Limits::default() });
        dec.stream_bodies_above(Some(threshold));
        let mut buf = BytesMut::new();
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut streaming: Option<Vec<u8>> = None;
        let mut refused = false;
        'feed: for chunk in input.chunks(split) {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode_piece(&mut buf) {
                    Ok(Some(Piece::Whole(Decoded::Frame(f)))) => got.push((f.body.to_vec(), false)),
                    Ok(Some(Piece::Whole(Decoded::HeartBeat))) => {}
                    Ok(Some(Piece::LargeHead(h))) => {
                        prop_assert!(h.body.is_empty());
                        prop_assert!(streaming.is_none());
                        streaming = Some(Vec::new());
                    }
                    Ok(Some(Piece::BodyPart(p))) => {
                        let s = streaming.as_mut().expect("a part follows a head");
                        s.extend_from_slice(&p);
                        prop_assert!(s.len() <= 2500);
                    }
                    Ok(Some(Piece::BodyEnd)) => {
                        got.push((streaming.take().expect("an end follows a head"), true));
                    }
                    Ok(None) => break,
                    Err(_) => { refused = true; break 'feed; }
                }
            }
        }
        let within: Vec<&Vec<u8>> = expected.iter().take_while(|b| b.len() <= 2500).collect();
        prop_assert_eq!(refused, within.len() < expected.len());
        prop_assert_eq!(got.len(), within.len());
        for ((body, streamed), want) in got.iter().zip(within) {
            prop_assert_eq!(body, want);
            prop_assert_eq!(*streamed, want.len() > threshold);
        }
    }
}
