//! Public-API tests of the journal: what the broker relies on across a restart.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wrenmq::journal::{
    AddressRecord, Journal, JournalError, JournalOp, JournalOptions, QueueRecord, Recovered,
    RecoveredIdCache, RoutingKind, StoredMessage,
};

fn opts(dir: &std::path::Path) -> JournalOptions {
    JournalOptions::new(dir)
}

fn msg(id: u64, body_len: usize) -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        id,
        address: "orders".into(),
        destination: "/queue/orders".into(),
        properties: vec![
            ("content-type".into(), "text/plain".into()),
            ("x".into(), "1".into()),
            ("x".into(), "2".into()),
        ],
        body: Bytes::from(vec![(id % 251) as u8; body_len]),
        priority: 4,
        expires: 0,
        timestamp: 1_700_000_000_000 + id,
        deliver_at: 0,
        large: None,
    })
}

fn queue(name: &str, address: &str, kind: RoutingKind) -> QueueRecord {
    QueueRecord {
        name: name.into(),
        address: address.into(),
        routing_type: kind,
        filter: None,
        auto_created: false,
        durable_subscription: None,
        incarnation: 0,
        owner: None,
    }
}

fn put_ref(queue: &str, id: u64) -> JournalOp {
    JournalOp::PutRef {
        queue: queue.into(),
        incarnation: 0,
        message_id: id,
    }
}

fn del_ref(queue: &str, id: u64) -> JournalOp {
    JournalOp::DeleteRef {
        queue: queue.into(),
        incarnation: 0,
        message_id: id,
    }
}

fn reopen(dir: &std::path::Path) -> (Journal, Recovered) {
    Journal::open(opts(dir)).unwrap()
}

fn ids(rec: &Recovered, queue: &str) -> Vec<u64> {
    rec.messages
        .iter()
        .find(|q| q.queue == queue)
        .map(|q| q.refs.iter().map(|r| r.message.id).collect())
        .unwrap_or_default()
}

#[test]
fn empty_journal_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (j, rec) = Journal::open(opts(&dir.path().join("nested/dir"))).unwrap();
    assert_eq!(
        rec,
        Recovered {
            next_message_id: 1,
            ..Default::default()
        }
    );
    j.shutdown();
    j.shutdown();
    let (_j, rec) = reopen(&dir.path().join("nested/dir"));
    assert!(rec.queues.is_empty() && rec.messages.is_empty());
}

#[tokio::test]
async fn round_trip_recovers_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let address = AddressRecord {
        name: "orders".into(),
        anycast: true,
        multicast: true,
        auto_created: false,
    };
    let mut q2 = queue("orders.sub", "orders", RoutingKind::Multicast);
    q2.filter = Some("color = 'red'".into());
    q2.durable_subscription = Some("client1.sub".into());
    q2.auto_created = true;
    let q1 = queue("orders", "orders", RoutingKind::Anycast);
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            JournalOp::PutAddress(address.clone()),
            JournalOp::PutQueue(q1.clone()),
            JournalOp::PutQueue(q2.clone()),
        ])
        .await
        .unwrap();
        // Submitted out of id order: recovery must still come back ascending.
        for id in [5u64, 2, 9, 7] {
            j.submit(vec![
                JournalOp::PutMessage(msg(id, 100)),
                put_ref("orders", id),
            ])
            .await
            .unwrap();
        }
        // Message 9 also on the subscription queue: recovered as one shared Arc.
        j.submit(vec![put_ref("orders.sub", 9)]).await.unwrap();
        j.submit(vec![JournalOp::SetDeliveryCount {
            queue: "orders".into(),
            incarnation: 0,
            message_id: 2,
            count: 3,
        }])
        .await
        .unwrap();
        j.submit_detached(vec![JournalOp::SetDeliveryCount {
            queue: "orders.sub".into(),
            incarnation: 0,
            message_id: 9,
            count: 1,
        }]);
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    assert_eq!(rec.addresses, vec![address]);
    assert_eq!(rec.queues, vec![q1, q2]);
    assert_eq!(ids(&rec, "orders"), vec![2, 5, 7, 9]);
    assert_eq!(ids(&rec, "orders.sub"), vec![9]);
    assert_eq!(rec.next_message_id, 10);

    let orders = rec.messages.iter().find(|q| q.queue == "orders").unwrap();
    let sub = rec
        .messages
        .iter()
        .find(|q| q.queue == "orders.sub")
        .unwrap();
    assert_eq!(orders.refs[0].delivery_count, 3);
    assert_eq!(orders.refs[1].delivery_count, 0);
    assert_eq!(sub.refs[0].delivery_count, 1);
    assert!(Arc::ptr_eq(&orders.refs[3].message, &sub.refs[0].message));
    assert_eq!(*orders.refs[3].message, *msg(9, 100));
}

