//! Semantic checks that serde cannot express: uniqueness, cross-references and ranges.
//!
//! Rules run over the whole configuration and collect every problem instead of stopping at the
//! first, so one broker start tells the operator everything to fix.

use super::{
    AcceptorConfig, AcceptorProtocol, AddressConfig, AddressSettingsEntry, Config, HeartbeatConfig,
    JournalConfig, LimitsConfig, ValidationError,
};
use std::collections::HashMap;
use std::net::SocketAddr;

impl Config {
    /// Checks the rules the schema's types cannot: unique names, non-conflicting binds, sane
    /// limits, queue routing types that their address supports, well-formed match patterns.
    ///
    /// [`parse`](super::parse) and [`load`](super::load) call this; call it again after applying
    /// command-line overrides, since those can introduce a conflict. Each error's key is the
    /// dotted path as written in TOML (`acceptors[1].bind`).
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        check_acceptors(
            &self.acceptors,
            self.broker.large_message_threshold,
            &mut errors,
        );
        if self.broker.large_message_threshold == 0 {
            errors.push(ValidationError::new(
                "broker.large-message-threshold",
                "must be greater than 0 (bytes; bodies larger than this go to a file)",
            ));
        }
        check_addresses(&self.addresses, &mut errors);
        check_address_settings(&self.address_settings, &mut errors);
        check_journal(&self.journal, &mut errors);
        super::admin::check_admin(&self.admin, &mut errors);
        if let Some(c) = &self.cluster {
            super::cluster::check_cluster(c, self.journal.enabled, &mut errors);
        }
        let scan = self.broker.message_expiry_scan_period;
        if scan == 0 || scan < -1 {
            errors.push(ValidationError::new(
                "broker.message-expiry-scan-period",
                format!(
                    "{scan} is invalid; use -1 to turn the expiry reaper off or milliseconds > 0"
                ),
            ));
        }
        check_disk(&self.broker, &mut errors);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.broker.log_level) {
            errors.push(ValidationError::new(
                "broker.log-level",
                format!(
                    "\"{}\" is not a log filter ({e}); use a level such as \"info\" or \"debug\", or directives such as \"wrenmq=debug,info\"",
                    self.broker.log_level
                ),
            ));
        }
        let global = self.broker.global_max_size;
        if global == 0 || global < -1 {
            errors.push(ValidationError::new(
                "broker.global-max-size",
                format!(
                    "{global} is invalid; use -1 for half the memory available to the broker or a size in bytes >= 1"
                ),
            ));
        }
        super::validate_security::check_security(self, &mut errors);
        super::validate_queue_kind::check_queue_kinds(self, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn check_acceptors(
    acceptors: &[AcceptorConfig],
    large_message_threshold: usize,
    errors: &mut Vec<ValidationError>,
) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, acceptor) in acceptors.iter().enumerate() {
        let key = format!("acceptors[{i}]");
        if acceptor.name.is_empty() {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                "must not be empty",
            ));
        } else if let Some(&first) = names.get(acceptor.name.as_str()) {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                format!(
                    "acceptor name \"{}\" is already used by acceptors[{first}]",
                    acceptor.name
                ),
            ));
        } else {
            names.insert(&acceptor.name, i);
        }
        if let Some(j) = acceptors[..i]
            .iter()
            .position(|other| binds_conflict(other.bind, acceptor.bind))
        {
            errors.push(ValidationError::new(
                format!("{key}.bind"),
                format!(
                    "{} conflicts with acceptors[{j}].bind ({}); two listeners cannot share an address and port",
                    acceptor.bind, acceptors[j].bind
                ),
            ));
        }
        check_prefixes(&key, acceptor, errors);
        check_limits(
            &format!("{key}.limits"),
            &acceptor.limits,
            large_message_threshold,
            errors,
        );
        check_heartbeat(&format!("{key}.heartbeat"), &acceptor.heartbeat, errors);
        check_websocket(&key, acceptor, errors);
    }
}

/// Smallest `ws-max-message-size` allowed: below this even a CONNECT frame with a few headers
/// might not fit, and the broker would refuse every client.
const MIN_WS_MESSAGE_SIZE: usize = 1024;

