//! Property tests of the selector parser and evaluator, through the public API only: a
//! selector comes from a client, so no text may panic the parser, printing a parsed selector
//! must give text that parses back to the same tree, and evaluating anything against any
//! properties must not panic either.

use std::borrow::Cow;
use std::collections::HashMap;

use proptest::prelude::*;
use wrenmq::selector::{MAX_SELECTOR_LEN, Properties, Selector, Value};

const NAMES: &[&str] = &[
    "a",
    "b",
    "n",
    "content-type",
    "x_1",
    "$v",
    "Ünï",
    "my-header",
];

const TOKENS: &[&str] = &[
    "a",
    "content-type",
    "a-b",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "!=",
    "+",
    "-",
    "*",
    "/",
    "(",
    ")",
    "AND",
    "or",
    "Not",
    "BETWEEN",
    "IN",
    "LIKE",
    "ESCAPE",
    "IS",
    "NULL",
    "TRUE",
    "false",
    "'x'",
    "'it''s'",
    "'",
    "''",
    "0x1F",
    "0x",
    "1.5e3",
    "1e",
    "10L",
    "9999999999999999999999",
    ".5",
    ".",
    ",",
    "%",
    "_",
    "é",
    "$",
    "\t",
    "\n",
    "'\\'",
    "1e999",
];

/// Selector text built from the grammar, with keywords in random case; every composite is
/// parenthesised so the generator need not know the precedence rules.
fn expr_text() -> impl Strategy<Value = String> {
    let kw = |k: &'static str| {
        any::<u8>().prop_map(move |m| match m % 3 {
            0 => k.to_string(),
            1 => k.to_lowercase(),
            _ => k
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect(),
        })
    };
    let string = "[^']{0,6}|[a-z' ]{0,6}".prop_map(|s| format!("'{}'", s.replace('\'', "''")));
    let leaf = prop_oneof![
        3 => prop::sample::select(NAMES).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.unsigned_abs().to_string()),
        1 => (0u32..1000).prop_map(|n| n.to_string()),
        3 => (0u32..3).prop_map(|n| n.to_string()),
        1 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{:?}", f.abs())),
        1 => (0u32..1000).prop_map(|n| format!("0x{n:X}")),
        1 => (0u32..100).prop_map(|n| format!("{n}L")),
        2 => string.clone(),
        1 => kw("TRUE"),
        1 => kw("FALSE"),
    ];
    leaf.prop_recursive(5, 64, 4, move |inner| {
        let pattern_units = prop::collection::vec(
            prop::sample::select(&["a", "%", "_", "é", "!%", "!_", "!!", "''"][..]),
            0..6,
        );
        prop_oneof![
            4 => (inner.clone(), prop::sample::select(&["+", "-", "*", "/"][..]), inner.clone())
                .prop_map(|(l, op, r)| format!("({l} {op} {r})")),
            1 => inner.clone().prop_map(|e| format!("(-{e})")),
            1 => inner.clone().prop_map(|e| format!("(+ {e})")),
            1 => (
                inner.clone(),
                prop::sample::select(&["=", "<>", "<", "<=", ">", ">="][..]),
                inner.clone()
            )
                .prop_map(|(l, op, r)| format!("({l}{op}{r})")),
            1 => (kw("NOT"), inner.clone()).prop_map(|(k, e)| format!("({k} {e})")),
            1 => (prop::collection::vec(inner.clone(), 2..4), kw("AND"))
                .prop_map(|(v, k)| format!("({})", v.join(&format!(" {k} ")))),
            1 => (prop::collection::vec(inner.clone(), 2..4), kw("OR"))
                .prop_map(|(v, k)| format!("({})", v.join(&format!(" {k} ")))),
            1 => (inner.clone(), any::<bool>(), inner.clone(), inner.clone(), kw("BETWEEN"))
                .prop_map(|(e, not, lo, hi, k)| {
                    let not = if not { "NOT " } else { "" };
                    format!("({e} {not}{k} {lo} AND {hi})")
                }),
            1 => (inner.clone(), any::<bool>(), prop::collection::vec(string.clone(), 1..4))
                .prop_map(|(e, not, list)| {
                    let not = if not { "not " } else { "" };
                    format!("({e} {not}in ({}))", list.join(","))
                }),
            1 => (inner.clone(), any::<bool>(), pattern_units, any::<bool>()).prop_map(
                |(e, not, units, escaped)| {
                    let not = if not { "NOT " } else { "" };
                    let pattern = units.concat();
                    if escaped {
                        format!("({e} {not}LIKE '{pattern}' ESCAPE '!')")
                    } else {
                        format!("({e} {not}LIKE '{}')", pattern.replace('!', ""))
                    }
                }
            ),
            1 => (inner, any::<bool>()).prop_map(|(e, not)| {
                format!("({e} IS {}NULL)", if not { "NOT " } else { "" })
            }),
        ]
    })
}

