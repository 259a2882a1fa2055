//! Retained streams across a crash of the real `wrenmq` binary (SIGKILL): retained messages
//! come back at the offsets consumers saw, offsets go on counting from there, a named
//! consumer's stored offset survives, and under concurrent producers no offset a consumer
//! saw is given to another message, nor is a confirmed message lost.

mod durable_common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use durable_common::{Broker, Client, Frame};

const QUIET: Duration = Duration::from_millis(700);
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

fn setup(tmp: &tempfile::TempDir) -> (PathBuf, PathBuf) {
    let config = tmp.path().join("broker.toml");
    std::fs::write(
        &config,
        r##"
[[address-settings]]
match = "stream.#"
default-non-destructive = true
"##,
    )
    .expect("write config");
    (tmp.path().join("data"), config)
}

fn start(data: &Path, config: &Path) -> Broker {
    Broker::start_with_config(data, config)
}

fn offset(f: &Frame) -> u64 {
    f.header("x-stream-offset")
        .unwrap_or_else(|| panic!("no x-stream-offset in {f:?}"))
        .parse()
        .expect("numeric offset")
}

fn read_from(broker: &Broker, dest: &str, start: &str) -> Vec<(u64, String)> {
    let mut c = broker.client();
    c.subscribe(dest, "r", "auto", &[("x-stream-offset", start)]);
    let got = c.drain(QUIET, DRAIN_LIMIT);
    got.iter().map(|f| (offset(f), f.body_str())).collect()
}

#[test]
fn retained_messages_keep_their_offsets_across_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, config) = setup(&tmp);
    let broker = start(&data, &config);
    let mut p = broker.client();
    for i in 0..10 {
        p.send_confirmed(
            "/queue/stream.log",
            &[],
            format!("m{i}").as_bytes(),
            &format!("s{i}"),
        );
    }
    let before = read_from(&broker, "/queue/stream.log", "first");
    let want: Vec<(u64, String)> = (0..10).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(before, want);
    broker.kill();

    let broker = start(&data, &config);
    let after = read_from(&broker, "/queue/stream.log", "first");
    assert_eq!(after, want, "consumed, yet retained, at the same offsets");
    let mut p = broker.client();
    p.send_confirmed("/queue/stream.log", &[], b"new", "s-new");
    assert_eq!(
        read_from(&broker, "/queue/stream.log", "last"),
        [(10, "new".to_string())],
        "offsets go on after the recovered ones"
    );
}

#[test]
fn offsets_of_messages_that_are_not_persistent_are_never_handed_out_again_after_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, config) = setup(&tmp);
    let broker = start(&data, &config);
    let mut p = broker.client();
    p.send_confirmed("/queue/stream.np", &[], b"kept", "s-kept");
    for i in 0..10 {
        p.send_confirmed(
            "/queue/stream.np",
            &[("persistent", "false")],
            format!("np{i}").as_bytes(),
            &format!("s{i}"),
        );
    }
    let seen = read_from(&broker, "/queue/stream.np", "first");
    assert_eq!(seen.len(), 11);
    let highest = seen.iter().map(|(o, _)| *o).max().expect("offsets");
    broker.kill();

    let broker = start(&data, &config);
    assert_eq!(
        read_from(&broker, "/queue/stream.np", "first"),
        [(0, "kept".to_string())],
        "only the persistent message survives"
    );
    let mut p = broker.client();
    p.send_confirmed(
        "/queue/stream.np",
        &[("persistent", "false")],
        b"after",
        "s-after",
    );
    let last = read_from(&broker, "/queue/stream.np", "last");
    assert_eq!(last.len(), 1);
    assert!(
        last[0].0 > highest,
        "offset {} was handed out before the crash (up to {highest})",
        last[0].0
    );
}

