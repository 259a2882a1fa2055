//! The broker-wide security service: authenticates a connection into a [`Principal`] and
//! authorizes its operations through an [`Access`] handed to the core.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::passwords::{DUMMY_HASH, verify_password};
use super::slots::VerificationSlots;
use super::{Authorizer, Denied, LoginThrottle, Permission, Principal, SecurityPolicy};
use crate::config::Config;

/// Password verifications running at once over all sources; argon2 is deliberately
/// expensive, so a login flood queues instead of taking every core and the blocking pool
/// (and one source may hold only one of these, see `slots`).
const CONCURRENT_VERIFICATIONS: usize = 4;

/// What a connection offered to prove who it is.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// CONNECT's `login` and `passcode` headers.
    Password {
        /// The user name.
        login: &'a str,
        /// The password (empty when the header was absent).
        passcode: &'a str,
    },
    /// The CN of a verified TLS client certificate.
    Certificate(&'a str),
    /// Nothing.
    Anonymous,
}

/// A refused login; deliberately says nothing of which part was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailed {
    /// For the ERROR's `message` header.
    pub message: &'static str,
    /// For the ERROR body (never names the wrong half of the credentials).
    pub detail: &'static str,
}

impl LoginFailed {
    fn wrong(detail: &'static str) -> LoginFailed {
        LoginFailed {
            message: "login failed",
            detail,
        }
    }

    /// The refusal of a source that used up its failed logins; says nothing of the
    /// credentials, which were not checked.
    fn throttled() -> LoginFailed {
        LoginFailed {
            message: "too many failed logins from this address; retry later",
            detail: "logins from this address are refused without being checked until it has had no failed login for login-failure-decay-secs",
        }
    }
}

#[derive(Debug)]
struct User {
    password_hash: Option<Arc<str>>,
    roles: Vec<String>,
}

/// What a configuration reload may replace: the users, the permissions and the anonymous
/// roles, swapped as one value so that no check ever sees a user of one version with the
/// permissions of another.
#[derive(Debug)]
struct Tables {
    users: HashMap<String, User>,
    policy: Arc<SecurityPolicy>,
    anonymous_roles: Vec<String>,
}

impl Tables {
    fn new(config: &Config) -> Tables {
        Tables {
            users: config
                .users
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        User {
                            password_hash: u.password_hash.as_deref().map(Arc::from),
                            roles: u.roles.clone(),
                        },
                    )
                })
                .collect(),
            policy: Arc::new(SecurityPolicy::new(&config.security_settings)),
            anonymous_roles: config.security.anonymous_roles.clone(),
        }
    }
}

/// Users, permissions and login throttling, shared by every acceptor.
#[derive(Debug)]
pub struct Security {
    /// Read with one atomic load per check (no lock on the message path); replaced whole by
    /// [`Security::replace`].
    tables: ArcSwap<Tables>,
    throttle: LoginThrottle,
    verifications: VerificationSlots,
}

impl Security {
    /// Builds the service from a validated configuration.
    pub fn new(config: &Config) -> Security {
        let s = &config.security;
        Security {
            tables: ArcSwap::from_pointee(Tables::new(config)),
            throttle: LoginThrottle::new(
                Duration::from_millis(s.login_failure_delay_ms),
                Duration::from_millis(s.login_failure_max_delay_ms),
                Duration::from_secs(s.login_failure_decay_secs),
                s.login_failure_limit,
            ),
            verifications: VerificationSlots::new(CONCURRENT_VERIFICATIONS),
        }
    }

    /// Replaces the users, the permissions and the anonymous roles with `config`'s (a
    /// configuration reload): new logins use them at once, and existing connections at their
    /// next check, because every check reads the current tables and a connection's roles are
    /// looked up again by its user name (a removed user has none).
    pub fn replace(&self, config: &Config) {
        self.tables.store(Arc::new(Tables::new(config)));
    }

    /// The roles an anonymous connection gets now.
    pub fn anonymous_roles(&self) -> Vec<String> {
        self.tables.load().anonymous_roles.clone()
    }

    /// The compiled permissions in force now.
    pub fn policy(&self) -> Arc<SecurityPolicy> {
        Arc::clone(&self.tables.load().policy)
    }

    /// Whether `user` has `perm` on `address`, with the roles the current tables give it: a
    /// user's roles as configured now (none once removed), an anonymous connection's the
    /// current `anonymous-roles`, an admin token with no user of its name its own role.
    pub fn allowed(&self, user: &Principal, perm: Permission, address: &str) -> bool {
        let tables = self.tables.load();
        let roles = match &user.name {
            Some(name) => match tables.users.get(name) {
                Some(u) => u.roles.as_slice(),
                None if user.own_roles => user.roles.as_slice(),
                None => &[],
            },
            None => tables.anonymous_roles.as_slice(),
        };
        tables.policy.allows_roles(roles, perm, address)
    }

