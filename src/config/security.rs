//! The security and abuse-limit part of the TOML schema: users, anonymous access, per-address
//! permissions (Artemis's `security-settings`), TLS on acceptors, and broker-wide limits.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One user who may log in (`[[users]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserConfig {
    /// Login name, as sent in CONNECT's `login` header or as a client certificate's CN.
    pub name: String,
    /// Argon2 PHC string (`$argon2id$v=19$...`), made with `wrenmq user hash`. Never a plain
    /// password. Unset: the user can only authenticate with a client certificate.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Roles named by `security-settings` permission lists.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A separate file of users (`[security] users-file`), so secrets can live apart from the
/// rest of the configuration with tighter file permissions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UsersFile {
    /// The users it declares.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// `[security]`: who may connect without credentials, and how failed logins are slowed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecuritySection {
    /// `true`: CONNECT without `login` is accepted on every acceptor; `false`: never.
    /// Unset (the default): only on acceptors bound to a loopback address.
    #[serde(default)]
    pub allow_anonymous: Option<bool>,
    /// Roles an anonymous connection gets.
    #[serde(default = "default_anonymous_roles")]
    pub anonymous_roles: Vec<String>,
    /// A TOML file with more `[[users]]`, relative to this configuration file's directory.
    #[serde(default)]
    pub users_file: Option<PathBuf>,
    /// Delay (ms) before answering the first failed login from an IP; doubles per failure.
    #[serde(default = "default_login_failure_delay_ms")]
    pub login_failure_delay_ms: u64,
    /// Most delay (ms) before answering a failed login.
    #[serde(default = "default_login_failure_max_delay_ms")]
    pub login_failure_max_delay_ms: u64,
    /// Seconds without failures after which an IP's failure count is forgotten.
    #[serde(default = "default_login_failure_decay_secs")]
    pub login_failure_decay_secs: u64,
    /// Failed logins an IP may have within `login-failure-decay-secs`; beyond them its logins
    /// are refused without being checked until it has been quiet that long.
    #[serde(default = "default_login_failure_limit")]
    pub login_failure_limit: u32,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            allow_anonymous: None,
            anonymous_roles: default_anonymous_roles(),
            users_file: None,
            login_failure_delay_ms: default_login_failure_delay_ms(),
            login_failure_max_delay_ms: default_login_failure_max_delay_ms(),
            login_failure_decay_secs: default_login_failure_decay_secs(),
            login_failure_limit: default_login_failure_limit(),
        }
    }
}

/// Permissions on the addresses matching `match` (`[[security-settings]]`): each key lists
/// the roles that have that permission. The most specific matching entry decides alone.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecuritySettingEntry {
    /// Address pattern with `#` (zero or more words) and `*` (one word) over `.`.
    #[serde(rename = "match")]
    pub pattern: String,
    /// SEND to the address.
    #[serde(default)]
    pub send: Vec<String>,
    /// SUBSCRIBE to the address.
    #[serde(default)]
    pub consume: Vec<String>,
    /// Browse the address's queues (reserved: STOMP has no browser).
    #[serde(default)]
    pub browse: Vec<String>,
    /// Auto-create the address.
    #[serde(default)]
    pub create_address: Vec<String>,
    /// Delete the address (reserved: no STOMP frame deletes an address).
    #[serde(default)]
    pub delete_address: Vec<String>,
    /// Auto-create a durable queue (anycast queues, FQQN queues, durable subscriptions).
    #[serde(default)]
    pub create_durable_queue: Vec<String>,
    /// Delete a durable queue (UNSUBSCRIBE of a durable subscription).
    #[serde(default)]
    pub delete_durable_queue: Vec<String>,
    /// Create a non-durable subscription queue (multicast SUBSCRIBE).
    #[serde(default)]
    pub create_non_durable_queue: Vec<String>,
    /// Delete a non-durable queue (reserved: such queues go with their subscriber).
    #[serde(default)]
    pub delete_non_durable_queue: Vec<String>,
    /// Act on other users' durable subscriptions (attach to and delete them).
    #[serde(default)]
    pub manage: Vec<String>,
}

