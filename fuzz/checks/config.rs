//! Fuzzes the configuration loader: any text, as a broker.toml, must load or be refused with
//! a message that names the file and says what is wrong, never panic.
//!
//! Shared by the fuzz target and by tests/fuzz_findings.rs, which replays every committed
//! finding and corpus input on the stable toolchain in CI.
use std::path::Path;

/// The check, on one input: panics on a defect.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist, so only an absolute users-file can reach a real file.
    let origin = Path::new("/nonexistent-wrenmq-fuzz/broker.toml");
    if let Err(e) = wrenmq::config::parse(text, origin) {
        let message = e.to_string();
        let (file, reason) = message
            .split_once(": ")
            .unwrap_or_else(|| panic!("error without a file and a reason: {message:?}"));
        // A problem inside a users file that could be read names that file; anything else
        // names the configuration file.
        assert!(
            file.starts_with("/nonexistent-wrenmq-fuzz/") || Path::new(file).is_file(),
            "error does not name the file: {message:?}"
        );
        assert!(
            !reason.trim().is_empty(),
            "error without a reason: {message:?}"
        );
    }
}