#[tokio::test]
async fn last_ref_deletes_message_and_delete_queue_drops_refs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            JournalOp::PutQueue(queue("a", "t", RoutingKind::Multicast)),
            JournalOp::PutQueue(queue("b", "t", RoutingKind::Multicast)),
            JournalOp::PutMessage(msg(1, 10)),
            put_ref("a", 1),
            put_ref("b", 1),
            JournalOp::PutMessage(msg(2, 10)),
            put_ref("a", 2),
            put_ref("b", 2),
        ])
        .await
        .unwrap();
        j.submit(vec![del_ref("a", 1)]).await.unwrap();
        j.submit(vec![JournalOp::DeleteQueue("b".into())])
            .await
            .unwrap();
        j.shutdown();
    }
    let (j, rec) = reopen(dir.path());
    assert_eq!(rec.queues.len(), 1);
    assert_eq!(ids(&rec, "a"), vec![2]);
    assert_eq!(ids(&rec, "b"), Vec::<u64>::new());
    // Ids are never reused even though message 1 is gone.
    assert_eq!(rec.next_message_id, 3);
    j.submit(vec![del_ref("a", 2)]).await.unwrap();
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert!(rec.messages.is_empty());
    assert_eq!(rec.next_message_id, 3);
}

#[tokio::test]
async fn ack_before_its_put_ref_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        // The ack overtakes the send that placed the message.
        j.submit(vec![del_ref("q", 1)]).await.unwrap();
        j.submit(vec![JournalOp::SetDeliveryCount {
            queue: "q".into(),
            incarnation: 0,
            message_id: 1,
            count: 2,
        }])
        .await
        .unwrap();
        j.submit(vec![JournalOp::PutMessage(msg(1, 10)), put_ref("q", 1)])
            .await
            .unwrap();
        // A later, in-order message on the same queue is unaffected.
        j.submit(vec![JournalOp::PutMessage(msg(2, 10)), put_ref("q", 2)])
            .await
            .unwrap();
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "q"), vec![2]);
}

#[tokio::test]
async fn sent_and_acked_within_one_group_commit_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let commits;
    {
        // A wide gathering window puts every request below into one group commit.
        let mut o = opts(dir.path());
        o.buffer_timeout = Duration::from_millis(200);
        let (j, _) = Journal::open(o).unwrap();
        let before = j.commit_count();
        let sent = j.submit(vec![
            JournalOp::PutMessage(msg(1, 10)),
            put_ref("q", 1),
            put_ref("other", 1),
        ]);
        j.submit_detached(vec![JournalOp::SetDeliveryCount {
            queue: "q".into(),
            incarnation: 0,
            message_id: 1,
            count: 1,
        }]);
        let acked = j.submit(vec![del_ref("q", 1)]);
        let second = j.submit(vec![JournalOp::PutMessage(msg(2, 10)), put_ref("q", 2)]);
        let acked_too = j.submit(vec![del_ref("q", 2)]);
        sent.await.unwrap();
        acked.await.unwrap();
        second.await.unwrap();
        acked_too.await.unwrap();
        commits = j.commit_count() - before;
        j.shutdown();
    }
    assert_eq!(commits, 1, "the requests were meant to share one commit");
    let (_j, rec) = reopen(dir.path());
    // Message 1 is still referenced by the other queue; message 2 is gone entirely.
    assert_eq!(ids(&rec, "q"), Vec::<u64>::new());
    assert_eq!(ids(&rec, "other"), vec![1]);
    assert!(rec.next_message_id > 2, "ids are never reused");
}

