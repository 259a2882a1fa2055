//! `wrenmq send` and `wrenmq receive`: a STOMP producer and consumer for operators (as
//! `artemis producer` / `artemis consumer`), on the load tool's client and the broker's codec.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::error::{CliError, CliResult};
use super::global::{GlobalArgs, Resolved, stomp_host_port};
use super::progress;
use super::units::{parse_duration, parse_kv, parse_size};
use crate::perf::client::Conn;
use crate::perf::{Common, PerfError};
use crate::stomp::{Command, Frame, FrameEncoder, Version};

/// The largest body `--file` or `--size` may make: the client holds it in memory.
const MAX_BODY: u64 = 512 * 1024 * 1024;
/// Encoded frames are written once this much is buffered, so `--count` stays in bounded memory.
const FLUSH_AT: usize = 256 * 1024;

/// `wrenmq send` (mutating): sends one message, or `--count` copies, to a destination.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Destination as the acceptor maps it, e.g. /queue/orders, /topic/prices, orders::eu.
    pub destination: String,
    /// Extra header (repeatable), e.g. --header priority=9 --header color=red.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = parse_kv)]
    pub headers: Vec<(String, String)>,
    /// Send with `persistent:true` (journaled before the receipt).
    #[arg(long)]
    pub persistent: bool,
    /// How many messages to send.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Body of this many bytes (e.g. 1KiB), generated.
    #[arg(long, value_parser = parse_size, conflicts_with_all = ["body", "file"])]
    pub size: Option<u64>,
    /// Body text.
    #[arg(long, conflicts_with = "file")]
    pub body: Option<String>,
    /// Body read from a file. Without --size, --body or --file the body is read from stdin.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Ask a RECEIPT for every SEND and wait for it before the next (each message confirmed
    /// stored); without it the CLI still waits at the end until the broker processed all.
    #[arg(long)]
    pub receipt: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

/// Acknowledgement modes of `wrenmq receive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// The broker counts a message consumed once written to the socket. With --count, the
    /// CLI acknowledges each message itself after printing it, so messages sent beyond the
    /// count go back to the queue instead of being lost.
    Auto,
    /// One cumulative ACK after the last message: all of them are consumed, or (if the
    /// command fails midway) none.
    Client,
    /// An ACK for each message after it is printed or written.
    ClientIndividual,
}

/// `wrenmq receive` (mutating: consumes): receives messages and prints or stores them.
#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// Destination, e.g. /queue/orders.
    pub destination: String,
    /// Acknowledgement mode.
    #[arg(long, value_enum, default_value_t = AckMode::Auto)]
    pub ack: AckMode,
    /// Only messages matching this selector, e.g. "color = 'red'".
    #[arg(long)]
    pub selector: Option<String>,
    /// Stop after this many messages (without it, run until --timeout or Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no message arrived for this long (e.g. 5s). With --count, reaching it
    /// before the count exits with 75 (EX_TEMPFAIL).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Write each message to DIR as NNNNNN.body and NNNNNN.headers.json instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub global: GlobalArgs,
}

fn common(r: &Resolved) -> CliResult<Common> {
    let (host, port) = stomp_host_port(&r.stomp)?;
    Ok(Common {
        host,
        port,
        login: r.user.clone(),
        passcode: r.password.clone(),
        vhost: "/".to_string(),
        destination: None,
        sub_headers: Vec::new(),
        json: r.json,
        stall_timeout: 30,
    })
}

/// A broker ERROR frame or a socket failure, as an exit code: refusals of permission are 77,
/// other ERRORs 65 (the broker refused the data), socket failures 69.
fn stomp_error(e: PerfError) -> CliError {
    match e {
        PerfError::Broker(m) => {
            let lower = m.to_ascii_lowercase();
            if [
                "not authorized",
                "not allowed",
                "permission",
                "denied",
                "authentication",
                "login",
            ]
            .iter()
            .any(|w| lower.contains(w))
            {
                CliError::no_perm(format!("the broker refused: {m}"))
            } else {
                CliError::data(format!("the broker sent ERROR: {m}"))
            }
        }
        other => CliError::unavailable(other.to_string()),
    }
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                sysexits::ExitCode::OsErr,
                format!("cannot start the async runtime: {e}"),
            )
        })
}

