//! The session registry: creates, finds, lists, closes and supervises
//! sessions, and owns each session's gateway.
//!
//! Invariants:
//! - At most one actor per session at a time, and only the registry starts
//!   one. A session's actor is started lazily, from its log, the first time
//!   something needs it — after a server restart too.
//! - A session's gateway lives as long as the registry, so subscribers stay
//!   connected while the actor is stopped, crashes, or restarts.
//! - Supervision: an actor that died without being asked to (a panic, or a
//!   log it could not write) is rebuilt from its log, which closes any turn
//!   it left open, and an `actor-restart` event says so. actix's own
//!   `Supervisor` does not restart a panicked actor, hence this sweep.
//! - An actor stopped on request stays stopped until started on request.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

mod messages;
pub use messages::*;

use crate::event::Timestamp;
use crate::event_log::{self, LogError};
use crate::gateway::Gateway;
use crate::id::SessionId;
use crate::replay::replay;
use crate::session::{Participant, Restarted, Session, SessionDeps, SessionError, SessionInfo};

/// How often the registry looks for actors that died.
const SWEEP: Duration = Duration::from_millis(250);

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
}

impl From<LogError> for RegistryError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::NotFound(id) => Self::NotFound(id),
            other => Self::Session(SessionError::Log(other)),
        }
    }
}

/// What the API says about a session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    pub id: SessionId,
    pub title: String,
    pub depth: u8,
    pub model: String,
    pub provider: String,
    pub on_stage: Vec<Participant>,
    pub turns: u32,
    pub totals: crate::event::Totals,
    pub closed: bool,
    /// `running`, `stopped` (on request) or `idle` (not loaded).
    pub actor: &'static str,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub events: u64,
}

/// A summary plus what only a running actor knows.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<SessionInfo>,
}

struct Entry {
    gateway: Addr<Gateway>,
    actor: Option<Addr<Session>>,
    stopped: bool,
}

pub struct Registry {
    deps: SessionDeps,
    gateway_capacity: usize,
    sessions: HashMap<SessionId, Entry>,
    /// Summaries of logs by their length, so listing does not re-read
    /// unchanged logs.
    summaries: HashMap<SessionId, (u64, SessionSummary)>,
}

impl Registry {
    pub fn new(deps: SessionDeps, gateway_capacity: usize) -> Self {
        Self { deps, gateway_capacity, sessions: HashMap::new(), summaries: HashMap::new() }
    }

    /// The entry for `id`, creating its gateway if the session has a log.
    fn entry(&mut self, id: &SessionId) -> Result<&mut Entry, RegistryError> {
        if !self.sessions.contains_key(id) {
            if !event_log::events_path(&self.deps.logs, id).exists() {
                return Err(RegistryError::NotFound(id.clone()));
            }
            let gateway = Gateway::new(id.clone(), self.deps.logs.clone(), self.gateway_capacity)?.start();
            self.sessions.insert(id.clone(), Entry { gateway, actor: None, stopped: false });
        }
        self.sessions.get_mut(id).ok_or_else(|| RegistryError::NotFound(id.clone()))
    }

    /// The running actor of `id`, starting it from its log if needed.
    fn running(&mut self, id: &SessionId) -> Result<Addr<Session>, RegistryError> {
        let deps = self.deps.clone();
        let entry = self.entry(id)?;
        if let Some(addr) = entry.actor.as_ref().filter(|a| a.connected()) {
            return Ok(addr.clone());
        }
        if entry.stopped {
            return Err(RegistryError::ActorStopped(id.clone()));
        }
        let died = entry.actor.is_some();
        let session = Session::open(deps, id.clone(), Some(entry.gateway.clone().recipient()))?;
        if session.info().closed {
            return Err(RegistryError::Closed(id.clone()));
        }
        let addr = session.start();
        if died {
            log::warn!("session {id}: its actor died; rebuilt it from the log");
            addr.do_send(Restarted { reason: "the actor died; rebuilt from its log".into() });
        }
        entry.actor = Some(addr.clone());
        Ok(addr)
    }

    fn summary(&mut self, id: &SessionId) -> Result<SessionSummary, RegistryError> {
        let path = event_log::events_path(&self.deps.logs, id);
        let len = std::fs::metadata(&path).map_err(|_| RegistryError::NotFound(id.clone()))?.len();
        let actor = match self.sessions.get(id) {
            Some(e) if e.actor.as_ref().is_some_and(|a| a.connected()) => "running",
            Some(e) if e.stopped => "stopped",
            _ => "idle",
        };
        if let Some((cached, summary)) = self.summaries.get(id)
            && *cached == len
        {
            return Ok(SessionSummary { actor, ..summary.clone() });
        }
        let events = event_log::read(&self.deps.logs, id)?;
        let state = replay(&events, Some(&self.deps.renderer)).map_err(SessionError::from)?;
        let first = events.first().map(|l| l.event.ts).unwrap_or_else(Timestamp::now);
        let summary = SessionSummary {
            id: id.clone(),
            title: state.config.title.clone(),
            depth: state.config.depth,
            model: state.model.clone(),
            provider: state.config.provider.clone(),
            on_stage: state.context.cast().on_stage_characters().map(Participant::from).collect(),
            turns: state.turns,
            totals: state.totals.clone(),
            closed: state.closed,
            actor,
            created: first,
            updated: events.last().map_or(first, |l| l.event.ts),
            events: events.len() as u64,
        };
        self.summaries.insert(id.clone(), (len, summary.clone()));
        Ok(summary)
    }

    fn known_ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = std::fs::read_dir(&self.deps.logs)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str().and_then(|n| SessionId::parse(n).ok()))
            .filter(|id| event_log::events_path(&self.deps.logs, id).exists())
            .collect();
        ids.sort();
        ids
    }

    /// Restarts actors that died without being asked to.
    fn sweep(&mut self) {
        let dead: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| !e.stopped && e.actor.as_ref().is_some_and(|a| !a.connected()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            match self.running(&id) {
                Ok(_) => {}
                // A closed session's actor stops by design.
                Err(RegistryError::Closed(_)) => {
                    if let Some(e) = self.sessions.get_mut(&id) {
                        e.actor = None;
                    }
                }
                Err(e) => log::error!("session {id}: its actor died and cannot be rebuilt: {e}"),
            }
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(SWEEP, |act, _| act.sweep());
    }
}
