//! Configuration reload over real connections: a broker started from a file reads it again
//! (through `Reloader::reload`, the file watcher, or SIGHUP to the real binary) and applies it
//! whole or not at all. A valid change is seen by STOMP clients at once (address settings on
//! an existing queue, new users and permissions, declared addresses); an invalid file or one
//! changing a restart-only key applies nothing and the broker keeps its old behaviour; a dry
//! run only reports. `wrenmq config check` is tested on the binary too.

mod common;
mod durable_common;
#[path = "common/http.rs"]
mod http;
#[path = "common/secure.rs"]
mod secure;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, QUIET, TIMEOUT, TestBroker};
use secure::connect_frame;
use wrenmq::reload::ReloadReport;

/// A configuration file: one loopback acceptor on an ephemeral port, no journal, the `#`
/// address settings `settings`, then `extra` (users, security, addresses).
fn file_text(watch: bool, bind: &str, settings: &str, extra: &str) -> String {
    format!(
        "[broker]\nwatch-config = {watch}\n\n[[acceptors]]\nname = \"stomp\"\nbind = \"{bind}\"\n\n[journal]\nenabled = false\n\n[[address-settings]]\nmatch = \"#\"\n{settings}\n\n{extra}\n"
    )
}

const NO_AUTO_CREATE: &str = "auto-create-addresses = false\nauto-create-queues = false";
const AUTO_CREATE: &str = "auto-create-addresses = true\nauto-create-queues = true";

/// Replaces the file as editors do: a new file renamed over the old one.
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

/// A broker started from `text` written to a file in `dir`.
async fn from_file(dir: &Path, text: &str) -> (TestBroker, PathBuf) {
    let path = dir.join("broker.toml");
    std::fs::write(&path, text).expect("write config");
    let config = wrenmq::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (common::start(config).await, path)
}

async fn reload(b: &TestBroker, dry_run: bool) -> ReloadReport {
    let reloader = b.running.reloader().expect("started from a file");
    reloader.reload(dry_run).await
}

/// Whether a SEND to `destination` from a new anonymous connection is refused (ERROR)
/// rather than confirmed (RECEIPT).
async fn send_refused(b: &TestBroker, destination: &str) -> bool {
    let mut c = b.client().await;
    c.send_frame(
        "SEND",
        &[("destination", destination), ("receipt", "r")],
        b"x",
    )
    .await;
    let f = c.expect_frame_any().await;
    match f.command.as_str() {
        "RECEIPT" => false,
        "ERROR" => true,
        _ => panic!("expected RECEIPT or ERROR, got {f:?}"),
    }
}

fn applied(report: &ReloadReport) -> Vec<&str> {
    report.applied.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn lowered_delivery_attempts_and_a_new_dead_letter_address_apply_to_an_existing_queue() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |attempts: u32, dla: &str| {
        format!(
            "{AUTO_CREATE}\nmax-delivery-attempts = {attempts}\ndead-letter-address = \"{dla}\"\nredelivery-delay = 0"
        )
    };
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", &settings(5, "DLA1"), ""),
    )
    .await;
    let mut consumer = b.client().await;
    consumer
        .subscribe("/queue/work", "s", &[("ack", "client-individual")])
        .await;
    let mut producer = b.client().await;
    producer.send_msg("/queue/work", "m1").await;
    // First delivery refused: with 5 attempts it comes back.
    let first = consumer.expect_frame("MESSAGE").await;
    consumer
        .send_frame("NACK", &[("id", first.h("ack"))], b"")
        .await;
    let second = consumer.expect_frame("MESSAGE").await;
    assert_eq!(second.text(), "m1");

    rewrite(
        &path,
        &file_text(false, "127.0.0.1:0", &settings(2, "DLA2"), ""),
    );
    let report = reload(&b, false).await;
    assert_eq!(
        applied(&report),
        [
            "address-settings[#].dead-letter-address",
            "address-settings[#].max-delivery-attempts"
        ],
        "{report:?}"
    );
    assert!(report.loaded_at.is_some() && !report.is_rejected());

    // The second refusal now exhausts the (new) two attempts: the message goes to the new
    // dead-letter address instead of coming back.
    consumer
        .send_frame("NACK", &[("id", second.h("ack"))], b"")
        .await;
    consumer.expect_no_frame(QUIET).await;
    let mut dead = b.client().await;
    dead.subscribe("/queue/DLA2", "d", &[]).await;
    let m = dead.expect_frame("MESSAGE").await;
    assert_eq!(m.text(), "m1");
    assert_eq!(m.get("_AMQ_ORIG_ADDRESS"), Some("work"), "{m:?}");
}

