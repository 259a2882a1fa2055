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

/// A version-3 journal (refs without a redelivery time, no duplicate-id table) is refused
/// with the usual message, not misread as version 4.
#[test]
fn version_three_journal_is_refused_and_untouched() {
    assert_eq!(FORMAT_VERSION, 4);
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let path = j.path().to_path_buf();
    j.shutdown();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, 3)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(opts(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("has format version 3, this build reads format version 4"),
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
