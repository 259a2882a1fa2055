//! Simulated power cuts at every step of a run of group commits ([`super::power_cut`]): after
//! each, the journal must open, hold every message whose store was confirmed and not since
//! acknowledged, hold no message whose acknowledgement was confirmed, and hold none twice.
//!
//! The workload is what a broker hands its journal: messages routed to two queues (a
//! multicast address with two subscriptions, each message one body and two refs), each
//! SEND its own submit so that several share a group commit, and acknowledgements of earlier
//! messages on one queue or the other. A dry run counts the workload's mutating storage calls;
//! then the power goes at each of them in turn, under each [`Loss`] model.
//!
//! `WRENMQ_POWER_CUT_ROUNDS` (default 8) sets the workload's length; the cuts then number
//! about 3 × its storage calls. The campaign in docs/reliability.md runs it longer.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::power_cut::{Loss, PowerCut};
use super::*;

const QUEUES: [&str; 2] = ["sub-a", "sub-b"];
const PER_ROUND: u64 = 3;

fn queue(name: &str) -> QueueRecord {
    QueueRecord {
        name: name.into(),
        address: "t".into(),
        routing_type: RoutingKind::Multicast,
        filter: None,
        auto_created: false,
        durable_subscription: None,
        incarnation: 1,
        owner: None,
    }
}

fn put(id: u64) -> Vec<JournalOp> {
    let mut ops = vec![JournalOp::PutMessage(Arc::new(StoredMessage {
        id,
        address: "t".into(),
        destination: "/topic/t".into(),
        properties: vec![("k".into(), id.to_string())],
        body: bytes::Bytes::from(vec![b'x'; 200 + (id as usize % 7) * 300]),
        priority: 4,
        expires: 0,
        timestamp: 1,
        deliver_at: 0,
        large: None,
    }))];
    for q in QUEUES {
        ops.push(JournalOp::PutRef {
            queue: Arc::from(q),
            incarnation: 1,
            message_id: id,
        });
    }
    ops
}

fn ack(queue: &str, id: u64) -> Vec<JournalOp> {
    vec![JournalOp::DeleteRef {
        queue: Arc::from(queue),
        incarnation: 1,
        message_id: id,
    }]
}

/// What the workload was told: confirmed stores and acks, and every ack it attempted.
#[derive(Default)]
struct Told {
    attempted: BTreeSet<u64>,
    stored: BTreeSet<u64>,
    ack_attempted: BTreeSet<(usize, u64)>,
    acked: BTreeSet<(usize, u64)>,
}

