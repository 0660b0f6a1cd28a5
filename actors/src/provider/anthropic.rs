//! The Anthropic Messages API, streamed, with prompt caching.
//!
//! Layout: the head is the one system block, with a cache breakpoint at its
//! end; the tail is the messages, with a second breakpoint on the newest one
//! (two of the four the API allows). Each turn therefore reads everything
//! before from the cache and writes only what is new.
//!
//! Usage comes from `message_start` and `message_delta` and is *replaced*,
//! never summed (the counts are cumulative). A stream that ends without
//! `message_stop` is a failure, not a short answer.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde_json::Value;

pub use super::CacheTtl;
use super::http::{self, ApiKey, Sender};
use super::sse::SseDecoder;
use super::{
    CompletionRequest, ModelError, ModelEvent, ModelFacts, Provider, ProviderFacts, ProviderInfo, ResponseMeta, Usage,
};
use crate::megaprompt::{Prompt, Role};

pub const VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// Without `/v1`, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    pub api_key: ApiKey,
    /// The model sessions use unless they choose another.
    pub model: String,
    /// How long the API may take to start answering (the response head).
    pub head_timeout: Duration,
    /// How long the body may stay silent before the call counts as stalled.
    pub idle_timeout: Duration,
}

pub struct Anthropic {
    config: AnthropicConfig,
    client: awc::Client,
}

impl Anthropic {
    pub fn new(config: AnthropicConfig) -> Self {
        let client = http::client(config.head_timeout);
        Self { config, client }
    }
}

#[derive(Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'static str>,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Vec<TextBlock<'a>>,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    system: Vec<TextBlock<'a>>,
    messages: Vec<Message<'a>>,
}

/// The request body for `prompt`: cache marks become `cache_control`.
pub fn body(prompt: &Prompt, model: &str, max_tokens: u32, ttl: CacheTtl) -> String {
    body_with(prompt, model, max_tokens, ttl, true)
}

/// The body of a pre-warm: the same prompt and marks, unstreamed, `max_tokens: 0`.
pub fn prewarm_body(prompt: &Prompt, model: &str, ttl: CacheTtl) -> String {
    body_with(prompt, model, 0, ttl, false)
}

fn body_with(prompt: &Prompt, model: &str, max_tokens: u32, ttl: CacheTtl, stream: bool) -> String {
    let mark = |cache: bool| {
        cache.then(|| CacheControl { kind: "ephemeral", ttl: (ttl == CacheTtl::OneHour).then_some("1h") })
    };
    let block = |text, cache| TextBlock { kind: "text", text, cache_control: mark(cache) };
    let body = Body {
        model,
        max_tokens,
        stream,
        stop_sequences: &prompt.stop_sequences,
        system: prompt.system.iter().map(|b| block(&b.text, b.cache)).collect(),
        messages: prompt
            .messages
            .iter()
            .map(|m| Message {
                role: if m.role == Role::User { "user" } else { "assistant" },
                // A coda is a block of its own, and takes the mark: the
                // block before it stays the one an earlier request cached.
                content: match &m.coda {
                    None => vec![block(&m.text, m.cache)],
                    Some(coda) => vec![block(&m.text, false), block(coda, m.cache)],
                },
            })
            .collect(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

impl Anthropic {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("x-api-key", self.config.api_key.expose().to_owned()), ("anthropic-version", VERSION.to_owned())]
    }
}

impl Provider for Anthropic {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "anthropic".into(), model: self.config.model.clone(), offline: false, cache_expires: true }
    }

    fn prewarm(&self, request: CompletionRequest) -> LocalBoxFuture<'static, Result<Usage, ModelError>> {
        let url = self.url("messages");
        let client = self.client.clone();
        let key = self.config.api_key.clone();
        let CompletionRequest { prompt, model, cache_ttl, .. } = request;
        Box::pin(async move {
            let body = prewarm_body(&prompt, &model, cache_ttl);
            let mut res = client
                .post(&url)
                .insert_header(("x-api-key", key.expose()))
                .insert_header(("anthropic-version", VERSION))
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .map_err(|e| http::connection_error("Anthropic", e, &key))?;
            if !res.status().is_success() {
                return Err(http::http_error("Anthropic", &mut res, &key).await);
            }
            let answer: Value = res.json().limit(1 << 20).await.map_err(|e| {
                ModelError::new("provider-error", key.redact(&format!("a pre-warm answer that is not JSON: {e}")), true)
            })?;
            let mut usage = Usage::default();
            read_usage(&answer["usage"], &mut usage);
            Ok(usage)
        })
    }

    fn facts(&self) -> LocalBoxFuture<'static, ProviderFacts> {
        let (client, url, headers) = (self.client.clone(), self.url("models?limit=1000"), self.headers());
        Box::pin(async move {
            let listed = http::get_json(&client, &url, &headers).await.unwrap_or(Value::Null);
            let models = listed["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let id = m["id"].as_str()?.to_owned();
                    Some(ModelFacts { id, window: m["max_input_tokens"].as_u64() })
                })
                .collect();
            ProviderFacts { models, dialect: None }
        })
    }

    fn window(&self, model: &str) -> LocalBoxFuture<'static, Option<u64>> {
        let (client, url, headers) = (self.client.clone(), self.url(&format!("models/{model}")), self.headers());
        Box::pin(async move { http::get_json(&client, &url, &headers).await?["max_input_tokens"].as_u64() })
    }

    fn stream(
        &self,
        request: CompletionRequest,
    ) -> futures_util::stream::LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        let c = &self.config;
        let CompletionRequest { prompt, model, max_tokens, cache_ttl: ttl, .. } = request;
        let url = format!("{}/v1/messages", c.base_url.trim_end_matches('/'));
        let client = self.client.clone();
        let key = c.api_key.clone();
        let idle = c.idle_timeout;
        http::drive_stream(move |tx| async move {
            // A long prompt takes a while to serialise: not on an actor thread.
            let body = match tokio::task::spawn_blocking(move || body(&prompt, &model, max_tokens, ttl)).await {
                Ok(body) => body,
                Err(e) => return drop(tx.send(Err(ModelError::new("request-failed", e.to_string(), false))).await),
            };
            if let Err(e) = run(client, url, key, body, idle, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        })
    }
}

