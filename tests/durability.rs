//! Durability of the real `wrenmq` binary: what a producer was told is stored survives SIGKILL
//! and SIGTERM, acknowledged messages stay gone, durable subscriptions outlive their
//! subscriber and the broker, the journal does not grow without bound, and a journal or
//! config the broker cannot use is refused without being touched.

mod durable_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use durable_common::{Broker, Client, Frame, file_bytes};

/// Quiet period that ends a drain.
const QUIET: Duration = Duration::from_secs(1);
/// Upper bound on any drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

fn data_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    tmp.path().join("data")
}

fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(Frame::body_str).collect()
}

fn is_redelivered(f: &Frame) -> bool {
    f.header("redelivered") == Some("true")
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL under load
// ---------------------------------------------------------------------------------------------

/// What the consumer saw before the crash.
#[derive(Default)]
struct ConsumerLog {
    /// Bodies in the order they were received.
    received: Vec<String>,
    /// Bodies for which an ACK was written (confirmed or not). An ACK whose RECEIPT did not
    /// arrive before the crash is in doubt: the message may or may not come back.
    ack_sent: HashSet<String>,
    /// Bodies whose ACK's RECEIPT arrived: these must never come back.
    acked: HashSet<String>,
    /// Every message received before this index was received before an ACK whose RECEIPT
    /// arrived was sent. The broker records a delivery (detached) before writing the MESSAGE,
    /// and the journal commits in submission order, so those deliveries are durable.
    durable_delivery_horizon: usize,
}

const PRODUCERS: usize = 2;
const PER_PRODUCER: usize = 1000;
const KILL_AFTER_RECEIPTS: usize = 1200;

fn crash_producer(
    addr: std::net::SocketAddr,
    p: usize,
    confirmed: Arc<Mutex<HashSet<String>>>,
    progress: Arc<AtomicUsize>,
) {
    let Ok(mut c) = Client::try_connect(addr, &[]) else {
        return;
    };
    const BATCH: usize = 16;
    let mut i = 0;
    while i < PER_PRODUCER {
        let ids: Vec<String> = (i..(i + BATCH).min(PER_PRODUCER))
            .map(|n| format!("p{p}-{n}"))
            .collect();
        for id in &ids {
            // No `persistent` header: the default address setting makes it persistent.
            let h = [("destination", "/queue/crash"), ("receipt", id.as_str())];
            if c.send_frame("SEND", &h, id.as_bytes()).is_err() {
                return;
            }
        }
        for _ in &ids {
            match c.read_frame(Duration::from_secs(10)) {
                Ok(Some(f)) if f.command == "RECEIPT" => {
                    let id = f.header("receipt-id").unwrap_or_default().to_string();
                    confirmed.lock().unwrap().insert(id);
                    progress.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Some(f)) => panic!("producer {p}: unexpected frame {f:?}"),
                // Broker gone (or stuck): stop producing.
                Ok(None) | Err(_) => return,
            }
        }
        i += BATCH;
    }
}

fn crash_consumer(
    addr: std::net::SocketAddr,
    log: Arc<Mutex<ConsumerLog>>,
    ready: mpsc::Sender<()>,
) {
    let mut c = Client::connect(addr, &[]);
    c.subscribe("/queue/crash", "c", "client-individual", &[]);
    let _ = ready.send(());
    // receipt id -> (body, messages received when the ACK was sent)
    let mut pending: HashMap<String, (String, usize)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let f = match c.read_frame(Duration::from_millis(500)) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(_) => return,
        };
        match f.command.as_str() {
            "MESSAGE" => {
                let body = f.body_str();
                let n = body
                    .rsplit('-')
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0);
                let received = {
                    let mut l = log.lock().unwrap();
                    l.received.push(body.clone());
                    l.received.len()
                };
                // Ack two of every three; leave the rest delivered but unacknowledged.
                if n % 3 != 0 {
                    let ack = f.header("ack").expect("client-individual MESSAGE has ack");
                    let receipt = format!("ack:{body}");
                    let h = [("id", ack), ("receipt", receipt.as_str())];
                    log.lock().unwrap().ack_sent.insert(body.clone());
                    if c.send_frame("ACK", &h, b"").is_err() {
                        return;
                    }
                    pending.insert(receipt, (body, received));
                }
            }
            "RECEIPT" => {
                let id = f.header("receipt-id").unwrap_or_default();
                let (body, received) = pending
                    .remove(id)
                    .unwrap_or_else(|| panic!("receipt for no ACK: {f:?}"));
                let mut l = log.lock().unwrap();
                l.acked.insert(body);
                l.durable_delivery_horizon = l.durable_delivery_horizon.max(received);
            }
            _ => panic!("consumer: unexpected frame {f:?}"),
        }
    }
}

