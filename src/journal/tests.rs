//! Tests that need the journal's internals: the table layout for a
//! version-mismatched file, records written behind the journal's back, and
//! the failed state.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::recovery::VersionState;
use super::tables::{FORMAT_VERSION_KEY, META};
use super::*;

fn opts(dir: &Path) -> JournalOptions {
    JournalOptions::new(dir)
}

#[test]
fn format_version_mismatch_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, FORMAT_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    match &err {
        JournalError::FormatVersion {
            found, expected, ..
        } => {
            assert_eq!((*found, *expected), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("format version {FORMAT_VERSION}")),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn foreign_redb_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("other-app");
        txn.open_table(def).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn file_locked_by_another_holder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    // Another process's redb handle holds the same file lock as this one.
    let other = Database::create(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    drop(other);
    Journal::open(opts(dir.path())).unwrap();
}

#[tokio::test]
async fn failed_journal_refuses_further_work() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    j.inner.shared.set_failed("disk on fire".into());
    let err = j
        .submit(vec![JournalOp::DeleteQueue("q".into())])
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Failed { .. }));
    assert!(err.to_string().contains("disk on fire"));
}

#[test]
fn shutdown_closes_the_file_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    j.submit(vec![JournalOp::PutQueue(QueueRecord {
        name: "q".into(),
        address: "a".into(),
        routing_type: RoutingKind::Anycast,
        filter: None,
        auto_created: false,
        durable_subscription: None,
        incarnation: 1,
        owner: None,
    })])
    .wait()
    .unwrap();
    assert!(j.commit_count() >= 1);
    j.shutdown();
    // After shutdown the file is readable read-only: the writer closed cleanly.
    let ro = Database::builder().open_read_only(j.path()).unwrap();
    let txn = ro.begin_read().unwrap();
    assert!(matches!(
        recovery::format_version(&txn).unwrap(),
        VersionState::Version(FORMAT_VERSION)
    ));
}

/// A record with a valid checksum under the wrong key (a damaged key, or a
/// bug) is refused rather than recovered under another name.
#[test]
fn record_under_the_wrong_key_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let rec = AddressRecord {
            name: "real".into(),
            anycast: true,
            multicast: false,
            auto_created: false,
        };
        txn.open_table(super::tables::ADDRESSES)
            .unwrap()
            .insert("other", records::encode(&rec).unwrap().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(r#"address record stored under key "other" is named "real""#),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A version-1 journal (records without checksums) is refused, not misread.
#[test]
fn version_one_journal_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::FormatVersion {
                found: 1,
                expected: FORMAT_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A version-5 journal (its messages carry no large-message field) is refused with the
/// usual message, not misread as version 6.
#[test]
fn version_five_journal_is_refused_and_untouched() {
    assert_eq!(FORMAT_VERSION, 6);
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, 5)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("has format version 5, this build reads format version 6"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A damaged duplicate id could match a later send and drop it as a repeat, so it is
/// refused at open like any damaged record.
#[test]
fn damaged_duplicate_id_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    j.submit(vec![JournalOp::PutDuplicateId {
        address: "orders".into(),
        slot: 7,
        id: bytes::Bytes::from_static(b"id-7"),
    }])
    .wait()
    .unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(super::tables::DUPLICATE_IDS).unwrap();
            let mut v = t.get(("orders", 7)).unwrap().unwrap().value().to_vec();
            let last = v.len() - 1;
            v[last] ^= 0x01;
            t.insert(("orders", 7), v.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(r#"duplicate id 7 of address "orders": checksum mismatch"#),
        "{err}"
    );
}

fn stored(id: u64) -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        id,
        address: "s".into(),
        destination: "/queue/s".into(),
        properties: vec![],
        body: bytes::Bytes::from_static(b"m"),
        priority: 4,
        expires: 0,
        timestamp: 1,
        deliver_at: 0,
        large: None,
    })
}

fn stream_queue_record(incarnation: u64) -> QueueRecord {
    QueueRecord {
        name: "s".into(),
        address: "s".into(),
        routing_type: RoutingKind::Anycast,
        filter: None,
        auto_created: false,
        durable_subscription: None,
        incarnation,
        owner: None,
    }
}

/// A stream's offsets, where retention cut it and its consumers' stored offsets come back
/// at open; a segment drop removes its refs and messages in one record; deleting the queue
/// forgets all of it.
#[test]
fn stream_offsets_cuts_and_consumer_offsets_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let q: Arc<str> = Arc::from("s");
    let mut ops = vec![JournalOp::PutQueue(stream_queue_record(1))];
    for id in 1..=4u64 {
        ops.push(JournalOp::PutMessage(stored(id)));
        ops.push(JournalOp::PutRef {
            queue: q.clone(),
            incarnation: 1,
            message_id: id,
        });
        ops.push(JournalOp::PutStreamOffset {
            queue: q.clone(),
            incarnation: 1,
            offset: id - 1,
            message_id: id,
        });
    }
    ops.push(JournalOp::PutConsumerOffset {
        queue: q.clone(),
        incarnation: 1,
        consumer: Arc::from("c.sub"),
        offset: 2,
    });
    // An op for another life of the queue is ignored.
    ops.push(JournalOp::PutConsumerOffset {
        queue: q.clone(),
        incarnation: 7,
        consumer: Arc::from("c.old"),
        offset: 9,
    });
    j.submit(ops).wait().unwrap();
    j.submit(vec![JournalOp::DropStreamSegments {
        queue: q.clone(),
        incarnation: 1,
        below: 2,
    }])
    .wait()
    .unwrap();
    j.shutdown();
    drop(j);

    let (j, rec) = Journal::open(opts(dir.path())).unwrap();
    let ids: Vec<u64> = rec.messages[0].refs.iter().map(|r| r.message.id).collect();
    assert_eq!(ids, [3, 4], "the dropped segment's refs went with it");
    assert_eq!(
        rec.streams,
        vec![RecoveredStream {
            queue: "s".into(),
            base: 2,
            offsets: vec![(2, 3), (3, 4)],
            consumers: vec![("c.sub".into(), 2)],
        }]
    );
    j.submit(vec![JournalOp::DeleteQueue("s".into())])
        .wait()
        .unwrap();
    j.shutdown();
    drop(j);
    let (_j, rec) = Journal::open(opts(dir.path())).unwrap();
    assert!(rec.streams.is_empty(), "{:?}", rec.streams);
    assert!(rec.messages.is_empty());
}

/// A layer above the journal (the cluster's applied marker) stores values atomically with
/// its ops and gets the latest back at open; a copy made by `copy_to` holds them too.
#[tokio::test]
async fn key_values_survive_a_reopen_and_travel_in_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let put = |v: &'static str| JournalOp::PutKeyValue {
        key: Arc::from("layer.key"),
        value: bytes::Bytes::from_static(v.as_bytes()),
    };
    {
        let (j, rec) = Journal::open(opts(dir.path())).unwrap();
        assert!(rec.key_values.is_empty());
        j.submit(vec![put("first")]).await.unwrap();
        j.submit(vec![put("second")]).await.unwrap();
        let copy = dir.path().join("copy.redb");
        j.copy_to(copy.clone()).await.unwrap();
        let kv = super::read_key_values(&copy).unwrap();
        assert_eq!(
            kv,
            vec![(
                "layer.key".to_string(),
                bytes::Bytes::from_static(b"second")
            )]
        );
        j.shutdown();
    }
    let (_j, rec) = Journal::open(opts(dir.path())).unwrap();
    assert_eq!(
        rec.key_values,
        vec![(
            "layer.key".to_string(),
            bytes::Bytes::from_static(b"second")
        )]
    );
}