#[tokio::test]
async fn delivery_count_before_its_put_ref_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![JournalOp::PutQueue(queue(
            "q",
            "q",
            RoutingKind::Anycast,
        ))])
        .await
        .unwrap();
        // The broker hands a message to a waiting consumer (and records the delivery) while
        // the send is being routed, before the sender submits the message and its ref.
        j.submit_detached(vec![JournalOp::SetDeliveryCount {
            queue: "q".into(),
            incarnation: 0,
            message_id: 1,
            count: 1,
        }]);
        j.submit(vec![JournalOp::PutMessage(msg(1, 10)), put_ref("q", 1)])
            .await
            .unwrap();
        j.submit(vec![JournalOp::PutMessage(msg(2, 10)), put_ref("q", 2)])
            .await
            .unwrap();
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    let q = rec.messages.iter().find(|q| q.queue == "q").unwrap();
    let counts: Vec<(u64, u32)> = q
        .refs
        .iter()
        .map(|r| (r.message.id, r.delivery_count))
        .collect();
    assert_eq!(counts, vec![(1, 1), (2, 0)]);
}

#[tokio::test]
async fn message_without_ref_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = reopen(dir.path());
    j.submit(vec![JournalOp::PutMessage(msg(1, 10))])
        .await
        .unwrap();
    j.shutdown();
    let (j, rec) = reopen(dir.path());
    assert!(rec.messages.is_empty());
    assert_eq!(rec.next_message_id, 2);
    drop(j);
}

#[test]
fn concurrent_submits_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.buffer_timeout = Duration::from_millis(5);
    let (j, _) = Journal::open(o).unwrap();
    let before = j.commit_count();
    let threads = 16u64;
    let per = 50u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let j = j.clone();
            s.spawn(move || {
                for i in 0..per {
                    let id = t * 1000 + i + 1;
                    j.submit(vec![JournalOp::PutMessage(msg(id, 64)), put_ref("q", id)])
                        .wait()
                        .unwrap();
                }
            });
        }
    });
    let commits = j.commit_count() - before;
    let requests = threads * per;
    eprintln!("group commit: {requests} requests in {commits} commits");
    assert!(
        commits * 3 < requests,
        "{commits} commits for {requests} requests: group commit is not batching"
    );
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "q").len() as u64, requests);
}

#[test]
fn max_batch_one_commits_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.max_batch = 1;
    o.sync = false;
    let (j, _) = Journal::open(o).unwrap();
    let before = j.commit_count();
    let waits: Vec<_> = (1..=20u64)
        .map(|id| j.submit(vec![JournalOp::PutMessage(msg(id, 8)), put_ref("q", id)]))
        .collect();
    for w in waits {
        w.wait().unwrap();
    }
    // Two ops per request exceed max_batch alone, so no request shares a commit.
    assert!(j.commit_count() - before >= 20);
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "q").len(), 20);
}

#[test]
fn file_size_stays_bounded_over_fill_and_drain_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = reopen(dir.path());
    let body = 4096;
    let per_cycle = 5 * 1024 * 1024 / body as u64;
    let mut next = 1u64;
    let mut first = 0;
    for cycle in 0..20 {
        let start = next;
        let mut waits = Vec::new();
        for chunk in 0..(per_cycle / 64) {
            let mut ops = Vec::new();
            for k in 0..64 {
                let id = start + chunk * 64 + k;
                ops.push(JournalOp::PutMessage(msg(id, body)));
                ops.push(put_ref("q", id));
            }
            waits.push(j.submit(ops));
        }
        next = start + (per_cycle / 64) * 64;
        for w in waits {
            w.wait().unwrap();
        }
        let acks: Vec<_> = (start..next).map(|id| del_ref("q", id)).collect();
        j.submit(acks).wait().unwrap();
        if cycle == 0 {
            first = j.file_size();
        }
    }
    let last = j.file_size();
    eprintln!("journal file after first cycle: {first} bytes, after last: {last} bytes");
    assert!(first > 0);
    assert!(
        last <= first * 2,
        "file grew from {first} after the first cycle to {last} after the last"
    );
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert!(rec.messages.is_empty());
}

