//! Unit tests: each operator, the three-valued truth tables, the string typing rule, the
//! hyphen rule, LIKE, and the errors a client sees for typical mistakes.

use std::borrow::Cow;
use std::collections::HashMap;

use super::eval::{Truth, truth};
use super::{MAX_NESTING, MAX_SELECTOR_LEN, Properties, Selector, SelectorError, Value};

struct Props(HashMap<&'static str, Value<'static>>);

impl Properties for Props {
    fn property(&self, name: &str) -> Option<Value<'_>> {
        self.0.get(name).cloned()
    }
}

fn props(pairs: &[(&'static str, Value<'static>)]) -> Props {
    Props(pairs.iter().cloned().collect())
}

fn s(text: &'static str) -> Value<'static> {
    Value::Str(Cow::Borrowed(text))
}

fn sample() -> Props {
    props(&[
        ("n", Value::Int(5)),
        ("x", Value::Float(2.5)),
        ("t", Value::Bool(true)),
        ("f", Value::Bool(false)),
        ("age", s("21")),
        ("price", s("9.75")),
        ("name", s("aardvark")),
        ("flag", s("TRUE")),
        ("content-type", s("text/plain")),
        ("a", Value::Int(10)),
        ("b", Value::Int(3)),
        ("a-b", Value::Int(100)),
        ("limit", s("10")),
        ("small", s("9")),
    ])
}

fn eval(text: &str) -> Truth {
    let sel = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    truth(&sel.expr, &sample())
}

fn is(text: &str, expected: Truth) {
    assert_eq!(eval(text), expected, "{text}");
}

use Truth::{False as F, True as T, Unknown as U};

#[test]
fn comparisons_on_numbers() {
    for (text, want) in [
        ("n = 5", T),
        ("n <> 5", F),
        ("n < 6", T),
        ("n <= 5", T),
        ("n > 5", F),
        ("n >= 5", T),
        ("x = 2.5", T),
        ("x < n", T),
        ("n = 5.0", T),
        ("missing = 1", U),
        ("missing <> 1", U),
    ] {
        is(text, want);
    }
}

#[test]
fn arithmetic_and_precedence() {
    for (text, want) in [
        ("n + 1 = 6", T),
        ("n - 1 = 4", T),
        ("n * 2 = 10", T),
        ("n / 2 = 2", T),
        ("x * 2 = 5", T),
        ("n / 2.0 = 2.5", T),
        ("1 + 2 * 3 = 7", T),
        ("(1 + 2) * 3 = 9", T),
        ("10 - 2 - 3 = 5", T),
        ("-n = -5", T),
        ("- -n = 5", T),
        ("+n = 5", T),
        ("n / 0 = 1", U),
        ("n / 0 IS NULL", T),
        ("x / 0 = 1", U),
        ("9223372036854775807 + 1 > 0", U),
        ("t + 1 = 2", U),
        ("name + 1 = 2", U),
    ] {
        is(text, want);
    }
}

#[test]
fn three_valued_truth_tables() {
    // T, F and U spelt as expressions: `missing = 1` is UNKNOWN.
    let spell = |t: Truth| match t {
        T => "TRUE",
        F => "FALSE",
        U => "missing = 1",
    };
    let and = |a, b| match (a, b) {
        (F, _) | (_, F) => F,
        (T, T) => T,
        _ => U,
    };
    let or = |a, b| match (a, b) {
        (T, _) | (_, T) => T,
        (F, F) => F,
        _ => U,
    };
    for a in [T, F, U] {
        let not = match a {
            T => F,
            F => T,
            U => U,
        };
        is(&format!("NOT ({})", spell(a)), not);
        for b in [T, F, U] {
            is(&format!("({}) AND ({})", spell(a), spell(b)), and(a, b));
            is(&format!("({}) OR ({})", spell(a), spell(b)), or(a, b));
        }
    }
    is("FALSE AND missing = 1", F);
    is("TRUE OR missing = 1", T);
    is("NOT missing = 1", U);
    is("TRUE AND TRUE AND missing = 1", U);
    is("FALSE OR FALSE OR TRUE", T);
}

#[test]
fn only_true_matches() {
    let p = sample();
    assert!(Selector::parse("n = 5").unwrap().matches(&p));
    assert!(!Selector::parse("n = 6").unwrap().matches(&p));
    assert!(!Selector::parse("missing = 6").unwrap().matches(&p));
    assert!(!Selector::parse("NOT missing = 6").unwrap().matches(&p));
}

#[test]
fn between_in_like_is_null() {
    for (text, want) in [
        ("n BETWEEN 1 AND 5", T),
        ("n BETWEEN 6 AND 9", F),
        ("n NOT BETWEEN 6 AND 9", T),
        ("n NOT BETWEEN 1 AND 9", F),
        ("missing BETWEEN 1 AND 2", U),
        ("missing NOT BETWEEN 1 AND 2", U),
        ("n BETWEEN missing AND 2", F),
        ("n BETWEEN missing AND 9", U),
        ("age BETWEEN 18 AND 65", T),
        ("n BETWEEN 1 AND 9 AND n = 5", T),
        ("name IN ('cat', 'aardvark')", T),
        ("name IN ('cat')", F),
        ("name NOT IN ('cat')", T),
        ("missing IN ('cat')", U),
        ("missing NOT IN ('cat')", U),
        ("n IN ('5')", U),
        ("name LIKE 'aard%'", T),
        ("name LIKE 'a_rdvark'", T),
        ("name LIKE '_'", F),
        ("name LIKE '%'", T),
        ("name NOT LIKE 'b%'", T),
        ("missing LIKE '%'", U),
        ("n LIKE '%'", U),
        ("missing IS NULL", T),
        ("missing IS NOT NULL", F),
        ("n IS NULL", F),
        ("n IS NOT NULL", T),
    ] {
        is(text, want);
    }
}

#[test]
fn like_escape_makes_wildcards_literal() {
    let p = props(&[("v", s("50%_off")), ("w", s("50xyoff"))]);
    let check = |text: &str, prop: &str, want: bool| {
        let sel = Selector::parse(&text.replace("PROP", prop)).unwrap();
        assert_eq!(sel.matches(&p), want, "{text} on {prop}");
    };
    check(r"PROP LIKE '50\%\_off' ESCAPE '\'", "v", true);
    check(r"PROP LIKE '50\%\_off' ESCAPE '\'", "w", false);
    check("PROP LIKE '50%_off'", "w", true);
    check("PROP LIKE '50!%%' ESCAPE '!'", "v", true);
    check("PROP LIKE '50!%%' ESCAPE '!'", "w", false);
    check("PROP LIKE '50%!_off' escape '!'", "v", true);
}

#[test]
fn like_matches_unicode_by_character() {
    let p = props(&[("v", s("héllo wörld"))]);
    for (pattern, want) in [
        ("h_llo%", true),
        ("%w_rld", true),
        ("h_l%", true),
        ("h___l%", false),
        ("h_llo_w_rld", true),
        ("%ö%", true),
    ] {
        let sel = Selector::parse(&format!("v LIKE '{pattern}'")).unwrap();
        assert_eq!(sel.matches(&p), want, "{pattern}");
    }
}

#[test]
fn like_worst_case_pattern_finishes() {
    let long = "a".repeat(3000);
    let p = Props([("v", Value::Str(Cow::Owned(long)))].into_iter().collect());
    let sel = Selector::parse("v LIKE '%a%a%a%a%a%a%a%a%a%a%a%a%b'").unwrap();
    assert!(!sel.matches(&p));
    let sel = Selector::parse("v LIKE '%a%a%a%a%a%a%a%a%a%a%a%a%a'").unwrap();
    assert!(sel.matches(&p));
}

#[test]
fn numeric_strings_compare_as_numbers() {
    for (text, want) in [
        ("age > 18", T),
        ("age = 21", T),
        ("age = 21.0", T),
        ("age + 1 = 22", T),
        ("price < 10", T),
        ("price * 4 = 39", T),
        ("name > 18", U),
        ("name = 18", U),
        ("limit > small", T),
        ("limit = '10'", T),
        ("limit = '10.0'", F),
        ("name < 'b'", U),
        ("name = 'aardvark'", T),
        ("name <> 'aardvark'", F),
        ("'1e2' = 100", T),
        ("'-3' < 0", T),
        ("'inf' > 0", U),
        ("'NaN' = 0", U),
        ("' 5' = 5", U),
        ("'0x10' = 16", U),
    ] {
        is(text, want);
    }
}

#[test]
fn booleans_and_boolean_strings() {
    for (text, want) in [
        ("t", T),
        ("f", F),
        ("t = TRUE", T),
        ("t <> FALSE", T),
        ("f = FALSE", T),
        ("t < FALSE", U),
        ("flag = TRUE", T),
        ("flag", T),
        ("flag AND n = 5", T),
        ("name = TRUE", U),
        ("name", U),
        ("n = TRUE", U),
        ("n", U),
        ("(n = 5) = TRUE", T),
        ("true = TRUE", T),
    ] {
        is(text, want);
    }
}

#[test]
fn hyphenated_identifiers_are_one_name() {
    for (text, want) in [
        ("content-type = 'text/plain'", T),
        ("content-type LIKE 'text/%'", T),
        ("a-b = 100", T),
        ("a - b = 7", T),
        ("a -b = 7", T),
        ("a-1 = 9", T),
        ("a--b = 13", T),
    ] {
        is(text, want);
    }
    let sel = Selector::parse("not-before IS NULL").unwrap();
    assert_eq!(sel.to_string(), "(not-before IS NULL)");
}

#[test]
fn keywords_ignore_case_identifiers_do_not() {
    let p = props(&[("Name", s("x")), ("name", s("y"))]);
    assert!(
        Selector::parse("Name = 'x' and name = 'y' Or FALSE")
            .unwrap()
            .matches(&p)
    );
    assert!(
        Selector::parse("name not in ('x') AND name Is Not null")
            .unwrap()
            .matches(&p)
    );
    assert!(!Selector::parse("Name = 'y'").unwrap().matches(&p));
}

#[test]
fn literals() {
    for (text, want) in [
        ("'it''s' = 'it''s'", T),
        ("0x1F = 31", T),
        ("0X1f = 31", T),
        ("10L = 10", T),
        ("1e3 = 1000", T),
        ("1.5E-1 = 0.15", T),
        (".5 = 0.5", T),
        ("2. = 2", T),
        ("'' = ''", T),
    ] {
        is(text, want);
    }
    let p = props(&[("q", s("it's"))]);
    assert!(Selector::parse("q = 'it''s'").unwrap().matches(&p));
}

#[test]
fn display_is_canonical_and_parses_back() {
    for (text, printed) in [
        ("a=1", "(a = 1)"),
        ("a = 1 or b = 2 or c = 3", "((a = 1) OR (b = 2) OR (c = 3))"),
        ("not a between 1 and 2", "(NOT (a BETWEEN 1 AND 2))"),
        ("a not in ('x','it''s')", "(a NOT IN ('x', 'it''s'))"),
        (r"a like 'x\%' escape '\'", r"(a LIKE 'x\%' ESCAPE '\')"),
        ("-a + 2 * 3 - 1.5e10", "((-a) + (2 * 3) - 15000000000.0)"),
        ("x is not null", "(x IS NOT NULL)"),
        ("((TRUE))", "TRUE"),
        ("0x10", "16"),
    ] {
        let sel = Selector::parse(text).unwrap();
        assert_eq!(sel.to_string(), printed, "{text}");
        assert_eq!(sel.text(), text);
        assert_eq!(Selector::parse(printed).unwrap(), sel, "{printed}");
    }
    assert_ne!(
        Selector::parse("a = 1").unwrap(),
        Selector::parse("a = 2").unwrap()
    );
}

fn err(text: &str) -> SelectorError {
    match Selector::parse(text) {
        Ok(sel) => panic!("{text} parsed as {sel}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_position_and_expectation() {
    let e = err("a =");
    assert_eq!(
        e.to_string(),
        "bad selector at position 4: expected a value after '=', found end of input"
    );
    let e = err("color = ");
    assert_eq!((e.position, e.found.as_str()), (9, "end of input"));
    let e = err("a = 'x");
    assert_eq!(
        (e.position, e.expected.as_str(), e.found.as_str()),
        (7, "' to close the string", "end of input")
    );
    let e = err("a IN ()");
    assert_eq!(
        (e.position, e.expected.as_str(), e.found.as_str()),
        (7, "a string literal in the IN list", "')'")
    );
    let e = err("(a = 1");
    assert_eq!(
        (e.position, e.expected.as_str(), e.found.as_str()),
        (7, "')' to close '('", "end of input")
    );
    let e = err("a == 1");
    assert_eq!((e.position, e.found.as_str()), (4, "'='"));
    let e = err("a != 1");
    assert_eq!(
        (e.position, e.expected.as_str(), e.found.as_str()),
        (3, "an operator, AND, OR or end of input", "'!='")
    );
    let e = err("a ~ 1");
    assert_eq!((e.position, e.found.as_str()), (3, "'~'"));
    let e = err("a = 1 AND");
    assert_eq!(e.expected, "an expression after AND");
    let e = err("a = AND b");
    assert_eq!((e.position, e.found.as_str()), (5, "'AND'"));
    let e = err("a NOT 5");
    assert_eq!(e.expected, "BETWEEN, IN or LIKE after NOT");
    let e = err("a BETWEEN 1 OR 2");
    assert_eq!(
        (e.position, e.expected.as_str()),
        (13, "AND between the BETWEEN bounds")
    );
    let e = err("a IN ('x' 'y')");
    assert_eq!(e.expected, "',' or ')' in the IN list");
    let e = err("a IN (1)");
    assert_eq!(e.expected, "a string literal in the IN list");
    let e = err("a LIKE 'x' ESCAPE 'ab'");
    assert_eq!(
        (e.position, e.expected.as_str()),
        (19, "a single escape character")
    );
    let e = err(r"a LIKE 'x\' ESCAPE '\'");
    assert_eq!(e.position, 8);
    let e = err("a IS 5");
    assert_eq!(e.expected, "NOT or NULL after IS");
    let e = err("a = b = c");
    assert_eq!(e.position, 7);
    let e = err("");
    assert_eq!(e.expected, "an expression");
    let e = err("   ");
    assert_eq!((e.position, e.found.as_str()), (4, "end of input"));
    let e = err("é = 'ü");
    assert_eq!(e.position, 7, "columns count characters, not bytes");
    let e = err("n = 99999999999999999999");
    assert_eq!(e.expected, "an integer within 64 bits");
    let e = err("n = 1e999");
    assert_eq!(e.position, 5);
    let e = err("AND = 1");
    assert_eq!((e.position, e.found.as_str()), (1, "'AND'"));
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "{}a = 1{}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(Selector::parse(&ok).is_ok());
    let deep = format!(
        "{}a = 1{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let e = err(&deep);
    assert_eq!(e.position, MAX_NESTING + 2);
    assert!(e.expected.contains("nesting"), "{e}");
    for unit in ["(", "NOT ", "-", "+", "- (NOT "] {
        let text = unit.repeat(MAX_SELECTOR_LEN / unit.len());
        assert!(err(&text).expected.contains("nesting"), "{unit}");
    }
    let nots = format!("{}TRUE", "NOT ".repeat(MAX_NESTING));
    is(&nots, T);
}

#[test]
fn long_flat_chains_are_fine() {
    let chain = vec!["n = 1"; 400].join(" OR ") + " OR n = 5";
    assert!(chain.len() <= MAX_SELECTOR_LEN);
    is(&chain, T);
    let sum = vec!["1"; 1000].join("+") + " = 1000";
    is(&sum, T);
}

#[test]
fn length_is_bounded() {
    let fits = format!("a = '{}'", "x".repeat(MAX_SELECTOR_LEN - 6));
    assert_eq!(fits.len(), MAX_SELECTOR_LEN);
    assert!(Selector::parse(&fits).is_ok());
    let e = err(&format!("a = '{}'", "x".repeat(MAX_SELECTOR_LEN - 5)));
    assert_eq!(e.position, MAX_SELECTOR_LEN + 1);
    assert_eq!(
        e.expected,
        format!("a selector of at most {MAX_SELECTOR_LEN} bytes")
    );
    assert!(
        err(&"é".repeat(MAX_SELECTOR_LEN))
            .expected
            .contains("at most")
    );
}

#[test]
fn selector_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Selector>();
}

/// The obvious dynamic-programming matcher, as a reference for the one-backtrack-point glob.
fn like_reference(pattern: &[char], value: &[char]) -> bool {
    // can[i][j]: pattern[i..] matches value[j..].
    let mut can = vec![vec![false; value.len() + 1]; pattern.len() + 1];
    can[pattern.len()][value.len()] = true;
    for i in (0..pattern.len()).rev() {
        for j in (0..=value.len()).rev() {
            can[i][j] = match pattern[i] {
                '%' => can[i + 1][j] || (j < value.len() && can[i][j + 1]),
                '_' => j < value.len() && can[i + 1][j + 1],
                c => j < value.len() && value[j] == c && can[i + 1][j + 1],
            };
        }
    }
    can[0][0]
}

proptest::proptest! {
    #[test]
    fn like_agrees_with_the_reference(pattern in "[ab%_]{0,8}", value in "[ab]{0,10}") {
        let compiled = super::like::LikePattern::compile(&pattern, None).unwrap();
        let p: Vec<char> = pattern.chars().collect();
        let v: Vec<char> = value.chars().collect();
        proptest::prop_assert_eq!(compiled.matches(&value), like_reference(&p, &v));
    }
}
