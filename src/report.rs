//! `panel report`: one comparable row per session, from its log alone —
//! model, turns, tokens by kind, USD, cache-read share, speaks and passes
//! per character, who led each turn, time to first byte (mean and p95).
//! The same table ends `panel run`, so one script played on several models
//! gives one table to compare. The figures are `panel_actors::dynamics`'s.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use panel_actors::dynamics;
use panel_actors::event::{Event, EventBody};
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
    /// The named seats that spoke from the floor, in the order they first did.
    pub seats: Vec<String>,
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

/// The row of a session whose events are `events`. Every figure comes from
/// [`panel_actors::dynamics`], the one place they are computed, so the
/// report, the API and `panel data` agree.
pub fn row(events: &[Event]) -> anyhow::Result<Row> {
    let first = events.first().context("an empty log")?;
    if !matches!(first.body, EventBody::SessionOpen { .. }) {
        anyhow::bail!("the log does not start with session-open");
    }
    let d = dynamics::compute(events);
    let s = &d.session;
    let mut r = Row {
        id: s.session.clone(),
        title: s.title.clone(),
        provider: s.provider.clone(),
        model: s.model.clone(),
        turns: s.turns,
        input: s.input_tokens,
        cache_write: s.cache_write_tokens,
        cache_read: s.cache_read_tokens,
        output: s.output_tokens,
        usd: s.usd,
        cache_read_share: s.cache_read_share,
        seats: s.seats.clone(),
        ..Row::default()
    };
    // Only those who answered at least once, keyed by display name.
    for c in d.characters.iter().filter(|c| c.speaks + c.passes > 0) {
        let part = r.parts.entry(c.name.clone()).or_default();
        (part.speaks, part.passes, part.led) = (part.speaks + c.speaks, part.passes + c.passes, part.led + c.leads);
    }
    let mut ttfb: Vec<f64> = d.turns.iter().filter_map(|t| t.ttfb_ms).collect();
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
    if rows.iter().any(|r| !r.seats.is_empty()) {
        writeln!(out, "\nseats on the floor:")?;
        for r in rows.iter().filter(|r| !r.seats.is_empty()) {
            writeln!(out, "  {}  {}", r.id, r.seats.join(", "))?;
        }
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
        "seats",
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
            r.seats.join(";"),
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
