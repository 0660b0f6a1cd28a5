//! Comparison: sessions lined up by floor turn, their differences marked,
//! the first divergence found — computed from logs alone, like the
//! dynamics, so `panel compare` answers for any recorded sessions.
//!
//! Alignment: turn `t` of one session stands beside turn `t` of another,
//! except that a session continued or branched from another one in the set
//! starts where its parent was then: its turn `t` is its parent's turn
//! `parent.turn + t`, and the parent's turns up to there, which the child
//! carries, are folded (shared, not compared).
//!
//! A turn *diverges* when the sessions' floor lines (or @-addresses)
//! differ, or their order of answers, or one speaks where another passes,
//! or a speaker's text differs, or a session has no such turn. The confer
//! is shown but never counts: it is the cast's private working.
//!
//! The viewer's compare page (`static/js/compare.js`) follows these same
//! rules on the same files; the tests hold the two to one answer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dynamics::{self, SessionStats};
use crate::event::{Event, EventBody, Parent};
use crate::floor;

/// One session's side of an aligned turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The turn's number in this session's own log.
    pub own_turn: u32,
    pub floor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Who answered, in order (speaker ids).
    pub order: Vec<String>,
    pub lead: Option<String>,
    pub acts: Vec<Act>,
    pub confer: Vec<ConferLine>,
    pub usd: f64,
}

/// A speak or a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Act {
    pub speaker: String,
    /// `speak` or `pass`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConferLine {
    pub speaker: String,
    pub text: String,
}

/// One turn, aligned across the sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignedTurn {
    pub turn: u32,
    /// The first session's floor line at this turn (see `differs` for others).
    pub floor: Option<String>,
    /// Each session's side, by session id; a session without the turn is absent.
    pub by_session: BTreeMap<String, Side>,
    /// What differs: `missing`, `floor`, `order`, `lead`, `answer:<id>` (a
    /// speak where another passed, or one answered and another did not),
    /// `text:<id>` (the same speaker, other words). Empty when all agree.
    pub differs: Vec<String>,
}

/// A compared session's header: its settings and figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compared {
    pub id: String,
    pub depth: u8,
    pub cast: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    /// Turns of this session's own numbering are this much behind the
    /// alignment's (its parent's turn when it was branched).
    pub offset: u32,
    pub metrics: SessionStats,
}

/// Turns folded away because every session shares them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Folded {
    /// Turns 1 to `through` are shared …
    pub through: u32,
    /// … as recorded in this session.
    pub of: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub sessions: Vec<Compared>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<Folded>,
    pub turns: Vec<AlignedTurn>,
    pub first_divergence: Option<u32>,
}

/// Lines up the sessions whose logs are `logs` (each in log order).
pub fn compare(logs: &[Vec<Event>]) -> Comparison {
    let mut sessions: Vec<Compared> = logs.iter().map(|events| header(events)).collect();
    // A child's offset is its parent's turn plus the parent's own offset.
    for _ in 0..sessions.len() {
        for i in 0..sessions.len() {
            let Some(parent) = sessions[i].parent.clone() else { continue };
            if let Some(p) = sessions.iter().find(|s| s.id == parent.id.as_str()) {
                sessions[i].offset = p.offset + parent.turn;
            }
        }
    }
    let sides: Vec<BTreeMap<u32, Side>> =
        logs.iter().zip(&sessions).map(|(events, s)| sides(events, s.offset)).collect();
    // Folding needs one root: with two unrelated sessions in the set, their
    // early turns are compared as they are.
    let roots = sessions.iter().filter(|s| s.offset == 0).count();
    let branched = sessions.iter().filter(|s| s.offset > 0).map(|s| s.offset).min().filter(|_| roots == 1);
    let folded = branched.and_then(|through| {
        let of = sessions.iter().zip(&sides).find(|(s, own)| s.offset == 0 && own.contains_key(&through))?;
        Some(Folded { through, of: of.0.id.clone() })
    });
    let from = folded.as_ref().map_or(1, |f| f.through + 1);
    let last = sides.iter().filter_map(|own| own.keys().next_back().copied()).max().unwrap_or(0);
    let mut turns = Vec::new();
    for turn in from..=last {
        let by_session: BTreeMap<String, Side> = sessions
            .iter()
            .zip(&sides)
            .filter_map(|(s, own)| own.get(&turn).map(|side| (s.id.clone(), side.clone())))
            .collect();
        let present: Vec<&Side> = sessions.iter().filter_map(|s| by_session.get(&s.id)).collect();
        let mut differs = differences(&present);
        if present.len() < sessions.len() {
            differs.insert(0, "missing".into());
        }
        let floor = present.first().map(|s| s.floor.clone());
        turns.push(AlignedTurn { turn, floor, by_session, differs });
    }
    let first_divergence = turns.iter().find(|t| !t.differs.is_empty()).map(|t| t.turn);
    Comparison { sessions, folded, turns, first_divergence }
}

