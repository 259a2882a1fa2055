//! Authorization by address pattern, as Artemis's `security-settings`: the most specific
//! entry matching an address decides every permission on it (entries are not merged).

use super::{Permission, Principal};
use crate::address::wildcard;
use crate::config::SecuritySettingEntry;

/// The compiled `[[security-settings]]`, most specific first.
#[derive(Debug, Clone, Default)]
pub struct SecurityPolicy {
    entries: Vec<PolicyEntry>,
}

#[derive(Debug, Clone)]
struct PolicyEntry {
    pattern: String,
    roles: [Vec<String>; 10],
}

impl SecurityPolicy {
    /// Compiles the configured entries. Among equally specific patterns the first listed wins.
    pub fn new(entries: &[SecuritySettingEntry]) -> SecurityPolicy {
        let mut compiled: Vec<PolicyEntry> = entries
            .iter()
            .map(|e| PolicyEntry {
                pattern: e.pattern.clone(),
                roles: [
                    e.send.clone(),
                    e.consume.clone(),
                    e.browse.clone(),
                    e.create_address.clone(),
                    e.delete_address.clone(),
                    e.create_durable_queue.clone(),
                    e.delete_durable_queue.clone(),
                    e.create_non_durable_queue.clone(),
                    e.delete_non_durable_queue.clone(),
                    e.manage.clone(),
                ],
            })
            .collect();
        // Stable: ties keep configuration order.
        compiled.sort_by_key(|e| std::cmp::Reverse(wildcard::specificity(&e.pattern)));
        SecurityPolicy { entries: compiled }
    }

    /// The pattern of the entry that decides for `address`, if any (for logs and tests).
    pub fn deciding_match(&self, address: &str) -> Option<&str> {
        self.entry_for(address).map(|e| e.pattern.as_str())
    }

    /// Whether `user` has `perm` on `address`. No matching entry means no permission.
    pub fn allowed(&self, user: &Principal, perm: Permission, address: &str) -> bool {
        self.allows_roles(&user.roles, perm, address)
    }

    /// Whether any of `roles` has `perm` on `address`; for callers that look a connection's
    /// roles up again (after a reload) instead of using those it logged in with.
    pub fn allows_roles(&self, roles: &[String], perm: Permission, address: &str) -> bool {
        self.entry_for(address).is_some_and(|e| {
            e.roles[perm.index()]
                .iter()
                .any(|granted| roles.iter().any(|r| r == granted))
        })
    }

    fn entry_for(&self, address: &str) -> Option<&PolicyEntry> {
        self.entries
            .iter()
            .find(|e| wildcard::matches(&e.pattern, address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pattern: &str, send: &[&str], consume: &[&str]) -> SecuritySettingEntry {
        SecuritySettingEntry {
            pattern: pattern.to_string(),
            send: send.iter().map(|s| s.to_string()).collect(),
            consume: consume.iter().map(|s| s.to_string()).collect(),
            ..SecuritySettingEntry::default()
        }
    }

    fn bob() -> Principal {
        Principal::user("bob", vec!["producer".into()])
    }

    #[test]
    fn most_specific_entry_decides_alone() {
        let p = SecurityPolicy::new(&[
            entry("#", &["producer"], &["producer"]),
            entry("orders.#", &[], &["producer"]),
            entry("orders.eu", &["producer"], &[]),
        ]);
        assert!(p.allowed(&bob(), Permission::Send, "news"));
        // orders.# wins over # and grants no send: no merging with the "#" entry.
        assert!(!p.allowed(&bob(), Permission::Send, "orders.us"));
        assert!(p.allowed(&bob(), Permission::Consume, "orders.us"));
        assert!(p.allowed(&bob(), Permission::Send, "orders.eu"));
        assert!(!p.allowed(&bob(), Permission::Consume, "orders.eu"));
        assert_eq!(p.deciding_match("orders"), Some("orders.#"));
    }

    #[test]
    fn no_match_means_no_permission() {
        let p = SecurityPolicy::new(&[entry("a.*", &["producer"], &[])]);
        assert!(p.allowed(&bob(), Permission::Send, "a.b"));
        assert!(!p.allowed(&bob(), Permission::Send, "a"));
        assert!(!p.allowed(&bob(), Permission::Send, "a.b.c"));
        assert!(!p.allowed(&bob(), Permission::Manage, "a.b"));
    }

    #[test]
    fn roles_must_intersect() {
        let p = SecurityPolicy::new(&[entry("#", &["admin"], &[])]);
        assert!(!p.allowed(&bob(), Permission::Send, "x"));
        let admin = Principal::user("alice", vec!["x".into(), "admin".into()]);
        assert!(p.allowed(&admin, Permission::Send, "x"));
    }
}