/// When a TLS acceptor asks for a client certificate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Asked for; a client without one logs in with `login`/`passcode` or anonymously.
    Optional,
    /// The handshake fails without a certificate signed by `client-ca`.
    Required,
}

/// `[acceptors.tls]`: serve the acceptor over TLS.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file of CA certificates that sign client certificates; enables client auth.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required; needs `client-ca`. Default: optional.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

/// `[limits]`: broker-wide abuse limits. A client hitting one gets an ERROR; others are not
/// affected.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BrokerLimits {
    /// Open connections over all acceptors.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one IP address; unset = no per-IP limit, because an application
    /// server relaying browser sessions (Spring's STOMP broker relay) opens one connection per
    /// session from its one address.
    #[serde(default)]
    pub max_connections_per_ip: Option<usize>,
    /// Subscriptions one connection may hold.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions_per_connection: usize,
    /// Transactions one connection may have open.
    #[serde(default = "default_max_transactions")]
    pub max_transactions_per_connection: usize,
    /// SENDs buffered in one transaction before COMMIT.
    #[serde(default = "default_max_messages_per_transaction")]
    pub max_messages_per_transaction: usize,
    /// Bytes of messages one connection may hold buffered over all its open transactions.
    #[serde(default = "default_max_transaction_bytes")]
    pub max_transaction_bytes: u64,
    /// Unacknowledged messages one connection may hold over all its subscriptions.
    #[serde(default = "default_max_unacked")]
    pub max_unacked_per_connection: u32,
    /// Milliseconds a new connection has to send CONNECT (and finish TLS).
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// `.`-separated words a SEND or SUBSCRIBE address may have: every send compares its
    /// address with each wildcard subscription, so the words bound that cost.
    #[serde(default = "default_max_address_words")]
    pub max_address_words: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            max_connections: default_max_connections(),
            max_connections_per_ip: None,
            max_subscriptions_per_connection: default_max_subscriptions(),
            max_transactions_per_connection: default_max_transactions(),
            max_messages_per_transaction: default_max_messages_per_transaction(),
            max_transaction_bytes: default_max_transaction_bytes(),
            max_unacked_per_connection: default_max_unacked(),
            handshake_timeout_ms: default_handshake_timeout_ms(),
            max_address_words: default_max_address_words(),
        }
    }
}

fn default_anonymous_roles() -> Vec<String> {
    vec!["guest".to_string()]
}
fn default_login_failure_delay_ms() -> u64 {
    250
}
fn default_login_failure_max_delay_ms() -> u64 {
    5_000
}
fn default_login_failure_decay_secs() -> u64 {
    60
}
fn default_login_failure_limit() -> u32 {
    10
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_subscriptions() -> usize {
    1_000
}
fn default_max_transactions() -> usize {
    100
}
fn default_max_messages_per_transaction() -> usize {
    10_000
}
fn default_max_transaction_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_max_unacked() -> u32 {
    100_000
}
fn default_handshake_timeout_ms() -> u64 {
    10_000
}
fn default_max_address_words() -> usize {
    64
}

/// The embedded default permissions: the `guest` role (what anonymous connections get by
/// default) may do everything on every address, which is the behaviour of a broker without
/// security. A file listing any `[[security-settings]]` replaces this list.
pub fn default_security_settings() -> Vec<SecuritySettingEntry> {
    let all = vec!["guest".to_string()];
    vec![SecuritySettingEntry {
        pattern: "#".to_string(),
        send: all.clone(),
        consume: all.clone(),
        browse: all.clone(),
        create_address: all.clone(),
        delete_address: all.clone(),
        create_durable_queue: all.clone(),
        delete_durable_queue: all.clone(),
        create_non_durable_queue: all.clone(),
        delete_non_durable_queue: all.clone(),
        manage: all,
    }]
}
