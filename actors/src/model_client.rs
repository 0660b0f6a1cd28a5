//! The model-client actor: streams completions for every session.
//!
//! One model client runs on each arbiter that runs sessions, with its own
//! providers (their HTTP clients are single-threaded). A session sends
//! [`Complete`] with an id it chose, the provider to ask, and a [`Recipient`]
//! to stream into; the client forwards each piece as a [`StreamEvent`], then
//! `Done` with the final usage, or `Failed`. Forwarding uses `send().await`,
//! so a busy session slows only its own stream, and a session that has gone
//! away (its mailbox closed) cancels its stream at the next piece. [`Cancel`]
//! stops a stream at once, e.g. when a turn is aborted.
//!
//! Failures are retried here, the same way for every provider, but only
//! while nothing of the turn has streamed: a retry after text had been shown
//! would show it twice. Backoff is exponential with jitter, capped, and
//! honours the provider's `retry-after`. A stream that goes quiet for longer
//! than the idle timeout counts as a failure (a stall) too.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt as _;

use crate::provider::{CompletionRequest, ModelError, ModelEvent, Provider, ProviderFacts, ResponseMeta, Usage};

/// Names one stream, unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(u64);

impl StreamId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Text(String),
    /// The stream ended well: its usage, and what the server said about it.
    Done(Usage, ResponseMeta),
    Failed(ModelError),
}

/// One piece of a stream, delivered to the session that asked for it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StreamEvent {
    pub stream: StreamId,
    pub item: StreamItem,
}

/// Start streaming a completion from `provider` into `sink`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Complete {
    pub stream: StreamId,
    pub provider: String,
    pub request: CompletionRequest,
    pub sink: Recipient<StreamEvent>,
}

/// Stop a stream; nothing more is delivered for it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Cancel(pub StreamId);

/// Read the prompt's prefix into the provider's cache without generating.
#[derive(Message)]
#[rtype(result = "Result<Usage, ModelError>")]
pub struct Prewarm {
    pub provider: String,
    pub request: CompletionRequest,
}

/// What a provider's server says about itself (asked once, then remembered).
#[derive(Debug, Message)]
#[rtype(result = "Option<ProviderFacts>")]
pub struct Facts {
    pub provider: String,
}

/// A model's input window, as its provider's server says (remembered).
#[derive(Debug, Message)]
#[rtype(result = "Option<u64>")]
pub struct WindowOf {
    pub provider: String,
    pub model: String,
}

/// How failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A stream silent for this long has stalled.
    pub idle_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // The Anthropic SDK's backoff (0.5 s doubling to 8 s), with one more try.
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): the server's
    /// `retry-after` if it gave one, else capped exponential backoff with up
    /// to 25% jitter taken off.
    pub fn delay(&self, attempt: u32, error: &ModelError) -> Duration {
        if let Some(after) = error.retry_after {
            return after.min(Duration::from_secs(60));
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        exp.mul_f64(1.0 - 0.25 * fastrand::f64())
    }
}

/// Most bytes one answer may stream. Far beyond any `max_tokens`; a stream
/// that goes past it is broken, and is cut rather than buffered forever.
const MAX_OUTPUT: usize = 4 << 20;

pub struct ModelClient {
    providers: HashMap<String, Rc<dyn Provider>>,
    policy: RetryPolicy,
    streams: HashMap<StreamId, SpawnHandle>,
    facts: HashMap<String, ProviderFacts>,
    windows: HashMap<(String, String), Option<u64>>,
}

impl ModelClient {
    /// A client for one provider, under its own name.
    pub fn new(provider: Box<dyn Provider>) -> Self {
        let name = provider.info().name;
        Self::with_providers([(name, provider)], RetryPolicy::default())
    }

    /// A client that can reach every provider given, by name.
    pub fn with_providers(
        providers: impl IntoIterator<Item = (String, Box<dyn Provider>)>,
        policy: RetryPolicy,
    ) -> Self {
        let providers = providers.into_iter().map(|(name, p)| (name, Rc::from(p))).collect();
        Self { providers, policy, streams: HashMap::new(), facts: HashMap::new(), windows: HashMap::new() }
    }
}

