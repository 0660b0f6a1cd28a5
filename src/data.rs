//! `panel data ID… --out DIR [--format csv|jsonl]`: long-format tables for
//! notebooks and statistics packages — `acts`, `turns`, `characters`,
//! `sessions` — plus `schema.json` naming each column's type and meaning.
//!
//! Invariants: every figure is `panel_actors::dynamics`'s (words by its
//! [`words`]), so the tables reproduce the API and `panel report` exactly;
//! each table's columns are declared once ([`SCHEMA`]) and the rows are
//! checked against that list; every file is written whole to a temporary
//! name and renamed, so a reader never sees half a table.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use panel_actors::dynamics::{self, Dynamics, words};
use panel_actors::event::{Event, EventBody};
use panel_actors::id::SessionId;
use serde::Serialize;

use crate::config::{DataArgs, DataFormat};

/// Bumped when a column changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// A column: its name, type and meaning.
pub type Column = (&'static str, &'static str, &'static str);

/// (table, its columns), in column order.
pub const SCHEMA: [(&str, &[Column]); 4] = [
    (
        "acts",
        &[
            ("session", "string", "session id"),
            (
                "turn",
                "integer",
                "the turn the act belongs to (cast changes and the floor's line carry the turn they precede)",
            ),
            ("seq", "integer", "the event's sequence number in its log"),
            ("ts", "string", "RFC 3339 UTC timestamp"),
            ("kind", "string", "deliberation, speak, pass, human-speak, join or leave"),
            ("speaker", "string", "character id; 'floor' for the human"),
            ("to", "string", "the character the floor addressed, if any"),
            ("seat", "string", "for the floor's lines: the named seat that spoke, if any"),
            ("text", "string", "what was said (empty for a pass or a join)"),
            ("words", "integer", "words in text (runs of non-whitespace)"),
        ],
    ),
    (
        "turns",
        &[
            ("session", "string", "session id"),
            ("turn", "integer", "turn number"),
            ("mode", "string", "panel, addressed or one-to-one"),
            ("lead", "string", "the first character to speak (empty if all passed)"),
            ("order", "string", "who answered, in order, ids joined by ';'"),
            ("speaks", "integer", "lines spoken on stage"),
            ("passes", "integer", "characters who passed"),
            ("confer_lines", "integer", "lines of the confer (deliberation)"),
            ("input_tokens", "integer", "uncached input tokens"),
            ("cache_write_tokens", "integer", "tokens written to the prompt cache"),
            ("cache_read_tokens", "integer", "tokens read from the prompt cache"),
            ("output_tokens", "integer", "tokens written by the model"),
            ("usd", "number", "price of the turn's model call"),
            ("ttfb_ms", "number", "time to first byte in milliseconds (empty if not recorded)"),
            ("context_tokens", "integer", "the prompt's size in tokens"),
            ("confer_words", "integer", "words of the confer"),
            ("keep_warm_pings", "integer", "keep-warm pings in the pause before the turn"),
        ],
    ),
    (
        "characters",
        &[
            ("session", "string", "session id"),
            ("character", "string", "character id"),
            ("speaks", "integer", "lines spoken on stage"),
            ("passes", "integer", "turns passed"),
            ("words", "integer", "words spoken on stage"),
            ("share", "number", "share of all words spoken on stage (0-1)"),
            ("leads", "integer", "turns led (spoke first)"),
            ("addressed", "integer", "times the floor addressed them with @"),
            ("confer_lines", "integer", "lines in the confer"),
            ("confer_words", "integer", "words in the confer"),
            ("pickups_given", "integer", "times they spoke straight after another's line in a panel turn"),
            ("pickups_received", "integer", "times another spoke straight after their line in a panel turn"),
            ("mentions_out", "integer", "on-stage characters their speaks named"),
            ("mentions_in", "integer", "speaks by others on stage that named them"),
        ],
    ),
    (
        "sessions",
        &[
            ("session", "string", "session id"),
            ("title", "string", "session title"),
            ("provider", "string", "model provider"),
            ("model", "string", "model asked for"),
            ("turns", "integer", "turns started"),
            ("usd", "number", "price of turns and keep-warm pings"),
            ("cache_read_share", "number", "cache reads over all prompt tokens (0-1)"),
            ("pass_rate", "number", "passes over answers (0-1)"),
            ("gini", "number", "Gini coefficient of the characters' word shares (0 = equal)"),
            ("words_per_speak", "number", "words spoken on stage per speak"),
            ("lead_share", "number", "share of turns led by the most frequent leader (0-1)"),
            ("confer_lines_per_turn", "number", "confer lines per turn"),
            ("ttfb_mean_ms", "number", "mean time to first byte, ms (empty when none was measured)"),
            ("seed", "integer", "the sampling seed (empty for logs recorded before seeds)"),
            ("study", "string", "the study the session belongs to (empty when none)"),
            ("condition", "string", "the study condition it plays (empty when none)"),
            ("repeat", "integer", "which repeat of its condition, from 1 (empty when none)"),
            ("floor_lines", "integer", "lines the floor spoke (a room's several in one turn each count)"),
            ("seats", "string", "the named seats that spoke, in the order they first did, joined by ';'"),
        ],
    ),
];

#[derive(Serialize)]
struct Act<'a> {
    session: &'a str,
    turn: u32,
    seq: u64,
    ts: String,
    kind: &'a str,
    speaker: &'a str,
    to: Option<&'a str>,
    seat: Option<&'a str>,
    text: &'a str,
    words: u32,
}

