//! kill -9 during COMMITs, over many rounds, against the real binary: every transaction comes
//! back whole or not at all, every COMMIT that was confirmed is there, and every message a
//! consumer saw before the crash is there too (nothing of a transaction is visible before its
//! journal batch is stored).

mod durable_common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use durable_common::{Broker, Client};

/// Messages per transaction.
const PER_TX: usize = 5;
/// Start/load/SIGKILL rounds.
const ROUNDS: usize = 6;
const QUEUE: &str = "/queue/tx.crash";

fn tx_of(body: &str) -> u64 {
    body.split('-')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unexpected body {body:?}"))
}

/// Commits transactions of PER_TX persistent messages until the broker goes away.
fn producer(
    addr: std::net::SocketAddr,
    next_tx: Arc<AtomicU64>,
    committed: Arc<Mutex<HashSet<u64>>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut c) = Client::try_connect(addr, &[]) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let tx = next_tx.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{tx}");
        if c.send_frame("BEGIN", &[("transaction", &name)], b"")
            .is_err()
        {
            return;
        }
        for i in 0..PER_TX {
            let body = format!("{tx}-{i}");
            let h = [("destination", QUEUE), ("transaction", name.as_str())];
            if c.send_frame("SEND", &h, body.as_bytes()).is_err() {
                return;
            }
        }
        let receipt = format!("c{tx}");
        let h = [
            ("transaction", name.as_str()),
            ("receipt", receipt.as_str()),
        ];
        if c.send_frame("COMMIT", &h, b"").is_err() {
            return;
        }
        match c.read_frame(Duration::from_secs(10)) {
            Ok(Some(f)) if f.command == "RECEIPT" => {
                assert_eq!(f.header("receipt-id"), Some(receipt.as_str()), "{f:?}");
                committed.lock().unwrap().insert(tx);
            }
            Ok(Some(f)) => panic!("producer: unexpected frame {f:?}"),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Receives (and never acks) until the broker goes away, noting which transactions it saw.
fn watcher(addr: std::net::SocketAddr, seen: Arc<Mutex<HashSet<u64>>>, stop: Arc<AtomicBool>) {
    let Ok(mut c) = Client::try_connect(addr, &[]) else {
        return;
    };
    c.subscribe(
        QUEUE,
        "w",
        "client-individual",
        &[("activemq.prefetchSize", "1000000")],
    );
    while !stop.load(Ordering::SeqCst) {
        match c.read_frame(Duration::from_millis(200)) {
            Ok(Some(f)) if f.command == "MESSAGE" => {
                seen.lock().unwrap().insert(tx_of(&f.body_str()));
            }
            Ok(Some(f)) => panic!("watcher: unexpected frame {f:?}"),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

#[test]
fn sigkill_during_commits_leaves_every_transaction_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let next_tx = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    for round in 0..ROUNDS {
        let broker = Broker::start(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            let addr = broker.addr;
            thread::spawn(move || watcher(addr, seen, stop))
        };
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (next, done, stop) = (
                    Arc::clone(&next_tx),
                    Arc::clone(&committed),
                    Arc::clone(&stop),
                );
                let addr = broker.addr;
                thread::spawn(move || producer(addr, next, done, stop))
            })
            .collect();
        // Let some transactions commit, then kill at a point that varies by round.
        let started = next_tx.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while next_tx.load(Ordering::SeqCst) < started + 40 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(7 * round as u64 + 3));
        broker.kill();
        stop.store(true, Ordering::SeqCst);
        for p in producers {
            p.join().expect("producer thread");
        }
        w.join().expect("watcher thread");
    }
    let broker = Broker::start(&data);
    let mut c = broker.client();
    c.subscribe(QUEUE, "d", "auto", &[]);
    let drained = c.drain(Duration::from_secs(2), Duration::from_secs(120));
    let mut per_tx: BTreeMap<u64, usize> = BTreeMap::new();
    for f in &drained {
        *per_tx.entry(tx_of(&f.body_str())).or_default() += 1;
    }
    let broken: Vec<_> = per_tx.iter().filter(|(_, n)| **n != PER_TX).collect();
    assert!(
        broken.is_empty(),
        "transactions not whole after SIGKILL (tx, messages): {broken:?}"
    );
    let committed = committed.lock().unwrap();
    assert!(
        committed.len() >= ROUNDS,
        "too few commits to test anything: {}",
        committed.len()
    );
    let lost: Vec<_> = committed
        .iter()
        .filter(|t| !per_tx.contains_key(t))
        .collect();
    assert!(lost.is_empty(), "confirmed transactions lost: {lost:?}");
    let seen = seen.lock().unwrap();
    let unstored: Vec<_> = seen.iter().filter(|t| !per_tx.contains_key(t)).collect();
    assert!(
        unstored.is_empty(),
        "a consumer saw messages of transactions that were never stored: {unstored:?}"
    );
}
