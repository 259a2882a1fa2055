//! Configuration: the TOML schema with its defaults, loading and validation.
//!
//! The broker reads one TOML file (documented example: `config/broker.toml`). [`load`] refuses a
//! bad file as a whole, naming the file, the dotted key and the reason, because a broker that
//! starts with a silently defaulted setting is worse than one that does not start.

mod admin;
mod cluster;
mod error;
mod load;
mod overrides;
mod phc;
mod schema;
mod security;
mod validate;
mod validate_queue_kind;
mod validate_security;

pub use admin::{AdminConfig, AdminToken, DEFAULT_ADMIN_BIND};
pub use cluster::{ClusterConfig, PeerConfig, PeerTlsConfig};
pub use error::{ConfigError, Location, ValidationError};
pub use load::{load, parse};
pub use phc::check_phc;
pub use schema::*;
pub use security::*;