/// Opens a connection and logs in; `Ok` with the client when CONNECTED, `Err` with the
/// ERROR's message otherwise.
async fn login(b: &TestBroker, user: &str, password: &str) -> Result<Client, String> {
    let mut c = b.tcp().await;
    c.write(&connect_frame(Some((user, password)))).await;
    let f = c.expect_frame_any().await;
    match f.command.as_str() {
        "CONNECTED" => Ok(c),
        _ => Err(f.get("message").unwrap_or_default().to_string()),
    }
}

fn users_file_text(users: &[(&str, &str, &[&str])], grants: &[(&str, &[&str])]) -> String {
    let mut text = String::from("[security]\nallow-anonymous = false\n\n");
    for (name, password, roles) in users {
        let hash = wrenmq::security::hash_password(password).unwrap();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        text.push_str(&wrenmq::security::user_entry(name, &roles, &hash));
        text.push('\n');
    }
    for (perm_roles, perms) in grants {
        text.push_str("[[security-settings]]\nmatch = \"#\"\n");
        for p in *perms {
            text.push_str(&format!("{p} = [\"{perm_roles}\"]\n"));
        }
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn an_added_user_logs_in_and_changed_permissions_reach_existing_connections() {
    let dir = tempfile::tempdir().unwrap();
    let perms: &[&str] = &["send", "consume", "create-address", "create-durable-queue"];
    let alice = ("alice", "alice-pw", &["producer"][..]);
    let before = users_file_text(&[alice], &[("producer", perms)]);
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, &before),
    )
    .await;
    let mut alice_conn = login(&b, "alice", "alice-pw").await.expect("alice logs in");
    alice_conn.send_msg("/queue/orders", "before").await;
    assert_eq!(
        login(&b, "bob", "bob-pw").await.err().as_deref(),
        Some("login failed")
    );

    // bob is added with the role that now holds every permission; alice's role loses them.
    let bob = ("bob", "bob-pw", &["writer"][..]);
    let after = users_file_text(&[alice, bob], &[("writer", perms)]);
    rewrite(&path, &file_text(false, "127.0.0.1:0", AUTO_CREATE, &after));
    let report = reload(&b, false).await;
    assert!(!report.is_rejected(), "{report:?}");
    assert!(applied(&report).contains(&"users[bob]"), "{report:?}");
    assert!(
        applied(&report).contains(&"security-settings[#]"),
        "{report:?}"
    );
    // alice's hash was made again with a new salt: a changed secret is seen, never shown.
    assert!(applied(&report).contains(&"users[alice]"), "{report:?}");
    assert!(!serde_json::to_string(&report).unwrap().contains("argon2"));

    let mut bob_conn = login(&b, "bob", "bob-pw")
        .await
        .expect("bob logs in after the reload");
    bob_conn.send_msg("/queue/orders", "from-bob").await;
    // The connection alice opened before the reload is checked at its next SEND.
    alice_conn
        .send_frame(
            "SEND",
            &[("destination", "/queue/orders"), ("receipt", "r")],
            b"after",
        )
        .await;
    let refused = alice_conn.expect_frame("ERROR").await;
    assert!(
        refused.text().contains("lacks permission 'send'"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_removed_user_loses_its_rights_on_the_connection_it_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let perms: &[&str] = &["send", "create-address", "create-durable-queue"];
    let alice = ("alice", "alice-pw", &["producer"][..]);
    let carol = ("carol", "carol-pw", &["producer"][..]);
    let before = users_file_text(&[alice, carol], &[("producer", perms)]);
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, &before),
    )
    .await;
    let mut carol_conn = login(&b, "carol", "carol-pw").await.expect("carol logs in");
    carol_conn.send_msg("/queue/orders", "before").await;
    // Same permissions; only carol is gone.
    let after = users_file_text(&[alice], &[("producer", perms)]);
    rewrite(&path, &file_text(false, "127.0.0.1:0", AUTO_CREATE, &after));
    let report = reload(&b, false).await;
    assert!(applied(&report).contains(&"users[carol]"), "{report:?}");
    carol_conn
        .send_frame(
            "SEND",
            &[("destination", "/queue/orders"), ("receipt", "r")],
            b"after",
        )
        .await;
    let refused = carol_conn.expect_frame("ERROR").await;
    assert!(
        refused
            .text()
            .contains("user 'carol' lacks permission 'send'"),
        "{refused:?}"
    );
    assert_eq!(
        login(&b, "carol", "carol-pw").await.err().as_deref(),
        Some("login failed")
    );
}

