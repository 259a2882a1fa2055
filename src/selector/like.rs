//! `LIKE` patterns, compiled once when the selector is parsed. Matching is the glob algorithm
//! with a single backtrack point (only the latest `%` absorbs one more character on a
//! mismatch, since a later `%` can absorb anything an earlier one could), so a hostile pattern
//! such as `%a%a%a%a%b` costs at most O(pattern × value) steps, never exponential time.

/// One step of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `%`: any run of characters, possibly empty. Runs of `%` are collapsed into one.
    AnyRun,
    /// `_`: exactly one character.
    AnyOne,
    /// A character that must be there as written (including an escaped `%` or `_`).
    Char(char),
}

/// A `LIKE` pattern with its optional escape character, as written and compiled.
#[derive(Debug, Clone)]
pub(crate) struct LikePattern {
    text: String,
    escape: Option<char>,
    steps: Vec<Step>,
}

/// Two patterns are the same when written the same; the compiled steps follow from that.
impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.escape == other.escape
    }
}

/// A pattern ending in its escape character: there is nothing for the escape to apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DanglingEscape;

impl LikePattern {
    /// Compiles `text`; the escape character makes the next character (any character, usually
    /// `%` or `_`) literal.
    pub(crate) fn compile(text: &str, escape: Option<char>) -> Result<Self, DanglingEscape> {
        let mut steps = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let step = if Some(c) == escape {
                Step::Char(chars.next().ok_or(DanglingEscape)?)
            } else if c == '%' {
                if steps.last() == Some(&Step::AnyRun) {
                    continue;
                }
                Step::AnyRun
            } else if c == '_' {
                Step::AnyOne
            } else {
                Step::Char(c)
            };
            steps.push(step);
        }
        Ok(LikePattern {
            text: text.to_string(),
            escape,
            steps,
        })
    }

    /// The pattern as written (without quotes).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The escape character, when an `ESCAPE` clause gave one.
    pub(crate) fn escape(&self) -> Option<char> {
        self.escape
    }

    /// Whether the whole of `value` matches the pattern.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let next_char = |at: usize| value.get(at..).and_then(|rest| rest.chars().next());
        let mut step = 0;
        let mut at = 0;
        // After the latest `%`: the step following it and where in the value to resume.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            match self.steps.get(step) {
                Some(Step::AnyRun) => {
                    step += 1;
                    resume = Some((step, at));
                    continue;
                }
                Some(Step::AnyOne) => {
                    if let Some(c) = next_char(at) {
                        step += 1;
                        at += c.len_utf8();
                        continue;
                    }
                }
                Some(Step::Char(want)) => {
                    if let Some(c) = next_char(at).filter(|c| c == want) {
                        step += 1;
                        at += c.len_utf8();
                        continue;
                    }
                }
                None if at >= value.len() => return true,
                None => {}
            }
            // A mismatch: let the latest `%` absorb one more character and retry after it.
            let Some((after_run, absorbed)) = resume.as_mut() else {
                return false;
            };
            let Some(c) = next_char(*absorbed) else {
                return false;
            };
            *absorbed += c.len_utf8();
            step = *after_run;
            at = *absorbed;
        }
    }
}
