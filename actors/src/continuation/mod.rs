//! Continuing a session fresh, or branching it from any turn.
//!
//! A session's prompt only grows: the head keeps the starting cast, a
//! retired character's materials stay dormant in the tail (removing them
//! would bust the prompt cache), and every turn stays. Continuing is the
//! garbage collection that shape defers: a new session whose head holds the
//! rules and only the characters on stage at turn N, and whose tail opens
//! with one stage direction carrying the conversation —
//! - `transcript`: what was delivered in turns 1..N (the floor's lines with
//!   their @-address, speaks, passes, joins, leaves), oldest turns dropped
//!   with a marker when over its budget;
//! - `recap`: notes the model writes about those turns in one extra request.
//!
//! The confer never crosses: it was the panel's private working, and the
//! new session confers afresh. Aborted turns do not cross either: their
//! context was dropped in the parent too.
//!
//! Everything here reads the parent's log and nothing else; the parent is
//! left exactly as it was, open or closed.

pub mod collect;

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::context;

pub use crate::event::{DeliveredTurn, Line};
use crate::event::{EventBody, Logged, SessionConfig};
use crate::id::CharacterId;
use crate::megaprompt::{Block, Message, Prompt, Role};
use crate::prefix_cache::estimate_tokens;
use crate::roster::Character;
use crate::templates::{RenderError, Renderer};

/// The parent's conversation up to a turn, as a continuation carries it.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The parent's settings (title, depth, provider, TTL, keep-warm).
    pub config: SessionConfig,
    pub model: String,
    /// The last turn carried.
    pub turn: u32,
    /// On stage at that turn, with the materials the parent had for them.
    pub cast: Vec<Character>,
    pub turns: Vec<DeliveredTurn>,
}

#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("this session has no finished turn to continue from; open a new session with its cast instead")]
    NothingToCarry,
    #[error("turn {asked} is not a finished turn of this session (its finished turns run from 1 to {last})")]
    NoSuchTurn { asked: u32, last: u32 },
    #[error("the log does not start with session-open")]
    NoSessionOpen,
    #[error("a carry template failed: {0}")]
    Render(#[from] RenderError),
}

impl Carried {
    /// Reads the conversation from a parent's events, up to `at_turn` (by
    /// default, everything: the last finished turn and every cast change
    /// that landed after it).
    pub fn from_events(events: &[Arc<Logged>], at_turn: Option<u32>) -> Result<Self, CarryError> {
        let Some(EventBody::SessionOpen { config, model, participants, .. }) = events.first().map(|l| &l.event.body)
        else {
            return Err(CarryError::NoSessionOpen);
        };
        let finished: Vec<u32> =
            events.iter().filter(|l| matches!(l.event.body, EventBody::TurnEnd { .. })).map(|l| l.event.turn).collect();
        let last = finished.last().copied().ok_or(CarryError::NothingToCarry)?;
        let limit = match at_turn {
            Some(asked) if asked == 0 || !finished.contains(&asked) => {
                return Err(CarryError::NoSuchTurn { asked, last });
            }
            Some(asked) => asked,
            None => u32::MAX,
        };

        let mut known: HashMap<CharacterId, Character> =
            participants.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let mut on_stage: Vec<CharacterId> = participants.iter().map(|c| c.id.clone()).collect();
        let mut turns: Vec<DeliveredTurn> = Vec::new();
        // Lines of the turn in progress; joins and leaves landed before it.
        let mut open: Vec<Line> = Vec::new();
        let mut landed: Vec<Line> = Vec::new();
        let name = |known: &HashMap<CharacterId, Character>, id: &CharacterId| {
            known.get(id).map_or_else(|| id.as_str().to_owned(), |c| c.name.clone())
        };
        for logged in events.iter().filter(|l| l.event.turn <= limit) {
            match &logged.event.body {
                EventBody::Join { character, materials } => {
                    if let Some(m) = materials {
                        known.insert(character.clone(), m.clone());
                    }
                    if !on_stage.contains(character) {
                        on_stage.push(character.clone());
                    }
                    landed.push(Line::Join { name: name(&known, character) });
                }
                EventBody::Leave { character, line } => {
                    on_stage.retain(|c| c != character);
                    landed.push(Line::Leave { name: name(&known, character), text: line.clone() });
                }
                EventBody::HumanSpeak { text, to, seat } => {
                    // A room's later lines of the same turn join the first.
                    if !open.iter().any(|l| matches!(l, Line::Floor { .. })) {
                        open = std::mem::take(&mut landed);
                    }
                    let to = to.as_ref().map(|t| name(&known, t));
                    open.push(Line::Floor { text: text.clone(), to, seat: seat.clone() });
                }
                EventBody::Speak { speaker, text } => {
                    open.push(Line::Speak { name: name(&known, speaker), text: text.clone() })
                }
                EventBody::Pass { speaker } => open.push(Line::Pass { name: name(&known, speaker) }),
                EventBody::TurnEnd { .. } => {
                    turns.push(DeliveredTurn { number: logged.event.turn, lines: std::mem::take(&mut open) });
                }
                EventBody::TurnAborted { .. } => {
                    // The parent's context dropped this turn; so does the carry.
                    // Cast changes that landed before it still happened.
                    open.retain(|l| matches!(l, Line::Join { .. } | Line::Leave { .. }));
                    landed = std::mem::take(&mut open);
                }
                _ => {}
            }
        }
        // Cast changes after the last carried turn start the next one.
        if let Some(last) = turns.last_mut() {
            last.lines.append(&mut landed);
        }
        let cast = on_stage.iter().filter_map(|id| known.get(id).cloned()).collect();
        let turn = turns.last().map_or(last, |t| t.number);
        Ok(Self { config: config.clone(), model: model.clone(), turn, cast, turns })
    }

