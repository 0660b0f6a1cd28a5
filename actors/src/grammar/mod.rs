//! A GBNF grammar per turn, so a local model cannot leave panel's format.
//!
//! Small local models ignore the format the head describes; with a grammar
//! the server will only sample tokens the grammar admits. Each grammar is
//! built from the turn itself — who is on stage, its mode, the confer depth
//! — and from the same [`FormatWords`] the head shows the model, so what the
//! model is told and what it is held to cannot drift apart.
//!
//! - A panel turn: a confer of 1 to `depth + 2` lines `Name: text` (at
//!   most [`CONFER_LINE`] characters each), then replies — a speak or a
//!   pass per character, each name at most once, in any order, at least
//!   one speak. "At most once" needs a rule per set of names still to
//!   answer, so it is exact up to
//!   [`EXACT_CAST`] characters; a larger cast gets a grammar that bounds the
//!   number of replies but not who repeats.
//! - An @-addressed turn: exactly one speak by that character, no confer.
//! - A one-to-one: exactly one speak by the one character, no confer.
//!
//! Names are the on-stage characters' display names, exactly. Speak text may
//! span lines — up to [`SPEAK_LINES`] of at most [`SPEAK_LINE`] characters,
//! so a small model that starts repeating itself is made to close the speak
//! (measured: a 135M model otherwise loops inside its first speak until
//! `max_tokens`) — but cannot open a tag (`<`), nor open a line with an
//! on-stage name and a colon (`guard`: no speaking for others); confer text
//! stays on its line. Those numbers are ceilings: the turn's own bounds come
//! from its `max_tokens` ([`bounds`]), so the longest turn the grammar admits
//! still fits the budget and can always close.
//! The output is GBNF as llama.cpp reads it: literals, character classes,
//! groups, `?` and `{m,n}` repetition, which vLLM's GBNF-reading backend
//! (xgrammar) takes too.

mod budget;
mod guard;

use std::fmt::Write as _;

pub use budget::{BYTES_PER_TOKEN, Bounds, estimated_tokens};

use crate::event::TurnMode;
use crate::templates::FormatWords;

/// Largest cast whose grammar enforces "each name at most once" exactly
/// (its rule count doubles with each character: 2 × 2^n).
pub const EXACT_CAST: usize = 6;

/// Most lines one speak may run to (paragraphs and their blank lines),
/// whatever the budget.
pub const SPEAK_LINES: usize = 8;
/// Most characters on one line of a speak, whatever the budget.
pub const SPEAK_LINE: usize = 600;
/// Most characters of one confer line's text, whatever the budget.
pub const CONFER_LINE: usize = 200;

/// The grammar for one turn. `cast`: the on-stage names; `to`: the
/// addressee's name for an addressed turn; `max_tokens`: the turn's budget,
/// which the longest admitted turn fits.
pub fn for_turn(
    words: &FormatWords,
    mode: TurnMode,
    cast: &[&str],
    to: Option<&str>,
    depth: u8,
    max_tokens: u32,
) -> String {
    let mut g = Grammar::default();
    let alone = alone(mode, cast, to);
    let b = budget::for_budget(words, cast, alone, depth, max_tokens);
    speak_text(&mut g, cast, b);
    if let Some(name) = alone {
        g.rule("root", &format!("{} text {} \"\\n\"?", lit(&words.speak_open(name)), lit(&words.speak_close)));
        return g.0;
    }
    g.rule("root", &format!("confer r-{}-0", (1u32 << cast.len().min(EXACT_CAST)) - 1));
    confer(&mut g, words, cast, b);
    for (i, name) in cast.iter().enumerate() {
        g.rule(
            &format!("sp-{i}"),
            &format!("{} text {} \"\\n\"", lit(&words.speak_open(name)), lit(&words.speak_close)),
        );
        g.rule(&format!("pa-{i}"), &format!("{} \"\\n\"", lit(&words.pass(name))));
    }
    if cast.len() <= EXACT_CAST {
        replies_exact(&mut g, cast.len());
    } else {
        replies_bounded(&mut g, cast.len());
    }
    g.0
}

/// The bounds [`for_turn`] builds the same turn's grammar with.
pub fn bounds(
    words: &FormatWords,
    mode: TurnMode,
    cast: &[&str],
    to: Option<&str>,
    depth: u8,
    max_tokens: u32,
) -> Bounds {
    budget::for_budget(words, cast, alone(mode, cast, to), depth, max_tokens)
}