#[tokio::test]
async fn an_invalid_file_is_rejected_whole_and_the_old_behaviour_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    let loaded_at = b.running.reloader().unwrap().view().loaded_at;
    assert!(send_refused(&b, "/queue/fresh").await);

    // A valid change (auto-create on) next to a bad value: neither is applied.
    let bad = format!("{AUTO_CREATE}\nredelivery-collision-avoidance-factor = 1.5");
    rewrite(&path, &file_text(false, "127.0.0.1:0", &bad, ""));
    let report = reload(&b, false).await;
    assert!(
        report.applied.is_empty() && report.loaded_at.is_none(),
        "{report:?}"
    );
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let rejected = &report.rejected[0];
    assert_eq!(
        rejected.key,
        "address-settings[0].redelivery-collision-avoidance-factor"
    );
    assert!(
        rejected.reason.starts_with(&format!(
            "{}: address-settings[0].redelivery-collision-avoidance-factor: ",
            path.display()
        )),
        "{rejected:?}"
    );
    assert!(
        send_refused(&b, "/queue/fresh").await,
        "nothing was applied"
    );
    assert_eq!(b.running.reloader().unwrap().view().loaded_at, loaded_at);

    // A file that does not parse, and an unknown key, are refused the same way.
    rewrite(&path, "[broker\n");
    let report = reload(&b, false).await;
    assert!(report.rejected[0].reason.contains("line 1"), "{report:?}");
    rewrite(
        &path,
        &file_text(
            false,
            "127.0.0.1:0",
            &format!("{AUTO_CREATE}\nmax-delivery-atempts = 2"),
            "",
        ),
    );
    let report = reload(&b, false).await;
    assert_eq!(
        report.rejected[0].key, "address-settings[0].max-delivery-atempts",
        "{report:?}"
    );
    assert!(
        send_refused(&b, "/queue/fresh").await,
        "still nothing applied"
    );
}

