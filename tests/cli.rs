//! The `wrenmq` command line, run as the real binary against a real broker process: the
//! STOMP verbs, exit codes, completion and the man page, the broker's log formats, and the
//! shipped systemd unit.

mod cli_common;

use std::process::Stdio;

use cli_common::{Broker, code, run, stderr, stdout, wrenmq};
use serde_json::Value;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn send_and_receive_round_trip_with_headers_and_count() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    let sent = run(wrenmq(&[
        "send",
        "/queue/cli.rt",
        "--stomp",
        &url,
        "--count",
        "3",
        "--body",
        "hello",
        "--header",
        "color=red",
        "-H",
        "n=1",
        "--persistent",
        "--receipt",
    ]));
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    // stdout is a pipe here: no progress bar, so stderr is the one summary line.
    assert_eq!(
        stderr(&sent).trim(),
        "wrenmq: sent 3 message(s) to /queue/cli.rt"
    );
    let got = run(wrenmq(&[
        "receive",
        "/queue/cli.rt",
        "--stomp",
        &url,
        "--count",
        "3",
        "--timeout",
        "10s",
        "--json",
    ]));
    assert_eq!(code(&got), 0, "{}", stderr(&got));
    let msgs = json_lines(&stdout(&got));
    assert_eq!(msgs.len(), 3, "{}", stdout(&got));
    for m in &msgs {
        assert_eq!(m["body"], "hello");
        assert_eq!(m["headers"]["color"], "red");
        assert_eq!(m["headers"]["n"], "1");
        assert_eq!(m["headers"]["persistent"], "true");
        assert_eq!(m["headers"]["destination"], "/queue/cli.rt");
    }
    // All three were consumed: the queue is empty, and a count not reached before the
    // timeout is EX_TEMPFAIL.
    let empty = run(wrenmq(&[
        "receive",
        "/queue/cli.rt",
        "--stomp",
        &url,
        "--count",
        "1",
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code(&empty), 75, "{}", stderr(&empty));
    assert!(
        stderr(&empty).contains("received 0 of 1"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn receive_with_count_in_auto_mode_leaves_the_rest_on_the_queue() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    let sent = run(wrenmq(&[
        "send",
        "/queue/cli.rest",
        "--stomp",
        &url,
        "--count",
        "5",
        "--size",
        "10",
    ]));
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    let two = run(wrenmq(&[
        "receive",
        "/queue/cli.rest",
        "--stomp",
        &url,
        "--count",
        "2",
        "--ack",
        "auto",
    ]));
    assert_eq!(code(&two), 0, "{}", stderr(&two));
    assert_eq!(stdout(&two).lines().count(), 2, "{}", stdout(&two));
    assert_eq!(stdout(&two).lines().next(), Some("0123456789"));
    let rest = run(wrenmq(&[
        "receive",
        "/queue/cli.rest",
        "--stomp",
        &url,
        "--timeout",
        "1s",
        "--json",
    ]));
    assert_eq!(code(&rest), 0, "{}", stderr(&rest));
    assert_eq!(json_lines(&stdout(&rest)).len(), 3, "{}", stdout(&rest));
}

#[test]
fn client_ack_mode_consumes_everything_it_printed() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    let sent = run(wrenmq(&[
        "send",
        "/queue/cli.cack",
        "--stomp",
        &url,
        "--count",
        "4",
        "--body",
        "x",
    ]));
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));
    for mode in ["client", "client-individual"] {
        let two = run(wrenmq(&[
            "receive",
            "/queue/cli.cack",
            "--stomp",
            &url,
            "--count",
            "2",
            "--ack",
            mode,
        ]));
        assert_eq!(code(&two), 0, "{mode}: {}", stderr(&two));
        assert_eq!(stdout(&two).lines().count(), 2, "{mode}");
    }
    let none = run(wrenmq(&[
        "receive",
        "/queue/cli.cack",
        "--stomp",
        &url,
        "--timeout",
        "300ms",
        "--json",
    ]));
    assert_eq!(stdout(&none), "", "acked messages came back");
}

