//! Three `wrenmq` processes as a cluster on loopback (docs/cluster.md): only the leader
//! serves clients (a follower relays them to it), a receipted message survives kill -9 of
//! the leader, a message delivered but not acked comes back `redelivered`, an acked one
//! never comes back, the killed node rejoins as a follower, and a fourth node joins and
//! leaves at run time.

mod durable_common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use durable_common::{Client, free_port};

/// How long the cluster may take to agree on a leader and open its listener.
const ELECTION: Duration = Duration::from_secs(30);

struct Node {
    id: u64,
    stomp: SocketAddr,
    admin: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let child = Command::new(env!("CARGO_BIN_EXE_wrenmq"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn wrenmq");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP or SIGCONT: a node that stops answering without its sockets closing, as
    /// behind a partition.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{sig} {pid}");
    }

    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(
    dir: &Path,
    id: u64,
    stomp: u16,
    admin: u16,
    cluster: &[(u64, u16)],
    extra: &str,
) -> PathBuf {
    let me = cluster.iter().find(|(i, _)| *i == id).expect("own port").1;
    let peers: Vec<String> = cluster
        .iter()
        .map(|(i, p)| format!("{{ id = {i}, address = \"127.0.0.1:{p}\" }}"))
        .collect();
    let text = format!(
        r#"
[broker]
name = "node-{id}"

[[acceptors]]
name = "stomp"
bind = "127.0.0.1:{stomp}"

[journal]
data-dir = "{data}"

[admin]
bind = "127.0.0.1:{admin}"

[cluster]
node-id = {id}
listen = "127.0.0.1:{me}"
peers = [{peers}]
{extra}
"#,
        data = dir.join(format!("node-{id}")).display(),
        peers = peers.join(", "),
    );
    let path = dir.join(format!("node-{id}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

/// A node's configuration for a cluster whose raft ports are `cluster`.
fn new_node(dir: &Path, id: u64, cluster: &[(u64, u16)]) -> Node {
    new_node_with(dir, id, cluster, "")
}

/// [`new_node`] with more configuration after `[cluster]` (`[cluster.tls]`).
fn new_node_with(dir: &Path, id: u64, cluster: &[(u64, u16)], extra: &str) -> Node {
    let (stomp, admin) = (free_port(), free_port());
    Node {
        id,
        stomp: SocketAddr::from(([127, 0, 0, 1], stomp)),
        admin: SocketAddr::from(([127, 0, 0, 1], admin)),
        config: write_config(dir, id, stomp, admin, cluster, extra),
        log: dir.join(format!("node-{id}.log")),
        child: None,
    }
}

/// Held by each test while its cluster runs: three nodes per test, one test at a time, so a
/// 2-core CI machine is not asked to run a dozen raft nodes at once (elections would then
/// fire from starvation alone, and a test is no client that retries).
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts nodes 1 to 3, holding [`ONE_CLUSTER_AT_A_TIME`] until the guard is dropped.
fn start_cluster(dir: &Path) -> (std::sync::MutexGuard<'static, ()>, Vec<Node>) {
    start_cluster_with(dir, "")
}

/// [`start_cluster`] with more configuration for every node.
fn start_cluster_with(dir: &Path, extra: &str) -> (std::sync::MutexGuard<'static, ()>, Vec<Node>) {
    let guard = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cluster: Vec<(u64, u16)> = (1..=3).map(|i| (i, free_port())).collect();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| new_node_with(dir, id, &cluster, extra))
        .collect();
    for n in &mut nodes {
        n.spawn();
    }
    (guard, nodes)
}

/// One HTTP/1.1 request (`Connection: close`) and its status and JSON body; `None` when
/// nothing listens or the answer is cut off.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(90))).ok()?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (_, json) = text.split_once("\r\n\r\n")?;
    Some((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

/// The one running node whose `/cluster/leader` answers 200: only the leader serves clients.
fn leader(nodes: &mut [Node]) -> usize {
    let deadline = Instant::now() + ELECTION;
    loop {
        let open: Vec<usize> = (0..nodes.len())
            .filter(|i| {
                nodes[*i].running()
                    && http(nodes[*i].admin, "GET", "/cluster/leader", None)
                        .is_some_and(|(status, _)| status == 200)
            })
            .collect();
        if open.len() == 1 {
            return open[0];
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| format!("--- node {}\n{}", n.id, n.log()))
                .collect();
            panic!(
                "not exactly one node serving clients within {ELECTION:?} (open: {open:?})\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every message `dest` holds, in order, read by a fresh auto-ack subscriber on `addr` until
/// nothing arrives for `quiet`.
fn drain(addr: SocketAddr, dest: &str, quiet: Duration) -> Vec<String> {
    let mut c = Client::connect(addr, &[]);
    c.subscribe(dest, "drain", "auto", &[]);
    recv_all(&mut c, quiet)
        .iter()
        .map(|m| m.body_str())
        .collect()
}

fn recv_all(c: &mut Client, quiet: Duration) -> Vec<durable_common::Frame> {
    c.drain(quiet, Duration::from_secs(30))
}

#[test]
fn receipted_messages_survive_kill_9_of_the_leader_and_acked_ones_stay_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let first = leader(&mut nodes);
    let followers: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    for f in &followers {
        let (status, body) =
            http(nodes[*f].admin, "GET", "/cluster/leader", None).expect("follower admin");
        assert_eq!(status, 503, "a follower is no leader: {body}");
        assert_eq!(body["leader"], nodes[first].id, "{body}");
    }

    let mut producer = Client::connect(nodes[first].stomp, &[]);
    for i in 0..20 {
        producer.send_confirmed(
            "/queue/orders",
            &[],
            format!("order {i}").as_bytes(),
            &format!("r{i}"),
        );
    }
    let mut consumer = Client::connect(nodes[first].stomp, &[]);
    consumer.subscribe(
        "/queue/orders",
        "s1",
        "client-individual",
        &[("activemq.prefetchSize", "5")],
    );
    let mut got = recv_all(&mut consumer, Duration::from_millis(500));
    assert_eq!(got.len(), 5, "prefetch of 5");
    // Ack the first two, each with a receipt: once receipted they must never come back. Each
    // ack frees a prefetch slot, so a further message may arrive before the receipt.
    for n in 0..2 {
        let ack = got[n].header("ack").expect("ack header").to_string();
        let r = format!("ack{n}");
        consumer
            .send_frame("ACK", &[("id", ack.as_str()), ("receipt", r.as_str())], b"")
            .expect("ACK");
        loop {
            let f = consumer.expect_frame();
            match f.command.as_str() {
                "MESSAGE" => got.push(f),
                "RECEIPT" => {
                    assert_eq!(f.header("receipt-id"), Some(r.as_str()));
                    break;
                }
                other => panic!("unexpected {other}: {f:?}"),
            }
        }
    }
    got.extend(recv_all(&mut consumer, Duration::from_millis(300)));
    assert_eq!(got.len(), 7, "five, then one more per ack");
    let acked: Vec<String> = got.iter().take(2).map(|m| m.body_str()).collect();
    let unacked: Vec<String> = got.iter().skip(2).map(|m| m.body_str()).collect();
    // The three unacked deliveries' counts are written without a waiter; give them a moment
    // to be committed before the crash.
    std::thread::sleep(Duration::from_millis(500));

    nodes[first].kill();
    let second = leader(&mut nodes);
    assert_ne!(second, first);

    let mut c = Client::connect(nodes[second].stomp, &[]);
    c.subscribe("/queue/orders", "s2", "auto", &[]);
    let back = recv_all(&mut c, Duration::from_secs(1));
    let bodies: Vec<String> = back.iter().map(|m| m.body_str()).collect();
    let want: Vec<String> = (0..20)
        .map(|i| format!("order {i}"))
        .filter(|b| !acked.contains(b))
        .collect();
    assert_eq!(
        bodies, want,
        "every receipted, unacked message, once, in order"
    );
    for m in &back {
        let redelivered = m.header("redelivered") == Some("true");
        assert_eq!(
            redelivered,
            unacked.contains(&m.body_str()),
            "redelivered marks exactly the delivered, unacked messages: {m:?}"
        );
    }

    // The killed node comes back as a follower: running, its client listener closed.
    nodes[first].spawn();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        nodes[first].running(),
        "the restarted node runs:\n{}",
        nodes[first].log()
    );
    assert_eq!(leader(&mut nodes), second, "the leader stays the leader");
}

/// A producer whose RECEIPT was lost with the leader retries its SEND on the new leader; with
/// `_AMQ_DUPL_ID` the retry is answered but not stored again, because the duplicate-id cache
/// is in the replicated journal, not in the dead leader's memory. A retry without the header
/// is a second message, as on a single broker.
#[test]
fn a_retried_send_with_a_duplicate_id_is_stored_once_across_a_failover() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let first = leader(&mut nodes);
    let mut p = Client::connect(nodes[first].stomp, &[]);
    p.send_confirmed("/queue/pay", &[("_AMQ_DUPL_ID", "pay-1")], b"pay 1", "r1");
    p.send_confirmed("/queue/pay", &[], b"no id", "r2");
    nodes[first].kill();
    let second = leader(&mut nodes);
    assert_ne!(second, first);
    let mut p = Client::connect(nodes[second].stomp, &[]);
    p.send_confirmed(
        "/queue/pay",
        &[("_AMQ_DUPL_ID", "pay-1")],
        b"pay 1",
        "r1-again",
    );
    p.send_confirmed("/queue/pay", &[], b"no id", "r2-again");
    p.send_confirmed("/queue/pay", &[("_AMQ_DUPL_ID", "pay-2")], b"pay 2", "r3");
    let got = drain(nodes[second].stomp, "/queue/pay", Duration::from_secs(1));
    assert_eq!(got, ["pay 1", "no id", "no id", "pay 2"]);
}

#[test]
fn a_leader_cut_off_from_the_majority_answers_no_receipt_and_steps_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let first = leader(&mut nodes);
    let mut producer = Client::connect(nodes[first].stomp, &[]);
    producer.send_confirmed("/queue/p", &[], b"before", "r0");

    // Both followers stop answering: the leader is a minority of one.
    let followers: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    for f in &followers {
        nodes[*f].signal("STOP");
    }
    producer
        .send_frame(
            "SEND",
            &[("destination", "/queue/p"), ("receipt", "r1")],
            b"during",
        )
        .expect("SEND");
    // No RECEIPT, ever: the write cannot be committed. The leader steps down (it cannot
    // confirm its lead) and drops the connection (an ERROR first, if it gets to say so).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match producer.read_frame(Duration::from_millis(200)) {
            Ok(Some(f)) if f.command == "ERROR" => break,
            Ok(Some(f)) => panic!("a minority leader answered: {f:?}"),
            Ok(None) => {}
            Err(_) => break,
        }
        assert!(
            Instant::now() < deadline,
            "the cut-off leader kept the client connected"
        );
    }
    // It has given up the lead: it no longer says it leads.
    let closed = Instant::now() + Duration::from_secs(15);
    while http(nodes[first].admin, "GET", "/cluster/leader", None).is_some_and(|(s, _)| s == 200) {
        assert!(
            Instant::now() < closed,
            "the cut-off leader still serves clients"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And it stays so while cut off: restarted as a follower, it holds its own committed
    // vote and raft lets it resume leading its old term at once; without a majority to
    // confirm it, it must not serve clients again.
    let partition = Instant::now() + Duration::from_secs(4);
    while Instant::now() < partition {
        let answer = http(nodes[first].admin, "GET", "/cluster/leader", None);
        assert!(
            answer.as_ref().is_none_or(|(s, _)| *s != 200),
            "the cut-off node leads again without a majority: {answer:?}\n{}",
            nodes[first].log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    for f in &followers {
        nodes[*f].signal("CONT");
    }
    let now = leader(&mut nodes);
    let bodies = drain(nodes[now].stomp, "/queue/p", Duration::from_secs(1));
    // The receipted message is there; the unreceipted one may or may not be (never twice).
    assert!(
        bodies == ["before"] || bodies == ["before", "during"],
        "{bodies:?}"
    );
}

/// Rounds of kill -9 of whichever node leads (ten, or `WRENMQ_FAILOVER_ROUNDS`), each under a
/// producer and a consumer, on the same three data directories; the killed node restarts at
/// once. The ledger: every receipted message not acked with a receipt is there at the end,
/// exactly once; no message acked with a receipt ever comes back.
#[test]
fn rounds_of_kill_9_of_the_leader_lose_nothing_receipted_and_resurrect_nothing_acked() {
    let rounds: u32 = std::env::var("WRENMQ_FAILOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let mut ledger = Ledger::default();
    let mut next = 0u32;
    let mut cuts = 0u32;
    let started = Instant::now();
    for round in 0..rounds {
        // The killed leader restarting can call an election of its own and take the lead
        // mid-round; a client then sees its connection dropped and reconnects, as users'
        // clients do. What it sent or acked without seeing the receipt is left undecided.
        let mut produced = 0;
        while produced < 30 {
            let l = leader(&mut nodes);
            match produce(nodes[l].stomp, &mut ledger, &mut next, 30 - produced) {
                Ok(()) => produced = 30,
                Err(done) => {
                    produced += done;
                    cuts += 1;
                    assert!(cuts <= rounds * 2, "the connection was cut {cuts} times");
                }
            }
        }
        loop {
            let l = leader(&mut nodes);
            if consume(nodes[l].stomp, &mut ledger, round).is_ok() {
                break;
            }
            cuts += 1;
            assert!(cuts <= rounds * 2, "the connection was cut {cuts} times");
        }
        let l = leader(&mut nodes);
        nodes[l].kill();
        nodes[l].spawn();
    }
    let end = read_unacked(&mut nodes, "/queue/ledger", Duration::from_secs(1));
    let unique: BTreeSet<String> = end.iter().cloned().collect();
    assert_eq!(unique.len(), end.len(), "a message came back twice");
    let resurrected: Vec<&String> = unique.intersection(&ledger.acked).collect();
    assert!(
        resurrected.is_empty(),
        "acked messages came back: {resurrected:?}"
    );
    let owed: BTreeSet<String> = ledger
        .receipted
        .difference(&ledger.acked)
        .filter(|m| !ledger.maybe_acked.contains(*m))
        .cloned()
        .collect();
    let lost: Vec<&String> = owed.difference(&unique).collect();
    assert!(lost.is_empty(), "receipted messages lost: {lost:?}");
    let phantom: Vec<&String> = unique
        .iter()
        .filter(|m| !ledger.receipted.contains(*m) && !ledger.maybe_sent.contains(*m))
        .collect();
    assert!(phantom.is_empty(), "messages never sent: {phantom:?}");
    eprintln!(
        "failover: {rounds} rounds in {:.1} s; {} receipted, {} acked, {} owed and all delivered once; {cuts} connections cut by a leader change",
        started.elapsed().as_secs_f64(),
        ledger.receipted.len(),
        ledger.acked.len(),
        owed.len()
    );
}

/// What a client of the rounds test knows: what was receipted and acked, and what it sent
/// or acked when a leader change cut the connection before the receipt came.
#[derive(Default)]
struct Ledger {
    receipted: std::collections::BTreeSet<String>,
    acked: std::collections::BTreeSet<String>,
    maybe_sent: std::collections::BTreeSet<String>,
    maybe_acked: std::collections::BTreeSet<String>,
}

/// Sends `count` persistent messages with receipts; on a cut, how many were sent.
fn produce(
    addr: SocketAddr,
    ledger: &mut Ledger,
    next: &mut u32,
    count: usize,
) -> Result<(), usize> {
    let Ok(mut p) = Client::try_connect(addr, &[]) else {
        return Err(0);
    };
    for sent in 0..count {
        let body = format!("m{next}");
        let receipt = format!("r{next}");
        *next += 1;
        let h = [
            ("destination", "/queue/ledger"),
            ("receipt", receipt.as_str()),
        ];
        if p.send_frame("SEND", &h, body.as_bytes()).is_err() || !receipt_came(&mut p, &receipt) {
            ledger.maybe_sent.insert(body);
            return Err(sent + 1);
        }
        ledger.receipted.insert(body);
    }
    Ok(())
}

/// Takes up to ten messages and acks five of them, each with a receipt.
fn consume(addr: SocketAddr, ledger: &mut Ledger, round: u32) -> Result<(), ()> {
    let mut c = Client::try_connect(addr, &[]).map_err(|_| ())?;
    let h = [
        ("destination", "/queue/ledger"),
        ("id", "s"),
        ("ack", "client-individual"),
        ("activemq.prefetchSize", "10"),
        ("receipt", "sub"),
    ];
    c.send_frame("SUBSCRIBE", &h, b"").map_err(|_| ())?;
    let mut got = Vec::new();
    let mut subscribed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.read_frame(Duration::from_millis(300)) {
            Ok(Some(f)) if f.command == "RECEIPT" => subscribed = true,
            Ok(Some(f)) if f.command == "MESSAGE" => got.push(f),
            Ok(Some(f)) => panic!("unexpected frame {f:?}"),
            Ok(None) if subscribed => break,
            Ok(None) if Instant::now() < deadline => {}
            Ok(None) | Err(_) => return Err(()),
        }
    }
    for (n, m) in got.iter().take(5).enumerate() {
        let ack = m.header("ack").expect("ack").to_string();
        let r = format!("a{round}-{n}");
        let sent = c.send_frame("ACK", &[("id", ack.as_str()), ("receipt", r.as_str())], b"");
        if sent.is_err() || !receipt_came(&mut c, &r) {
            ledger.maybe_acked.insert(m.body_str());
            return Err(());
        }
        ledger.acked.insert(m.body_str());
    }
    Ok(())
}

/// Waits for RECEIPT `id`, passing over MESSAGEs (those an ack frees may come first);
/// false when the connection is cut first.
fn receipt_came(c: &mut Client, id: &str) -> bool {
    loop {
        match c.read_frame(Duration::from_secs(10)) {
            Ok(Some(f)) if f.command == "RECEIPT" => {
                assert_eq!(f.header("receipt-id"), Some(id), "{f:?}");
                return true;
            }
            Ok(Some(f)) if f.command == "MESSAGE" => {}
            Ok(Some(f)) => panic!("expected RECEIPT {id}, got {f:?}"),
            // A leader that lost its lead may hold the receipt until it learns so.
            Ok(None) | Err(_) => return false,
        }
    }
}

/// Every message the leader holds on `dest`, read by a client-ack subscriber that acks
/// nothing, so a read cut short by a leader change consumed nothing and starts again.
fn read_unacked(nodes: &mut [Node], dest: &str, quiet: Duration) -> Vec<String> {
    for _ in 0..5 {
        let l = leader(nodes);
        let Ok(mut c) = Client::try_connect(nodes[l].stomp, &[]) else {
            continue;
        };
        let h = [
            ("destination", dest),
            ("id", "all"),
            ("ack", "client"),
            ("activemq.prefetchSize", "20000"),
        ];
        if c.send_frame("SUBSCRIBE", &h, b"").is_err() {
            continue;
        }
        let mut out = Vec::new();
        let whole = loop {
            match c.read_frame(quiet) {
                Ok(Some(f)) if f.command == "MESSAGE" => out.push(f.body_str()),
                Ok(Some(f)) => panic!("unexpected frame while reading: {f:?}"),
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        if whole {
            return out;
        }
    }
    panic!("five reads of {dest} in a row were cut short");
}

/// A client may connect to any node: a follower relays it to the leader (CONNECTED comes
/// from the leader, which names itself), and drops it when the leader goes, so the client
/// reconnects and lands on the new one. `/cluster/leader` names the leader everywhere and
/// answers 200 only on it.
#[test]
fn a_client_of_a_follower_is_relayed_to_the_leader_and_dropped_when_it_goes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let first = leader(&mut nodes);
    let f = (0..3).find(|i| *i != first).expect("a follower");
    let (status, body) = http(nodes[f].admin, "GET", "/cluster/leader", None).expect("answer");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["leader"], nodes[first].id, "{body}");
    assert_eq!(body["node"], nodes[f].id, "{body}");
    // The leader's announcement reaches the followers through the log.
    let deadline = Instant::now() + ELECTION;
    let want = nodes[first].stomp.to_string();
    loop {
        let (_, body) = http(nodes[f].admin, "GET", "/cluster/leader", None).expect("answer");
        if body["leader_listeners"]["stomp"] == want.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leader's listeners never reached the follower: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ready, _) = http(nodes[f].admin, "GET", "/readyz", None).expect("answer");
    assert_eq!(ready, 503, "a follower serves no clients of its own");

    let mut via = Client::connect(nodes[f].stomp, &[]);
    let server = via.server.clone().unwrap_or_default();
    assert!(
        server.contains(&format!("(node-{})", nodes[first].id)),
        "CONNECTED through node {} came from {server:?}, not the leader node {}",
        nodes[f].id,
        nodes[first].id
    );
    via.send_confirmed("/queue/relayed", &[], b"through a follower", "r1");
    // A body over large-message-threshold would live in a file outside the log: a cluster
    // refuses it rather than receipt what a failover would lose.
    let mut big = Client::connect(nodes[first].stomp, &[]);
    let body = vec![b'x'; 150 * 1024];
    big.send_frame(
        "SEND",
        &[("destination", "/queue/big"), ("receipt", "rb")],
        &body,
    )
    .expect("SEND");
    let refused = big.expect_frame();
    assert_eq!(refused.command, "ERROR", "{refused:?}");
    assert!(
        refused
            .header("message")
            .is_some_and(|m| m.contains("102400-byte body limit")),
        "{refused:?}"
    );
    let got = drain(
        nodes[first].stomp,
        "/queue/relayed",
        Duration::from_millis(500),
    );
    assert_eq!(got, ["through a follower"]);

    // The leader goes: the relayed client is dropped, not left hanging.
    nodes[first].kill();
    let dropped = Instant::now() + Duration::from_secs(15);
    loop {
        match via.read_frame(Duration::from_millis(200)) {
            Err(_) => break,
            Ok(Some(fr)) if fr.command == "ERROR" => break,
            Ok(_) => {}
        }
        assert!(
            Instant::now() < dropped,
            "the relayed client was kept after the leader died"
        );
    }
    let second = leader(&mut nodes);
    // Reconnecting to the same node reaches the new leader (or is it), with the message.
    let deadline = Instant::now() + ELECTION;
    let mut again = loop {
        match Client::try_connect(nodes[f].stomp, &[]) {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no leader behind node {}: {e}",
                    nodes[f].id
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(
        again
            .server
            .clone()
            .unwrap_or_default()
            .contains(&format!("(node-{})", nodes[second].id)),
        "{:?}",
        again.server
    );
    again.send_confirmed("/queue/relayed", &[], b"after failover", "r2");
    let got = drain(
        nodes[second].stomp,
        "/queue/relayed",
        Duration::from_millis(500),
    );
    assert_eq!(
        got,
        ["after failover"],
        "the acked message stays gone; the new one is there"
    );
}

/// `GET /api/v1/cluster` (and `wrenmq cluster status`) shows members, leader, term, commit
/// index and lag; a fourth node joins at run time (it catches up as a learner, then votes)
/// and leaves again; only the leader changes membership.
#[test]
fn cluster_status_shows_the_members_and_a_fourth_node_joins_and_leaves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_one, mut nodes) = start_cluster(dir.path());
    let l = leader(&mut nodes);
    let mut p = Client::connect(nodes[l].stomp, &[]);
    for i in 0..10 {
        p.send_confirmed(
            "/queue/j",
            &[],
            format!("m{i}").as_bytes(),
            &format!("r{i}"),
        );
    }
    let (status, s) = http(nodes[l].admin, "GET", "/api/v1/cluster", None).expect("answer");
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["state"], "leader", "{s}");
    assert_eq!(s["leader"], nodes[l].id, "{s}");
    assert!(s["term"].as_u64().is_some_and(|t| t >= 1), "{s}");
    let commit = s["commit_index"].as_u64().expect("commit index");
    assert!(commit >= 10, "ten receipted writes are committed: {s}");
    let members = s["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{s}");
    assert!(
        members
            .iter()
            .all(|m| m["voter"] == true && m["lag"].is_u64()),
        "{s}"
    );
    let f = (0..3).find(|i| *i != l).expect("a follower");
    let (status, fs) = http(nodes[f].admin, "GET", "/api/v1/cluster", None).expect("answer");
    assert_eq!(status, 200, "{fs}");
    assert_eq!(fs["state"], "follower", "{fs}");
    assert_eq!(fs["leader"], nodes[l].id, "{fs}");

    // A fourth node, configured with every member and itself: it does not form a cluster
    // of its own (it is not the lowest id) and waits to be added.
    let raft4 = free_port();
    let mut cluster: Vec<(u64, u16)> = members
        .iter()
        .map(|m| {
            let id = m["id"].as_u64().expect("id");
            let port = m["address"]
                .as_str()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok())
                .expect("port");
            (id, port)
        })
        .collect();
    cluster.push((4, raft4));
    nodes.push(new_node(dir.path(), 4, &cluster));
    nodes[3].spawn();
    let join = format!(r#"{{"id": 4, "address": "127.0.0.1:{raft4}"}}"#);
    let (status, refused) = http(
        nodes[f].admin,
        "POST",
        "/api/v1/cluster/members",
        Some(&join),
    )
    .expect("answer");
    assert_eq!(status, 409, "only the leader changes membership: {refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("node {}", nodes[l].id))),
        "the refusal names the leader: {refused}"
    );
    let (status, joined) = http(
        nodes[l].admin,
        "POST",
        "/api/v1/cluster/members",
        Some(&join),
    )
    .expect("answer");
    assert_eq!(status, 200, "{joined}");
    let four = joined["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == 4).cloned())
        .expect("node 4 listed");
    assert_eq!(four["voter"], true, "{joined}");
    // It holds what was written before it joined (applied a moment after it is sent), and it
    // sees the leader.
    let applied = Instant::now() + ELECTION;
    let s4 = loop {
        let (_, s4) = http(nodes[3].admin, "GET", "/api/v1/cluster", None).expect("node 4 answers");
        if s4["applied_index"].as_u64().is_some_and(|a| a >= commit) {
            break s4;
        }
        assert!(
            Instant::now() < applied,
            "node 4 never applied the log: {s4}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(s4["leader"], nodes[l].id, "{s4}");

    // The CLI shows the same, then removes node 4 again.
    let url = format!("http://{}", nodes[l].admin);
    let out = Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .args(["cluster", "status", "--url", &url, "--non-interactive"])
        .output()
        .expect("run wrenmq cluster status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("leader") && text.contains(&format!("127.0.0.1:{raft4}")),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .args(["cluster", "leave", "--id", "4", "--url", &url, "--json"])
        .output()
        .expect("run wrenmq cluster leave");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ids: Vec<u64> = left["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(!ids.contains(&4), "{left}");
    assert_eq!(ids.len(), 3, "{left}");
    // The three go on committing without it.
    p.send_confirmed("/queue/j", &[], b"after leave", "r-after");
}

/// A CA and one certificate for 127.0.0.1 and localhost signed by it, as PEM files in `dir`:
/// (ca, cert, key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "WrenMQ cluster test CA");
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.distinguished_name
        .push(DnType::CommonName, "wrenmq node");
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    let paths = (
        dir.join("ca.pem"),
        dir.join("node.pem"),
        dir.join("node.key"),
    );
    std::fs::write(&paths.0, issuer.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

/// `[cluster.tls]`: the nodes elect, replicate and fail over over mutual TLS, and the peer
/// port lets in no one who does not complete a TLS handshake with a certificate of the CA.
#[test]
fn peers_talk_over_mutual_tls_and_plain_tcp_is_kept_out() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = test_pki(dir.path());
    let tls = format!(
        "[cluster.tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        cert.display(),
        key.display(),
        ca.display()
    );
    // A certificate that cannot be read stops the node at start, naming the key and file.
    let missing = dir.path().join("missing.pem");
    let broken = tls.replace(&cert.display().to_string(), &missing.display().to_string());
    let mut bad = new_node_with(dir.path(), 9, &[(9, free_port())], &broken);
    bad.spawn();
    let exited = Instant::now() + Duration::from_secs(20);
    while bad.running() {
        assert!(
            Instant::now() < exited,
            "a node with an unreadable certificate runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = bad.log();
    assert!(
        said.contains("cluster.tls.cert") && said.contains("missing.pem"),
        "{said}"
    );

    let (_one, mut nodes) = start_cluster_with(dir.path(), &tls);
    let first = leader(&mut nodes);
    let mut p = Client::connect(nodes[first].stomp, &[]);
    p.send_confirmed("/queue/tls", &[], b"over tls", "r1");

    // A peer without TLS: whatever it sends, the port answers nothing and closes.
    let text = std::fs::read_to_string(&nodes[first].config).expect("config");
    let raft: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
        .and_then(|p| p.trim_end_matches('"').parse().ok())
        .expect("listen port");
    let mut plain = TcpStream::connect(("127.0.0.1", raft)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut frame = 16u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0u8; 16]);
    let _ = plain.write_all(&frame);
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "a plain-TCP peer got an answer other than a TLS alert: {answer:?}"
    );
    // The socket closes as the handshake fails, a moment before the node logs why.
    let logged = Instant::now() + Duration::from_secs(10);
    while !nodes[first]
        .log()
        .contains("cluster peer refused: TLS handshake failed")
    {
        assert!(Instant::now() < logged, "{}", nodes[first].log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Replication went over TLS: the next leader has the receipted message.
    nodes[first].kill();
    let second = leader(&mut nodes);
    let got = drain(
        nodes[second].stomp,
        "/queue/tls",
        Duration::from_millis(500),
    );
    assert_eq!(got, ["over tls"]);
}