fn check_websocket(key: &str, acceptor: &AcceptorConfig, errors: &mut Vec<ValidationError>) {
    if acceptor.protocol != AcceptorProtocol::Websocket {
        // A WebSocket key on a TCP acceptor does nothing; saying so beats ignoring it.
        for (name, set) in [
            (
                "ws-max-message-size",
                acceptor.ws_max_message_size.is_some(),
            ),
            ("ws-binary-frames", acceptor.ws_binary_frames.is_some()),
            ("ws-paths", acceptor.ws_paths.is_some()),
            ("ws-allowed-origins", acceptor.ws_allowed_origins.is_some()),
        ] {
            if set {
                errors.push(ValidationError::new(
                    format!("{key}.{name}"),
                    "applies only to acceptors with protocol = \"websocket\"",
                ));
            }
        }
        return;
    }
    if let Some(size) = acceptor.ws_max_message_size
        && size < MIN_WS_MESSAGE_SIZE
    {
        errors.push(ValidationError::new(
            format!("{key}.ws-max-message-size"),
            format!("{size} is too small; use at least {MIN_WS_MESSAGE_SIZE} bytes"),
        ));
    }
    if let Some(origins) = &acceptor.ws_allowed_origins {
        for (i, origin) in origins.iter().enumerate() {
            let ok = origin == "*"
                || (origin.contains("://")
                    && !origin.ends_with('/')
                    && origin.bytes().all(|b| b.is_ascii_graphic()));
            if !ok {
                errors.push(ValidationError::new(
                    format!("{key}.ws-allowed-origins[{i}]"),
                    format!(
                        "\"{origin}\" is not an origin: write scheme://host[:port] as a browser sends it (e.g. \"https://app.example.com\"), or \"*\" for any"
                    ),
                ));
            }
        }
    }
    if let Some(paths) = &acceptor.ws_paths {
        if paths.is_empty() {
            errors.push(ValidationError::new(
                format!("{key}.ws-paths"),
                "must list at least one path, e.g. [\"/stomp\"]",
            ));
        }
        for (i, path) in paths.iter().enumerate() {
            let bad = !path.starts_with('/')
                || path
                    .bytes()
                    .any(|b| b == b'?' || b == b'#' || !b.is_ascii_graphic());
            if bad {
                errors.push(ValidationError::new(
                    format!("{key}.ws-paths[{i}]"),
                    format!(
                        "\"{path}\" is not a request path: it must start with '/' and contain no spaces, '?' or '#'"
                    ),
                ));
            } else if let Some(j) = paths[..i].iter().position(|p| p == path) {
                errors.push(ValidationError::new(
                    format!("{key}.ws-paths[{i}]"),
                    format!("\"{path}\" is already listed as ws-paths[{j}]"),
                ));
            }
        }
    }
}

/// Whether two binds would make the second `bind()` fail with "address in use".
///
/// Port 0 asks the OS for a fresh port each time, so it never conflicts. A wildcard address
/// (`0.0.0.0`, `[::]`) covers every address of its family, so it conflicts with any specific
/// address of that family on the same port.
fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}

fn check_prefixes(key: &str, acceptor: &AcceptorConfig, errors: &mut Vec<ValidationError>) {
    let anycast = &acceptor.anycast_prefix;
    let multicast = &acceptor.multicast_prefix;
    if anycast.is_empty() {
        errors.push(ValidationError::new(
            format!("{key}.anycast-prefix"),
            "must not be empty",
        ));
    }
    if multicast.is_empty() {
        errors.push(ValidationError::new(
            format!("{key}.multicast-prefix"),
            "must not be empty",
        ));
    }
    if anycast.is_empty() || multicast.is_empty() {
        return;
    }
    // When one prefix starts with the other (equal included), a destination such as
    // "/queue/x" would match both and its routing type would be ambiguous.
    if anycast.starts_with(multicast.as_str()) || multicast.starts_with(anycast.as_str()) {
        errors.push(ValidationError::new(
            format!("{key}.multicast-prefix"),
            format!(
                "\"{multicast}\" overlaps anycast-prefix \"{anycast}\"; a destination must not match both"
            ),
        ));
    }
}

fn check_limits(
    key: &str,
    limits: &LimitsConfig,
    large_message_threshold: usize,
    errors: &mut Vec<ValidationError>,
) {
    for (name, value) in [
        ("max-frame-size", limits.max_frame_size),
        ("max-headers", limits.max_headers),
        ("max-header-line", limits.max_header_line),
        ("max-body", limits.max_body),
        ("max-connect-frame-size", limits.max_connect_frame_size),
    ] {
        if value == 0 {
            errors.push(ValidationError::new(
                format!("{key}.{name}"),
                "must be greater than 0",
            ));
        }
    }
    // Only a body up to the large-message threshold is held in the frame; a larger one
    // streams to a file and is bounded by max-body alone.
    if limits.max_body.min(large_message_threshold) > limits.max_frame_size {
        errors.push(ValidationError::new(
            format!("{key}.max-body"),
            format!(
                "{} exceeds max-frame-size ({}) and broker.large-message-threshold ({large_message_threshold}) lets bodies that large be held in a frame; such a body could never arrive",
                limits.max_body, limits.max_frame_size
            ),
        ));
    }
}

