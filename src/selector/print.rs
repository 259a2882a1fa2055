//! The canonical text of a selector: every operation in parentheses, keywords upper case,
//! numbers in a form that reads back to the same value. Used in logs and management views,
//! and by the round-trip property test (print, parse, compare trees).

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{Expr, Literal};

fn quoted(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        if c == '\'' {
            f.write_str("''")?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char('\'')
}

fn not_word(negated: bool) -> &'static str {
    if negated { " NOT" } else { "" }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(Literal::Str(s)) => quoted(f, s),
            Expr::Lit(Literal::Int(n)) => write!(f, "{n}"),
            // Debug prints the shortest text that reads back exactly, always with a `.` or an
            // exponent, so it parses back as a decimal rather than an integer.
            Expr::Lit(Literal::Float(x)) => write!(f, "{x:?}"),
            Expr::Lit(Literal::Bool(true)) => f.write_str("TRUE"),
            Expr::Lit(Literal::Bool(false)) => f.write_str("FALSE"),
            Expr::Ident(name) => f.write_str(name),
            Expr::Neg(inner) => write!(f, "(-{inner})"),
            Expr::Arith(first, rest) => {
                write!(f, "({first}")?;
                for (op, operand) in rest {
                    write!(f, " {} {operand}", op.symbol())?;
                }
                f.write_char(')')
            }
            Expr::Cmp(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            Expr::Not(inner) => write!(f, "(NOT {inner})"),
            Expr::And(items) => chain(f, items, " AND "),
            Expr::Or(items) => chain(f, items, " OR "),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(f, "({expr}{} BETWEEN {low} AND {high})", not_word(*negated)),
            Expr::In {
                expr,
                list,
                negated,
            } => {
                write!(f, "({expr}{} IN (", not_word(*negated))?;
                for (n, item) in list.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    quoted(f, item)?;
                }
                f.write_str("))")
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => {
                write!(f, "({expr}{} LIKE ", not_word(*negated))?;
                quoted(f, pattern.text())?;
                if let Some(escape) = pattern.escape() {
                    f.write_str(" ESCAPE ")?;
                    quoted(f, escape.encode_utf8(&mut [0; 4]))?;
                }
                f.write_char(')')
            }
            Expr::IsNull { expr, negated } => write!(f, "({expr} IS{} NULL)", not_word(*negated)),
        }
    }
}

fn chain(f: &mut Formatter<'_>, items: &[Expr], separator: &str) -> fmt::Result {
    f.write_char('(')?;
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    f.write_char(')')
}
