//! Reading and parsing a configuration file into a validated [`Config`].
//!
//! Deserialization goes through `serde_path_to_error` because the TOML parser alone reports only
//! a byte span and a message; the operator needs the key path (`acceptors[1].bind`) to know which
//! of several identical-looking tables is wrong.

use super::{Config, ConfigError, Location, UsersFile, ValidationError};
use std::path::Path;

/// Reads, parses and validates the configuration file at `path`.
///
/// This is the one entry point the broker binary needs: any error it returns is ready to print
/// and names the file, the key and the reason.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut config = parse(&text, path)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses and validates configuration `text`; `origin` is only used to name the file in errors.
///
/// Separate from [`load`] so tests and embedders can configure a broker from a string without
/// touching the filesystem. An empty text yields [`Config::default`].
///
/// When `security.users-file` is set, that file is read too (relative to `origin`'s
/// directory) and its users are added; its problems name that file.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let mut config: Config = deserialize(text, origin)?;
    config.validate().map_err(|errors| ConfigError::Invalid {
        path: origin.to_path_buf(),
        errors,
    })?;
    if let Some(file) = config.security.users_file.clone() {
        let path = origin.parent().unwrap_or(Path::new("")).join(file);
        merge_users_file(&mut config, &path, origin)?;
    }
    Ok(config)
}

/// Reads a users file, validates its users on their own (so errors name that file), refuses
/// a user also declared in the main file, and appends them.
fn merge_users_file(config: &mut Config, path: &Path, origin: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| unreadable_users_file(path, origin, &cause))?;
    check_private(path, origin)?;
    let file: UsersFile = deserialize(&text, path)?;
    let mut errors = Vec::new();
    super::validate_security::check_users(&file.users, &mut errors);
    for (i, user) in file.users.iter().enumerate() {
        if config.users.iter().any(|u| u.name == user.name) {
            errors.push(ValidationError::new(
                format!("users[{i}].name"),
                format!(
                    "user \"{}\" is already declared in {}",
                    user.name,
                    origin.display()
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors,
        });
    }
    config.users.extend(file.users);
    Ok(())
}

/// A users file that cannot be read is a problem of the main file's `security.users-file`
/// setting: the operator must learn which file pointed there, not only the path it names (which
/// may be absolute, or a directory).
fn unreadable_users_file(path: &Path, origin: &Path, cause: &std::io::Error) -> ConfigError {
    ConfigError::Invalid {
        path: origin.to_path_buf(),
        errors: vec![ValidationError::new(
            "security.users-file",
            format!("cannot read {}: {cause}", path.display()),
        )],
    }
}

/// Refuses a users file that anyone but its owner may read or write: it holds password
/// hashes, which can be attacked offline, and a writable one lets anyone add a user. The same
/// rule as ssh's for private keys, and the mode `wrenmq user add --file` creates.
#[cfg(unix)]
fn check_private(path: &Path, origin: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|cause| unreadable_users_file(path, origin, &cause))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        path: origin.to_path_buf(),
        errors: vec![ValidationError::new(
            "security.users-file",
            format!(
                "{} has mode {mode:04o}: group or others may access it, and it holds password hashes; make it private to the broker's user with `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        )],
    })
}

/// Windows has no mode bits; its ACLs are the operator's to set.
#[cfg(not(unix))]
fn check_private(_path: &Path, _origin: &Path) -> Result<(), ConfigError> {
    Ok(())
}

fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &Path,
) -> Result<T, ConfigError> {
    let parse_error = |key: Option<String>, error: &toml::de::Error| ConfigError::Parse {
        path: origin.to_path_buf(),
        key,
        reason: error.message().trim_end().to_string(),
        location: error
            .span()
            .map(|span| Location::from_offset(text, span.start)),
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(None, &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = key_path(e.path());
        parse_error(key, e.inner())
    })
}

