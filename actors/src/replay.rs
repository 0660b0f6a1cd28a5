//! Rebuilding a session's state from its log alone.
//!
//! Replay drives the same [`Megaprompt`] methods the live session called, with
//! the same arguments (all snapshotted in the log: head, templates, joiners'
//! materials, parting lines, raw model outputs), so the rebuilt context is
//! byte-identical to the one that wrote the log.

use std::sync::Arc;

use crate::event::{EventBody, Logged, Parent, SessionConfig, Timestamp, Totals};
use crate::floor::FloorLine;
use crate::megaprompt::{Megaprompt, MegapromptError};
use crate::templates::Renderer;

/// A session's state as its log describes it.
#[derive(Debug)]
pub struct Replayed {
    pub context: Megaprompt,
    pub config: SessionConfig,
    pub model: String,
    /// Turns begun so far.
    pub turns: u32,
    pub totals: Totals,
    pub closed: bool,
    pub parent: Option<Parent>,
    /// The last call that used the prompt cache: when it goes cold, and how
    /// many tokens it holds.
    pub warmth: Option<(Option<Timestamp>, u64)>,
    /// The prompt's size at the last turn, when its usage said.
    pub context_tokens: Option<u64>,
    /// Output tokens of the recent turns, newest last.
    pub outputs: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the log does not start with session-open")]
    NoOpen,
    #[error("event {seq} ({kind}) cannot be replayed: {source}")]
    Event {
        seq: u64,
        kind: &'static str,
        #[source]
        source: MegapromptError,
    },
    #[error("the log's templates do not compile: {0}")]
    Templates(#[from] minijinja::Error),
}

/// Turns whose output sizes are remembered, to judge how much room the next answer needs.
pub const RECENT: usize = 8;

/// Rebuilds a session from `events`. `shared` is a renderer to reuse when
/// the log's templates are the same as its own (the usual case), which saves
/// compiling them again for every session.
pub fn replay(events: &[Arc<Logged>], shared: Option<&Arc<Renderer>>) -> Result<Replayed, ReplayError> {
    let Some((first, rest)) = events.split_first() else { return Err(ReplayError::NoOpen) };
    let EventBody::SessionOpen { config, model, head, participants, templates, parent, carry, .. } = &first.event.body
    else {
        return Err(ReplayError::NoOpen);
    };
    let renderer = match shared {
        Some(r) if r.templates() == &**templates => r.clone(),
        _ => Arc::new(Renderer::new((**templates).clone())?),
    };
    let mut state = Replayed {
        context: Megaprompt::with_carry(renderer, head.clone(), participants, carry.as_deref()),
        config: config.clone(),
        model: model.clone(),
        turns: 0,
        totals: Totals::default(),
        closed: false,
        parent: parent.clone(),
        warmth: None,
        context_tokens: None,
        outputs: Vec::new(),
    };
    for logged in rest {
        let event = &logged.event;
        apply(&mut state, &event.body, event.turn).map_err(|source| ReplayError::Event {
            seq: event.seq,
            kind: event.body.kind(),
            source,
        })?;
    }
    Ok(state)
}

fn apply(state: &mut Replayed, body: &EventBody, turn: u32) -> Result<(), MegapromptError> {
    let context = &mut state.context;
    match body {
        EventBody::Join { character, materials } => {
            let joiner = match materials {
                Some(m) => m.clone(),
                None => context
                    .cast()
                    .known(character)
                    .cloned()
                    .ok_or_else(|| crate::megaprompt::CastError::NotOnStage(character.clone()))?,
            };
            context.join(&joiner)?;
        }
        EventBody::Leave { character, line } => context.retire(character, line)?,
        EventBody::HumanSpeak { text, to, seat } => {
            let line = FloorLine { text, to: to.as_ref(), seat: seat.as_deref() };
            // A floor line while a turn is open is another of the room's
            // lines that turn answers together.
            match context.turn_open() {
                true => context.hear(line)?,
                false => context.begin_turn(line)?,
            }
            state.turns = turn;
        }
        EventBody::TurnEnd { output, .. } => context.commit_turn(output)?,
        // Recovery may close a turn whose floor line never made it into the log.
        EventBody::TurnAborted { .. } if context.turn_open() => context.abort_turn()?,
        EventBody::TurnStart { .. } => state.turns = turn,
        EventBody::Cost(cost) => {
            state.warmth = Some((cost.warm_until, cost.cache_read + cost.cache_write));
            state.context_tokens = cost.context_tokens.or(state.context_tokens);
            state.outputs.push(cost.output);
            if state.outputs.len() > RECENT {
                state.outputs.remove(0);
            }
        }
        EventBody::KeepWarm { warm_until, cache_read, cache_write, .. } => {
            state.warmth = Some((*warm_until, cache_read + cache_write));
        }
        EventBody::Settings { keep_warm } => state.config.keep_warm = *keep_warm,
        // The server refused the format grammar: the session went on without it.
        EventBody::Error { code, .. } if code == crate::event::CONSTRAINT_UNSUPPORTED => state.config.constraint = None,
        EventBody::SessionClose { .. } => state.closed = true,
        _ => {}
    }
    state.totals.add_event(body);
    state.totals.turns = state.turns;
    Ok(())
}
