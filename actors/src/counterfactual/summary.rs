//! What replays say about their turn, from the logs alone: a replay's
//! listing, and the comparison of the original turn with every sample —
//! who led, who spoke or passed, and how far each character's solo answer
//! is from what they said with the others (the word overlap, as a first,
//! simple measure). `panel replay` prints it; the API serves it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{EventBody, Logged, ReplayMode, SampleSpec, Timestamp, Totals};
use crate::id::CharacterId;

/// One replay as `GET /api/sessions/{id}/replays` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayListing {
    pub id: String,
    pub turn: u32,
    pub mode: ReplayMode,
    pub n: u32,
    pub provider: String,
    pub model: String,
    pub depth: u8,
    pub same_settings: bool,
    pub prefix_hash: String,
    pub started: Timestamp,
    /// Samples planned, and how many have ended (well or not).
    pub samples: Vec<SampleSpec>,
    pub ended: u32,
    /// Whether `replay-close` is in the log.
    pub closed: bool,
    /// What it has cost so far: apart from the session's totals.
    pub totals: Totals,
    /// Whether it is being played now (the server sets this).
    #[serde(default)]
    pub running: bool,
}

impl ReplayListing {
    /// The listing of a replay's log; `None` if it does not open with `replay-open`.
    pub fn from_events(events: &[Arc<Logged>]) -> Option<Self> {
        let first = events.first()?;
        let EventBody::ReplayOpen {
            id, of, mode, n, provider, model, depth, same_settings, prefix_hash, samples, ..
        } = &first.event.body
        else {
            return None;
        };
        let mut listing = Self {
            id: id.clone(),
            turn: of.turn,
            mode: *mode,
            n: *n,
            provider: provider.clone(),
            model: model.clone(),
            depth: *depth,
            same_settings: *same_settings,
            prefix_hash: prefix_hash.clone(),
            started: first.event.ts,
            samples: samples.clone(),
            ended: 0,
            closed: false,
            totals: Totals::default(),
            running: false,
        };
        for l in &events[1..] {
            match &l.event.body {
                b if b.closes_turn() => listing.ended += 1,
                EventBody::ReplayClose { .. } => listing.closed = true,
                b => listing.totals.add_event(b),
            }
            if matches!(l.event.body, EventBody::TurnEnd { .. }) {
                listing.totals.turns += 1;
            }
        }
        Some(listing)
    }
}

/// What one character did in one sample (or in the original turn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "did", rename_all = "lowercase")]
pub enum Said {
    Spoke { text: String },
    Passed,
}

/// The original turn, or one sample of a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voiced {
    /// `None` for the original turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ReplayMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    /// For a solo sample: the one character asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<CharacterId>,
    /// Who answered first.
    pub lead: Option<CharacterId>,
    pub said: BTreeMap<CharacterId, Said>,
    pub usd: Option<f64>,
    /// Ended well (a `turn-end`).
    pub finished: bool,
}

/// One character across the original and every sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterSummary {
    pub character: CharacterId,
    pub original: Option<Said>,
    /// Over the reroll samples that ended: how often they spoke, passed, or
    /// were not heard from.
    pub rerolls: u32,
    pub spoke: u32,
    pub passed: u32,
    pub silent: u32,
    /// Their solo answers.
    pub solo: Vec<Said>,
    /// The mean word overlap (Jaccard, 0–1) of their solo speaks with what
    /// they said in the original turn, when both spoke.
    pub solo_overlap: Option<f64>,
}

/// The original turn against every sample of its replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub turn: u32,
    pub original: Voiced,
    pub samples: Vec<Voiced>,
    /// Reroll samples that ended, and how many kept the original's lead.
    pub rerolls: u32,
    pub same_lead: u32,
    pub characters: Vec<CharacterSummary>,
}

