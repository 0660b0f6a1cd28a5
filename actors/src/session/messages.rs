//! The session actor's vocabulary: the messages it answers, what it needs
//! to run, and its errors. Plain types, so the HTTP edge only adapts them.
//! One file on purpose: it is the session's whole interface, read in one go.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;

use crate::cache_clock::{CacheState, TimeScale};
use crate::event::{Cost, KeepWarm, Parent, SessionConfig, StudyTag, Totals};
use crate::event_log::{Durability, LogError, LogWriter};
use crate::id::{CharacterId, SessionId};
use crate::megaprompt::{CastError, MegapromptError};
use crate::model_client::ModelClient;
use crate::pricing::Pricing;
use crate::provider::{CacheTtl, Dialect, ProviderInfo};
use crate::replay::ReplayError;
use crate::roster::{Character, Library};
use crate::templates::{Renderer, Templates};

/// Bounds that keep one session from growing without limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Floor messages that may wait while a turn is in flight.
    pub queue: usize,
    /// Cast changes that may wait while a turn is in flight.
    pub cast_queue: usize,
    /// Longest floor message, in characters.
    pub max_text: usize,
    /// Most characters on stage at once.
    pub max_cast: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { queue: 8, cast_queue: 16, max_text: 8_000, max_cast: 8 }
    }
}

/// What every session shares.
#[derive(Clone)]
pub struct SessionDeps {
    pub logs: PathBuf,
    /// The character library, as it is now (it may change while sessions run).
    pub roster: Arc<Library>,
    /// Compiled once and shared by every session using the current templates.
    pub renderer: Arc<Renderer>,
    pub pricing: Arc<Pricing>,
    /// The model client of the arbiter the session runs on.
    pub model: Addr<ModelClient>,
    /// The provider sessions get unless they choose another.
    pub provider: ProviderInfo,
    /// Every provider the server can reach, by name.
    pub providers: Arc<Vec<ProviderInfo>>,
    /// What each model call asks for unless the session says otherwise.
    pub max_tokens: u32,
    pub cache_ttl: CacheTtl,
    pub writer: LogWriter,
    pub durability: Durability,
    pub limits: Limits,
    /// Who hears that a session is idle or failed (the registry), and after
    /// how long without activity an idle session offers to let go.
    pub supervisor: Option<Recipient<SessionNotice>>,
    pub passivate_after: Option<Duration>,
    /// Divides every cache duration (a testing aid; 1 in real use).
    pub time_scale: TimeScale,
    /// Keep-warm stops once the floor has been silent this long (unscaled).
    pub keep_warm_cap: Duration,
    /// The input window to assume for a model nobody states one for.
    pub default_window: Option<u64>,
}

impl SessionDeps {
    /// Deps with one provider and every setting at its default: for tools
    /// and tests that run sessions outside a server.
    pub fn new(
        logs: PathBuf,
        roster: Arc<Library>,
        renderer: Arc<Renderer>,
        model: Addr<ModelClient>,
        provider: ProviderInfo,
        writer: LogWriter,
    ) -> Self {
        Self {
            logs,
            roster,
            renderer,
            pricing: Arc::new(Pricing::embedded()),
            model,
            providers: Arc::new(vec![provider.clone()]),
            provider,
            max_tokens: 4096,
            cache_ttl: CacheTtl::FiveMinutes,
            writer,
            durability: Durability::PerTurn,
            limits: Limits::default(),
            supervisor: None,
            passivate_after: None,
            time_scale: TimeScale::REAL,
            keep_warm_cap: Duration::from_secs(1800),
            default_window: None,
        }
    }

