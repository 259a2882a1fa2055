//! The stream alone: offsets, start points, windows, retention by whole segments, stored
//! offsets of named readers.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::*;
use crate::broker::message::now_millis;
use crate::broker::queue::{QueueKind, QueueSpec};

#[derive(Default)]
struct Sink(Mutex<Vec<Delivery>>);

impl Sink {
    fn offsets(&self) -> Vec<u64> {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().filter_map(Delivery::stream_offset).collect()
    }

    fn tags(&self) -> Vec<u64> {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().map(|d| d.tag).collect()
    }
}

impl DeliverySink for Sink {
    fn deliver(&self, d: Delivery) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(d);
        true
    }
}

fn stream_queue(retention: Retention) -> Arc<Queue> {
    Queue::new(QueueSpec::for_test(
        "s",
        QueueKind {
            retention: Some(retention),
            ..Default::default()
        },
    ))
}

fn message(id: u64, body: usize, timestamp: u64) -> Arc<Message> {
    Arc::new(Message {
        id,
        address: "s".into(),
        destination: "s".into(),
        properties: vec![],
        body: Bytes::from(vec![b'x'; body]).into(),
        persistent: false,
        priority: 4,
        expires: 0,
        timestamp,
        deliver_at: 0,
        origin: None,
        group: None,
        usage: None,
        encoded: None,
    })
}

fn fill(q: &Arc<Queue>, n: u64) {
    let now = now_millis();
    for i in 0..n {
        q.enqueue(message(i + 1, 10, now)).unwrap();
    }
}

fn reader(q: &Arc<Queue>, id: u64, start: Option<StreamStart>, window: Option<u32>) -> Arc<Sink> {
    reader_named(q, id, start, window, None)
}

fn reader_named(
    q: &Arc<Queue>,
    id: u64,
    start: Option<StreamStart>,
    window: Option<u32>,
    name: Option<&str>,
) -> Arc<Sink> {
    let sink = Arc::new(Sink::default());
    q.add_consumer(ConsumerSpec {
        id,
        sink: sink.clone(),
        window: Window {
            messages: window,
            bytes: None,
        },
        reader: None,
        priority: 0,
        selector: None,
        no_local: None,
        exclusive: false,
        stream: StreamRequest {
            start,
            name: name.map(Arc::from),
        },
    });
    q.start_consumer(id);
    sink
}

