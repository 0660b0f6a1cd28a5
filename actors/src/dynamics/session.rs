//! Per-session figures: turns, USD (turns and keep-warm pings, as the
//! session's totals count them), cache-read share, pass rate, and the Gini
//! coefficient of the characters' shares of words; words per speak, the
//! share of turns the most frequent leader led, confer lines per turn and
//! the mean time to first byte — the figures a study compares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CharacterStats, TurnStats, round};
use crate::event::{Event, EventBody, StudyTag, Totals};

/// One session's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    pub session: String,
    pub title: String,
    pub provider: String,
    pub model: String,
    /// Turns started (aborted ones included).
    pub turns: u32,
    pub input_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_read_tokens: u64,
    pub output_tokens: u64,
    /// Turns and keep-warm pings (6 places).
    pub usd: f64,
    /// Cache reads over all prompt tokens (0–1, 4 places).
    pub cache_read_share: f64,
    /// Passes over answers (speaks and passes; 0–1, 4 places).
    pub pass_rate: f64,
    /// Gini of the characters' word shares (0 = everyone equal; 4 places).
    pub gini: f64,
    pub keep_warm_pings: u32,
    /// Words spoken on stage per speak (2 places).
    pub words_per_speak: f64,
    /// The share of turns led by the most frequent leader (0–1, 4 places).
    pub lead_share: f64,
    /// Confer lines per turn (2 places).
    pub confer_lines_per_turn: f64,
    /// The mean time to first byte over the turns that report one.
    pub ttfb_mean_ms: Option<f64>,
    /// The sampling seed, when the log records one.
    pub seed: Option<u64>,
    /// A study's session: which study, condition and repeat.
    pub study: Option<StudyTag>,
    /// Lines the floor spoke (a room's several in one turn each count).
    pub floor_lines: u32,
    /// The named seats that spoke, in the order they first did.
    pub seats: Vec<String>,
}

impl SessionStats {
    pub(crate) fn of(events: &[Event], turns: &[TurnStats], characters: &[CharacterStats]) -> Self {
        let mut s = Self::default();
        if let Some(first) = events.first() {
            s.session = first.session.to_string();
            if let EventBody::SessionOpen { config, model, study, .. } = &first.body {
                (s.title, s.provider, s.model) = (config.title.clone(), config.provider.clone(), model.clone());
                (s.seed, s.study) = (config.seed, study.clone());
            }
        }
        let mut totals = Totals::default();
        for e in events {
            totals.add_event(&e.body);
            s.keep_warm_pings += u32::from(matches!(e.body, EventBody::KeepWarm { .. }));
            if let EventBody::HumanSpeak { seat, .. } = &e.body {
                s.floor_lines += 1;
                if let Some(seat) = seat.as_ref().filter(|seat| !s.seats.contains(seat)) {
                    s.seats.push(seat.clone());
                }
            }
        }
        s.turns = turns.len() as u32;
        (s.input_tokens, s.cache_write_tokens, s.cache_read_tokens, s.output_tokens) =
            (totals.input, totals.cache_write, totals.cache_read, totals.output);
        s.usd = round(totals.usd, 6);
        let prompt = totals.input + totals.cache_write + totals.cache_read;
        s.cache_read_share = if prompt == 0 { 0.0 } else { round(totals.cache_read as f64 / prompt as f64, 4) };
        let (speaks, passes): (u32, u32) = turns.iter().fold((0, 0), |(a, b), t| (a + t.speaks, b + t.passes));
        s.pass_rate = if speaks + passes == 0 { 0.0 } else { round(f64::from(passes) / f64::from(speaks + passes), 4) };
        let words: Vec<f64> = characters.iter().map(|c| f64::from(c.words)).collect();
        s.gini = round(gini(&words), 4);
        let spoken: u32 = turns.iter().map(|t| t.words.values().sum::<u32>()).sum();
        s.words_per_speak = if speaks == 0 { 0.0 } else { round(f64::from(spoken) / f64::from(speaks), 2) };
        let mut leads: BTreeMap<&str, u32> = BTreeMap::new();
        for lead in turns.iter().filter_map(|t| t.lead.as_deref()) {
            *leads.entry(lead).or_default() += 1;
        }
        let top = leads.values().copied().max().unwrap_or(0);
        s.lead_share = if turns.is_empty() { 0.0 } else { round(f64::from(top) / turns.len() as f64, 4) };
        let confer: u32 = turns.iter().map(|t| t.confer_lines).sum();
        s.confer_lines_per_turn = if turns.is_empty() { 0.0 } else { round(f64::from(confer) / turns.len() as f64, 2) };
        let ttfb: Vec<f64> = turns.iter().filter_map(|t| t.ttfb_ms).collect();
        s.ttfb_mean_ms = (!ttfb.is_empty()).then(|| round(ttfb.iter().sum::<f64>() / ttfb.len() as f64, 1));
        s
    }
}

/// The Gini coefficient of `xs` (mean absolute difference over twice the
/// mean): 0 when all are equal, (n−1)/n when one holds everything; 0 for an
/// empty or all-zero list.
pub fn gini(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let sum: f64 = xs.iter().sum();
    if xs.is_empty() || sum == 0.0 {
        return 0.0;
    }
    let diffs: f64 = xs.iter().flat_map(|a| xs.iter().map(move |b| (a - b).abs())).sum();
    diffs / (2.0 * n * sum)
}
