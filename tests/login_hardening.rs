//! Login hardening over real sockets: the guess rate of one address is limited (not only its
//! answer delay), a login flood from one address cannot starve logins from others of the
//! password-hashing slots, and the users file and `wrenmq user add --file` keep secrets
//! private. Clients bind to other loopback addresses (127.0.0.2, ...), which Linux routes on
//! `lo`, so each test source is its own IP.

mod common;
#[path = "common/secure.rs"]
mod secure;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::TIMEOUT;
use secure::{connect_frame, eventually, header, read_frame, secured_config, write_all};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` whose source address is `from`.
async fn tcp_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind to a loopback source address");
    tokio::time::timeout(TIMEOUT, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// CONNECTs from `from` and returns the answer's command and `message` header.
async fn login_from(from: [u8; 4], to: SocketAddr, who: &str, pw: &str) -> (String, String) {
    let mut s = tcp_from(from, to).await;
    write_all(&mut s, &connect_frame(Some((who, pw)))).await;
    let mut buf = Vec::new();
    let f = read_frame(&mut s, &mut buf)
        .await
        .expect("an answer in time");
    let message = header(&f, "message").unwrap_or("").to_string();
    (f.0, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_used_up_its_failures_is_refused_without_checking() {
    let mut config = secured_config(Vec::new());
    config.security.login_failure_limit = 3;
    let b = common::start(config).await;
    let attacker = [127, 0, 0, 2];
    for _ in 0..3 {
        let (cmd, message) = login_from(attacker, b.addr, "bob", "guess").await;
        assert_eq!((cmd.as_str(), message.as_str()), ("ERROR", "login failed"));
    }
    // Even the right password is not checked now: guessing stops, not just slows down.
    let (cmd, message) = login_from(attacker, b.addr, "bob", "bob-pw").await;
    assert_eq!(cmd, "ERROR");
    assert_eq!(
        message,
        "too many failed logins from this address; retry later"
    );
    let ip: IpAddr = [127, 0, 0, 2].into();
    assert_eq!(b.running.security.failed_logins(ip), 3);
    // Another address is not affected.
    let (cmd, _) = login_from([127, 0, 0, 3], b.addr, "bob", "bob-pw").await;
    assert_eq!(cmd, "CONNECTED");
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_does_not_starve_the_others() {
    let mut config = secured_config(Vec::new());
    // Only the hashing slots are under test here, not the lock-out.
    config.security.login_failure_limit = u32::MAX;
    config.limits.max_connections = 10_000;
    let b = common::start(config).await;
    let good = [127, 0, 0, 3];

    // One login's cost here, so the flood is big enough that waiting behind it in one shared
    // queue would take several TIMEOUTs (4 slots sharing the cores).
    let started = Instant::now();
    assert_eq!(
        login_from(good, b.addr, "carol", "carol-pw").await.0,
        "CONNECTED"
    );
    let one = started.elapsed().max(Duration::from_millis(1));
    let flood = ((4 * 3 * TIMEOUT.as_millis()) / one.as_millis().max(1)).clamp(60, 3000) as usize;

    let mut sockets = Vec::with_capacity(flood);
    for _ in 0..flood {
        let mut s = tcp_from([127, 0, 0, 2], b.addr).await;
        write_all(&mut s, &connect_frame(Some(("bob", "guess")))).await;
        sockets.push(s);
    }
    let attacker: IpAddr = [127, 0, 0, 2].into();
    let security = b.running.security.clone();
    assert!(
        eventually(TIMEOUT, || security.failed_logins(attacker) >= 2).await,
        "the flood is being checked"
    );
    // While the flood is still queued, a login from elsewhere gets a slot.
    let (cmd, _) = login_from(good, b.addr, "carol", "carol-pw").await;
    assert_eq!(cmd, "CONNECTED", "flood of {flood}");
    assert!(
        security.failed_logins(attacker) < flood as u32,
        "the flood was still running"
    );
    drop(sockets);
    b.shutdown().await;
}

/// Runs `wrenmq user add --name NAME --roles ROLES --file FILE` with the password on stdin.
#[cfg(unix)]
fn user_add(file: &std::path::Path, name: &str, roles: &str, password: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .args(["user", "add", "--name", name, "--roles", roles, "--file"])
        .arg(file)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wrenmq");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("wrenmq exits");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_makes_a_private_users_file_and_the_broker_refuses_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users.toml");
    let main = dir.path().join("broker.toml");
    std::fs::write(
        &main,
        "[security]\nallow-anonymous = false\nusers-file = \"users.toml\"\n\n\
         [[acceptors]]\nname = \"stomp\"\nbind = \"127.0.0.1:0\"\n\n[journal]\nenabled = false\n",
    )
    .expect("write config");

    user_add(&users, "bob", "producer", "bob-pw");
    assert_eq!(mode(&users), 0o600, "created private");
    user_add(&users, "carol", "consumer", "carol-pw");
    assert_eq!(mode(&users), 0o600, "kept private on rewrite");

    // The broker loads it and both users log in.
    let config = wrenmq::config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    let b = common::start(config).await;
    for (who, pw) in [("bob", "bob-pw"), ("carol", "carol-pw")] {
        assert_eq!(
            login_from([127, 0, 0, 1], b.addr, who, pw).await.0,
            "CONNECTED"
        );
    }
    b.shutdown().await;

    // Readable by others: refused at start, naming the file, its mode and the fix.
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = wrenmq::config::load(&main)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains(&format!("{} has mode 0644", users.display())),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");
    // The same through the binary: it exits with the message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .arg("--config")
        .arg(&main)
        .output()
        .expect("run wrenmq");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has mode 0644") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    // Adding to a file left readable tightens it before writing a hash.
    let note = user_add(&users, "dave", "consumer", "dave-pw");
    assert!(note.contains("made it 0600"), "{note}");
    assert_eq!(mode(&users), 0o600);
    assert!(wrenmq::config::load(&main).is_ok());
}
