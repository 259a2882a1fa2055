//! The TOML schema: what `config/broker.toml` may say. Every key is kebab-case; unknown keys are
//! refused so that a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

use super::security::{
    BrokerLimits, SecuritySection, SecuritySettingEntry, TlsConfig, UserConfig,
    default_security_settings,
};

/// The whole broker configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Broker-wide settings.
    #[serde(default)]
    pub broker: BrokerSection,
    /// Network listeners. Defaults to one STOMP acceptor on 127.0.0.1:61613.
    #[serde(default = "default_acceptors")]
    pub acceptors: Vec<AcceptorConfig>,
    /// Addresses (and their queues) that exist from start-up.
    #[serde(default)]
    pub addresses: Vec<AddressConfig>,
    /// Address settings by match pattern; more specific matches override less specific ones.
    #[serde(default = "default_address_settings")]
    pub address_settings: Vec<AddressSettingsEntry>,
    /// Persistence settings (used by the journal).
    #[serde(default)]
    pub journal: JournalConfig,
    /// Anonymous access and login throttling.
    #[serde(default)]
    pub security: SecuritySection,
    /// Users who may log in (more may come from `security.users-file`).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Permissions by address pattern; the most specific match decides.
    #[serde(default = "default_security_settings")]
    pub security_settings: Vec<SecuritySettingEntry>,
    /// Broker-wide abuse limits.
    #[serde(default)]
    pub limits: BrokerLimits,
    /// The admin HTTP listener (API, `/metrics`, console).
    #[serde(default)]
    pub admin: super::AdminConfig,
    /// This broker as a node of a replicated cluster; absent, it runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::ClusterConfig>,
    /// The file this configuration was loaded from (set by [`crate::config::load`]), so a
    /// running broker can read it again on SIGHUP, a file change or the admin API.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Command-line overrides applied after loading, remembered so that a reload of the same
    /// file applies them again instead of reporting them as changes.
    #[serde(skip)]
    pub overrides: CliOverrides,
}