#[test]
fn sigkill_under_load_keeps_every_confirmed_message_and_no_acked_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);
    let addr = broker.addr;

    let log = Arc::new(Mutex::new(ConsumerLog::default()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let consumer = {
        let log = Arc::clone(&log);
        thread::spawn(move || crash_consumer(addr, log, ready_tx))
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("consumer subscribed");

    let confirmed = Arc::new(Mutex::new(HashSet::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let confirmed = Arc::clone(&confirmed);
            let progress = Arc::clone(&progress);
            thread::spawn(move || crash_producer(addr, p, confirmed, progress))
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.load(Ordering::SeqCst) < KILL_AFTER_RECEIPTS {
        assert!(
            Instant::now() < deadline,
            "producers got only {} receipts in 30 s",
            progress.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(5));
    }
    broker.kill();
    for p in producers {
        p.join().expect("producer thread");
    }
    consumer.join().expect("consumer thread");

    let confirmed = confirmed.lock().unwrap().clone();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let sent_ids: HashSet<String> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |n| format!("p{p}-{n}")))
        .collect();

    let broker = Broker::start(&dir);
    let mut drain = broker.client();
    drain.subscribe("/queue/crash", "d", "auto", &[]);
    let frames = drain.drain(QUIET, DRAIN_LIMIT);
    let got = bodies(&frames);

    let mut seen = HashSet::new();
    let dups: Vec<&String> = got.iter().filter(|b| !seen.insert(b.as_str())).collect();
    assert!(dups.is_empty(), "duplicated after restart: {dups:?}");
    let unknown: Vec<&String> = got.iter().filter(|b| !sent_ids.contains(*b)).collect();
    assert!(unknown.is_empty(), "never sent: {unknown:?}");

    let resurrected: Vec<&String> = got.iter().filter(|b| log.acked.contains(*b)).collect();
    assert!(
        resurrected.is_empty(),
        "{} messages whose ACK was confirmed came back: {:?}",
        resurrected.len(),
        &resurrected[..resurrected.len().min(10)]
    );
    let mut lost: Vec<&String> = confirmed
        .iter()
        .filter(|b| !log.ack_sent.contains(*b) && !seen.contains(b.as_str()))
        .collect();
    lost.sort();
    assert!(
        lost.is_empty(),
        "{} messages lost whose SEND was confirmed and that were never acked: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );

    let durably_delivered: HashSet<&str> = log.received[..log.durable_delivery_horizon]
        .iter()
        .map(String::as_str)
        .collect();
    let not_marked: Vec<String> = frames
        .iter()
        .filter(|f| durably_delivered.contains(f.body_str().as_str()) && !is_redelivered(f))
        .map(Frame::body_str)
        .collect();
    println!(
        "crash test: {} SEND receipts, {} received, {} ACKs sent, {} ACK receipts, \
         {} recovered, {} delivered before the crash and recovered without redelivered:true",
        confirmed.len(),
        log.received.len(),
        log.ack_sent.len(),
        log.acked.len(),
        got.len(),
        not_marked.len()
    );
    assert!(
        not_marked.is_empty(),
        "{} messages delivered (and durably recorded as delivered) before the crash came back \
         without redelivered:true, e.g. {:?}",
        not_marked.len(),
        &not_marked[..not_marked.len().min(10)]
    );
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// 2. Durable topic subscriptions
// ---------------------------------------------------------------------------------------------

const DURABLE_SUB: (&str, &str) = ("durable-subscription-name", "sub1");

fn durable_client(broker: &Broker) -> Client {
    Client::connect(broker.addr, &[("client-id", "c1")])
}

#[test]
fn durable_subscription_survives_subscriber_absence_and_sigkill() {
    const N: usize = 50;
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);

    let broker = Broker::start(&dir);
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/x", "s", "client-individual", &[DURABLE_SUB]);
    // A plain UNSUBSCRIBE (no durable header) detaches but keeps the subscription.
    sub.send_frame("UNSUBSCRIBE", &[("id", "s"), ("receipt", "u")], b"")
        .unwrap();
    sub.expect_receipt("u");
    sub.disconnect();

    let mut producer = broker.client();
    for i in 0..N {
        let id = format!("m{i}");
        producer.send_confirmed("/topic/x", &[("persistent", "true")], id.as_bytes(), &id);
    }
    broker.kill();

    // Everything sent while the subscriber was away, in order.
    let broker = Broker::start(&dir);
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/x", "s", "client-individual", &[DURABLE_SUB]);
    let frames = sub.drain(QUIET, DRAIN_LIMIT);
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&frames), expected);
    // Ack the first half; the rest stay delivered and unacknowledged.
    for (i, f) in frames.iter().take(N / 2).enumerate() {
        let r = format!("a{i}");
        sub.send_frame(
            "ACK",
            &[("id", f.header("ack").unwrap()), ("receipt", &r)],
            b"",
        )
        .unwrap();
        sub.expect_receipt(&r);
    }
    // UNSUBSCRIBE naming the durable subscription deletes it, unacked messages included.
    sub.send_frame(
        "UNSUBSCRIBE",
        &[("id", "s"), DURABLE_SUB, ("receipt", "del")],
        b"",
    )
    .unwrap();
    sub.expect_receipt("del");
    // No DISCONNECT, no grace: the deletion must be durable once its RECEIPT is out.
    broker.kill();

    let broker = Broker::start(&dir);
    let mut producer = broker.client();
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/x", "s", "client-individual", &[DURABLE_SUB]);
    let leftovers = sub.drain(QUIET, DRAIN_LIMIT);
    assert!(
        leftovers.is_empty(),
        "a deleted durable subscription delivered {:?}",
        bodies(&leftovers)
    );
    // The new subscription starts empty and works.
    producer.send_confirmed("/topic/x", &[], b"fresh", "fresh");
    let f = sub.expect_frame();
    assert_eq!(
        (f.command.as_str(), f.body_str().as_str()),
        ("MESSAGE", "fresh")
    );
    assert!(!is_redelivered(&f));
    broker.kill();
}

#[test]
fn durable_subscription_created_just_before_sigkill_exists_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);
    let mut sub = durable_client(&broker);
    // The SUBSCRIBE's RECEIPT must mean the subscription is stored.
    sub.subscribe("/topic/y", "s", "auto", &[DURABLE_SUB]);
    broker.kill();

    let broker = Broker::start(&dir);
    let mut producer = broker.client();
    producer.send_confirmed("/topic/y", &[], b"while-away", "r1");
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/y", "s", "auto", &[DURABLE_SUB]);
    let frames = sub.drain(QUIET, DRAIN_LIMIT);
    assert_eq!(bodies(&frames), ["while-away"]);
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// 3. Graceful shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_keeps_unacked_persistent_messages_and_drops_non_persistent_ones() {
    const N: usize = 40;
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);

    let mut producer = broker.client();
    for i in 0..N {
        // Even: persistent by default; odd: explicitly not persistent.
        let id = format!("m{i}");
        let extra: &[(&str, &str)] = if i % 2 == 0 {
            &[]
        } else {
            &[("persistent", "false")]
        };
        producer.send_confirmed("/queue/q3", extra, id.as_bytes(), &id);
    }
    let mut consumer = broker.client();
    consumer.subscribe("/queue/q3", "c", "client-individual", &[]);
    let frames = consumer.drain(QUIET, DRAIN_LIMIT);
    assert_eq!(frames.len(), N);
    // Ack the first ten (five persistent ones among them).
    for (i, f) in frames.iter().take(10).enumerate() {
        let r = format!("a{i}");
        consumer
            .send_frame(
                "ACK",
                &[("id", f.header("ack").unwrap()), ("receipt", &r)],
                b"",
            )
            .unwrap();
        consumer.expect_receipt(&r);
    }

    // The consumer and the producer are still connected when the broker is told to stop.
    let exit = broker.terminate();
    assert!(
        exit.status.success(),
        "SIGTERM exit status {}; stderr:\n{}",
        exit.status,
        exit.stderr
    );
    drop((producer, consumer));

    let broker = Broker::start(&dir);
    let mut c = broker.client();
    c.subscribe("/queue/q3", "d", "auto", &[]);
    let frames = c.drain(QUIET, DRAIN_LIMIT);
    let expected: Vec<String> = (10..N).step_by(2).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&frames), expected);
    for f in &frames {
        assert!(is_redelivered(f), "delivered before shutdown: {f:?}");
        assert_eq!(f.header("persistent"), Some("true"), "{f:?}");
    }
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// 4. Journal size across fill-and-drain cycles
// ---------------------------------------------------------------------------------------------

