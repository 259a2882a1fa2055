//! Validation of the queue-kind keys (Artemis's queue attributes): the same rules for a
//! configured queue's own keys and for the `default-*` keys of an address-settings entry,
//! each problem naming its dotted key in TOML spelling and the reason.

use super::{Config, ValidationError};

/// Most group buckets a queue may have: each is one binding, so this bounds the table.
pub const MAX_GROUP_BUCKETS: i64 = 1 << 20;

/// The queue-kind keys of one entry with the names they have there.
struct KindKeys<'a> {
    /// `""` for a queue's own keys, `"default-"` in address settings.
    prefix: &'static str,
    last_value: (&'static str, Option<bool>),
    last_value_key: Option<&'a str>,
    ring_size: Option<i64>,
    group_buckets: Option<i64>,
    non_destructive: Option<bool>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
}

/// Runs the queue-kind rules over every configured queue and address-settings entry.
pub(super) fn check_queue_kinds(config: &Config, errors: &mut Vec<ValidationError>) {
    for (i, a) in config.addresses.iter().enumerate() {
        for (j, q) in a.queues.iter().enumerate() {
            let keys = KindKeys {
                prefix: "",
                last_value: ("last-value", q.last_value),
                last_value_key: q.last_value_key.as_deref(),
                ring_size: q.ring_size,
                group_buckets: q.group_buckets,
                non_destructive: q.non_destructive,
                retention_ms: q.retention_ms,
                retention_bytes: q.retention_bytes,
            };
            check(&format!("addresses[{i}].queues[{j}]"), &keys, errors);
        }
    }
    for (i, e) in config.address_settings.iter().enumerate() {
        let keys = KindKeys {
            prefix: "default-",
            last_value: ("last-value-queue", e.default_last_value_queue),
            last_value_key: e.default_last_value_key.as_deref(),
            ring_size: e.default_ring_size,
            group_buckets: e.default_group_buckets,
            non_destructive: e.default_non_destructive,
            retention_ms: e.default_retention_ms,
            retention_bytes: e.default_retention_bytes,
        };
        check(&format!("address-settings[{i}]"), &keys, errors);
    }
}

fn check(key: &str, k: &KindKeys<'_>, errors: &mut Vec<ValidationError>) {
    let p = k.prefix;
    let mut bad = |name: &str, reason: String| {
        errors.push(ValidationError::new(format!("{key}.{p}{name}"), reason));
    };
    if let Some(n) = k.ring_size
        && (n == 0 || n < -1)
    {
        bad(
            "ring-size",
            format!("{n} is invalid; use -1 for no bound or a size >= 1"),
        );
    }
    if let Some(n) = k.group_buckets
        && !(-1..=MAX_GROUP_BUCKETS).contains(&n)
    {
        bad(
            "group-buckets",
            format!(
                "{n} is invalid; use -1 for one binding per group id, 0 to ignore groups, or 1 to {MAX_GROUP_BUCKETS} buckets"
            ),
        );
    }
    for (name, v) in [
        ("retention-ms", k.retention_ms),
        ("retention-bytes", k.retention_bytes),
    ] {
        if let Some(n) = v
            && (n == 0 || n < -1)
        {
            bad(
                name,
                format!("{n} is invalid; use -1 for no limit or a value >= 1"),
            );
        }
    }
    if k.last_value_key == Some("") {
        bad("last-value-key", "must name a header".to_string());
    }
    if k.non_destructive == Some(true) {
        // A stream keeps every message for every reader: replacing or dropping waiting
        // messages would change what a later reader replays.
        if k.last_value.1 == Some(true) {
            bad(
                k.last_value.0,
                format!(
                    "cannot be combined with {p}non-destructive: a retained stream keeps every message"
                ),
            );
        }
        if k.ring_size.is_some_and(|n| n > 0) {
            bad(
                "ring-size",
                format!(
                    "cannot be combined with {p}non-destructive: its retention-ms / retention-bytes bound it"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn problems(text: &str) -> String {
        match parse(text, std::path::Path::new("t.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    const QUEUE: &str = "[[addresses]]\nname = \"t\"\nrouting-types = [\"anycast\"]\n[[addresses.queues]]\nname = \"t\"\nrouting-type = \"anycast\"\n";

    #[test]
    fn queue_kind_keys_parse() {
        let text = format!(
            "{QUEUE}exclusive = true\nlast-value = true\nlast-value-key = \"sym\"\nring-size = 10\ngroup-rebalance = true\ngroup-buckets = 64\n"
        );
        let c = parse(&text, std::path::Path::new("t.toml")).unwrap();
        let q = &c.addresses[0].queues[0];
        assert_eq!(q.ring_size, Some(10));
        assert_eq!(q.last_value_key.as_deref(), Some("sym"));
        assert_eq!(q.group_buckets, Some(64));
    }

    #[test]
    fn bad_values_name_the_key_and_reason() {
        let p = problems(&format!("{QUEUE}ring-size = 0\n"));
        assert!(
            p.contains("addresses[0].queues[0].ring-size: 0 is invalid"),
            "{p}"
        );
        let p = problems(&format!("{QUEUE}group-buckets = -2\n"));
        assert!(
            p.contains("addresses[0].queues[0].group-buckets: -2 is invalid"),
            "{p}"
        );
        let p = problems(&format!("{QUEUE}last-value-key = \"\"\n"));
        assert!(p.contains("last-value-key: must name a header"), "{p}");
        let p = problems(&format!(
            "{QUEUE}non-destructive = true\nretention-ms = 0\n"
        ));
        assert!(p.contains("queues[0].retention-ms: 0 is invalid"), "{p}");
        let p = problems(&format!(
            "{QUEUE}non-destructive = true\nlast-value = true\n"
        ));
        assert!(
            p.contains("queues[0].last-value: cannot be combined with non-destructive"),
            "{p}"
        );
        let p = problems(
            "[[address-settings]]\nmatch = \"x.#\"\ndefault-ring-size = -5\ndefault-non-destructive = true\ndefault-last-value-queue = true\n",
        );
        assert!(
            p.contains("address-settings[0].default-ring-size: -5 is invalid"),
            "{p}"
        );
        assert!(p.contains("address-settings[0].default-last-value-queue: cannot be combined with default-non-destructive"), "{p}");
    }
}
