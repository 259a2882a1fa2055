//! Progress bars for long verbs, shown only to a person: stdout a terminal, not `--json`, not
//! `--non-interactive`. Drawn on stderr so piped output stays clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::global::Resolved;

/// A bar of `len` steps (a spinner with a count when unknown), or a hidden one.
pub fn bar(len: Option<u64>, what: &str, r: &Resolved) -> ProgressBar {
    if r.json || r.non_interactive || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if len.is_some() {
        "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{spinner} {msg} {pos} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}