#[test]
fn journal_size_stays_bounded_over_fill_and_drain_cycles() {
    const CYCLES: usize = 10;
    const MESSAGES: usize = 2000;
    const BATCH: usize = 100;
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);
    let body = vec![b'x'; 1024];
    let mut producer = broker.client();
    let mut consumer = broker.client();
    consumer.subscribe("/queue/big", "c", "client", &[]);

    let mut sizes = Vec::new();
    for cycle in 0..CYCLES {
        // A RECEIPT is sent once every earlier write of the connection is stored, so one on
        // the last SEND of each batch confirms the whole batch. (A receipt on every SEND would
        // cost one fsync per message on a single connection: correct, but slow for a test.)
        for batch in 0..MESSAGES / BATCH {
            for _ in 0..BATCH - 1 {
                let h = [("destination", "/queue/big"), ("persistent", "true")];
                producer.send_frame("SEND", &h, &body).unwrap();
            }
            let r = format!("{cycle}-{batch}");
            producer.send_confirmed("/queue/big", &[("persistent", "true")], &body, &r);
        }
        // Cumulative ACK every 100 messages keeps the window open; MESSAGEs and the ACKs'
        // RECEIPTs interleave. The cycle ends when the last ACK is confirmed.
        let (mut received, mut confirmed) = (0, 0);
        while confirmed < MESSAGES / BATCH {
            let f = consumer.expect_frame();
            match f.command.as_str() {
                "MESSAGE" => {
                    received += 1;
                    if received % BATCH == 0 {
                        let r = format!("ack-{cycle}-{received}");
                        let h = [("id", f.header("ack").unwrap()), ("receipt", r.as_str())];
                        consumer.send_frame("ACK", &h, b"").unwrap();
                    }
                }
                "RECEIPT" => confirmed += 1,
                _ => panic!("unexpected {f:?}"),
            }
        }
        assert_eq!(received, MESSAGES);
        sizes.push(std::fs::metadata(broker.journal_path()).unwrap().len());
    }
    println!("journal.redb size after each cycle (bytes): {sizes:?}");
    let (first, last) = (sizes[0], sizes[CYCLES - 1]);
    println!("cycle 1: {first} bytes, cycle {CYCLES}: {last} bytes");
    assert!(
        last <= 2 * first,
        "journal grew from {first} to {last} bytes over {CYCLES} cycles: {sizes:?}"
    );
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// 5. Refusing a journal it cannot use
// ---------------------------------------------------------------------------------------------

