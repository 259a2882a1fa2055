//! Security: who a connection is (users, argon2 passwords, client certificates, anonymous
//! access), what it may do (per-address permissions, Artemis's `security-settings`), and how
//! password guessing is slowed. Transport- and STOMP-agnostic: sessions ask it questions.

mod access;
mod authorize;
mod entry;
mod passwords;
mod permission;
mod policy;
mod slots;
mod throttle;

pub use access::{Access, Credentials, LoginFailed, Security};
pub use authorize::{AllowAll, Authorizer, Denied};
pub use entry::{parse_roles, user_entry};
pub use passwords::{hash_password, verify_password};
pub use permission::{Permission, Principal};
pub use policy::SecurityPolicy;
pub use throttle::LoginThrottle;
