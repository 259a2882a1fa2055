//! Replays the fuzzers' inputs on the stable toolchain: every finding in
//! `fuzz/findings/<target>/` (each was a crash once, and is fixed) and every input of the
//! committed corpora in `fuzz/corpus/<target>/`, through the same checks the fuzz targets run
//! (`fuzz/checks/`). A finding that comes back, or a corpus input a change breaks, fails CI
//! without a nightly toolchain or an hour of fuzzing.
//!
//! The session target is not replayed here: its inputs are `arbitrary` scripts played against
//! an in-process broker, which needs the fuzz crate's harness.

#[path = "../fuzz/checks/config.rs"]
mod config;
#[path = "../fuzz/checks/decode.rs"]
mod decode;
#[path = "../fuzz/checks/selector.rs"]
mod selector;

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input, reporting the file of the first that panics.
fn replay(kind: &str, target: &str, check: fn(&[u8])) -> usize {
    let files = inputs(kind, target);
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(cause) = std::panic::catch_unwind(|| check(&data)) {
            let why = cause
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{} fails the {target} check again: {why}", file.display());
        }
    }
    files.len()
}

#[test]
fn every_config_finding_stays_fixed() {
    // The users-file finding must be here, or this test proves nothing.
    assert!(replay("findings", "config", config::check) >= 1);
}

#[test]
fn config_corpus_passes() {
    assert!(replay("corpus", "config", config::check) > 0);
}

#[test]
fn decode_findings_and_corpus_pass() {
    replay("findings", "decode", decode::check);
    assert!(replay("corpus", "decode", decode::check) > 0);
}

#[test]
fn selector_findings_and_corpus_pass() {
    replay("findings", "selector", selector::check);
    assert!(replay("corpus", "selector", selector::check) > 0);
}