#[test]
fn receive_selects_and_writes_files_to_out_dir() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    for color in ["red", "blue", "red", "blue"] {
        let h = format!("color={color}");
        let body = format!("{color} body");
        let o = run(wrenmq(&[
            "send",
            "/queue/cli.sel",
            "--stomp",
            &url,
            "-H",
            &h,
            "--body",
            &body,
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let out = b.path().join("out");
    let out_s = out.to_string_lossy().to_string();
    let o = run(wrenmq(&[
        "receive",
        "/queue/cli.sel",
        "--stomp",
        &url,
        "--selector",
        "color = 'blue'",
        "--count",
        "2",
        "--timeout",
        "10s",
        "--out",
        &out_s,
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for n in ["000001", "000002"] {
        let body = std::fs::read_to_string(out.join(format!("{n}.body"))).expect("body file");
        assert_eq!(body, "blue body");
        let headers: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{n}.headers.json"))).expect("headers"),
        )
        .expect("headers json");
        assert_eq!(headers["color"], "blue");
    }
    assert!(!out.join("000003.body").exists());
}

#[test]
fn send_reads_the_body_from_a_file_and_stdin() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    let file = b.path().join("body.bin");
    std::fs::write(&file, [0u8, 159, 146, 150]).expect("write");
    let f = file.to_string_lossy().to_string();
    let o = run(wrenmq(&[
        "send",
        "/queue/cli.file",
        "--stomp",
        &url,
        "--file",
        &f,
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut piped = wrenmq(&["send", "/queue/cli.file", "--stomp", &url]);
    piped
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = piped.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"from stdin").expect("write stdin");
    }
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = run(wrenmq(&[
        "receive",
        "/queue/cli.file",
        "--stomp",
        &url,
        "--count",
        "2",
        "--timeout",
        "10s",
        "--json",
    ]));
    let msgs = json_lines(&stdout(&got));
    assert_eq!(msgs[0]["body_encoding"], "base64");
    assert_eq!(msgs[0]["body"], "AJ+Slg==");
    assert_eq!(msgs[1]["body"], "from stdin");
    let missing = run(wrenmq(&[
        "send",
        "/queue/cli.file",
        "--stomp",
        &url,
        "--file",
        "/nonexistent/x",
    ]));
    assert_eq!(code(&missing), 66, "EX_NOINPUT: {}", stderr(&missing));
}

#[test]
fn failures_exit_with_sysexits_codes() {
    // Nothing listens on a port just closed: EX_UNAVAILABLE.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("stomp://127.0.0.1:{port}");
    let o = run(wrenmq(&[
        "send", "/queue/x", "--stomp", &url, "--body", "x",
    ]));
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    let http = format!("http://127.0.0.1:{port}");
    let o = run(wrenmq(&["queue", "list", "--url", &http]));
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach the admin API"),
        "{}",
        stderr(&o)
    );
    // The same URL from the environment.
    let mut c = wrenmq(&["queue", "list"]);
    c.env("WRENMQ_URL", &http);
    let o = run(c);
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(stderr(&o).contains(&http), "{}", stderr(&o));
    // A bad URL scheme is a usage error.
    let o = run(wrenmq(&[
        "send", "/queue/x", "--stomp", "ws://h:1", "--body", "x",
    ]));
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    // An unknown context is a configuration error naming the file.
    let dir = tempfile::tempdir().expect("tempdir");
    let contexts = dir.path().join("contexts.toml");
    std::fs::write(&contexts, "[contexts.prod]\nurl = \"http://10.9.9.9:1\"\n").expect("write");
    let mut c = wrenmq(&["queue", "list", "--context", "staging"]);
    c.env("WRENMQ_CONTEXTS", &contexts);
    let o = run(c);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("contexts.toml") && stderr(&o).contains("prod"),
        "{}",
        stderr(&o)
    );
    // A context supplies the URL: here one where nothing listens.
    std::fs::write(&contexts, format!("[contexts.local]\nurl = \"{http}\"\n")).expect("write");
    let mut c = wrenmq(&["check", "node", "--context", "local"]);
    c.env("WRENMQ_CONTEXTS", &contexts);
    let o = run(c);
    assert_eq!(code(&o), 3, "nagios UNKNOWN: {}", stdout(&o));
    assert!(
        stdout(&o).starts_with("WRENMQ NODE UNKNOWN"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn broker_refusals_and_local_failures_have_their_own_codes() {
    let b = Broker::start(&[]);
    let url = b.stomp_url();
    // The broker answers a selector that does not parse with an ERROR frame: EX_DATAERR.
    let o = run(wrenmq(&[
        "receive",
        "/queue/cli.bad",
        "--stomp",
        &url,
        "--selector",
        "color = = 'x'",
        "--timeout",
        "5s",
    ]));
    assert_eq!(code(&o), 65, "{}", stderr(&o));
    assert!(stderr(&o).contains("ERROR"), "{}", stderr(&o));
    // --out naming a file, not a directory: EX_CANTCREAT.
    let file = b.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let f = file.to_string_lossy().to_string();
    let o = run(wrenmq(&[
        "receive",
        "/queue/cli.bad",
        "--stomp",
        &url,
        "--out",
        &f,
        "--count",
        "1",
    ]));
    assert_eq!(code(&o), 73, "{}", stderr(&o));
}

#[test]
fn an_http_answer_that_is_not_the_api_is_a_protocol_error() {
    // A real HTTP server that is not WrenMQ's admin API (a web page on the port).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let page = "<html>hello</html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let o = run(wrenmq(&["overview", "--url", &format!("http://{addr}")]));
    assert_eq!(code(&o), 76, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is --url the admin API?"),
        "{}",
        stderr(&o)
    );
    server.join().expect("server");
}

#[test]
fn completion_scripts_and_the_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(wrenmq(&["completion", shell]));
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        let text = stdout(&o);
        for word in ["wrenmq", "queue", "receive", "--selector"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = run(wrenmq(&["man"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") && page.contains(".TH wrenmq 1"),
        "roff"
    );
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wrenmq.1"),
    )
    .expect("packaging/wrenmq.1");
    assert!(
        page == shipped,
        "packaging/wrenmq.1 no longer matches the CLI: regenerate it with \
         `cargo run -- man > packaging/wrenmq.1`"
    );
}

#[test]
fn log_format_json_makes_every_broker_line_json() {
    let b = Broker::start(&["--log-format", "json"]);
    let log = b.log();
    assert!(!log.is_empty());
    let mut ready = false;
    for line in &log {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        ready |= v["fields"]["message"] == "WrenMQ ready";
    }
    assert!(ready, "{log:?}");
}

#[test]
fn no_escape_codes_when_stderr_is_not_a_terminal() {
    let b = Broker::start(&[]);
    let log = b.log().join("\n");
    assert!(log.contains("WrenMQ ready"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in piped logs: {log:?}"
    );
}

/// Runs the broker under a pseudo-terminal (util-linux `script`) until it fails to bind a
/// taken port, and returns what the terminal showed.
fn broker_on_a_terminal(no_color: bool) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = format!(
        "{} --bind {addr} --data-dir {}",
        cli_common::bin(),
        dir.path().join("data").display()
    );
    let mut c = std::process::Command::new(script);
    c.args(["-q", "-e", "-c", &inner, "/dev/null"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .env_remove("RUST_LOG");
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    let o = run(c);
    Some(stdout(&o))
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let Some(coloured) = broker_on_a_terminal(false) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is not installed (tests/all.sh installs bsdutils)"
        );
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(coloured.contains("INFO"), "{coloured:?}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = broker_on_a_terminal(true).expect("script");
    assert!(plain.contains("INFO"), "{plain:?}");
    assert!(
        !plain.contains("\u{1b}["),
        "colour despite NO_COLOR: {plain:?}"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        // tests/all.sh (what CI runs) installs it; only a bare `cargo test` may lack it.
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is not installed (tests/all.sh installs Debian's systemd)"
        );
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("packaging/wrenmq.service")).expect("unit");
    for key in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wrenmq",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "LimitNOFILE=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Type=simple",
    ] {
        assert!(unit.contains(key), "the unit lacks {key:?}");
    }
    // verify needs the ExecStart binary and the man page of Documentation= to exist: point
    // them at this build and this tree.
    let dir = tempfile::tempdir().expect("tempdir");
    let man1 = dir.path().join("man/man1");
    std::fs::create_dir_all(&man1).expect("mkdir");
    std::fs::copy(root.join("packaging/wrenmq.1"), man1.join("wrenmq.1")).expect("man");
    let local = dir.path().join("wrenmq.service");
    std::fs::write(
        &local,
        unit.replace("/usr/local/bin/wrenmq", cli_common::bin()),
    )
    .expect("write");
    let mut c = std::process::Command::new(analyze);
    c.arg("verify")
        .arg(&local)
        .env("MANPATH", dir.path().join("man"));
    let o = run(c);
    assert_eq!(
        code(&o),
        0,
        "systemd-analyze verify: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim(), "", "warnings: {}", stderr(&o));
}

#[test]
fn a_progress_bar_only_for_a_person_on_a_terminal() {
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is not installed (tests/all.sh installs bsdutils)"
        );
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    let b = Broker::start(&[]);
    let on_tty = |extra: &str| {
        let inner = format!(
            "{} send /queue/cli.bar --stomp {} --count 50 --receipt --body x {extra}",
            cli_common::bin(),
            b.stomp_url()
        );
        let mut c = std::process::Command::new(script);
        c.args(["-q", "-e", "-c", &inner, "/dev/null"])
            .stdin(Stdio::null())
            .env("WRENMQ_CONTEXTS", "/nonexistent/contexts.toml");
        let o = run(c);
        assert_eq!(code(&o), 0, "{}", stdout(&o));
        stdout(&o)
    };
    let person = on_tty("");
    assert!(
        person.contains("sending ["),
        "no bar on a terminal: {person:?}"
    );
    assert!(person.contains("/50"), "{person:?}");
    let script_run = on_tty("--non-interactive");
    assert!(!script_run.contains("sending ["), "{script_run:?}");
    assert!(script_run.contains("sent 50 message(s)"), "{script_run:?}");
}