fn check_heartbeat(key: &str, heartbeat: &HeartbeatConfig, errors: &mut Vec<ValidationError>) {
    // Stated as the accepted range so NaN (valid TOML: `nan`) falls outside it too.
    if !(1.0..f64::INFINITY).contains(&heartbeat.grace) {
        errors.push(ValidationError::new(
            format!("{key}.grace"),
            format!(
                "{} is not a finite number >= 1.0; below 1.0 a healthy peer would be declared dead before its next heart-beat is due",
                heartbeat.grace
            ),
        ));
    }
}

fn check_addresses(addresses: &[AddressConfig], errors: &mut Vec<ValidationError>) {
    let mut address_names: HashMap<&str, usize> = HashMap::new();
    let mut queue_names: HashMap<&str, String> = HashMap::new();
    for (i, address) in addresses.iter().enumerate() {
        let key = format!("addresses[{i}]");
        if address.name.is_empty() {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                "must not be empty",
            ));
        } else if let Some(&first) = address_names.get(address.name.as_str()) {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                format!(
                    "address \"{}\" is already declared by addresses[{first}]",
                    address.name
                ),
            ));
        } else {
            address_names.insert(&address.name, i);
        }
        if address.routing_types.is_empty() {
            errors.push(ValidationError::new(
                format!("{key}.routing-types"),
                "must list at least one of \"anycast\", \"multicast\"",
            ));
        }
        for (q, queue) in address.queues.iter().enumerate() {
            let queue_key = format!("{key}.queues[{q}]");
            if let Some(filter) = &queue.filter
                && let Err(e) = crate::selector::Selector::parse(filter)
            {
                errors.push(ValidationError::new(
                    format!("{queue_key}.filter"),
                    e.to_string(),
                ));
            }
            if queue.name.is_empty() {
                errors.push(ValidationError::new(
                    format!("{queue_key}.name"),
                    "must not be empty",
                ));
            } else if let Some(first) = queue_names.get(queue.name.as_str()) {
                errors.push(ValidationError::new(
                    format!("{queue_key}.name"),
                    format!(
                        "queue \"{}\" is already declared at {first}; queue names are unique broker-wide",
                        queue.name
                    ),
                ));
            } else {
                queue_names.insert(&queue.name, queue_key.clone());
            }
            if !address.routing_types.contains(&queue.routing_type) {
                errors.push(ValidationError::new(
                    format!("{queue_key}.routing-type"),
                    format!(
                        "{} is not one of address \"{}\"'s routing-types",
                        routing_type_name(queue.routing_type),
                        address.name
                    ),
                ));
            }
        }
    }
}

fn routing_type_name(routing_type: super::RoutingTypeConfig) -> &'static str {
    match routing_type {
        super::RoutingTypeConfig::Anycast => "anycast",
        super::RoutingTypeConfig::Multicast => "multicast",
    }
}

fn check_address_settings(entries: &[AddressSettingsEntry], errors: &mut Vec<ValidationError>) {
    let mut patterns: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("address-settings[{i}]");
        if let Err(reason) = check_pattern(&entry.pattern) {
            errors.push(ValidationError::new(format!("{key}.match"), reason));
        } else if let Some(&first) = patterns.get(entry.pattern.as_str()) {
            // Two entries with one pattern have equal specificity, so neither could win.
            errors.push(ValidationError::new(
                format!("{key}.match"),
                format!(
                    "pattern \"{}\" is already used by address-settings[{first}]",
                    entry.pattern
                ),
            ));
        } else {
            patterns.insert(&entry.pattern, i);
        }
        if let Some(bytes) = entry.max_size_bytes
            && bytes < -1
        {
            errors.push(ValidationError::new(
                format!("{key}.max-size-bytes"),
                format!("{bytes} is invalid; use -1 for no limit or a size >= 0"),
            ));
        }
        if let Some(n) = entry.page_size_bytes
            && n < 1
        {
            errors.push(ValidationError::new(
                format!("{key}.page-size-bytes"),
                format!("{n} is invalid; use a size >= 1 (bytes)"),
            ));
        }
        if let Some(n) = entry.max_size_messages
            && n < -1
        {
            errors.push(ValidationError::new(
                format!("{key}.max-size-messages"),
                format!("{n} is invalid; use -1 for no limit or a count >= 0"),
            ));
        }
        check_delivery_settings(entry, &key, errors);
    }
}

