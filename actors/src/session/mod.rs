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
use std::time::Instant;

use actix::prelude::*;

pub use messages::*;

use crate::event::{EventBody, Logged, Outbound, Publish, SessionConfig, Totals};
use crate::event_log::{Appender, EventLog, LogError, LogFailed};
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
    log: Appender,
    context: Megaprompt,
    config: SessionConfig,
    model: String,
    /// Turns begun so far; the turn in flight, if any, is this one.
    turns: u32,
    totals: Totals,
    closed: bool,
    /// Set once the actor is letting go of its log: it takes no more input.
    stopping: bool,
    inflight: Option<Inflight>,
    queue: VecDeque<Queued>,
    cast_queue: Vec<CastChange>,
    /// The cast once the queued changes land: what new requests are checked against.
    projected: Cast,
    /// The last time anything happened: input, a turn's progress.
    active: Instant,
}

impl Session {
    /// Opens a new session: checks the cast, renders the head, creates the
    /// log and writes `session-open`. Blocking file I/O: call it off the
    /// actor threads.
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
        let file = EventLog::create(&deps.logs, &new.id, deps.durability)?;
        let mut log = deps.writer.attach(file, publisher);
        let open = EventBody::SessionOpen {
            config: config.clone(),
            model: model.clone(),
            head: head.clone(),
            participants: cast.clone(),
            templates: Box::new(templates),
        };
        log.append(0, open)?;
        let context = Megaprompt::new(renderer, head, &cast);
        Ok(Self::assemble(new.id, deps, log, context, config, model))
    }

    /// Rebuilds a session from its log, repairing what a crash left behind
    /// (the repair's events are published first). Blocking file I/O and a
    /// whole-log replay: call it off the actor threads.
    pub fn open(deps: SessionDeps, id: SessionId, publisher: Option<Recipient<Publish>>) -> Result<Self, SessionError> {
        let opened = EventLog::open(&deps.logs, &id, deps.durability)?;
        let state = replay(&opened.events, Some(&deps.renderer))?;
        let repairs: Vec<std::sync::Arc<Logged>> = opened.repairs().to_vec();
        let log = deps.writer.attach(opened.log, publisher);
        for logged in repairs {
            log.publish(Outbound::Event(logged));
        }
        let mut session = Self::assemble(id, deps, log, state.context, state.config, state.model);
        session.turns = state.turns;
        session.totals = state.totals;
        session.closed = state.closed;
        Ok(session)
    }

    fn assemble(
        id: SessionId,
        deps: SessionDeps,
        log: Appender,
        context: Megaprompt,
        config: SessionConfig,
        model: String,
    ) -> Self {
        let projected = context.cast().clone();
        Self {
            id,
            deps,
            log,
            context,
            config,
            model,
            turns: 0,
            totals: Totals::default(),
            closed: false,
            stopping: false,
            inflight: None,
            queue: VecDeque::new(),
            cast_queue: Vec::new(),
            projected,
            active: Instant::now(),
        }
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn context(&self) -> &Megaprompt {
        &self.context
    }

    /// The log writer's key for this session's log.
    pub fn log_key(&self) -> u64 {
        self.log.key()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Resolves once every event appended so far is written and on disk.
    pub fn flush(&self) -> impl std::future::Future<Output = Result<(), LogError>> + use<> {
        self.log.flush()
    }

    /// Lets go of the log of a session that is not going to run (a tool
    /// that only looked at it); resolves once the file is closed.
    pub fn release(mut self) -> impl std::future::Future<Output = Result<(), LogError>> {
        self.log.release()
    }

    pub fn info(&self) -> SessionInfo {
        let on_stage = self.context.cast().on_stage_characters().map(Participant::from).collect();
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

    /// Appends an event for `turn`; it is published once it is written.
    fn emit(&mut self, turn: u32, body: EventBody) -> Result<(), LogError> {
        self.log.append(turn, body).map(drop)
    }

    /// The turn that events at the boundary (cast changes, the floor) belong to.
    fn next_turn(&self) -> u32 {
        self.turns + 1
    }

    /// The log failed: stop rather than hold state the log does not have.
    /// The supervisor rebuilds the session from what the log really holds.
    fn fail_hard(&mut self, err: &LogError, ctx: &mut Context<Self>) {
        log::error!("session {}: stopping, the log cannot be written: {err}", self.id);
        if let Some(supervisor) = &self.deps.supervisor {
            supervisor.do_send(SessionNotice { id: self.id.clone(), kind: Notice::Failed(err.to_string()) });
        }
        self.stopping = true;
        ctx.stop();
    }

    /// Nothing in flight, nothing waiting.
    fn idle(&self) -> bool {
        self.inflight.is_none() && self.queue.is_empty() && self.cast_queue.is_empty()
    }

    fn refuse_if_gone(&self) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.stopping {
            return Err(SessionError::Stopping);
        }
        Ok(())
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
        self.log.watch(ctx.address().recipient());
        if let (Some(after), Some(supervisor)) = (self.deps.passivate_after, self.deps.supervisor.clone()) {
            // Look a few times per idle period, so passivation comes at most
            // a quarter late.
            let every = (after / 4).max(std::time::Duration::from_millis(10));
            ctx.run_interval(every, move |act, _| {
                if act.idle() && !act.stopping && act.active.elapsed() >= after {
                    supervisor.do_send(SessionNotice { id: act.id.clone(), kind: Notice::Idle });
                }
            });
        }
    }
}

impl Handler<LogFailed> for Session {
    type Result = ();

    fn handle(&mut self, msg: LogFailed, ctx: &mut Self::Context) {
        let err = LogError::Failed(self.id.clone(), msg.message);
        self.fail_hard(&err, ctx);
    }
}

impl Handler<Say> for Session {
    type Result = Result<SayAccepted, SessionError>;

    fn handle(&mut self, msg: Say, ctx: &mut Self::Context) -> Self::Result {
        self.refuse_if_gone()?;
        self.active = Instant::now();
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
        self.refuse_if_gone()?;
        self.active = Instant::now();
        // A change that undoes one still waiting cancels it instead of queueing.
        let undoes = match &change {
            CastChange::Add(id) => CastChange::Retire(id.clone()),
            CastChange::Retire(id) => CastChange::Add(id.clone()),
        };
        let cancels = self.cast_queue.iter().rposition(|c| *c == undoes);
        if cancels.is_none() && self.cast_queue.len() >= self.deps.limits.cast_queue {
            return Err(SessionError::CastQueueFull(self.deps.limits.cast_queue));
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
        match cancels {
            Some(i) => {
                self.cast_queue.remove(i);
            }
            None => self.cast_queue.push(change),
        }
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
    type Result = ResponseFuture<Result<Totals, SessionError>>;

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) -> Self::Result {
        if let Err(e) = self.refuse_if_gone() {
            return Box::pin(std::future::ready(Err(e)));
        }
        let result = self.wind_down("session closed", ctx).and_then(|()| {
            let totals = self.totals.clone();
            self.emit(self.turns, EventBody::SessionClose { totals: totals.clone() })?;
            Ok(totals)
        });
        self.closed = true;
        self.stopping = true;
        let released = self.log.release();
        ctx.stop();
        // Answer once `session-close` is on disk and the log is let go of,
        // so the artefacts written next see the whole log.
        Box::pin(async move {
            let totals = result?;
            released.await?;
            Ok(totals)
        })
    }
}

impl Handler<Stop> for Session {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Stop, ctx: &mut Self::Context) -> Self::Result {
        if !self.stopping
            && let Err(e) = self.wind_down(&msg.reason, ctx)
        {
            log::error!("session {}: could not log its wind-down: {e}", self.id);
        }
        self.stopping = true;
        let released = self.log.release();
        ctx.stop();
        let id = self.id.clone();
        Box::pin(async move {
            if let Err(e) = released.await {
                log::error!("session {id}: its log did not close cleanly: {e}");
            }
        })
    }
}

impl Handler<Passivate> for Session {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Passivate, ctx: &mut Self::Context) -> Self::Result {
        // Anything that arrived since the offer to passivate keeps it alive.
        let rested = msg.now || self.deps.passivate_after.is_some_and(|a| self.active.elapsed() >= a);
        let still_idle = self.idle() && !self.stopping && rested;
        if !still_idle {
            return Box::pin(std::future::ready(false));
        }
        self.stopping = true;
        let released = self.log.release();
        ctx.stop();
        Box::pin(async move { released.await.is_ok() })
    }
}

impl Handler<Restarted> for Session {
    type Result = ();

    fn handle(&mut self, msg: Restarted, ctx: &mut Self::Context) {
        self.active = Instant::now();
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
