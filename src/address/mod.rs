//! Address names as plain strings, below every layer that matches them: the core (wildcard
//! subscriptions, address settings) and security (per-address permissions) both use these
//! pure functions without depending on each other.

pub mod wildcard;
