//! The selector grammar, with nom: tokens are nom combinators, and each precedence level is a
//! function returning nom's `IResult`, so the recursion depth can be carried explicitly and
//! bounded. Wherever something is required, a missing piece becomes a committed failure
//! (`nom::Err::Failure`) saying what was expected, so the client learns the first point where
//! its text stops making sense.

use nom::bytes::complete::{tag, tag_no_case, take_while};
use nom::character::complete::{char, digit0, digit1, hex_digit1, one_of, satisfy};
use nom::combinator::{opt, peek, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0_count;
use nom::{IResult, Parser};

use super::ast::{ArithOp, CmpOp, Expr, Literal};
use super::like::LikePattern;
use super::{MAX_NESTING, MAX_SELECTOR_LEN, SelectorError};

/// Where parsing stopped and what would have been acceptable there.
#[derive(Debug)]
pub(crate) struct Fail<'a> {
    at: &'a str,
    expected: String,
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(at: &'a str, _: ErrorKind) -> Self {
        Fail {
            at,
            expected: String::new(),
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail<'a>>;

/// The reserved words of the JMS grammar: never identifiers.
const KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "BETWEEN", "IN", "LIKE", "ESCAPE", "IS", "NULL", "TRUE", "FALSE",
];

/// Parses a whole selector.
pub(crate) fn parse(text: &str) -> Result<Expr, SelectorError> {
    if text.len() > MAX_SELECTOR_LEN {
        let mut cut = MAX_SELECTOR_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(SelectorError {
            position: text.get(..cut).map_or(0, |t| t.chars().count()) + 1,
            expected: format!("a selector of at most {MAX_SELECTOR_LEN} bytes"),
            found: format!("{} bytes", text.len()),
        });
    }
    let whole = |i| {
        let (i, expr) = required(i, "an expression", |i| or_expr(i, 0))?;
        let (i, _) = ws(i)?;
        if !i.is_empty() {
            return fail(i, "an operator, AND, OR or end of input");
        }
        Ok((i, expr))
    };
    match whole(text) {
        Ok((_, expr)) => Ok(expr),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(error_at(text, e)),
        Err(nom::Err::Incomplete(_)) => Err(SelectorError {
            position: text.chars().count() + 1,
            expected: "a complete selector".to_string(),
            found: "end of input".to_string(),
        }),
    }
}

fn error_at(text: &str, e: Fail<'_>) -> SelectorError {
    let consumed = text.len().saturating_sub(e.at.len());
    let position = text.get(..consumed).map_or(0, |t| t.chars().count()) + 1;
    let expected = if e.expected.is_empty() {
        "a valid selector".to_string()
    } else {
        e.expected
    };
    SelectorError {
        position,
        expected,
        found: describe(e.at),
    }
}

/// Names what starts `rest`, briefly, for "found …".
fn describe(rest: &str) -> String {
    let Some(first) = rest.chars().next() else {
        return "end of input".to_string();
    };
    let token: String = if is_ident_start(first) || first.is_ascii_digit() {
        rest.chars()
            .take_while(|c| is_ident_part(*c) || *c == '.')
            .take(32)
            .collect()
    } else if first == '\'' {
        return "a string".to_string();
    } else if "<>=!".contains(first) {
        rest.chars()
            .take_while(|c| "<>=!".contains(*c))
            .take(3)
            .collect()
    } else {
        first.to_string()
    };
    format!("'{token}'")
}

fn fail<'a, T>(at: &'a str, expected: impl Into<String>) -> Res<'a, T> {
    Err(nom::Err::Failure(Fail {
        at,
        expected: expected.into(),
    }))
}

/// Runs a parser for something that must be there: if it does not even start, that is a
/// failure saying `expected`, at the first non-blank character.
fn required<'a, T>(
    i: &'a str,
    expected: &str,
    p: impl FnOnce(&'a str) -> Res<'a, T>,
) -> Res<'a, T> {
    match p(i) {
        Err(nom::Err::Error(_)) => {
            let (at, _) = ws(i)?;
            fail(at, expected)
        }
        other => other,
    }
}

/// One level deeper into the tree, refused past [`MAX_NESTING`] before recursing.
fn deeper(at: &str, depth: usize) -> Result<usize, nom::Err<Fail<'_>>> {
    if depth >= MAX_NESTING {
        let (at, _) = ws(at)?;
        return Err(nom::Err::Failure(Fail {
            at,
            expected: format!("nesting at most {MAX_NESTING} deep"),
        }));
    }
    Ok(depth + 1)
}

