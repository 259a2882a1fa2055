//! The page store: rows read back in order, deleted once read, dropped at open; and the
//! recovery limit leaving a queue's tail on disk.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use super::*;

fn message(id: u64) -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        id,
        address: "q".into(),
        destination: "/queue/q".into(),
        properties: vec![("k".into(), format!("{id}"))],
        body: Bytes::from(vec![b'b'; 100]),
        priority: 4,
        expires: 0,
        timestamp: 1,
        deliver_at: 0,
        large: None,
    })
}

fn queue_record() -> QueueRecord {
    QueueRecord {
        name: "q".into(),
        address: "q".into(),
        routing_type: RoutingKind::Anycast,
        filter: None,
        auto_created: false,
        durable_subscription: None,
        incarnation: 1,
        owner: None,
    }
}

fn read(j: &Journal, from: PageFrom) -> PageBatch {
    let (tx, rx) = mpsc::channel();
    let queued = j.read_page(
        PageRead {
            queue: "q".into(),
            incarnation: 1,
            from,
            max_bytes: u64::MAX,
            max_messages: 1000,
        },
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    assert!(queued);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("answered")
        .expect("read")
}

fn ids(b: &PageBatch) -> Vec<u64> {
    b.messages.iter().map(|m| m.message.id).collect()
}

#[test]
fn pages_read_back_in_order_then_go_and_none_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    let put = |seq, entry| JournalOp::PutPage {
        queue: "q".into(),
        incarnation: 1,
        seq,
        entry,
    };
    j.submit(vec![
        JournalOp::PutQueue(queue_record()),
        JournalOp::PutMessage(message(10)),
        JournalOp::PutRef {
            queue: "q".into(),
            incarnation: 1,
            message_id: 10,
        },
        put(0, PageEntry::Journaled(10)),
        put(
            1,
            PageEntry::Transient {
                message: message(11),
                persistent: false,
            },
        ),
        // Another life of the queue: never written.
        JournalOp::PutPage {
            queue: "q".into(),
            incarnation: 0,
            seq: 2,
            entry: PageEntry::Transient {
                message: message(12),
                persistent: false,
            },
        },
    ])
    .wait()
    .unwrap();
    let b = read(&j, PageFrom::Pages { from: 0, before: 3 });
    assert_eq!(ids(&b), [10, 11]);
    assert!(b.exhausted);
    assert_eq!(b.resume, 2, "the next read starts after the last row");
    assert!(b.messages[0].journaled && b.messages[0].persistent);
    assert!(!b.messages[1].journaled && !b.messages[1].persistent);
    // Rows not known stored yet are not read.
    assert_eq!(ids(&read(&j, PageFrom::Pages { from: 0, before: 1 })), [10]);
    j.submit(vec![JournalOp::DeletePages {
        queue: "q".into(),
        below: 1,
    }])
    .wait()
    .unwrap();
    assert_eq!(ids(&read(&j, PageFrom::Pages { from: 0, before: 3 })), [11]);
    j.shutdown();
    drop(j);
    let (j, rec) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert!(
        read(&j, PageFrom::Pages { from: 0, before: 3 })
            .messages
            .is_empty()
    );
    // The journaled message itself is still stored, as a ref.
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].refs.len(), 1);
    j.shutdown();
}

#[test]
fn recovery_leaves_what_is_over_the_limit_on_disk_as_a_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    let mut ops = vec![JournalOp::PutQueue(queue_record())];
    for id in 1..=10 {
        ops.push(JournalOp::PutMessage(message(id)));
        ops.push(JournalOp::PutRef {
            queue: "q".into(),
            incarnation: 1,
            message_id: id,
        });
    }
    j.submit(ops).wait().unwrap();
    j.shutdown();
    drop(j);
    let mut opts = JournalOptions::new(dir.path());
    // Each message weighs 100 + 64 bytes: three fit under 400.
    opts.load_limit = LoadLimit {
        per_queue: 400,
        total: u64::MAX,
    };
    let (j, rec) = Journal::open(opts).unwrap();
    let q = &rec.messages[0];
    let loaded: Vec<u64> = q.refs.iter().map(|r| r.message.id).collect();
    assert_eq!(loaded, [1, 2, 3]);
    assert_eq!(
        q.tail,
        Some(RecoveredTail {
            after: 3,
            upto: 10,
            count: 7
        })
    );
    assert_eq!(rec.next_message_id, 11);
    let b = read(&j, PageFrom::Tail { after: 3, upto: 10 });
    assert_eq!(ids(&b), [4, 5, 6, 7, 8, 9, 10]);
    assert!(b.exhausted);
    j.shutdown();
}

#[test]
fn a_message_paged_by_many_queues_is_stored_once_and_goes_with_its_last_row() {
    use super::tables::{PAGED_MESSAGES, PAGED_REFCOUNTS};
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    let m = message(7);
    let ops: Vec<JournalOp> = ["q", "r", "s"]
        .iter()
        .map(|q| JournalOp::PutPage {
            queue: (*q).into(),
            incarnation: 1,
            seq: 0,
            entry: PageEntry::Transient {
                message: Arc::clone(&m),
                persistent: true,
            },
        })
        .collect();
    j.submit(ops).wait().unwrap();
    let b = read(&j, PageFrom::Pages { from: 0, before: 1 });
    assert_eq!(ids(&b), [7]);
    assert!(b.messages[0].persistent && !b.messages[0].journaled);
    let rows = |j: &Journal| {
        let db = redb::Database::builder()
            .open_read_only(j.path())
            .expect("read-only open");
        let txn = db.begin_read().unwrap();
        let n = txn.open_table(PAGED_MESSAGES).unwrap().len().unwrap();
        let c = txn
            .open_table(PAGED_REFCOUNTS)
            .unwrap()
            .get(7)
            .unwrap()
            .map(|g| g.value());
        (n, c)
    };
    // Two queues read theirs and forget it; the third still has it.
    let delete = |q: &str| JournalOp::DeletePages {
        queue: q.into(),
        below: 1,
    };
    j.submit(vec![delete("q"), delete("r")]).wait().unwrap();
    j.shutdown();
    assert_eq!(rows(&j), (1, Some(1)), "one copy, named by one row");
    drop(j);
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    j.submit(vec![JournalOp::PutPage {
        queue: "s".into(),
        incarnation: 1,
        seq: 0,
        entry: PageEntry::Transient {
            message: message(8),
            persistent: false,
        },
    }])
    .wait()
    .unwrap();
    j.submit(vec![delete("s")]).wait().unwrap();
    j.shutdown();
    assert_eq!(
        rows(&j),
        (0, None),
        "emptied at open, then the last row took its copy"
    );
}
