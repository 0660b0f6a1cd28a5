//! `panel report`: one comparable row per session, from its log alone —
//! model, turns, tokens by kind, USD, cache-read share, speaks and passes
//! per character, who led each turn, time to first byte (mean and p95).
//! The same table ends `panel run`, so one script played on several models
//! gives one table to compare.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use panel_actors::event::{Event, EventBody, Totals};
use panel_actors::id::SessionId;
use serde::Serialize;

/// One session's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub provider: String,
    pub model: String,
    pub turns: u32,
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
    pub usd: f64,
    /// Cache reads over all input tokens (0–1).
    pub cache_read_share: f64,
    pub ttfb_mean_ms: Option<f64>,
    pub ttfb_p95_ms: Option<f64>,
    /// Per character display name: speaks, passes, turns led.
    pub parts: BTreeMap<String, Part>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Part {
    pub speaks: u32,
    pub passes: u32,
    pub led: u32,
}

fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}

/// The row of a session whose events are `events`.
pub fn row(events: &[Event]) -> anyhow::Result<Row> {
    let first = events.first().context("an empty log")?;
    let EventBody::SessionOpen { config, model, participants, .. } = &first.body else {
        anyhow::bail!("the log does not start with session-open");
    };
    let mut names: BTreeMap<String, String> = participants.iter().map(|c| (c.id.to_string(), c.name.clone())).collect();
    let mut r = Row {
        id: first.session.to_string(),
        title: config.title.clone(),
        provider: config.provider.clone(),
        model: model.clone(),
        ..Row::default()
    };
    let mut totals = Totals::default();
    let mut ttfb = Vec::new();
    let mut led_this_turn = false;
    for e in events {
        let name = |names: &BTreeMap<String, String>, id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        match &e.body {
            EventBody::Join { character, materials: Some(m) } => {
                names.insert(character.to_string(), m.name.clone());
            }
            EventBody::TurnStart { .. } => {
                r.turns = r.turns.max(e.turn);
                led_this_turn = false;
            }
            EventBody::Speak { speaker, .. } => {
                let part = r.parts.entry(name(&names, speaker.as_str())).or_default();
                part.speaks += 1;
                if !led_this_turn {
                    part.led += 1;
                    led_this_turn = true;
                }
            }
            EventBody::Pass { speaker } => r.parts.entry(name(&names, speaker.as_str())).or_default().passes += 1,
            // Turns and keep-warm pings, counted as the session's totals count them.
            EventBody::Cost(_) | EventBody::KeepWarm { .. } => totals.add_event(&e.body),
            EventBody::TurnEnd { provenance: Some(p), .. } => ttfb.extend(p.ttfb_ms),
            _ => {}
        }
    }
    let Totals { input, cache_write, cache_read, output, usd, .. } = totals;
    (r.input, r.cache_write, r.cache_read, r.output, r.usd) = (input, cache_write, cache_read, output, usd);
    let all = r.input + r.cache_write + r.cache_read;
    r.cache_read_share = if all == 0 { 0.0 } else { round(r.cache_read as f64 / all as f64, 4) };
    r.usd = round(r.usd, 6);
    if !ttfb.is_empty() {
        ttfb.sort_by(f64::total_cmp);
        r.ttfb_mean_ms = Some(round(ttfb.iter().sum::<f64>() / ttfb.len() as f64, 1));
        // Nearest rank.
        let rank = ((0.95 * ttfb.len() as f64).ceil() as usize).clamp(1, ttfb.len());
        r.ttfb_p95_ms = Some(round(ttfb[rank - 1], 1));
    }
    Ok(r)
}

/// Parses a log's text (whole lines only).
pub fn events_of(text: &str) -> anyhow::Result<Vec<Event>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// The row of session `id` in the `logs` folder.
pub fn row_from_logs(logs: &Path, id: &SessionId) -> anyhow::Result<Row> {
    let path = panel_actors::event_log::events_path(logs, id);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    row(&events_of(&text)?).with_context(|| format!("session {id}"))
}

/// Every character named in any row, in order, for shared columns.
fn characters(rows: &[Row]) -> Vec<String> {
    let mut all: Vec<String> = rows.iter().flat_map(|r| r.parts.keys().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

fn ms(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), |v| format!("{v:.0}"))
}

/// The table for a terminal.
pub fn print_table(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    let header = ["session", "model", "turns", "input", "write", "read", "output", "USD", "read%", "ttfb ms", "p95"];
    let lines: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.model.clone(),
                r.turns.to_string(),
                r.input.to_string(),
                r.cache_write.to_string(),
                r.cache_read.to_string(),
                r.output.to_string(),
                format!("{:.4}", r.usd),
                format!("{:.1}", r.cache_read_share * 100.0),
                ms(r.ttfb_mean_ms),
                ms(r.ttfb_p95_ms),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| lines.iter().map(|l| l[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let put = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
        let cells: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 2 { format!("{c:<w$}", w = widths[i]) } else { format!("{c:>w$}", w = widths[i]) })
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())
    };
    put(out, &header.map(str::to_owned))?;
    for l in &lines {
        put(out, l)?;
    }
    writeln!(out)?;
    writeln!(out, "speaks / passes / turns led:")?;
    for r in rows {
        let parts: Vec<String> =
            r.parts.iter().map(|(name, p)| format!("{name} {}/{}/{}", p.speaks, p.passes, p.led)).collect();
        writeln!(out, "  {}  {}", r.id, parts.join("  "))?;
    }
    Ok(())
}

/// The rows as CSV: fixed columns, then `speaks:NAME`, `passes:NAME`,
/// `led:NAME` for every character in any row.
pub fn write_csv(rows: &[Row], out: impl Write) -> anyhow::Result<()> {
    let names = characters(rows);
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = [
        "id",
        "title",
        "provider",
        "model",
        "turns",
        "input",
        "cache_write",
        "cache_read",
        "output",
        "usd",
        "cache_read_share",
        "ttfb_mean_ms",
        "ttfb_p95_ms",
    ]
    .map(str::to_owned)
    .to_vec();
    for kind in ["speaks", "passes", "led"] {
        header.extend(names.iter().map(|n| format!("{kind}:{n}")));
    }
    w.write_record(&header)?;
    for r in rows {
        let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        let mut rec = vec![
            r.id.clone(),
            r.title.clone(),
            r.provider.clone(),
            r.model.clone(),
            r.turns.to_string(),
            r.input.to_string(),
            r.cache_write.to_string(),
            r.cache_read.to_string(),
            r.output.to_string(),
            r.usd.to_string(),
            r.cache_read_share.to_string(),
            opt(r.ttfb_mean_ms),
            opt(r.ttfb_p95_ms),
        ];
        for pick in [|p: &Part| p.speaks, |p: &Part| p.passes, |p: &Part| p.led] {
            rec.extend(names.iter().map(|n| r.parts.get(n).map(pick).unwrap_or(0).to_string()));
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

/// `panel report ID… [--csv]`.
pub fn report(args: crate::config::ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    let rows = args
        .ids
        .iter()
        .map(|raw| row_from_logs(&args.logs.logs, &SessionId::parse(raw)?))
        .collect::<anyhow::Result<Vec<Row>>>()?;
    let stdout = std::io::stdout();
    if args.csv {
        write_csv(&rows, stdout.lock())?;
    } else {
        print_table(&rows, &mut stdout.lock())?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