    /// Authenticates a connection from `peer`. `anonymous_ok` says whether its acceptor takes
    /// anonymous connections; when it does and no user is configured at all, credentials are
    /// ignored and the connection is anonymous. A wrong password waits (longer for each recent
    /// failure from the same IP) before returning, and an IP with `login-failure-limit` recent
    /// failures is refused without hashing, so guessing is slow however many connections it
    /// opens.
    pub async fn authenticate(
        &self,
        credentials: Credentials<'_>,
        anonymous_ok: bool,
        peer: IpAddr,
    ) -> Result<Principal, LoginFailed> {
        // One version of the tables for the whole login, held across the hash check: a
        // reload during it applies to the next login.
        let tables = self.tables.load_full();
        match credentials {
            Credentials::Certificate(cn) => match tables.users.get(cn) {
                Some(user) => Ok(Principal::user(cn, user.roles.clone())),
                None => Err(LoginFailed::wrong(
                    "the client certificate names no known user",
                )),
            },
            Credentials::Anonymous if anonymous_ok => {
                Ok(Principal::anonymous(tables.anonymous_roles.clone()))
            }
            Credentials::Anonymous => Err(LoginFailed::wrong(
                "this broker requires a login and passcode",
            )),
            // No users at all: security is off, as for a broker without configuration, so
            // the `login:guest` many clients send by default is not an error.
            Credentials::Password { .. } if tables.users.is_empty() && anonymous_ok => {
                Ok(Principal::anonymous(tables.anonymous_roles.clone()))
            }
            Credentials::Password { login, passcode } => {
                if self.throttle.locked(peer) {
                    tracing::info!(%peer, login, "login refused: too many failed logins from this address");
                    return Err(LoginFailed::throttled());
                }
                let user = tables.users.get(login);
                let hash: Arc<str> = user
                    .and_then(|u| u.password_hash.clone())
                    .unwrap_or_else(|| Arc::from(DUMMY_HASH));
                let ok = match self.verify(passcode, hash, peer).await {
                    Some(ok) => ok && user.is_some_and(has_password),
                    None => return Err(LoginFailed::throttled()),
                };
                match user {
                    Some(u) if ok => Ok(Principal::user(login, u.roles.clone())),
                    _ => {
                        let delay = self.throttle.record_failure(peer);
                        tracing::info!(%peer, login, delay_ms = delay.as_millis() as u64, "login failed");
                        tokio::time::sleep(delay).await;
                        Err(LoginFailed::wrong("the login or the passcode is wrong"))
                    }
                }
            }
        }
    }

    /// Checks `passcode` in a hashing slot of `peer`'s source. `None`: while it waited for
    /// the slot, its source's earlier attempts used up the failures it may have, so nothing
    /// was checked (a queued flood drains without hashing).
    async fn verify(&self, passcode: &str, hash: Arc<str>, peer: IpAddr) -> Option<bool> {
        let Some(_slot) = self.verifications.acquire(peer).await else {
            return Some(false);
        };
        if self.throttle.locked(peer) {
            return None;
        }
        let passcode = passcode.to_string();
        Some(
            tokio::task::spawn_blocking(move || verify_password(&passcode, &hash))
                .await
                .unwrap_or(false),
        )
    }

    /// Recent failed logins counted for `ip`.
    pub fn failed_logins(&self, ip: IpAddr) -> u32 {
        self.throttle.failures(ip)
    }
}

fn has_password(user: &User) -> bool {
    user.password_hash.is_some()
}

/// A connection's rights: its principal checked against the policy. Handed to the core so
/// that it can ask before creating anything.
#[derive(Debug, Clone)]
pub struct Access {
    /// Who the connection is.
    pub principal: Arc<Principal>,
    security: Arc<Security>,
}

impl Access {
    /// `principal`'s rights under `security`.
    pub fn new(security: Arc<Security>, principal: Principal) -> Access {
        Access {
            principal: Arc::new(principal),
            security,
        }
    }

    /// Refusal text: `user 'bob' lacks permission 'send' on address 'orders'`.
    pub fn refusal(&self, perm: Permission, address: &str) -> String {
        format!(
            "{} lacks permission '{perm}' on address '{address}'",
            self.principal.describe()
        )
    }
}

impl Authorizer for Access {
    fn authorize(&self, perm: Permission, address: &str) -> Result<(), Denied> {
        if self.security.allowed(&self.principal, perm, address) {
            Ok(())
        } else {
            Err(Denied(self.refusal(perm, address)))
        }
    }
}
