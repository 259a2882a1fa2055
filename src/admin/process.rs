//! The broker process's own figures from `/proc` (prometheus-client has no process
//! collector): resident memory, open file descriptors, CPU time.

/// What `/proc` says of this process; zeros where it cannot be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFigures {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
}

/// Reads the figures now.
pub fn read() -> ProcessFigures {
    let page = rustix::param::page_size() as u64;
    let rss_bytes = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page);
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    // Fields 14 and 15 of /proc/self/stat (after the parenthesised command name, which may
    // hold spaces) are user and system time in clock ticks; Linux reports them at 100 Hz.
    let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0);
    ProcessFigures {
        rss_bytes,
        open_fds,
        cpu_seconds,
    }
}