/// Compares turn `turn` of a session's `events` with `replays` (each a
/// replay log of that turn).
pub fn summarise(turn: u32, events: &[Arc<Logged>], replays: &[Vec<Arc<Logged>>]) -> Summary {
    let original = voiced(events.iter().filter(|l| l.event.turn == turn && l.event.sample.is_none()), None);
    let mut samples = Vec::new();
    for log in replays {
        let Some(listing) = ReplayListing::from_events(log) else { continue };
        for spec in &listing.samples {
            let mut v = voiced(log.iter().filter(|l| l.event.sample == Some(spec.sample)), Some(&listing.id));
            v.mode = Some(listing.mode);
            v.sample = Some(spec.sample);
            v.who = spec.who.clone();
            samples.push(v);
        }
    }
    let mut cast: Vec<CharacterId> = original.said.keys().cloned().collect();
    for id in samples.iter().flat_map(|s| s.said.keys().chain(s.who.iter())) {
        if !cast.contains(id) {
            cast.push(id.clone());
        }
    }
    let rerolls: Vec<&Voiced> = samples.iter().filter(|s| s.mode == Some(ReplayMode::Reroll) && s.finished).collect();
    let characters = cast
        .iter()
        .map(|id| {
            let said = |v: &Voiced| v.said.get(id).cloned();
            let solo: Vec<Said> = samples
                .iter()
                .filter(|s| s.mode == Some(ReplayMode::Solo) && s.who.as_ref() == Some(id))
                .filter_map(said)
                .collect();
            let original_text = match original.said.get(id) {
                Some(Said::Spoke { text }) => Some(text.as_str()),
                _ => None,
            };
            let overlaps: Vec<f64> = solo
                .iter()
                .filter_map(|s| match (s, original_text) {
                    (Said::Spoke { text }, Some(o)) => Some(word_overlap(text, o)),
                    _ => None,
                })
                .collect();
            let count = |want: fn(&Option<Said>) -> bool| rerolls.iter().filter(|v| want(&said(v))).count() as u32;
            CharacterSummary {
                character: id.clone(),
                original: original.said.get(id).cloned(),
                rerolls: rerolls.len() as u32,
                spoke: count(|s| matches!(s, Some(Said::Spoke { .. }))),
                passed: count(|s| matches!(s, Some(Said::Passed))),
                silent: count(Option::is_none),
                solo,
                solo_overlap: (!overlaps.is_empty()).then(|| overlaps.iter().sum::<f64>() / overlaps.len() as f64),
            }
        })
        .collect();
    let same_lead = rerolls.iter().filter(|v| v.lead.is_some() && v.lead == original.lead).count() as u32;
    Summary { turn, rerolls: rerolls.len() as u32, same_lead, original, samples, characters }
}

fn voiced<'a>(events: impl Iterator<Item = &'a Arc<Logged>>, replay: Option<&String>) -> Voiced {
    let mut v = Voiced {
        replay: replay.cloned(),
        mode: None,
        sample: None,
        who: None,
        lead: None,
        said: BTreeMap::new(),
        usd: None,
        finished: false,
    };
    for l in events {
        match &l.event.body {
            EventBody::Speak { speaker, text } => {
                v.lead.get_or_insert_with(|| speaker.clone());
                v.said.entry(speaker.clone()).or_insert_with(|| Said::Spoke { text: text.clone() });
            }
            EventBody::Pass { speaker } => {
                v.said.entry(speaker.clone()).or_insert(Said::Passed);
            }
            EventBody::Cost(c) => v.usd = Some(v.usd.unwrap_or(0.0) + c.usd.unwrap_or(0.0)),
            EventBody::TurnEnd { order, .. } => {
                v.finished = true;
                // The turn's own order names its lead, passes included.
                if let Some(first) = order.iter().find(|id| matches!(v.said.get(*id), Some(Said::Spoke { .. }))) {
                    v.lead = Some(first.clone());
                }
            }
            _ => {}
        }
    }
    v
}

/// The words of `text`, lowercased: runs of letters, digits and apostrophes.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The Jaccard overlap of two texts' word sets: 1 for the same words, 0 for none shared.
pub fn word_overlap(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::word_overlap;

    #[test]
    fn word_overlap_is_shared_words_over_all_words() {
        assert_eq!(word_overlap("The cache is warm", "the CACHE is warm."), 1.0);
        assert_eq!(word_overlap("red green", "blue"), 0.0);
        assert!((word_overlap("a b c", "b c d") - 0.5).abs() < 1e-9);
    }
}
