//! The session registry: creates, finds, lists, closes and supervises
//! sessions, and starts each session's gateway.
//!
//! Invariants:
//! - At most one actor per session at a time, and only the registry starts
//!   one. Each session has a `Slot` saying where its actor is in its life:
//!   idle (not loaded), starting, running, stopping, stopped on request, or
//!   failed. Requests that meet a slot in transition wait for it to finish,
//!   then are answered from the new state — so a stop followed at once by a
//!   start is ordered: the start opens the log only after the stopped actor
//!   has released it. The states and their transitions are `slot.rs`; each
//!   actor incarnation has a generation there, and a notice from an older
//!   one (a late idle offer) changes nothing. Starting and settling a start
//!   is `starting.rs`.
//! - Nothing here blocks its thread: opening and creating logs, replaying
//!   them and writing artefacts run on the blocking pool; sessions and
//!   gateways run on the `lanes`.
//! - Supervision (`supervision.rs`): an actor that died without being asked
//!   to (a panic, a log it could not write) is rebuilt from its log, which
//!   closes any turn it left open, and an `actor-restart` event says so.
//!   actix's own `Supervisor` does not restart a panicked actor, hence the
//!   sweep. Rebuilds back off exponentially and stop after a few failures;
//!   the session then shows as failed (with the reason) until someone acts
//!   on it, which tries once more.
//! - An actor stopped on request stays stopped until started on request. An
//!   idle actor is passivated (its log and memory let go) and started again,
//!   from its log, when next needed.
//! - A gateway lives while its session runs or someone watches it; then it
//!   is retired, and a new one is started when needed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use tokio::sync::oneshot;

mod catalog;
mod continuation;
mod control;
mod creation;
mod directory;
mod lanes;
mod messages;
mod replays;
mod slot;
mod starting;
mod supervision;

pub use catalog::{Constrain, ProviderListing};
pub use continuation::Continue;
pub use control::*;
pub use creation::*;
pub use directory::{Directory, SessionSummary, load_summary};
pub use lanes::{Lane, Lanes};
pub use messages::*;
pub use replays::StartReplay;
use slot::{Access, Failure, Slot, StartFailure};

use crate::event_log::LogError;
use crate::gateway::{Gateway, Retire, RetireIfIdle};
use crate::id::SessionId;
use crate::session::CacheInfo;
use crate::session::{ContextInfo, SessionDeps, SessionError, SessionInfo};

/// How often the registry looks for actors that died.
const SWEEP: Duration = Duration::from_millis(250);
/// Rebuilds of a dying actor: the first after this, each later one after twice as long.
const RESTART_BACKOFF: Duration = Duration::from_millis(250);
/// Rebuilds tried before the registry gives up until someone acts.
const MAX_RESTARTS: u32 = 5;
/// An actor that ran this long before dying starts its count afresh.
const STABLE: Duration = Duration::from_secs(60);
/// A gateway nobody subscribed to is retired after this.
const UNUSED_GATEWAY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no session {0}")]
    NotFound(SessionId),
    #[error("session {0}'s actor is stopped; start it with POST /api/sessions/{0}/actor")]
    ActorStopped(SessionId),
    #[error("session {0}'s actor is already running")]
    AlreadyRunning(SessionId),
    #[error("session {0} is closed")]
    Closed(SessionId),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("session {0}'s actor did not answer")]
    Unavailable(SessionId),
    /// The actor could not be started (the reason's code is kept, so the
    /// edge answers it as it would the original error).
    #[error("session {id}'s actor cannot run: {message}")]
    Failed { id: SessionId, code: &'static str, message: String },
    /// A request that asks for something the server does not offer.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// A session that cannot be continued as asked.
    #[error(transparent)]
    Carry(#[from] crate::continuation::CarryError),
    /// The model could not write a continuation's recap; nothing was created.
    #[error("the recap could not be written, so no session was created: {0}")]
    Recap(crate::provider::ModelError),
    /// A replay that cannot be played as asked.
    #[error(transparent)]
    Replay(crate::counterfactual::ReplayError),
}

impl From<LogError> for RegistryError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::NotFound(id) => Self::NotFound(id),
            other => Self::Session(SessionError::Log(other)),
        }
    }
}

/// A summary, the cache and context as of now, and what only a running actor knows.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// The prompt cache: its clock, keep-warm, the price of letting it go cold.
    pub cache: CacheInfo,
    /// How full the model's window is.
    pub context: ContextInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<SessionInfo>,
}

