//! The conversation as the floor saw it: each finished turn's delivered
//! lines (the floor's, speaks, passes, joins and leaves; never the confer).
//! Built from a log by the continuation, read by whatever carries a
//! conversation on — a transcript template, or the rehearsal engine writing
//! a recap — so it is a plain value of the vocabulary, not of either.

use serde::Serialize;

/// One finished turn, as the floor saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveredTurn {
    pub number: u32,
    pub lines: Vec<Line>,
}

/// One delivered line. `name` is the character's display name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    Floor { text: String, to: Option<String>, seat: Option<String> },
    Speak { name: String, text: String },
    Pass { name: String },
    Join { name: String },
    Leave { name: String, text: String },
}
