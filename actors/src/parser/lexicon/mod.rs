//! The small languages inside the model's output: who speaks a confer line
//! (`Ada:`, `- **Byron** (dryly):`), and the tags (`<speak who="Ada">`,
//! `</SPEAK >`).
//!
//! Every matcher here answers on a prefix of the input, so the parser can ask
//! as soon as a few bytes arrive: [`Decision::Partial`] means "more input could
//! still change the answer", and the other answers never change whatever
//! follows. That is what lets the parser decide a confer line the moment its
//! successor's first characters settle it, and still give the same events for
//! any chunking of the same text.
//!
//! What a character's name may be is decided here too ([`check_name`]), and
//! the roster uses the same rule, so every name the roster accepts is one the
//! parser can find at the start of a line.
//!
//! The seams: `speaker.rs` holds the name rules and the speaker prefix,
//! `tags.rs` the markers and tags; this file holds the reading machinery
//! both share ([`Decision`], and the cursor whose running out means "not
//! yet known").

mod speaker;
mod tags;

pub use speaker::{KnownName, Named, Speaker, check_name, speaker};
pub use tags::{Marker, Tag, marker};

/// An answer that more input may still change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Settled: this is what the text is, however it continues.
    Yes(T),
    /// Settled: it is not.
    No,
    /// Not yet known.
    Partial,
}

/// Reads the input with the rule that running out means "not yet known",
/// unless the input is complete (a whole line), when it means "no".
struct Cursor<'a> {
    s: &'a str,
    at: usize,
    complete: bool,
}

enum Step<T> {
    Done(T),
    Fail,
    More,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn out_of_input<T>(&self) -> Step<T> {
        if self.complete { Step::Fail } else { Step::More }
    }

    fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// Consumes `lit` (ASCII, compared case-insensitively) if the input starts with it.
    fn literal(&mut self, lit: &str) -> Step<()> {
        let rest = self.rest().as_bytes();
        let n = rest.len().min(lit.len());
        if !rest[..n].eq_ignore_ascii_case(&lit.as_bytes()[..n]) {
            return Step::Fail;
        }
        if n < lit.len() {
            return self.out_of_input();
        }
        self.at += n;
        Step::Done(())
    }

    /// Markdown emphasis around a name: `**`, `__`, `*` or `_`.
    fn emphasis(&mut self) -> Step<()> {
        match self.peek() {
            None => self.out_of_input(),
            Some('*' | '_') => {
                let c = self.rest().as_bytes()[0];
                self.at += 1;
                if self.rest().as_bytes().first() == Some(&c) {
                    self.at += 1;
                }
                Step::Done(())
            }
            Some(_) => Step::Done(()),
        }
    }
}

impl<T> Step<T> {
    fn and_then<U>(self, f: impl FnOnce(T) -> Step<U>) -> Step<U> {
        match self {
            Step::Done(t) => f(t),
            Step::Fail => Step::Fail,
            Step::More => Step::More,
        }
    }
}
