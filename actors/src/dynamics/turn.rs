//! Per-turn figures: mode, order, lead, speaks, passes, the confer, words
//! per character, tokens by kind, USD, time to first byte, context size and
//! the keep-warm pings of the pause before it.
//!
//! A turn is opened by its `turn-start` and filled by the events that follow
//! it until the next `turn-start`; pings are counted by where they fall in
//! the log (after the previous turn, before this one), not by their `turn`
//! field, so a ping is always charged to the pause it kept warm.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::character::Cast;
use super::words;
use crate::event::{Event, EventBody, TurnMode};

/// One turn's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStats {
    pub turn: u32,
    pub mode: TurnMode,
    /// Who answered (spoke or passed), in the order they did.
    pub order: Vec<String>,
    /// The first to speak; `None` when everyone passed.
    pub lead: Option<String>,
    pub speaks: u32,
    pub passes: u32,
    pub confer_lines: u32,
    pub confer_words: u32,
    /// Words spoken on stage, per character who spoke.
    pub words: BTreeMap<String, u32>,
    /// Who passed this turn.
    pub passed: Vec<String>,
    pub input_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_read_tokens: u64,
    pub output_tokens: u64,
    pub usd: f64,
    pub ttfb_ms: Option<f64>,
    pub context_tokens: Option<u64>,
    /// Keep-warm pings in the pause before this turn.
    pub keep_warm_pings: u32,
    /// Whether the turn was aborted rather than ended.
    pub aborted: bool,
    /// The speakers of the delivered lines in order (for pick-ups).
    #[serde(skip)]
    pub(crate) lines: Vec<String>,
}

impl TurnStats {
    /// (follower, speaker picked up) for each consecutive pair of delivered
    /// lines. Only a panel turn has a relevance-led order to pick up in.
    pub(crate) fn pickups(&self) -> Vec<(String, String)> {
        if self.mode != TurnMode::Panel {
            return Vec::new();
        }
        self.lines.windows(2).filter(|w| w[0] != w[1]).map(|w| (w[1].clone(), w[0].clone())).collect()
    }
}

/// The turns so far, and the pings waiting for the next one.
#[derive(Default)]
pub(crate) struct Turns {
    done: Vec<TurnStats>,
    pings: u32,
    /// Who is on stage in the current turn, for mentions.
    cast: Vec<String>,
}

impl Turns {
    pub(crate) fn feed(&mut self, e: &Event, who: &mut Cast) {
        if let EventBody::TurnStart { mode, cast } = &e.body {
            self.cast = cast.iter().map(|c| c.to_string()).collect();
            self.done.push(TurnStats {
                turn: e.turn,
                mode: *mode,
                order: Vec::new(),
                lead: None,
                speaks: 0,
                passes: 0,
                confer_lines: 0,
                confer_words: 0,
                words: BTreeMap::new(),
                passed: Vec::new(),
                input_tokens: 0,
                cache_write_tokens: 0,
                cache_read_tokens: 0,
                output_tokens: 0,
                usd: 0.0,
                ttfb_ms: None,
                context_tokens: None,
                keep_warm_pings: std::mem::take(&mut self.pings),
                aborted: false,
                lines: Vec::new(),
            });
            return;
        }
        if let EventBody::KeepWarm { .. } = e.body {
            self.pings += 1;
            return;
        }
        let Some(t) = self.done.last_mut() else { return };
        match &e.body {
            EventBody::Deliberation { speaker, text } => {
                t.confer_lines += 1;
                t.confer_words += words(text);
                let c = who.entry(speaker.as_str());
                c.confer_lines += 1;
                c.confer_words += words(text);
            }
            EventBody::Speak { speaker, text } => {
                let id = speaker.to_string();
                let n = words(text);
                t.speaks += 1;
                *t.words.entry(id.clone()).or_default() += n;
                if t.lead.is_none() {
                    t.lead = Some(id.clone());
                    who.entry(&id).leads += 1;
                }
                if let Some(prev) = t.lines.last().filter(|p| **p != id && t.mode == TurnMode::Panel) {
                    who.entry(prev).pickups_received += 1;
                    who.entry(&id).pickups_given += 1;
                }
                t.lines.push(id.clone());
                who.mentions(&id, text, &self.cast);
                let c = who.entry(&id);
                c.speaks += 1;
                c.words += n;
            }
            EventBody::Pass { speaker } => {
                t.passes += 1;
                t.passed.push(speaker.to_string());
                who.entry(speaker.as_str()).passes += 1;
            }
            EventBody::Cost(cost) => {
                t.input_tokens += cost.input;
                t.cache_write_tokens += cost.cache_write;
                t.cache_read_tokens += cost.cache_read;
                t.output_tokens += cost.output;
                t.usd += cost.usd.unwrap_or(0.0);
                t.context_tokens = Some(cost.context_tokens.unwrap_or(cost.input + cost.cache_write + cost.cache_read));
            }
            EventBody::TurnEnd { order, provenance, .. } => {
                t.order = order.iter().map(|c| c.to_string()).collect();
                t.ttfb_ms = provenance.as_ref().and_then(|p| p.ttfb_ms);
            }
            EventBody::TurnAborted { .. } => t.aborted = true,
            _ => {}
        }
    }

    pub(crate) fn finish(self) -> Vec<TurnStats> {
        self.done
    }
}