impl Actor for ModelClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every session talks to this one actor; a burst of turn starts must
        // not bounce off the default 16-slot mailbox.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Complete> for ModelClient {
    type Result = ();

    fn handle(&mut self, msg: Complete, ctx: &mut Self::Context) {
        let Complete { stream: id, provider, request, sink } = msg;
        let Some(provider) = self.providers.get(&provider).cloned() else {
            let error = ModelError::new("unknown-provider", format!("no provider {provider:?} is configured"), false);
            sink.do_send(StreamEvent { stream: id, item: StreamItem::Failed(error) });
            return;
        };
        let policy = self.policy;
        let pump = async move {
            let mut attempt = 0;
            let mut streamed = false;
            let outcome = loop {
                match pump(&*provider, &request, &policy, id, &sink, &mut streamed).await {
                    Ok(Some((usage, meta))) => break StreamItem::Done(usage, meta),
                    // The session is gone: nobody to tell.
                    Ok(None) => return,
                    Err(e) if e.retryable && !streamed && attempt < policy.max_retries => {
                        let wait = policy.delay(attempt, &e);
                        log::warn!(
                            "model call failed ({e}); retry {} of {} in {wait:?}",
                            attempt + 1,
                            policy.max_retries
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => break StreamItem::Failed(e),
                }
            };
            let _ = sink.send(StreamEvent { stream: id, item: outcome }).await;
        };
        let handle = ctx.spawn(pump.into_actor(self).map(move |(), act, _| {
            act.streams.remove(&id);
        }));
        self.streams.insert(id, handle);
    }
}

impl Handler<Prewarm> for ModelClient {
    type Result = ResponseFuture<Result<Usage, ModelError>>;

    fn handle(&mut self, msg: Prewarm, _: &mut Self::Context) -> Self::Result {
        match self.providers.get(&msg.provider) {
            // A ping is not retried: the next one, or the turn, will do.
            Some(provider) => provider.prewarm(msg.request),
            None => Box::pin(std::future::ready(Err(ModelError::new("unknown-provider", msg.provider, false)))),
        }
    }
}

impl Handler<Facts> for ModelClient {
    type Result = ResponseActFuture<Self, Option<ProviderFacts>>;

    fn handle(&mut self, msg: Facts, _: &mut Self::Context) -> Self::Result {
        if let Some(known) = self.facts.get(&msg.provider) {
            return Box::pin(fut::ready(Some(known.clone())));
        }
        let Some(provider) = self.providers.get(&msg.provider).cloned() else { return Box::pin(fut::ready(None)) };
        Box::pin(provider.facts().into_actor(self).map(move |facts, act, _| {
            // Only an answer worth keeping is kept: a server that was down
            // is asked again next time.
            if !facts.models.is_empty() || facts.dialect.is_some() {
                act.facts.insert(msg.provider, facts.clone());
            }
            Some(facts)
        }))
    }
}

impl Handler<WindowOf> for ModelClient {
    type Result = ResponseActFuture<Self, Option<u64>>;

    fn handle(&mut self, msg: WindowOf, _: &mut Self::Context) -> Self::Result {
        let key = (msg.provider, msg.model);
        if let Some(known) = self.windows.get(&key) {
            return Box::pin(fut::ready(*known));
        }
        let Some(provider) = self.providers.get(&key.0).cloned() else { return Box::pin(fut::ready(None)) };
        Box::pin(provider.window(&key.1).into_actor(self).map(move |window, act, _| {
            if window.is_some() {
                act.windows.insert(key, window);
            }
            window
        }))
    }
}

impl Handler<Cancel> for ModelClient {
    type Result = ();

    fn handle(&mut self, Cancel(id): Cancel, ctx: &mut Self::Context) {
        if let Some(handle) = self.streams.remove(&id) {
            ctx.cancel_future(handle);
        }
    }
}

/// One attempt: forwards text to the session. `Ok(Some(…))` when the
/// stream ended well, `Ok(None)` when the session went away.
async fn pump(
    provider: &dyn Provider,
    request: &CompletionRequest,
    policy: &RetryPolicy,
    id: StreamId,
    sink: &Recipient<StreamEvent>,
    streamed: &mut bool,
) -> Result<Option<(Usage, ResponseMeta)>, ModelError> {
    // Dropping this stream (a cancel, a retry, an error) drops the request
    // and frees its connection: see `provider::http::drive_stream`.
    let mut stream = provider.stream(request.clone());
    let mut usage = Usage::default();
    let mut meta = ResponseMeta::default();
    let mut bytes = 0;
    loop {
        let next = tokio::time::timeout(policy.idle_timeout, stream.next()).await.map_err(|_| {
            ModelError::new("stalled", format!("the model sent nothing for {:?}", policy.idle_timeout), true)
        })?;
        match next {
            None => return Ok(Some((usage, meta))),
            Some(Ok(ModelEvent::Usage(u))) => usage = u,
            Some(Ok(ModelEvent::Meta(m))) => {
                meta.model = m.model.or(meta.model);
                meta.request_id = m.request_id.or(meta.request_id);
                meta.stop_reason = m.stop_reason.or(meta.stop_reason);
            }
            Some(Ok(ModelEvent::Text(text))) if text.is_empty() => {}
            Some(Ok(ModelEvent::Text(text))) => {
                *streamed = true;
                bytes += text.len();
                if bytes > MAX_OUTPUT {
                    let message = format!("the answer went past {MAX_OUTPUT} bytes and was cut");
                    return Err(ModelError::new("output-too-long", message, false));
                }
                if sink.send(StreamEvent { stream: id, item: StreamItem::Text(text) }).await.is_err() {
                    return Ok(None);
                }
            }
            Some(Err(e)) => return Err(e),
        }
    }
}