#[tokio::test]
async fn a_changed_bind_needs_a_restart_and_nothing_else_in_the_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    rewrite(&path, &file_text(false, "127.0.0.1:1", AUTO_CREATE, ""));
    let report = reload(&b, false).await;
    assert!(
        report.applied.is_empty() && report.loaded_at.is_none(),
        "{report:?}"
    );
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.requires_restart.len(), 1, "{report:?}");
    let restart = &report.requires_restart[0];
    assert_eq!(restart.key, "acceptors[stomp].bind");
    assert_eq!(restart.old, "127.0.0.1:0");
    assert_eq!(restart.new, "127.0.0.1:1");
    // The broker still listens where it did, and auto-create stayed off.
    assert!(send_refused(&b, "/queue/fresh").await);
    let view = b.running.reloader().unwrap().view();
    assert_eq!(view.pending_restart, ["acceptors[stomp].bind"]);
    assert_eq!(view.config["acceptors"][0]["bind"], "127.0.0.1:0");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["requires_restart"][0]["key"], "acceptors[stomp].bind");
    assert_eq!(json["loaded_at"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_dry_run_reports_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    rewrite(&path, &file_text(false, "127.0.0.1:0", AUTO_CREATE, ""));
    let report = reload(&b, true).await;
    assert!(report.dry_run);
    assert_eq!(
        applied(&report),
        [
            "address-settings[#].auto-create-addresses",
            "address-settings[#].auto-create-queues"
        ]
    );
    assert_eq!(report.loaded_at, None);
    assert!(
        send_refused(&b, "/queue/fresh").await,
        "a dry run applies nothing"
    );
    // The same file, really reloaded, applies.
    let report = reload(&b, false).await;
    assert!(report.loaded_at.is_some(), "{report:?}");
    assert!(!send_refused(&b, "/queue/fresh").await);
}

#[tokio::test]
async fn declared_addresses_are_added_live_and_removed_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let address = |name: &str| {
        format!(
            "[[addresses]]\nname = \"{name}\"\nrouting-types = [\"anycast\"]\n\n[[addresses.queues]]\nname = \"{name}\"\nrouting-type = \"anycast\"\n\n"
        )
    };
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, &address("kept")),
    )
    .await;
    assert!(send_refused(&b, "/queue/added").await);
    rewrite(
        &path,
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, &address("added")),
    );
    let report = reload(&b, false).await;
    assert_eq!(applied(&report), ["addresses[added]"], "{report:?}");
    assert_eq!(report.kept.len(), 1, "{report:?}");
    assert_eq!(report.kept[0].key, "addresses[kept]");
    assert!(
        !send_refused(&b, "/queue/added").await,
        "the declared queue exists now"
    );
    assert!(
        !send_refused(&b, "/queue/kept").await,
        "the removed one was kept"
    );
}

#[tokio::test]
async fn a_new_memory_limit_applies_to_an_existing_address() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |limit: i64| {
        format!("{AUTO_CREATE}\nmax-size-bytes = {limit}\naddress-full-policy = \"fail\"")
    };
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", &settings(-1), ""),
    )
    .await;
    let mut producer = b.client().await;
    producer.send_msg("/queue/held", &"x".repeat(2000)).await;
    rewrite(&path, &file_text(false, "127.0.0.1:0", &settings(1000), ""));
    let report = reload(&b, false).await;
    assert_eq!(
        applied(&report),
        ["address-settings[#].max-size-bytes"],
        "{report:?}"
    );
    // The address already holds more than its new limit: a FAIL address refuses the next SEND.
    producer
        .send_frame(
            "SEND",
            &[("destination", "/queue/held"), ("receipt", "r")],
            b"more",
        )
        .await;
    let refused = producer.expect_frame("ERROR").await;
    assert!(
        refused.text().contains("address 'held' is full"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn queue_kind_defaults_shape_queues_created_after_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |lvq: bool| format!("{AUTO_CREATE}\ndefault-last-value-queue = {lvq}");
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", &settings(false), ""),
    )
    .await;
    let mut producer = b.client().await;
    producer.send_msg("/queue/before", "first").await;
    rewrite(&path, &file_text(false, "127.0.0.1:0", &settings(true), ""));
    let report = reload(&b, false).await;
    assert_eq!(
        applied(&report),
        ["address-settings[#].default-last-value-queue"],
        "{report:?}"
    );
    for dest in ["/queue/before", "/queue/after"] {
        for body in ["old", "new"] {
            producer
                .send_with_receipt(
                    "SEND",
                    &[("destination", dest), ("_AMQ_LVQ_NAME", "k")],
                    body.as_bytes(),
                    &format!("{dest}-{body}"),
                )
                .await;
        }
    }
    let mut c = b.client().await;
    c.subscribe("/queue/before", "1", &[]).await;
    assert_eq!(
        c.bodies_until_quiet().await,
        ["first", "old", "new"],
        "an existing queue keeps its kind"
    );
    c.subscribe("/queue/after", "2", &[]).await;
    assert_eq!(
        c.bodies_until_quiet().await,
        ["new"],
        "a new queue is a last-value queue"
    );
}