#[test]
fn garbage_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("journal.redb") && text.contains("not a WrenMQ journal"),
        "{text}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);

    // Garbage shorter than the magic bytes too.
    std::fs::write(&path, b"hi").unwrap();
    assert!(matches!(
        Journal::open(opts(dir.path())).unwrap_err(),
        JournalError::NotAJournal { .. }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"hi");
}

#[test]
fn redb_file_with_damaged_body_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        let ops = (1..=200u64)
            .flat_map(|id| [JournalOp::PutMessage(msg(id, 1000)), put_ref("q", id)])
            .collect();
        j.submit(ops).wait().unwrap();
        j.shutdown();
    }
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep redb's magic, scramble everything after the first page.
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    match Journal::open(opts(dir.path())) {
        Ok(_) => panic!("a damaged journal was opened"),
        Err(e) => {
            let text = e.to_string();
            eprintln!("damaged journal refused: {text}");
            assert!(text.contains("journal.redb"), "{text}");
        }
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// A single flipped byte inside one message body: redb does not notice (it
/// checks page checksums only in `check_integrity`), the record's CRC32 does.
#[test]
fn flipped_byte_in_a_message_body_is_refused_naming_the_message_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let marked = |id: u64| {
        let mut m = (*msg(id, 1000)).clone();
        // A body no other record contains, so the damage lands in message 7.
        m.body = Bytes::from(if id == 7 {
            vec![b'Q'; 1000]
        } else {
            vec![b'y'; 1000]
        });
        Arc::new(m)
    };
    {
        let (j, _) = reopen(dir.path());
        let ops = (1..=20u64)
            .flat_map(|id| [JournalOp::PutMessage(marked(id)), put_ref("q", id)])
            .collect();
        j.submit(ops).wait().unwrap();
        j.shutdown();
    }
    // The undamaged file reopens with every body intact.
    {
        let (_j, rec) = reopen(dir.path());
        assert_eq!(ids(&rec, "q"), (1..=20).collect::<Vec<_>>());
        assert!(
            rec.messages[0].refs[6]
                .message
                .body
                .iter()
                .all(|&b| b == b'Q')
        );
    }
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(1000)
        .position(|w| w.iter().all(|&b| b == b'Q'))
        .expect("message 7's body in the file");
    bytes[at + 500] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&path.canonicalize().unwrap().display().to_string()),
        "{text}"
    );
    assert!(text.contains("message 7:"), "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the refused file was modified"
    );
    // Refused again the same way: nothing was repaired or dropped behind our back.
    let again = Journal::open(opts(dir.path())).unwrap_err().to_string();
    assert_eq!(again, text);
}

/// A damaged queue or address record is refused too.
#[test]
fn flipped_byte_in_a_queue_record_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let name = "queue-with-a-long-recognisable-name";
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![JournalOp::PutQueue(queue(
            name,
            "orders",
            RoutingKind::Anycast,
        ))])
        .wait()
        .unwrap();
        j.shutdown();
    }
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    // The name is both the key and inside the record; the record's copy is
    // the one followed by the address.
    let needle = [name.as_bytes(), &[6u8], b"orders"].concat();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("the queue record in the file");
    bytes[at + 2] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{text}");
    assert!(text.contains(&format!("queue record {name:?}")), "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn second_open_is_refused_and_first_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = reopen(dir.path());
    j.submit(vec![JournalOp::PutMessage(msg(1, 10)), put_ref("q", 1)])
        .await
        .unwrap();
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    j.submit(vec![JournalOp::PutMessage(msg(2, 10)), put_ref("q", 2)])
        .await
        .unwrap();
    drop(j); // the last handle shuts the journal down
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "q"), vec![1, 2]);
}

#[tokio::test]
async fn submits_after_shutdown_error() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = reopen(dir.path());
    let j2 = j.clone();
    j.shutdown();
    let err = j2.submit(vec![put_ref("q", 1)]).await.unwrap_err();
    assert!(matches!(err, JournalError::ShutDown { .. }));
    j2.submit_detached(vec![put_ref("q", 1)]);
}

const CRASH_DIR_VAR: &str = "WRENMQ_JOURNAL_CRASH_DIR";

