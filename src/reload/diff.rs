//! Which keys changed between the running configuration and the file, and for each whether
//! it can change while the broker runs. Pure: the policy lives here, in one table, so the
//! answer for a key never depends on which trigger asked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::flatten::{KeyPath, Seg, flatten, shown};
use crate::config::Config;

/// A changed key that only a restart can apply.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestartOnly {
    /// The key, e.g. `acceptors[stomp].bind`.
    pub key: String,
    /// Its running value (`null`: unset or absent); secrets are redacted.
    pub old: Value,
    /// Its value in the file.
    pub new: Value,
    /// Why it cannot change live.
    pub reason: String,
}

/// A key-and-reason pair: a rejected key, or a removal that was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyReason {
    /// The key (or the file, when the problem is not about one key).
    pub key: String,
    /// What is wrong, or what was done instead.
    pub reason: String,
}

/// The changes from one configuration to another, sorted by what a reload does with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Keys (or whole entries: `users[bob]`, `addresses[orders]`) a reload applies live.
    pub live: Vec<String>,
    /// Keys that need a restart; any of them makes a reload reject everything.
    pub restart: Vec<RestartOnly>,
    /// Declared addresses, queues and routing types removed from the file: never deleted.
    pub kept: Vec<KeyReason>,
}

impl Diff {
    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty() && self.kept.is_empty()
    }

    /// Whether any key of the section `name` (`users`, `address-settings`, ...) changed live.
    pub fn touches(&self, name: &str) -> bool {
        self.live.iter().any(|k| {
            k == name || k.starts_with(&format!("{name}.")) || k.starts_with(&format!("{name}["))
        })
    }
}