#[test]
fn garbage_journal_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.redb");
    // Deterministic pseudo-random garbage.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let garbage: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &garbage).unwrap();

    let exit = Broker::run_expecting_exit(&dir, None);
    assert!(!exit.status.success(), "started on a garbage journal");
    let canonical = path.canonicalize().unwrap();
    assert!(
        exit.stderr.contains(&canonical.display().to_string()),
        "stderr does not name the file:\n{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("not a WrenMQ journal") && exit.stderr.contains("not a redb database"),
        "stderr does not give the reason:\n{}",
        exit.stderr
    );
    assert!(
        file_bytes(&path) == garbage,
        "the refused file was modified"
    );
}

#[test]
fn journal_in_use_by_another_broker_is_refused_and_the_first_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);
    let mut producer = broker.client();
    producer.send_confirmed("/queue/lock", &[], b"before", "r1");
    // Let the writer settle (nothing else is pending once the receipt is out).
    let before = file_bytes(&broker.journal_path());

    let exit = Broker::run_expecting_exit(&dir, None);
    assert!(
        !exit.status.success(),
        "a second broker opened a journal in use"
    );
    let canonical = broker.journal_path().canonicalize().unwrap();
    assert!(
        exit.stderr.contains(&canonical.display().to_string()),
        "stderr does not name the file:\n{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("already open") && exit.stderr.contains("locked"),
        "stderr does not give the reason:\n{}",
        exit.stderr
    );
    assert!(
        file_bytes(&broker.journal_path()) == before,
        "the second broker modified the journal"
    );

    // The first broker is unaffected.
    producer.send_confirmed("/queue/lock", &[], b"after", "r2");
    let mut consumer = broker.client();
    consumer.subscribe("/queue/lock", "c", "auto", &[]);
    let frames = consumer.drain(QUIET, DRAIN_LIMIT);
    assert_eq!(bodies(&frames), ["before", "after"]);
    broker.kill();
}