/// Child half of `recovers_after_a_crash`: does nothing unless spawned by it.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_VAR) else {
        return;
    };
    let (j, _) = Journal::open(opts(std::path::Path::new(&dir))).unwrap();
    for id in 1..=50u64 {
        j.submit(vec![JournalOp::PutMessage(msg(id, 500)), put_ref("q", id)])
            .wait()
            .unwrap();
    }
    j.submit(vec![del_ref("q", 10)]).wait().unwrap();
    // Die without shutdown: no clean close, so the next open must recover.
    std::process::abort();
}

#[test]
fn recovers_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--test-threads=1", "--nocapture"])
        .env(CRASH_DIR_VAR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was supposed to abort");
    // Proves the crash left a file that needs redb's recovery, so that path
    // (skipped by the read-only pre-check) is what this test exercises.
    let path = dir.path().join(wrenmq::journal::FILE_NAME);
    assert!(matches!(
        redb::Database::builder().open_read_only(&path),
        Err(redb::DatabaseError::RepairAborted)
    ));
    let (j, rec) = reopen(dir.path());
    let expected: Vec<u64> = (1..=50).filter(|id| *id != 10).collect();
    assert_eq!(ids(&rec, "q"), expected);
    assert_eq!(rec.next_message_id, 51);
    // The recovered journal keeps working.
    j.submit(vec![del_ref("q", 1)]).wait().unwrap();
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "q").len(), 48);
}

#[test]
fn journal_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Journal>();
}

#[test]
fn reopen_compacts_a_drained_journal_and_keeps_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = reopen(dir.path());
    let ops = (1..=2000u64)
        .flat_map(|id| [JournalOp::PutMessage(msg(id, 8000)), put_ref("q", id)])
        .collect();
    j.submit(ops).wait().unwrap();
    // Leave the newest message so compaction must move live data.
    j.submit((1..2000u64).map(|id| del_ref("q", id)).collect())
        .wait()
        .unwrap();
    let full = j.file_size();
    j.shutdown();
    let (j, rec) = reopen(dir.path());
    let compacted = j.file_size();
    eprintln!("drained journal: {full} bytes before reopen, {compacted} after");
    assert!(compacted * 2 < full, "{full} -> {compacted}");
    assert_eq!(ids(&rec, "q"), vec![2000]);
    assert_eq!(*rec.messages[0].refs[0].message, *msg(2000, 8000));
}

fn queue_life(name: &str, incarnation: u64) -> QueueRecord {
    QueueRecord {
        incarnation,
        ..queue(name, "orders", RoutingKind::Multicast)
    }
}