#[test]
fn parses_every_form_and_refuses_others() {
    assert_eq!(StreamStart::parse("first"), Some(StreamStart::First));
    assert_eq!(StreamStart::parse("last"), Some(StreamStart::Last));
    assert_eq!(StreamStart::parse(" next "), Some(StreamStart::Next));
    assert_eq!(StreamStart::parse("42"), Some(StreamStart::Offset(42)));
    assert_eq!(
        StreamStart::parse("timestamp=1700000000"),
        Some(StreamStart::Timestamp(1_700_000_000_000))
    );
    for bad in ["", "-1", "firstx", "timestamp=", "timestamp=abc", "1.5"] {
        assert_eq!(StreamStart::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn consuming_does_not_remove_and_offsets_are_dense() {
    let q = stream_queue(Retention::default());
    let a = reader(&q, 1, Some(StreamStart::First), None);
    fill(&q, 10);
    let b = reader(&q, 2, Some(StreamStart::First), None);
    assert_eq!(a.offsets(), (0..10).collect::<Vec<_>>());
    assert_eq!(b.offsets(), (0..10).collect::<Vec<_>>());
    q.complete(1, &a.tags(), Outcome::Ack);
    assert_eq!(q.message_count(), 10, "an ACK removes nothing");
}

#[test]
fn start_points() {
    let q = stream_queue(Retention::default());
    fill(&q, 5);
    assert_eq!(
        reader(&q, 1, Some(StreamStart::First), None).offsets(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(reader(&q, 2, Some(StreamStart::Last), None).offsets(), [4]);
    let next = reader(&q, 3, Some(StreamStart::Next), None);
    let default = reader(&q, 4, None, None);
    assert_eq!(
        reader(&q, 5, Some(StreamStart::Offset(3)), None).offsets(),
        [3, 4]
    );
    assert!(
        reader(&q, 6, Some(StreamStart::Offset(99)), None)
            .offsets()
            .is_empty()
    );
    fill(&q, 1);
    assert_eq!(next.offsets(), [5]);
    assert_eq!(default.offsets(), [5]);
}

#[test]
fn timestamp_starts_at_the_first_message_at_or_after_it() {
    let q = stream_queue(Retention::default());
    for (i, ts) in [1_000u64, 2_000, 3_000, 4_000].into_iter().enumerate() {
        q.enqueue(message(i as u64 + 1, 1, ts)).unwrap();
    }
    let r = reader(&q, 1, Some(StreamStart::Timestamp(2_500)), None);
    assert_eq!(r.offsets(), [2, 3]);
    let r = reader(&q, 2, Some(StreamStart::Timestamp(2_000)), None);
    assert_eq!(r.offsets(), [1, 2, 3]);
}

#[test]
fn window_bounds_what_a_reader_holds_and_ack_or_nack_frees_it() {
    let q = stream_queue(Retention::default());
    fill(&q, 10);
    let r = reader(&q, 1, Some(StreamStart::First), Some(3));
    assert_eq!(r.offsets(), [0, 1, 2]);
    let tags = r.tags();
    q.complete(1, &tags[..1], Outcome::Nack);
    assert_eq!(
        r.offsets(),
        [0, 1, 2, 3],
        "a NACK frees room, requeues nothing"
    );
    let tags = q.settle(1, AckTarget::Tag(tags[2]), true, true).unwrap();
    assert_eq!(tags.len(), 2, "cumulative settle covers what came before");
    assert_eq!(r.offsets(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn byte_retention_drops_whole_old_segments() {
    let body = 1000;
    let q = stream_queue(Retention {
        max_age_ms: None,
        max_bytes: Some(2 * SEGMENT_MESSAGES as u64 * body as u64),
    });
    let now = now_millis();
    let n = 5 * SEGMENT_MESSAGES as u64;
    for i in 0..n {
        q.enqueue(message(i + 1, body, now)).unwrap();
    }
    let (first, next) = q.stream_bounds().unwrap();
    assert_eq!(next, n);
    assert_eq!(
        first % SEGMENT_MESSAGES as u64,
        0,
        "cut at a segment boundary"
    );
    assert!(first > 0, "old segments went");
    let kept = (next - first) * body as u64;
    assert!(kept >= 2 * SEGMENT_MESSAGES as u64 * body as u64, "{kept}");
    assert_eq!(q.message_count() as u64, next - first);
    assert_eq!(
        reader(&q, 1, Some(StreamStart::First), None).offsets()[0],
        first
    );
}

#[test]
fn age_retention_drops_segments_whose_newest_message_is_old() {
    let q = stream_queue(Retention {
        max_age_ms: Some(1_000),
        max_bytes: None,
    });
    let old = now_millis() - 10_000;
    for i in 0..(SEGMENT_MESSAGES as u64 + 10) {
        q.enqueue(message(i + 1, 1, old)).unwrap();
    }
    // The append that found them old cut every whole old segment, the active one too.
    let (first, next) = q.stream_bounds().unwrap();
    assert_eq!(next, SEGMENT_MESSAGES as u64 + 10);
    assert_eq!(first, next, "{first}");
    q.enqueue(message(1_000, 1, now_millis())).unwrap();
    assert_eq!(q.stream_bounds(), Some((next, next + 1)));
    assert!(q.take_expired(now_millis() + 5_000).is_empty());
    assert_eq!(
        q.stream_bounds(),
        Some((next + 1, next + 1)),
        "the scan cuts too"
    );
}

#[test]
fn a_reader_behind_the_cut_moves_to_the_first_kept_offset() {
    let q = stream_queue(Retention {
        max_age_ms: None,
        max_bytes: Some(1),
    });
    let r = reader(&q, 1, Some(StreamStart::First), Some(1));
    fill(&q, 3 * SEGMENT_MESSAGES as u64);
    assert_eq!(r.offsets(), [0]);
    q.complete(1, &r.tags(), Outcome::Ack);
    let (first, _) = q.stream_bounds().unwrap();
    assert_eq!(r.offsets(), [0, first]);
}

#[test]
fn a_named_reader_resumes_after_its_acknowledged_offset() {
    let q = stream_queue(Retention::default());
    fill(&q, 6);
    let r = reader_named(&q, 1, Some(StreamStart::First), Some(3), Some("c.sub"));
    let tags = r.tags();
    let done = q.complete(1, &tags[..2], Outcome::Ack);
    assert!(done.journal.is_empty(), "no journal on this queue");
    q.remove_consumer(1);
    let again = reader_named(&q, 2, None, None, Some("c.sub"));
    assert_eq!(again.offsets(), [2, 3, 4, 5]);
    let other = reader_named(&q, 3, None, None, Some("c.other"));
    assert!(other.offsets().is_empty(), "no stored offset: next");
    let explicit = reader_named(&q, 4, Some(StreamStart::First), None, Some("c.sub"));
    assert_eq!(explicit.offsets().len(), 6, "x-stream-offset wins");
}

#[test]
fn recovery_keeps_stored_offsets_and_appends_the_rest_after_them() {
    let q = stream_queue(Retention::default());
    let now = now_millis();
    let refs: Vec<_> = (1..=5).map(|id| message(id, 1, now)).collect();
    // Messages 1, 2, 4 had offsets 10, 11, 13 (12 was not persistent); 3 and 5 had none.
    q.recover_stream(
        refs,
        &[(10, 1), (11, 2), (12, 99), (13, 4)],
        10,
        vec![(Arc::from("c.sub"), 11)],
    );
    let all = reader(&q, 1, Some(StreamStart::First), None);
    assert_eq!(all.offsets(), [10, 11, 13, 14, 15]);
    let ids: Vec<u64> = all.0.lock().unwrap().iter().map(|d| d.message.id).collect();
    assert_eq!(ids, [1, 2, 4, 3, 5]);
    let (page, next) = q.stream.as_ref().unwrap().page(11, 2);
    let ids: Vec<u64> = page.iter().map(|m| m.id).collect();
    assert_eq!((ids, next), (vec![2, 4], Some(14)), "a browse page");
    let named = reader_named(&q, 2, None, None, Some("c.sub"));
    assert_eq!(named.offsets(), [13, 14, 15]);
}

fn journaled_stream_queue(journal: crate::journal::Journal) -> Arc<Queue> {
    let q = stream_queue(Retention::default());
    Queue::new(QueueSpec {
        durable: true,
        journal: Some(journal),
        ..QueueSpec::for_test("s", q.kind.clone())
    })
}

#[test]
fn a_journaled_stream_shows_an_offset_once_its_record_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) =
        crate::journal::Journal::open(crate::journal::JournalOptions::new(dir.path())).unwrap();
    let q = journaled_stream_queue(j.clone());
    let r = reader(&q, 1, Some(StreamStart::First), None);
    fill(&q, 3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while r.offsets().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", r.offsets());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(r.offsets(), [0, 1, 2]);

    // The journal is gone: a message that is not persistent still takes an offset of the
    // stored reservation and is shown at once; a persistent one's record will never be
    // stored, so its offset stays hidden (and so do the offsets after it).
    j.shutdown();
    fill(&q, 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while r.offsets().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "{:?}", r.offsets());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut persistent = message(100, 10, now_millis());
    if let Some(m) = Arc::get_mut(&mut persistent) {
        m.persistent = true;
    }
    q.enqueue(persistent).unwrap();
    fill(&q, 1);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(q.stream_bounds(), Some((0, 6)), "appended");
    assert_eq!(r.offsets(), [0, 1, 2, 3], "but not shown");
}

#[test]
fn messages_that_are_not_persistent_reserve_offsets_by_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) =
        crate::journal::Journal::open(crate::journal::JournalOptions::new(dir.path())).unwrap();
    let q = journaled_stream_queue(j.clone());
    let n = 3 * super::RESERVE_BLOCK;
    fill(&q, n);
    j.shutdown();
    let (j, recovered) =
        crate::journal::Journal::open(crate::journal::JournalOptions::new(dir.path())).unwrap();
    let stream = recovered
        .streams
        .iter()
        .find(|s| s.queue == "s")
        .expect("the stream's rows");
    // A handful of reservation rows, not one row per message...
    assert!(stream.offsets.len() <= 4, "{} rows", stream.offsets.len());
    // ...and they reach past every offset handed out, so none is handed out again.
    let next = stream.offsets.last().map_or(0, |&(o, _)| o + 1);
    assert!(
        next >= n,
        "offsets go on from {next}, but {n} were handed out"
    );
    j.shutdown();
}
