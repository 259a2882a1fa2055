//! Figures of the journal's group commits for operators: how many, how long each took, how
//! many operations each carried. The writer thread records one sample per commit (never per
//! message) into fixed buckets of atomics; a scrape reads them without stopping the writer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the commit-time buckets.
pub const COMMIT_SECONDS_BOUNDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Upper bounds of the operations-per-commit buckets.
pub const COMMIT_OPS_BOUNDS: [f64; 8] = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0];

/// A histogram with fixed buckets, one atomic per bucket (plus the sum and count).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Per bucket (not cumulative); the last extra slot is above every bound.
    counts: [AtomicU64; N],
    above: AtomicU64,
    /// Sum of the observed values, in millionths (µs for seconds).
    sum_micros: AtomicU64,
}

/// A histogram read once.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramFigures {
    /// (upper bound, observations in this bucket alone), ascending, ending with +Inf; the
    /// exposition encoder (prometheus-client) makes them cumulative.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Observations.
    pub count: u64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64; N]) -> Self {
        Histogram {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            above: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        match self.bounds.iter().position(|b| v <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.above.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_micros
            .fetch_add((v * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    /// Reads it.
    pub fn figures(&self) -> HistogramFigures {
        let mut buckets = Vec::with_capacity(N + 1);
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            buckets.push((*b, c.load(Ordering::Relaxed)));
        }
        buckets.push((f64::INFINITY, self.above.load(Ordering::Relaxed)));
        let total = buckets.iter().map(|(_, c)| c).sum();
        HistogramFigures {
            buckets,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: total,
        }
    }
}

/// The journal's figures.
#[derive(Debug)]
pub struct JournalStats {
    /// Seconds each group commit took (apply plus fsync).
    pub commit_seconds: Histogram<12>,
    /// Operations each group commit carried.
    pub commit_ops: Histogram<8>,
    /// Group commits that failed.
    pub failures: AtomicU64,
}

impl Default for JournalStats {
    fn default() -> Self {
        JournalStats {
            commit_seconds: Histogram::new(&COMMIT_SECONDS_BOUNDS),
            commit_ops: Histogram::new(&COMMIT_OPS_BOUNDS),
            failures: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_observation_lands_in_one_bucket() {
        let h = Histogram::new(&COMMIT_OPS_BOUNDS);
        for v in [1.0, 3.0, 3.0, 100.0, 1e9] {
            h.observe(v);
        }
        let f = h.figures();
        assert_eq!(f.count, 5);
        assert_eq!(f.buckets[0], (1.0, 1));
        assert_eq!(f.buckets[1], (4.0, 2));
        assert_eq!(f.buckets[4], (256.0, 1));
        assert_eq!(f.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((f.sum - (107.0 + 1e9)).abs() < 1.0);
    }
}