    /// The provider named `name`, if the server can reach it.
    pub fn provider_named(&self, name: &str) -> Option<&ProviderInfo> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The roster entries for `ids`, in order.
    pub fn cast(&self, ids: &[CharacterId]) -> Result<Vec<Character>, SessionError> {
        let roster = self.roster.current();
        ids.iter().map(|id| roster.get(id).cloned().ok_or_else(|| SessionError::UnknownCharacter(id.clone()))).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no character {0} in the roster")]
    UnknownCharacter(CharacterId),
    #[error(transparent)]
    Cast(#[from] CastError),
    #[error("{0} is not on stage, so cannot be addressed")]
    NotAddressable(String),
    #[error("a cast needs at least one character")]
    EmptyCast,
    #[error("at most {0} characters can be on stage")]
    CastFull(usize),
    #[error("the message is empty")]
    EmptyText,
    #[error("the message is longer than {0} characters")]
    TextTooLong(usize),
    #[error("{0} messages are already waiting for the panel; wait for the current turn to end")]
    QueueFull(usize),
    #[error("{0} cast changes are already waiting for the turn to end")]
    CastQueueFull(usize),
    #[error("the session's actor is stopping; try again")]
    Stopping,
    #[error("the session is closed")]
    Closed,
    #[error("the confer depth must be between 1 and 12")]
    BadDepth,
    #[error("the session's log cannot be written: {0}")]
    Log(#[from] LogError),
    #[error("the session's log cannot be replayed: {0}")]
    Replay(#[from] ReplayError),
    #[error("the megaprompt could not be built: {0}")]
    Context(#[from] MegapromptError),
    #[error("opening the session failed unexpectedly: {0}")]
    Panicked(String),
    #[error(
        "the conversation has outgrown the model's window ({needed} tokens needed, {window} available); continue it fresh in a new session"
    )]
    ContextFull { needed: u64, window: u64 },
    #[error("no provider {0:?} is configured on this server")]
    UnknownProvider(String),
    #[error("this session's provider keeps its cache without a time limit: there is nothing to keep warm")]
    NothingToKeepWarm,
    #[error(transparent)]
    BadSeat(#[from] crate::floor::SeatError),
    #[error("this session's prompt templates predate seats and would drop the name; speak without a seat")]
    SeatsUnsupported,
    #[error(
        "{name} cannot join: someone on the floor has spoken as {seat:?}, and the model would take one for the other"
    )]
    SeatTaken { name: String, seat: String },
}

impl SessionError {
    /// A stable, machine-readable code for the HTTP edge.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCharacter(_) => "unknown-character",
            Self::Cast(CastError::AlreadyOnStage(_)) => "already-on-stage",
            Self::Cast(CastError::NotOnStage(_)) => "not-on-stage",
            Self::Cast(CastError::LastCharacter(_)) => "last-character",
            Self::NotAddressable(_) => "not-addressable",
            Self::EmptyCast => "empty-cast",
            Self::CastFull(_) => "cast-full",
            Self::EmptyText => "empty-text",
            Self::TextTooLong(_) => "text-too-long",
            Self::QueueFull(_) => "queue-full",
            Self::CastQueueFull(_) => "cast-queue-full",
            Self::Stopping => "actor-stopping",
            Self::Closed => "session-closed",
            Self::BadDepth => "bad-depth",
            Self::Log(LogError::Locked(_)) => "log-locked",
            Self::Log(_) => "log-failure",
            Self::Replay(_) => "log-unreplayable",
            Self::Context(_) => "context-failure",
            Self::Panicked(_) => "actor-failed",
            Self::ContextFull { .. } => "context-full",
            Self::UnknownProvider(_) => "unknown-provider",
            Self::NothingToKeepWarm => "no-cache-ttl",
            Self::BadSeat(_) => "bad-seat",
            Self::SeatsUnsupported => "seats-unsupported",
            Self::SeatTaken { .. } => "seat-taken",
        }
    }
}

/// A cast change, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CastChange {
    Add(CharacterId),
    Retire(CharacterId),
}

/// How to open a new session.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub title: String,
    /// The starting cast, as the head will hold them.
    pub cast: Vec<Character>,
    pub depth: Option<u8>,
    /// The provider and model (defaults: the server's).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub cache_ttl: Option<CacheTtl>,
    pub keep_warm: Option<KeepWarm>,
    /// How the server should hold turns to the format, if it can.
    pub constraint: Option<Dialect>,
    /// For a continued session: where from, and the direction carrying the conversation.
    pub parent: Option<Parent>,
    pub carry: Option<String>,
    /// What writing the carry cost, logged as the session's first `cost`.
    pub opening_cost: Option<Cost>,
    /// The sampling seed (a fresh one when `None`).
    pub seed: Option<u64>,
    /// The study, condition and repeat the session plays, if any.
    pub study: Option<StudyTag>,
    /// Prompt templates replacing the server's for this session (a study
    /// condition's `prompts`); snapshotted in `session-open` like any.
    pub templates: Option<Templates>,
}

impl NewSession {
    pub fn new(id: SessionId, title: String, cast: Vec<Character>) -> Self {
        Self {
            id,
            title,
            cast,
            depth: None,
            provider: None,
            model: None,
            cache_ttl: None,
            keep_warm: None,
            constraint: None,
            parent: None,
            carry: None,
            opening_cost: None,
            seed: None,
            study: None,
            templates: None,
        }
    }
}

