//! The rehearsal engine: an offline stand-in for a model, and panel's default.
//!
//! It writes the real output format, so everything downstream (parser, log,
//! gateway, UI) runs exactly as with a real model. Its output is:
//! - deterministic for the same seed, conversation so far, turn, floor line
//!   and cast (a seeded
//!   RNG), so tests and demos repeat;
//! - drawn from each character's materials ("Sample lines", "Cares about"),
//!   so voices differ;
//! - shaped like a panel: a relevance-led lead (materials that share words
//!   with the floor line rank higher), a confer of about `depth` lines,
//!   followers answering the one before, an occasional pass; @-address and
//!   1:1 give one speak and no confer;
//! - streamed in small pieces `pace` apart;
//! - billed from a token estimate against a simulated prefix cache, so the
//!   cost meter shows cache writes and reads as a real provider's would.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{self, LocalBoxStream};
use minijinja::Environment;
use serde::Deserialize;

use super::{
    CompletionRequest, ModelError, ModelEvent, ModelFacts, Provider, ProviderFacts, ProviderInfo, ResponseMeta, Usage,
};
use crate::cache_clock::TimeScale;
use crate::megaprompt::Prompt;
use crate::prefix_cache::{CacheBlock, PrefixCache, estimate_tokens};

mod compose;
use compose::seed;
mod prose;

/// The model name the rehearsal engine reports (and is priced as).
pub const MODEL: &str = "rehearsal";

const EMBEDDED: &str = include_str!("../../../../roster/prompts/rehearsal.toml");

/// Its prompt cache is simulated like Claude Sonnet 5's: a 1,024-token
/// minimum, and the TTL each request asks for.
const CACHE_MIN_TOKENS: u64 = 1024;

/// The input window it simulates unless told otherwise, as a Claude model's.
pub const WINDOW: u64 = 200_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Phrases {
    confer_open: Vec<String>,
    confer_reply: Vec<String>,
    confer_close: Vec<String>,
    speak_lead: Vec<String>,
    speak_follow: Vec<String>,
    speak_alone: Vec<String>,
    stopwords: Vec<String>,
    /// Said of the floor's line when none of it can be quoted.
    no_topic: String,
    /// Concerns for a character whose materials list none (a card, or one
    /// made in the app): their tagline is a sentence, not a noun phrase.
    /// (Optional, so a roster folder from before it still loads.)
    #[serde(default)]
    no_concern: Vec<String>,
    turn: String,
    recap: String,
}

