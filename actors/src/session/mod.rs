//! The session actor: one per running conversation.
//!
//! It owns the [`Megaprompt`] and the event log, and runs the turn
//! lifecycle: `human-speak` → `turn-start` → confer lines → speaks / passes →
//! `cost` → `turn-end` (or `error` + `turn-aborted`).
//!
//! Invariants:
//! - Every event is appended to the log before it is published; nothing
//!   reaches the gateway that is not in the log, except the ephemeral
//!   `speak-delta` typing.
//! - At most one turn is in flight. Input arriving meanwhile waits in a
//!   bounded queue and is taken in order at the turn boundary; past the bound
//!   it is refused. Cast changes wait likewise and land at the boundary,
//!   before the next floor line. When idle, the session *is* at a boundary,
//!   so changes land at once.
//! - An aborted turn leaves the context as it was before the floor spoke.
//! - If the log cannot be written, the actor stops rather than carry on with
//!   state the log does not have; a restart rebuilds it from the log.

mod messages;
mod turn;

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;

pub use messages::*;

use crate::event::{EventBody, Logged, Outbound, Publish, SessionConfig, Totals};
use crate::event_log::{EventLog, LogError};
use crate::id::{CharacterId, SessionId};
use crate::megaprompt::{Cast, Megaprompt};
use crate::model_client::StreamId;
use crate::parser::Parser;
use crate::replay::replay;
use crate::roster::Character;

struct Inflight {
    stream: StreamId,
    parser: Option<Parser>,
    output: String,
    order: Vec<CharacterId>,
}

struct Queued {
    text: String,
    to: Option<CharacterId>,
}

pub struct Session {
    id: SessionId,
    deps: SessionDeps,
    publisher: Option<Recipient<Publish>>,
    log: EventLog,
    context: Megaprompt,
    config: SessionConfig,
    model: String,
    /// Turns begun so far; the turn in flight, if any, is this one.
    turns: u32,
    totals: Totals,
    closed: bool,
    inflight: Option<Inflight>,
    queue: VecDeque<Queued>,
    cast_queue: Vec<CastChange>,
    /// The cast once the queued changes land: what new requests are checked against.
    projected: Cast,
}

impl Session {
    /// Opens a new session: checks the cast, renders the head, creates the
    /// log and writes `session-open`.
    pub fn create(
        deps: SessionDeps,
        new: NewSession,
        publisher: Option<Recipient<Publish>>,
    ) -> Result<Self, SessionError> {
        if new.cast.is_empty() {
            return Err(SessionError::EmptyCast);
        }
        let mut cast: Vec<Character> = Vec::new();
        for id in &new.cast {
            let c = deps.roster.get(id).ok_or_else(|| SessionError::UnknownCharacter(id.clone()))?;
            if cast.iter().any(|x| x.id == c.id) {
                return Err(crate::megaprompt::CastError::AlreadyOnStage(id.clone()).into());
            }
            cast.push(c.clone());
        }
        if cast.len() > deps.limits.max_cast {
            return Err(SessionError::CastFull(deps.limits.max_cast));
        }
        let renderer = deps.renderer.clone();
        let templates = renderer.templates().clone();
        let depth = new.depth.unwrap_or(templates.default_depth);
        if !(1..=12).contains(&depth) {
            return Err(SessionError::BadDepth);
        }
        let head = renderer.head(depth, &cast).map_err(crate::megaprompt::MegapromptError::from)?;
        let config = SessionConfig { title: new.title, depth, provider: deps.provider.name.clone() };
        let model = deps.provider.model.clone();
        let mut log = EventLog::create(&deps.logs, &new.id, deps.durability)?;
        let open = EventBody::SessionOpen {
            config: config.clone(),
            model: model.clone(),
            head: head.clone(),
            participants: cast.clone(),
            templates: Box::new(templates),
        };
        let first = log.append(0, open)?;
        let context = Megaprompt::new(renderer, head, &cast);
        let session = Self::assemble(new.id, deps, publisher, log, context, config, model);
        session.publish(first);
        Ok(session)
    }

