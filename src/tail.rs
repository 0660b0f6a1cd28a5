//! `panel tail`: a live terminal view of one session or several, for
//! someone following along — each character in their colour, the confer
//! dimmed and indented under its turn, the floor's lines marked, one cost
//! line per turn. Several sessions share one connection (the multiplexed
//! stream), each line prefixed with its session's title.
//!
//! It rides [`crate::client::Api::follow`], so it reconnects by itself
//! (through a server or actor restart) and never shows an event twice or
//! skips one. Typing deltas are shown live only on a terminal. `--json`
//! prints each logged event exactly as logged, one per line, for `jq`.
//! Who is here (the seats connected, the other watchers) is shown when it
//! changes. With `--seat NAME`, tail is also a seat on the floor: each line
//! typed on standard input is said to the session under that name, and a
//! line the server refuses is reported with why.
//! Colour goes through `anstream`, which drops it when stdout is not a
//! terminal or `NO_COLOR` is set (and keeps it for `CLICOLOR_FORCE`).
//!
//! Invariant: no text from the server reaches the terminal raw. Names,
//! titles and lines come from cards and files anyone may have written, so
//! every string shown loses its control characters (C0 but newline and
//! tab, DEL, C1 — ESC among them) and `--json` lines have any raw DEL or C1
//! written as `\u` escapes: a greeting cannot retitle the window, write the
//! clipboard (OSC 52) or clear the screen. The only escapes tail prints are
//! its own colours.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write};
use std::process::ExitCode;

use anstyle::{AnsiColor, Effects, RgbColor, Style};
use serde_json::Value;

use crate::client::{Api, Streamed};
use crate::config::TailArgs;

const FLOOR: Style = Style::new().bold();
const DIM: Style = Style::new().effects(Effects::DIMMED);
const ERROR: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red))).bold();

