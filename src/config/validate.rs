//! Semantic checks that serde cannot express: uniqueness, cross-references and ranges.
//!
//! Rules run over the whole configuration and collect every problem instead of stopping at the
//! first, so one broker start tells the operator everything to fix.

use super::{
    AcceptorConfig, AddressConfig, AddressSettingsEntry, Config, HeartbeatConfig, JournalConfig,
    LimitsConfig, ValidationError,
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
        check_acceptors(&self.acceptors, &mut errors);
        check_addresses(&self.addresses, &mut errors);
        check_address_settings(&self.address_settings, &mut errors);
        check_journal(&self.journal, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn check_acceptors(acceptors: &[AcceptorConfig], errors: &mut Vec<ValidationError>) {
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
        check_limits(&format!("{key}.limits"), &acceptor.limits, errors);
        check_heartbeat(&format!("{key}.heartbeat"), &acceptor.heartbeat, errors);
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

fn check_limits(key: &str, limits: &LimitsConfig, errors: &mut Vec<ValidationError>) {
    for (name, value) in [
        ("max-frame-size", limits.max_frame_size),
        ("max-headers", limits.max_headers),
        ("max-header-line", limits.max_header_line),
        ("max-body", limits.max_body),
    ] {
        if value == 0 {
            errors.push(ValidationError::new(
                format!("{key}.{name}"),
                "must be greater than 0",
            ));
        }
    }
    if limits.max_body > limits.max_frame_size {
        errors.push(ValidationError::new(
            format!("{key}.max-body"),
            format!(
                "{} exceeds max-frame-size ({}); a body that large could never arrive in a frame",
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
        if entry.dead_letter_address.as_deref() == Some("") {
            errors.push(ValidationError::new(
                format!("{key}.dead-letter-address"),
                "must not be empty; remove the key to drop dead letters instead",
            ));
        }
    }
}

/// Checks an Artemis-style match pattern: non-empty words separated by `.`, where `#` and `*`
/// are wildcards only when they are a whole word (`a.#` is valid, `a#` is not).
fn check_pattern(pattern: &str) -> Result<(), String> {
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

fn check_journal(journal: &JournalConfig, errors: &mut Vec<ValidationError>) {
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
