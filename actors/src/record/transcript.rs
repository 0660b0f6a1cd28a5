//! `transcript.md`: the session as people read it — the floor, each reply,
//! the confer under each turn, cast changes and the cost of every turn.

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
        m.participants.iter().find(|p| p.id == *id).map_or_else(|| id.to_string(), |p| p.name.clone())
    };
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", m.title);
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
        .map(|p| format!("**{}** — {}", p.name, p.tagline))
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
    for e in events.iter().map(|l| &l.event) {
        if !matches!(e.body, EventBody::Deliberation { .. }) {
            flush_confer(&mut out, &mut confer);
        }
        match &e.body {
            EventBody::HumanSpeak { text, to } => {
                let to = to.as_ref().map(|t| format!(" (to {})", name(t))).unwrap_or_default();
                let _ = writeln!(out, "---\n\n## Turn {}\n\n**Floor**{to}: {}\n", e.turn, quote_lines(text));
            }
            EventBody::Deliberation { speaker, text } => {
                confer.push(format!("**{}:** {}", name(speaker), text.replace('\n', " ")))
            }
            EventBody::Speak { speaker, text } => {
                let _ = writeln!(out, "**{}:** {}\n", name(speaker), quote_lines(text));
            }
            EventBody::Pass { speaker } => {
                let _ = writeln!(out, "*{} passes.*\n", name(speaker));
            }
            EventBody::Unparsed { raw, reason } => {
                let _ = writeln!(out, "*Unplaced model output ({reason}):*\n\n```text\n{raw}\n```\n");
            }
            EventBody::Join { character, materials } => {
                let verb = if materials.is_some() { "joins" } else { "returns to" };
                let _ = writeln!(out, "*{} {verb} the panel.*\n", name(character));
            }
            EventBody::Leave { character, line } => {
                let _ = writeln!(out, "*{} leaves the panel: “{}”*\n", name(character), line);
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
                let _ = writeln!(out, "*The turn was aborted ({reason}).*\n");
            }
            EventBody::Error { code, message } => {
                let _ = writeln!(out, "*Error `{code}`: {message}*\n");
            }
            EventBody::ActorRestart { reason } => {
                let _ = writeln!(out, "*The session's actor restarted: {reason}.*\n");
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
fn quote_lines(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("  \n")
}

fn day_time(t: &Timestamp) -> String {
    t.0.format("%Y-%m-%d %H:%M UTC").to_string()
}
