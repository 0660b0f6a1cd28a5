//! Counterfactual turns ("replays"): one turn of a session played again
//! with everything before it held exactly as it was.
//!
//! - `reroll`: the turn's own request, rebuilt from the log by the same
//!   [`Megaprompt`](crate::megaprompt::Megaprompt) calls the session made
//!   (head, tail up to and including that turn's floor line and stage
//!   directions, the same cache marks), sent again `n` times — under the
//!   session's settings, or another provider, model or confer depth. With
//!   the settings unchanged its prefix hash is the one the turn's
//!   provenance recorded, and the provider reads it from its cache.
//! - `solo`: the control for influence. Each character on stage at that
//!   turn answers the floor's line alone: the same request, closed by one
//!   more block (the `solo` template) asking for that character's reply
//!   only — so no confer and none of the others' lines of that turn.
//!
//! Invariants:
//! - A replay never touches its session: it reads the session's log and
//!   nothing else, and writes only its own log,
//!   `logs/<session>/replays/<id>.jsonl` (through a log writer of its own,
//!   so not even the session directory hears of it). The session's log,
//!   context, totals and cache clock stay as they were.
//! - It goes through the same model client, providers and pricing as a
//!   turn, so what it costs is real; that cost is its own (`replay-close`
//!   totals), never the session's.
//! - Its log opens with `replay-open` (everything needed to reproduce it:
//!   the turn, mode, settings, prefix hash, the solo template) and every
//!   sample's events carry `sample`.
//!
//! The parts: [`plan`] (the requests, from the log), [`run`] (the actor
//! that plays one replay), [`book`] (the actor that starts, lists and
//! streams them), [`index`] (the index the chat and the viewer read),
//! [`repair`] (replays a stop cut short, closed at start), [`summary`]
//! (what a replay says about its turn).

pub mod book;
pub mod index;
pub mod plan;
pub mod repair;
pub mod run;
pub mod summary;

use crate::event::ReplayMode;
use crate::event_log::LogError;

/// Most samples one replay may ask for (per character, for `solo`).
pub const MAX_SAMPLES: u32 = 8;

/// How a sample the server's stop cut short ends (`error` code and
/// `turn-aborted` reason), whether the stop was clean or a crash.
pub const INTERRUPTED: &str = "interrupted";
/// The `error` message beside it.
pub const INTERRUPTED_WHY: &str = "the server stopped before this sample ended";

/// What is asked for: `POST /api/sessions/{id}/replay`'s body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub turn: u32,
    pub mode: ReplayMode,
    pub n: u32,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub depth: Option<u8>,
}

/// A provider a replay may use, as the server offers it (plain values, so
/// the registry's catalogue need not be known here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub name: String,
    pub default_model: String,
    pub models: Vec<String>,
    pub offline: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("turn {asked} is not a turn of this session (its turns run from 1 to {last})")]
    NoSuchTurn { asked: u32, last: u32 },
    #[error("turn {0} is still in flight; replay it once it has ended")]
    TurnInFlight(u32),
    #[error("turn {0} was aborted: it has no answer to play again")]
    TurnAborted(u32),
    #[error("n must be between 1 and {MAX_SAMPLES}")]
    BadN,
    #[error("the confer depth must be between 1 and 12")]
    BadDepth,
    #[error("no provider {0:?} is configured on this server")]
    UnknownProvider(String),
    #[error("{provider} offers no model {model:?}; it offers {offered}")]
    UnknownModel { provider: String, model: String, offered: String },
    #[error(
        "turn {0} was addressed to one character, who already answered alone: reroll it instead of asking for solo"
    )]
    SoloOfAddressed(u32),
    #[error("no replay {0} of this session")]
    NotFound(String),
    #[error("the session's log cannot be rebuilt up to that turn: {0}")]
    Rebuild(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the replay could not be started: {0}")]
    Unavailable(String),
}

impl ReplayError {
    /// A stable, machine-readable code for the HTTP edge.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchTurn { .. } => "bad-turn",
            Self::TurnInFlight(_) => "turn-in-flight",
            Self::TurnAborted(_) => "turn-aborted",
            Self::BadN => "bad-n",
            Self::BadDepth => "bad-depth",
            Self::UnknownProvider(_) => "unknown-provider",
            Self::UnknownModel { .. } => "unknown-model",
            Self::SoloOfAddressed(_) => "solo-of-addressed-turn",
            Self::NotFound(_) => "replay-not-found",
            Self::Rebuild(_) => "log-unreplayable",
            Self::Log(LogError::NotFound(_)) => "session-not-found",
            Self::Log(_) => "log-failure",
            Self::Unavailable(_) => "replay-unavailable",
        }
    }
}

/// `logs/<session>/replays/`.
pub fn replays_dir(logs: &std::path::Path, session: &crate::id::SessionId) -> std::path::PathBuf {
    logs.join(session.as_str()).join("replays")
}
