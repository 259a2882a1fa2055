//! WrenMQ: a STOMP message broker with the Artemis address model.
//!
//! Layers, each readable and testable alone (see `docs/architecture.md`):
//! - [`stomp`]: the codec, pure bytes ⇄ frames.
//! - [`config`]: the TOML schema, defaults and validation.

pub mod config;
pub mod journal;
pub mod stomp;
