//! The module graph points one way (docs/architecture.md, "Layers"): server → admin /
//! transport → session → broker core → (cluster →) journal, with config, security, the address matcher, selectors and
//! the codec below whatever uses them. This reads every file under `src/` and fails on a
//! `crate::` path that points up, so a wrong-way import is caught when it is written, not in
//! review.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules each module may name, besides itself. `perf` and `main.rs` are
/// tools built on the library and may use anything, so they are not checked; `cli` is a
/// client and is held to the protocols.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "admin",
            "reload",
            "transport",
            "session",
            "broker",
            "cluster",
            "journal",
            "security",
            "config",
            "address",
            "selector",
            "stomp",
        ],
    ),
    (
        "admin",
        &[
            "reload", "session", "broker", "journal", "security", "config", "address", "selector",
        ],
    ),
    (
        "reload",
        &[
            "broker", "security", "config", "journal", "address", "selector",
        ],
    ),
    (
        "transport",
        &[
            "session", "security", "config", "address", "selector", "stomp",
        ],
    ),
    (
        "session",
        &[
            "broker", "security", "config", "address", "selector", "stomp",
        ],
    ),
    (
        "broker",
        &["journal", "security", "config", "address", "selector"],
    ),
    // The replicated journal sits between the core and the journal it replicates; it knows
    // journal ops and nothing of the broker.
    ("cluster", &["journal"]),
    ("journal", &[]),
    ("security", &["config", "address"]),
    ("config", &["selector"]),
    ("address", &[]),
    ("selector", &[]),
    ("stomp", &[]),
    // The client verbs talk to a broker only over its protocols: the codec and the load
    // tool's STOMP client, never the core, so they work the same against a remote broker.
    ("cli", &["stomp", "perf"]),
];

/// The core reads the configuration only while it is built; these are the files that may.
const BROKER_CONFIG_READERS: &[&str] = &[
    "src/broker/routing/mod.rs",
    "src/broker/routing/divert.rs",
    "src/broker/routing/reload.rs",
    "src/broker/settings.rs",
    "src/broker/tests.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules named by `crate::…` paths on one line, including each item of a
/// `crate::{a, b::c}` group.
fn named_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.push(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_crate_path_points_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(root).expect("under the manifest dir");
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        let top = rel
            .components()
            .nth(1)
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .expect("a path under src/");
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == top) else {
            // The crate root, the binary and the perf tool.
            assert!(
                ["lib", "main", "perf"].contains(&top.as_str()),
                "{rel_text}: top-level module '{top}' has no row in ALLOWED; add it"
            );
            continue;
        };
        checked.insert(top.clone());
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{rel_text}: {e}"));
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for module in named_modules(line) {
                let config_ok = module != "config"
                    || top != "broker"
                    || BROKER_CONFIG_READERS.contains(&rel_text.as_str());
                if (module != top && !allowed.contains(&module.as_str())) || !config_ok {
                    wrong.push(format!(
                        "{rel_text}:{}: {top} -> {module}: {}",
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports pointing up the layers:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        checked.len(),
        ALLOWED.len(),
        "every layer has files: {checked:?}"
    );
}

#[test]
fn grouped_and_nested_paths_are_all_seen() {
    assert_eq!(
        named_modules("use crate::server::AcceptorContext;"),
        ["server"]
    );
    assert_eq!(
        named_modules("use crate::{broker::Broker, session::{self, PeerInfo}, stomp};"),
        ["broker", "session", "stomp"]
    );
    assert_eq!(
        named_modules("let x = crate::a::f(crate::b::g());"),
        ["a", "b"]
    );
}