impl Phrases {
    fn lists(&self) -> [(&'static str, &[String]); 6] {
        [
            ("confer_open", &self.confer_open),
            ("confer_reply", &self.confer_reply),
            ("confer_close", &self.confer_close),
            ("speak_lead", &self.speak_lead),
            ("speak_follow", &self.speak_follow),
            ("speak_alone", &self.speak_alone),
        ]
    }

    fn count(&self, list: &str) -> usize {
        self.lists().iter().find(|(name, _)| *name == list).map_or(0, |(_, items)| items.len())
    }
}

#[derive(Clone)]
pub struct Rehearsal {
    phrases: Phrases,
    env: Environment<'static>,
    pace: Duration,
    cache: Arc<Mutex<PrefixCache>>,
    scale: TimeScale,
    window: u64,
}

impl Rehearsal {
    /// Reads the phrases from `prompts/rehearsal.toml`, or uses the copy
    /// compiled in when the file is missing.
    pub fn load(prompts_dir: &Path, pace: Duration) -> anyhow::Result<Self> {
        let path = prompts_dir.join("rehearsal.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => EMBEDDED.to_owned(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::from_toml(&text, pace).with_context(|| format!("bad rehearsal phrases in {}", path.display()))
    }

    /// The phrases compiled into panel.
    pub fn embedded(pace: Duration) -> Self {
        // The embedded file is checked by this crate's tests.
        Self::from_toml(EMBEDDED, pace).unwrap_or_else(|e| unreachable!("embedded rehearsal.toml: {e}"))
    }

    fn from_toml(text: &str, pace: Duration) -> anyhow::Result<Self> {
        let phrases: Phrases = toml::from_str(text)?;
        let mut env = Environment::new();
        env.add_template_owned("turn", phrases.turn.clone())?;
        env.add_template_owned("recap", phrases.recap.clone())?;
        for (list, items) in phrases.lists() {
            anyhow::ensure!(!items.is_empty(), "the phrase list {list} needs at least one phrase");
            for (i, phrase) in items.iter().enumerate() {
                env.add_template_owned(format!("{list}-{i}"), phrase.clone())?;
            }
        }
        let cache = Arc::new(Mutex::new(PrefixCache::new(CACHE_MIN_TOKENS)));
        Ok(Self { phrases, env, pace, cache, scale: TimeScale::REAL, window: WINDOW })
    }

    /// Cache lifetimes divided by the time scale, as the server's are.
    pub fn with_time_scale(mut self, scale: TimeScale) -> Self {
        self.scale = scale;
        self
    }

    /// The input window it simulates, in tokens.
    pub fn with_window(mut self, window: u64) -> Self {
        self.window = window.max(1);
        self
    }

    /// A prompt that does not fit is refused as Anthropic refuses one.
    fn check_window(&self, prompt: &Prompt) -> Result<(), ModelError> {
        let tokens = prompt_tokens(prompt);
        if tokens > self.window {
            let message = format!("prompt is too long: {tokens} tokens > {} maximum", self.window);
            return Err(ModelError::new("context-full", message, false));
        }
        Ok(())
    }
}

/// The prompt's size, estimated as the simulated cache counts it.
fn prompt_tokens(prompt: &Prompt) -> u64 {
    let system = prompt.system.iter().map(|b| estimate_tokens(&b.text));
    let coda = |m: &crate::megaprompt::Message| m.coda.as_deref().map_or(0, estimate_tokens);
    system.chain(prompt.messages.iter().map(|m| estimate_tokens(&m.text) + coda(m))).sum()
}

/// What the simulated cache charges for `prompt`, sent at `at` and asking
/// for `ttl`. It hashes the whole prompt, so it runs on the blocking pool,
/// not on an actor thread.
fn charge(cache: &Mutex<PrefixCache>, prompt: &Prompt, at: Instant, ttl: Duration) -> Usage {
    let texts = prompt.system.iter().map(|b| (&*b.text, b.cache));
    // A coda is a block of its own that takes the message's mark, as the Anthropic provider sends it.
    let texts = texts.chain(prompt.messages.iter().flat_map(|m| match &m.coda {
        None => vec![(&*m.text, m.cache)],
        Some(coda) => vec![(&*m.text, false), (&**coda, m.cache)],
    }));
    let blocks: Vec<CacheBlock> =
        texts.map(|(text, breakpoint)| CacheBlock { text, tokens: estimate_tokens(text), breakpoint }).collect();
    let charge = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).charge(&blocks, at, ttl);
    Usage {
        input: charge.input,
        cache_write: charge.cache_write,
        cache_write_1h: 0,
        cache_read: charge.cache_read,
        output: 0,
    }
}

impl Provider for Rehearsal {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "rehearsal".into(), model: MODEL.into(), offline: true, cache_expires: true }
    }

    fn prewarm(&self, request: CompletionRequest) -> LocalBoxFuture<'static, Result<Usage, ModelError>> {
        if let Err(e) = self.check_window(&request.prompt) {
            return Box::pin(std::future::ready(Err(e)));
        }
        let (cache, sent, ttl) = (self.cache.clone(), Instant::now(), self.scale.shrink(request.cache_ttl.duration()));
        Box::pin(async move {
            let prompt = request.prompt;
            let charged = tokio::task::spawn_blocking(move || charge(&cache, &prompt, sent, ttl)).await;
            charged.map_err(|e| ModelError::new("rehearsal-failed", e.to_string(), false))
        })
    }

    fn facts(&self) -> LocalBoxFuture<'static, ProviderFacts> {
        let models = vec![ModelFacts { id: MODEL.into(), window: Some(self.window) }];
        Box::pin(std::future::ready(ProviderFacts { models, dialect: None }))
    }

    fn window(&self, _model: &str) -> LocalBoxFuture<'static, Option<u64>> {
        Box::pin(std::future::ready(Some(self.window)))
    }

    fn stream(&self, request: CompletionRequest) -> LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        if let Err(e) = self.check_window(&request.prompt) {
            return stream::iter([Err(e)]).boxed_local();
        }
        let brief = &request.brief;
        let output = self.compose(brief);
        // The cache is charged as of the request's start, as a provider's is.
        let sent = Instant::now();
        let output_tokens = estimate_tokens(&output);
        let cache = self.cache.clone();
        let ttl = self.scale.shrink(request.cache_ttl.duration());
        let meta = ResponseMeta {
            model: Some(MODEL.into()),
            request_id: Some(format!("rehearsal-{:016x}", seed(brief))),
            stop_reason: Some("end_turn".into()),
        };
        let usage = async move {
            let prompt = request.prompt;
            let charged = tokio::task::spawn_blocking(move || charge(&cache, &prompt, sent, ttl)).await;
            let usage = charged.map_err(|e| ModelError::new("rehearsal-failed", e.to_string(), false))?;
            Ok(ModelEvent::Usage(Usage { output: output_tokens, ..usage }))
        };
        let mut rng = fastrand::Rng::with_seed(seed(brief) ^ 0x9e37_79b9);
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut words = 0;
        let mut want = rng.usize(1..=3);
        for part in output.split_inclusive([' ', '\n']) {
            piece.push_str(part);
            words += 1;
            if words == want {
                pieces.push(Ok(ModelEvent::Text(std::mem::take(&mut piece))));
                words = 0;
                want = rng.usize(1..=3);
            }
        }
        if !piece.is_empty() {
            pieces.push(Ok(ModelEvent::Text(piece)));
        }
        let pace = self.pace;
        stream::iter(pieces)
            .then(move |item| async move {
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
                item
            })
            .chain(stream::iter([Ok(ModelEvent::Meta(meta))]))
            .chain(stream::once(usage))
            .boxed_local()
    }
}
