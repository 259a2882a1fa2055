//! The frames the echo server writes, appended as bytes straight into a connection's
//! output buffer.

use super::routes::Sub;
use super::scan::Span;

/// CONNECTED: always STOMP 1.2, heart-beats off.
pub fn connected(out: &mut Vec<u8>) {
    out.extend_from_slice(b"CONNECTED\nversion:1.2\nserver:wrenmq-perf-echo\nheart-beat:0,0\n\n\0");
}

/// RECEIPT for the (escaped) `receipt` value `id`, which is copied as it came.
pub fn receipt(out: &mut Vec<u8>, id: &[u8]) {
    out.extend_from_slice(b"RECEIPT\nreceipt-id:");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\n\n\0");
}

/// ERROR with `message` as header and body (the scanner's texts need no escaping).
pub fn error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"ERROR\ncontent-type:text/plain\nmessage:");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\ncontent-length:");
    out.extend_from_slice(itoa::Buffer::new().format(message.len()).as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(message.as_bytes());
    out.push(0);
}

/// The MESSAGE for one subscription of a SEND scanned from `send`: the subscription and a
/// message-id (also the `ack` id when the subscription acknowledges), the SEND's header
/// lines in `copy` verbatim (its destination among them), the content-length, the body.
pub fn message(out: &mut Vec<u8>, sub: &Sub, id: u64, send: &[u8], copy: &[Span], body: Span) {
    let mut num = itoa::Buffer::new();
    let id = num.format(id).as_bytes();
    let mut len = itoa::Buffer::new();
    let len = len.format(body.len()).as_bytes();
    let copied: usize = copy.iter().map(|s| s.len()).sum();
    out.reserve(80 + sub.id.len() + 2 * id.len() + copied + len.len() + body.len());
    out.extend_from_slice(b"MESSAGE\nsubscription:");
    out.extend_from_slice(&sub.id);
    out.extend_from_slice(b"\nmessage-id:");
    out.extend_from_slice(id);
    if sub.ack {
        out.extend_from_slice(b"\nack:");
        out.extend_from_slice(id);
    }
    out.push(b'\n');
    for s in copy {
        out.extend_from_slice(s.of(send));
    }
    out.extend_from_slice(b"content-length:");
    out.extend_from_slice(len);
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(body.of(send));
    out.push(0);
}
