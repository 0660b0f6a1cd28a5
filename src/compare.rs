//! `panel compare A B [C…]`: recorded sessions lined up by floor turn, with
//! what differs marked and the first divergence named — as text, or as the
//! JSON `panel_actors::comparison` computes (`--json`), which the viewer's
//! compare page reproduces from the same files.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use panel_actors::comparison::{self, AlignedTurn, Comparison};
use panel_actors::event::Event;
use panel_actors::id::SessionId;

use crate::config::CompareArgs;
use crate::report::events_of;

/// The events of session `id` in the `logs` folder.
pub fn events_from_logs(logs: &Path, id: &SessionId) -> anyhow::Result<Vec<Event>> {
    let path = panel_actors::event_log::events_path(logs, id);
    let text = std::fs::read_to_string(&path).with_context(|| format!("session {id} has no log in the logs folder"))?;
    events_of(&text).with_context(|| format!("session {id}'s log"))
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let logs = args
        .ids
        .iter()
        .map(|raw| events_from_logs(&args.logs.logs, &SessionId::parse(raw)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let comparison = comparison::compare(&logs);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &comparison)?;
        writeln!(out)?;
    } else {
        print(&comparison, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(c: &Comparison, out: &mut impl Write) -> anyhow::Result<()> {
    for (i, s) in c.sessions.iter().enumerate() {
        let m = &s.metrics;
        let study = m.study.as_ref().map_or(String::new(), |t| format!(" · {} #{}", t.condition, t.repeat));
        writeln!(
            out,
            "[{}] {} — {}{study} · {} on {} · depth {} · seed {} · {} turns · ${:.4} · {:.1} words/speak · pass rate {:.2} · lead share {:.2}",
            letter(i),
            s.id,
            m.title,
            m.model,
            m.provider,
            s.depth,
            m.seed.map_or("-".into(), |s| s.to_string()),
            m.turns,
            m.usd,
            m.words_per_speak,
            m.pass_rate,
            m.lead_share,
        )?;
    }
    if let Some(f) = &c.folded {
        writeln!(out, "\nturns 1–{} are shared (as recorded in {}): folded", f.through, f.of)?;
    }
    match c.first_divergence {
        Some(n) => writeln!(out, "first divergence: turn {n}")?,
        None => writeln!(out, "no divergence: every turn agrees")?,
    }
    for t in &c.turns {
        print_turn(c, t, out)?;
    }
    Ok(())
}

fn print_turn(c: &Comparison, t: &AlignedTurn, out: &mut impl Write) -> anyhow::Result<()> {
    let mark = if t.differs.is_empty() { String::new() } else { format!("  ≠ {}", t.differs.join(", ")) };
    let first = if c.first_divergence == Some(t.turn) { "  ← first divergence" } else { "" };
    writeln!(out, "\nturn {}{mark}{first}", t.turn)?;
    for (i, s) in c.sessions.iter().enumerate() {
        let Some(side) = t.by_session.get(&s.id) else {
            writeln!(out, "  [{}] —", letter(i))?;
            continue;
        };
        writeln!(
            out,
            "  [{}] floor: {:?} · order: {} · ${:.4}",
            letter(i),
            side.floor,
            side.order.join(" → "),
            side.usd
        )?;
        for act in &side.acts {
            let changed = t.differs.iter().any(|d| d == &format!("text:{}", act.speaker));
            if act.kind == "pass" {
                writeln!(out, "      {} passes", act.speaker)?;
            } else if changed || i == 0 {
                writeln!(out, "      {}: {}", act.speaker, act.text)?;
            }
        }
    }
    Ok(())
}

/// A, B, C… for the sessions in the order given.
fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}
