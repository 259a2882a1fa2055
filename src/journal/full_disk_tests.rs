//! A journal on a filesystem that fills up: the failed commit is reported, nothing half of
//! it is stored, and the journal works again once space frees. Needs root to mount a small
//! tmpfs; skipped (with a message) otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

#[path = "../../tests/tmpfs/mod.rs"]
mod tmpfs;
use tmpfs::Tmpfs;

fn queue() -> QueueRecord {
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

fn put(id: u64, body: &bytes::Bytes) -> Vec<JournalOp> {
    vec![
        JournalOp::PutMessage(Arc::new(StoredMessage {
            id,
            address: "q".into(),
            destination: "/queue/q".into(),
            properties: vec![],
            body: body.clone(),
            priority: 4,
            expires: 0,
            timestamp: 1,
            deliver_at: 0,
            large: None,
        })),
        JournalOp::PutRef {
            queue: Arc::from("q"),
            incarnation: 1,
            message_id: id,
        },
    ]
}

fn recovered_ids(dir: &Path) -> Vec<u64> {
    let (j, r) = Journal::open(JournalOptions::new(dir)).expect("the copied journal opens");
    j.shutdown();
    r.messages
        .iter()
        .flat_map(|q| q.refs.iter().map(|r| r.message.id))
        .collect()
}

/// Copies the journal file to a roomy directory, as an operator would move a full disk's data.
fn copy_out(from: &Path) -> (tempfile::TempDir, PathBuf) {
    let to = tempfile::tempdir().expect("temp dir");
    let dir = to.path().join("data");
    std::fs::create_dir_all(&dir).expect("create copy dir");
    std::fs::copy(from.join(FILE_NAME), dir.join(FILE_NAME)).expect("copy journal");
    (to, dir)
}

#[test]
fn a_full_disk_fails_only_its_commit_and_the_journal_writes_again_once_space_frees() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![1u8; 2 << 20]).expect("filler");
    let dir = fs.path().join("data");
    let (j, _) = Journal::open(JournalOptions::new(&dir)).expect("open on tmpfs");
    j.submit(vec![JournalOp::PutQueue(queue())])
        .wait()
        .expect("queue record");
    let body = bytes::Bytes::from(vec![7u8; 64 * 1024]);
    let mut stored = Vec::new();
    let mut failure = None;
    for id in 1..=400u64 {
        match j.submit(put(id, &body)).wait() {
            Ok(()) => stored.push(id),
            Err(e) => {
                failure = Some((id, e));
                break;
            }
        }
    }
    let (failed_id, err) = failure.expect("an 8 MiB tmpfs fills before 25 MiB are written");
    assert!(matches!(err, JournalError::Write { .. }), "{err}");
    assert!(
        err.to_string().contains("No space left on device"),
        "the error names the reason: {err}"
    );
    assert!(
        !stored.is_empty(),
        "some messages fit before the disk filled"
    );

    // Space comes back: the journal opens its file again and commits as before.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    let later = failed_id + 1000;
    loop {
        match j.submit(put(later, &body)).wait() {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(
                    matches!(e, JournalError::Failed { .. } | JournalError::Write { .. }),
                    "{e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("journal never wrote again after space freed: {e}"),
        }
    }
    stored.push(later);
    j.shutdown();

    // Not corrupt: a copy opens (with every record checked) and holds exactly what was
    // acknowledged; the failed commit left nothing behind.
    let (_keep, copy) = copy_out(&dir);
    let ids = recovered_ids(&copy);
    assert_eq!(ids, stored, "failed id {failed_id} must not be stored");
}
