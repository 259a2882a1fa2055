//! A message as a producer handed it over, before routing: how much it holds, and moving
//! its strings out of the connection's read buffer.

use bytes::Bytes;
use bytestring::ByteString;

use super::MessageDraft;
use crate::broker::large::Body;

/// Bodies at least this large stay slices of the frame they arrived in: such a frame fills
/// most of the read buffer it shares, so what it pins is close to what it counts.
pub const SHARED_BODY_MIN: usize = 64 * 1024;

impl MessageDraft {
    /// Bytes it holds in memory, counted as [`Message::memory_size`] counts them.
    pub fn size(&self) -> usize {
        crate::broker::message::size_of(self.body.in_memory(), &self.properties)
    }

    /// Moves the headers (and a body under [`SHARED_BODY_MIN`]) out of the connection's
    /// read buffer into one allocation of their own. A frame's strings are slices of the
    /// buffer it was read into, which holds the frames around it too, so a small message
    /// kept in a queue would pin a whole buffer while counting only its own bytes against
    /// the memory limits. One copy of a few hundred bytes per message makes the count true.
    pub fn compact(&mut self) {
        let body = match &self.body {
            Body::Inline(b) => b.clone(),
            Body::File(_) => Bytes::new(),
        };
        let small_body = matches!(self.body, Body::Inline(_)) && body.len() < SHARED_BODY_MIN;
        let mut len: usize = self.properties.iter().map(|(k, v)| k.len() + v.len()).sum();
        if small_body {
            len += body.len();
        }
        let mut block = bytes::BytesMut::with_capacity(len + self.destination.len());
        for (k, v) in &self.properties {
            block.extend_from_slice(k.as_bytes());
            block.extend_from_slice(v.as_bytes());
        }
        block.extend_from_slice(self.destination.as_bytes());
        let dest_at = block.len() - self.destination.len();
        if small_body {
            block.extend_from_slice(&body);
        }
        let block = block.freeze();
        let text = |from: usize, to: usize| {
            let raw = block.get(from..to)?;
            debug_assert!(std::str::from_utf8(raw).is_ok());
            // SAFETY: `block` holds copies of these very strings, each a `ByteString` (valid
            // UTF-8), laid end to end; `from..to` spans exactly one of them, so the bytes are
            // valid UTF-8. Validating them again was a UTF-8 pass per header per message.
            Some(unsafe { ByteString::from_bytes_unchecked(block.slice(from..to)) })
        };
        let mut at = 0;
        for (k, v) in &mut self.properties {
            let (kl, vl) = (k.len(), v.len());
            // The bytes were a valid string a moment ago; keep the original if not.
            if let Some(s) = text(at, at + kl) {
                *k = s;
            }
            if let Some(s) = text(at + kl, at + kl + vl) {
                *v = s;
            }
            at += kl + vl;
        }
        if let Some(d) = text(dest_at, dest_at + self.destination.len()) {
            self.destination = d;
        }
        if small_body {
            self.body = Body::Inline(block.slice(dest_at + self.destination.len()..));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(buf: &Bytes, from: usize, to: usize) -> ByteString {
        ByteString::try_from(buf.slice(from..to)).unwrap()
    }

    #[test]
    fn compact_lets_go_of_the_read_buffer_of_a_small_message() {
        let mut raw = b"color:red\ndestination:/queue/q\n\nhello".to_vec();
        raw.resize(16 * 1024, b'.');
        let buf = Bytes::from(raw);
        let mut d = MessageDraft {
            destination: slice(&buf, 22, 30),
            properties: vec![(slice(&buf, 0, 5), slice(&buf, 6, 9))],
            body: buf.slice(32..37).into(),
            persistent: None,
            priority: 4,
            expires: 0,
            deliver_at: 0,
            origin: None,
        };
        let size = d.size();
        d.compact();
        assert!(
            buf.is_unique(),
            "the draft no longer pins the 16 KiB buffer"
        );
        assert_eq!(
            (
                &*d.properties[0].0,
                &*d.properties[0].1,
                &*d.destination,
                &d.body.inline().unwrap()[..]
            ),
            ("color", "red", "/queue/q", &b"hello"[..])
        );
        assert_eq!(d.size(), size);
    }

    #[test]
    fn a_large_body_stays_a_slice_of_its_frame() {
        let buf = Bytes::from(vec![b'x'; SHARED_BODY_MIN + 10]);
        let mut d = MessageDraft {
            destination: ByteString::from("/queue/q"),
            properties: vec![],
            body: buf.slice(10..).into(),
            persistent: None,
            priority: 4,
            expires: 0,
            deliver_at: 0,
            origin: None,
        };
        d.compact();
        assert!(!buf.is_unique(), "not copied");
        assert_eq!(d.body.len(), SHARED_BODY_MIN);
    }
}