/// What [`Config::override_bind`] and [`Config::override_data_dir`] changed, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CliOverrides {
    /// `--bind` / `--ws-bind`.
    pub binds: Vec<(AcceptorProtocol, SocketAddr)>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--admin-bind`.
    pub admin_bind: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            broker: BrokerSection::default(),
            acceptors: default_acceptors(),
            addresses: Vec::new(),
            address_settings: default_address_settings(),
            journal: JournalConfig::default(),
            security: SecuritySection::default(),
            users: Vec::new(),
            security_settings: default_security_settings(),
            limits: BrokerLimits::default(),
            source: None,
            overrides: CliOverrides::default(),
            admin: super::AdminConfig::default(),
            cluster: None,
        }
    }
}

/// Broker-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BrokerSection {
    /// Name sent in CONNECTED's `server` header, after `WrenMQ/<version>`.
    #[serde(default = "default_broker_name")]
    pub name: String,
    /// Seconds a graceful shutdown waits for connections to close.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// How often (ms) every queue is scanned for expired messages; -1 = never (expired
    /// messages are still never delivered).
    #[serde(default = "default_message_expiry_scan_period")]
    pub message_expiry_scan_period: i64,
    /// Percent of the data directory's filesystem in use at or above which persistent SENDs
    /// are held (or refused, policy FAIL); -1 = no check. As Artemis's `max-disk-usage`.
    #[serde(default = "default_max_disk_usage")]
    pub max_disk_usage: i64,
    /// How often (ms) the data directory's filesystem usage is read.
    #[serde(default = "default_disk_scan_period")]
    pub disk_scan_period: i64,
    /// Bytes of messages the whole broker may hold in memory (over every address, with
    /// transaction buffers); beyond it every address meets its `address-full-policy`.
    /// -1 = half the memory available to the process (its cgroup limit, else the machine's).
    #[serde(default = "default_global_max_size")]
    pub global_max_size: i64,
    /// Bodies over this many bytes are written to a file as they arrive and streamed from it
    /// to consumers instead of being held in memory (Artemis's large messages).
    #[serde(default = "default_large_message_threshold")]
    pub large_message_threshold: usize,
    /// What the broker logs, as a `tracing` filter (`info`, `debug`, `wrenmq=debug,info`).
    /// `RUST_LOG`, when set, wins at start; a reload of the file applies a changed value.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Reload the configuration when its file (or its users file) changes, watching the
    /// file's directory; `false` leaves SIGHUP and the admin API as the only triggers.
    #[serde(default = "default_true")]
    pub watch_config: bool,
}

impl Default for BrokerSection {
    fn default() -> Self {
        BrokerSection {
            name: default_broker_name(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
            message_expiry_scan_period: default_message_expiry_scan_period(),
            max_disk_usage: default_max_disk_usage(),
            disk_scan_period: default_disk_scan_period(),
            global_max_size: default_global_max_size(),
            large_message_threshold: default_large_message_threshold(),
            log_level: default_log_level(),
            watch_config: true,
        }
    }
}

/// Which transport an acceptor speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AcceptorProtocol {
    /// STOMP over plain TCP.
    Stomp,
    /// STOMP over WebSocket.
    Websocket,
}

/// One network listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcceptorConfig {
    /// A name for logs.
    pub name: String,
    /// Transport.
    #[serde(default = "default_protocol")]
    pub protocol: AcceptorProtocol,
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// Destination prefix meaning "anycast address"; stripped from the name.
    #[serde(default = "default_anycast_prefix")]
    pub anycast_prefix: String,
    /// Destination prefix meaning "multicast address"; stripped from the name.
    #[serde(default = "default_multicast_prefix")]
    pub multicast_prefix: String,
    /// Frame limits for this acceptor.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Heart-beat and TTL settings for this acceptor.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// Unacked messages a subscription may hold when SUBSCRIBE names no window.
    #[serde(default = "default_consumer_window")]
    pub default_consumer_window: u32,
    /// WebSocket only: largest WebSocket message (and frame) accepted, in bytes. Bounds what one
    /// client can make the broker buffer before the STOMP decoder sees it; unset means
    /// [`DEFAULT_WS_MAX_MESSAGE_SIZE`]. Read it through [`AcceptorConfig::ws_max_message_size`].
    #[serde(default)]
    pub ws_max_message_size: Option<usize>,
    /// WebSocket only: send STOMP frames as binary WebSocket messages (`true`, the default),
    /// because bodies may hold NUL or non-UTF-8 bytes; `false` sends text messages for clients
    /// that only handle text. Read it through [`AcceptorConfig::ws_binary_frames`].
    #[serde(default)]
    pub ws_binary_frames: Option<bool>,
    /// WebSocket only: request paths on which the upgrade is accepted; unset means
    /// [`DEFAULT_WS_PATHS`]. Read it through [`AcceptorConfig::ws_paths`].
    #[serde(default)]
    pub ws_paths: Option<Vec<String>>,
    /// WebSocket only: the `Origin` values a browser upgrade may carry. Unset means a request
    /// without `Origin` (a non-browser client) or with the acceptor's own origin (its host and
    /// port equal to the request's `Host`) is accepted and any other gets HTTP 403, so a page
    /// from another site cannot talk to a broker on the visitor's machine; `"*"` allows any.
    /// Read it through [`AcceptorConfig::ws_allowed_origins`].
    #[serde(default)]
    pub ws_allowed_origins: Option<Vec<String>>,
    /// End every server frame with NUL plus a newline (`true`, the default) as RabbitMQ and
    /// ActiveMQ do, because some clients (PHP's PECL stomp, stomper) read one byte past the NUL
    /// and would otherwise swallow the next frame's first byte; `false` ends frames at the NUL.
    #[serde(default = "default_true")]
    pub frame_eol: bool,
    /// Serve this acceptor over TLS (`[acceptors.tls]`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// Default `ws-max-message-size`: the default `max-frame-size`, so that any frame the decoder
/// would accept also fits in one WebSocket message.
pub const DEFAULT_WS_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024 + 64 * 1024;

/// Default `ws-paths`: `/stomp` is what most STOMP-over-WebSocket brokers use, `/ws` is
/// RabbitMQ's (so clients and examples written for it work unchanged), `/` is what a client
/// that was given only host and port asks for.
pub const DEFAULT_WS_PATHS: [&str; 3] = ["/stomp", "/ws", "/"];

impl AcceptorConfig {
    /// The effective `ws-max-message-size`.
    pub fn ws_max_message_size(&self) -> usize {
        self.ws_max_message_size
            .unwrap_or(DEFAULT_WS_MAX_MESSAGE_SIZE)
    }

    /// The effective `ws-binary-frames`.
    pub fn ws_binary_frames(&self) -> bool {
        self.ws_binary_frames.unwrap_or(true)
    }

    /// The effective `ws-paths`.
    pub fn ws_paths(&self) -> Vec<String> {
        match &self.ws_paths {
            Some(paths) => paths.clone(),
            None => DEFAULT_WS_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The effective `ws-allowed-origins`: `None` means the default rule (no `Origin`, or
    /// the acceptor's own origin).
    pub fn ws_allowed_origins(&self) -> Option<&[String]> {
        self.ws_allowed_origins.as_deref()
    }
}

/// Frame limits; see `stomp::Limits`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest whole frame in bytes.
    #[serde(default = "default_max_frame_size")]
    pub max_frame_size: usize,
    /// Most header lines in one frame.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Longest header line in bytes.
    #[serde(default = "default_max_header_line")]
    pub max_header_line: usize,
    /// Largest body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// Open connections on this acceptor; unset = only the broker-wide `[limits]` apply.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Overrides `[limits] handshake-timeout-ms` for this acceptor.
    #[serde(default)]
    pub handshake_timeout_ms: Option<u64>,
    /// Largest frame in bytes accepted before CONNECT succeeds: an unauthenticated socket may
    /// make the broker buffer only a CONNECT, not a `max-frame-size` frame.
    #[serde(default = "default_max_connect_frame_size")]
    pub max_connect_frame_size: usize,
    /// Milliseconds a frame may take from its first byte to its NUL, so a client trickling a
    /// frame byte by byte cannot hold the connection (heart-beat EOLs between frames do not
    /// count); 0 = no deadline.
    #[serde(default = "default_frame_timeout_ms")]
    pub frame_timeout_ms: u64,
    /// Milliseconds one batch of outbound frames may take to be written, plus one second per
    /// MiB it holds: a client that stops reading (its socket buffers full) is closed instead
    /// of keeping its unacknowledged messages and its connection forever, as RabbitMQ's
    /// `send_timeout` does; 0 = wait for ever.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_frame_size: default_max_frame_size(),
            max_headers: default_max_headers(),
            max_header_line: default_max_header_line(),
            max_body: default_max_body(),
            max_connections: None,
            handshake_timeout_ms: None,
            max_connect_frame_size: default_max_connect_frame_size(),
            frame_timeout_ms: default_frame_timeout_ms(),
            write_timeout_ms: default_write_timeout_ms(),
        }
    }
}

/// Heart-beat negotiation and dead-peer detection.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Smallest interval (ms) the broker will send heart-beats at: the broker beats as often
    /// as the client asks, but never more often than this; 0 disables sending.
    #[serde(default = "default_hb_send_ms")]
    pub send_ms: u64,
    /// Smallest interval (ms) the broker accepts the client's heart-beats at: the client's own
    /// offer is used down to this floor; 0 asks for none.
    #[serde(default = "default_hb_receive_ms")]
    pub receive_ms: u64,
    /// A peer is dead after `grace × interval` without any inbound byte.
    #[serde(default = "default_hb_grace")]
    pub grace: f64,
    /// Idle limit (ms) for clients that negotiate no heart-beats (Artemis `connectionTtl`);
    /// 0 disables it.
    #[serde(default = "default_connection_ttl_ms")]
    pub connection_ttl_ms: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            send_ms: default_hb_send_ms(),
            receive_ms: default_hb_receive_ms(),
            grace: default_hb_grace(),
            connection_ttl_ms: default_connection_ttl_ms(),
        }
    }
}

/// Routing type of an address or queue.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum RoutingTypeConfig {
    /// Point-to-point.
    #[default]
    Anycast,
    /// Publish-subscribe.
    Multicast,
}

/// An address declared in the config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AddressConfig {
    /// Address name (no prefix).
    pub name: String,
    /// Routing types the address supports.
    pub routing_types: Vec<RoutingTypeConfig>,
    /// Queues bound to the address.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
}

/// A queue declared in the config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QueueConfig {
    /// Queue name, unique broker-wide.
    pub name: String,
    /// Routing type; must be one of the address's.
    pub routing_type: RoutingTypeConfig,
    /// Whether the queue and its persistent messages survive a restart.
    #[serde(default = "default_true")]
    pub durable: bool,
    /// A selector (JMS SQL syntax): only messages it matches are routed to the queue.
    pub filter: Option<String>,
    /// One consumer at a time receives; the next takes over when it leaves.
    pub exclusive: Option<bool>,
    /// A message replaces the waiting one with the same `last-value-key`.
    pub last_value: Option<bool>,
    /// The header a last-value queue keys on (default `_AMQ_LVQ_NAME`).
    pub last_value_key: Option<String>,
    /// Most messages held; the oldest waiting one is dropped. -1 = no bound.
    pub ring_size: Option<i64>,
    /// A consumer joining unbinds every message group so groups spread again.
    pub group_rebalance: Option<bool>,
    /// Buckets group ids hash into; 0 = no grouping, -1 = one binding per group id.
    pub group_buckets: Option<i64>,
    /// Consuming does not remove: a retained, replayable stream.
    pub non_destructive: Option<bool>,
    /// How long a non-destructive queue keeps messages; -1 = no age limit.
    pub retention_ms: Option<i64>,
    /// How many bytes a non-destructive queue keeps; -1 = no size limit.
    pub retention_bytes: Option<i64>,
}

/// What a full address does to its producers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AddressFullPolicyConfig {
    /// Write further messages to disk (page storage) and read them back as consumers catch up.
    Page,
    /// Stop reading from producers (TCP back-pressure) until space frees up.
    Block,
    /// Refuse the SEND with an ERROR.
    Fail,
    /// Drop the message silently.
    Drop,
}

/// Address settings applied to every address matching `match`.
/// Unset keys inherit from less specific matches, then from the built-in defaults.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AddressSettingsEntry {
    /// Address pattern with `#` (zero or more words) and `*` (one word) over `.`.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Create an address on first SEND or SUBSCRIBE to it, instead of refusing the frame.
    pub auto_create_addresses: Option<bool>,
    /// Create a queue on first use, instead of refusing the frame.
    pub auto_create_queues: Option<bool>,
    /// Delete an auto-created address once it has no queues, so unused names do not pile up.
    pub auto_delete_addresses: Option<bool>,
    /// Delete an auto-created queue once it has no consumers and no messages.
    pub auto_delete_queues: Option<bool>,
    /// Routing type of an auto-created address whose destination carried no acceptor prefix.
    pub default_address_routing_type: Option<RoutingTypeConfig>,
    /// Routing type of an auto-created queue whose destination carried no acceptor prefix.
    pub default_queue_routing_type: Option<RoutingTypeConfig>,
    /// Whether a SEND without a `persistent` header is persistent.
    pub default_persistent: Option<bool>,
    /// Bytes of messages the address may hold before `address-full-policy` applies; -1 = no limit.
    pub max_size_bytes: Option<i64>,
    /// Messages the address may hold before `address-full-policy` applies; -1 = no limit.
    pub max_size_messages: Option<i64>,
    /// What happens to producers once `max-size-bytes` is reached.
    pub address_full_policy: Option<AddressFullPolicyConfig>,
    /// How much a paging queue reads back from disk at a time (bytes); it reads another page
    /// once fewer than this many bytes of its messages wait in memory.
    pub page_size_bytes: Option<i64>,
    /// Deliveries before a message goes to the dead-letter address; -1 = unlimited.
    pub max_delivery_attempts: Option<i64>,
    /// Where messages go after `max-delivery-attempts` (or a NACK with `requeue:false`);
    /// empty = none, so they are dropped with a warning.
    pub dead_letter_address: Option<String>,
    /// Milliseconds a NACKed or returned message waits before it is offered again.
    pub redelivery_delay: Option<u64>,
    /// Factor applied to the delay on each further redelivery.
    pub redelivery_delay_multiplier: Option<f64>,
    /// Upper bound of the redelivery delay; default 10 × `redelivery-delay`.
    pub max_redelivery_delay: Option<u64>,
    /// Random spread (0.0–1.0) added to or taken from each delay, so consumers that failed
    /// together do not retry together.
    pub redelivery_collision_avoidance_factor: Option<f64>,
    /// Create, on the dead-letter address, a queue per original address (filtered on
    /// `_AMQ_ORIG_ADDRESS`) the first time a message of that address is dead-lettered.
    pub auto_create_dead_letter_resources: Option<bool>,
    /// Prefix of those queues' names.
    pub dead_letter_queue_prefix: Option<String>,
    /// Suffix of those queues' names.
    pub dead_letter_queue_suffix: Option<String>,
    /// Where expired messages go; empty = none, so they are dropped.
    pub expiry_address: Option<String>,
    /// Milliseconds to live given to a message that sets no expiry; -1 = none.
    pub expiry_delay: Option<i64>,
    /// Shortest time to live a message may have; -1 = no lower bound.
    pub min_expiry_delay: Option<i64>,
    /// Longest time to live a message may have (and the one given to a message without
    /// expiry); -1 = no upper bound.
    pub max_expiry_delay: Option<i64>,
    /// Ignore every expiry: messages never expire.
    pub no_expiry: Option<bool>,
    /// Create, on the expiry address, a queue per original address (filtered on
    /// `_AMQ_ORIG_ADDRESS`) the first time a message of that address expires.
    pub auto_create_expiry_resources: Option<bool>,
    /// Prefix of those queues' names.
    pub expiry_queue_prefix: Option<String>,
    /// Suffix of those queues' names.
    pub expiry_queue_suffix: Option<String>,
    /// How many recent `_AMQ_DUPL_ID` values the address remembers (and persists) to drop a
    /// repeated send; 0 = no duplicate detection.
    pub id_cache_size: Option<u32>,
    /// `exclusive` of queues created on demand (auto-created and subscription queues).
    pub default_exclusive_queue: Option<bool>,
    /// `last-value` of queues created on demand.
    pub default_last_value_queue: Option<bool>,
    /// `last-value-key` of queues created on demand.
    pub default_last_value_key: Option<String>,
    /// `ring-size` of queues created on demand.
    pub default_ring_size: Option<i64>,
    /// `group-rebalance` of queues created on demand.
    pub default_group_rebalance: Option<bool>,
    /// `group-buckets` of queues created on demand.
    pub default_group_buckets: Option<i64>,
    /// `non-destructive` of queues created on demand.
    pub default_non_destructive: Option<bool>,
    /// `retention-ms` of non-destructive queues created on demand.
    pub default_retention_ms: Option<i64>,
    /// `retention-bytes` of non-destructive queues created on demand.
    pub default_retention_bytes: Option<i64>,
}

