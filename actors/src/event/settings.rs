//! How a session is set up, as its `session-open` records it: plain values
//! that every layer reads (the provider's cache lifetime and grammar dialect
//! among them), so they live here, under everything that uses them.

use serde::{Deserialize, Serialize};

use crate::id::SessionId;

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
    /// The session's sampling seed. The rehearsal engine draws each turn
    /// from it and the conversation so far, so two plays of one script with
    /// one seed and the same settings are identical. Absent in logs recorded
    /// before seeds were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl SessionConfig {
    pub fn new(title: String, depth: u8, provider: String) -> Self {
        Self {
            title,
            depth,
            provider,
            cache_ttl: None,
            keep_warm: KeepWarm::Off,
            max_tokens: None,
            constraint: None,
            seed: None,
        }
    }
}

/// Where a study's session belongs: the study, the condition it plays and
/// which repeat of it (from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyTag {
    pub id: String,
    pub condition: String,
    pub repeat: u32,
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

/// Which server-side decoding constraint a server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// llama.cpp's server: the `grammar` field (GBNF).
    Gbnf,
    /// vLLM from 0.10.2: `structured_outputs: {"grammar": …}`.
    Vllm,
    /// vLLM before 0.10.2: `guided_grammar`.
    #[serde(rename = "vllm-legacy")]
    VllmLegacy,
}

/// Prompt-cache lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub enum CacheTtl {
    #[default]
    #[serde(rename = "5m")]
    FiveMinutes,
    /// Costs 2× input to write instead of 1.25×; outlives a coffee break.
    #[serde(rename = "1h")]
    OneHour,
}

impl CacheTtl {
    /// The lifetime, unscaled.
    pub fn duration(self) -> std::time::Duration {
        match self {
            Self::FiveMinutes => std::time::Duration::from_secs(300),
            Self::OneHour => std::time::Duration::from_secs(3600),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
        }
    }
}