/// Item 4 of issue 9: a ref made for a queue's earlier life never lands in a queue later
/// created under the same name. Here an ack overtakes its message's `PutRef` (as it does when
/// a fast consumer acks before the producer's session hands the ref over), the queue is
/// deleted and created again, and only then does the late `PutRef` arrive.
#[tokio::test]
async fn late_ref_for_a_deleted_queue_never_reaches_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![JournalOp::PutQueue(queue_life("sub", 1))])
            .await
            .unwrap();
        j.submit(vec![JournalOp::DeleteRef {
            queue: "sub".into(),
            incarnation: 1,
            message_id: 5,
        }])
        .await
        .unwrap();
        j.submit(vec![
            JournalOp::DeleteQueue("sub".into()),
            JournalOp::PutQueue(queue_life("sub", 2)),
        ])
        .await
        .unwrap();
        j.submit(vec![
            JournalOp::PutMessage(msg(5, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 1,
                message_id: 5,
            },
        ])
        .await
        .unwrap();
        // The new life takes its own refs as usual, acks included.
        j.submit(vec![
            JournalOp::PutMessage(msg(6, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 2,
                message_id: 6,
            },
            JournalOp::PutMessage(msg(7, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 2,
                message_id: 7,
            },
        ])
        .await
        .unwrap();
        j.submit(vec![JournalOp::DeleteRef {
            queue: "sub".into(),
            incarnation: 2,
            message_id: 7,
        }])
        .await
        .unwrap();
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ids(&rec, "sub"), vec![6]);
    assert_eq!(
        rec.queues
            .iter()
            .find(|q| q.name == "sub")
            .map(|q| q.incarnation),
        Some(2)
    );
}

/// `(message id, delivery count, redelivery time)` of every ref of `queue`, in order.
fn ref_states(rec: &Recovered, queue: &str) -> Vec<(u64, u32, u64)> {
    rec.messages
        .iter()
        .find(|q| q.queue == queue)
        .map(|q| {
            q.refs
                .iter()
                .map(|r| (r.message.id, r.delivery_count, r.deliver_at))
                .collect()
        })
        .unwrap_or_default()
}

fn set_deliver_at(queue: &str, incarnation: u64, id: u64, at: u64) -> JournalOp {
    JournalOp::SetDeliverAt {
        queue: queue.into(),
        incarnation,
        message_id: id,
        at,
    }
}

fn set_count(queue: &str, incarnation: u64, id: u64, count: u32) -> JournalOp {
    JournalOp::SetDeliveryCount {
        queue: queue.into(),
        incarnation,
        message_id: id,
        count,
    }
}

fn put_dup(address: &str, slot: u32, id: &str) -> JournalOp {
    JournalOp::PutDuplicateId {
        address: address.into(),
        slot,
        id: Bytes::copy_from_slice(id.as_bytes()),
    }
}

fn dup_cache(rec: &Recovered, address: &str) -> Vec<(u32, String)> {
    rec.duplicate_ids
        .iter()
        .find(|c| c.address == address)
        .map(|c| {
            c.ids
                .iter()
                .map(|(slot, id)| (*slot, String::from_utf8_lossy(id).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A scheduled message (`AMQ_SCHEDULED_TIME`) must stay invisible after a restart, so its
/// time is part of the stored message.
#[tokio::test]
async fn scheduled_time_of_a_message_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let scheduled = Arc::new(StoredMessage {
        deliver_at: 1_900_000_000_123,
        ..(*msg(1, 10)).clone()
    });
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            JournalOp::PutMessage(Arc::clone(&scheduled)),
            put_ref("q", 1),
            JournalOp::PutMessage(msg(2, 10)),
            put_ref("q", 2),
        ])
        .await
        .unwrap();
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    let q = &rec.messages[0];
    assert_eq!(*q.refs[0].message, *scheduled);
    assert_eq!(q.refs[0].message.deliver_at, 1_900_000_000_123);
    assert_eq!(q.refs[1].message.deliver_at, 0);
    // The message's schedule is not a per-ref redelivery time.
    assert_eq!(q.refs[0].deliver_at, 0);
}

/// A NACKed message waiting out its redelivery delay still waits after a restart, and the
/// delivery count and the redelivery time never overwrite each other.
#[tokio::test]
async fn redelivery_time_survives_a_restart_beside_the_delivery_count() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![JournalOp::PutQueue(queue(
            "q",
            "q",
            RoutingKind::Anycast,
        ))])
        .await
        .unwrap();
        for id in 1..=4 {
            j.submit(vec![JournalOp::PutMessage(msg(id, 10)), put_ref("q", id)])
                .await
                .unwrap();
        }
        // 1: a delay, then the next delivery's count: both kept.
        j.submit(vec![set_deliver_at("q", 0, 1, 5_000)])
            .await
            .unwrap();
        j.submit(vec![set_count("q", 0, 1, 2)]).await.unwrap();
        // 2: a count, then a delay: both kept.
        j.submit(vec![
            set_count("q", 0, 2, 3),
            set_deliver_at("q", 0, 2, 7_000),
        ])
        .await
        .unwrap();
        // 3: a delay replaced by a later one, then cleared and set again.
        j.submit(vec![set_deliver_at("q", 0, 3, 1_000)])
            .await
            .unwrap();
        j.submit_detached(vec![set_deliver_at("q", 0, 3, 0)]);
        j.submit_detached(vec![set_deliver_at("q", 0, 3, 9_000)]);
        // 4 untouched. 5: the NACK reaches the writer before the sender's PutRef.
        j.submit_detached(vec![set_deliver_at("q", 0, 5, 4_000)]);
        j.submit(vec![JournalOp::PutMessage(msg(5, 10)), put_ref("q", 5)])
            .await
            .unwrap();
        j.shutdown();
    }
    let (j, rec) = reopen(dir.path());
    assert_eq!(
        ref_states(&rec, "q"),
        vec![
            (1, 2, 5_000),
            (2, 3, 7_000),
            (3, 0, 9_000),
            (4, 0, 0),
            (5, 0, 4_000)
        ]
    );
    // Still applied after a restart, to refs recovered from the file.
    j.submit(vec![set_count("q", 0, 5, 1)]).await.unwrap();
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ref_states(&rec, "q")[4], (5, 1, 4_000));
}