#[derive(Serialize)]
struct TurnRow<'a> {
    session: &'a str,
    turn: u32,
    mode: panel_actors::event::TurnMode,
    lead: Option<&'a str>,
    order: String,
    speaks: u32,
    passes: u32,
    confer_lines: u32,
    input_tokens: u64,
    cache_write_tokens: u64,
    cache_read_tokens: u64,
    output_tokens: u64,
    usd: f64,
    ttfb_ms: Option<f64>,
    context_tokens: Option<u64>,
    confer_words: u32,
    keep_warm_pings: u32,
}

#[derive(Serialize)]
struct CharacterRow<'a> {
    session: &'a str,
    character: &'a str,
    speaks: u32,
    passes: u32,
    words: u32,
    share: f64,
    leads: u32,
    addressed: u32,
    confer_lines: u32,
    confer_words: u32,
    pickups_given: u32,
    pickups_received: u32,
    mentions_out: u32,
    mentions_in: u32,
}

#[derive(Serialize)]
struct SessionRow<'a> {
    session: &'a str,
    title: &'a str,
    provider: &'a str,
    model: &'a str,
    turns: u32,
    usd: f64,
    cache_read_share: f64,
    pass_rate: f64,
    gini: f64,
    words_per_speak: f64,
    lead_share: f64,
    confer_lines_per_turn: f64,
    ttfb_mean_ms: Option<f64>,
    seed: Option<u64>,
    study: Option<&'a str>,
    condition: Option<&'a str>,
    repeat: Option<u32>,
    floor_lines: u32,
    seats: String,
}

fn acts(events: &[Event]) -> Vec<Act<'_>> {
    events
        .iter()
        .filter_map(|e| {
            let (speaker, to, text) = match &e.body {
                EventBody::Deliberation { speaker, text } | EventBody::Speak { speaker, text } => {
                    (speaker.as_str(), None, text.as_str())
                }
                EventBody::Pass { speaker } => (speaker.as_str(), None, ""),
                EventBody::HumanSpeak { text, to, .. } => ("floor", to.as_ref().map(|c| c.as_str()), text.as_str()),
                EventBody::Join { character, .. } => (character.as_str(), None, ""),
                EventBody::Leave { character, line } => (character.as_str(), None, line.as_str()),
                _ => return None,
            };
            let seat = match &e.body {
                EventBody::HumanSpeak { seat, .. } => seat.as_deref(),
                _ => None,
            };
            Some(Act {
                session: e.session.as_str(),
                turn: e.turn,
                seq: e.seq,
                ts: serde_json::to_value(e.ts).ok()?.as_str()?.to_owned(),
                kind: e.body.kind(),
                speaker,
                to,
                seat,
                text,
                words: words(text),
            })
        })
        .collect()
}

