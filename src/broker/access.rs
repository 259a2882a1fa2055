//! How the core asks whether an operation is allowed, without knowing about users, roles or
//! STOMP: the caller passes an [`Authorizer`] and the core asks it, under its own locks,
//! before sending, consuming or creating anything.

use super::BrokerError;
use crate::security::Permission;

/// Answers "may the caller do `perm` on `address`?" for the core.
pub trait Authorizer: Send + Sync {
    /// `Ok` when allowed; otherwise the refusal, naming who, what and where.
    fn authorize(&self, perm: Permission, address: &str) -> Result<(), BrokerError>;
}

/// Allows everything: for the broker's own operations (dead-lettering) and for callers
/// without security.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _perm: Permission, _address: &str) -> Result<(), BrokerError> {
        Ok(())
    }
}