/// The redelivery, dead-letter, expiry and duplicate-detection keys of one entry.
fn check_delivery_settings(
    entry: &AddressSettingsEntry,
    key: &str,
    errors: &mut Vec<ValidationError>,
) {
    let mut problem = |field: &str, reason: String| {
        errors.push(ValidationError::new(format!("{key}.{field}"), reason));
    };
    if let Some(n) = entry.max_delivery_attempts
        && (n == 0 || n < -1 || n > i64::from(u32::MAX))
    {
        problem(
            "max-delivery-attempts",
            format!(
                "{n} is invalid; use -1 for unlimited or a count from 1 to {}",
                u32::MAX
            ),
        );
    }
    if let Some(m) = entry.redelivery_delay_multiplier
        && !(m.is_finite() && m >= 1.0)
    {
        problem(
            "redelivery-delay-multiplier",
            format!("{m} is invalid; use a number >= 1.0 (1.0 keeps the delay constant)"),
        );
    }
    if let Some(f) = entry.redelivery_collision_avoidance_factor
        && !(0.0..=1.0).contains(&f)
    {
        problem(
            "redelivery-collision-avoidance-factor",
            format!("{f} is invalid; use a number from 0.0 to 1.0"),
        );
    }
    for (field, value) in [
        ("expiry-delay", entry.expiry_delay),
        ("min-expiry-delay", entry.min_expiry_delay),
        ("max-expiry-delay", entry.max_expiry_delay),
    ] {
        if let Some(v) = value
            && v < -1
        {
            problem(
                field,
                format!("{v} is invalid; use -1 for none or milliseconds >= 0"),
            );
        }
    }
    if let (Some(min), Some(max)) = (entry.min_expiry_delay, entry.max_expiry_delay)
        && min >= 0
        && max >= 0
        && min > max
    {
        problem(
            "min-expiry-delay",
            format!("{min} is above max-expiry-delay ({max})"),
        );
    }
    for (field, value) in [
        ("dead-letter-address", &entry.dead_letter_address),
        ("expiry-address", &entry.expiry_address),
    ] {
        if let Some(a) = value.as_deref().filter(|a| !a.is_empty())
            && let Err(reason) = check_target_address(a)
        {
            problem(field, reason);
        }
    }
    if let Some(n) = entry.id_cache_size
        && n > MAX_ID_CACHE_SIZE
    {
        problem(
            "id-cache-size",
            format!("{n} is above the limit of {MAX_ID_CACHE_SIZE} ids per address"),
        );
    }
}

/// Most duplicate ids one address may remember: the cache lives in memory (and the journal).
pub const MAX_ID_CACHE_SIZE: u32 = 1_000_000;

/// A dead-letter or expiry address must name one plain address: messages are sent to it.
fn check_target_address(address: &str) -> Result<(), String> {
    check_pattern(address)?;
    if address.split('.').any(|w| w == "#" || w == "*") || address.contains("::") {
        return Err(format!(
            "\"{address}\" must be a plain address name, not a pattern or a queue"
        ));
    }
    Ok(())
}

/// Checks an Artemis-style match pattern: non-empty words separated by `.`, where `#` and `*`
/// are wildcards only when they are a whole word (`a.#` is valid, `a#` is not).
pub(super) fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty; use \"#\" to match every address".to_string());
    }
    for word in pattern.split('.') {
        if word.is_empty() {
            return Err(format!(
                "\"{pattern}\" has an empty word; words are separated by single dots"
            ));
        }
        if word != "#" && word != "*" && word.contains(['#', '*']) {
            return Err(format!(
                "\"{pattern}\": '#' and '*' must be whole words, found \"{word}\""
            ));
        }
    }
    Ok(())
}

fn check_disk(broker: &super::BrokerSection, errors: &mut Vec<ValidationError>) {
    let usage = broker.max_disk_usage;
    if usage != -1 && !(0..=100).contains(&usage) {
        errors.push(ValidationError::new(
            "broker.max-disk-usage",
            format!("{usage} is invalid; use a percent from 0 to 100, or -1 to turn the check off"),
        ));
    }
    let period = broker.disk_scan_period;
    if period <= 0 {
        errors.push(ValidationError::new(
            "broker.disk-scan-period",
            format!("{period} is invalid; use milliseconds > 0"),
        ));
    }
}