/// A redelivery time made for a queue's earlier life, or for a ref already acked, changes
/// nothing: like `SetDeliveryCount`, it applies only to the incarnation it names.
#[tokio::test]
async fn redelivery_time_for_a_gone_ref_or_an_earlier_queue_life_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            JournalOp::PutQueue(queue_life("sub", 1)),
            JournalOp::PutMessage(msg(5, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 1,
                message_id: 5,
            },
        ])
        .await
        .unwrap();
        j.submit(vec![
            JournalOp::DeleteQueue("sub".into()),
            JournalOp::PutQueue(queue_life("sub", 2)),
            JournalOp::PutMessage(msg(6, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 2,
                message_id: 6,
            },
            JournalOp::PutMessage(msg(7, 10)),
            JournalOp::PutRef {
                queue: "sub".into(),
                incarnation: 2,
                message_id: 7,
            },
        ])
        .await
        .unwrap();
        // The old life's return of message 5 arrives late: its ref is gone with its queue.
        j.submit(vec![set_deliver_at("sub", 1, 5, 111)])
            .await
            .unwrap();
        // The new life sets 6's time; a stale op naming the old life must not replace it.
        j.submit(vec![set_deliver_at("sub", 2, 6, 333)])
            .await
            .unwrap();
        j.submit(vec![set_deliver_at("sub", 1, 6, 222)])
            .await
            .unwrap();
        j.submit(vec![set_deliver_at("sub", 1, 7, 444)])
            .await
            .unwrap();
        // A time for a ref already acked changes nothing: the ack stands.
        j.submit(vec![JournalOp::DeleteRef {
            queue: "sub".into(),
            incarnation: 2,
            message_id: 7,
        }])
        .await
        .unwrap();
        j.submit(vec![set_deliver_at("sub", 2, 7, 555)])
            .await
            .unwrap();
        j.shutdown();
    }
    let (_j, rec) = reopen(dir.path());
    assert_eq!(ref_states(&rec, "sub"), vec![(6, 0, 333)]);
}

/// Each address's duplicate-id ring comes back in slot order; a slot written again holds
/// the newer id, as the broker's ring overwrote it.
#[tokio::test]
async fn duplicate_ids_round_trip_in_slot_order_and_a_slot_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            put_dup("orders", 2, "c"),
            put_dup("orders", 0, "a"),
            put_dup("billing", 0, "x"),
            put_dup("orders", 1, "b"),
        ])
        .await
        .unwrap();
        // The ring wrapped: slot 0 now holds the newest id.
        j.submit(vec![put_dup("orders", 0, "d")]).await.unwrap();
        j.shutdown();
    }
    let (j, rec) = reopen(dir.path());
    assert_eq!(
        rec.duplicate_ids,
        vec![
            RecoveredIdCache {
                address: "billing".into(),
                ids: vec![(0, Bytes::from_static(b"x"))],
            },
            RecoveredIdCache {
                address: "orders".into(),
                ids: vec![
                    (0, Bytes::from_static(b"d")),
                    (1, Bytes::from_static(b"b")),
                    (2, Bytes::from_static(b"c")),
                ],
            },
        ]
    );
    // Binary ids (not UTF-8, with NULs) are kept byte for byte.
    let raw = Bytes::from_static(b"\x00\xff\x00id");
    j.submit(vec![JournalOp::PutDuplicateId {
        address: "orders".into(),
        slot: 1,
        id: raw.clone(),
    }])
    .await
    .unwrap();
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(rec.duplicate_ids[1].ids[1], (1, raw));
}

