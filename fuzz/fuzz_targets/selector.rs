//! Fuzzes the selector parser and evaluator: any text must parse or be refused with a
//! position inside it, never panic; a selector that parses must print a canonical form that
//! parses back to the same tree, and must evaluate against a few messages without panicking.
#![no_main]

#[path = "../checks/selector.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