struct Entry {
    lane: usize,
    gateway: Option<Addr<Gateway>>,
    /// Subscribers of the gateway, as it last reported.
    watchers: usize,
    slot: Slot,
    /// What a failing actor said before it stopped.
    death_note: Option<String>,
}

pub struct Registry {
    /// What sessions need; `model` is replaced by their lane's.
    deps: SessionDeps,
    lanes: Lanes,
    gateway_capacity: usize,
    sessions: HashMap<SessionId, Entry>,
    directory: Arc<Directory>,
    /// Most actors running at once: each holds its log open, and files are
    /// a limited resource. Past it, the longest-running idle ones let go.
    max_running: usize,
    /// How OpenAI-compatible sessions' turns are held to the format.
    constrain: Constrain,
    /// Where replays of sessions are played and kept.
    replays: Option<Addr<crate::counterfactual::book::Replays>>,
}

impl Registry {
    /// `directory` must know every session in the logs folder (the start-up
    /// recovery lists them) and observe what the log writer writes.
    pub fn new(deps: SessionDeps, lanes: Lanes, gateway_capacity: usize, directory: Arc<Directory>) -> Self {
        Self {
            deps,
            lanes,
            gateway_capacity,
            sessions: HashMap::new(),
            directory,
            max_running: usize::MAX,
            constrain: Constrain::Auto,
            replays: None,
        }
    }

    /// Plays replays of sessions through `book`.
    pub fn with_replays(mut self, book: Addr<crate::counterfactual::book::Replays>) -> Self {
        self.replays = Some(book);
        self
    }

    /// How OpenAI-compatible sessions' turns are held to the format.
    pub fn with_constrain(mut self, constrain: Constrain) -> Self {
        self.constrain = constrain;
        self
    }

    /// Caps the actors running at once.
    pub fn with_max_running(mut self, max: usize) -> Self {
        self.max_running = max.max(1);
        self
    }

    fn running_count(&self) -> usize {
        self.sessions.values().filter(|e| matches!(&e.slot, Slot::Running(r) if r.addr.connected())).count()
    }

    /// Over the cap: asks the actors that have run longest to let go now if
    /// they are idle (a busy one refuses, and is asked again next time).
    fn make_room(&mut self, ctx: &mut Context<Self>) {
        let running = self.running_count();
        if running <= self.max_running {
            return;
        }
        // A little beyond the cap, so a burst of new sessions does not ask on every start.
        let excess = running - self.max_running + self.max_running / 8;
        let mut oldest: Vec<(Instant, u64, SessionId)> = self
            .sessions
            .iter()
            .filter_map(|(id, e)| match &e.slot {
                Slot::Running(r) if r.addr.connected() => Some((r.since, r.key, id.clone())),
                _ => None,
            })
            .collect();
        oldest.sort();
        for (_, generation, id) in oldest.into_iter().take(excess) {
            self.passivate(&id, generation, true, ctx);
        }
    }

    /// Asks the running actor of incarnation `generation` to let go of its
    /// log and memory, if idle. A slot not running that incarnation (a late
    /// idle notice) is left alone.
    fn passivate(&mut self, id: &SessionId, generation: u64, now: bool, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(id) else { return };
        let Some(r) = entry.slot.begin_passivate(generation) else { return };
        let asked = r.addr.send(crate::session::Passivate { now });
        let id = id.clone();
        ctx.spawn(asked.into_actor(self).map(move |passivated, act, ctx| {
            // Not passivated: busy again after all (or already gone: the sweep sees to that).
            let waiters = act.entry(&id).slot.end_passivate(r, matches!(passivated, Ok(true)));
            for w in waiters {
                let _ = w.send(Ok(()));
            }
            act.maybe_retire(&id, ctx);
        }));
    }

    fn deps_for(&self, lane: usize, ctx: &Context<Self>) -> SessionDeps {
        SessionDeps {
            model: self.lanes.get(lane).model.clone(),
            supervisor: Some(ctx.address().recipient()),
            ..self.deps.clone()
        }
    }

    fn entry(&mut self, id: &SessionId) -> &mut Entry {
        let lane = self.lanes.pick(id);
        self.sessions.entry(id.clone()).or_insert_with(|| Entry {
            lane,
            gateway: None,
            watchers: 0,
            slot: Slot::Idle,
            death_note: None,
        })
    }

