//! `wrenmq config check [FILE]`: the file parsed and validated offline, as the broker would
//! at start, listing every unknown key (not just the first) and the effective value of every
//! key, so an operator can see what a file means before starting or reloading with it.

use std::fmt::Write as _;
use std::path::Path;

use super::flatten::{flatten, shown};
use crate::config::{self, Config};

/// What `config check` prints, and whether the file is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Every key with its effective value (`key = value`, secrets redacted).
    pub stdout: String,
    /// The problems, each naming the file, the key and the reason.
    pub stderr: String,
    /// Whether the broker would start with the file.
    pub valid: bool,
}

/// At most this many unknown keys are listed; a file with more is not a configuration.
const MAX_UNKNOWN: usize = 100;

/// Checks the file at `path`, or the built-in defaults when `None`.
pub fn check(path: Option<&Path>) -> CheckOutcome {
    let mut out = CheckOutcome {
        stdout: String::new(),
        stderr: String::new(),
        valid: true,
    };
    let Some(path) = path else {
        out.stdout = effective(&Config::default());
        return out;
    };
    let text = std::fs::read_to_string(path).ok();
    let (unknown, cleaned) = text.as_deref().map(unknown_keys).unwrap_or_default();
    for key in &unknown {
        let _ = writeln!(out.stderr, "{}: {key}: unknown key", path.display());
    }
    match config::load(path) {
        Ok(config) => out.stdout = effective(&config),
        Err(e) => {
            out.valid = false;
            // With the unknown keys taken out the rest may be valid: show what it means.
            let rest = cleaned
                .filter(|_| !unknown.is_empty())
                .and_then(|t| config::parse(&t, path).ok());
            match rest {
                Some(config) => out.stdout = effective(&config),
                None => {
                    let _ = writeln!(out.stderr, "{e}");
                }
            }
        }
    }
    out
}

/// `key = value` lines of every key; unset optional keys say so.
fn effective(config: &Config) -> String {
    let mut text = String::new();
    for (key, value) in flatten(config, true) {
        let value = if value.is_null() {
            "(unset)".to_string()
        } else {
            shown(&key, &value).to_string()
        };
        let _ = writeln!(text, "{key} = {value}");
    }
    text
}

/// Every key of `text` the schema does not know, as dotted paths (`acceptors[0].bidn`),
/// and the text without them: the schema refuses the first one, so each is removed in turn
/// and the rest parsed again.
fn unknown_keys(text: &str) -> (Vec<String>, Option<String>) {
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return (Vec::new(), None);
    };
    let mut found = Vec::new();
    while found.len() < MAX_UNKNOWN {
        let value = toml::Value::Table(doc.clone());
        let Err(e) = serde_path_to_error::deserialize::<_, Config>(value) else {
            break;
        };
        if !e.inner().to_string().starts_with("unknown field") {
            break;
        }
        let segments: Vec<_> = e.path().iter().cloned().collect();
        if !remove(&mut doc, &segments) {
            break;
        }
        found.push(e.path().to_string());
    }
    (found, toml::to_string(&doc).ok())
}

/// Removes the key at `path` from `doc`; false when the path does not lead to one.
fn remove(doc: &mut toml::Table, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    match path {
        [Segment::Map { key }] => doc.remove(key).is_some(),
        [Segment::Map { key }, rest @ ..] => doc.get_mut(key).is_some_and(|v| remove_in(v, rest)),
        _ => false,
    }
}

fn remove_in(value: &mut toml::Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    match (value, path) {
        (toml::Value::Table(t), _) => remove(t, path),
        (toml::Value::Array(items), [Segment::Seq { index }, rest @ ..]) => {
            items.get_mut(*index).is_some_and(|v| remove_in(v, rest))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_is_listed() {
        let text = "[broker]\nnmae = \"x\"\n\n[[acceptors]]\nname = \"s\"\nbind = \"127.0.0.1:1\"\nbidn = 3\n\n[jounral]\nsync = false\n";
        let (unknown, rest) = unknown_keys(text);
        assert_eq!(unknown, ["acceptors[0].bidn", "broker.nmae", "jounral"]);
        let rest = rest.expect("the rest");
        assert!(
            !rest.contains("bidn") && rest.contains("127.0.0.1:1"),
            "{rest}"
        );
        assert!(unknown_keys("[broker]\nname = \"x\"\n").0.is_empty());
    }

    #[test]
    fn defaults_print_every_key() {
        let out = check(None);
        assert!(out.valid);
        assert!(
            out.stdout.contains("broker.log-level = \"info\"\n"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("security.allow-anonymous = (unset)\n"));
        assert!(
            out.stdout
                .contains("acceptors[stomp].bind = \"127.0.0.1:61613\"\n")
        );
    }
}
