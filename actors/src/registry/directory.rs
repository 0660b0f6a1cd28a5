//! The directory: every session the server knows, with a summary kept
//! current from the events as the log writers write them.
//!
//! Listing sessions or inspecting one therefore never re-reads a log that
//! is being written. A summary is read from its log once, off the actor
//! threads, the first time someone asks (sessions from before a restart);
//! from then on each new event updates it in place. A load that raced with
//! new events is noticed (by a version count) and simply done again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::event::{Event, EventBody, KeepWarm, Logged, Parent, StudyTag, Timestamp, Totals};
use crate::event_log::{self, LogError};
use crate::id::SessionId;
use crate::provider::CacheTtl;
use crate::session::Participant;

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
    pub totals: Totals,
    pub closed: bool,
    /// `running`, `starting`, `stopping`, `stopped` (on request), `failed`,
    /// or `idle` (not loaded: it starts when someone needs it).
    pub actor: &'static str,
    /// Why the actor is failed, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub events: u64,
    /// The session's model settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<CacheTtl>,
    pub keep_warm: KeepWarm,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    /// A study's session: which study, condition and repeat (the sessions
    /// page groups them under their study).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study: Option<StudyTag>,
    /// When the prompt cache went (or goes) cold, after the last call that used it.
    #[serde(skip)]
    pub warm_until: Option<Timestamp>,
    #[serde(skip)]
    pub prefix_tokens: u64,
    /// The prompt's size at the last turn.
    #[serde(skip)]
    pub context_tokens: Option<u64>,
    /// Everyone whose materials are in the context, to name returners.
    #[serde(skip)]
    known: Vec<Participant>,
}

impl SessionSummary {
    /// The summary a log's first event gives.
    pub fn open(event: &Event) -> Option<Self> {
        let EventBody::SessionOpen { config, model, participants, parent, study, .. } = &event.body else {
            return None;
        };
        let on_stage: Vec<Participant> = participants.iter().map(Participant::from).collect();
        Some(Self {
            id: event.session.clone(),
            title: config.title.clone(),
            depth: config.depth,
            model: model.clone(),
            provider: config.provider.clone(),
            known: on_stage.clone(),
            on_stage,
            turns: 0,
            totals: Totals::default(),
            closed: false,
            actor: "idle",
            failure: None,
            created: event.ts,
            updated: event.ts,
            events: event.seq,
            cache_ttl: config.cache_ttl,
            keep_warm: config.keep_warm,
            parent: parent.clone(),
            study: study.clone(),
            warm_until: None,
            prefix_tokens: 0,
            context_tokens: None,
        })
    }

    /// Folds in the next event.
    pub fn apply(&mut self, event: &Event) {
        match &event.body {
            EventBody::Join { character, materials } => {
                if let Some(m) = materials {
                    self.known.push(Participant::from(m));
                }
                if let Some(p) = self.known.iter().find(|p| p.id == *character) {
                    self.on_stage.push(p.clone());
                }
            }
            EventBody::Leave { character, .. } => self.on_stage.retain(|p| p.id != *character),
            EventBody::HumanSpeak { .. } | EventBody::TurnStart { .. } => self.turns = event.turn,
            EventBody::Cost(cost) => {
                self.warm_until = cost.warm_until;
                self.prefix_tokens = cost.cache_read + cost.cache_write;
                self.context_tokens = cost.context_tokens.or(self.context_tokens);
            }
            EventBody::KeepWarm { warm_until, cache_read, cache_write, .. } => {
                self.warm_until = *warm_until;
                self.prefix_tokens = cache_read + cache_write;
            }
            EventBody::Settings { keep_warm } => self.keep_warm = *keep_warm,
            EventBody::SessionClose { .. } => self.closed = true,
            _ => {}
        }
        self.totals.add_event(&event.body);
        self.totals.turns = self.turns;
        self.updated = event.ts;
        self.events = event.seq;
    }
}

/// A session's summary, read from its whole log.
pub fn load_summary(logs: &Path, id: &SessionId) -> Result<SessionSummary, LogError> {
    let events = event_log::read(logs, id)?;
    let (first, rest) = events.split_first().ok_or_else(|| not_a_session(logs, id))?;
    let mut summary = SessionSummary::open(&first.event).ok_or_else(|| not_a_session(logs, id))?;
    for logged in rest {
        summary.apply(&logged.event);
    }
    Ok(summary)
}

