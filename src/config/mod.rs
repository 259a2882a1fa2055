//! Configuration: the TOML schema with its defaults, loading and validation.

mod schema;

pub use schema::*;