#[test]
fn a_stored_consumer_offset_survives_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, config) = setup(&tmp);
    let broker = start(&data, &config);
    let mut p = broker.client();
    for i in 0..10 {
        p.send_confirmed(
            "/queue/stream.track",
            &[],
            format!("m{i}").as_bytes(),
            &format!("s{i}"),
        );
    }
    let named = [("durable-subscription-name", "billing")];
    let mut c = Client::connect(broker.addr, &[("client-id", "app")]);
    let mut first = named.to_vec();
    first.push(("x-stream-offset", "first"));
    c.subscribe("/queue/stream.track", "s", "client", &first);
    let got = c.drain(QUIET, DRAIN_LIMIT);
    assert_eq!(got.len(), 10);
    // A cumulative ACK of offset 4, confirmed: the stored offset is on disk.
    let ack = got[4].header("ack").expect("ack id").to_string();
    c.send_frame("ACK", &[("id", ack.as_str()), ("receipt", "a4")], b"")
        .expect("write ACK");
    c.expect_receipt("a4");
    broker.kill();

    let broker = start(&data, &config);
    let mut c = Client::connect(broker.addr, &[("client-id", "app")]);
    c.subscribe("/queue/stream.track", "s", "client", &named);
    let resumed: Vec<u64> = c.drain(QUIET, DRAIN_LIMIT).iter().map(offset).collect();
    assert_eq!(resumed, [5, 6, 7, 8, 9], "resumes after the stored offset");
}

const PRODUCERS: usize = 2;
const PER_PRODUCER: usize = 400;

/// Concurrent producers, a consumer reading from `first`, SIGKILL part-way. After the
/// restart every offset the consumer saw holds the message it saw there, and every message
/// whose producer got its RECEIPT is in the stream: a client resuming after the last offset
/// it saw misses nothing that was confirmed.
#[test]
fn offsets_seen_before_a_crash_are_stable_and_nothing_confirmed_is_missed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, config) = setup(&tmp);
    let broker = start(&data, &config);
    let addr = broker.addr;
    let confirmed = Arc::new(Mutex::new(HashSet::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();

    let consumer = {
        let seen = Arc::clone(&seen);
        thread::spawn(move || {
            let Ok(mut c) = Client::try_connect(addr, &[]) else {
                return;
            };
            c.subscribe(
                "/queue/stream.crash",
                "r",
                "auto",
                &[("x-stream-offset", "first")],
            );
            while let Ok(Some(f)) = c.read_frame(Duration::from_secs(10)) {
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                s.insert(offset(&f), f.body_str());
            }
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let confirmed = Arc::clone(&confirmed);
            let progress = Arc::clone(&progress);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(addr, &[]) else {
                    return;
                };
                for i in 0..PER_PRODUCER {
                    let id = format!("p{p}-{i}");
                    let h = [
                        ("destination", "/queue/stream.crash"),
                        ("receipt", id.as_str()),
                    ];
                    if c.send_frame("SEND", &h, id.as_bytes()).is_err() {
                        return;
                    }
                    match c.read_frame(Duration::from_secs(10)) {
                        Ok(Some(f)) if f.command == "RECEIPT" => {
                            confirmed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(id);
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while progress.load(Ordering::Relaxed) < PRODUCERS * PER_PRODUCER / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "producers made no progress"
        );
        thread::sleep(Duration::from_millis(5));
    }
    broker.kill();
    for t in producers {
        let _ = t.join();
    }
    let _ = consumer.join();

    let broker = start(&data, &config);
    let after: BTreeMap<u64, String> = read_from(&broker, "/queue/stream.crash", "first")
        .into_iter()
        .collect();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        !seen.is_empty(),
        "the consumer saw something before the crash"
    );
    for (o, body) in &seen {
        assert_eq!(
            after.get(o),
            Some(body),
            "offset {o} changed across the crash"
        );
    }
    let present: HashSet<&String> = after.values().collect();
    let confirmed = confirmed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for id in &confirmed {
        assert!(
            present.contains(id),
            "confirmed {id} is missing after the crash"
        );
    }
    // Offsets only grow: one whose message's producer was never told it is stored may be
    // a gap after a crash, never another message.
    assert!(after.keys().max() >= seen.keys().max());
}
