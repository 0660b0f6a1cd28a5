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
//! - At most one turn is in flight, and never at the same time as a
//!   keep-warm ping. Input arriving meanwhile waits in a bounded queue and is
//!   taken in order at the turn boundary; past the bound it is refused. Once
//!   the floor is a room (a named seat spoke), every line waiting at a
//!   boundary is answered in one turn (`turn::batch`); before, one line is
//!   one turn, as it always was. Cast
//!   changes wait likewise and land at the boundary, before the next floor
//!   line. When idle, the session *is* at a boundary, so changes land at once.
//! - An aborted turn leaves the context as it was before the floor spoke.
//! - A turn that cannot fit the model's window is refused before anything
//!   is sent (`budget`); the session stays usable, and can be continued
//!   fresh in a new session.
//! - If the log cannot be written, the actor stops rather than carry on with
//!   state the log does not have; a restart rebuilds it from the log.
//!
//! The parts: `turn` (the lifecycle), `handlers` (the messages it
//! answers), `keep_warm` (the cache clock and pre-warm pings), `budget`
//! (the context window), `constraint` (a grammar with each turn).

mod budget;
mod constraint;
mod handlers;
mod keep_warm;
mod messages;
mod turn;

use std::collections::VecDeque;
use std::time::Instant;

use actix::prelude::*;

pub use constraint::UNSUPPORTED as CONSTRAINT_UNSUPPORTED;
pub use messages::*;

use crate::cache_clock::CacheClock;
use crate::event::{EventBody, KeepWarm, Logged, Outbound, Parent, Publish, SessionConfig, Timestamp, Totals};
use crate::event_log::{Appender, EventLog, LogError};
use crate::id::{CharacterId, SessionId};
use crate::megaprompt::{Cast, Megaprompt};
use crate::model_client::StreamId;
use crate::parser::Parser;
use crate::provider::{Brief, ProviderInfo};
use crate::replay::replay;

struct Inflight {
    stream: StreamId,
    parser: Option<Parser>,
    output: String,
    order: Vec<CharacterId>,
    /// When the request was sent (the cache clock counts from here).
    sent: (Instant, Timestamp),
    /// When its first text arrived.
    first_text: Option<Instant>,
    /// The prefix hash of the prompt it was given.
    prefix_hash: String,
    /// The request, kept while it carries a grammar the server might still
    /// refuse (until text streams).
    request: Option<crate::provider::CompletionRequest>,
}

struct Queued {
    text: String,
    to: Option<CharacterId>,
    seat: Option<String>,
}

pub struct Session {
    id: SessionId,
    deps: SessionDeps,
    log: Appender,
    context: Megaprompt,
    config: SessionConfig,
    model: String,
    /// The session's provider; `None` when this server does not offer it.
    provider: Option<ProviderInfo>,
    parent: Option<Parent>,
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
    cache: CacheClock,
    warmth: keep_warm::Warmth,
    budget: budget::Budget,
}

impl Session {
    /// Opens a new session: checks the cast and settings, renders the head,
    /// creates the log and writes `session-open`. Blocking file I/O: call it
    /// off the actor threads.
    pub fn create(
        deps: SessionDeps,
        new: NewSession,
        publisher: Option<Recipient<Publish>>,
    ) -> Result<Self, SessionError> {
        let cast = new.cast;
        if cast.is_empty() {
            return Err(SessionError::EmptyCast);
        }
        for (i, c) in cast.iter().enumerate() {
            if cast[..i].iter().any(|x| x.id == c.id) {
                return Err(crate::megaprompt::CastError::AlreadyOnStage(c.id.clone()).into());
            }
        }
        if cast.len() > deps.limits.max_cast {
            return Err(SessionError::CastFull(deps.limits.max_cast));
        }
        let provider_name = new.provider.unwrap_or_else(|| deps.provider.name.clone());
        let provider =
            deps.provider_named(&provider_name).cloned().ok_or(SessionError::UnknownProvider(provider_name))?;
        let renderer = match new.templates {
            Some(t) => std::sync::Arc::new(
                crate::templates::Renderer::new(t).map_err(crate::megaprompt::MegapromptError::from)?,
            ),
            None => deps.renderer.clone(),
        };
        let templates = renderer.templates().clone();
        let depth = new.depth.unwrap_or(templates.default_depth);
        if !(1..=12).contains(&depth) {
            return Err(SessionError::BadDepth);
        }
        let head = renderer.head(depth, &cast).map_err(crate::megaprompt::MegapromptError::from)?;
        let mut config = SessionConfig::new(new.title, depth, provider.name.clone());
        // A cache that expires has a TTL to choose and a reason to keep warm.
        if provider.cache_expires {
            config.cache_ttl = Some(new.cache_ttl.unwrap_or(deps.cache_ttl));
            config.keep_warm = new.keep_warm.unwrap_or(KeepWarm::Auto);
        }
        config.max_tokens = Some(deps.max_tokens);
        config.constraint = new.constraint;
        config.seed = Some(new.seed.unwrap_or_else(|| fastrand::u64(..)));
        let model = new.model.unwrap_or_else(|| provider.model.clone());
        let file = EventLog::create(&deps.logs, &new.id, deps.durability)?;
        let mut log = deps.writer.attach(file, publisher);
        let open = EventBody::SessionOpen {
            config: config.clone(),
            model: model.clone(),
            head: head.clone(),
            participants: cast.clone(),
            templates: Box::new(templates),
            parent: new.parent.clone(),
            carry: new.carry.clone(),
            study: new.study,
        };
        log.append(0, open)?;
        let opening = new.opening_cost.map(EventBody::Cost);
        if let Some(cost) = &opening {
            log.append(0, cost.clone())?;
        }
        let context = Megaprompt::with_carry(renderer, head, &cast, new.carry.as_deref());
        let mut session = Self::assemble(new.id, deps, log, context, config, model);
        session.parent = new.parent;
        if let Some(cost) = &opening {
            session.totals.add_event(cost);
        }
        Ok(session)
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
        session.parent = state.parent;
        if let Some((warm_until, prefix)) = state.warmth {
            session.cache.restore(warm_until, prefix);
        }
        session.budget.restore(state.context_tokens, state.outputs);
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
        let provider = deps.provider_named(&config.provider).cloned();
        let cache = CacheClock::new(config.cache_ttl, deps.time_scale);
        let budget = budget::Budget::new(&deps, &model, &context);
        Self {
            id,
            deps,
            log,
            context,
            config,
            model,
            provider,
            parent: None,
            turns: 0,
            totals: Totals::default(),
            closed: false,
            stopping: false,
            inflight: None,
            queue: VecDeque::new(),
            cast_queue: Vec::new(),
            projected,
            active: Instant::now(),
            cache,
            warmth: keep_warm::Warmth::default(),
            budget,
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
            cache: self.cache_info(),
            context: self.budget.info(),
            parent: self.parent.clone(),
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
            supervisor.do_send(SessionNotice {
                id: self.id.clone(),
                generation: self.log.key(),
                kind: Notice::Failed(err.to_string()),
            });
        }
        self.stopping = true;
        ctx.stop();
    }

