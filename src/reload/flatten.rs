//! A configuration as a flat map from key paths to values, so that two versions can be
//! compared key by key and every effective value printed. Arrays of tables are keyed by each
//! element's `name` (or `match`), not its position: inserting an acceptor or an address
//! setting in the middle of the file changes only what was inserted.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::config::Config;

/// One step of a key path: a table key, or an element of an array of tables by its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// `.key`
    Field(String),
    /// `[id]`: the element's `name` or `match`, else its position.
    Item(String),
}

/// A key path, e.g. `address-settings[#].max-delivery-attempts`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The first `n` steps.
    pub fn prefix(&self, n: usize) -> KeyPath {
        KeyPath(self.0[..n.min(self.0.len())].to_vec())
    }

    /// Whether `self` starts with `other`.
    pub fn starts_with(&self, other: &KeyPath) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Field(k) if i == 0 => write!(f, "{k}")?,
                Seg::Field(k) => write!(f, ".{k}")?,
                Seg::Item(id) => write!(f, "[{id}]")?,
            }
        }
        Ok(())
    }
}

/// Every key of `config` with its effective value (secrets included: show values through
/// [`shown`]). Unset optional keys appear as `null` when `with_unset`, else not at all (so
/// "unset" and "absent" compare equal).
pub fn flatten(config: &Config, with_unset: bool) -> BTreeMap<KeyPath, Value> {
    let mut out = BTreeMap::new();
    // Serializing plain data (strings, numbers, paths, addresses) cannot fail; an empty map
    // would only make every key look removed, which the caller reports.
    if let Ok(value) = serde_json::to_value(config) {
        walk(&value, &mut Vec::new(), with_unset, &mut out);
    }
    out
}

fn walk(value: &Value, path: &mut Vec<Seg>, with_unset: bool, out: &mut BTreeMap<KeyPath, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Seg::Field(k.clone()));
                walk(v, path, with_unset, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut seen = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = ["name", "match"]
                    .iter()
                    .find_map(|k| item.get(*k).and_then(Value::as_str))
                    .map(str::to_string)
                    .filter(|id| !seen.contains(id))
                    .unwrap_or_else(|| format!("#{i}"));
                seen.push(id.clone());
                path.push(Seg::Item(id));
                walk(item, path, with_unset, out);
                path.pop();
            }
        }
        // Without `with_unset`, "no entries" and "absent" compare equal, as unset and null do.
        Value::Array(items) if items.is_empty() && !with_unset => {}
        Value::Null if !with_unset => {}
        leaf => {
            out.insert(KeyPath(path.clone()), leaf.clone());
        }
    }
}

/// Whether the key holds a secret (a password hash, a token): its value is never shown in a
/// report, a view or `config check`, only that it is set or changed.
/// Any key on the path counts (`admin.tokens[ci].digest`, `tokens = [..]`): redacting one
/// harmless key too many is better than showing one secret.
pub fn is_secret(path: &[Seg]) -> bool {
    path.iter().any(|seg| {
        matches!(seg, Seg::Field(k)
            if k.contains("password") || k.contains("token") || k.contains("secret") || k.ends_with("-hash"))
    })
}

fn redact(path: &[Seg], value: &Value) -> Value {
    if is_secret(path) && !value.is_null() {
        // A digest of the value would let a reader test guesses offline; a changed secret is
        // still seen as changed because comparisons use the real value.
        Value::String("<redacted>".to_string())
    } else {
        value.clone()
    }
}

/// `value` of `key` as it may be shown: `"<redacted>"` for a secret.
pub fn shown(key: &KeyPath, value: &Value) -> Value {
    redact(&key.0, value)
}

/// `config` as JSON with every secret replaced by `"<redacted>"` (for the admin API's view).
pub fn redacted_json(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    redact_in_place(&mut value, &mut Vec::new());
    value
}

fn redact_in_place(value: &mut Value, path: &mut Vec<Seg>) {
    if is_secret(path) && !value.is_null() {
        *value = Value::String("<redacted>".to_string());
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(Seg::Field(k.clone()));
                redact_in_place(v, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                path.push(Seg::Item(String::new()));
                redact_in_place(item, path);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserConfig;

    #[test]
    fn arrays_of_tables_are_keyed_by_name_or_match() {
        let keys = flatten(&Config::default(), false);
        let names: Vec<String> = keys.keys().map(ToString::to_string).collect();
        assert!(
            names.contains(&"acceptors[stomp].bind".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"address-settings[#].max-delivery-attempts".to_string()));
        assert!(names.contains(&"broker.log-level".to_string()));
        assert!(!names.iter().any(|n| n == "security.allow-anonymous"));
        let with_unset = flatten(&Config::default(), true);
        assert_eq!(
            with_unset.get(&KeyPath(vec![
                Seg::Field("security".into()),
                Seg::Field("allow-anonymous".into())
            ])),
            Some(&Value::Null)
        );
    }

    #[test]
    fn password_hashes_are_redacted() {
        let mut config = Config::default();
        config.users.push(UserConfig {
            name: "bob".into(),
            password_hash: Some("$argon2id$v=19$secret".into()),
            roles: vec![],
        });
        let flat = flatten(&config, false);
        let hash = KeyPath(vec![
            Seg::Field("users".into()),
            Seg::Item("bob".into()),
            Seg::Field("password-hash".into()),
        ]);
        assert_eq!(
            shown(&hash, &flat[&hash]),
            Value::String("<redacted>".into())
        );
        let json = redacted_json(&config).to_string();
        assert!(!json.contains("argon2"), "{json}");
        assert!(json.contains("<redacted>"), "{json}");
        // A list of secrets, or a table under a secret key, is redacted whole.
        let tokens = KeyPath(vec![
            Seg::Field("admin".into()),
            Seg::Field("tokens".into()),
        ]);
        assert_eq!(
            shown(&tokens, &serde_json::json!(["ab12"])),
            Value::String("<redacted>".into())
        );
    }
}
