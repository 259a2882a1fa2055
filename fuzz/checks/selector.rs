//! Fuzzes the selector parser and evaluator: any text must parse or be refused with a
//! position inside it, never panic; a selector that parses must print a canonical form that
//! parses back to the same tree, and must evaluate against a few messages without panicking.
//!
//! Shared by the fuzz target and by tests/fuzz_findings.rs, which replays every committed
//! finding and corpus input on the stable toolchain in CI.
use std::borrow::Cow;
use wrenmq::selector::{MAX_SELECTOR_LEN, Properties, Selector, Value};

/// A message as the selector sees it: a handful of headers of every kind.
struct Message(&'static [(&'static str, Value<'static>)]);

impl Properties for Message {
    fn property(&self, name: &str) -> Option<Value<'_>> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

const MESSAGES: &[Message] = &[
    Message(&[]),
    Message(&[
        ("color", Value::Str(Cow::Borrowed("red"))),
        ("age", Value::Str(Cow::Borrowed("21"))),
        ("JMSPriority", Value::Int(4)),
        ("weight", Value::Float(2.5)),
        ("flag", Value::Bool(true)),
        ("content-type", Value::Str(Cow::Borrowed("text/plain"))),
    ]),
    Message(&[
        ("color", Value::Str(Cow::Borrowed("%_\\'"))),
        ("age", Value::Int(i64::MAX)),
        ("JMSPriority", Value::Int(i64::MIN)),
        ("weight", Value::Float(f64::NAN)),
        ("flag", Value::Str(Cow::Borrowed("FALSE"))),
        ("a", Value::Str(Cow::Borrowed("1e308"))),
    ]),
];

/// The check, on one input: panics on a defect.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let selector = match Selector::parse(text) {
        Ok(s) => s,
        Err(e) => {
            let chars = text.chars().count();
            assert!(
                e.position >= 1 && e.position <= chars + 1,
                "error position {} outside a text of {chars} characters: {e}",
                e.position
            );
            assert!(
                !e.expected.is_empty() && !e.found.is_empty(),
                "vague error: {e}"
            );
            return;
        }
    };
    for message in MESSAGES {
        let _ = selector.matches(message);
    }
    let printed = selector.to_string();
    match Selector::parse(&printed) {
        Ok(again) => assert!(
            again == selector,
            "canonical form {printed:?} of {text:?} parses to a different selector"
        ),
        // The canonical form adds parentheses and normalises literals, so it may pass the
        // length or nesting bounds the original stayed within; that is not a defect.
        Err(e) if printed.len() > MAX_SELECTOR_LEN || e.expected.contains("nest") => {}
        Err(e) => panic!("canonical form {printed:?} of {text:?} does not parse: {e}"),
    }
}