/// The floor speaks. A leading `@Name` in `text` addresses Name, like `to`;
/// `seat` names who on the floor is speaking.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "Result<SayAccepted, SessionError>")]
pub struct Say {
    pub text: String,
    pub to: Option<String>,
    pub seat: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SayAccepted {
    /// The turn this message will open.
    pub turn: u32,
    /// Messages ahead of it in the queue (0: it is being answered now).
    pub queued: usize,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<CastAccepted, SessionError>")]
pub struct ChangeCast(pub CastChange);

#[derive(Debug, Clone, Serialize)]
pub struct CastAccepted {
    /// True when a turn is in flight and the change waits for its end.
    pub pending: bool,
}

/// A snapshot of the session for the API.
#[derive(Debug, Clone, Message)]
#[rtype(result = "SessionInfo")]
pub struct Inspect;

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub id: CharacterId,
    pub name: String,
    pub tagline: String,
    pub colour: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub config: SessionConfig,
    pub model: String,
    pub on_stage: Vec<Participant>,
    pub pending_changes: Vec<CastChange>,
    pub turn_in_flight: bool,
    pub queued_input: usize,
    pub turns: u32,
    pub totals: Totals,
    pub closed: bool,
    pub next_seq: u64,
    pub prefix_hash: String,
    pub context_bytes: usize,
    /// The prompt cache's clock.
    pub cache: CacheInfo,
    /// How full the model's window is.
    pub context: ContextInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
}

/// The prompt cache, as the API and the strip show it.
#[derive(Debug, Clone, Serialize)]
pub struct CacheInfo {
    #[serde(flatten)]
    pub state: CacheState,
    pub keep_warm: KeepWarm,
    /// What letting the cache go cold costs: the next turn re-writes the
    /// cached prefix instead of reading it (USD, when the model is priced).
    pub rewrite_usd: Option<f64>,
    /// Whether keep-warm pings are being sent now.
    pub warming: bool,
    /// The floor's pauses seen so far (a turn's end to its next line), and
    /// their median once there are three: what `auto` judges its pace by.
    pub floor_pauses: usize,
    pub floor_pause_s: Option<f64>,
}

/// The prompt's size against the model's window.
#[derive(Debug, Clone, Serialize)]
pub struct ContextInfo {
    /// The prompt's size at the last turn (or an estimate before one).
    pub tokens: u64,
    /// The model's input window, when known.
    pub window: Option<u64>,
    /// `tokens / window`, when the window is known.
    pub share: Option<f64>,
}

/// Change a setting of a running session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, SessionError>")]
pub struct ChangeSettings {
    pub keep_warm: Option<KeepWarm>,
}

/// Whether anyone watches the session (the registry tells it when that changes).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Watched(pub bool);

/// What a session tells its supervisor.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SessionNotice {
    pub id: SessionId,
    /// Which incarnation of the session speaks: its log's key, unique for
    /// the server's life, so the supervisor can tell a late notice from an
    /// earlier incarnation.
    pub generation: u64,
    pub kind: Notice,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Nothing in flight, nothing queued, nothing for a while: it may be passivated.
    Idle,
    /// Its log failed; it is stopping and should be rebuilt from the log.
    Failed(String),
}

/// Let go of the log and stop, if still idle — for the idle period, or at
/// all when `now` (the server needs the room). Answers whether it did.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Passivate {
    pub now: bool,
}

/// Close the session for good: abort any turn in flight, log `session-close`, stop.
#[derive(Debug, Message)]
#[rtype(result = "Result<Totals, SessionError>")]
pub struct Close;

/// Stop this actor (for debugging, or shutdown). A turn in flight is aborted
/// with `reason` and logged; the session can be started again from its log.
/// Answers once the log is written and released.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stop {
    pub reason: String,
}

/// Record that the actor was (re)started from its log, and why.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Restarted {
    pub reason: String,
}

/// Debugging aid: make the actor panic, to exercise supervision. The
/// registry only forwards it when the server runs with debug routes on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Panic;

impl From<&crate::roster::Character> for Participant {
    fn from(c: &crate::roster::Character) -> Self {
        Self { id: c.id.clone(), name: c.name.clone(), tagline: c.tagline.clone(), colour: c.colour.clone() }
    }
}
