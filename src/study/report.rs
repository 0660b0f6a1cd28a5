//! A study's report: per condition, the mean and standard deviation over
//! its repeats of each session's figures — `panel_actors::dynamics`'s
//! `SessionStats`, the same numbers `panel data` tabulates — conditions side
//! by side. Written to `report.json` beside `study.json`, printed as a table
//! or CSV.

use std::io::Write;

use anyhow::Context as _;
use panel_actors::dynamics::{self, SessionStats};
use panel_actors::event::Event;
use serde::Serialize;

use super::Record;
use crate::client::Api;

/// The figures compared, in the order shown: (key, label, one session's value).
type Metric = (&'static str, &'static str, fn(&SessionStats) -> Option<f64>);

const METRICS: &[Metric] = &[
    ("turns", "turns", |s| Some(f64::from(s.turns))),
    ("words_per_speak", "words per speak", |s| Some(s.words_per_speak)),
    ("pass_rate", "pass rate", |s| Some(s.pass_rate)),
    ("gini", "Gini of word shares", |s| Some(s.gini)),
    ("lead_share", "top leader's share", |s| Some(s.lead_share)),
    ("confer_lines_per_turn", "confer lines / turn", |s| Some(s.confer_lines_per_turn)),
    ("usd", "USD", |s| Some(s.usd)),
    ("cache_read_share", "cache-read share", |s| Some(s.cache_read_share)),
    ("ttfb_mean_ms", "first byte (ms)", |s| s.ttfb_mean_ms),
];

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub study: String,
    pub title: String,
    pub conditions: Vec<ConditionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionReport {
    pub name: String,
    pub settings: serde_json::Value,
    /// Sessions measured (its repeats played so far).
    pub n: usize,
    pub sessions: Vec<String>,
    /// Per metric: the mean and the sample standard deviation (none below two repeats).
    pub metrics: std::collections::BTreeMap<&'static str, Summary>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub mean: Option<f64>,
    pub sd: Option<f64>,
}

impl Summary {
    fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        if values.is_empty() {
            return Self { mean: None, sd: None };
        }
        let mean = values.iter().sum::<f64>() / n;
        let sd =
            (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self { mean: Some(round(mean)), sd: sd.map(round) }
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Report {
    /// The report of `record`, reading each session's log with `events`.
    pub fn of(record: &Record, events: impl Fn(&str) -> anyhow::Result<Vec<Event>>) -> anyhow::Result<Self> {
        let mut conditions = Vec::new();
        for c in &record.conditions {
            let stats = c
                .sessions
                .iter()
                .map(|p| Ok(dynamics::compute(&events(&p.id)?).session))
                .collect::<anyhow::Result<Vec<_>>>()?;
            conditions.push(condition(c, &stats));
        }
        Ok(Self { study: record.id.clone(), title: record.title.clone(), conditions })
    }

    /// The same, from a running server's dynamics route.
    pub async fn of_remote(record: &Record, api: &Api) -> anyhow::Result<Self> {
        let mut conditions = Vec::new();
        for c in &record.conditions {
            let mut stats = Vec::new();
            for p in &c.sessions {
                let d = api.get(&format!("/api/sessions/{}/dynamics", p.id)).await?;
                let s: SessionStats =
                    serde_json::from_value(d["session"].clone()).context("the server's dynamics are unreadable")?;
                stats.push(s);
            }
            conditions.push(condition(c, &stats));
        }
        Ok(Self { study: record.id.clone(), title: record.title.clone(), conditions })
    }

    pub fn print(&self, out: &mut impl Write) -> anyhow::Result<()> {
        writeln!(out, "\n{} — study {}", self.title, self.study)?;
        let width = METRICS.iter().map(|m| m.1.len()).max().unwrap_or(0);
        let cells: Vec<Vec<String>> = self
            .conditions
            .iter()
            .map(|c| {
                let mut col = vec![c.name.clone(), format!("n = {}", c.n)];
                col.extend(METRICS.iter().map(|m| cell(c.metrics[m.0])));
                col
            })
            .collect();
        let widths: Vec<usize> =
            cells.iter().map(|col| col.iter().map(|s| s.chars().count()).max().unwrap_or(0)).collect();
        let labels = std::iter::once("").chain(std::iter::once("")).chain(METRICS.iter().map(|m| m.1));
        for (row, label) in labels.enumerate() {
            write!(out, "{label:<width$}")?;
            for (col, w) in cells.iter().zip(&widths) {
                write!(out, "  {:>w$}", col[row])?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// One row per condition: n, then each metric's mean and sd.
    pub fn write_csv(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        let mut header = vec!["condition".to_owned(), "n".to_owned()];
        for m in METRICS {
            header.push(format!("{}_mean", m.0));
            header.push(format!("{}_sd", m.0));
        }
        w.write_record(&header)?;
        let number = |x: Option<f64>| x.map_or(String::new(), |x| x.to_string());
        for c in &self.conditions {
            let mut row = vec![c.name.clone(), c.n.to_string()];
            for m in METRICS {
                let s = c.metrics[m.0];
                row.push(number(s.mean));
                row.push(number(s.sd));
            }
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    }
}

fn condition(c: &super::ConditionRecord, stats: &[SessionStats]) -> ConditionReport {
    let metrics = METRICS
        .iter()
        .map(|(key, _, value)| (*key, Summary::of(&stats.iter().filter_map(value).collect::<Vec<_>>())))
        .collect();
    ConditionReport {
        name: c.name.clone(),
        settings: c.settings.clone(),
        n: stats.len(),
        sessions: c.sessions.iter().map(|p| p.id.clone()).collect(),
        metrics,
    }
}

fn cell(s: Summary) -> String {
    match (s.mean, s.sd) {
        (None, _) => "–".into(),
        (Some(m), None) => format!("{m:.3}"),
        (Some(m), Some(sd)) => format!("{m:.3} ± {sd:.3}"),
    }
}
