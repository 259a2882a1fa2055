//! Paged persistent messages survive SIGKILL of the real binary and come back in order;
//! paged non-persistent ones do not (they never promised to). Recovery loads only part of a
//! large backlog and reads the rest back from disk as the consumer goes, and an acked
//! message read back that way stays gone after the next crash.

mod durable_common;

use std::time::Duration;

use durable_common::{Broker, Frame};

const N: usize = 1500;

fn body(i: usize) -> Vec<u8> {
    let mut b = format!("{i:08}:").into_bytes();
    b.resize(4096, b'k');
    b
}

fn index_of(f: &Frame) -> usize {
    f.body_str()[..8].parse().expect("numbered body")
}

fn config(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let path = tmp.path().join("paging.toml");
    // 1 MiB of memory for 6 MiB of messages; recovery then loads at most half of that.
    std::fs::write(
        &path,
        "[broker]\nglobal-max-size = 1048576\n\n[[address-settings]]\nmatch = \"#\"\npage-size-bytes = 65536\n",
    )
    .expect("config");
    path
}

#[test]
fn paged_persistent_messages_survive_sigkill_in_order_and_acked_ones_stay_gone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let cfg = config(&tmp);
    let broker = Broker::start_with_config(&dir, &cfg);
    let mut p = broker.client();
    for i in 0..N {
        let persistent = if i % 3 == 2 { "false" } else { "true" };
        p.send_confirmed(
            "/queue/pr.q",
            &[("persistent", persistent)],
            &body(i),
            &format!("r{i}"),
        );
    }
    broker.kill();

    let persistent: Vec<usize> = (0..N).filter(|i| i % 3 != 2).collect();
    let broker = Broker::start_with_config(&dir, &cfg);
    assert!(
        broker
            .stderr()
            .contains("left part of the queue on disk at recovery"),
        "recovery loaded only part of the backlog; stderr:\n{}",
        broker.stderr()
    );
    let mut c = broker.client();
    c.subscribe(
        "/queue/pr.q",
        "s",
        "client-individual",
        &[("activemq.prefetchSize", "16")],
    );
    // Take and acknowledge the first half, every ACK confirmed.
    let half = persistent.len() / 2;
    let mut early = std::collections::VecDeque::new();
    for (k, want) in persistent[..half].iter().enumerate() {
        let m = early.pop_front().unwrap_or_else(|| c.expect_frame());
        assert_eq!(m.command, "MESSAGE", "{m:?}");
        assert_eq!(index_of(&m), *want, "in order, persistent ones only");
        assert_eq!(m.body, body(*want));
        let ack = m.header("ack").expect("ack header").to_string();
        let receipt = format!("a{k}");
        c.send_frame("ACK", &[("id", &ack), ("receipt", &receipt)], b"")
            .expect("write ACK");
        // Messages of the window may arrive before the receipt.
        loop {
            let f = c.expect_frame();
            if f.command == "RECEIPT" {
                assert_eq!(f.header("receipt-id"), Some(receipt.as_str()));
                break;
            }
            early.push_back(f);
        }
    }
    broker.kill();

    let broker = Broker::start_with_config(&dir, &cfg);
    let mut c = broker.client();
    c.subscribe("/queue/pr.q", "s", "auto", &[]);
    let rest: Vec<usize> = c
        .drain(Duration::from_secs(1), Duration::from_secs(60))
        .iter()
        .map(index_of)
        .collect();
    assert_eq!(
        rest,
        persistent[half..].to_vec(),
        "the unacked rest, in order; nothing acked came back"
    );
    broker.kill();
}
