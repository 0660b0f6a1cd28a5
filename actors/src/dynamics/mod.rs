//! The dynamics of a deliberation: who spoke and how much, who led, who
//! passed, who picked up whose line, what each turn cost — computed from a
//! log's events alone.
//!
//! This is the one place these numbers are made. The API, the tables
//! (`panel data`), `panel report`, the viewer's `dynamics.json` and the live
//! drawer all read [`Dynamics`], so they can never disagree. The module is a
//! pure function of `&[Event]`: no clock, no roster, no I/O, so a recorded or
//! published session answers exactly as it did live.
//!
//! Invariants:
//! - words are counted by [`words`] and nowhere else;
//! - a character is known from the moment the log names them (the opening
//!   cast, then each join), in that order, and keeps their row after leaving;
//! - every value is a plain serde value (ids as strings), so it crosses layers.

mod character;
mod session;
mod turn;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use character::CharacterStats;
pub use session::{SessionStats, gini};
pub use turn::TurnStats;

use crate::event::{Event, EventBody};

/// The words of a text: runs of non-whitespace. The one definition every
/// count (speaks, confer, acts) uses.
pub fn words(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}

/// Who picks up whose line, and how often (a cell of the pick-up matrix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pickup {
    /// The follower, whose line came straight after.
    pub by: String,
    /// The speaker of the line picked up.
    pub of: String,
    pub count: u32,
}

/// Everything measured about one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dynamics {
    pub session: SessionStats,
    pub turns: Vec<TurnStats>,
    pub characters: Vec<CharacterStats>,
    /// The non-zero cells of the pick-up matrix, ordered by follower then speaker.
    pub pickups: Vec<Pickup>,
}

/// The dynamics of the session whose log is `events` (in log order). A log
/// that does not open with `session-open` yields empty figures rather than
/// an error: a live log is read while it grows.
pub fn compute(events: &[Event]) -> Dynamics {
    let mut cast = character::Cast::default();
    let mut turns = turn::Turns::default();
    for e in events {
        match &e.body {
            EventBody::SessionOpen { participants, .. } => {
                for c in participants {
                    cast.know(c.id.as_str(), &c.name, &c.colour);
                }
            }
            EventBody::Join { character, materials } => {
                let (name, colour) = materials.as_ref().map_or((character.as_str(), ""), |m| (&m.name, &m.colour));
                cast.know(character.as_str(), name, colour);
            }
            EventBody::HumanSpeak { to: Some(to), .. } => cast.entry(to.as_str()).addressed += 1,
            _ => {}
        }
        turns.feed(e, &mut cast);
    }
    let turns = turns.finish();
    let characters = cast.finish();
    let pickups: BTreeMap<(String, String), u32> =
        turns.iter().flat_map(|t| t.pickups()).fold(BTreeMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    let pickups = pickups.into_iter().map(|((by, of), count)| Pickup { by, of, count }).collect();
    let session = SessionStats::of(events, &turns, &characters);
    Dynamics { session, turns, characters, pickups }
}

/// Rounds to `places` decimals, so figures print the same in every view.
pub(crate) fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}
