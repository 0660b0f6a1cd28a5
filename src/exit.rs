//! How `panel` ends: an exit code that says what kind of failure it was,
//! and an error of one line.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | failed: what was asked could not be done (a roster that does not load, an unknown session, an unreadable file), or a check found problems (`audit`, `rebuild`) |
//! | 2 | usage: the command line is wrong — clap's own errors, and settings panel refuses together (listening beyond loopback without `--token`, a provider without its key) |
//! | 3 | cannot start here: the address is taken or not allowed, or a data folder cannot be created |
//!
//! An error is classed where it is raised, by making it a [`Refusal`]; every
//! other error is a plain failure (1). A user's mistake never panics: a
//! panic is a bug, and keeps Rust's own code (101).

use std::process::ExitCode;

/// The kinds of failure, by exit code (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Failed = 1,
    Usage = 2,
    CannotStart = 3,
}

/// An error that knows its exit code. Its message is the whole message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub exit: Exit,
    pub message: String,
}

impl Exit {
    /// An error of this kind.
    pub fn error(self, message: impl Into<String>) -> anyhow::Error {
        Refusal { exit: self, message: message.into() }.into()
    }
}

/// The exit code for `error`: the kind of the first [`Refusal`] in its
/// chain (context added on top keeps it), else [`Exit::Failed`].
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    let exit = error.chain().find_map(|e| e.downcast_ref::<Refusal>()).map_or(Exit::Failed, |r| r.exit);
    ExitCode::from(exit as u8)
}

/// `error` and its causes on one line: a multi-line cause (a TOML parser's
/// excerpt with its caret) is folded, so a terminal or a log shows one
/// line per failure.
pub fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let parts: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_under_added_context() {
        let e = Exit::CannotStart.error("cannot listen on 127.0.0.1:1: address in use").context("starting the server");
        assert_eq!(code_of(&e), ExitCode::from(3));
        assert_eq!(code_of(&anyhow::anyhow!("no such session")), ExitCode::from(1));
        assert_eq!(code_of(&Exit::Usage.error("needs --token")), ExitCode::from(2));
    }

    #[test]
    fn a_multi_line_cause_is_folded_into_one_line() {
        let e = anyhow::anyhow!("TOML parse error at line 1, column 3\n  |\n1 | a =\n  |    ^\nexpected a value\n")
            .context("bad pricing.toml");
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("bad pricing.toml: TOML parse error") && line.ends_with("expected a value"), "{line}");
    }
}
