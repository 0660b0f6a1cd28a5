//! Model providers behind one trait.
//!
//! A provider turns a [`CompletionRequest`] into a stream of [`ModelEvent`]s.
//! Streams are `!Send` on purpose: the HTTP client (awc) is single-threaded,
//! so each arbiter builds its own providers (from a [`ProviderFactory`]) and
//! the model-client actor that drives them lives on that arbiter's thread.
//!
//! Usage reports *replace* earlier ones (providers report cumulative counts);
//! the last one before the stream ends is the turn's usage.

pub mod anthropic;
pub mod http;
pub mod openai;
pub mod rehearsal;
pub mod sse;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;
use serde::Serialize;

pub use crate::event::{CacheTtl, Dialect, Usage};
use crate::event::{DeliveredTurn, TurnMode};
use crate::id::{CharacterId, SessionId};
use crate::megaprompt::Prompt;
use crate::roster::Character;

/// What the session knows about the turn beyond the prompt itself. Real
/// providers ignore it; the rehearsal engine writes its output from it.
#[derive(Debug, Clone)]
pub struct Brief {
    pub session: SessionId,
    pub turn: u32,
    pub mode: TurnMode,
    /// On stage, in the order they joined.
    pub cast: Vec<Character>,
    pub to: Option<CharacterId>,
    pub floor: String,
    pub depth: u8,
    /// What is asked: a turn, or (continuing a session) recap notes.
    pub task: Task,
    /// The sampling seed for this request: the session's seed mixed with
    /// the conversation so far (see [`Brief::seed_for`]). The rehearsal
    /// engine draws from it; real providers are not sent it.
    pub seed: u64,
}

impl Brief {
    /// A session's seed: the one it was given, or (for a log recorded
    /// before seeds) a draw from its id — the same rule for its turns and
    /// for any replay of them.
    pub fn session_seed(given: Option<u64>, session: &str) -> u64 {
        given.unwrap_or_else(|| Self::seed_for(0, session))
    }

    /// The seed of a request whose prompt hashes to `prefix_hash`, in a
    /// session seeded with `seed`: equal seeds and equal conversations give
    /// equal draws, and any difference so far gives different ones.
    pub fn seed_for(seed: u64, prefix_hash: &str) -> u64 {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(prefix_hash.as_bytes());
        let digest = h.finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }
}

/// What a request asks the model for.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Task {
    /// The panel's answer to the floor.
    #[default]
    Turn,
    /// Notes on these delivered turns, to carry them into a fresh session.
    Recap(Vec<DeliveredTurn>),
    /// The panel's answer to the floor, played again as one sample of a
    /// replay (the rehearsal engine draws each sample afresh).
    Sample(u32),
}

#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    pub brief: Brief,
    /// The model to ask: a session's choice, fixed when it opened.
    pub model: String,
    /// Most tokens the answer may take.
    pub max_tokens: u32,
    /// How long the provider should keep the prompt's cached prefix.
    pub cache_ttl: CacheTtl,
    /// A grammar the server should hold the output to, in its own dialect.
    pub constraint: Option<Constraint>,
}

/// A grammar for one turn's output, and the field it is sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub dialect: Dialect,
    /// GBNF text (llama.cpp's grammar syntax, which vLLM's grammar backends read too).
    pub grammar: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    Text(String),
    Usage(Usage),
    /// Facts about the response; later ones add to earlier ones.
    Meta(ResponseMeta),
}

/// A failed call. `code` is stable and machine-readable; `message` is for
/// the user and never contains credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ModelError {
    pub code: String,
    pub message: String,
    /// Worth trying again (rate limits, overload, transient network errors).
    pub retryable: bool,
    /// How long the provider asked us to wait before trying again.
    pub retry_after: Option<std::time::Duration>,
}

impl ModelError {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self { code: code.to_owned(), message: message.into(), retryable, retry_after: None }
    }
}

/// Who answers, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// `rehearsal`, `anthropic`, `openai`.
    pub name: String,
    /// The model sessions get unless they choose another.
    pub model: String,
    /// True when nothing leaves the machine and costs are simulated.
    pub offline: bool,
    /// Whether the provider's prompt cache expires (Anthropic's does, after
    /// its TTL); a cache that lasts until evicted needs no keep-warm.
    pub cache_expires: bool,
}

/// What a provider can say about a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFacts {
    pub id: String,
    /// The most input tokens a prompt may have, when the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

/// What a provider's server says about itself, asked once and remembered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProviderFacts {
    /// Models it offers (as far as it lists them).
    pub models: Vec<ModelFacts>,
    /// The decoding constraint it understands, if it identified itself.
    pub dialect: Option<Dialect>,
}

/// What the server said about one response, besides its text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResponseMeta {
    /// The model id the server reported (often a dated snapshot).
    pub model: Option<String>,
    /// The server's id for the request (`request-id` header or message id).
    pub request_id: Option<String>,
    /// Why it stopped: `end_turn`, `max_tokens`, `stop_sequence`, `length`, …
    pub stop_reason: Option<String>,
}

/// Builds a provider on the thread that will use it.
pub type ProviderFactory = std::sync::Arc<dyn Fn() -> Box<dyn Provider> + Send + Sync>;

pub trait Provider {
    fn info(&self) -> ProviderInfo;

    /// Starts one completion. Errors may come at once or mid-stream.
    fn stream(&self, request: CompletionRequest) -> LocalBoxStream<'static, Result<ModelEvent, ModelError>>;

    /// Reads (or writes) the prompt's prefix into the cache without
    /// generating anything, and reports what that cost.
    fn prewarm(&self, _request: CompletionRequest) -> LocalBoxFuture<'static, Result<Usage, ModelError>> {
        Box::pin(std::future::ready(Err(ModelError::new(
            "unsupported",
            "this provider has nothing to keep warm",
            false,
        ))))
    }

    /// What the server says about its models and the constraints it takes.
    fn facts(&self) -> LocalBoxFuture<'static, ProviderFacts> {
        Box::pin(std::future::ready(ProviderFacts::default()))
    }

    /// The input window of `model`, when the server says.
    fn window(&self, _model: &str) -> LocalBoxFuture<'static, Option<u64>> {
        Box::pin(std::future::ready(None))
    }
}