fn check_journal(journal: &JournalConfig, errors: &mut Vec<ValidationError>) {
    if journal.cache_size < 1 << 20 {
        errors.push(ValidationError::new(
            "journal.cache-size",
            format!(
                "{} is invalid; use at least 1048576 bytes (1 MiB)",
                journal.cache_size
            ),
        ));
    }
    if journal.max_batch == 0 {
        errors.push(ValidationError::new(
            "journal.max-batch",
            "must be greater than 0",
        ));
    }
    if journal.data_dir.as_os_str().is_empty() {
        errors.push(ValidationError::new(
            "journal.data-dir",
            "must not be empty; use \".\" for the working directory",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AcceptorProtocol, QueueConfig, RoutingTypeConfig, parse};
    use std::path::Path;

    /// Validates `config` and returns the problems as `key: reason` lines.
    fn problems(config: &Config) -> Vec<String> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// Asserts that exactly one problem is reported, for `key`, and returns its text.
    fn only_problem(config: &Config, key: &str) -> String {
        let found = problems(config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!("{key}: ")), "{found:?}");
        found[0].clone()
    }

    fn with_two_acceptors(first: &str, second: &str) -> Config {
        let mut config = Config::default();
        config.acceptors[0].bind = first.parse().unwrap();
        let mut other = AcceptorConfig::default_for(AcceptorProtocol::Websocket);
        other.bind = second.parse().unwrap();
        config.acceptors.push(other);
        config
    }

    fn address(
        name: &str,
        routing_types: &[RoutingTypeConfig],
        queues: &[(&str, RoutingTypeConfig)],
    ) -> AddressConfig {
        AddressConfig {
            name: name.to_string(),
            routing_types: routing_types.to_vec(),
            queues: queues
                .iter()
                .map(|(name, routing_type)| QueueConfig {
                    name: name.to_string(),
                    routing_type: *routing_type,
                    durable: true,
                    filter: None,
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn with_addresses(addresses: Vec<AddressConfig>) -> Config {
        Config {
            addresses,
            ..Config::default()
        }
    }

    fn settings(pattern: &str) -> AddressSettingsEntry {
        AddressSettingsEntry {
            pattern: pattern.to_string(),
            ..AddressSettingsEntry::default()
        }
    }

    #[test]
    fn acceptor_names_are_unique() {
        let mut config = with_two_acceptors("127.0.0.1:1", "127.0.0.1:2");
        config.acceptors[1].name = "stomp".to_string();
        let message = only_problem(&config, "acceptors[1].name");
        assert!(
            message.contains("already used by acceptors[0]"),
            "{message}"
        );
    }

    #[test]
    fn acceptor_name_is_not_empty() {
        let mut config = Config::default();
        config.acceptors[0].name.clear();
        only_problem(&config, "acceptors[0].name");
    }

    #[test]
    fn acceptors_cannot_share_address_and_port() {
        let config = with_two_acceptors("127.0.0.1:61613", "127.0.0.1:61613");
        let message = only_problem(&config, "acceptors[1].bind");
        assert!(
            message.contains("conflicts with acceptors[0].bind"),
            "{message}"
        );
    }

    #[test]
    fn wildcard_conflicts_with_a_specific_address_of_its_family() {
        let config = with_two_acceptors("0.0.0.0:7000", "127.0.0.1:7000");
        only_problem(&config, "acceptors[1].bind");
        let config = with_two_acceptors("[::1]:7000", "[::]:7000");
        only_problem(&config, "acceptors[1].bind");
    }

    #[test]
    fn distinct_ports_addresses_and_port_zero_are_fine() {
        for (a, b) in [
            ("127.0.0.1:7000", "127.0.0.1:7001"),
            ("127.0.0.1:7000", "127.0.0.2:7000"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("0.0.0.0:0", "127.0.0.1:0"),
        ] {
            assert_eq!(
                problems(&with_two_acceptors(a, b)),
                Vec::<String>::new(),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn prefixes_are_not_empty() {
        let mut config = Config::default();
        config.acceptors[0].anycast_prefix.clear();
        only_problem(&config, "acceptors[0].anycast-prefix");
        let mut config = Config::default();
        config.acceptors[0].multicast_prefix.clear();
        only_problem(&config, "acceptors[0].multicast-prefix");
    }

    #[test]
    fn prefixes_differ() {
        let mut config = Config::default();
        config.acceptors[0].multicast_prefix = "/queue/".to_string();
        let message = only_problem(&config, "acceptors[0].multicast-prefix");
        assert!(message.contains("overlaps anycast-prefix"), "{message}");
    }

    #[test]
    fn one_prefix_may_not_start_with_the_other() {
        let mut config = Config::default();
        config.acceptors[0].anycast_prefix = "/".to_string();
        only_problem(&config, "acceptors[0].multicast-prefix");
    }

    #[test]
    fn limits_are_positive() {
        for (name, set) in [
            (
                "max-frame-size",
                (|l: &mut LimitsConfig| l.max_frame_size = 0) as fn(&mut LimitsConfig),
            ),
            ("max-headers", |l| l.max_headers = 0),
            ("max-header-line", |l| l.max_header_line = 0),
            ("max-body", |l| l.max_body = 0),
        ] {
            let mut config = Config::default();
            set(&mut config.acceptors[0].limits);
            let found = problems(&config);
            let key = format!("acceptors[0].limits.{name}: must be greater than 0");
            assert!(found.contains(&key), "{name}: {found:?}");
        }
    }

    #[test]
    fn body_fits_in_a_frame() {
        let mut config = Config::default();
        config.acceptors[0].limits.max_body = config.acceptors[0].limits.max_frame_size + 1;
        config.broker.large_message_threshold = config.acceptors[0].limits.max_body;
        let message = only_problem(&config, "acceptors[0].limits.max-body");
        assert!(message.contains("exceeds max-frame-size"), "{message}");
    }

    #[test]
    fn a_body_beyond_the_frame_size_is_fine_when_it_streams_to_a_file() {
        let mut config = Config::default();
        config.acceptors[0].limits.max_body = config.acceptors[0].limits.max_frame_size * 4;
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            Config::default().acceptors[0].limits.max_body,
            1024 * 1024 * 1024,
            "1 GiB by default"
        );
    }

    #[test]
    fn large_message_threshold_is_positive() {
        let mut config = Config::default();
        config.broker.large_message_threshold = 0;
        let message = only_problem(&config, "broker.large-message-threshold");
        assert!(message.contains("greater than 0"), "{message}");
    }

    #[test]
    fn heartbeat_grace_is_at_least_one() {
        for grace in [0.5, f64::NAN, f64::INFINITY, -1.0] {
            let mut config = Config::default();
            config.acceptors[0].heartbeat.grace = grace;
            only_problem(&config, "acceptors[0].heartbeat.grace");
        }
        let mut config = Config::default();
        config.acceptors[0].heartbeat.grace = 1.0;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn queue_routing_type_belongs_to_its_address() {
        use RoutingTypeConfig::*;
        let config = with_addresses(vec![address(
            "orders",
            &[Anycast],
            &[("orders", Multicast)],
        )]);
        let message = only_problem(&config, "addresses[0].queues[0].routing-type");
        assert!(
            message.contains("multicast is not one of address \"orders\""),
            "{message}"
        );
    }

    #[test]
    fn address_names_are_present_and_unique() {
        use RoutingTypeConfig::*;
        let mut config = with_addresses(vec![address("", &[Anycast], &[])]);
        only_problem(&config, "addresses[0].name");
        config.addresses = vec![
            address("a", &[Anycast], &[]),
            address("a", &[Multicast], &[]),
        ];
        only_problem(&config, "addresses[1].name");
    }

    #[test]
    fn address_has_a_routing_type() {
        let config = with_addresses(vec![address("a", &[], &[])]);
        only_problem(&config, "addresses[0].routing-types");
    }

    #[test]
    fn queue_names_are_unique_broker_wide() {
        use RoutingTypeConfig::*;
        let config = with_addresses(vec![
            address("a", &[Anycast], &[("q", Anycast)]),
            address(
                "b",
                &[Anycast, Multicast],
                &[("r", Multicast), ("q", Anycast)],
            ),
        ]);
        let message = only_problem(&config, "addresses[1].queues[1].name");
        assert!(
            message.contains("already declared at addresses[0].queues[0]"),
            "{message}"
        );
    }

    #[test]
    fn match_patterns_are_well_formed() {
        for good in ["#", "*", "a", "a.b", "a.*.c", "a.#", "#.b", "orders-eu.x_y"] {
            let mut config = Config::default();
            config.address_settings.push(settings(good));
            if good == "#" {
                config.address_settings.remove(0);
            }
            assert_eq!(config.validate(), Ok(()), "{good}");
        }
        for bad in ["", "a#", "a.b*", "a..b", ".a", "a.", "##", "*a"] {
            let mut config = Config::default();
            config.address_settings.push(settings(bad));
            only_problem(&config, "address-settings[1].match");
        }
    }

    #[test]
    fn match_patterns_are_unique() {
        let mut config = Config::default();
        config.address_settings.push(settings("#"));
        let message = only_problem(&config, "address-settings[1].match");
        assert!(
            message.contains("already used by address-settings[0]"),
            "{message}"
        );
    }

    #[test]
    fn max_size_bytes_is_at_least_minus_one() {
        let mut config = Config::default();
        config.address_settings[0].max_size_bytes = Some(-2);
        only_problem(&config, "address-settings[0].max-size-bytes");
        for ok in [-1, 0, 1 << 40] {
            config.address_settings[0].max_size_bytes = Some(ok);
            assert_eq!(config.validate(), Ok(()));
        }
    }

    #[test]
    fn page_size_bytes_is_at_least_one() {
        let mut config = Config::default();
        for bad in [0, -1] {
            config.address_settings[0].page_size_bytes = Some(bad);
            assert!(only_problem(&config, "address-settings[0].page-size-bytes").contains(">= 1"));
        }
        config.address_settings[0].page_size_bytes = Some(1);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn delivery_settings_are_checked() {
        let mut config = Config::default();
        config.address_settings[0].max_delivery_attempts = Some(0);
        assert!(only_problem(&config, "address-settings[0].max-delivery-attempts").contains("-1"));
        config.address_settings[0].max_delivery_attempts = Some(-1);
        config.address_settings[0].redelivery_collision_avoidance_factor = Some(1.5);
        only_problem(
            &config,
            "address-settings[0].redelivery-collision-avoidance-factor",
        );
        config.address_settings[0].redelivery_collision_avoidance_factor = None;
        config.address_settings[0].redelivery_delay_multiplier = Some(0.5);
        only_problem(&config, "address-settings[0].redelivery-delay-multiplier");
        config.address_settings[0].redelivery_delay_multiplier = None;
        config.address_settings[0].min_expiry_delay = Some(500);
        config.address_settings[0].max_expiry_delay = Some(100);
        only_problem(&config, "address-settings[0].min-expiry-delay");
        config.address_settings[0].min_expiry_delay = Some(-2);
        config.address_settings[0].max_expiry_delay = None;
        only_problem(&config, "address-settings[0].min-expiry-delay");
        config.address_settings[0].min_expiry_delay = None;
        config.address_settings[0].id_cache_size = Some(MAX_ID_CACHE_SIZE + 1);
        only_problem(&config, "address-settings[0].id-cache-size");
        config.address_settings[0].id_cache_size = None;
        config.broker.message_expiry_scan_period = 0;
        only_problem(&config, "broker.message-expiry-scan-period");
        config.broker.message_expiry_scan_period = -1;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn dead_letter_address_is_a_plain_address() {
        let mut config = Config::default();
        config.address_settings[0].dead_letter_address = Some("dead.#".to_string());
        only_problem(&config, "address-settings[0].dead-letter-address");
        // Empty unsets it, as Artemis's `<dead-letter-address/>`.
        config.address_settings[0].dead_letter_address = Some(String::new());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn disk_keys_are_checked() {
        let mut config = Config::default();
        for bad in [101, -2, i64::MAX] {
            config.broker.max_disk_usage = bad;
            let p = only_problem(&config, "broker.max-disk-usage");
            assert!(p.contains("0 to 100"), "{p}");
        }
        for good in [-1, 0, 90, 100] {
            config.broker.max_disk_usage = good;
            assert!(problems(&config).is_empty());
        }
        config.broker.disk_scan_period = 0;
        only_problem(&config, "broker.disk-scan-period");
        let err = parse("[broker]\nmax-disk-usage = 150\n", Path::new("b.toml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("b.toml") && text.contains("broker.max-disk-usage"),
            "{text}"
        );
    }

    #[test]
    fn journal_batch_and_dir() {
        let mut config = Config::default();
        config.journal.max_batch = 0;
        only_problem(&config, "journal.max-batch");
        config.journal.max_batch = 1;
        config.journal.cache_size = 4096;
        assert!(only_problem(&config, "journal.cache-size").contains("1 MiB"));
        config.journal.cache_size = 1 << 20;
        let mut config = Config::default();
        config.journal.data_dir = Default::default();
        only_problem(&config, "journal.data-dir");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = Config::default();
        config.journal.max_batch = 0;
        config.address_settings = vec![settings("a#")];
        config.acceptors[0].heartbeat.grace = 0.0;
        assert_eq!(problems(&config).len(), 3);
    }

    #[test]
    fn bad_queue_filter_is_refused_naming_file_key_and_position() {
        let text = "[[addresses]]\nname = \"orders\"\nrouting-types = [\"anycast\"]\n\n[[addresses.queues]]\nname = \"eu\"\nrouting-type = \"anycast\"\nfilter = \"region = \"\n";
        let message = parse(text, Path::new("f.toml")).unwrap_err().to_string();
        assert!(message.starts_with("f.toml: "), "{message}");
        assert!(
            message
                .contains("addresses[0].queues[0].filter: bad selector at position 10: expected"),
            "{message}"
        );
        let good = text.replace("region = ", "region = 'eu'");
        let config = parse(&good, Path::new("f.toml")).unwrap();
        assert_eq!(
            config.addresses[0].queues[0].filter.as_deref(),
            Some("region = 'eu'")
        );
    }

    #[test]
    fn parse_reports_validation_keys_in_toml_spelling() {
        let text = "[[acceptors]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n\n[[acceptors]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n\n[[address-settings]]\nmatch = \"#\"\n\n[[address-settings]]\nmatch = \"x\"\nmax-size-bytes = -5\n";
        let message = parse(text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(
            message.starts_with("b.toml: 3 invalid settings:\n"),
            "{message}"
        );
        assert!(message.contains("\n  acceptors[1].name: "), "{message}");
        assert!(message.contains("\n  acceptors[1].bind: "), "{message}");
        assert!(
            message.contains("\n  address-settings[1].max-size-bytes: -5 is invalid"),
            "{message}"
        );
    }

    fn websocket_config() -> Config {
        let mut config = Config::default();
        let mut ws = AcceptorConfig::default_for(AcceptorProtocol::Websocket);
        ws.bind = "127.0.0.1:0".parse().unwrap();
        config.acceptors.push(ws);
        config
    }

    #[test]
    fn websocket_defaults_are_valid_and_documented_values() {
        let config = websocket_config();
        assert_eq!(config.validate(), Ok(()));
        let ws = &config.acceptors[1];
        assert_eq!(ws.ws_max_message_size(), 16 * 1024 * 1024 + 64 * 1024);
        assert!(ws.ws_binary_frames());
        assert_eq!(
            ws.ws_paths(),
            vec!["/stomp".to_string(), "/ws".to_string(), "/".to_string()]
        );
        assert_eq!(ws.ws_allowed_origins(), None);
        assert!(ws.frame_eol);
    }

    #[test]
    fn websocket_keys_on_a_tcp_acceptor_are_refused() {
        let mut config = Config::default();
        config.acceptors[0].ws_binary_frames = Some(false);
        let text = only_problem(&config, "acceptors[0].ws-binary-frames");
        assert!(text.contains("websocket"), "{text}");
    }

    #[test]
    fn tiny_websocket_message_size_is_refused() {
        let mut config = websocket_config();
        config.acceptors[1].ws_max_message_size = Some(100);
        only_problem(&config, "acceptors[1].ws-max-message-size");
        config.acceptors[1].ws_max_message_size = Some(1024 * 1024);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn websocket_paths_must_be_paths_and_unique() {
        let mut config = websocket_config();
        config.acceptors[1].ws_paths = Some(Vec::new());
        only_problem(&config, "acceptors[1].ws-paths");
        config.acceptors[1].ws_paths = Some(vec!["stomp".to_string()]);
        only_problem(&config, "acceptors[1].ws-paths[0]");
        config.acceptors[1].ws_paths = Some(vec!["/a b".to_string()]);
        only_problem(&config, "acceptors[1].ws-paths[0]");
        config.acceptors[1].ws_paths = Some(vec!["/ws".to_string(), "/ws".to_string()]);
        only_problem(&config, "acceptors[1].ws-paths[1]");
    }

    #[test]
    fn websocket_allowed_origins_must_be_origins() {
        let mut config = websocket_config();
        config.acceptors[1].ws_allowed_origins = Some(vec!["example.com".to_string()]);
        let text = only_problem(&config, "acceptors[1].ws-allowed-origins[0]");
        assert!(text.contains("scheme://host"), "{text}");
        config.acceptors[1].ws_allowed_origins = Some(vec!["https://a.example/".to_string()]);
        only_problem(&config, "acceptors[1].ws-allowed-origins[0]");
        config.acceptors[1].ws_allowed_origins =
            Some(vec!["https://a.example:8443".to_string(), "*".to_string()]);
        assert_eq!(config.validate(), Ok(()));
        let mut tcp = Config::default();
        tcp.acceptors[0].ws_allowed_origins = Some(vec!["*".to_string()]);
        only_problem(&tcp, "acceptors[0].ws-allowed-origins");
    }

    #[test]
    fn connect_frame_limit_is_positive() {
        let mut config = Config::default();
        config.acceptors[0].limits.max_connect_frame_size = 0;
        only_problem(&config, "acceptors[0].limits.max-connect-frame-size");
    }

    #[test]
    fn websocket_keys_parse_from_toml() {
        let text = "[[acceptors]]\nname = \"ws\"\nprotocol = \"websocket\"\nbind = \"127.0.0.1:0\"\nws-max-message-size = 2097152\nws-binary-frames = false\nws-paths = [\"/ws\"]\n";
        let config = parse(text, Path::new("t.toml")).unwrap();
        let ws = &config.acceptors[0];
        assert_eq!(ws.ws_max_message_size(), 2 * 1024 * 1024);
        assert!(!ws.ws_binary_frames());
        assert_eq!(ws.ws_paths(), vec!["/ws".to_string()]);
    }
}