    /// Nothing in flight, nothing waiting.
    fn idle(&self) -> bool {
        self.inflight.is_none() && self.queue.is_empty() && self.cast_queue.is_empty() && !self.warmth.pinging()
    }

    /// The session's seed; a log recorded before seeds were draws from its id.
    fn seed(&self) -> u64 {
        Brief::session_seed(self.config.seed, self.id.as_str())
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
    /// Who `text` (or `to`) addresses, and the text without the address.
    /// After `@` comes a name (the longest on-stage name the text starts
    /// with, so `@Zed the Keeper` works), an id, or a first name that only
    /// one character on stage has (`@Zed`).
    fn address(&self, text: &str, to: Option<&str>) -> Result<(String, Option<CharacterId>), SessionError> {
        let cast: Vec<&crate::roster::Character> = self.projected.on_stage_characters().collect();
        if let Some(to) = to {
            let wanted = to.trim().trim_start_matches('@').to_lowercase();
            let found = cast.iter().find(|c| c.id.as_str() == wanted || c.name.to_lowercase() == wanted);
            let id = found.map(|c| c.id.clone()).ok_or_else(|| SessionError::NotAddressable(to.trim().to_owned()))?;
            return Ok((text.trim().to_owned(), Some(id)));
        }
        let Some(rest) = text.trim_start().strip_prefix('@') else { return Ok((text.trim().to_owned(), None)) };
        let ends_at = |n: usize| rest[n..].chars().next().is_none_or(|c| c.is_whitespace() || c == ',' || c == ':');
        let by_name = cast
            .iter()
            .filter(|c| {
                let n = c.name.len();
                rest.is_char_boundary(n.min(rest.len()))
                    && rest.get(..n).is_some_and(|head| head.to_lowercase() == c.name.to_lowercase())
                    && ends_at(n)
            })
            .max_by_key(|c| c.name.len())
            .map(|c| (c.id.clone(), c.name.len()));
        let (first, _) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let first = first.trim_end_matches([',', ':']);
        let by_word = || {
            let word = first.to_lowercase();
            let found: Vec<_> = cast
                .iter()
                .filter(|c| {
                    c.id.as_str() == word || c.name.split_whitespace().next().is_some_and(|w| w.to_lowercase() == word)
                })
                .collect();
            (found.len() == 1).then(|| (found[0].id.clone(), first.len()))
        };
        let (id, len) = by_name.or_else(by_word).ok_or_else(|| SessionError::NotAddressable(first.to_owned()))?;
        let rest = rest[len..].trim_start_matches([',', ':']).trim();
        Ok((rest.to_owned(), Some(id)))
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A streaming model sends many small pieces; give them room.
        ctx.set_mailbox_capacity(256);
        self.log.watch(ctx.address().recipient());
        self.ask_window(ctx);
        self.schedule_ping(ctx);
        if let (Some(after), Some(supervisor)) = (self.deps.passivate_after, self.deps.supervisor.clone()) {
            // Look a few times per idle period, so passivation comes at most
            // a quarter late.
            let every = (after / 4).max(std::time::Duration::from_millis(10));
            ctx.run_interval(every, move |act, _| {
                if act.idle() && !act.stopping && !act.warmth.wants_to_stay() && act.active.elapsed() >= after {
                    supervisor.do_send(SessionNotice {
                        id: act.id.clone(),
                        generation: act.log.key(),
                        kind: Notice::Idle,
                    });
                }
            });
        }
    }
}
