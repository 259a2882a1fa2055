//! The `wrenmq` admin verbs, run as the real binary against a real broker's admin HTTP API:
//! queue list/show/browse/purge/move/copy/retry, connection list/close, subscriptions,
//! overview, config, checks with their Nagios exit codes, and authentication.

mod cli_common;

use cli_common::{Broker, RawStomp, code, run, stderr, stdout, wrenmq};
use serde_json::Value;

/// Runs `wrenmq ARGS --url <admin>` and returns the output, asserting exit 0.
fn ok(b: &Broker, args: &[&str]) -> String {
    let url = b.admin_url();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", &url]);
    let o = run(wrenmq(&all));
    assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn json(b: &Broker, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(b, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn send(b: &Broker, dest: &str, n: usize, extra: &[&str]) {
    let url = b.stomp_url();
    let count = n.to_string();
    let mut args = vec![
        "send",
        dest,
        "--stomp",
        &url,
        "--count",
        &count,
        "--receipt",
    ];
    args.extend(extra);
    let o = run(wrenmq(&args));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn queue<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|q| q["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn queue_list_as_json_and_as_a_table() {
    let b = Broker::start(&[]);
    send(&b, "/queue/cli.list", 3, &["--body", "x"]);
    let list = json(&b, &["queue", "list"]);
    let q = queue(&list, "cli.list");
    assert_eq!(q["messages"], 3, "{q}");
    assert_eq!(q["routing_type"], "anycast");
    let table = ok(&b, &["queue", "list"]);
    for col in [
        "NAME",
        "ADDRESS",
        "TYPE",
        "CONSUMERS",
        "READY",
        "IN-FLIGHT",
        "OLDEST",
        "IN/S",
    ] {
        assert!(table.contains(col), "no {col} column: {table}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("cli.list"))
        .unwrap_or_else(|| panic!("no row: {table}"));
    assert!(row.contains(" 3 "), "{row}");
    assert!(table.contains('│'), "borders for people: {table}");
    let plain = ok(&b, &["queue", "list", "--non-interactive"]);
    assert!(!plain.contains('│') && !plain.contains('─'), "{plain}");
    assert!(plain.contains("cli.list"));
    // Filtered by the API, and --top bounds the list.
    send(&b, "/queue/cli.other", 1, &["--body", "y"]);
    let only = json(&b, &["queue", "list", "--regex", "^cli\\.list$"]);
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    let top = json(&b, &["queue", "list", "--top", "1"]);
    assert_eq!(top.as_array().map(Vec::len), Some(1), "{top}");
    let show = json(&b, &["queue", "show", "cli.list"]);
    assert_eq!(show["messages"], 3);
    assert!(ok(&b, &["queue", "show", "cli.list"]).contains("messages_ready"));
}

#[test]
fn browse_does_not_consume_and_purge_removes() {
    let b = Broker::start(&[]);
    for color in ["red", "blue", "red", "green"] {
        let h = format!("color={color}");
        let body = format!("{color}!");
        send(&b, "/queue/cli.browse", 1, &["-H", &h, "--body", &body]);
    }
    let items = json(&b, &["queue", "browse", "cli.browse"]);
    let items = items.as_array().expect("array");
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["body_preview"], "red!");
    assert_eq!(items[1]["headers"]["color"], "blue");
    let table = ok(&b, &["queue", "browse", "cli.browse", "--limit", "2"]);
    for col in ["SEQ", "ID", "STATE", "DELIVERIES", "SIZE", "BODY"] {
        assert!(table.contains(col), "no {col}: {table}");
    }
    assert!(
        table.contains("blue!") && !table.contains("green!"),
        "{table}"
    );
    let reds = json(
        &b,
        &[
            "queue",
            "browse",
            "cli.browse",
            "--selector",
            "color = 'red'",
        ],
    );
    assert_eq!(reds.as_array().map(Vec::len), Some(2), "{reds}");
    // Browsing took nothing.
    assert_eq!(json(&b, &["queue", "show", "cli.browse"])["messages"], 4);
    let out = ok(
        &b,
        &[
            "queue",
            "purge",
            "cli.browse",
            "--selector",
            "color = 'red'",
        ],
    );
    assert!(out.contains("removed 2"), "{out}");
    let one = json(&b, &["queue", "purge", "cli.browse", "--limit", "1"]);
    assert_eq!(one["removed"], 1);
    let left = json(&b, &["queue", "browse", "cli.browse"]);
    assert_eq!(left[0]["body_preview"], "green!", "{left}");
    assert!(ok(&b, &["queue", "purge", "cli.browse"]).contains("removed 1"));
    assert_eq!(json(&b, &["queue", "show", "cli.browse"])["messages"], 0);
}

#[test]
fn move_in_batches_copy_and_create_delete() {
    let b = Broker::start(&[]);
    send(&b, "/queue/cli.from", 7, &["--body", "m"]);
    ok(&b, &["queue", "create", "cli.to"]);
    // 7 in batches of 2: four requests, all moved.
    let moved = json(
        &b,
        &[
            "queue", "move", "cli.from", "--to", "cli.to", "--batch", "2",
        ],
    );
    assert_eq!(moved["moved"], 7, "{moved}");
    let list = json(&b, &["queue", "list"]);
    assert_eq!(queue(&list, "cli.from")["messages"], 0);
    assert_eq!(queue(&list, "cli.to")["messages"], 7);
    let back = ok(
        &b,
        &[
            "queue", "move", "cli.to", "--to", "cli.from", "--limit", "3", "--batch", "2",
        ],
    );
    assert!(
        back.contains("moved 3 message(s) from cli.to to cli.from"),
        "{back}"
    );
    let copied = json(
        &b,
        &[
            "queue", "copy", "cli.to", "--to", "cli.from", "--limit", "2",
        ],
    );
    assert_eq!(copied["copied"], 2);
    let list = json(&b, &["queue", "list"]);
    assert_eq!(queue(&list, "cli.from")["messages"], 5);
    assert_eq!(queue(&list, "cli.to")["messages"], 4);
    // A target that does not exist: the API's not_found, EX_DATAERR.
    let url = b.admin_url();
    let o = run(wrenmq(&[
        "queue", "move", "cli.to", "--to", "nowhere", "--url", &url,
    ]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
    // Delete: refused while not empty with --if-empty, missing is an error unless --if-exists.
    let o = run(wrenmq(&[
        "queue",
        "delete",
        "cli.to",
        "--if-empty",
        "--url",
        &url,
    ]));
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    ok(&b, &["queue", "delete", "cli.to"]);
    let o = run(wrenmq(&["queue", "delete", "cli.to", "--url", &url]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    ok(&b, &["queue", "delete", "cli.to", "--if-exists"]);
    // Pause and resume.
    assert_eq!(json(&b, &["queue", "pause", "cli.from"])["paused"], true);
    assert_eq!(
        queue(&json(&b, &["queue", "list"]), "cli.from")["paused"],
        true
    );
    ok(&b, &["queue", "resume", "cli.from"]);
    assert_eq!(
        queue(&json(&b, &["queue", "list"]), "cli.from")["paused"],
        false
    );
}

#[test]
fn retry_sends_dead_letters_back() {
    let b = Broker::start(&[]);
    send(&b, "/queue/cli.orders", 3, &["--body", "order"]);
    // A consumer rejects all three (NACK without requeue): they go to the dead-letter queue.
    let mut c = RawStomp::connect(b.stomp, "nacker");
    c.send(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/cli.orders"),
            ("id", "s"),
            ("ack", "client-individual"),
        ],
        b"",
    );
    // All three may arrive before the first NACK's receipt: take frames as they come.
    let (mut nacked, mut receipts) = (0, 0);
    while receipts < 3 {
        let f = c.read_frame();
        match f.command.as_str() {
            "MESSAGE" => {
                let id = f.get("ack").expect("ack header").to_string();
                nacked += 1;
                let receipt = format!("n{nacked}");
                c.send(
                    "NACK",
                    &[("id", &id), ("requeue", "false"), ("receipt", &receipt)],
                    b"",
                );
            }
            "RECEIPT" => receipts += 1,
            other => panic!("{other}: {f:?}"),
        }
    }
    assert_eq!(nacked, 3);
    c.send("UNSUBSCRIBE", &[("id", "s"), ("receipt", "u")], b"");
    assert_eq!(c.read_frame().command, "RECEIPT");
    let mut dead = 0;
    for _ in 0..100 {
        dead = json(&b, &["queue", "show", "DLQ"])["messages"]
            .as_u64()
            .unwrap_or(0);
        if dead == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(dead, 3);
    let one = json(&b, &["queue", "retry", "DLQ", "--limit", "1"]);
    assert_eq!(one["retried"], 1, "{one}");
    let rest = ok(&b, &["queue", "retry", "DLQ", "--batch", "1"]);
    assert!(rest.contains("retried 2 message(s) from DLQ"), "{rest}");
    let list = json(&b, &["queue", "list"]);
    assert_eq!(queue(&list, "DLQ")["messages"], 0);
    assert_eq!(queue(&list, "cli.orders")["messages"], 3);
}

#[test]
fn connection_list_close_and_subscriptions() {
    let b = Broker::start(&[]);
    let mut c = RawStomp::connect(b.stomp, "cli-victim");
    c.send(
        "SUBSCRIBE",
        &[
            ("destination", "/queue/cli.subs"),
            ("id", "sub-1"),
            ("selector", "n > 1"),
            ("receipt", "r"),
        ],
        b"",
    );
    assert_eq!(c.read_frame().command, "RECEIPT");
    let conns = json(&b, &["connection", "list"]);
    let mine = conns
        .as_array()
        .and_then(|a| a.iter().find(|x| x["client_id"] == "cli-victim"))
        .unwrap_or_else(|| panic!("{conns}"))
        .clone();
    let table = ok(&b, &["connection", "list"]);
    for col in ["ID", "CLIENT-ID", "REMOTE", "VERSION", "PENDING", "SUBS"] {
        assert!(table.contains(col), "no {col}: {table}");
    }
    assert!(table.contains("cli-victim"), "{table}");
    let subs = json(&b, &["subscription", "list", "--queue", "cli.subs"]);
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
    assert_eq!(subs[0]["selector"], "n > 1");
    assert_eq!(subs[0]["ack_mode"], "auto");
    let none = json(&b, &["subscription", "list", "--queue", "nothing.here"]);
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");
    let id = match &mine["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let out = ok(
        &b,
        &[
            "connection",
            "close",
            &id,
            "--reason",
            "maintenance at noon",
        ],
    );
    assert!(out.contains(&format!("closed connection {id}")), "{out}");
    let err = c.read_frame();
    assert_eq!(err.command, "ERROR", "{err:?}");
    let said = format!(
        "{} {}",
        err.get("message").unwrap_or(""),
        String::from_utf8_lossy(&err.body)
    );
    assert!(said.contains("maintenance at noon"), "{said}");
    assert!(c.try_read_frame().is_none(), "closed after the ERROR");
    // It shows among the closed ones, with the reason.
    let mut closed = Value::Null;
    for _ in 0..100 {
        closed = json(&b, &["connection", "list", "--closed"]);
        if closed
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["client_id"] == "cli-victim"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let gone = closed
        .as_array()
        .and_then(|a| a.iter().find(|x| x["client_id"] == "cli-victim"))
        .unwrap_or_else(|| panic!("{closed}"));
    // The API gives the kind of close as `reason` and the operator's words as `detail`.
    let why = format!(
        "{} {}",
        gone["reason"].as_str().unwrap_or(""),
        gone["detail"].as_str().unwrap_or("")
    );
    assert!(why.contains("maintenance at noon"), "{gone}");
    let table = ok(&b, &["connection", "list", "--closed"]);
    assert!(
        table.contains("REASON") && table.contains("maintenance at noon"),
        "{table}"
    );
    let url = b.admin_url();
    let o = run(wrenmq(&["connection", "close", "999999", "--url", &url]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
}

#[test]
fn check_queue_and_node_exit_with_nagios_codes() {
    let b = Broker::start(&[]);
    send(&b, "/queue/cli.check", 3, &["--body", "c"]);
    let url = b.admin_url();
    let check = |args: &[&str]| {
        let mut all = vec!["check"];
        all.extend(args);
        all.extend(["--url", &url]);
        run(wrenmq(&all))
    };
    let o = check(&["queue", "--name", "cli.check", "--max-messages", "5"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("WRENMQ QUEUE OK - "),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("| messages=3;;5"), "{}", stdout(&o));
    let o = check(&["queue", "--name", "cli.check", "--max-messages", "2"]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("WRENMQ QUEUE CRITICAL - messages 3 (beyond limit 2)"),
        "{}",
        stdout(&o)
    );
    let o = check(&[
        "queue",
        "--name",
        "cli.check",
        "--min-consumers",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 2);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["status"], "CRITICAL");
    assert_eq!(v["code"], 2);
    let o = check(&[
        "queue",
        "--name",
        "cli.check",
        "--max-age",
        "1h",
        "--format",
        "text",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("oldest_age"), "{}", stdout(&o));
    let o = check(&["queue", "--name", "cli.nope"]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stdout(&o).contains("no queue cli.nope"), "{}", stdout(&o));
    let o = check(&["node", "--ready"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).starts_with("WRENMQ NODE OK"), "{}", stdout(&o));
    let o = check(&["node", "--memory-max", "1"]);
    assert_eq!(
        code(&o),
        2,
        "3 messages use more than 1 byte: {}",
        stdout(&o)
    );
    let o = check(&["node", "--disk-free-min", "1"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = check(&["node", "--disk-free-min", "1000TiB"]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
}

#[test]
fn overview_and_config() {
    let b = Broker::start(&[]);
    let v = json(&b, &["overview"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let table = ok(&b, &["overview"]);
    assert!(
        table.contains("totals.queues") && table.contains("uptime_seconds"),
        "{table}"
    );
    let config = json(&b, &["config", "show"]);
    assert!(config.get("loaded_at").is_some(), "{config}");
    // Started without a file: the text says so, and a reload is refused (409, EX_DATAERR).
    let text = ok(&b, &["config", "show"]);
    assert!(
        text.contains("# loaded at: ") && text.contains("no configuration file"),
        "{text}"
    );
    let url = b.admin_url();
    let o = run(wrenmq(&["config", "reload", "--dry-run", "--url", &url]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to reload"), "{}", stderr(&o));
}

const TOKEN: &str = "cli-scraper-token-0123456789";

#[test]
fn credentials_from_flags_tokens_and_contexts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = {
        let mut c = wrenmq(&["user", "hash"]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"s3cret\n").expect("write");
        }
        let o = child.wait_with_output().expect("wait");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let token_sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nallow-anonymous = false\n\n[[users]]\nname = \"root\"\npassword-hash = \"{hash}\"\nroles = [\"admin\"]\n\n\
             [[security-settings]]\nmatch = \"#\"\nsend = [\"admin\"]\nconsume = [\"admin\"]\nbrowse = [\"admin\"]\n\
             create-address = [\"admin\"]\ncreate-durable-queue = [\"admin\"]\nmanage = [\"admin\"]\n\n\
             [[admin.tokens]]\nname = \"scraper\"\nsha256 = \"{token_sha}\"\nrole = \"monitor\"\n"
        ),
    )
    .expect("write config");
    let cfg = config.to_string_lossy().to_string();
    let b = Broker::start(&["--config", &cfg]);
    let url = b.admin_url();
    let o = run(wrenmq(&["queue", "list", "--url", &url]));
    assert_eq!(code(&o), 77, "anonymous refused: {}", stderr(&o));
    let o = run(wrenmq(&[
        "queue",
        "list",
        "--url",
        &url,
        "--user",
        "root",
        "--password",
        "nope",
    ]));
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    let o = run(wrenmq(&[
        "queue",
        "list",
        "--url",
        &url,
        "--user",
        "root",
        "--password",
        "s3cret",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A monitor token may read, not mutate (403: EX_NOPERM).
    let o = run(wrenmq(&["queue", "list", "--url", &url, "--token", TOKEN]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(wrenmq(&[
        "queue", "create", "cli.tok", "--url", &url, "--token", TOKEN,
    ]));
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    let o = run(wrenmq(&[
        "queue", "list", "--url", &url, "--token", "wrong",
    ]));
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    // A context carries the URL and the credentials, for both protocols.
    let contexts = dir.path().join("contexts.toml");
    std::fs::write(
        &contexts,
        format!(
            "[contexts.test]\nurl = \"{url}\"\nstomp = \"{}\"\nuser = \"root\"\npassword = \"s3cret\"\n",
            b.stomp_url()
        ),
    )
    .expect("write contexts");
    let with_ctx = |args: &[&str]| {
        let mut c = wrenmq(args);
        c.env("WRENMQ_CONTEXTS", &contexts);
        run(c)
    };
    let o = with_ctx(&[
        "send",
        "/queue/cli.ctx",
        "--body",
        "via context",
        "--context",
        "test",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = with_ctx(&["queue", "list", "--context", "test", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(queue(&list, "cli.ctx")["messages"], 1);
    // A flag wins over the context.
    let o = with_ctx(&["queue", "list", "--context", "test", "--password", "wrong"]);
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    let o = with_ctx(&[
        "send",
        "/queue/cli.ctx",
        "--body",
        "x",
        "--context",
        "test",
        "--password",
        "wrong",
    ]);
    assert_eq!(code(&o), 77, "STOMP login refused: {}", stderr(&o));
}

#[test]
fn browse_follows_cursors_past_pages_the_selector_left_empty() {
    let b = Broker::start(&[]);
    for n in 0..15 {
        let h = format!("n={n}");
        send(
            &b,
            "/queue/cli.far",
            1,
            &["-H", &h, "--body", &format!("m{n}")],
        );
    }
    // With --limit 1 the API looks through ten messages per request, so the first answers
    // are empty pages with a cursor: the CLI must keep going to find the last message.
    let found = json(
        &b,
        &[
            "queue",
            "browse",
            "cli.far",
            "--limit",
            "1",
            "--selector",
            "n = 14",
        ],
    );
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["body_preview"], "m14");
}

#[test]
fn address_create_list_show_delete() {
    let b = Broker::start(&[]);
    let url = b.admin_url();
    let o = run(wrenmq(&["address", "create", "cli.addr", "--url", &url]));
    assert_eq!(code(&o), 64, "a routing type is needed: {}", stderr(&o));
    ok(&b, &["address", "create", "cli.addr", "--multicast"]);
    let list = json(&b, &["address", "list", "--regex", "^cli\\.addr$"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["routing_types"], serde_json::json!(["multicast"]));
    let table = ok(&b, &["address", "list"]);
    for col in ["NAME", "ROUTING", "QUEUES", "ROUTED", "UNROUTABLE"] {
        assert!(table.contains(col), "no {col}: {table}");
    }
    let row = table.lines().find(|l| l.contains("cli.addr")).expect("row");
    assert!(row.contains("multicast"), "{row}");
    assert_eq!(
        json(&b, &["address", "show", "cli.addr"])["name"],
        "cli.addr"
    );
    // A queue on it: plain delete is refused, --force takes both.
    ok(
        &b,
        &[
            "queue",
            "create",
            "cli.addr.q",
            "--address",
            "cli.addr",
            "--multicast",
        ],
    );
    let o = run(wrenmq(&["address", "delete", "cli.addr", "--url", &url]));
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    ok(&b, &["address", "delete", "cli.addr", "--force"]);
    let o = run(wrenmq(&["address", "show", "cli.addr", "--url", &url]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    let o = run(wrenmq(&["address", "delete", "cli.addr", "--url", &url]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    ok(&b, &["address", "delete", "cli.addr", "--if-exists"]);
}

#[test]
fn config_show_and_reload_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, "[broker]\nlog-level = \"info\"\n").expect("write");
    let f = file.to_string_lossy().to_string();
    let b = Broker::start(&["--config", &f]);
    let shown = ok(&b, &["config", "show"]);
    assert!(shown.starts_with(&format!("# source: {f}\n")), "{shown}");
    assert_eq!(json(&b, &["config", "show"])["source"], f.as_str());
    std::fs::write(&file, "[broker]\nlog-level = \"debug\"\n").expect("write");
    let dry = ok(&b, &["config", "reload", "--dry-run"]);
    assert!(dry.contains("would apply: broker.log-level"), "{dry}");
    let done = json(&b, &["config", "reload"]);
    assert_eq!(
        done["applied"],
        serde_json::json!(["broker.log-level"]),
        "{done}"
    );
    // A restart-only key rejects the whole reload: listed, and exit 65.
    std::fs::write(
        &file,
        "[broker]\nlog-level = \"warn\"\n[journal]\nsync = false\n",
    )
    .expect("write");
    let url = b.admin_url();
    let o = run(wrenmq(&["config", "reload", "--url", &url]));
    assert_eq!(code(&o), 65, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("requires a restart"), "{}", stdout(&o));
    assert!(stdout(&o).contains("journal.sync"), "{}", stdout(&o));
    assert!(stdout(&o).contains("applied: nothing"), "{}", stdout(&o));
}