pub fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    if args.seat.is_some() && args.ids.len() != 1 {
        anyhow::bail!("--seat speaks into one session: name exactly one");
    }
    actix_web::rt::System::new().block_on(async move {
        let api = Api::new(&args.url, args.token.clone());
        let live = std::io::stdout().is_terminal();
        let mut view = View { args: &args, live, sessions: HashMap::new(), typing: None, here: None };
        let mut out = anstream::stdout();
        let follow = api.follow(&args.ids, args.since, |item| view.show(&mut out, item).is_ok());
        match &args.seat {
            None => follow.await?,
            Some(seat) => {
                let speak = api.speak(&args.ids[0], seat, stdin_lines(), |line, why| {
                    eprintln!("panel tail: not said ({}): {}", printable(why), printable(line));
                });
                // Following ends with the session; speaking, with the input.
                futures_util::pin_mut!(speak);
                tokio::select! {
                    followed = follow => followed?,
                    () = &mut speak => {}
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Standard input's lines, read on a thread of their own (reading a
/// terminal blocks), as a channel that ends with the input.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn printable(s: &str) -> String {
    panel_actors::cards::printable(s)
}

struct View<'a> {
    args: &'a TailArgs,
    /// Whether stdout is a terminal: typing is shown live only then.
    live: bool,
    /// Per session: its title and its characters (id → name, colour).
    sessions: HashMap<String, Shown>,
    /// The session and speaker whose typing is on screen, and what has been shown.
    typing: Option<(String, String, String)>,
    /// Who is here, as last shown (per session and count, to show only changes).
    here: Option<String>,
}

#[derive(Default)]
struct Shown {
    title: String,
    people: HashMap<String, (String, Style)>,
}

fn colour(hex: &str) -> Style {
    let hex = hex.trim_start_matches('#');
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("88"), 16).unwrap_or(0x88);
    Style::new().fg_color(Some(RgbColor(byte(0), byte(2), byte(4)).into())).bold()
}

/// A string of `v`, safe to print.
fn text(v: &Value, key: &str) -> String {
    panel_actors::cards::printable(v[key].as_str().unwrap_or_default())
}

/// A JSON line with its raw control characters (only DEL and C1 can be
/// there: JSON escapes the rest, and they can sit only inside strings) as
/// `\u` escapes — the same JSON, safe to print.
fn json_line(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(char::is_control) {
        return json.into();
    }
    json.chars().map(|c| if c.is_control() { format!("\\u{:04x}", c as u32) } else { c.to_string() }).collect()
}

impl View<'_> {
    fn person(&self, session: &str, id: &str) -> (String, Style) {
        let known = self.sessions.get(session).and_then(|s| s.people.get(id));
        known.cloned().unwrap_or_else(|| (id.to_owned(), Style::new().bold()))
    }

    fn learn(&mut self, session: &str, c: &Value) {
        let style = colour(c["colour"].as_str().unwrap_or("#888888"));
        let shown = self.sessions.entry(session.to_owned()).or_default();
        shown.people.insert(text(c, "id"), (text(c, "name"), style));
    }

    /// `[title] ` before each line when several sessions share the screen.
    fn prefix(&self, session: &str) -> String {
        if self.args.ids.len() < 2 {
            return String::new();
        }
        let title = self.sessions.get(session).map_or(session, |s| s.title.as_str());
        format!("{FLOOR}[{title}]{FLOOR:#} ")
    }

    /// Ends a line of live typing, if one is open.
    fn settle(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.typing.take().is_some() {
            writeln!(out)?;
        }
        Ok(())
    }

    fn show(&mut self, out: &mut impl Write, item: Streamed) -> std::io::Result<()> {
        match item {
            Streamed::Reconnecting(wait) => {
                eprintln!("panel tail: connection lost; reconnecting in {:.1} s…", wait.as_secs_f64());
                Ok(())
            }
            Streamed::Delta(d) if self.live && !self.args.json => self.delta(out, &d),
            Streamed::Delta(_) => Ok(()),
            Streamed::Presence(_) if self.args.json => Ok(()),
            Streamed::Presence(p) => self.presence(out, &p),
            Streamed::Event { json, value } if self.args.json => {
                let _ = value;
                writeln!(out, "{}", json_line(&json))?;
                out.flush()
            }
            Streamed::Event { value, .. } => {
                self.event(out, &value)?;
                out.flush()
            }
        }
    }

    /// `· here: Maya, Theo · 2 watching`, when it changed.
    fn presence(&mut self, out: &mut impl Write, p: &Value) -> std::io::Result<()> {
        let session = text(p, "session");
        let seats: Vec<String> =
            p["seats"].as_array().into_iter().flatten().filter_map(Value::as_str).map(printable).collect();
        let watchers = p["watchers"].as_u64().unwrap_or(0);
        let mut shown = Vec::new();
        if !seats.is_empty() {
            shown.push(format!("here: {}", seats.join(", ")));
        }
        if watchers > 0 {
            shown.push(format!("{watchers} watching"));
        }
        let line = format!("{}{DIM}  · {}{DIM:#}", self.prefix(&session), shown.join(" · "));
        if shown.is_empty() || self.here.as_deref() == Some(line.as_str()) {
            return Ok(());
        }
        self.settle(out)?;
        writeln!(out, "{line}")?;
        self.here = Some(line);
        out.flush()
    }

    fn delta(&mut self, out: &mut impl Write, d: &Value) -> std::io::Result<()> {
        let (session, speaker) = (text(d, "session"), text(d, "speaker"));
        if self.typing.as_ref().is_none_or(|(s, who, _)| *s != session || *who != speaker) {
            self.settle(out)?;
            let (name, style) = self.person(&session, &speaker);
            write!(out, "{}{style}{name}{style:#}: ", self.prefix(&session))?;
            self.typing = Some((session, speaker, String::new()));
        }
        let piece = text(d, "text");
        write!(out, "{piece}")?;
        if let Some((_, _, shown)) = self.typing.as_mut() {
            shown.push_str(&piece);
        }
        out.flush()
    }

    fn event(&mut self, out: &mut impl Write, e: &Value) -> std::io::Result<()> {
        let kind = e["kind"].as_str().unwrap_or_default();
        let session = text(e, "session");
        // A speak whose typing is on screen only ends its line, unless the
        // final text differs from what was typed.
        if kind == "speak" {
            if let Some((s, who, shown)) = self.typing.take() {
                if s == session && who == text(e, "speaker") && shown.trim() == text(e, "text").trim() {
                    return writeln!(out);
                }
                writeln!(out)?;
            }
        } else {
            self.settle(out)?;
        }
        if kind == "session-open" {
            self.sessions.entry(session.clone()).or_default().title = text(&e["config"], "title");
            for c in e["participants"].as_array().into_iter().flatten() {
                self.learn(&session, c);
            }
        }
        if kind == "join" && e["materials"].is_object() {
            self.learn(&session, &e["materials"]);
        }
        let p = self.prefix(&session);
        let person = |id: &str| self.person(&session, id);
        match kind {
            "session-open" => {
                let names: Vec<String> = e["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let (name, style) = person(&text(c, "id"));
                        format!("{style}{name}{style:#}")
                    })
                    .collect();
                let title = text(&e["config"], "title");
                writeln!(out, "{p}{FLOOR}{title}{FLOOR:#} · {} · {}", text(e, "model"), names.join(", "))
            }
            "human-speak" => {
                let to = e["to"].as_str().map(|t| format!(" → {}", person(t).0)).unwrap_or_default();
                let seat = e["seat"].as_str().map(|s| format!(" ({})", printable(s))).unwrap_or_default();
                writeln!(out, "\n{p}{FLOOR}▶ floor{seat}{to}:{FLOOR:#} {}", text(e, "text"))
            }
            "deliberation" if self.args.no_confer => Ok(()),
            "deliberation" => {
                let (name, _) = person(&text(e, "speaker"));
                writeln!(out, "{p}    {DIM}· {name}: {}{DIM:#}", text(e, "text"))
            }
            "speak" => {
                let (name, style) = person(&text(e, "speaker"));
                writeln!(out, "{p}{style}{name}{style:#}: {}", text(e, "text"))
            }
            "pass" => {
                let (name, _) = person(&text(e, "speaker"));
                writeln!(out, "{p}{DIM}{name} passes{DIM:#}")
            }
            "join" => {
                let (name, style) = person(&text(e, "character"));
                writeln!(out, "{p}+ {style}{name}{style:#} joins the panel")
            }
            "leave" => {
                let (name, style) = person(&text(e, "character"));
                writeln!(out, "{p}− {style}{name}{style:#} leaves: \"{}\"", text(e, "line"))
            }
            "cost" => {
                let usd = e["usd"].as_f64().map_or_else(|| "unpriced".to_owned(), |u| format!("${u:.4}"));
                writeln!(
                    out,
                    "{p}{DIM}  turn {} · {usd} · {} in · {} cache write · {} cache read · {} out{DIM:#}",
                    e["turn"], e["input"], e["cache_write"], e["cache_read"], e["output"]
                )
            }
            "keep-warm" => {
                let usd = e["usd"].as_f64().map_or_else(String::new, |u| format!(" (${u:.4})"));
                writeln!(out, "{p}{DIM}  · cache kept warm{usd}{DIM:#}")
            }
            "error" => writeln!(out, "{p}{ERROR}! {}:{ERROR:#} {}", text(e, "code"), text(e, "message")),
            "turn-aborted" => writeln!(out, "{p}{ERROR}✗ turn {} aborted ({}){ERROR:#}", e["turn"], text(e, "reason")),
            "actor-restart" => writeln!(out, "{p}{DIM}  (the session's actor restarted: {}){DIM:#}", text(e, "reason")),
            "session-close" => {
                let t = &e["totals"];
                writeln!(
                    out,
                    "\n{p}{FLOOR}session closed{FLOOR:#} · {} turns · ${:.4}",
                    t["turns"],
                    t["usd"].as_f64().unwrap_or(0.0)
                )
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_with_raw_c1_and_del_prints_escaped_as_the_same_json() {
        let raw = "{\"text\":\"a\u{9b}2Jb\u{7f}c\"}";
        let safe = json_line(raw);
        assert!(!safe.chars().any(char::is_control), "{safe}");
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap(), serde_json::from_str::<Value>(raw).unwrap());
        assert!(matches!(json_line("{\"a\":1}"), std::borrow::Cow::Borrowed(_)));
    }
}
