//! The one event vocabulary.
//!
//! Every event is one JSON object: a line of `logs/<session>/events.jsonl`,
//! the `data:` of an SSE event, and the payload pushed over WebSocket. The
//! common fields (`seq`, `ts`, `session`, `turn`, `kind`) come first, then the
//! kind's own fields.
//!
//! `turn` is the turn an event belongs to. Events that prepare a turn (cast
//! changes landing at the boundary, the floor's line) carry the number of the
//! turn they precede; `session-open` carries 0.
//!
//! [`SpeakDelta`] is deliberately not an [`EventBody`]: it is ephemeral typing,
//! never logged, and carries no `seq`; so is [`Presence`], who is here.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{CharacterId, SessionId};
use crate::roster::Character;
use crate::templates::Templates;

mod cost;
mod counterfactual;
mod delivered;
mod settings;

pub use cost::{Cost, Totals, Usage};
pub use counterfactual::{ReplayMode, ReplayOf, SampleSpec};
pub use delivered::{DeliveredTurn, Line};
pub use settings::{CacheTtl, Carry, Dialect, KeepWarm, Parent, Provenance, SessionConfig, StudyTag, TurnMode};

/// The `error` code that records a server refused the format grammar: the
/// session drops the constraint for good, and a replay of the log reads it
/// so a restarted session does not try again.
pub const CONSTRAINT_UNSUPPORTED: &str = "constraint-unsupported";

/// A UTC instant written as RFC 3339 with microseconds (`2026-11-25T20:04:31.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Now, at the microsecond precision it is written with, so a value
    /// read back from the log equals the one that was written.
    pub fn now() -> Self {
        Self::at(Utc::now())
    }

    /// `t` at the precision it is written with.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(t.trunc_subsecs(6))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| Self(t.with_timezone(&Utc))).map_err(serde::de::Error::custom)
    }
}

/// One logged event: the common fields plus its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub ts: Timestamp,
    pub session: SessionId,
    pub turn: u32,
    /// In a replay's log: the sample an event belongs to (absent in a
    /// session's own log, and on a replay's `replay-open` and `replay-close`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    #[serde(flatten)]
    pub body: EventBody,
}

/// The kinds of event and their own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventBody {
    /// The first event of every log: everything needed to replay the session.
    SessionOpen {
        config: SessionConfig,
        model: String,
        /// The rendered head, byte for byte as sent to the model.
        head: String,
        /// The starting cast, snapshotted from the roster.
        participants: Vec<Character>,
        /// The prompt templates in force, so stage directions render the
        /// same on replay even if `roster/prompts/` changed since.
        templates: Box<Templates>,
        /// For a continued or branched session: where it came from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<Parent>,
        /// For a continued session: the stage direction that opens its tail,
        /// carrying the conversation so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carry: Option<String>,
        /// For a study's session: which study, condition and repeat it plays.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        study: Option<StudyTag>,
    },
    HumanSpeak {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<CharacterId>,
        /// The named seat it came from; absent for the anonymous floor, so
        /// a session nobody named a seat in logs what it always did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seat: Option<String>,
    },
    TurnStart {
        mode: TurnMode,
        /// Who is on stage for this turn.
        cast: Vec<CharacterId>,
    },
    Deliberation {
        speaker: CharacterId,
        text: String,
    },
    Speak {
        speaker: CharacterId,
        text: String,
    },
    Pass {
        speaker: CharacterId,
    },
    /// Model output the parser could not place. Nothing is dropped silently.
    Unparsed {
        raw: String,
        reason: String,
    },
    Join {
        character: CharacterId,
        /// The joiner's roster entry, snapshotted. `None` when a retired
        /// character returns: their materials are already in the context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        materials: Option<Character>,
    },
    Leave {
        character: CharacterId,
        line: String,
    },
    Cost(Cost),
    TurnEnd {
        /// Who answered (spoke or passed), in the order they did.
        order: Vec<CharacterId>,
        /// The model's raw output, verbatim: it is what the context appends,
        /// so replay rebuilds a byte-identical prompt from the log alone.
        output: String,
        /// What produced the turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provenance: Option<Box<Provenance>>,
    },
    TurnAborted {
        reason: String,
    },
    Error {
        code: String,
        message: String,
    },
    ActorRestart {
        reason: String,
    },
    /// A pre-warm request that kept the prompt cache warm through a pause.
    KeepWarm {
        input: u64,
        cache_write: u64,
        cache_read: u64,
        usd: Option<f64>,
        warm_until: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        simulated: bool,
    },
    /// A setting changed while the session runs.
    Settings {
        keep_warm: KeepWarm,
    },
    /// The log was repaired when opened: a torn final line was cut off.
    LogRepair {
        torn_bytes: u64,
    },
    SessionClose {
        totals: Totals,
    },
    /// The first event of a replay's log (`logs/<session>/replays/<id>.jsonl`):
    /// which turn is played again, how, and under which settings.
    ReplayOpen {
        /// The replay's own id (its file's name).
        id: String,
        of: ReplayOf,
        mode: ReplayMode,
        /// Samples per character for `solo`, samples for `reroll`.
        n: u32,
        provider: String,
        model: String,
        depth: u8,
        /// Whether provider, model and depth are the session's own.
        same_settings: bool,
        /// The prefix hash of the turn's context as rebuilt here (for a
        /// reroll under the session's settings: the one its provenance holds).
        prefix_hash: String,
        samples: Vec<SampleSpec>,
        /// The solo instruction's template, snapshotted so the replay can be
        /// reproduced after `roster/prompts/` changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        solo_template: Option<String>,
    },
    /// The last event of a replay's log: what all its samples cost,
    /// counted apart from the session's own totals.
    ReplayClose {
        totals: Totals,
    },
}