#[tokio::test]
async fn delete_duplicate_ids_drops_one_address_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = reopen(dir.path());
        j.submit(vec![
            put_dup("a", 0, "a0"),
            put_dup("a", 1, "a1"),
            put_dup("a", u32::MAX, "a-last"),
            // Names that sort right next to "a" must not be caught by its range.
            put_dup("a.b", 0, "ab0"),
            put_dup("b", 0, "b0"),
        ])
        .await
        .unwrap();
        j.submit(vec![JournalOp::DeleteDuplicateIds {
            address: "a".into(),
        }])
        .await
        .unwrap();
        j.shutdown();
    }
    let (j, rec) = reopen(dir.path());
    assert_eq!(dup_cache(&rec, "a"), vec![]);
    assert_eq!(dup_cache(&rec, "a.b"), vec![(0, "ab0".to_string())]);
    assert_eq!(dup_cache(&rec, "b"), vec![(0, "b0".to_string())]);
    // Ops apply in order within one batch: a cache dropped and started again keeps the new id.
    j.submit(vec![
        put_dup("b", 1, "b1"),
        JournalOp::DeleteDuplicateIds {
            address: "b".into(),
        },
        put_dup("b", 0, "fresh"),
    ])
    .await
    .unwrap();
    j.shutdown();
    let (_j, rec) = reopen(dir.path());
    assert_eq!(dup_cache(&rec, "b"), vec![(0, "fresh".to_string())]);
    assert_eq!(rec.duplicate_ids.len(), 2);
}

/// A message sent and acked within one group commit is never stored, but its duplicate id
/// is: the send happened, so a retry of it must still be recognised.
#[tokio::test]
async fn duplicate_id_of_a_message_consumed_within_one_group_commit_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let commits;
    {
        let mut o = opts(dir.path());
        o.buffer_timeout = Duration::from_millis(200);
        let (j, _) = Journal::open(o).unwrap();
        let before = j.commit_count();
        let sent = j.submit(vec![
            JournalOp::PutMessage(msg(1, 10)),
            put_ref("q", 1),
            put_dup("orders", 0, "retry-me"),
        ]);
        let acked = j.submit(vec![del_ref("q", 1)]);
        sent.await.unwrap();
        acked.await.unwrap();
        commits = j.commit_count() - before;
        j.shutdown();
    }
    assert_eq!(commits, 1, "the requests were meant to share one commit");
    let (_j, rec) = reopen(dir.path());
    assert!(rec.messages.is_empty());
    assert_eq!(dup_cache(&rec, "orders"), vec![(0, "retry-me".to_string())]);
}

const DUP_CRASH_DIR_VAR: &str = "WRENMQ_JOURNAL_DUP_CRASH_DIR";

/// Child half of `message_and_its_duplicate_id_are_stored_together_across_a_crash`.
#[test]
fn dup_crash_child() {
    let Some(dir) = std::env::var_os(DUP_CRASH_DIR_VAR) else {
        return;
    };
    let (j, _) = Journal::open(opts(std::path::Path::new(&dir))).unwrap();
    let send = |id: u64| {
        vec![
            JournalOp::PutMessage(msg(id, 500)),
            put_ref("q", id),
            put_dup("orders", id as u32, &format!("dup-{id}")),
        ]
    };
    for id in 1..=50u64 {
        j.submit(send(id)).wait().unwrap();
    }
    // Many more in flight when the process dies, so the crash lands among commits: wait
    // for one in the middle while the writer already holds those behind it.
    for id in 51..1000u64 {
        j.submit_detached(send(id));
    }
    let middle = j.submit(send(1000));
    for id in 1001..=3000u64 {
        j.submit_detached(send(id));
    }
    middle.wait().unwrap();
    std::process::abort();
}

/// The broker submits a message and its duplicate id in one batch; whatever a crash cuts
/// off, the journal never keeps one without the other.
#[test]
fn message_and_its_duplicate_id_are_stored_together_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "dup_crash_child",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(DUP_CRASH_DIR_VAR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was supposed to abort");
    let (_j, rec) = reopen(dir.path());
    let messages = ids(&rec, "q");
    let dups: Vec<u64> = dup_cache(&rec, "orders")
        .into_iter()
        .map(|(slot, id)| {
            assert_eq!(id, format!("dup-{slot}"));
            u64::from(slot)
        })
        .collect();
    eprintln!("{} messages survived the crash", messages.len());
    assert!(messages.len() >= 1000, "confirmed sends were lost");
    assert_eq!(messages, dups);
}
