//! The plain values a replay's log records: which turn it plays again, how,
//! and under which settings. A replay ("counterfactual turn") is recorded
//! beside its session (`logs/<session>/replays/<id>.jsonl`), never in it;
//! these types are what its `replay-open` carries.

use serde::{Deserialize, Serialize};

use crate::id::{CharacterId, SessionId};

/// How a turn is played again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayMode {
    /// The turn's own request, sent again (under its settings or others).
    #[default]
    Reroll,
    /// The control for influence: each character on stage answers the
    /// floor's line alone, with no confer and none of the others' lines.
    Solo,
}

impl ReplayMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reroll => "reroll",
            Self::Solo => "solo",
        }
    }
}

/// The turn a replay plays again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayOf {
    pub session: SessionId,
    pub turn: u32,
}

/// One sample a replay asks for: its number (from 1) and, for a solo
/// replay, the one character it asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleSpec {
    pub sample: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<CharacterId>,
}
