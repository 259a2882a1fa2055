//! The clock with many scheduled messages on one queue: a handful of alarms, not one per
//! message, whatever order the due times arrive in, and every message released once, in due
//! order, never early.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::{Clock, ClockOwner};
use crate::broker::message::{Message, now_millis};
use crate::broker::queue::{ConsumerSpec, Delivery, DeliverySink, Queue, QueueSpec, Window};

const MESSAGES: u64 = 10_000;

/// Nothing expires in these tests; the clock only needs someone to ask.
struct NoOwner;

impl ClockOwner for NoOwner {
    fn expired(&self, _: &Arc<Queue>, _: u64) {}
    fn scan_expired(&self, _: u64) {}
}

/// Deliveries with the time they were handed over.
#[derive(Default)]
struct Record(Mutex<Vec<(u64, Arc<Message>)>>);

impl DeliverySink for Record {
    fn deliver(&self, d: Delivery) -> bool {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.push((now_millis(), d.message));
        true
    }
}

fn queue(clock: &Clock) -> Arc<Queue> {
    Queue::new(QueueSpec {
        clock: Some(clock.clone()),
        ..QueueSpec::for_test("sched", Default::default())
    })
}

fn message(id: u64, deliver_at: u64) -> Arc<Message> {
    Arc::new(Message {
        id,
        address: "sched".into(),
        destination: "sched".into(),
        properties: vec![],
        body: Bytes::new().into(),
        persistent: false,
        priority: 4,
        expires: 0,
        timestamp: now_millis(),
        deliver_at,
        origin: None,
        group: None,
        usage: None,
        encoded: None,
    })
}

/// Schedules `MESSAGES` messages due `due_in(i)` ms from now on one queue with a consumer,
/// checks the clock's alarms stay within `max_alarms` while they wait, and that every
/// message is released once, at or after its time, in due order (arrival order among equal
/// times).
async fn schedule_and_release(due_in: impl Fn(u64) -> u64, max_alarms: usize) {
    let clock = Clock::default();
    let owner: Arc<dyn ClockOwner> = Arc::new(NoOwner);
    let task = tokio::spawn(clock.clone().run(Arc::downgrade(&owner), None));
    let q = queue(&clock);
    let sink = Arc::new(Record::default());
    q.add_consumer(ConsumerSpec {
        id: 1,
        sink: sink.clone(),
        window: Window {
            messages: None,
            bytes: None,
        },
        reader: None,
        priority: 0,
        selector: None,
        no_local: None,
        stream: Default::default(),
        exclusive: false,
    });
    q.start_consumer(1);

    let start = now_millis();
    let mut most_alarms = 0;
    for i in 0..MESSAGES {
        q.enqueue(message(i, start + due_in(i)))
            .unwrap_or_else(|r| panic!("enqueue refused: {r:?}"));
        most_alarms = most_alarms.max(clock.alarms());
    }
    assert!(
        most_alarms <= max_alarms,
        "{most_alarms} alarms for {MESSAGES} scheduled messages"
    );
    assert!(q.scheduled_count() > 0, "messages were released too early");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = sink.0.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        if n >= MESSAGES {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {n} of {MESSAGES} released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = std::mem::take(&mut *sink.0.lock().unwrap_or_else(|e| e.into_inner()));
    assert_eq!(got.len() as u64, MESSAGES);
    for (at, m) in &got {
        assert!(
            *at >= m.deliver_at,
            "message {} released at {at}, before {}",
            m.id,
            m.deliver_at
        );
    }
    let order: Vec<(u64, u64)> = got.iter().map(|(_, m)| (m.deliver_at, m.id)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert!(order == sorted, "not released in due order");
    assert_eq!(q.scheduled_count(), 0);
    drop(owner);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_due_times_need_a_handful_of_alarms() {
    let mut rng = fastrand::Rng::with_seed(10);
    let due: Vec<u64> = (0..MESSAGES).map(|_| rng.u64(300..1500)).collect();
    schedule_and_release(|i| due[i as usize], 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ever_earlier_due_times_need_a_handful_of_alarms() {
    // Each message is due before every one sent so far: the worst case for a clock that
    // arms an alarm whenever a queue's earliest time moves earlier.
    schedule_and_release(|i| 300 + (MESSAGES - i) / 8, 128).await;
}
