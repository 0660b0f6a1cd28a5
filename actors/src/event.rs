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
//! never logged, and carries no `seq`.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{CharacterId, SessionId};
use crate::provider::{CacheTtl, Dialect};
use crate::roster::Character;
use crate::templates::Templates;

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
    #[serde(flatten)]
    pub body: EventBody,
}

/// What was configured when the session opened. Recorded in `session-open`
/// so a session replays from its log alone. (Fields added since the first
/// version default, so older logs still read.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    pub title: String,
    /// How many exchanges the confer aims for.
    pub depth: u8,
    pub provider: String,
    /// The prompt-cache lifetime the session asks for; absent for a
    /// provider whose cache does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<CacheTtl>,
    /// Whether to keep the cache warm through pauses (a `settings` event may change it).
    #[serde(default)]
    pub keep_warm: KeepWarm,
    /// Most tokens a turn may write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// How the server holds turns to the format, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Dialect>,
}

impl SessionConfig {
    pub fn new(title: String, depth: u8, provider: String) -> Self {
        Self { title, depth, provider, cache_ttl: None, keep_warm: KeepWarm::Off, max_tokens: None, constraint: None }
    }
}

/// Keeping the provider's prompt cache warm through the floor's pauses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepWarm {
    /// Never ping.
    Off,
    /// Ping while it is likely to pay: someone watches, the floor has not
    /// been silent too long, and a ping costs less than the rewrite it saves
    /// times the chance the floor speaks before the next ping.
    #[default]
    Auto,
    /// Ping until the silence cap, watched or not.
    Always,
}

/// Where a continued or branched session came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    pub id: SessionId,
    /// The last turn of the parent carried over.
    pub turn: u32,
    pub carry: Carry,
}

/// How a continued session carries the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carry {
    /// What was delivered (the floor's lines, speaks, passes, joins, leaves), never the confer.
    #[default]
    Transcript,
    /// Notes the model wrote about the conversation.
    Recap,
}

/// What produced a turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// The model id the server reported (often a dated snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The sampling parameters sent.
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    pub stop_sequences: Vec<String>,
    /// From sending the request to its first text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// From sending the request to its end.
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_s: Option<f64>,
    /// The prefix hash of the prompt the turn was given.
    pub prefix_hash: String,
    /// Whether the server held the output to the format, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Dialect>,
}

/// How a turn is voiced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TurnMode {
    /// Two or more on stage, no address: confer, then everyone in relevance-led order.
    Panel,
    /// `@Name`: that character alone, no confer.
    Addressed,
    /// One character on stage: a 1:1, no confer.
    OneToOne,
}

/// Tokens and price of one model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub model: String,
    /// Uncached input tokens.
    pub input: u64,
    /// Tokens written to the prompt cache (all TTLs).
    pub cache_write: u64,
    /// The part of `cache_write` written with the 1-hour TTL.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_1h: u64,
    pub cache_read: u64,
    pub output: u64,
    /// Whether any of the prompt was read from the cache.
    #[serde(default)]
    pub cache_hit: bool,
    /// `None` when the model has no known price.
    pub usd: Option<f64>,
    /// True for the offline rehearsal engine: tokens are estimated and the
    /// cache is simulated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
    /// When the prompt cache goes cold after this call (`None`: it does not expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_until: Option<Timestamp>,
    /// The prompt's size: input, cache reads and cache writes together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Running totals of a session, as recorded on close.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub turns: u32,
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
    pub usd: f64,
}

impl Totals {
    pub fn add(&mut self, cost: &Cost) {
        self.input += cost.input;
        self.cache_write += cost.cache_write;
        self.cache_read += cost.cache_read;
        self.output += cost.output;
        self.usd += cost.usd.unwrap_or(0.0);
    }

    /// Adds what an event cost, if it cost anything: a turn's `cost`, or a
    /// `keep-warm` ping (panel never spends where the totals do not show it).
    pub fn add_event(&mut self, body: &EventBody) {
        match body {
            EventBody::Cost(cost) => self.add(cost),
            EventBody::KeepWarm { input, cache_write, cache_read, usd, .. } => {
                self.input += input;
                self.cache_write += cache_write;
                self.cache_read += cache_read;
                self.usd += usd.unwrap_or(0.0);
            }
            _ => {}
        }
    }
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
    },
    HumanSpeak {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<CharacterId>,
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