/// The one speaker of a turn that has no confer.
fn alone<'a>(mode: TurnMode, cast: &[&'a str], to: Option<&'a str>) -> Option<&'a str> {
    match mode {
        TurnMode::Addressed => to.or(cast.first().copied()),
        TurnMode::OneToOne => cast.first().copied(),
        TurnMode::Panel if cast.len() == 1 => cast.first().copied(),
        TurnMode::Panel => None,
    }
}

#[derive(Default)]
struct Grammar(String);

impl Grammar {
    fn rule(&mut self, name: &str, body: &str) {
        let _ = writeln!(self.0, "{name} ::= {body}");
    }
}

/// A GBNF string literal.
fn lit(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text`: one to `speak_lines` lines, none opening a tag or a name's line.
fn speak_text(g: &mut Grammar, cast: &[&str], b: Bounds) {
    guard::line(g, cast, b.speak_line);
    if b.speak_lines == 1 {
        g.rule("text", "line");
        return;
    }
    g.rule("text", "line tl-2?");
    for k in 2..b.speak_lines {
        g.rule(&format!("tl-{k}"), &format!("\"\\n\" line tl-{}?", k + 1));
    }
    g.rule(&format!("tl-{}", b.speak_lines), "\"\\n\" line");
}

fn confer(g: &mut Grammar, words: &FormatWords, cast: &[&str], b: Bounds) {
    let most = b.confer_lines.max(1);
    g.rule("confer", &format!("{} \"\\n\" cl-1 {} \"\\n\"", lit(&words.confer_open), lit(&words.confer_close)));
    // cl-k: line k, and optionally the rest, up to `most` lines.
    for k in 1..most {
        g.rule(&format!("cl-{k}"), &format!("cline cl-{}?", k + 1));
    }
    g.rule(&format!("cl-{most}"), "cline");
    g.rule("cline", "cname \": \" ctext \"\\n\"");
    let names: Vec<String> = cast.iter().map(|n| lit(n)).collect();
    g.rule("cname", &names.join(" | "));
    g.rule("ctext", &format!("[^\\n<]{{1,{}}}", b.confer_line.max(1)));
}

/// `r-M-S`: the replies still to come when the names in bit set `M` have not
/// answered yet and (`S` = 1) someone has already spoken.
fn replies_exact(g: &mut Grammar, n: usize) {
    let full = (1u32 << n) - 1;
    for mask in (1..=full).rev() {
        for spoken in [false, true] {
            let mut alternatives = Vec::new();
            for i in (0..n).filter(|i| mask & (1 << i) != 0) {
                let rest = mask & !(1 << i);
                let next = |s: bool| if rest == 0 { String::new() } else { format!(" r-{rest}-{}", u8::from(s)) };
                alternatives.push(format!("sp-{i}{}", next(true)));
                // A pass may not be the last reply unless someone has spoken.
                if rest != 0 || spoken {
                    alternatives.push(format!("pa-{i}{}", next(spoken)));
                }
            }
            let body = alternatives.join(" | ");
            let body = if spoken { format!("( {body} )?") } else { body };
            g.rule(&format!("r-{mask}-{}", u8::from(spoken)), &body);
        }
    }
}

/// Up to `n` replies by any of the cast (a cast too large to track names).
fn replies_bounded(g: &mut Grammar, n: usize) {
    let reply: Vec<String> = (0..n).flat_map(|i| [format!("sp-{i}"), format!("pa-{i}")]).collect();
    g.rule("reply", &reply.join(" | "));
    let full = (1u32 << EXACT_CAST) - 1;
    g.rule(&format!("r-{full}-0"), "rb-1");
    for k in 1..n {
        g.rule(&format!("rb-{k}"), &format!("reply rb-{}?", k + 1));
    }
    g.rule(&format!("rb-{n}"), "reply");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped_for_gbnf() {
        assert_eq!(lit("<speak who=\"Ada\">"), "\"<speak who=\\\"Ada\\\">\"");
        assert_eq!(lit("a\\b\nc"), "\"a\\\\b\\nc\"");
    }

    #[test]
    fn a_larger_cast_grows_the_grammar_by_rules_not_beyond_reason() {
        let names = ["A", "B", "C", "D", "E", "F"];
        let g = for_turn(&FormatWords::default(), TurnMode::Panel, &names, None, 4, 4096);
        assert!(g.len() < 64 * 1024, "{} bytes", g.len());
        let names: Vec<String> = (0..12).map(|i| format!("N{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let g = for_turn(&FormatWords::default(), TurnMode::Panel, &names, None, 4, 4096);
        assert!(g.contains("rb-12 ::= reply"), "{g}");
    }
}