fn read_body(a: &SendArgs) -> CliResult<Bytes> {
    if let Some(n) = a.size {
        if n > MAX_BODY {
            return Err(CliError::usage(format!(
                "--size {n}: at most {MAX_BODY} bytes"
            )));
        }
        const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        return Ok(PATTERN.iter().copied().cycle().take(n as usize).collect());
    }
    if let Some(b) = &a.body {
        return Ok(Bytes::from(b.clone()));
    }
    let mut buf = Vec::new();
    let what = match &a.file {
        Some(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::no_input(format!("{}: {e}", path.display())))?;
            f.take(MAX_BODY + 1)
                .read_to_end(&mut buf)
                .map_err(|e| CliError::no_input(format!("{}: {e}", path.display())))?;
            path.display().to_string()
        }
        None => {
            std::io::stdin()
                .lock()
                .take(MAX_BODY + 1)
                .read_to_end(&mut buf)
                .map_err(|e| CliError::no_input(format!("reading the body from stdin: {e}")))?;
            "stdin".to_string()
        }
    };
    if buf.len() as u64 > MAX_BODY {
        return Err(CliError::data(format!(
            "{what}: larger than {MAX_BODY} bytes"
        )));
    }
    Ok(Bytes::from(buf))
}

/// Runs `wrenmq send`.
pub fn send(a: &SendArgs) -> CliResult {
    let r = a.global.resolve()?;
    let common = common(&r)?;
    let body = read_body(a)?;
    let rt = runtime()?;
    let sent = rt.block_on(async {
        let mut conn = Conn::open(&common).await.map_err(stomp_error)?;
        let pb = progress::bar(Some(a.count), "sending", &r);
        for i in 0..a.count {
            let receipt = format!("send-{i}");
            let mut enc = FrameEncoder::begin(&mut conn.out, conn.version, Command::Send);
            enc.header("destination", &a.destination);
            if a.persistent {
                enc.header("persistent", "true");
            }
            for (k, v) in &a.headers {
                if k != "content-length" && k != "destination" && k != "receipt" {
                    enc.header(k, v);
                }
            }
            if a.receipt {
                enc.header("receipt", &receipt);
            }
            enc.finish(&body);
            if a.receipt {
                conn.flush().await.map_err(stomp_error)?;
                conn.wait_receipt(&receipt, |_| {})
                    .await
                    .map_err(stomp_error)?;
            } else if conn.out.len() >= FLUSH_AT {
                conn.flush().await.map_err(stomp_error)?;
            }
            pb.inc(1);
        }
        conn.flush().await.map_err(stomp_error)?;
        conn.disconnect(|_| {}).await.map_err(stomp_error)?;
        pb.finish_and_clear();
        Ok::<u64, CliError>(a.count)
    })?;
    if r.json {
        super::output::print_line(&json!({"sent": sent, "destination": a.destination}).to_string())
    } else {
        eprintln!("wrenmq: sent {sent} message(s) to {}", a.destination);
        Ok(())
    }
}

/// Where received messages go.
enum Sink {
    Stdout { json: bool },
    Dir(PathBuf),
}

impl Sink {
    fn write(&self, n: u64, f: &Frame) -> CliResult {
        match self {
            Sink::Stdout { json: true } => super::output::print_line(&message_json(f).to_string()),
            Sink::Stdout { json: false } => {
                let mut out = std::io::stdout().lock();
                let err = |e: std::io::Error| CliError::io(format!("writing to stdout: {e}"));
                out.write_all(&f.body).map_err(err)?;
                if !f.body.ends_with(b"\n") {
                    out.write_all(b"\n").map_err(err)?;
                }
                out.flush().map_err(err)
            }
            Sink::Dir(dir) => {
                let body = dir.join(format!("{n:06}.body"));
                let headers = dir.join(format!("{n:06}.headers.json"));
                let err = |p: &PathBuf, e: std::io::Error| {
                    CliError::new(
                        sysexits::ExitCode::CantCreat,
                        format!("{}: {e}", p.display()),
                    )
                };
                std::fs::write(&body, &f.body).map_err(|e| err(&body, e))?;
                let h = Value::Object(header_map(f)).to_string();
                std::fs::write(&headers, h).map_err(|e| err(&headers, e))
            }
        }
    }
}

fn header_map(f: &Frame) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in f.headers.iter() {
        // The first occurrence of a repeated header is the one STOMP says counts.
        m.entry(k.to_string())
            .or_insert_with(|| Value::String(v.to_string()));
    }
    m
}

/// One received message as a JSON line: headers, and the body as UTF-8 text or base64.
fn message_json(f: &Frame) -> Value {
    let (body, encoding) = match std::str::from_utf8(&f.body) {
        Ok(s) => (s.to_string(), "utf8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&f.body),
            "base64",
        ),
    };
    json!({"headers": Value::Object(header_map(f)), "body": body, "body_encoding": encoding})
}

