//! Validation of the security part of the configuration: users, their password hashes,
//! security-settings patterns, TLS tables and limits. Like the other rules, each problem
//! names its dotted key and the reason.

use super::validate::check_pattern;
use super::{
    AcceptorConfig, BrokerLimits, Config, SecuritySection, SecuritySettingEntry, UserConfig,
    ValidationError,
};
use std::collections::HashMap;

/// Runs every security rule over `config`, appending problems to `errors`.
pub(super) fn check_security(config: &Config, errors: &mut Vec<ValidationError>) {
    check_users(&config.users, errors);
    check_section(&config.security, errors);
    check_security_settings(&config.security_settings, errors);
    check_limits(&config.limits, errors);
    for (i, acceptor) in config.acceptors.iter().enumerate() {
        check_acceptor(&format!("acceptors[{i}]"), acceptor, errors);
    }
}

pub(super) fn check_users(users: &[UserConfig], errors: &mut Vec<ValidationError>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        let key = format!("users[{i}]");
        if user.name.is_empty() {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                "must not be empty",
            ));
        } else if let Some(&first) = names.get(user.name.as_str()) {
            errors.push(ValidationError::new(
                format!("{key}.name"),
                format!(
                    "user \"{}\" is already declared by users[{first}]",
                    user.name
                ),
            ));
        } else {
            names.insert(&user.name, i);
        }
        if let Some(hash) = &user.password_hash
            && let Err(reason) = super::check_phc(hash)
        {
            errors.push(ValidationError::new(format!("{key}.password-hash"), reason));
        }
        for (r, role) in user.roles.iter().enumerate() {
            if role.is_empty() {
                errors.push(ValidationError::new(
                    format!("{key}.roles[{r}]"),
                    "must not be empty",
                ));
            }
        }
    }
}

fn check_section(section: &SecuritySection, errors: &mut Vec<ValidationError>) {
    if section.login_failure_max_delay_ms < section.login_failure_delay_ms {
        errors.push(ValidationError::new(
            "security.login-failure-max-delay-ms",
            format!(
                "{} is less than login-failure-delay-ms ({})",
                section.login_failure_max_delay_ms, section.login_failure_delay_ms
            ),
        ));
    }
    if section.login_failure_limit == 0 {
        errors.push(ValidationError::new(
            "security.login-failure-limit",
            "must be greater than 0 (the failed logins an IP may have before it is refused)",
        ));
    }
    if section
        .users_file
        .as_ref()
        .is_some_and(|f| f.as_os_str().is_empty())
    {
        errors.push(ValidationError::new(
            "security.users-file",
            "must not be empty; remove the key to keep users in this file",
        ));
    }
}

fn check_security_settings(entries: &[SecuritySettingEntry], errors: &mut Vec<ValidationError>) {
    let mut patterns: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("security-settings[{i}].match");
        if let Err(reason) = check_pattern(&entry.pattern) {
            errors.push(ValidationError::new(key, reason));
        } else if let Some(&first) = patterns.get(entry.pattern.as_str()) {
            errors.push(ValidationError::new(
                key,
                format!(
                    "pattern \"{}\" is already used by security-settings[{first}]",
                    entry.pattern
                ),
            ));
        } else {
            patterns.insert(&entry.pattern, i);
        }
    }
}

fn check_limits(limits: &BrokerLimits, errors: &mut Vec<ValidationError>) {
    for (name, value) in [
        ("max-connections", limits.max_connections as u64),
        (
            "max-connections-per-ip",
            // Unset means no per-IP limit; only an explicit 0 is wrong.
            limits.max_connections_per_ip.map_or(u64::MAX, |n| n as u64),
        ),
        (
            "max-subscriptions-per-connection",
            limits.max_subscriptions_per_connection as u64,
        ),
        (
            "max-transactions-per-connection",
            limits.max_transactions_per_connection as u64,
        ),
        (
            "max-messages-per-transaction",
            limits.max_messages_per_transaction as u64,
        ),
        ("max-transaction-bytes", limits.max_transaction_bytes),
        (
            "max-unacked-per-connection",
            u64::from(limits.max_unacked_per_connection),
        ),
        ("handshake-timeout-ms", limits.handshake_timeout_ms),
        ("max-address-words", limits.max_address_words as u64),
    ] {
        if value == 0 {
            errors.push(ValidationError::new(
                format!("limits.{name}"),
                "must be greater than 0",
            ));
        }
    }
}