    /// The session's gateway, started if it has none.
    fn gateway(&mut self, id: &SessionId, ctx: &mut Context<Self>) -> Addr<Gateway> {
        let owner = ctx.address().recipient();
        let capacity = self.gateway_capacity;
        let lane = self.entry(id).lane;
        let arbiter = self.lanes.get(lane).arbiter.clone();
        let entry = self.entry(id);
        if let Some(g) = &entry.gateway {
            return g.clone();
        }
        let session = id.clone();
        let gateway = Gateway::start_in_arbiter(&arbiter, move |_| Gateway::new(session, capacity, Some(owner)));
        entry.gateway = Some(gateway.clone());
        entry.watchers = 0;
        // One asked for but never subscribed to must not linger. The check
        // is for this gateway only: a later one, just handed to a subscriber
        // whose Subscribe is still on its way, must not be retired by an old
        // timer.
        let (id, this) = (id.clone(), gateway.clone());
        ctx.run_later(UNUSED_GATEWAY, move |act, ctx| {
            if act.sessions.get(&id).and_then(|e| e.gateway.as_ref()) == Some(&this) {
                act.maybe_retire(&id, ctx);
            }
        });
        gateway
    }

    /// Retires the gateway of a session nobody watches and no actor runs,
    /// and forgets the entry of one with nothing left to remember.
    ///
    /// The entry lets go of the gateway at once (an actor starting meanwhile
    /// gets a new one), and the gateway stops only if it is still idle. One
    /// that gained a subscriber in the meantime is taken back — or, if a new
    /// gateway has taken its place, told to disconnect its subscribers, who
    /// reconnect to the new one.
    fn maybe_retire(&mut self, id: &SessionId, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(id) else { return };
        let busy = matches!(entry.slot, Slot::Starting(_) | Slot::Running(_) | Slot::Stopping(_));
        if busy || entry.watchers > 0 {
            return;
        }
        let idle = matches!(entry.slot, Slot::Idle);
        if let Some(gateway) = entry.gateway.take() {
            let id = id.clone();
            let asked = gateway.send(RetireIfIdle);
            ctx.spawn(asked.into_actor(self).map(move |stopped, act, _| {
                if !matches!(stopped, Ok(false)) {
                    return;
                }
                let entry = act.entry(&id);
                match &entry.gateway {
                    None => entry.gateway = Some(gateway),
                    Some(newer) if *newer != gateway => gateway.do_send(Retire),
                    Some(_) => {}
                }
            }));
        }
        if idle {
            self.sessions.remove(id);
        }
    }

    /// Whether a request for `id` can reach its actor now, starting it if needed.
    fn access(&mut self, id: &SessionId, ctx: &mut Context<Self>) -> Access {
        if !self.directory.contains(id) {
            return Access::Denied(RegistryError::NotFound(id.clone()));
        }
        if self.directory.is_closed(id) {
            return Access::Denied(RegistryError::Closed(id.clone()));
        }
        let entry = self.entry(id);
        match &mut entry.slot {
            Slot::Running(r) if r.addr.connected() => return Access::Ready(r.addr.clone()),
            Slot::Running(_) => self.died(id, ctx),
            Slot::Stopped => return Access::Denied(RegistryError::ActorStopped(id.clone())),
            Slot::Idle => self.start(id, None, 0, None, false, ctx),
            Slot::Failed(f) if f.retry.is_some() => {
                // A rebuild is already scheduled: the caller may try again shortly.
                let message = format!("{}; it is being rebuilt, try again shortly", f.failure.message);
                return Access::Denied(RegistryError::Failed { id: id.clone(), code: "actor-recovering", message });
            }
            Slot::Failed(f) => {
                // Given up on, and now someone acts on it: try once more, now.
                let (key, attempts) = (f.key.take(), f.attempts);
                self.start(id, key, attempts, Some("restarted after a failure".into()), false, ctx);
            }
            Slot::Starting(_) | Slot::Stopping(_) => {}
        }
        self.wait(id)
    }

    /// A receiver told when the session's current transition ends.
    fn wait(&mut self, id: &SessionId) -> Access {
        let (tx, rx) = oneshot::channel();
        match &mut self.entry(id).slot {
            Slot::Starting(w) | Slot::Stopping(w) => w.push(tx),
            // Settled already: answer at once.
            _ => {
                let _ = tx.send(Ok(()));
            }
        }
        Access::Wait(rx)
    }

    /// The actor state and failure to show with a summary.
    fn describe(&self, summary: &mut SessionSummary) {
        match self.sessions.get(&summary.id).map(|e| &e.slot) {
            Some(Slot::Failed(f)) => {
                summary.actor = "failed";
                summary.failure = Some(f.failure.message.clone());
            }
            Some(slot) => summary.actor = slot.name(),
            None => summary.actor = "idle",
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(SWEEP, |act, ctx| act.sweep(ctx));
    }
}