fn ws(i: &str) -> Res<'_, &str> {
    take_while(|c: char| c.is_whitespace()).parse(i)
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// A word: an identifier or keyword, with the hyphen rule (a `-` followed directly by an
/// identifier-start character continues the word).
fn word(i: &str) -> Res<'_, &str> {
    let (i, _) = ws(i)?;
    recognize((satisfy(is_ident_start), many0_count(alt_part))).parse(i)
}

fn alt_part(i: &str) -> Res<'_, ()> {
    if let Ok((rest, _)) = satisfy::<_, &str, Fail<'_>>(is_ident_part).parse(i) {
        return Ok((rest, ()));
    }
    let (rest, _) = (char('-'), peek(satisfy(is_ident_start))).parse(i)?;
    Ok((rest, ()))
}

/// The keyword `kw`, in any case, as a whole word.
fn keyword<'a>(kw: &'static str) -> impl Fn(&'a str) -> Res<'a, ()> {
    move |i| {
        let (rest, w) = word(i)?;
        if w.eq_ignore_ascii_case(kw) {
            Ok((rest, ()))
        } else {
            Err(nom::Err::Error(Fail::from_error_kind(i, ErrorKind::Tag)))
        }
    }
}

/// A symbol such as `(` or `<=`, after optional blanks.
fn symbol<'a>(s: &'static str) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i| {
        let (i, _) = ws(i)?;
        tag(s).parse(i)
    }
}

/// Requires the keyword `kw`, or fails saying `expected`.
fn expect_keyword<'a>(i: &'a str, kw: &'static str, expected: &str) -> Res<'a, ()> {
    required(i, expected, keyword(kw))
}

fn or_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    let (mut i, first) = and_expr(i, depth)?;
    let mut items = vec![first];
    while let Ok((rest, _)) = keyword("OR")(i) {
        let (rest, next) = required(rest, "an expression after OR", |r| and_expr(r, depth))?;
        items.push(next);
        i = rest;
    }
    Ok((i, flatten(items, Expr::Or)))
}

fn and_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    let (mut i, first) = not_expr(i, depth)?;
    let mut items = vec![first];
    while let Ok((rest, _)) = keyword("AND")(i) {
        let (rest, next) = required(rest, "an expression after AND", |r| not_expr(r, depth))?;
        items.push(next);
        i = rest;
    }
    Ok((i, flatten(items, Expr::And)))
}

fn flatten(mut items: Vec<Expr>, many: fn(Vec<Expr>) -> Expr) -> Expr {
    match items.pop() {
        Some(only) if items.is_empty() => only,
        Some(last) => {
            items.push(last);
            many(items)
        }
        None => many(items),
    }
}

fn not_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    if let Ok((rest, _)) = keyword("NOT")(i) {
        let depth = deeper(rest, depth)?;
        let (rest, inner) = required(rest, "an expression after NOT", |r| not_expr(r, depth))?;
        return Ok((rest, Expr::Not(Box::new(inner))));
    }
    cmp_expr(i, depth)
}

fn cmp_op(i: &str) -> Res<'_, CmpOp> {
    let (i, _) = ws(i)?;
    let (rest, op) = nom::branch::alt((
        tag("<="),
        tag("<>"),
        tag(">="),
        tag("<"),
        tag(">"),
        tag("="),
    ))
    .parse(i)?;
    let op = match op {
        "<=" => CmpOp::Le,
        "<>" => CmpOp::Ne,
        ">=" => CmpOp::Ge,
        "<" => CmpOp::Lt,
        ">" => CmpOp::Gt,
        _ => CmpOp::Eq,
    };
    Ok((rest, op))
}

