//! WrenMQ: a STOMP message broker with the Artemis address model.
//!
//! Layers, each readable and testable alone (see `docs/architecture.md`):
//! - [`stomp`]: the codec, pure bytes ⇄ frames.
//! - [`transport`]: TCP and WebSocket adapters feeding one session driver.
//! - [`session`]: one connection's STOMP state, mapping frames to core operations.
//! - [`broker`]: the core — addresses, queues, routing, consumers, acks; no STOMP inside.
//! - [`journal`]: persistence on redb with group commit.
//! - [`security`]: users, passwords, per-address permissions, login throttling.
//! - [`config`]: the TOML schema, defaults and validation.
//! - [`address`]: address-name matching (Artemis wildcards) shared by the core and security.
//! - [`selector`]: JMS/Artemis message selectors (filter expressions), parsed and evaluated.
//! - [`cli`]: the client verbs (`wrenmq send`, `wrenmq queue list`, ...) over STOMP and the
//!   admin HTTP API.
//! - [`perf`]: `wrenmq perf`, a STOMP load generator (and echo server) built on the codec.
//! - [`server`]: starting acceptors and shutting down gracefully.

pub mod address;
pub mod admin;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod journal;
pub mod perf;
pub mod reload;
pub mod security;
pub mod selector;
pub mod server;
pub mod session;
pub mod stomp;
pub mod transport;
