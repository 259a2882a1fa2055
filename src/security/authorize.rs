//! How the core asks whether an operation is allowed without knowing about users, roles or
//! STOMP: the caller passes an [`Authorizer`] and the core asks it, under its own locks,
//! before sending, consuming or creating anything. It lives in security, below the core, so
//! the core depends on security and never the other way round.

use super::Permission;

/// A refused operation; the text names who, what and where, and reaches the client's ERROR
/// frame unchanged (the core wraps it as its own "not authorized" error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Answers "may the caller do `perm` on `address`?" for the core.
pub trait Authorizer: Send + Sync {
    /// `Ok` when allowed; otherwise the refusal, naming who, what and where.
    fn authorize(&self, perm: Permission, address: &str) -> Result<(), Denied>;
}

/// Allows everything: for the broker's own operations (dead-lettering) and for callers
/// without security.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _perm: Permission, _address: &str) -> Result<(), Denied> {
        Ok(())
    }
}
