//! `transcript.md`: the session as people read it — the floor, each reply,
//! the confer under each turn, cast changes and the cost of every turn.
//!
//! Every piece of text that came from a model, a card or the floor is
//! escaped ([`text`]) or fenced ([`fenced`]) so that a static host rendering
//! Markdown shows it literally: no raw HTML, no link or emphasis it did not
//! mean, no way out of a code fence.

use std::fmt::Write as _;
use std::sync::Arc;

use super::manifest;
use crate::event::{EventBody, Logged, Timestamp};
use crate::id::CharacterId;

fn usd(x: Option<f64>) -> String {
    match x {
        None => "unpriced".into(),
        Some(x) => format!("${x:.4}"),
    }
}

/// `transcript.md`: the floor, each reply, the confer under each turn,
/// cast changes and cost per turn.
pub fn transcript(events: &[Arc<Logged>]) -> Option<String> {
    let m = manifest(events)?;
    let name = |id: &CharacterId| {
        text(&m.participants.iter().find(|p| p.id == *id).map_or_else(|| id.to_string(), |p| p.name.clone()))
    };
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", text(&m.title));
    let closed = m.closed.map(|t| format!(" · closed {}", day_time(&t))).unwrap_or_default();
    let _ = writeln!(
        out,
        "*Session `{}` · {} ({}) · opened {}{closed}*\n",
        m.id,
        m.model,
        m.provider,
        day_time(&m.created)
    );
    let cast: Vec<String> = m
        .participants
        .iter()
        .filter(|p| p.joined.first() == Some(&0))
        .map(|p| format!("**{}** — {}", text(&p.name), text(&p.tagline)))
        .collect();
    let _ = writeln!(out, "Starting cast: {}\n", cast.join("; "));
    if let Some(p) = &m.parent {
        let how = match p.carry {
            crate::event::Carry::Transcript => "its transcript",
            crate::event::Carry::Recap => "a recap",
        };
        let _ = writeln!(out, "Continued from session `{}` at turn {}, carrying {how}.\n", p.id, p.turn);
    }
    let mut confer: Vec<String> = Vec::new();
    let mut heading = None;
    for e in events.iter().map(|l| &l.event) {
        if !matches!(e.body, EventBody::Deliberation { .. }) {
            flush_confer(&mut out, &mut confer);
        }
        match &e.body {
            EventBody::HumanSpeak { text: said, to, seat } => {
                let to = to.as_ref().map(|t| format!(" (to {})", name(t))).unwrap_or_default();
                let seat = seat.as_ref().map(|s| format!(" ({})", text(s))).unwrap_or_default();
                // A room's lines of one turn share its heading.
                if heading != Some(e.turn) {
                    let _ = writeln!(out, "---\n\n## Turn {}\n", e.turn);
                    heading = Some(e.turn);
                }
                let _ = writeln!(out, "**Floor**{seat}{to}: {}\n", quote_lines(said));
            }
            EventBody::Deliberation { speaker, text: said } => {
                confer.push(format!("**{}:** {}", name(speaker), text(&said.replace('\n', " "))))
            }
            EventBody::Speak { speaker, text: said } => {
                let _ = writeln!(out, "**{}:** {}\n", name(speaker), quote_lines(said));
            }
            EventBody::Pass { speaker } => {
                let _ = writeln!(out, "*{} passes.*\n", name(speaker));
            }
            EventBody::Unparsed { raw, reason } => {
                let _ = writeln!(out, "*Unplaced model output ({}):*\n\n{}\n", text(&reason.to_string()), fenced(raw));
            }
            EventBody::Join { character, materials } => {
                let verb = if materials.is_some() { "joins" } else { "returns to" };
                let _ = writeln!(out, "*{} {verb} the panel.*\n", name(character));
            }
            EventBody::Leave { character, line } => {
                let _ = writeln!(out, "*{} leaves the panel: “{}”*\n", name(character), text(line));
            }
            EventBody::Cost(c) => {
                let sim = if c.simulated { ", simulated" } else { "" };
                let _ = writeln!(
                    out,
                    "<sub>Turn {} cost {} — input {} · cache write {} · cache read {} · output {} tokens{sim}</sub>\n",
                    e.turn,
                    usd(c.usd),
                    c.input,
                    c.cache_write,
                    c.cache_read,
                    c.output
                );
            }
            EventBody::TurnAborted { reason } => {
                let _ = writeln!(out, "*The turn was aborted ({}).*\n", text(&reason.to_string()));
            }
            EventBody::Error { code, message } => {
                let _ = writeln!(out, "*Error {}: {}*\n", text(code), text(message));
            }
            EventBody::ActorRestart { reason } => {
                let _ = writeln!(out, "*The session's actor restarted: {}.*\n", text(&reason.to_string()));
            }
            _ => {}
        }
    }
    flush_confer(&mut out, &mut confer);
    let t = &m.totals.sum;
    let share = m.totals.cache_read_share;
    let _ = writeln!(
        out,
        "---\n\n**Totals:** {} turns · ${:.4} · input {} · cache write {} · cache read {} · output {} tokens · {:.0}% of input read from cache",
        t.turns,
        t.usd,
        t.input,
        t.cache_write,
        t.cache_read,
        t.output,
        share * 100.0
    );
    Some(out)
}