#[tokio::test]
async fn a_declared_queue_that_clashes_with_one_made_since_start_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, ""),
    )
    .await;
    let mut c = b.client().await;
    c.send_msg("/queue/taken", "x").await;
    let declared = "[[addresses]]\nname = \"other\"\nrouting-types = [\"anycast\"]\n\n[[addresses.queues]]\nname = \"taken\"\nrouting-type = \"anycast\"\n";
    rewrite(
        &path,
        &file_text(
            false,
            "127.0.0.1:0",
            &format!("{AUTO_CREATE}\nmax-delivery-attempts = 3"),
            declared,
        ),
    );
    let report = reload(&b, false).await;
    assert!(
        report.applied.is_empty() && report.loaded_at.is_none(),
        "{report:?}"
    );
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].key, "addresses[other].queues[taken]");
    assert!(
        report.rejected[0]
            .reason
            .contains("already exists on address \"taken\""),
        "{report:?}"
    );
    assert!(
        b.running.broker.queues_of("other").is_empty(),
        "nothing was declared"
    );
    assert_eq!(
        b.running.broker.settings_for("x").max_delivery_attempts,
        Some(10)
    );
}

#[tokio::test]
async fn an_edited_users_file_is_picked_up_by_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.toml");
    let users = |list: &[(&str, &str, &[&str])]| {
        let mut text = String::new();
        for (name, password, roles) in list {
            let hash = wrenmq::security::hash_password(password).unwrap();
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            text.push_str(&wrenmq::security::user_entry(name, &roles, &hash));
            text.push('\n');
        }
        text
    };
    let write_private = |path: &Path, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    };
    write_private(&users_path, &users(&[("alice", "pw", &["r"])]));
    let extra = "[security]\nallow-anonymous = false\nusers-file = \"users.toml\"\n\n[[security-settings]]\nmatch = \"#\"\nsend = [\"r\"]\ncreate-address = [\"r\"]\ncreate-durable-queue = [\"r\"]\n";
    let (b, _path) = from_file(
        dir.path(),
        &file_text(true, "127.0.0.1:0", AUTO_CREATE, extra),
    )
    .await;
    assert!(login(&b, "bob", "bob-pw").await.is_err());
    write_private(
        &users_path,
        &users(&[("alice", "pw", &["r"]), ("bob", "bob-pw", &["r"])]),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bob = loop {
        if let Ok(c) = login(&b, "bob", "bob-pw").await {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "bob could not log in within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bob.send_msg("/queue/x", "hello").await;
}

#[tokio::test]
async fn a_file_change_is_picked_up_by_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(true, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    let reloader = b.running.reloader().unwrap();
    let loaded_at = reloader.view().loaded_at;
    assert!(send_refused(&b, "/queue/fresh").await);
    // loaded_at has millisecond resolution: make sure a reload is later than the start.
    tokio::time::sleep(Duration::from_millis(5)).await;
    rewrite(&path, &file_text(true, "127.0.0.1:0", AUTO_CREATE, ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloader.view().loaded_at == loaded_at {
        assert!(
            Instant::now() < deadline,
            "the watcher did not reload within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!send_refused(&b, "/queue/fresh").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reloads_run_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    // Enough declared addresses that reading the file takes a while, so unserialized
    // reloads would overlap and each apply what it found.
    let addresses: String = (0..500)
        .map(|i| format!("[[addresses]]\nname = \"a{i}\"\nrouting-types = [\"anycast\"]\n\n"))
        .collect();
    rewrite(
        &path,
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, &addresses),
    );
    let reloader = b.running.reloader().unwrap();
    let runs: Vec<_> = (0..16)
        .map(|_| {
            let r = reloader.clone();
            tokio::spawn(async move { r.reload(false).await })
        })
        .collect();
    let mut applying = 0;
    for run in runs {
        let report = tokio::time::timeout(TIMEOUT, run).await.unwrap().unwrap();
        assert!(!report.is_rejected(), "{report:?}");
        if !report.applied.is_empty() {
            applying += 1;
        }
    }
    assert_eq!(
        applying, 1,
        "each reload compares with what the one before applied"
    );
}

#[tokio::test]
async fn the_view_shows_the_source_and_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file_text(&[("alice", "pw", &["r"][..])], &[("r", &["send"][..])]);
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, &users),
    )
    .await;
    let view = b.running.reloader().unwrap().view();
    assert_eq!(view.source.as_deref(), Some(path.as_path()));
    assert_eq!(view.config["users"][0]["name"], "alice");
    assert_eq!(view.config["users"][0]["password-hash"], "<redacted>");
    assert_eq!(view.config["broker"]["log-level"], "info");
    let json = serde_json::to_string(&view).unwrap();
    assert!(!json.contains("argon2"), "{json}");
    assert!(json.contains("\"pending_restart\":[]"), "{json}");
}

#[tokio::test]
async fn an_embedded_broker_reports_a_log_level_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", AUTO_CREATE, ""),
    )
    .await;
    let text = file_text(false, "127.0.0.1:0", AUTO_CREATE, "")
        .replace("[broker]\n", "[broker]\nlog-level = \"debug\"\n");
    rewrite(&path, &text);
    let report = reload(&b, false).await;
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.kept.len(), 1, "{report:?}");
    assert_eq!(report.kept[0].key, "broker.log-level");
}

