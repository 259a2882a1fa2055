//! Fuzzes the configuration loader: any text, as a broker.toml, must load or be refused with
//! a message that names the file and says what is wrong, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist, so a users-file key cannot reach a real file.
    let origin = Path::new("/nonexistent-wrenmq-fuzz/broker.toml");
    if let Err(e) = wrenmq::config::parse(text, origin) {
        let message = e.to_string();
        let (file, reason) = message
            .split_once(": ")
            .unwrap_or_else(|| panic!("error without a file and a reason: {message:?}"));
        assert!(
            file.starts_with("/nonexistent-wrenmq-fuzz/"),
            "error does not name the file: {message:?}"
        );
        assert!(
            !reason.trim().is_empty(),
            "error without a reason: {message:?}"
        );
    }
});
