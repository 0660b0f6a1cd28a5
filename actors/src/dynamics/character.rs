//! Per-character figures: speaks, passes, words and their share, turns
//! led, times addressed, the confer, pick-ups and mentions.
//!
//! A pick-up: in a panel turn's relevance-led order, a follower picks up the
//! line delivered just before theirs — the follower *gives* the pick-up, the
//! earlier speaker *receives* it. A mention: a speak that names another
//! character on stage that turn (their name or its first word, as a whole
//! word, any case), counted once per speak.

use serde::{Deserialize, Serialize};

use super::round;

/// One character's figures over a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CharacterStats {
    pub character: String,
    pub name: String,
    /// A CSS colour for charts (empty when the log does not say).
    pub colour: String,
    pub speaks: u32,
    pub passes: u32,
    pub words: u32,
    /// This character's words over all words spoken on stage (0–1, 4 places).
    pub share: f64,
    pub leads: u32,
    pub addressed: u32,
    pub confer_lines: u32,
    pub confer_words: u32,
    pub pickups_given: u32,
    pub pickups_received: u32,
    pub mentions_out: u32,
    pub mentions_in: u32,
}

/// Everyone the log has named, in the order it named them.
#[derive(Default)]
pub(crate) struct Cast(Vec<CharacterStats>);

impl Cast {
    pub(crate) fn know(&mut self, id: &str, name: &str, colour: &str) {
        let c = self.entry(id);
        c.name = name.to_owned();
        if !colour.is_empty() {
            c.colour = colour.to_owned();
        }
    }

    /// The character's row, added if the log had not named them (an event
    /// from a log that lost its opening still counts).
    pub(crate) fn entry(&mut self, id: &str) -> &mut CharacterStats {
        let i = match self.0.iter().position(|c| c.character == id) {
            Some(i) => i,
            None => {
                self.0.push(CharacterStats { character: id.to_owned(), name: id.to_owned(), ..Default::default() });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }

    /// Counts the on-stage characters `speaker`'s `text` names.
    pub(crate) fn mentions(&mut self, speaker: &str, text: &str, on_stage: &[String]) {
        let spoken: Vec<String> =
            text.split(|c: char| !c.is_alphanumeric() && c != '\'').map(|w| w.to_lowercase()).collect();
        let named: Vec<String> = on_stage
            .iter()
            .filter(|id| id.as_str() != speaker)
            .filter(|id| {
                let name = self.0.iter().find(|c| c.character == **id).map_or(id.as_str(), |c| c.name.as_str());
                let full = name.to_lowercase();
                let first = full.split_whitespace().next().unwrap_or_default().to_owned();
                let full_words: Vec<&str> = full.split_whitespace().collect();
                spoken.contains(&first)
                    || (full_words.len() > 1
                        && spoken.windows(full_words.len()).any(|s| s.iter().eq(full_words.iter())))
            })
            .cloned()
            .collect();
        for id in &named {
            self.entry(id).mentions_in += 1;
        }
        self.entry(speaker).mentions_out += named.len() as u32;
    }

    pub(crate) fn finish(mut self) -> Vec<CharacterStats> {
        let total: u32 = self.0.iter().map(|c| c.words).sum();
        for c in &mut self.0 {
            c.share = if total == 0 { 0.0 } else { round(f64::from(c.words) / f64::from(total), 4) };
        }
        self.0
    }
}