async fn run(
    client: awc::Client,
    url: String,
    key: ApiKey,
    body: String,
    idle: Duration,
    tx: &Sender,
) -> Result<(), ModelError> {
    let mut res = client
        .post(&url)
        .insert_header(("x-api-key", key.expose()))
        .insert_header(("anthropic-version", VERSION))
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "text/event-stream"))
        .send_body(body)
        .await
        .map_err(|e| http::connection_error("Anthropic", e, &key))?;
    if !res.status().is_success() {
        return Err(http::http_error("Anthropic", &mut res, &key).await);
    }
    let request_id = res.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut decoder = SseDecoder::new();
    let mut usage = Usage::default();
    let mut meta = ResponseMeta { request_id, ..ResponseMeta::default() };
    while let Some(chunk) = http::next_chunk(&mut res, idle, &key).await? {
        for message in decoder.feed(&chunk).map_err(http::line_too_long)? {
            let data: Value = serde_json::from_str(&message.data).unwrap_or(Value::Null);
            match data["type"].as_str().unwrap_or(&message.event) {
                "message_start" => {
                    read_usage(&data["message"]["usage"], &mut usage);
                    meta.model = data["message"]["model"].as_str().map(str::to_owned);
                    if meta.request_id.is_none() {
                        meta.request_id = data["message"]["id"].as_str().map(str::to_owned);
                    }
                }
                "message_delta" => {
                    read_usage(&data["usage"], &mut usage);
                    if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                        meta.stop_reason = Some(reason.to_owned());
                    }
                }
                "content_block_delta" if data["delta"]["type"] == "text_delta" => {
                    let text = data["delta"]["text"].as_str().unwrap_or_default().to_owned();
                    if tx.send(Ok(ModelEvent::Text(text))).await.is_err() {
                        return Ok(());
                    }
                }
                "error" => return Err(stream_error(&data["error"], &key)),
                "message_stop" => {
                    let _ = tx.send(Ok(ModelEvent::Meta(meta))).await;
                    let _ = tx.send(Ok(ModelEvent::Usage(usage))).await;
                    return Ok(());
                }
                // `ping`, block starts and stops, and event types added later.
                _ => {}
            }
        }
    }
    Err(ModelError::new("truncated", "the stream ended before message_stop", true))
}

/// Replaces the counts present in `u`: they are cumulative, never deltas.
fn read_usage(u: &Value, usage: &mut Usage) {
    let take = |field: &str, into: &mut u64| {
        if let Some(n) = u[field].as_u64() {
            *into = n;
        }
    };
    take("input_tokens", &mut usage.input);
    take("cache_creation_input_tokens", &mut usage.cache_write);
    take("cache_read_input_tokens", &mut usage.cache_read);
    take("output_tokens", &mut usage.output);
    if let Some(n) = u["cache_creation"]["ephemeral_1h_input_tokens"].as_u64() {
        usage.cache_write_1h = n;
    }
}

fn stream_error(error: &Value, key: &ApiKey) -> ModelError {
    let kind = error["type"].as_str().unwrap_or("error");
    let message = error["message"].as_str().unwrap_or("the model reported an error");
    let (code, retryable) = match kind {
        "overloaded_error" => ("overloaded", true),
        "api_error" | "timeout_error" => ("provider-error", true),
        "rate_limit_error" => ("rate-limited", true),
        _ => ("provider-error", false),
    };
    ModelError::new(code, key.redact(&format!("Anthropic reported {kind} mid-stream: {message}")), retryable)
}