impl EventBody {
    /// The `kind` string, as used for the SSE `event:` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionOpen { .. } => "session-open",
            Self::HumanSpeak { .. } => "human-speak",
            Self::TurnStart { .. } => "turn-start",
            Self::Deliberation { .. } => "deliberation",
            Self::Speak { .. } => "speak",
            Self::Pass { .. } => "pass",
            Self::Unparsed { .. } => "unparsed",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Cost(_) => "cost",
            Self::TurnEnd { .. } => "turn-end",
            Self::TurnAborted { .. } => "turn-aborted",
            Self::Error { .. } => "error",
            Self::ActorRestart { .. } => "actor-restart",
            Self::KeepWarm { .. } => "keep-warm",
            Self::Settings { .. } => "settings",
            Self::LogRepair { .. } => "log-repair",
            Self::SessionClose { .. } => "session-close",
            Self::ReplayOpen { .. } => "replay-open",
            Self::ReplayClose { .. } => "replay-close",
        }
    }

    /// Events after which a turn is over and the floor is free again.
    pub fn closes_turn(&self) -> bool {
        matches!(self, Self::TurnEnd { .. } | Self::TurnAborted { .. })
    }
}

/// An event as it was written: the value and the exact JSON line (without
/// its newline). Serialised once; every subscriber gets the same bytes.
#[derive(Debug)]
pub struct Logged {
    pub event: Event,
    pub json: Arc<str>,
}

/// Ephemeral typing: a piece of a speak that is still being written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "speak-delta")]
pub struct SpeakDelta {
    pub ts: Timestamp,
    pub session: SessionId,
    pub turn: u32,
    pub speaker: CharacterId,
    pub text: String,
}

/// Who is here now: the named seats connected to a session and how many
/// others watch it. Ephemeral like [`SpeakDelta`]: never logged, no `seq`;
/// a gateway sends it whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename = "presence")]
pub struct Presence {
    pub ts: Timestamp,
    pub session: SessionId,
    /// Seat names connected, sorted, each once.
    pub seats: Vec<String>,
    /// Event streams open beyond the seats' own.
    pub watchers: usize,
}

/// What a session hands to the gateway for fan-out.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<Logged>),
    /// A serialised [`SpeakDelta`].
    Delta(Arc<str>),
}

impl Outbound {
    pub fn delta(delta: &SpeakDelta) -> Self {
        // Serialising a struct of strings and numbers cannot fail.
        Self::Delta(serde_json::to_string(delta).unwrap_or_default().into())
    }
}

/// A session hands one outbound item to its gateway for fan-out.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct Publish(pub Outbound);