// ---------------------------------------------------------------------------------------------
// 6. Bad configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn config_with_unknown_key_is_refused_naming_file_key_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let config = tmp.path().join("broker.toml");
    std::fs::write(&config, "[journal]\nsync = true\nsynk = false\n").unwrap();
    let exit = Broker::run_expecting_exit(&dir, Some(&config));
    assert_eq!(exit.status.code(), Some(2), "stderr:\n{}", exit.stderr);
    let line = exit
        .stderr
        .lines()
        .find(|l| l.contains("synk"))
        .unwrap_or_else(|| panic!("no line names the key:\n{}", exit.stderr));
    assert!(line.contains(&config.display().to_string()), "{line}");
    assert!(line.contains("journal.synk"), "{line}");
    assert!(line.contains("unknown field"), "{line}");
    assert!(!dir.join("journal.redb").exists(), "a journal was created");
}

/// Which of `real_journal`'s messages has a body of `Q`s instead of `y`s, so a test can damage
/// that one message. A fresh broker numbers messages from 1 in the order it routes them, so
/// this is message id `MARKED + 1`.
const MARKED: usize = 12;

/// A real journal (20 messages of 1000 bytes, clean shutdown) for the damage tests.
fn real_journal(dir: &std::path::Path) -> std::path::PathBuf {
    let broker = Broker::start(dir);
    let mut p = broker.client();
    for i in 0..19 {
        let body = vec![if i == MARKED { b'Q' } else { b'y' }; 1000];
        p.send_frame("SEND", &[("destination", "/queue/dmg")], &body)
            .unwrap();
    }
    p.send_confirmed("/queue/dmg", &[], &[b'y'; 1000], "r");
    let path = broker.journal_path();
    let exit = broker.terminate();
    assert!(exit.status.success(), "{}", exit.stderr);
    path
}

#[test]
fn damaged_redb_journal_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let path = real_journal(&dir);
    let clean = file_bytes(&path);
    // Damage that does not depend on where redb placed the pages: its header (right after
    // the magic bytes), and every page after the first.
    for (what, range) in [
        ("header", 9..512),
        ("every page after the first", 4096..clean.len()),
    ] {
        let mut bytes = clean.clone();
        for i in range {
            bytes[i] = (i as u8).wrapping_mul(31) ^ 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        let exit = Broker::run_expecting_exit(&dir, None);
        assert!(!exit.status.success(), "started with damaged {what}");
        let canonical = path.canonicalize().unwrap();
        let line = exit
            .stderr
            .lines()
            .find(|l| l.contains("cannot open the journal"))
            .unwrap_or_else(|| panic!("damaged {what}: no journal error:\n{}", exit.stderr));
        assert!(line.contains(&canonical.display().to_string()), "{line}");
        assert!(line.contains("is corrupt"), "{line}");
        assert!(
            file_bytes(&path) == bytes,
            "damaged {what}: the refused file was modified"
        );
    }
}

