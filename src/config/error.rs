//! Errors from loading a configuration file.
//!
//! Every error names the file it came from, because a broker may be started from a script whose
//! working directory the operator does not know; and every problem with a setting names the
//! setting's dotted key path (`acceptors[0].bind`), because TOML arrays of tables make "line 12"
//! alone hard to map back to "which acceptor".

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, not UTF-8, ...).
    #[error("{}: cannot read configuration file: {cause}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the operating system said; kept in the message rather than as a `source()` so a
        /// plain `{}` print tells the whole story without the caller walking the chain.
        cause: io::Error,
    },
    /// The file is not valid TOML, or a value does not fit the schema (wrong type, unknown key,
    /// unparsable socket address, ...).
    #[error("{}: {}{reason}{}", path.display(), KeyPrefix(key.as_deref()), LocationSuffix(*location))]
    Parse {
        /// The file the text came from.
        path: PathBuf,
        /// Dotted key path of the offending setting; `None` for TOML syntax errors that are not
        /// about any one key.
        key: Option<String>,
        /// What is wrong, in the words of the TOML parser or serde.
        reason: String,
        /// Where in the file, when the parser could tell.
        location: Option<Location>,
    },
    /// The file parsed, but some settings are inconsistent or out of range. All problems are
    /// reported at once so the operator can fix them in one edit.
    #[error("{}: {}", path.display(), ProblemList(errors))]
    Invalid {
        /// The file the configuration came from.
        path: PathBuf,
        /// Every problem found; never empty.
        errors: Vec<ValidationError>,
    },
}

/// A 1-based line and column in the configuration file, counted in characters so it matches what
/// an editor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// Converts a byte offset into `text` to a line and column; offsets past the end, or inside a
    /// multi-byte character, are clamped so an imprecise span never hides the error itself.
    pub fn from_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One inconsistent or out-of-range setting found by [`Config::validate`](super::Config::validate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ValidationError {
    /// Dotted key path of the setting, e.g. `address-settings[1].max-size-bytes`.
    pub key: String,
    /// Why the value is refused, phrased for the operator.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error; exists so validation rules read as one line each.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> ValidationError {
        ValidationError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

struct KeyPrefix<'a>(Option<&'a str>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "{key}: "),
            None => Ok(()),
        }
    }
}

struct LocationSuffix(Option<Location>);

impl fmt::Display for LocationSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, " ({location})"),
            None => Ok(()),
        }
    }
}

struct ProblemList<'a>(&'a [ValidationError]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A single problem stays on one line, matching the shape of parse errors; several get one
        // line each so none is lost at the end of a very long line.
        match self.0 {
            [only] => write!(f, "{only}"),
            many => {
                write!(f, "{} invalid settings:", many.len())?;
                for error in many {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(
            Location::from_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        // "bé" is 3 bytes but 2 characters; the column is what an editor shows.
        let offset = text.find(" = 2").unwrap_or(0);
        assert_eq!(
            Location::from_offset(text, offset),
            Location { line: 2, column: 3 }
        );
        assert_eq!(Location::from_offset(text, 10_000).line, 3);
    }

    #[test]
    fn invalid_lists_every_problem() {
        let one = ConfigError::Invalid {
            path: PathBuf::from("b.toml"),
            errors: vec![ValidationError::new(
                "journal.max-batch",
                "must be greater than 0",
            )],
        };
        assert_eq!(
            one.to_string(),
            "b.toml: journal.max-batch: must be greater than 0"
        );
        let two = ConfigError::Invalid {
            path: PathBuf::from("b.toml"),
            errors: vec![
                ValidationError::new("a", "x"),
                ValidationError::new("b", "y"),
            ],
        };
        assert_eq!(
            two.to_string(),
            "b.toml: 2 invalid settings:\n  a: x\n  b: y"
        );
    }
}