/// The dotted key path of a deserialization error, or `None` when it concerns the whole document.
///
/// serde_path_to_error already includes an unknown key itself in the path (it records each key
/// before asking the schema about it), so the path names what to delete, not just its table.
fn key_path(path: &serde_path_to_error::Path) -> Option<String> {
    let rendered = path.to_string();
    // The document root renders as ".".
    (rendered != ".").then_some(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const ORIGIN: &str = "config/broker.toml";

    fn parse_err(text: &str) -> ConfigError {
        match parse(text, Path::new(ORIGIN)) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("", Path::new(ORIGIN)).unwrap(), Config::default());
        assert_eq!(
            parse("# only a comment\n", Path::new(ORIGIN)).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn unknown_key_is_named_with_its_table_and_line() {
        let text = "[broker]\nname = \"a\"\n\n[[acceptors]]\nname = \"s\"\nbind = \"127.0.0.1:1\"\nbidn = 3\n";
        let err = parse_err(text);
        match &err {
            ConfigError::Parse { key, location, .. } => {
                assert_eq!(key.as_deref(), Some("acceptors[0].bidn"));
                assert_eq!(location.map(|l| l.line), Some(7));
            }
            other => panic!("unexpected {other:?}"),
        }
        let message = err.to_string();
        assert!(message.starts_with("config/broker.toml: acceptors[0].bidn: unknown field `bidn`"));
        assert!(message.ends_with("(line 7, column 1)"), "{message}");
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let message = parse_err("\n[jounral]\nsync = false\n").to_string();
        assert!(message.starts_with("config/broker.toml: jounral: unknown field `jounral`"));
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let text = "[[address-settings]]\nmatch = \"#\"\n\n[[address-settings]]\nmatch = \"a\"\nmax-size-bytes = \"big\"\n";
        let message = parse_err(text).to_string();
        assert_eq!(
            message,
            "config/broker.toml: address-settings[1].max-size-bytes: invalid type: string \"big\", expected i64 (line 6, column 18)"
        );
    }

    #[test]
    fn bad_socket_address_names_key_and_position() {
        let text = "[[acceptors]]\nname = \"s\"\nbind = \"localhost\"\n";
        assert_eq!(
            parse_err(text).to_string(),
            "config/broker.toml: acceptors[0].bind: invalid socket address syntax (line 3, column 8)"
        );
    }

    #[test]
    fn missing_required_key_names_its_table() {
        let message = parse_err("[[acceptors]]\nname = \"s\"\n").to_string();
        assert!(message.starts_with("config/broker.toml: acceptors[0]: missing field `bind`"));
    }

    #[test]
    fn unknown_enum_value_lists_the_allowed_ones() {
        let text = "[[acceptors]]\nname = \"s\"\nprotocol = \"tcp\"\nbind = \"127.0.0.1:1\"\n";
        let message = parse_err(text).to_string();
        assert!(message.contains("acceptors[0].protocol: unknown variant `tcp`"));
        assert!(message.contains("`stomp` or `websocket`"));
    }

    #[test]
    fn toml_syntax_error_names_file_and_position() {
        let err = parse_err("[journal\n");
        assert!(matches!(&err, ConfigError::Parse { key: None, .. }));
        let message = err.to_string();
        assert!(message.starts_with("config/broker.toml: "), "{message}");
        assert!(message.contains("line 1"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn validation_problems_are_refused_by_parse() {
        let err = parse_err("[journal]\nmax-batch = 0\n");
        assert_eq!(
            err.to_string(),
            "config/broker.toml: journal.max-batch: must be greater than 0"
        );
    }

    /// Found by the config fuzzer (fuzz/findings/config/): an absolute users-file that does
    /// not exist was reported under its own path, so the message named neither the
    /// configuration file nor the key that pointed there.
    #[test]
    fn an_unreadable_users_file_names_the_main_file_and_the_key() {
        for target in ["/nonexistent-wrenmq/users.toml", "/"] {
            let text = format!("[security]\nusers-file = \"{target}\"\n");
            let message = parse_err(&text).to_string();
            assert!(
                message.starts_with(&format!(
                    "config/broker.toml: security.users-file: cannot read {target}: "
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn missing_file_names_the_file_and_os_error() {
        let path = PathBuf::from("/nonexistent/wrenmq/broker.toml");
        let err = load(&path).unwrap_err();
        let ConfigError::Read { cause, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(cause.kind(), std::io::ErrorKind::NotFound);
        let message = err.to_string();
        assert!(
            message
                .starts_with("/nonexistent/wrenmq/broker.toml: cannot read configuration file: "),
            "{message}"
        );
        assert!(message.contains("No such file"), "{message}");
    }
}

/// The shipped example file is documentation; these tests keep it loadable and keep its stated
/// defaults equal to the built-in ones.
#[cfg(test)]
mod example_file {
    use super::*;
    use crate::config::{
        AcceptorProtocol, BrokerSection, JournalConfig, RoutingTypeConfig, default_acceptors,
        default_address_settings,
    };

    fn example() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/broker.toml");
        match load(&path) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn states_the_built_in_defaults() {
        let config = example();
        assert_eq!(config.broker, BrokerSection::default());
        assert_eq!(config.acceptors, default_acceptors());
        assert_eq!(config.address_settings, default_address_settings());
        assert_eq!(config.journal, JournalConfig::default());
        assert_eq!(config.security, crate::config::SecuritySection::default());
        assert_eq!(config.limits, crate::config::BrokerLimits::default());
        assert_eq!(
            config.security_settings,
            crate::config::default_security_settings()
        );
        assert!(config.users.is_empty());
    }

    #[test]
    fn declares_an_anycast_queue_and_a_multicast_address() {
        let config = example();
        let [orders, events] = config.addresses.as_slice() else {
            panic!("expected two addresses, got {:?}", config.addresses);
        };
        assert_eq!(orders.routing_types, [RoutingTypeConfig::Anycast]);
        assert_eq!(orders.queues.len(), 1);
        assert_eq!(orders.queues[0].routing_type, RoutingTypeConfig::Anycast);
        assert_eq!(events.routing_types, [RoutingTypeConfig::Multicast]);
    }

    #[test]
    fn commented_out_websocket_acceptor_is_valid_when_enabled() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/broker.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Uncomment the example block: the lines from its header to the next blank line.
        let mut enabled = String::new();
        let mut in_block = false;
        for line in text.lines() {
            if line == "# [[acceptors]]" {
                in_block = true;
            } else if line.is_empty() {
                in_block = false;
            }
            let line = if in_block {
                line.strip_prefix("# ").unwrap_or(line)
            } else {
                line
            };
            enabled.push_str(line);
            enabled.push('\n');
        }
        let config = parse(&enabled, &path).unwrap();
        assert_eq!(config.acceptors.len(), 2);
        let ws = &config.acceptors[1];
        assert_eq!(ws.protocol, AcceptorProtocol::Websocket);
        assert_eq!(ws.bind, "127.0.0.1:61614".parse().unwrap());
        // The documented ws-* values are the built-in defaults.
        let defaults = crate::config::AcceptorConfig::default_for(AcceptorProtocol::Websocket);
        assert_eq!(ws.ws_max_message_size(), defaults.ws_max_message_size());
        assert_eq!(ws.ws_binary_frames(), defaults.ws_binary_frames());
        assert_eq!(ws.ws_paths(), defaults.ws_paths());
        assert_eq!(config.validate(), Ok(()));
    }
}
