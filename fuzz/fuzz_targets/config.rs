//! Fuzzes the configuration loader: any text, as a broker.toml, must load or be refused with
//! a message that names the file and says what is wrong, never panic.
#![no_main]

#[path = "../checks/config.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