#[tokio::test]
async fn the_admin_api_reloads_through_the_same_reloader() {
    let dir = tempfile::tempdir().unwrap();
    let (b, path) = from_file(
        dir.path(),
        &file_text(false, "127.0.0.1:0", NO_AUTO_CREATE, ""),
    )
    .await;
    let admin = b.running.admin_addr.expect("the admin listener runs");
    let view = http::get_json(admin, "/api/v1/config").await;
    assert_eq!(view["source"], path.display().to_string());
    assert_eq!(
        view["config"]["address-settings"][0]["auto-create-queues"],
        false
    );
    rewrite(&path, &file_text(false, "127.0.0.1:0", AUTO_CREATE, ""));
    let dry = http::request(
        admin,
        "POST",
        "/api/v1/config/reload?dry_run=true",
        &[],
        None,
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        dry["applied"][0],
        "address-settings[#].auto-create-addresses"
    );
    assert_eq!(dry["loaded_at"], serde_json::Value::Null);
    assert!(
        send_refused(&b, "/queue/fresh").await,
        "a dry run applies nothing"
    );
    let done = http::request(admin, "POST", "/api/v1/config/reload", &[], None)
        .await
        .json();
    assert!(done["loaded_at"].is_u64(), "{done}");
    assert!(!send_refused(&b, "/queue/fresh").await);
    let view = http::get_json(admin, "/api/v1/config").await;
    assert_eq!(view["loaded_at"], done["loaded_at"]);
    assert_eq!(
        view["config"]["address-settings"][0]["auto-create-queues"],
        true
    );
    // The overview and /metrics follow: one applied reload (the dry run does not count).
    let overview = http::get_json(admin, "/api/v1/overview").await;
    assert_eq!(overview["config_loaded_at"], done["loaded_at"]);
    let metrics = http::request(admin, "GET", "/metrics", &[], None)
        .await
        .text();
    assert!(
        metrics.contains("wrenmq_config_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("wrenmq_config_reloads_total{result=\"rejected\"} 0"));
}

#[tokio::test]
async fn a_broker_started_without_a_file_has_no_reloader() {
    let b = common::start_default().await;
    assert!(b.running.reloader().is_none());
}

/// Waits (bounded) until the binary's log holds `needle` `count` times.
fn wait_for_log(b: &durable_common::Broker, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.stderr().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {count}× \"{needle}\" in the log within 10 s:\n{}",
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sighup(b: &durable_common::Broker) {
    let pid = b.pid().expect("running").to_string();
    let status = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Whether the binary refuses a SEND to `destination` from a new connection.
fn binary_send_refused(b: &durable_common::Broker, destination: &str) -> bool {
    let mut c = b.client();
    c.send_frame(
        "SEND",
        &[("destination", destination), ("receipt", "r")],
        b"x",
    )
    .expect("write SEND");
    let f = c.expect_frame();
    f.command == "ERROR"
}

#[test]
fn sighup_reloads_the_real_binary_and_a_new_log_level_applies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    // No acceptor in the file: the binary's --bind override supplies it, and a reload
    // applies the override again instead of reporting a changed bind.
    let text = |settings: &str, level: &str| {
        format!(
            "[broker]\nwatch-config = false\nlog-level = \"{level}\"\n\n[[address-settings]]\nmatch = \"#\"\n{settings}\n"
        )
    };
    std::fs::write(&path, text(NO_AUTO_CREATE, "error")).unwrap();
    // The test harness runs the binary with RUST_LOG=info, which wins at start.
    let b = durable_common::Broker::start_with_config(&dir.path().join("data"), &path);
    assert!(b.stderr().contains("listening"), "{}", b.stderr());
    assert!(binary_send_refused(&b, "/queue/fresh"));

    rewrite(&path, &text(AUTO_CREATE, "info"));
    sighup(&b);
    wait_for_log(&b, "configuration reloaded", 1);
    assert!(b.stderr().contains("SIGHUP"), "{}", b.stderr());
    assert!(!binary_send_refused(&b, "/queue/fresh2"));

    // log-level = "warn" applies with the rest: the info line of this reload is not logged.
    rewrite(&path, &text(NO_AUTO_CREATE, "warn"));
    sighup(&b);
    let deadline = Instant::now() + Duration::from_secs(10);
    // A new destination each time: a SEND before the reload auto-creates its address.
    let mut attempt = 0;
    while !binary_send_refused(&b, &format!("/queue/fresh3-{attempt}")) {
        attempt += 1;
        assert!(
            Instant::now() < deadline,
            "second reload not applied:\n{}",
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A rejected reload is a warning, so it still shows.
    rewrite(
        &path,
        &text(&format!("{AUTO_CREATE}\nmax-delivery-attempts = 0"), "warn"),
    );
    sighup(&b);
    wait_for_log(&b, "configuration reload rejected", 1);
    let log = b.stderr();
    assert_eq!(log.matches("configuration reloaded").count(), 1, "{log}");
    assert!(
        log.contains("address-settings[0].max-delivery-attempts"),
        "{log}"
    );
    assert!(
        binary_send_refused(&b, "/queue/fresh4"),
        "the rejected file changed nothing"
    );
}

fn config_check(args: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wrenmq"))
        .arg("config")
        .arg("check")
        .args(args)
        .output()
        .expect("run wrenmq config check")
}

#[test]
fn config_check_prints_every_effective_value_or_names_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        file_text(false, "127.0.0.1:0", "max-delivery-attempts = 3", ""),
    )
    .unwrap();
    let out = config_check(&[&good]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("address-settings[#].max-delivery-attempts = 3\n"),
        "{stdout}"
    );
    assert!(stdout.contains("journal.enabled = false\n"), "{stdout}");
    assert!(stdout.contains("broker.log-level = \"info\"\n"), "{stdout}");
    assert!(
        stdout.contains("security.allow-anonymous = (unset)\n"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[broker]\nnmae = \"x\"\n\n[journal]\nsyncc = true\n").unwrap();
    let out = config_check(&[&bad]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = bad.display();
    assert!(
        stderr.contains(&format!("{shown}: broker.nmae: unknown key")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{shown}: journal.syncc: unknown key")),
        "{stderr}"
    );
    // What the rest of the file means is still shown.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("broker.name = \"wrenmq\"\n"), "{stdout}");

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[journal]\nmax-batch = 0\n").unwrap();
    let out = config_check(&[&invalid]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: journal.max-batch: must be greater than 0",
            invalid.display()
        )),
        "{stderr}"
    );

    let defaults = config_check(&[]);
    assert!(defaults.status.success());
    assert!(
        String::from_utf8_lossy(&defaults.stdout)
            .contains("acceptors[stomp].bind = \"127.0.0.1:61613\"\n")
    );
}