fn not_a_session(logs: &Path, id: &SessionId) -> LogError {
    let path = event_log::events_path(logs, id);
    LogError::Corrupt { path, line: 1, message: "the log does not start with session-open".into() }
}

#[derive(Default)]
struct Known {
    summary: Option<SessionSummary>,
    /// Events seen for this session; a load that saw fewer is stale.
    version: u64,
}

#[derive(Default)]
pub struct Directory {
    known: Mutex<HashMap<SessionId, Known>>,
    /// Bumped whenever a session's listing changes (opened, a turn, a cost,
    /// a cast change, closed): live session lists refetch on it. A watch
    /// channel coalesces: a reader only ever sees the latest version.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Directory {
    pub fn new(ids: impl IntoIterator<Item = SessionId>) -> Self {
        let known = ids.into_iter().map(|id| (id, Known::default())).collect();
        Self { known: Mutex::new(known), changes: tokio::sync::watch::Sender::new(0) }
    }

    /// Notified whenever a session's listing changes.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the log writers with every event they write.
    pub fn observe(&self, logged: &Logged) {
        let event = &logged.event;
        let mut known = self.lock();
        let entry = known.entry(event.session.clone()).or_default();
        entry.version += 1;
        match &mut entry.summary {
            // Already counted (a repair, published after it was loaded).
            Some(s) if event.seq <= s.events => {}
            Some(s) if event.seq == s.events + 1 => s.apply(event),
            _ if event.seq == 1 => entry.summary = SessionSummary::open(event),
            // A gap: read it again when next asked.
            _ => entry.summary = None,
        }
        drop(known);
        let listed = matches!(
            event.body,
            EventBody::SessionOpen { .. }
                | EventBody::TurnEnd { .. }
                | EventBody::TurnAborted { .. }
                | EventBody::Cost(_)
                | EventBody::KeepWarm { .. }
                | EventBody::Join { .. }
                | EventBody::Leave { .. }
                | EventBody::Settings { .. }
                | EventBody::SessionClose { .. }
        );
        if listed {
            self.changes.send_modify(|v| *v += 1);
        }
    }

    pub fn add(&self, id: &SessionId) {
        self.lock().entry(id.clone()).or_default();
    }

    pub fn contains(&self, id: &SessionId) -> bool {
        self.lock().contains_key(id)
    }

    pub fn ids(&self) -> Vec<SessionId> {
        self.lock().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The summary, if it has been loaded.
    pub fn get(&self, id: &SessionId) -> Option<SessionSummary> {
        self.lock().get(id).and_then(|k| k.summary.clone())
    }

    /// Whether the session is known to be closed (false when not yet loaded).
    pub fn is_closed(&self, id: &SessionId) -> bool {
        self.lock().get(id).and_then(|k| k.summary.as_ref()).is_some_and(|s| s.closed)
    }

    /// Sessions whose summary must be read from the log, with the version
    /// to hand back to [`Directory::fill`].
    pub fn missing(&self, among: Option<&[SessionId]>) -> Vec<(SessionId, u64)> {
        let known = self.lock();
        let wanted = |id: &SessionId| among.is_none_or(|a| a.contains(id));
        known
            .iter()
            .filter(|(id, k)| k.summary.is_none() && wanted(id))
            .map(|(id, k)| (id.clone(), k.version))
            .collect()
    }

    /// Stores a summary read from the log, unless events arrived meanwhile
    /// (then it is read again next time).
    pub fn fill(&self, id: &SessionId, version: u64, summary: SessionSummary) {
        if let Some(k) = self.lock().get_mut(id)
            && k.version == version
        {
            k.summary = Some(summary);
        }
    }

    /// Reads every missing summary (blocking: call it off the actor threads).
    /// Returns the logs that could not be read, and why.
    pub fn load_missing(&self, logs: &Path, among: Option<&[SessionId]>) -> Vec<(SessionId, String)> {
        let mut problems = Vec::new();
        for (id, version) in self.missing(among) {
            match load_summary(logs, &id) {
                Ok(summary) => self.fill(&id, version, summary),
                Err(e) => problems.push((id, e.to_string())),
            }
        }
        problems
    }
}