    /// Rebuilds a session from its log, repairing what a crash left behind.
    /// Returns the session and the events the repair appended.
    pub fn open(deps: SessionDeps, id: SessionId, publisher: Option<Recipient<Publish>>) -> Result<Self, SessionError> {
        let opened = EventLog::open(&deps.logs, &id, deps.durability)?;
        let state = replay(&opened.events, Some(&deps.renderer))?;
        let appended = opened.torn_bytes.min(1) as usize + opened.recovered_turn.map_or(0, |_| 1);
        let repairs: Vec<Arc<Logged>> = opened.events[opened.events.len() - appended..].to_vec();
        let mut session = Self::assemble(id, deps, publisher, opened.log, state.context, state.config, state.model);
        session.turns = state.turns;
        session.totals = state.totals;
        session.closed = state.closed;
        for logged in repairs {
            session.publish(logged);
        }
        Ok(session)
    }

    fn assemble(
        id: SessionId,
        deps: SessionDeps,
        publisher: Option<Recipient<Publish>>,
        log: EventLog,
        context: Megaprompt,
        config: SessionConfig,
        model: String,
    ) -> Self {
        let projected = context.cast().clone();
        Self {
            id,
            deps,
            publisher,
            log,
            context,
            config,
            model,
            turns: 0,
            totals: Totals::default(),
            closed: false,
            inflight: None,
            queue: VecDeque::new(),
            cast_queue: Vec::new(),
            projected,
        }
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn context(&self) -> &Megaprompt {
        &self.context
    }

    pub fn info(&self) -> SessionInfo {
        let on_stage = self
            .context
            .cast()
            .on_stage_characters()
            .map(|c| Participant {
                id: c.id.clone(),
                name: c.name.clone(),
                tagline: c.tagline.clone(),
                colour: c.colour.clone(),
            })
            .collect();
        SessionInfo {
            id: self.id.clone(),
            config: self.config.clone(),
            model: self.model.clone(),
            on_stage,
            pending_changes: self.cast_queue.clone(),
            turn_in_flight: self.inflight.is_some(),
            queued_input: self.queue.len(),
            turns: self.turns,
            totals: self.totals.clone(),
            closed: self.closed,
            next_seq: self.log.next_seq(),
            prefix_hash: self.context.prefix_hash(),
            context_bytes: self.context.len_bytes(),
        }
    }

    fn publish(&self, logged: Arc<Logged>) {
        if let Some(p) = &self.publisher {
            // `do_send`: the gateway only copies into bounded per-subscriber
            // queues and never blocks, so its mailbox drains at once; making
            // the session wait on it would couple the turn to the watchers.
            p.do_send(Publish(Outbound::Event(logged)));
        }
    }

    /// Appends an event for `turn` and publishes it.
    fn emit(&mut self, turn: u32, body: EventBody) -> Result<(), LogError> {
        let logged = self.log.append(turn, body)?;
        self.publish(logged);
        Ok(())
    }

    /// The turn that events at the boundary (cast changes, the floor) belong to.
    fn next_turn(&self) -> u32 {
        self.turns + 1
    }

    /// The log failed: stop rather than hold state the log does not have.
    fn fail_hard(&mut self, err: &LogError, ctx: &mut Context<Self>) {
        log::error!("session {}: stopping, the log cannot be written: {err}", self.id);
        ctx.stop();
    }

    /// Resolves `@Name` at the start of `text`, or an explicit `to`.
    fn address(&self, text: &str, to: Option<&str>) -> Result<(String, Option<CharacterId>), SessionError> {
        let (name, rest) = match (to, text.trim_start().strip_prefix('@')) {
            (Some(to), _) => (Some(to.trim().trim_start_matches('@')), text.trim()),
            (None, Some(rest)) => {
                let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (Some(name.trim_end_matches([',', ':'])), rest.trim())
            }
            (None, None) => (None, text.trim()),
        };
        let to = match name {
            None => None,
            Some(name) => {
                let lower = name.to_lowercase();
                let found = self
                    .projected
                    .on_stage_characters()
                    .find(|c| c.id.as_str() == lower || c.name.to_lowercase() == lower);
                Some(found.map(|c| c.id.clone()).ok_or_else(|| SessionError::NotAddressable(name.to_owned()))?)
            }
        };
        Ok((rest.to_owned(), to))
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A streaming model sends many small pieces; give them room.
        ctx.set_mailbox_capacity(256);
    }
}

impl Handler<Say> for Session {
    type Result = Result<SayAccepted, SessionError>;

