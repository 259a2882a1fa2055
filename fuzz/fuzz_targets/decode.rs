//! Fuzzes the STOMP decoder: arbitrary bytes, fed in two chunks, must never panic, and any
//! frame it accepts must survive an encode/decode round trip unchanged (modulo the
//! `content-length` the encoder rewrites). The same input also goes through a decoder that
//! streams bodies over a threshold (the large-message path): it must never panic either,
//! hand over pieces only in the order head, parts, end, and never more body than max-body.
#![no_main]

#[path = "../checks/decode.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
