//! How long a turn the grammar admits, from the turn's `max_tokens`.
//!
//! A grammar that admits more than `max_tokens` lets a model spend the whole
//! budget inside one speak and end on `length` with the format unclosed
//! (measured: SmolLM2-135M at `max_tokens` 220, confer plus one speak). So
//! every bound is derived here from the budget, and the invariant is: the
//! longest text the grammar admits has an [`estimated_tokens`] of at most
//! `max_tokens`, closing tags included — every well-formed turn can close.
//!
//! The estimate is deliberately pessimistic: one token per
//! [`BYTES_PER_TOKEN`] bytes, where English runs near four characters a
//! token in the tokenizers of the small models panel is used with, and a
//! grammar's forced tags tokenise worse than prose. Text in scripts that
//! take several bytes a character counts its bytes, which keeps the bound
//! on the safe side for most of them; a tokenizer spending more than one
//! token on two bytes can still run out. The budget goes to the fixed
//! words first (tags, names), then a quarter of the rest to the confer and
//! the remainder in equal shares to every character, as if all spoke.

use super::{CONFER_LINE, SPEAK_LINE, SPEAK_LINES};
use crate::templates::FormatWords;

/// Bytes the estimate counts as one token.
pub const BYTES_PER_TOKEN: usize = 2;
/// A speak gets one more line for every this many bytes of its share, so a
/// small budget buys one long line rather than eight stubs.
const PARAGRAPH: usize = 300;
/// A confer line's text is at least this long before the confer gets a
/// second line.
const CONFER_TEXT: usize = 40;

/// The grammar's limits for one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most confer lines (0 when the turn has no confer).
    pub confer_lines: usize,
    /// Most characters of one confer line's text.
    pub confer_line: usize,
    /// Most lines of one speak.
    pub speak_lines: usize,
    /// Most characters on one line of a speak.
    pub speak_line: usize,
}

/// The pessimistic token count of `text` the bounds are built on.
pub fn estimated_tokens(text: &str) -> usize {
    text.len().div_ceil(BYTES_PER_TOKEN)
}

/// The bounds for a turn: `alone` is the one speaker of a single-speak turn;
/// otherwise `cast` all may speak after a confer of at most `depth + 2` lines.
pub(super) fn for_budget(
    words: &FormatWords,
    cast: &[&str],
    alone: Option<&str>,
    depth: u8,
    max_tokens: u32,
) -> Bounds {
    let budget = usize::try_from(max_tokens).unwrap_or(usize::MAX).saturating_mul(BYTES_PER_TOKEN);
    let speak_words = |name: &str| words.speak_open(name).len() + words.speak_close.len() + 1;
    if let Some(name) = alone {
        let (speak_lines, speak_line) = speak_shape(budget.saturating_sub(speak_words(name)));
        return Bounds { confer_lines: 0, confer_line: 0, speak_lines, speak_line };
    }
    let n = cast.len().max(1);
    // Every reply as the costliest one: the bounded grammar of a large cast lets names repeat.
    let reply = cast.iter().map(|c| speak_words(c).max(words.pass(c).len() + 1)).max().unwrap_or(0);
    let fixed = words.confer_open.len() + words.confer_close.len() + 2 + n * reply;
    let text = budget.saturating_sub(fixed);
    let confer = text / 4;
    // Each confer line also carries a name, ": " and its newline.
    let per_line = cast.iter().map(|c| c.len()).max().unwrap_or(0) + 3;
    let confer_lines = (confer / (per_line + CONFER_TEXT)).clamp(1, usize::from(depth) + 2);
    let confer_line = (confer / confer_lines).saturating_sub(per_line).clamp(1, CONFER_LINE);
    let (speak_lines, speak_line) = speak_shape((text - confer) / n);
    Bounds { confer_lines, confer_line, speak_lines, speak_line }
}

/// Lines and line length for a speak of at most `bytes`, newlines included.
fn speak_shape(bytes: usize) -> (usize, usize) {
    let lines = (bytes / PARAGRAPH).clamp(1, SPEAK_LINES);
    let line = (bytes.saturating_sub(lines - 1) / lines).clamp(1, SPEAK_LINE);
    (lines, line)
}
