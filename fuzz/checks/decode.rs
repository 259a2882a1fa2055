//! Fuzzes the STOMP decoder: arbitrary bytes, fed in two chunks, must never panic, and any
//! frame it accepts must survive an encode/decode round trip unchanged (modulo the
//! `content-length` the encoder rewrites). The same input also goes through a decoder that
//! streams bodies over a threshold (the large-message path): it must never panic either,
//! hand over pieces only in the order head, parts, end, and never more body than max-body.
//!
//! Shared by the fuzz target and by tests/fuzz_findings.rs, which replays every committed
//! finding and corpus input on the stable toolchain in CI.
use bytes::BytesMut;
use wrenmq::stomp::{Decoded, Decoder, Frame, Limits, Piece, Version, encode_frame};

/// The check, on one input: panics on a defect.
pub fn check(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let version = match control % 3 {
        0 => Version::V1_0,
        1 => Version::V1_1,
        _ => Version::V1_2,
    };
    let cut = (control as usize).min(input.len());
    let limits = Limits {
        max_frame_size: 4096,
        max_headers: 32,
        max_header_line: 256,
        max_body: 2048,
    };
    let mut dec = Decoder::new(limits);
    dec.set_version(version);
    let mut buf = BytesMut::from(&input[..cut]);
    let mut frames = Vec::new();
    if !drain(&mut dec, &mut buf, &mut frames) {
        buf.extend_from_slice(&input[cut..]);
        drain(&mut dec, &mut buf, &mut frames);
    }
    for frame in frames {
        roundtrip(&frame, version);
    }
    let mut streaming = Decoder::new(limits);
    streaming.set_version(version);
    streaming.stream_bodies_above(Some(usize::from(control) * 8));
    let mut buf = BytesMut::from(&input[..cut]);
    let mut body: Option<usize> = None;
    if !drain_pieces(&mut streaming, &mut buf, &mut body, limits.max_body) {
        buf.extend_from_slice(&input[cut..]);
        drain_pieces(&mut streaming, &mut buf, &mut body, limits.max_body);
    }
}

/// Like [`drain`] for a streaming decoder; `body` is the length of the large body being
/// streamed so far, if one is.
fn drain_pieces(
    dec: &mut Decoder,
    buf: &mut BytesMut,
    body: &mut Option<usize>,
    max_body: usize,
) -> bool {
    loop {
        match dec.decode_piece(buf) {
            Ok(Some(Piece::Whole(_))) => assert!(body.is_none(), "a whole frame inside a body"),
            Ok(Some(Piece::LargeHead(head))) => {
                assert!(body.is_none() && head.body.is_empty());
                *body = Some(0);
            }
            Ok(Some(Piece::BodyPart(part))) => {
                let so_far = body.as_mut().expect("a part after its head");
                *so_far += part.len();
                assert!(*so_far <= max_body, "more than max-body streamed");
            }
            Ok(Some(Piece::BodyEnd)) => {
                assert!(body.take().is_some(), "an end after its head");
            }
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Decodes until more input is needed; returns true when the decoder refused the input.
fn drain(dec: &mut Decoder, buf: &mut BytesMut, frames: &mut Vec<Frame>) -> bool {
    loop {
        match dec.decode(buf) {
            Ok(Some(Decoded::Frame(f))) => frames.push(f),
            Ok(Some(Decoded::HeartBeat)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Re-encodes an accepted frame and checks the decoder reads the same frame back.
fn roundtrip(frame: &Frame, version: Version) {
    let mut wire = BytesMut::new();
    encode_frame(frame, version, &mut wire);
    let mut dec = Decoder::new(Limits::default());
    dec.set_version(version);
    let again = match dec.decode(&mut wire) {
        Ok(Some(Decoded::Frame(f))) => f,
        other => panic!("re-encoded frame did not decode: {other:?}"),
    };
    assert_eq!(again.command, frame.command);
    assert_eq!(again.body, frame.body);
    let strip = |f: &Frame| -> Vec<(String, String)> {
        f.headers
            .iter()
            .filter(|(k, _)| *k != "content-length")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    // Unescaped frames (1.0, CONNECT...) cannot carry CR/LF or a colon in a name, and 1.1
    // cannot carry CR; a decoded frame never holds those where they cannot be carried,
    // except a CR in 1.1 that came in as a raw byte inside a value.
    let representable = frame.headers.iter().all(|(k, v)| {
        let text = format!("{k}{v}");
        !(version == Version::V1_1 && text.contains('\r'))
            && (frame.command.escapes_headers() && version != Version::V1_0
                || !(text.contains('\r') || text.contains('\n') || k.contains(':')))
    });
    if representable {
        assert_eq!(strip(&again), strip(frame));
    }
}