/// Writes the confer lines gathered so far as a collapsed quote.
fn flush_confer(out: &mut String, confer: &mut Vec<String>) {
    if confer.is_empty() {
        return;
    }
    let quoted: Vec<String> = confer.drain(..).map(|l| format!("> {l}")).collect();
    let _ = writeln!(out, "<details><summary>Confer</summary>\n\n{}\n\n</details>\n", quoted.join("\n>\n"));
}

/// Keeps a multi-line reply readable inside a markdown paragraph.
fn quote_lines(said: &str) -> String {
    said.lines().map(text).collect::<Vec<_>>().join("  \n")
}

/// One line of someone's text, shown literally by a Markdown renderer: HTML
/// is escaped as entities, inline markup characters with a backslash, and a
/// line that would open a block (a heading, quote, list or rule) is kept a
/// paragraph.
pub(crate) fn text(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    if trimmed.starts_with(['#', '-', '+', '=', '|', '~']) {
        return format!("{indent}\\{}", text_inline(trimmed));
    }
    // An ordered-list marker (`12.` or `12)`): escape its punctuation.
    let digits = trimmed.len() - trimmed.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 && trimmed[digits..].starts_with(['.', ')']) {
        let (number, rest) = trimmed.split_at(digits);
        return format!("{indent}{number}\\{}", text_inline(rest));
    }
    text_inline(line)
}

fn text_inline(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Raw text in a code fence longer than any run of backticks inside it, so
/// nothing in it can close the fence.
pub(crate) fn fenced(raw: &str) -> String {
    let longest = raw.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{raw}\n{fence}")
}

fn day_time(t: &Timestamp) -> String {
    t.0.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::{fenced, text};

    #[test]
    fn html_and_markup_in_someones_text_are_shown_literally() {
        assert_eq!(text("<script>alert(1)</script> & <b>"), "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;");
        assert_eq!(text("[click](javascript:x) *bold* `code`"), "\\[click\\](javascript:x) \\*bold\\* \\`code\\`");
        assert_eq!(text("# not a heading"), "\\# not a heading");
        assert_eq!(text("  - not a list"), "  \\- not a list");
        assert_eq!(text("1. not a list"), "1\\. not a list");
        assert_eq!(text("2026 was a year"), "2026 was a year");
        assert_eq!(text("plain words, kept"), "plain words, kept");
    }

    #[test]
    fn a_fence_is_longer_than_any_backticks_inside_it() {
        let raw = "before\n```\n</details><img src=x onerror=alert(1)>\n````";
        let out = fenced(raw);
        assert!(out.starts_with("`````text\n") && out.ends_with("\n`````"), "{out}");
        assert!(out.contains(raw));
    }
}