/// Journal settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct JournalConfig {
    /// Whether persistent messages are written to disk at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Directory of the journal files.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Whether each group commit is fsynced before producers are answered.
    #[serde(default = "default_true")]
    pub sync: bool,
    /// How long (µs) the writer gathers operations before committing them together.
    #[serde(default = "default_buffer_timeout_us")]
    pub buffer_timeout_us: u64,
    /// Most operations in one group commit.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Bytes of the journal file the storage engine caches in memory, on top of
    /// `global-max-size` (which counts messages, not the cache).
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            enabled: true,
            data_dir: default_data_dir(),
            sync: true,
            buffer_timeout_us: default_buffer_timeout_us(),
            max_batch: default_max_batch(),
            cache_size: default_cache_size(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_broker_name() -> String {
    "wrenmq".to_string()
}
fn default_shutdown_grace_secs() -> u64 {
    5
}
fn default_protocol() -> AcceptorProtocol {
    AcceptorProtocol::Stomp
}
fn default_anycast_prefix() -> String {
    "/queue/".to_string()
}
fn default_multicast_prefix() -> String {
    "/topic/".to_string()
}
fn default_consumer_window() -> u32 {
    1000
}
fn default_max_frame_size() -> usize {
    16 * 1024 * 1024 + 64 * 1024
}
fn default_max_headers() -> usize {
    1000
}
fn default_max_header_line() -> usize {
    64 * 1024
}
fn default_max_body() -> usize {
    1024 * 1024 * 1024
}
fn default_large_message_threshold() -> usize {
    100 * 1024
}
fn default_hb_send_ms() -> u64 {
    500
}
fn default_hb_receive_ms() -> u64 {
    500
}
fn default_hb_grace() -> f64 {
    2.0
}
fn default_connection_ttl_ms() -> u64 {
    60_000
}
fn default_max_connect_frame_size() -> usize {
    8 * 1024
}
fn default_frame_timeout_ms() -> u64 {
    30_000
}
fn default_write_timeout_ms() -> u64 {
    30_000
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_buffer_timeout_us() -> u64 {
    1000
}
fn default_max_batch() -> usize {
    4096
}
/// 64 MiB: the B-tree's inner pages and recent writes stay cached; redb's own default
/// (1 GiB) would let a paging backlog fill a gigabyte of memory outside `global-max-size`.
pub const DEFAULT_JOURNAL_CACHE_SIZE: usize = 64 << 20;
fn default_cache_size() -> usize {
    DEFAULT_JOURNAL_CACHE_SIZE
}

/// The embedded default: one STOMP acceptor on loopback port 61613.
pub fn default_acceptors() -> Vec<AcceptorConfig> {
    vec![AcceptorConfig::default_for(AcceptorProtocol::Stomp)]
}

impl AcceptorConfig {
    /// The acceptor a protocol gets when the config declares none but one is needed (e.g. a
    /// command-line bind override): loopback only, so enabling a transport never exposes the
    /// broker to the network by accident. STOMP is "stomp" on 61613, WebSocket "websocket" on
    /// 61614 (the ports Artemis uses), both with the default prefixes and limits.
    pub fn default_for(protocol: AcceptorProtocol) -> AcceptorConfig {
        let (name, port) = match protocol {
            AcceptorProtocol::Stomp => ("stomp", 61613),
            AcceptorProtocol::Websocket => ("websocket", 61614),
        };
        AcceptorConfig {
            name: name.to_string(),
            protocol,
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            anycast_prefix: default_anycast_prefix(),
            multicast_prefix: default_multicast_prefix(),
            limits: LimitsConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            default_consumer_window: default_consumer_window(),
            ws_max_message_size: None,
            ws_binary_frames: None,
            ws_paths: None,
            ws_allowed_origins: None,
            frame_eol: true,
            tls: None,
        }
    }
}

fn default_message_expiry_scan_period() -> i64 {
    30_000
}
fn default_global_max_size() -> i64 {
    -1
}

fn default_max_disk_usage() -> i64 {
    90
}

fn default_disk_scan_period() -> i64 {
    5_000
}

/// Default `page-size-bytes`: 1 MiB. Artemis's 10 MiB is the size of a page *file*; here it
/// is what a paging queue reads back at once on the journal's thread, so smaller keeps
/// commits flowing while a reader catches up.
pub const DEFAULT_PAGE_SIZE_BYTES: i64 = 1 << 20;

/// The built-in `[[address-settings]]`: one `#` entry, as Artemis's shipped broker.xml (dead
/// letters to `DLQ`, expired messages to `ExpiryQueue`, 10 delivery attempts), with
/// everything auto-created and auto-deleted.
pub fn default_address_settings() -> Vec<AddressSettingsEntry> {
    vec![AddressSettingsEntry {
        pattern: "#".to_string(),
        auto_create_addresses: Some(true),
        auto_create_queues: Some(true),
        auto_delete_addresses: Some(true),
        auto_delete_queues: Some(true),
        default_address_routing_type: Some(RoutingTypeConfig::Multicast),
        default_queue_routing_type: Some(RoutingTypeConfig::Multicast),
        default_persistent: Some(true),
        max_size_bytes: Some(-1),
        max_size_messages: Some(-1),
        address_full_policy: Some(AddressFullPolicyConfig::Page),
        page_size_bytes: Some(DEFAULT_PAGE_SIZE_BYTES),
        max_delivery_attempts: Some(10),
        dead_letter_address: Some("DLQ".to_string()),
        redelivery_delay: Some(0),
        redelivery_delay_multiplier: Some(1.0),
        max_redelivery_delay: None,
        redelivery_collision_avoidance_factor: Some(0.0),
        auto_create_dead_letter_resources: Some(false),
        dead_letter_queue_prefix: Some("DLQ.".to_string()),
        dead_letter_queue_suffix: Some(String::new()),
        expiry_address: Some("ExpiryQueue".to_string()),
        expiry_delay: Some(-1),
        min_expiry_delay: Some(-1),
        max_expiry_delay: Some(-1),
        no_expiry: Some(false),
        auto_create_expiry_resources: Some(false),
        expiry_queue_prefix: Some("EXP.".to_string()),
        expiry_queue_suffix: Some(String::new()),
        id_cache_size: Some(20_000),
        default_exclusive_queue: Some(false),
        default_last_value_queue: Some(false),
        default_last_value_key: Some("_AMQ_LVQ_NAME".to_string()),
        default_ring_size: Some(-1),
        default_group_rebalance: Some(false),
        default_group_buckets: Some(-1),
        default_non_destructive: Some(false),
        default_retention_ms: Some(-1),
        default_retention_bytes: Some(-1),
    }]
}
