//! Who is calling: HTTP basic against the STOMP users (the same throttled check a CONNECT
//! gets), a static bearer token, or anonymous where the broker lets anonymous in. The caller
//! gets an admin role (monitor < operator < admin) from its STOMP roles, and its STOMP
//! principal, against which every message operation is checked per address.
//!
//! The console sends the `Authorization` header from script (no cookies, no browser prompt):
//! a cross-site page cannot make the browser attach credentials, which is the CSRF defence;
//! mutations with a body must also be `application/json`, which a plain form cannot send.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::AdminConfig;
use crate::security::{Access, Credentials, Principal, Security};

/// What an admin role may do; ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads only.
    Monitor,
    /// Reads, message operations, closing connections.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The API's name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "monitor" => Some(Role::Monitor),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its user (or token) name; `None` when anonymous.
    pub name: Option<String>,
    /// Its STOMP roles.
    pub roles: Vec<String>,
    /// Its admin role; `None`: authenticated but no admin role at all.
    pub role: Option<Role>,
    /// Its rights on addresses.
    pub access: Access,
}

/// Why a request was not let in.
#[derive(Debug)]
pub enum Refused {
    /// No or wrong credentials (401).
    Unauthorized(String),
}

/// Recently verified passwords, so a console polling every few seconds does not pay an
/// argon2 hash per request. Keyed by a SHA-256 of user and password; bounded.
#[derive(Debug, Default)]
pub struct Cache(Mutex<HashMap<[u8; 32], (Principal, Instant)>>);

/// How long a verified password is trusted without checking again.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached verifications.
const CACHE_MAX: usize = 256;

impl Cache {
    fn get(&self, key: &[u8; 32]) -> Option<Principal> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, key: [u8; 32], p: Principal) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (p, Instant::now()));
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// What checking a caller needs: the users, the `[admin]` section (roles and tokens) and
/// the listener's anonymous policy. Borrowed from whichever listener is asking: the full
/// API's context, or a cluster follower's small one, which has no broker.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    /// Users and permissions (the STOMP ones).
    pub security: &'a Arc<Security>,
    /// The `[admin]` section.
    pub config: &'a AdminConfig,
    /// Whether anonymous requests are let in.
    pub anonymous_ok: bool,
    /// Whether no user is configured at all (security off): anonymous is then admin.
    pub open: bool,
    /// Recently verified passwords.
    pub cache: &'a Cache,
}

/// The admin role STOMP roles give.
fn role_of(ctx: Gate<'_>, roles: &[String]) -> Option<Role> {
    let has = |wanted: &[String]| roles.iter().any(|r| wanted.contains(r));
    if has(&ctx.config.admin_roles) {
        Some(Role::Admin)
    } else if has(&ctx.config.operator_roles) {
        Some(Role::Operator)
    } else if has(&ctx.config.monitor_roles) {
        Some(Role::Monitor)
    } else {
        None
    }
}

/// Authenticates a request from `peer`.
pub async fn authenticate(
    ctx: Gate<'_>,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<Caller, Refused> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        if !ctx.anonymous_ok {
            return Err(Refused::Unauthorized(
                "credentials required (HTTP basic with a broker user, or a bearer token)".into(),
            ));
        }
        let principal = Principal::anonymous(ctx.security.anonymous_roles());
        let role = if ctx.open {
            Some(Role::Admin)
        } else {
            role_of(ctx, &principal.roles)
        };
        return Ok(caller(ctx, principal, role));
    };
    if let Some(token) = header.strip_prefix("Bearer ") {
        let sha = hex(&Sha256::digest(token.trim().as_bytes()));
        let Some(t) = ctx
            .config
            .tokens
            .iter()
            .find(|t| t.sha256.eq_ignore_ascii_case(&sha))
        else {
            return Err(Refused::Unauthorized("unknown bearer token".into()));
        };
        let role = Role::parse(&t.role);
        // A token acts with the rights of a user of its name if there is one; otherwise it
        // is a principal of its own whose only role is its admin role.
        let principal = Principal::token(&t.name, vec![t.role.clone()]);
        return Ok(caller(ctx, principal, role));
    }
    let Some(basic) = header.strip_prefix("Basic ") else {
        return Err(Refused::Unauthorized(
            "unsupported Authorization scheme (use Basic or Bearer)".into(),
        ));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Refused::Unauthorized("malformed Basic credentials".into()))?;
    let (login, password) = decoded
        .split_once(':')
        .ok_or_else(|| Refused::Unauthorized("malformed Basic credentials".into()))?;
    let key = digest(&[login.as_bytes(), password.as_bytes()]);
    let principal = match ctx.cache.get(&key) {
        Some(p) => p,
        None => {
            let p = ctx
                .security
                .authenticate(
                    Credentials::Password {
                        login,
                        passcode: password,
                    },
                    ctx.anonymous_ok,
                    peer,
                )
                .await
                .map_err(|e| Refused::Unauthorized(e.message.to_string()))?;
            ctx.cache.put(key, p.clone());
            p
        }
    };
    let role = if ctx.open && principal.name.is_none() {
        Some(Role::Admin)
    } else {
        role_of(ctx, &principal.roles)
    };
    Ok(caller(ctx, principal, role))
}

fn caller(ctx: Gate<'_>, principal: Principal, role: Option<Role>) -> Caller {
    Caller {
        name: principal.name.clone(),
        roles: principal.roles.clone(),
        role,
        access: Access::new(Arc::clone(ctx.security), principal),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