/// What a reload does with one changed key.
enum Verdict {
    /// Applied live; reported under this key (an entry's key when the whole entry counts).
    Live(KeyPath),
    /// Needs a restart.
    Restart(&'static str),
    /// A removal that is reported and not carried out; reported under this key.
    Kept(KeyPath, &'static str),
}

const NOT_DELETED: &str = "removing a declared address or queue from the file does not delete it (nor its messages); delete it through the admin API";

/// Compares `old` (running) with `new` (the file) key by key.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let before = flatten(old, false);
    let after = flatten(new, false);
    let keys: BTreeSet<&KeyPath> = before.keys().chain(after.keys()).collect();
    let mut out = Diff::default();
    let mut live = BTreeSet::new();
    let mut kept = BTreeMap::new();
    for key in keys {
        let (a, b) = (before.get(key), after.get(key));
        if a == b {
            continue;
        }
        match classify(key, &before, &after, a, b) {
            Verdict::Live(at) => {
                live.insert(at.to_string());
            }
            Verdict::Kept(at, reason) => {
                kept.insert(at.to_string(), reason);
            }
            Verdict::Restart(reason) => out.restart.push(RestartOnly {
                key: key.to_string(),
                old: a.map_or(Value::Null, |v| shown(key, v)),
                new: b.map_or(Value::Null, |v| shown(key, v)),
                reason: reason.to_string(),
            }),
        }
    }
    out.live = live.into_iter().collect();
    out.kept = kept
        .into_iter()
        .map(|(key, reason)| KeyReason {
            key,
            reason: reason.to_string(),
        })
        .collect();
    out
}

fn field(seg: Option<&Seg>) -> Option<&str> {
    match seg {
        Some(Seg::Field(k)) => Some(k),
        _ => None,
    }
}

/// Whether any key of `map` lies under `entry`.
fn has_entry(map: &BTreeMap<KeyPath, Value>, entry: &KeyPath) -> bool {
    map.range(entry.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(entry))
}

/// The policy, key by key. Anything not named here needs a restart: a key added later is
/// never applied half-way by accident.
fn classify(
    key: &KeyPath,
    before: &BTreeMap<KeyPath, Value>,
    after: &BTreeMap<KeyPath, Value>,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Verdict {
    let path = &key.0;
    let section = field(path.first()).unwrap_or("");
    let second = field(path.get(1));
    match (section, second) {
        ("broker", Some("log-level")) => Verdict::Live(key.clone()),
        ("broker", _) => Verdict::Restart(
            "read once at start-up (the broker's name, memory and disk limits, expiry scan, large-message threshold, the file watcher)",
        ),
        ("acceptors", _) => Verdict::Restart(
            "listeners are bound at start-up: an acceptor's bind, protocol, TLS material, limits and prefixes need a restart",
        ),
        ("journal", _) => Verdict::Restart(
            "the journal (its directory, whether it is on, its durability mode and batching) is opened at start-up",
        ),
        ("limits", _) => Verdict::Restart("the broker-wide connection limits are set at start-up"),
        ("security", Some("anonymous-roles" | "users-file")) => Verdict::Live(key.clone()),
        ("security", Some("allow-anonymous")) => Verdict::Restart(
            "whether an acceptor takes anonymous logins is decided when it is bound",
        ),
        ("security", _) => Verdict::Restart("the login throttle is built at start-up"),
        ("users" | "security-settings", _) => Verdict::Live(key.prefix(2)),
        ("address-settings", _) => match field(path.get(2)) {
            Some("max-size-messages") => Verdict::Restart(
                "an address counts its messages only when it had a message limit at start-up",
            ),
            Some("page-size-bytes") => Verdict::Restart(
                "a paging queue's read-back size is fixed when the queue is created",
            ),
            Some("id-cache-size") => {
                Verdict::Restart("an address's duplicate-id cache is sized when it is created")
            }
            Some("match") | None => Verdict::Live(key.prefix(2)),
            Some(_) => Verdict::Live(key.clone()),
        },
        ("addresses", _) => classify_address(key, before, after, old, new),
        ("admin", _) => Verdict::Restart(
            "the admin listener (its bind, roles, tokens and sampling) is set up at start-up",
        ),
        _ => Verdict::Restart("this key cannot change while the broker runs"),
    }
}

/// Declared addresses and queues: new ones are added, removed ones kept, and a changed queue
/// needs a restart (its attributes are fixed when it is created).
fn classify_address(
    key: &KeyPath,
    before: &BTreeMap<KeyPath, Value>,
    after: &BTreeMap<KeyPath, Value>,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Verdict {
    let address = key.prefix(2);
    if !has_entry(before, &address) {
        return Verdict::Live(address);
    }
    if !has_entry(after, &address) {
        return Verdict::Kept(address, NOT_DELETED);
    }
    match field(key.0.get(2)) {
        Some("routing-types") => {
            let types = |v: Option<&Value>| -> Vec<Value> {
                v.and_then(Value::as_array).cloned().unwrap_or_default()
            };
            let (old, new) = (types(old), types(new));
            if old.iter().all(|t| new.contains(t)) {
                Verdict::Live(key.clone())
            } else {
                Verdict::Kept(
                    key.clone(),
                    "a routing type removed from the file is not removed from the address",
                )
            }
        }
        Some("queues") => {
            let queue = key.prefix(4);
            if !has_entry(before, &queue) {
                Verdict::Live(queue)
            } else if !has_entry(after, &queue) {
                Verdict::Kept(queue, NOT_DELETED)
            } else {
                Verdict::Restart(
                    "a queue's attributes (routing type, durability, filter, kind) are fixed when it is created",
                )
            }
        }
        _ => Verdict::Restart("this key cannot change while the broker runs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AddressConfig, QueueConfig, RoutingTypeConfig, UserConfig};

    fn with(f: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default();
        f(&mut c);
        c
    }

    #[test]
    fn nothing_changed_is_an_empty_diff() {
        assert!(diff(&Config::default(), &Config::default()).is_empty());
    }

    #[test]
    fn address_settings_and_log_level_are_live() {
        let new = with(|c| {
            c.address_settings[0].max_delivery_attempts = Some(2);
            c.address_settings[0].dead_letter_address = Some("DEAD".into());
            c.broker.log_level = "debug".into();
        });
        let d = diff(&Config::default(), &new);
        assert_eq!(
            d.live,
            [
                "address-settings[#].dead-letter-address",
                "address-settings[#].max-delivery-attempts",
                "broker.log-level"
            ]
        );
        assert!(d.restart.is_empty() && d.kept.is_empty());
        assert!(d.touches("address-settings") && !d.touches("users"));
    }

    #[test]
    fn a_changed_bind_needs_a_restart_with_old_and_new() {
        let new = with(|c| c.acceptors[0].bind = "127.0.0.1:7000".parse().unwrap());
        let d = diff(&Config::default(), &new);
        assert_eq!(d.restart.len(), 1);
        let r = &d.restart[0];
        assert_eq!(r.key, "acceptors[stomp].bind");
        assert_eq!(r.old, Value::from("127.0.0.1:61613"));
        assert_eq!(r.new, Value::from("127.0.0.1:7000"));
        assert!(d.live.is_empty());
    }

    #[test]
    fn journal_sync_limits_and_new_address_setting_keys_that_cannot_change() {
        let new = with(|c| {
            c.journal.sync = false;
            c.limits.max_connections = 5;
            c.address_settings[0].page_size_bytes = Some(4096);
            c.security.allow_anonymous = Some(false);
        });
        let keys: Vec<String> = diff(&Config::default(), &new)
            .restart
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(
            keys,
            [
                "address-settings[#].page-size-bytes",
                "journal.sync",
                "limits.max-connections",
                "security.allow-anonymous"
            ]
        );
    }

    #[test]
    fn users_are_reported_per_user_and_a_changed_hash_is_seen_but_not_shown() {
        let user = |hash: &str| UserConfig {
            name: "bob".into(),
            password_hash: Some(hash.into()),
            roles: vec!["r".into()],
        };
        let old = with(|c| c.users.push(user("$argon2id$a")));
        let new = with(|c| c.users.push(user("$argon2id$b")));
        let d = diff(&old, &new);
        assert_eq!(d.live, ["users[bob]"]);
        let added = diff(&Config::default(), &new);
        assert_eq!(added.live, ["users[bob]"]);
    }

    #[test]
    fn declared_addresses_are_added_and_never_removed() {
        let address = |queues: Vec<&str>| AddressConfig {
            name: "orders".into(),
            routing_types: vec![RoutingTypeConfig::Anycast],
            queues: queues
                .into_iter()
                .map(|q| QueueConfig {
                    name: q.into(),
                    routing_type: RoutingTypeConfig::Anycast,
                    durable: true,
                    ..QueueConfig::default()
                })
                .collect(),
        };
        let none = Config::default();
        let one = with(|c| c.addresses.push(address(vec!["a"])));
        let two = with(|c| c.addresses.push(address(vec!["a", "b"])));
        assert_eq!(diff(&none, &one).live, ["addresses[orders]"]);
        assert_eq!(diff(&one, &two).live, ["addresses[orders].queues[b]"]);
        let removed = diff(&two, &one);
        assert!(removed.live.is_empty() && removed.restart.is_empty());
        assert_eq!(removed.kept[0].key, "addresses[orders].queues[b]");
        assert_eq!(diff(&one, &none).kept[0].key, "addresses[orders]");
        let filtered = with(|c| {
            let mut a = address(vec!["a"]);
            a.queues[0].filter = Some("x = 1".into());
            c.addresses.push(a);
        });
        let changed = diff(&one, &filtered);
        assert_eq!(changed.restart[0].key, "addresses[orders].queues[a].filter");
    }

    #[test]
    fn an_added_routing_type_is_live_a_removed_one_kept() {
        let a = |types: Vec<RoutingTypeConfig>| {
            with(|c| {
                c.addresses.push(AddressConfig {
                    name: "x".into(),
                    routing_types: types,
                    queues: vec![],
                })
            })
        };
        let any = a(vec![RoutingTypeConfig::Anycast]);
        let both = a(vec![
            RoutingTypeConfig::Anycast,
            RoutingTypeConfig::Multicast,
        ]);
        assert_eq!(diff(&any, &both).live, ["addresses[x].routing-types"]);
        assert_eq!(diff(&both, &any).kept[0].key, "addresses[x].routing-types");
    }
}