fn header(events: &[Event]) -> Compared {
    let metrics = dynamics::compute(events).session;
    let (mut depth, mut cast, mut parent) = (0, Vec::new(), None);
    if let Some(EventBody::SessionOpen { config, participants, parent: p, .. }) = events.first().map(|e| &e.body) {
        depth = config.depth;
        cast = participants.iter().map(|c| c.id.to_string()).collect();
        parent = p.clone();
    }
    Compared { id: metrics.session.clone(), depth, cast, parent, offset: 0, metrics }
}

/// Each turn's side, keyed by its aligned number. A turn opens at its
/// floor line (`human-speak`) and gathers what follows until the next.
fn sides(events: &[Event], offset: u32) -> BTreeMap<u32, Side> {
    let mut out: BTreeMap<u32, Side> = BTreeMap::new();
    let mut current: Option<u32> = None;
    for e in events {
        match &e.body {
            // A room's later lines of the same turn join its floor.
            EventBody::HumanSpeak { text, to, seat } if current == Some(e.turn + offset) => {
                if let Some(side) = out.get_mut(&(e.turn + offset)) {
                    side.floor = floor::as_one([(side.floor.as_str(), None), (text.as_str(), seat.as_deref())]);
                    side.to = side.to.take().or_else(|| to.as_ref().map(|c| c.to_string()));
                }
            }
            EventBody::HumanSpeak { text, to, seat } => {
                let side = Side {
                    own_turn: e.turn,
                    floor: floor::as_one([(text.as_str(), seat.as_deref())]),
                    to: to.as_ref().map(|c| c.to_string()),
                    order: Vec::new(),
                    lead: None,
                    acts: Vec::new(),
                    confer: Vec::new(),
                    usd: 0.0,
                };
                out.insert(e.turn + offset, side);
                current = Some(e.turn + offset);
            }
            body => {
                let Some(side) = current.and_then(|t| out.get_mut(&t)) else { continue };
                match body {
                    EventBody::Speak { speaker, text } => {
                        side.lead.get_or_insert_with(|| speaker.to_string());
                        side.order.push(speaker.to_string());
                        side.acts.push(Act { speaker: speaker.to_string(), kind: "speak", text: text.clone() });
                    }
                    EventBody::Pass { speaker } => {
                        side.order.push(speaker.to_string());
                        side.acts.push(Act { speaker: speaker.to_string(), kind: "pass", text: String::new() });
                    }
                    EventBody::Deliberation { speaker, text } => {
                        side.confer.push(ConferLine { speaker: speaker.to_string(), text: text.clone() });
                    }
                    EventBody::Cost(cost) => side.usd += cost.usd.unwrap_or(0.0),
                    _ => {}
                }
            }
        }
    }
    for side in out.values_mut() {
        side.usd = (side.usd * 1e6).round() / 1e6;
    }
    out
}

/// What differs between the sides present at one turn.
fn differences(sides: &[&Side]) -> Vec<String> {
    let Some((first, rest)) = sides.split_first() else { return Vec::new() };
    let mut differs = Vec::new();
    let mut note = |what: String| {
        if !differs.contains(&what) {
            differs.push(what);
        }
    };
    for other in rest {
        if other.floor != first.floor || other.to != first.to {
            note("floor".into());
        }
        if other.order != first.order {
            note("order".into());
        }
        if other.lead != first.lead {
            note("lead".into());
        }
    }
    let mut speakers: Vec<&str> = sides.iter().flat_map(|s| s.acts.iter().map(|a| a.speaker.as_str())).collect();
    speakers.sort_unstable();
    speakers.dedup();
    for who in speakers {
        let answers: Vec<Option<&Act>> = sides.iter().map(|s| s.acts.iter().find(|a| a.speaker == who)).collect();
        let kinds: Vec<Option<&str>> = answers.iter().map(|a| a.map(|a| a.kind)).collect();
        if kinds.iter().any(|k| *k != kinds[0]) {
            note(format!("answer:{who}"));
        } else if answers.iter().any(|a| a.map(|a| &a.text) != answers[0].map(|a| &a.text)) {
            note(format!("text:{who}"));
        }
    }
    differs
}
