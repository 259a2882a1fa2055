//! Message selectors: the JMS SQL-92 subset Artemis calls filter expressions
//! (`filter-expressions.adoc`), as sent in a SUBSCRIBE `selector` header or set as a queue's
//! `filter`. Pure code: it knows nothing of the broker, STOMP or I/O, so the core can compile a
//! selector once and ask it about each message through the [`Properties`] trait.
//!
//! # Grammar
//!
//! Comparison (`=`, `<>`, `<`, `<=`, `>`, `>=`), arithmetic (`+`, `-`, `*`, `/`, unary `-` and
//! `+`), `AND` / `OR` / `NOT`, `[NOT] BETWEEN a AND b`, `[NOT] IN ('a', 'b', …)`,
//! `[NOT] LIKE 'pattern' [ESCAPE 'c']` (`%` any run of characters, `_` exactly one),
//! `IS [NOT] NULL`, and parentheses. Precedence from loosest: `OR`, `AND`, `NOT`, the
//! comparison forms (which do not chain: `a = b = c` is an error), `+ -`, `* /`, unary signs.
//!
//! Literals: strings in single quotes with `''` for a quote inside; integers (`42`, `0x2A`, an
//! optional trailing `L`), decimals and exponents (`1.5`, `.5`, `2.`, `1e3`, `1.5E-2`);
//! `TRUE` and `FALSE`. Keywords are case-insensitive, identifiers case-sensitive.
//!
//! # Identifiers and the hyphen rule
//!
//! An identifier starts with a letter, `_` or `$` and continues with letters, digits, `_` and
//! `$` (Java-identifier style, Unicode letters included). STOMP headers are often hyphenated
//! (`content-type`), so, as Artemis's `hyphenated_props:` prefix does, a `-` **immediately
//! followed by a letter, `_` or `$`** continues the identifier: `content-type` and `a-b` are
//! each one identifier, and subtraction between two identifiers needs a space (`a - b` or
//! `a -b`). `a-1` is still `a` minus 1, because a digit cannot start an identifier. The
//! reserved words `AND OR NOT BETWEEN IN LIKE ESCAPE IS NULL TRUE FALSE` (any case) are not
//! identifiers; a hyphenated word containing one (`not-before`) is.
//!
//! # Types and three-valued logic
//!
//! Every expression is TRUE, FALSE or UNKNOWN (SQL's NULL). A missing property, a type mismatch,
//! integer overflow and division by zero all give UNKNOWN; `NOT UNKNOWN` is UNKNOWN,
//! `FALSE AND UNKNOWN` is FALSE, `TRUE OR UNKNOWN` is TRUE. A selector matches a message only
//! when it evaluates to TRUE.
//!
//! STOMP headers are strings, so strings that look like numbers are taken as numbers:
//! - **A string against a number** (a numeric literal, a numeric property, or arithmetic): when
//!   the string is an integer or a decimal number in the literal syntax above (an optional
//!   sign, digits, optional fraction and exponent; no spaces, no hex), it is that number;
//!   otherwise the comparison or the arithmetic is UNKNOWN. So with header `age:21`,
//!   `age > 18` is TRUE and with `age:old` it is UNKNOWN.
//! - **A string against a string**: `=` and `<>` compare the text exactly (so `'1.0' = '1'` is
//!   FALSE). The orderings `<`, `<=`, `>`, `>=` compare numerically when both strings are
//!   numbers by the rule above and are UNKNOWN otherwise: there is no lexicographic ordering,
//!   which would make `'10' < '9'` TRUE.
//! - **Booleans**: a boolean compares with a boolean by `=` and `<>` only. A string `true` or
//!   `false` (any case) compared with a boolean, or used directly as a condition
//!   (`flag AND x = 1`), counts as that boolean.
//! - Integers and decimals mix numerically; integer arithmetic is exact (`7 / 2` is 3) and
//!   UNKNOWN on overflow; anything else (a boolean in arithmetic, a number against a boolean)
//!   is UNKNOWN.
//! - `IN` and `LIKE` apply to strings only; any other value gives UNKNOWN.
//! - `x BETWEEN a AND b` is `x >= a AND x <= b`; the `NOT` forms are the negation of the
//!   positive form (so UNKNOWN stays UNKNOWN).
//!
//! # Bounds
//!
//! The text comes from a client, so parsing and matching are bounded: at most
//! [`MAX_SELECTOR_LEN`] bytes, nesting (parentheses, `NOT`, unary signs) at most
//! [`MAX_NESTING`] deep, chains of `AND`/`OR`/`+`/`*` kept flat so the tree stays shallow, and
//! `LIKE` compiled once and matched in O(pattern × value) without backtracking blow-up. No input
//! panics.

mod ast;
mod eval;
mod like;
mod parse;
mod print;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

/// The longest selector text accepted, in bytes: a selector is stored with each subscription
/// and walked for every message, so a client must not be able to make it arbitrarily large.
pub const MAX_SELECTOR_LEN: usize = 4096;

/// The deepest nesting of parentheses, `NOT` and unary signs accepted: parsing and evaluation
/// recurse on nesting, and this keeps the stack use small whatever the client sends.
pub const MAX_NESTING: usize = 64;

/// A compiled selector: parse once when a subscription or queue is created, then ask
/// [`Selector::matches`] for each message.
#[derive(Debug, Clone)]
pub struct Selector {
    text: String,
    expr: ast::Expr,
}

impl Selector {
    /// Compiles `text`, or says where and why it is not a selector.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let expr = parse::parse(text)?;
        Ok(Selector {
            text: text.to_string(),
            expr,
        })
    }

    /// Whether a message with these properties is selected: TRUE only; UNKNOWN and FALSE are
    /// no match.
    pub fn matches(&self, props: &dyn Properties) -> bool {
        eval::matches(&self.expr, props)
    }

    /// The original text, as the client sent it (for logs, management and error messages).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Two selectors are equal when they mean the same expression tree, whatever their spacing,
/// keyword case or redundant parentheses.
impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

/// The canonical form: every operation in parentheses, keywords in upper case, literals
/// normalised. It parses back to an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}

/// What a selector can ask of a message: the broker implements it over headers and the
/// `JMS…`/`AMQ…` identifiers, tests over maps, and the selector stays independent of both.
pub trait Properties {
    /// The value of identifier `name`, or None when the message has no such property.
    fn property(&self, name: &str) -> Option<Value<'_>>;
}

/// A property value. Borrowed strings let the broker hand out header text without copying.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Text, such as any STOMP header (numeric-looking text compares as a number; see the
    /// module docs).
    Str(Cow<'a, str>),
    /// A whole number, such as a priority or a timestamp.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

/// Why a selector was refused, precise enough for the ERROR frame a client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad selector at position {position}: expected {expected}, found {found}")]
pub struct SelectorError {
    /// 1-based column, counted in characters, where the problem is.
    pub position: usize,
    /// What would have been acceptable there.
    pub expected: String,
    /// What was there instead (`end of input` at the end).
    pub found: String,
}
