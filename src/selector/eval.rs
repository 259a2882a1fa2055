//! Evaluation with SQL's three-valued logic. Every sub-expression yields a value or `None`
//! (NULL: a missing property, a type mismatch, overflow, division by zero); a condition
//! whose operands are NULL is UNKNOWN, and only TRUE selects a message. The typing rules are
//! in the module docs of `selector`.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{ArithOp, CmpOp, Expr, Literal};
use super::{Properties, Value};

/// TRUE, FALSE or UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn into_value<'a>(self) -> Option<Value<'a>> {
        match self {
            Truth::True => Some(Value::Bool(true)),
            Truth::False => Some(Value::Bool(false)),
            Truth::Unknown => None,
        }
    }
}

/// A number from a value, by the string rule.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

/// Whether the selector is TRUE for these properties.
pub(crate) fn matches(expr: &Expr, props: &dyn Properties) -> bool {
    truth(expr, props) == Truth::True
}

/// The truth of an expression used as a condition.
pub(crate) fn truth(expr: &Expr, props: &dyn Properties) -> Truth {
    match value(expr, props) {
        Some(v) => as_bool(&v).map_or(Truth::Unknown, Truth::from_bool),
        None => Truth::Unknown,
    }
}

fn value<'a>(expr: &'a Expr, props: &'a dyn Properties) -> Option<Value<'a>> {
    match expr {
        Expr::Lit(Literal::Str(s)) => Some(Value::Str(Cow::Borrowed(s))),
        Expr::Lit(Literal::Int(n)) => Some(Value::Int(*n)),
        Expr::Lit(Literal::Float(f)) => Some(Value::Float(*f)),
        Expr::Lit(Literal::Bool(b)) => Some(Value::Bool(*b)),
        Expr::Ident(name) => props.property(name),
        Expr::Neg(inner) => match as_num(&value(inner, props)?)? {
            Num::Int(n) => n.checked_neg().map(Value::Int),
            Num::Float(f) => Some(Value::Float(-f)),
        },
        Expr::Arith(first, rest) => {
            let mut acc = as_num(&value(first, props)?)?;
            for (op, operand) in rest {
                let rhs = as_num(&value(operand, props)?)?;
                acc = arith(*op, acc, rhs)?;
            }
            Some(match acc {
                Num::Int(n) => Value::Int(n),
                Num::Float(f) => Value::Float(f),
            })
        }
        Expr::Cmp(op, l, r) => compare(*op, value(l, props), value(r, props)).into_value(),
        Expr::Not(inner) => truth(inner, props).not().into_value(),
        Expr::And(items) => {
            let mut result = Truth::True;
            for item in items {
                match truth(item, props) {
                    Truth::False => return Truth::False.into_value(),
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::True => {}
                }
            }
            result.into_value()
        }
        Expr::Or(items) => {
            let mut result = Truth::False;
            for item in items {
                match truth(item, props) {
                    Truth::True => return Truth::True.into_value(),
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::False => {}
                }
            }
            result.into_value()
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = value(expr, props);
            let above = compare(CmpOp::Ge, v.clone(), value(low, props));
            let below = compare(CmpOp::Le, v, value(high, props));
            let within = match (above, below) {
                (Truth::False, _) | (_, Truth::False) => Truth::False,
                (Truth::True, Truth::True) => Truth::True,
                _ => Truth::Unknown,
            };
            negate_if(within, *negated).into_value()
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let found = match value(expr, props) {
                Some(Value::Str(s)) => Truth::from_bool(list.iter().any(|item| *item == *s)),
                _ => Truth::Unknown,
            };
            negate_if(found, *negated).into_value()
        }
        Expr::Like {
            expr,
            pattern,
            negated,
        } => {
            let found = match value(expr, props) {
                Some(Value::Str(s)) => Truth::from_bool(pattern.matches(&s)),
                _ => Truth::Unknown,
            };
            negate_if(found, *negated).into_value()
        }
        Expr::IsNull { expr, negated } => {
            let null = Truth::from_bool(value(expr, props).is_none());
            negate_if(null, *negated).into_value()
        }
    }
}

fn negate_if(t: Truth, negated: bool) -> Truth {
    if negated { t.not() } else { t }
}

/// A boolean, or a string `true`/`false` in any case.
fn as_bool(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_num(v: &Value<'_>) -> Option<Num> {
    match v {
        Value::Int(n) => Some(Num::Int(*n)),
        Value::Float(f) => Some(Num::Float(*f)),
        Value::Str(s) => parse_number(s),
        Value::Bool(_) => None,
    }
}

/// A string read as a number when it is one in the selector's literal syntax (with an
/// optional sign): `Rust`'s own float parser would also take `inf`, `NaN` and the like.
fn parse_number(s: &str) -> Option<Num> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (body.get(..at)?, Some(body.get(at + 1..)?)),
        None => (body, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    let fraction_ok = fraction.is_none_or(digits);
    let has_digits = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    if !(digits(whole) && fraction_ok && exponent_ok && has_digits) {
        return None;
    }
    if fraction.is_none()
        && exponent.is_none()
        && let Ok(n) = s.parse::<i64>()
    {
        return Some(Num::Int(n));
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Num::Float)
}

fn to_float(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn arith(op: ArithOp, a: Num, b: Num) -> Option<Num> {
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let r = match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
        };
        return r.map(Num::Int);
    }
    let (x, y) = (to_float(a), to_float(b));
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div if y == 0.0 => return None,
        ArithOp::Div => x / y,
    };
    Some(Num::Float(r))
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => to_float(a).partial_cmp(&to_float(b)),
    }
}

fn order_holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

fn compare(op: CmpOp, l: Option<Value<'_>>, r: Option<Value<'_>>) -> Truth {
    let (Some(l), Some(r)) = (l, r) else {
        return Truth::Unknown;
    };
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
    match (&l, &r) {
        (Value::Str(a), Value::Str(b)) if equality => {
            Truth::from_bool((a == b) == (op == CmpOp::Eq))
        }
        (Value::Bool(_), _) | (_, Value::Bool(_)) => match (as_bool(&l), as_bool(&r)) {
            (Some(a), Some(b)) if equality => Truth::from_bool((a == b) == (op == CmpOp::Eq)),
            _ => Truth::Unknown,
        },
        _ => match (as_num(&l), as_num(&r)) {
            (Some(a), Some(b)) => {
                num_cmp(a, b).map_or(Truth::Unknown, |o| Truth::from_bool(order_holds(op, o)))
            }
            _ => Truth::Unknown,
        },
    }
}