fn cmp_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    let (i, left) = add_expr(i, depth)?;
    let left = Box::new(left);
    if let Ok((rest, op)) = cmp_op(i) {
        let expected = format!("a value after '{}'", op.symbol());
        let (rest, right) = required(rest, &expected, |r| add_expr(r, depth))?;
        return Ok((rest, Expr::Cmp(op, left, Box::new(right))));
    }
    if let Ok((rest, _)) = keyword("IS")(i) {
        let (rest, negated) = match keyword("NOT")(rest) {
            Ok((rest, _)) => (rest, true),
            Err(_) => (rest, false),
        };
        let expected = if negated {
            "NULL after IS NOT"
        } else {
            "NOT or NULL after IS"
        };
        let (rest, _) = expect_keyword(rest, "NULL", expected)?;
        return Ok((
            rest,
            Expr::IsNull {
                expr: left,
                negated,
            },
        ));
    }
    let (rest, negated) = match keyword("NOT")(i) {
        Ok((rest, _)) => (rest, true),
        Err(_) => (i, false),
    };
    if let Ok((rest, _)) = keyword("BETWEEN")(rest) {
        let (rest, low) = required(rest, "a value after BETWEEN", |r| add_expr(r, depth))?;
        let (rest, _) = expect_keyword(rest, "AND", "AND between the BETWEEN bounds")?;
        let (rest, high) = required(rest, "a value after BETWEEN … AND", |r| {
            add_expr(r, depth)
        })?;
        let expr = Expr::Between {
            expr: left,
            low: Box::new(low),
            high: Box::new(high),
            negated,
        };
        return Ok((rest, expr));
    }
    if let Ok((rest, _)) = keyword("IN")(rest) {
        let (rest, list) = in_list(rest)?;
        return Ok((
            rest,
            Expr::In {
                expr: left,
                list,
                negated,
            },
        ));
    }
    if let Ok((rest, _)) = keyword("LIKE")(rest) {
        let (rest, pattern) = like_pattern(rest)?;
        return Ok((
            rest,
            Expr::Like {
                expr: left,
                pattern,
                negated,
            },
        ));
    }
    if negated {
        let (at, _) = ws(rest)?;
        return fail(at, "BETWEEN, IN or LIKE after NOT");
    }
    Ok((i, *left))
}

fn in_list(i: &str) -> Res<'_, Vec<String>> {
    let (i, _) = required(i, "'(' after IN", symbol("("))?;
    let (mut i, first) = required(i, "a string literal in the IN list", string_lit)?;
    let mut list = vec![first];
    loop {
        if let Ok((rest, _)) = symbol(",")(i) {
            let (rest, item) = required(rest, "a string literal after ','", string_lit)?;
            list.push(item);
            i = rest;
        } else {
            let (rest, _) = required(i, "',' or ')' in the IN list", symbol(")"))?;
            return Ok((rest, list));
        }
    }
}

fn like_pattern(i: &str) -> Res<'_, LikePattern> {
    let (at, _) = ws(i)?;
    let (i, text) = required(at, "a string pattern after LIKE", string_lit)?;
    let (i, escape) = match keyword("ESCAPE")(i) {
        Ok((rest, _)) => {
            let (esc_at, _) = ws(rest)?;
            let (rest, esc) = required(esc_at, "a string after ESCAPE", string_lit)?;
            let mut chars = esc.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => (rest, Some(c)),
                _ => return fail(esc_at, "a single escape character"),
            }
        }
        Err(_) => (i, None),
    };
    match LikePattern::compile(&text, escape) {
        Ok(pattern) => Ok((i, pattern)),
        Err(_) => fail(
            at,
            "a LIKE pattern that does not end with its escape character",
        ),
    }
}

fn add_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    arith_chain(i, depth, ('+', ArithOp::Add), ('-', ArithOp::Sub), mul_expr)
}

fn mul_expr(i: &str, depth: usize) -> Res<'_, Expr> {
    arith_chain(i, depth, ('*', ArithOp::Mul), ('/', ArithOp::Div), unary)
}

/// `operand (op operand)*` for one precedence level, as one flat chain.
fn arith_chain<'a>(
    i: &'a str,
    depth: usize,
    a: (char, ArithOp),
    b: (char, ArithOp),
    operand: fn(&'a str, usize) -> Res<'a, Expr>,
) -> Res<'a, Expr> {
    let (mut i, first) = operand(i, depth)?;
    let mut rest_ops = Vec::new();
    loop {
        let (at, _) = ws(i)?;
        let op = match at.chars().next() {
            Some(c) if c == a.0 => a.1,
            Some(c) if c == b.0 => b.1,
            _ => break,
        };
        let after = at.get(1..).unwrap_or("");
        let expected = format!("a value after '{}'", op.symbol());
        let (after, next) = required(after, &expected, |r| operand(r, depth))?;
        rest_ops.push((op, next));
        i = after;
    }
    if rest_ops.is_empty() {
        Ok((i, first))
    } else {
        Ok((i, Expr::Arith(Box::new(first), rest_ops)))
    }
}