fn value() -> impl Strategy<Value = Value<'static>> {
    let numeric_text = prop::sample::select(
        &[
            "5", "-5", "2.5", "1e3", "+7", "0", "true", "FALSE", "abc", "", "NaN", "inf",
        ][..],
    );
    prop_oneof![
        numeric_text.prop_map(|s| Value::Str(Cow::Borrowed(s))),
        any::<String>().prop_map(|s| Value::Str(Cow::Owned(s))),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
    ]
}

#[derive(Debug)]
struct Map(HashMap<String, Value<'static>>);

impl Properties for Map {
    fn property(&self, name: &str) -> Option<Value<'_>> {
        self.0.get(name).cloned()
    }
}

fn props() -> impl Strategy<Value = Map> {
    prop::collection::hash_map(
        prop::sample::select(NAMES).prop_map(str::to_string),
        value(),
        0..NAMES.len(),
    )
    .prop_map(Map)
}

/// Printing a parsed selector gives text that parses to the same tree and prints the same.
fn assert_round_trip(sel: &Selector) -> Result<(), TestCaseError> {
    let printed = sel.to_string();
    if printed.len() > MAX_SELECTOR_LEN {
        return Ok(());
    }
    let again =
        Selector::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
    prop_assert_eq!(&again, sel, "{}", printed);
    prop_assert_eq!(again.to_string(), printed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_any_text(text in any::<String>()) {
        if let Ok(sel) = Selector::parse(&text) {
            assert_round_trip(&sel)?;
        }
    }

    #[test]
    fn parse_never_panics_on_token_soup(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..24),
        glue in prop::sample::select(&["", " "][..]),
    ) {
        let text = tokens.join(glue);
        match Selector::parse(&text) {
            Ok(sel) => assert_round_trip(&sel)?,
            Err(e) => {
                prop_assert!(e.position >= 1 && e.position <= text.chars().count() + 1, "{e}");
                prop_assert!(!e.expected.is_empty() && !e.found.is_empty());
            }
        }
    }

    #[test]
    fn generated_selectors_parse_and_round_trip(text in expr_text()) {
        prop_assume!(text.len() <= MAX_SELECTOR_LEN);
        let sel = Selector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(sel.text(), text.as_str());
        assert_round_trip(&sel)?;
    }

    #[test]
    fn evaluation_never_panics_and_never_matches_both_ways(
        text in expr_text(),
        props in props(),
    ) {
        prop_assume!(text.len() + 10 <= MAX_SELECTOR_LEN);
        let Ok(sel) = Selector::parse(&text) else {
            return Err(TestCaseError::fail(format!("{text} does not parse")));
        };
        let negated = Selector::parse(&format!("NOT ({text})"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!(sel.matches(&props) && negated.matches(&props)), "{}", text);
        // The printed form means the same thing.
        let printed = Selector::parse(&sel.to_string())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(printed.matches(&props), sel.matches(&props));
    }
}
