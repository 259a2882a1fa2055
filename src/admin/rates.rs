//! Rates from counters: every `sample-interval-secs` a ticker copies each queue's and the
//! broker's counters into a fixed ring of `samples` entries; a rate is the difference of two
//! samples over their time apart. Memory is objects × counters × samples, and a queue that
//! goes is forgotten at the next tick. Nothing on the message path is touched: the counters
//! are the ones the core keeps anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::AdminContext;

/// Counters sampled per object: in (enqueued / received), out (delivered), ack.
type Sample = (Instant, [u64; 3]);

/// Rates per second of one object.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RateSet {
    /// Messages in per second.
    pub r#in: f64,
    /// Deliveries per second.
    pub out: f64,
    /// Acknowledgements per second.
    pub ack: f64,
}

/// The sampled history of every queue and of the broker.
#[derive(Debug)]
pub struct Rates {
    samples: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    broker: VecDeque<Sample>,
    queues: HashMap<Arc<str>, VecDeque<Sample>>,
}

fn push(ring: &mut VecDeque<Sample>, s: Sample, max: usize) {
    if ring.len() >= max {
        ring.pop_front();
    }
    ring.push_back(s);
}

/// The rate between the newest sample and the one `back` samples before it (or the oldest).
fn rate(ring: &VecDeque<Sample>, back: usize) -> RateSet {
    let (Some(new), Some(old)) = (ring.back(), ring.get(ring.len().saturating_sub(back + 1)))
    else {
        return RateSet::default();
    };
    let secs = new.0.duration_since(old.0).as_secs_f64();
    if secs <= 0.0 {
        return RateSet::default();
    }
    let d = |i: usize| new.1[i].saturating_sub(old.1[i]) as f64 / secs;
    RateSet {
        r#in: d(0),
        out: d(1),
        ack: d(2),
    }
}

impl Rates {
    /// An empty history keeping `samples` per object.
    pub fn new(samples: usize) -> Rates {
        Rates {
            samples: samples.max(2),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The broker's rates over the last interval and over about `window` samples.
    pub fn broker(&self, window: usize) -> (RateSet, RateSet) {
        let inner = self.lock();
        (rate(&inner.broker, 1), rate(&inner.broker, window))
    }

    /// A queue's rates over the last interval.
    pub fn queue(&self, name: &str) -> RateSet {
        self.lock()
            .queues
            .get(name)
            .map_or_else(RateSet::default, |r| rate(r, 1))
    }

    /// A queue's sampled history: (seconds ago, in, out, ack) per interval.
    pub fn queue_history(&self, name: &str) -> Vec<(f64, RateSet)> {
        let inner = self.lock();
        let Some(ring) = inner.queues.get(name) else {
            return Vec::new();
        };
        let now = Instant::now();
        (1..ring.len())
            .map(|i| {
                let pair: VecDeque<Sample> = [ring[i - 1], ring[i]].into();
                (now.duration_since(ring[i].0).as_secs_f64(), rate(&pair, 1))
            })
            .collect()
    }

    /// Takes one sample of every object.
    pub fn sample(&self, ctx: &AdminContext) {
        let now = Instant::now();
        let s = ctx.broker.stats();
        let broker = [s.received.get(), s.delivered.get(), s.acknowledged.get()];
        let queues = ctx.broker.queues();
        let mut inner = self.lock();
        push(&mut inner.broker, (now, broker), self.samples);
        let mut seen = HashMap::with_capacity(queues.len());
        for q in queues {
            let f = q.stats.snapshot();
            let ring = inner.queues.remove(&q.name).unwrap_or_default();
            seen.insert(Arc::clone(&q.name), ring);
            if let Some(ring) = seen.get_mut(&q.name) {
                push(
                    ring,
                    (now, [f.enqueued, f.delivered, f.acknowledged]),
                    self.samples,
                );
            }
        }
        // Queues gone since the last sample are forgotten with their history.
        inner.queues = seen;
    }
}

/// Runs the ticker.
pub fn spawn_sampler(ctx: Arc<AdminContext>) -> JoinHandle<()> {
    let every = Duration::from_secs(ctx.config.sample_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            ctx.rates.sample(&ctx);
        }
    })
}
