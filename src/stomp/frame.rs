//! The STOMP frame model shared by the decoder, the encoder and the session.
//!
//! A [`Frame`] is what travels on the wire: a [`Command`], ordered [`Headers`] and a body.
//! Header names and values are [`ByteString`]s so that they can point into the read buffer
//! without a copy when no unescaping was needed.

use bytes::Bytes;
use bytestring::ByteString;
use std::fmt;

/// The protocol versions WrenMQ speaks. The version decides header escaping and which
/// headers ACK/NACK carry, so the codec and the session both need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, no NACK, no heart-beats.
    V1_0,
    /// STOMP 1.1: escaping of `\n`, `\c`, `\\`; NACK; heart-beats.
    V1_1,
    /// STOMP 1.2: adds `\r` escaping, CRLF line ends and the `ack` header.
    V1_2,
}

impl Version {
    /// The value used in `accept-version` / `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses one entry of an `accept-version` list.
    pub fn parse(s: &str) -> Option<Version> {
        match s.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every command of STOMP 1.0–1.2, client and server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Connect,
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    /// The command as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Recognises a command line (without its line end). Commands are case-sensitive.
    pub fn parse(line: &[u8]) -> Option<Command> {
        Some(match line {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// CONNECT, STOMP and CONNECTED never have their headers escaped (spec 1.1/1.2), so the
    /// codec asks this before (un)escaping.
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Whether a frame of this kind may carry a body. Only SEND, MESSAGE and ERROR may.
    pub fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ordered frame headers. Repeated headers are kept (they are legal), but lookups return the
/// first occurrence, as STOMP 1.1+ requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(ByteString, ByteString)>);

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// An empty header list with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Headers(Vec::with_capacity(n))
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
    }

    /// The first header called `name` as the shared string it was decoded into, so a caller
    /// can keep it without copying.
    pub fn get_shared(&self, name: &str) -> Option<&ByteString> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| v)
    }

    /// Appends a header; earlier headers of the same name keep precedence.
    pub fn push(&mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.0.push((name.into(), value.into()));
    }

    /// Iterates over all headers in wire order, repeats included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The headers as stored, for callers that want to keep them without copying.
    pub fn entries(&self) -> &[(ByteString, ByteString)] {
        &self.0
    }

    /// Copies every header into one allocation of its own, so that keeping one of them does
    /// not keep alive the read buffer it was decoded from (and the frames around it).
    pub fn detach(&mut self) {
        let mut all = String::with_capacity(self.0.iter().map(|(k, v)| k.len() + v.len()).sum());
        for (k, v) in &self.0 {
            all.push_str(k);
            all.push_str(v);
        }
        let block = ByteString::from(all);
        let mut at = 0;
        for (k, v) in &mut self.0 {
            for s in [k, v] {
                let end = at + s.len();
                // Always a string boundary (the block is these strings end to end); should
                // it not be, the header keeps its old storage rather than fail.
                if let Some(part) = block.get(at..end) {
                    *s = block.slice_ref(part);
                }
                at = end;
            }
        }
    }

    /// Takes the stored headers out, for moving them into a message without copying.
    pub fn into_entries(self) -> Vec<(ByteString, ByteString)> {
        self.0
    }

    /// Number of header lines, repeats included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<(ByteString, ByteString)>> for Headers {
    fn from(v: Vec<(ByteString, ByteString)>) -> Self {
        Headers(v)
    }
}

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the frame asks for or reports.
    pub command: Command,
    /// Headers in wire order.
    pub headers: Headers,
    /// The body; shared, never copied, when a frame is fanned out.
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: Command) -> Self {
        Frame {
            command,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Builder-style header addition, handy for server frames and tests.
    pub fn header(mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Builder-style body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Shortcut for `self.headers.get(name)`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}
