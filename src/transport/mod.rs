//! Transports adapt a byte stream (TCP, WebSocket, TLS) to the one session state machine:
//! each implements [`crate::session::ByteSource`] and [`crate::session::ByteSink`], and
//! [`crate::session::serve`] does the rest, so there is one copy of the STOMP logic whatever
//! the wire.

pub mod accept;
pub mod admission;
pub mod context;
pub mod tcp;
pub mod tls;
pub mod websocket;