fn rounds() -> u64 {
    std::env::var("WRENMQ_POWER_CUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn options(dir: &Path) -> JournalOptions {
    let mut opts = JournalOptions::new(dir);
    opts.buffer_timeout = Duration::from_micros(300);
    opts
}

/// A journal holding the two queues, written and synced normally: the disk before the run.
fn prepare(dir: &Path) {
    let (j, _) = Journal::open(options(dir)).expect("a new journal opens");
    let ops = QUEUES
        .iter()
        .map(|q| JournalOp::PutQueue(queue(q)))
        .collect();
    j.submit(ops).wait().expect("queue records");
    j.shutdown();
}

/// Runs the workload until it ends or a commit fails (the power went).
fn workload(j: &Journal, told: &mut Told) {
    for round in 0..rounds() {
        let ids = round * PER_ROUND + 1..=round * PER_ROUND + PER_ROUND;
        let stores: Vec<_> = ids
            .map(|id| {
                told.attempted.insert(id);
                (id, j.submit(put(id)))
            })
            .collect();
        // Acknowledge on sub-a what arrived two rounds ago, on sub-b every other of those.
        let mut acks = Vec::new();
        for id in told.stored.clone() {
            let age = round.saturating_sub((id - 1) / PER_ROUND);
            let which = match age {
                2 => Some(0),
                3 if id % 2 == 0 => Some(1),
                _ => None,
            };
            if let Some(q) = which {
                told.ack_attempted.insert((q, id));
                acks.push(((q, id), j.submit(ack(QUEUES[q], id))));
            }
        }
        let mut failed = false;
        for (id, c) in stores {
            match c.wait() {
                Ok(()) => {
                    told.stored.insert(id);
                }
                Err(_) => failed = true,
            }
        }
        for (key, c) in acks {
            match c.wait() {
                Ok(()) => {
                    told.acked.insert(key);
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            return;
        }
    }
}

/// One run: prepare, run with the power going at `cut_at`, bring the disk back as `loss`
/// says, reopen, check. Returns the storage calls the run made.
fn cut_and_check(cut_at: Option<u64>, loss: Loss) -> u64 {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    prepare(&dir);
    let cut = PowerCut::new(cut_at);
    let mut told = Told::default();
    match Journal::open_power_cut(options(&dir), Arc::clone(&cut)) {
        Ok((j, _)) => {
            workload(&j, &mut told);
            j.shutdown();
        }
        // The power went during the open itself.
        Err(e) => assert!(cut.happened(), "open failed without a power cut: {e}"),
    }
    let calls = cut.calls();
    let path = dir.join(FILE_NAME);
    std::fs::write(&path, cut.survivors(loss)).expect("write the surviving image");

    let context = format!("power cut at call {cut_at:?} of the run, {loss:?}");
    let (j, recovered) = match Journal::open(options(&dir)) {
        Ok(opened) => opened,
        Err(e) => panic!("{context}: the journal does not open: {e}"),
    };
    j.shutdown();
    let mut held: HashMap<usize, Vec<u64>> = HashMap::new();
    for q in &recovered.messages {
        let Some(qi) = QUEUES.iter().position(|n| *n == q.queue) else {
            panic!("{context}: a queue nobody created: {}", q.queue);
        };
        held.entry(qi)
            .or_default()
            .extend(q.refs.iter().map(|r| r.message.id));
    }
    for (qi, name) in QUEUES.iter().enumerate() {
        let ids = held.remove(&qi).unwrap_or_default();
        let set: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(
            set.len(),
            ids.len(),
            "{context}: {name} holds a message twice: {ids:?}"
        );
        for id in &told.stored {
            if !told.ack_attempted.contains(&(qi, *id)) {
                assert!(
                    set.contains(id),
                    "{context}: {name} lost stored message {id}"
                );
            }
        }
        for id in &set {
            assert!(
                told.attempted.contains(id),
                "{context}: {name} holds {id}, never sent"
            );
            assert!(
                !told.acked.contains(&(qi, *id)),
                "{context}: {name} gives back {id}, whose ack was confirmed"
            );
        }
    }
    calls
}

#[test]
fn every_power_cut_in_a_run_of_group_commits_keeps_what_was_confirmed() {
    let steps = cut_and_check(None, Loss::Unsynced);
    assert!(steps > 20, "the workload made only {steps} storage calls");
    let mut cuts = 0u64;
    for k in 1..=steps {
        for loss in [Loss::Unsynced, Loss::Torn, Loss::Random(k)] {
            cut_and_check(Some(k), loss);
            cuts += 1;
        }
    }
    eprintln!("{cuts} simulated power cuts over {steps} storage calls, all recovered");
}

#[test]
fn a_power_cut_while_the_journal_file_is_first_created_leaves_a_journal_that_opens() {
    // How many storage calls creating a journal makes.
    let steps = {
        let tmp = tempfile::tempdir().expect("temp dir");
        let cut = PowerCut::new(None);
        let (j, _) = Journal::open_power_cut(options(tmp.path()), Arc::clone(&cut))
            .expect("a new journal opens");
        j.shutdown();
        cut.calls()
    };
    assert!(steps > 0);
    let mut cuts = 0;
    for k in 1..=steps {
        for loss in [Loss::Unsynced, Loss::Torn, Loss::Random(k)] {
            let tmp = tempfile::tempdir().expect("temp dir");
            let cut = PowerCut::new(Some(k));
            if let Ok((j, _)) = Journal::open_power_cut(options(tmp.path()), Arc::clone(&cut)) {
                j.shutdown();
            }
            // The image belongs to the file being written when the power went: the journal's
            // temporary name if the cut came before it was renamed into place.
            let file = cut.file().unwrap_or_else(|| tmp.path().join(FILE_NAME));
            std::fs::write(&file, cut.survivors(loss)).expect("write the surviving image");
            match Journal::open(options(tmp.path())) {
                Ok((j, recovered)) => {
                    assert!(recovered.messages.is_empty() && recovered.queues.is_empty());
                    j.shutdown();
                }
                Err(e) => panic!("power cut at creation call {k} of {steps}, {loss:?}: {e}"),
            }
            cuts += 1;
        }
    }
    eprintln!("{cuts} simulated power cuts while creating a journal, all reopened");
}