    fn handle(&mut self, msg: Say, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let (text, to) = self.address(&msg.text, msg.to.as_deref())?;
        if text.is_empty() {
            return Err(SessionError::EmptyText);
        }
        if text.chars().count() > self.deps.limits.max_text {
            return Err(SessionError::TextTooLong(self.deps.limits.max_text));
        }
        if self.inflight.is_none() && self.queue.is_empty() {
            self.queue.push_back(Queued { text, to });
            self.at_boundary(ctx);
            return Ok(SayAccepted { turn: self.turns, queued: 0 });
        }
        if self.queue.len() >= self.deps.limits.queue {
            return Err(SessionError::QueueFull(self.deps.limits.queue));
        }
        self.queue.push_back(Queued { text, to });
        let ahead = self.queue.len();
        Ok(SayAccepted { turn: self.turns + ahead as u32, queued: ahead })
    }
}

impl Handler<ChangeCast> for Session {
    type Result = Result<CastAccepted, SessionError>;

    fn handle(&mut self, ChangeCast(change): ChangeCast, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(SessionError::Closed);
        }
        match &change {
            CastChange::Add(id) => {
                let joiner = self
                    .projected
                    .known(id)
                    .or_else(|| self.deps.roster.get(id))
                    .ok_or_else(|| SessionError::UnknownCharacter(id.clone()))?
                    .clone();
                if self.projected.on_stage().len() >= self.deps.limits.max_cast {
                    return Err(SessionError::CastFull(self.deps.limits.max_cast));
                }
                self.projected.join(&joiner)?;
            }
            CastChange::Retire(id) => self.projected.retire(id)?,
        }
        self.cast_queue.push(change);
        let pending = self.inflight.is_some();
        if !pending {
            self.at_boundary(ctx);
        }
        Ok(CastAccepted { pending })
    }
}

impl Handler<Inspect> for Session {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.info())
    }
}

impl Handler<Close> for Session {
    type Result = Result<Totals, SessionError>;

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let result = self.wind_down("session closed", ctx).and_then(|()| {
            let totals = self.totals.clone();
            self.emit(self.turns, EventBody::SessionClose { totals: totals.clone() })?;
            Ok(totals)
        });
        self.closed = true;
        ctx.stop();
        Ok(result?)
    }
}

impl Handler<Stop> for Session {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Self::Context) {
        if let Err(e) = self.wind_down(&msg.reason, ctx) {
            log::error!("session {}: could not log its wind-down: {e}", self.id);
        }
        ctx.stop();
    }
}

impl Handler<Restarted> for Session {
    type Result = ();

    fn handle(&mut self, msg: Restarted, ctx: &mut Self::Context) {
        let turn = self.turns;
        if let Err(e) = self.emit(turn, EventBody::ActorRestart { reason: msg.reason }) {
            self.fail_hard(&e, ctx);
        }
    }
}

impl Handler<Panic> for Session {
    type Result = ();

    fn handle(&mut self, _: Panic, _: &mut Self::Context) {
        panic!("session {}: panic requested through the debug route", self.id);
    }
}
