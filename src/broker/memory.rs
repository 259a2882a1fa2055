//! How much memory the broker may fill with messages (`[broker] global-max-size`): by
//! default half of what the process may use, which is the cgroup's memory limit when it runs
//! in a container with one, else the machine's memory, as Artemis takes half of the JVM's.

/// Used when neither the cgroup nor `/proc/meminfo` says how much memory there is.
pub const FALLBACK_GLOBAL_MAX_SIZE: u64 = 1 << 30;

/// `global-max-size` in bytes: the configured value, or (for -1) half the memory available.
pub fn global_max_size(configured: i64) -> u64 {
    match u64::try_from(configured) {
        Ok(v) if v > 0 => v,
        _ => available_memory().map_or(FALLBACK_GLOBAL_MAX_SIZE, |m| m / 2),
    }
}

/// The memory this process may use: the smaller of its cgroup's limit and the machine's.
pub fn available_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let machine = read("/proc/meminfo").as_deref().and_then(meminfo_total);
    let cgroup = cgroup_limit(
        read("/sys/fs/cgroup/memory.max").as_deref(),
        read("/sys/fs/cgroup/memory/memory.limit_in_bytes").as_deref(),
    );
    match (cgroup, machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

/// The limit in a cgroup v2 `memory.max` ("max" = none) or a v1 `memory.limit_in_bytes`
/// (a huge number = none: v1 reports "no limit" as the largest page-aligned value).
fn cgroup_limit(v2: Option<&str>, v1: Option<&str>) -> Option<u64> {
    if let Some(v2) = v2 {
        return v2.trim().parse().ok();
    }
    v1.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v < (1 << 62))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_limits_of_both_versions() {
        assert_eq!(cgroup_limit(Some("max\n"), None), None);
        assert_eq!(cgroup_limit(Some("536870912\n"), None), Some(536_870_912));
        assert_eq!(cgroup_limit(None, Some("268435456\n")), Some(268_435_456));
        assert_eq!(cgroup_limit(None, Some("9223372036854771712\n")), None);
        assert_eq!(cgroup_limit(None, None), None);
    }

    #[test]
    fn meminfo_total_in_bytes() {
        let text = "MemTotal:       24567892 kB\nMemFree:         1234 kB\n";
        assert_eq!(meminfo_total(text), Some(24_567_892 * 1024));
        assert_eq!(meminfo_total("nothing"), None);
    }

    #[test]
    fn configured_value_wins_and_minus_one_is_half_of_what_there_is() {
        assert_eq!(global_max_size(4096), 4096);
        let auto = global_max_size(-1);
        match available_memory() {
            Some(m) => assert_eq!(auto, m / 2),
            None => assert_eq!(auto, FALLBACK_GLOBAL_MAX_SIZE),
        }
    }
}