    /// The `transcript` carry: the delivered turns as one stage direction,
    /// the oldest dropped (and the direction says so) until it fits `budget`
    /// tokens.
    pub fn transcript(&self, renderer: &Renderer, budget: Option<u64>) -> Result<String, CarryError> {
        let keep = self.fitting(renderer, "carry_transcript", budget)?;
        let omitted = self.turns.len() - keep;
        Ok(renderer.render("carry_transcript", context! { turns => &self.turns[omitted..], omitted })?)
    }

    /// The request that asks the model for recap notes, its transcript held
    /// to `budget` tokens the same way.
    pub fn recap_prompt(&self, renderer: &Renderer, budget: Option<u64>) -> Result<Prompt, CarryError> {
        let names: Vec<&str> = self.cast.iter().map(|c| c.name.as_str()).collect();
        let system = renderer.render("recap_system", context! { names })?;
        let keep = self.fitting(renderer, "recap_request", budget)?;
        let omitted = self.turns.len() - keep;
        let request = renderer.render("recap_request", context! { turns => &self.turns[omitted..], omitted })?;
        // Sent once: nothing in it is worth a cache write.
        Ok(Prompt {
            system: vec![Block { text: system.into(), cache: false }],
            messages: vec![Message { role: Role::User, text: request.into(), cache: false, coda: None }],
            stop_sequences: Vec::new(),
        })
    }

    /// The `recap` carry: the model's notes as one stage direction.
    pub fn recap(&self, renderer: &Renderer, notes: &str) -> Result<String, CarryError> {
        Ok(renderer.render("carry_recap", context! { notes => notes.trim(), turns => self.turns.len() })?)
    }

    /// How many of the newest turns fit `budget` tokens in `template`.
    fn fitting(&self, renderer: &Renderer, template: &str, budget: Option<u64>) -> Result<usize, CarryError> {
        let Some(budget) = budget else { return Ok(self.turns.len()) };
        // Each turn's share, measured alone against the frame around it.
        let frame = estimate_tokens(
            &renderer.render(template, context! { turns => Vec::<DeliveredTurn>::new(), omitted => 1 })?,
        );
        let mut used = frame;
        let mut keep = 0;
        for turn in self.turns.iter().rev() {
            let alone = estimate_tokens(&renderer.render(template, context! { turns => [turn], omitted => 1 })?);
            used += alone.saturating_sub(frame);
            if used > budget {
                break;
            }
            keep += 1;
        }
        Ok(keep)
    }
}