/// Runs `wrenmq receive`.
pub fn receive(a: &ReceiveArgs) -> CliResult {
    let r = a.global.resolve()?;
    let common = common(&r)?;
    let sink = match &a.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::new(
                    sysexits::ExitCode::CantCreat,
                    format!("{}: {e}", dir.display()),
                )
            })?;
            Sink::Dir(dir.clone())
        }
        None => Sink::Stdout { json: r.json },
    };
    if a.count == Some(0) {
        return Ok(());
    }
    // With a count, `auto` becomes acks sent by the CLI, so nothing beyond the count is lost.
    let wire_ack = match (a.ack, a.count) {
        (AckMode::Auto, None) => "auto",
        (AckMode::Auto, Some(_)) | (AckMode::ClientIndividual, _) => "client-individual",
        (AckMode::Client, _) => "client",
    };
    let rt = runtime()?;
    let (received, timed_out) = rt.block_on(async {
        let mut conn = Conn::open(&common).await.map_err(stomp_error)?;
        let mut extra = Vec::new();
        if let Some(s) = &a.selector {
            extra.push(("selector".to_string(), s.clone()));
        }
        if let Some(n) = a.count {
            extra.push(("activemq.prefetchSize".to_string(), n.min(1000).to_string()));
        }
        conn.subscribe(&a.destination, "cli", wire_ack, &extra)
            .await
            .map_err(stomp_error)?;
        let pb = progress::bar(a.count, "receiving", &r);
        let mut n = 0u64;
        let mut last_ack: Option<String> = None;
        let mut timed_out = false;
        while a.count.is_none_or(|c| n < c) {
            let frame = match next_message(&mut conn, a.timeout).await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    timed_out = true;
                    break;
                }
                Err(e) => return Err(stomp_error(e)),
            };
            n += 1;
            sink.write(n, &frame)?;
            let ack_id = frame
                .get("ack")
                .or(frame.get("message-id"))
                .map(str::to_string);
            match wire_ack {
                "client-individual" => {
                    if let Some(id) = ack_id {
                        ack(&mut conn, &id);
                        conn.flush().await.map_err(stomp_error)?;
                    }
                }
                "client" => last_ack = ack_id,
                _ => {}
            }
            pb.inc(1);
        }
        if let Some(id) = last_ack {
            ack(&mut conn, &id);
        }
        conn.flush().await.map_err(stomp_error)?;
        conn.disconnect(|_| {}).await.map_err(stomp_error)?;
        pb.finish_and_clear();
        Ok::<(u64, bool), CliError>((n, timed_out))
    })?;
    match a.count {
        Some(c) if received < c && timed_out => Err(CliError::new(
            sysexits::ExitCode::TempFail,
            format!("received {received} of {c} message(s) before the timeout"),
        )),
        _ => {
            if !r.json && a.out.is_none() {
                eprintln!("wrenmq: received {received} message(s)");
            } else if a.out.is_some() {
                eprintln!(
                    "wrenmq: wrote {received} message(s) to {}",
                    a.out
                        .as_ref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn ack(conn: &mut Conn, id: &str) {
    let version = conn.version;
    let mut enc = FrameEncoder::begin(&mut conn.out, version, Command::Ack);
    // STOMP 1.2 names the delivery by `id` (the MESSAGE's `ack` header); 1.0 and 1.1 by
    // `message-id` plus `subscription`.
    if version == Version::V1_2 {
        enc.header("id", id);
    } else {
        enc.header("message-id", id);
        enc.header("subscription", "cli");
    }
    enc.finish(b"");
}

/// Waiting "forever" without overflowing an `Instant`.
const FOREVER: Duration = Duration::from_secs(365 * 86_400);

/// The next MESSAGE, `None` after `timeout` without one (no timeout: wait as long as it takes).
async fn next_message(
    conn: &mut Conn,
    timeout: Option<Duration>,
) -> Result<Option<Frame>, PerfError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t.min(FOREVER));
    loop {
        let frame = match deadline {
            // The reading future is cancel-safe (bytes read stay in the connection's buffer).
            Some(d) => match tokio::time::timeout_at(d, conn.next_frame(FOREVER)).await {
                Ok(r) => r?,
                Err(_) => return Ok(None),
            },
            None => conn.next_frame(FOREVER).await?,
        };
        if frame.command == Command::Message {
            return Ok(Some(frame));
        }
    }
}
