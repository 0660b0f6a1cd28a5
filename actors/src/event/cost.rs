//! What model calls cost: the tokens a provider reports for one call, one
//! call's tokens and price, and a session's running totals (which count
//! every `cost` and `keep-warm` event).

use serde::{Deserialize, Serialize};

use super::{EventBody, Timestamp};

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

/// Token counts of one call, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input: u64,
    pub cache_write: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
    pub output: u64,
}