/// Serialises `rows` in `format`, checking the columns are the schema's.
fn table<T: Serialize>(name: &str, rows: &[T], format: DataFormat) -> anyhow::Result<Vec<u8>> {
    let columns: Vec<&str> =
        SCHEMA.iter().find(|(t, _)| *t == name).map(|(_, c)| c.iter().map(|c| c.0).collect()).unwrap_or_default();
    let mut out = Vec::new();
    match format {
        DataFormat::Csv => {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
            // The header is written even for a table without rows.
            w.write_record(&columns)?;
            for row in rows {
                w.serialize(row)?;
            }
            w.flush()?;
        }
        DataFormat::Jsonl => {
            for row in rows {
                let line = serde_json::to_value(row)?;
                let keys: Vec<&str> =
                    line.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
                anyhow::ensure!(keys.len() == columns.len(), "table {name}: columns differ from the schema");
                serde_json::to_writer(&mut out, &line)?;
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

/// Writes `bytes` to `dir/name` whole: a temporary file, then a rename.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, dir.join(name))) {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!("cannot write {name}: {}", e.kind()));
    }
    Ok(())
}

/// Writes the four tables and the schema for sessions whose logs are `logs`.
pub fn write(logs: &[Vec<Event>], dir: &Path, format: DataFormat) -> anyhow::Result<()> {
    let figures: Vec<Dynamics> = logs.iter().map(|events| dynamics::compute(events)).collect();
    let mut act_rows = Vec::new();
    let (mut turns, mut characters, mut sessions) = (Vec::new(), Vec::new(), Vec::new());
    for (events, d) in logs.iter().zip(&figures) {
        act_rows.extend(acts(events));
        let id = d.session.session.as_str();
        turns.extend(d.turns.iter().map(|t| TurnRow {
            session: id,
            turn: t.turn,
            mode: t.mode,
            lead: t.lead.as_deref(),
            order: t.order.join(";"),
            speaks: t.speaks,
            passes: t.passes,
            confer_lines: t.confer_lines,
            input_tokens: t.input_tokens,
            cache_write_tokens: t.cache_write_tokens,
            cache_read_tokens: t.cache_read_tokens,
            output_tokens: t.output_tokens,
            usd: t.usd,
            ttfb_ms: t.ttfb_ms,
            context_tokens: t.context_tokens,
            confer_words: t.confer_words,
            keep_warm_pings: t.keep_warm_pings,
        }));
        characters.extend(d.characters.iter().map(|c| CharacterRow {
            session: id,
            character: &c.character,
            speaks: c.speaks,
            passes: c.passes,
            words: c.words,
            share: c.share,
            leads: c.leads,
            addressed: c.addressed,
            confer_lines: c.confer_lines,
            confer_words: c.confer_words,
            pickups_given: c.pickups_given,
            pickups_received: c.pickups_received,
            mentions_out: c.mentions_out,
            mentions_in: c.mentions_in,
        }));
        let s = &d.session;
        sessions.push(SessionRow {
            session: id,
            title: &s.title,
            provider: &s.provider,
            model: &s.model,
            turns: s.turns,
            usd: s.usd,
            cache_read_share: s.cache_read_share,
            pass_rate: s.pass_rate,
            gini: s.gini,
            words_per_speak: s.words_per_speak,
            lead_share: s.lead_share,
            confer_lines_per_turn: s.confer_lines_per_turn,
            ttfb_mean_ms: s.ttfb_mean_ms,
            seed: s.seed,
            study: s.study.as_ref().map(|t| t.id.as_str()),
            condition: s.study.as_ref().map(|t| t.condition.as_str()),
            repeat: s.study.as_ref().map(|t| t.repeat),
            floor_lines: s.floor_lines,
            seats: s.seats.join(";"),
        });
    }
    std::fs::create_dir_all(dir).context("cannot create the output folder")?;
    let ext = match format {
        DataFormat::Csv => "csv",
        DataFormat::Jsonl => "jsonl",
    };
    put(dir, &format!("acts.{ext}"), &table("acts", &act_rows, format)?)?;
    put(dir, &format!("turns.{ext}"), &table("turns", &turns, format)?)?;
    put(dir, &format!("characters.{ext}"), &table("characters", &characters, format)?)?;
    put(dir, &format!("sessions.{ext}"), &table("sessions", &sessions, format)?)?;
    let schema = serde_json::json!({
        "version": SCHEMA_VERSION,
        "format": ext,
        "tables": SCHEMA.iter().map(|(t, cols)| (t.to_string(), cols.iter().map(|(n, ty, m)| serde_json::json!({"name": n, "type": ty, "meaning": m})).collect::<Vec<_>>().into())).collect::<serde_json::Map<String, serde_json::Value>>(),
    });
    put(dir, "schema.json", &serde_json::to_vec_pretty(&schema)?)?;
    Ok(())
}

/// `panel data ID… --out DIR [--format csv|jsonl]`.
pub fn data(args: DataArgs) -> anyhow::Result<std::process::ExitCode> {
    let logs = args
        .ids
        .iter()
        .map(|raw| {
            let id = SessionId::parse(raw)?;
            let logged =
                panel_actors::event_log::read(&args.logs.logs, &id).with_context(|| format!("session {id}"))?;
            Ok(logged.iter().map(|l| l.event.clone()).collect())
        })
        .collect::<anyhow::Result<Vec<Vec<Event>>>>()?;
    write(&logs, &args.out, args.format)?;
    println!("wrote {} session(s) to {}", logs.len(), args.out.display());
    Ok(std::process::ExitCode::SUCCESS)
}