/// redb verifies page checksums only in `check_integrity`, never on a normal read, so a
/// flipped byte inside a stored message is caught by the journal's per-record CRC32: the broker
/// refuses to start, names the file, the damaged message and the reason, and leaves the file
/// exactly as it found it (no delivery of the damaged body, no silent drop of the message).
#[test]
fn damaged_message_body_is_not_delivered_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let path = real_journal(&dir);
    let mut bytes = file_bytes(&path);
    let at = bytes
        .windows(1000)
        .position(|w| w.iter().all(|&b| b == b'Q'))
        .expect("the marked stored body");
    bytes[at + 500] = b'Z';
    std::fs::write(&path, &bytes).unwrap();

    let exit = match Broker::run_or_start(&dir) {
        Err(exit) => exit,
        Ok(broker) => {
            let mut c = broker.client();
            c.subscribe("/queue/dmg", "d", "auto", &[]);
            let frames = c.drain(QUIET, DRAIN_LIMIT);
            let damaged = frames.iter().filter(|f| f.body.contains(&b'Z')).count();
            broker.kill();
            panic!(
                "started on a journal with a damaged message body ({damaged} damaged bodies delivered)"
            );
        }
    };
    assert!(!exit.status.success(), "{}", exit.stderr);
    let canonical = path.canonicalize().unwrap();
    let line = exit
        .stderr
        .lines()
        .find(|l| l.contains("cannot open the journal"))
        .unwrap_or_else(|| panic!("no journal error:\n{}", exit.stderr));
    assert!(line.contains(&canonical.display().to_string()), "{line}");
    assert!(line.contains("is corrupt"), "{line}");
    assert!(
        line.contains(&format!("message {}: checksum mismatch", MARKED + 1)),
        "{line}"
    );
    assert!(file_bytes(&path) == bytes, "the refused file was modified");
}

/// A durable subscription deleted and made again under the same name starts empty, also
/// after a SIGKILL: nothing acked or deleted with its earlier life comes back.
#[test]
fn recreated_durable_subscription_gets_nothing_of_its_earlier_life() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let broker = Broker::start(&dir);
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/life", "s", "client-individual", &[DURABLE_SUB]);
    let mut producer = broker.client();
    for i in 0..3 {
        let id = format!("old{i}");
        producer.send_confirmed("/topic/life", &[], id.as_bytes(), &id);
    }
    let frames = sub.drain(QUIET, DRAIN_LIMIT);
    assert_eq!(bodies(&frames), ["old0", "old1", "old2"]);
    let ack = frames[0].header("ack").unwrap().to_string();
    sub.send_frame("ACK", &[("id", &ack), ("receipt", "a")], b"")
        .unwrap();
    sub.expect_receipt("a");
    // UNSUBSCRIBE with the durable header deletes it, with the two unacked messages.
    sub.send_frame(
        "UNSUBSCRIBE",
        &[("id", "s"), ("receipt", "u"), DURABLE_SUB],
        b"",
    )
    .unwrap();
    sub.expect_receipt("u");
    sub.subscribe("/topic/life", "s2", "client-individual", &[DURABLE_SUB]);
    producer.send_confirmed("/topic/life", &[], b"new", "new");
    assert_eq!(bodies(&sub.drain(QUIET, DRAIN_LIMIT)), ["new"]);
    broker.kill();

    let broker = Broker::start(&dir);
    let mut sub = durable_client(&broker);
    sub.subscribe("/topic/life", "s", "client-individual", &[DURABLE_SUB]);
    assert_eq!(bodies(&sub.drain(QUIET, DRAIN_LIMIT)), ["new"]);
    broker.kill();
}