fn check_acceptor(key: &str, acceptor: &AcceptorConfig, errors: &mut Vec<ValidationError>) {
    if acceptor.limits.max_connections == Some(0) {
        errors.push(ValidationError::new(
            format!("{key}.limits.max-connections"),
            "must be greater than 0; remove the key for no per-acceptor limit",
        ));
    }
    if acceptor.limits.handshake_timeout_ms == Some(0) {
        errors.push(ValidationError::new(
            format!("{key}.limits.handshake-timeout-ms"),
            "must be greater than 0",
        ));
    }
    let Some(tls) = &acceptor.tls else {
        return;
    };
    for (name, path) in [("cert", Some(&tls.cert)), ("key", Some(&tls.key))]
        .into_iter()
        .chain([("client-ca", tls.client_ca.as_ref())])
    {
        if path.is_some_and(|p| p.as_os_str().is_empty()) {
            errors.push(ValidationError::new(
                format!("{key}.tls.{name}"),
                "must not be empty",
            ));
        }
    }
    if tls.client_auth.is_some() && tls.client_ca.is_none() {
        errors.push(ValidationError::new(
            format!("{key}.tls.client-auth"),
            "needs client-ca: the CA certificates that sign accepted client certificates",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, load, parse};
    use std::path::Path;

    fn private(path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let _ = path;
    }

    #[cfg(unix)]
    #[test]
    fn a_users_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("broker.toml");
        std::fs::write(&main, "[security]\nusers-file = \"users.toml\"\n").unwrap();
        let users = dir.path().join("users.toml");
        std::fs::write(&users, "").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&users, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load(&main).unwrap_err().to_string();
            assert!(err.contains("security.users-file"), "{err}");
            assert!(err.contains(&format!("has mode {mode:04o}")), "{err}");
            assert!(
                err.contains(&format!("chmod 600 {}", users.display())),
                "{err}"
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&users, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(load(&main).is_ok(), "{mode:o}");
        }
    }

    fn message(text: &str) -> String {
        match parse(text, Path::new("b.toml")) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_passwords_and_duplicate_users_are_refused_by_key() {
        let m = message(
            "[[users]]\nname = \"a\"\npassword-hash = \"hunter2\"\n\n[[users]]\nname = \"a\"\n",
        );
        assert!(
            m.contains("users[0].password-hash: is not a PHC string"),
            "{m}"
        );
        assert!(
            m.contains("users[1].name: user \"a\" is already declared"),
            "{m}"
        );
    }

    #[test]
    fn security_settings_tls_and_limits_are_checked() {
        let m = message(
            "[limits]\nmax-connections = 0\nmax-address-words = 0\n\n[[security-settings]]\nmatch = \"a#\"\n\n[[acceptors]]\nname = \"s\"\nbind = \"127.0.0.1:1\"\n[acceptors.tls]\ncert = \"c\"\nkey = \"k\"\nclient-auth = \"required\"\n",
        );
        assert!(
            m.contains("limits.max-connections: must be greater than 0"),
            "{m}"
        );
        assert!(
            m.contains("limits.max-address-words: must be greater than 0"),
            "{m}"
        );
        assert!(m.contains("security-settings[0].match: "), "{m}");
        assert!(
            m.contains("acceptors[0].tls.client-auth: needs client-ca"),
            "{m}"
        );
        let m = message("[[security-settings]]\nmatch = \"#\"\nsend = [\"a\"]\nsned = []\n");
        assert!(
            m.contains("security-settings[0].sned: unknown field"),
            "{m}"
        );
    }

    #[test]
    fn users_file_errors_name_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("broker.toml");
        std::fs::write(&main, "[security]\nusers-file = \"users.toml\"\n").unwrap();
        let users = dir.path().join("users.toml");
        std::fs::write(
            &users,
            "[[users]]\nname = \"x\"\npassword-hash = \"plain\"\n",
        )
        .unwrap();
        private(&users);
        let err = load(&main).unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { path, .. } if path.ends_with("users.toml")));
        assert!(err.to_string().contains("users[0].password-hash"), "{err}");
        // A real Argon2id hash (of a random secret): config cannot call security's hasher.
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$YWrQMF18aAB91ffUCeOiJQ$RHO3ljNfMAEQJ6FT3WmkH8imCC8Pb2oVemLony35CKY";
        std::fs::write(
            dir.path().join("users.toml"),
            format!("[[users]]\nname = \"x\"\npassword-hash = \"{hash}\"\nroles = [\"r\"]\n"),
        )
        .unwrap();
        let config = load(&main).unwrap();
        assert_eq!(config.users[0].roles, ["r"]);
    }
}