fn unary(i: &str, depth: usize) -> Res<'_, Expr> {
    let (at, _) = ws(i)?;
    let sign = at.chars().next().filter(|c| *c == '-' || *c == '+');
    if let Some(sign) = sign {
        let after = at.get(1..).unwrap_or("");
        let depth = deeper(after, depth)?;
        let expected = format!("a value after '{sign}'");
        let (rest, inner) = required(after, &expected, |r| unary(r, depth))?;
        let expr = if sign == '-' {
            Expr::Neg(Box::new(inner))
        } else {
            inner
        };
        return Ok((rest, expr));
    }
    primary(at, depth)
}

fn primary(i: &str, depth: usize) -> Res<'_, Expr> {
    let (i, _) = ws(i)?;
    if let Ok((rest, _)) = symbol("(")(i) {
        let depth = deeper(rest, depth)?;
        let (rest, inner) = required(rest, "an expression after '('", |r| or_expr(r, depth))?;
        let (rest, _) = required(rest, "')' to close '('", symbol(")"))?;
        return Ok((rest, inner));
    }
    if i.starts_with('\'') {
        let (rest, s) = string_lit(i)?;
        return Ok((rest, Expr::Lit(Literal::Str(s))));
    }
    if let Some(c) = i.chars().next()
        && (c.is_ascii_digit() || c == '.')
    {
        return number(i);
    }
    let (rest, w) = word(i)?;
    if w.eq_ignore_ascii_case("TRUE") {
        return Ok((rest, Expr::Lit(Literal::Bool(true))));
    }
    if w.eq_ignore_ascii_case("FALSE") {
        return Ok((rest, Expr::Lit(Literal::Bool(false))));
    }
    if KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k)) {
        // Not a value: the caller says what it wanted here.
        return Err(nom::Err::Error(Fail::from_error_kind(i, ErrorKind::Tag)));
    }
    Ok((rest, Expr::Ident(w.to_string())))
}

/// A quoted string, `''` standing for one quote. An opening quote with no closing one is a
/// failure; no opening quote is an ordinary error (something else may fit).
fn string_lit(i: &str) -> Res<'_, String> {
    let (mut i, _) = (ws, char('\'')).parse(i)?;
    let mut out = String::new();
    loop {
        let (rest, part) = take_while(|c| c != '\'').parse(i)?;
        out.push_str(part);
        if let Ok((rest, _)) = tag::<_, _, Fail<'_>>("''").parse(rest) {
            out.push('\'');
            i = rest;
        } else if let Ok((rest, _)) = char::<_, Fail<'_>>('\'').parse(rest) {
            return Ok((rest, out));
        } else {
            return fail(rest, "' to close the string");
        }
    }
}

fn number(i: &str) -> Res<'_, Expr> {
    if let Ok((rest, digits)) = (
        tag_no_case::<_, _, Fail<'_>>("0x"),
        hex_digit1,
        opt(one_of("lL")),
    )
        .parse(i)
        .map(|(rest, (_, digits, _))| (rest, digits))
    {
        return match i64::from_str_radix(digits, 16) {
            Ok(n) => Ok((rest, Expr::Lit(Literal::Int(n)))),
            Err(_) => fail(i, "a hexadecimal integer within 64 bits"),
        };
    }
    let mantissa = nom::branch::alt((
        recognize((digit1, opt((char('.'), digit0)))),
        recognize((char('.'), digit1)),
    ));
    let exponent = opt(recognize((one_of("eE"), opt(one_of("+-")), digit1)));
    let (rest, (text, exp)) = (recognize(mantissa), exponent).parse(i)?;
    let is_float = text.contains('.') || exp.is_some();
    if is_float {
        let full = i.get(..i.len() - rest.len()).unwrap_or(text);
        return match full.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((rest, Expr::Lit(Literal::Float(f)))),
            _ => fail(i, "a number within the 64-bit floating-point range"),
        };
    }
    let (rest, _) = opt(one_of("lL")).parse(rest)?;
    match text.parse::<i64>() {
        Ok(n) => Ok((rest, Expr::Lit(Literal::Int(n)))),
        Err(_) => fail(i, "an integer within 64 bits"),
    }
}
