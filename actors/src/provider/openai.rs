//! OpenAI-compatible Chat Completions, streamed: OpenAI itself, llama.cpp's
//! server, vLLM, Ollama.
//!
//! The head becomes the system message. These servers cache prefixes on
//! their own (OpenAI automatically, llama.cpp in its KV cache), so no marks
//! are sent; `prompt_tokens_details.cached_tokens` is read when present.
//! Usage is asked for with `stream_options.include_usage` but never assumed:
//! servers that omit it give a turn with unknown tokens, not a failure.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, ApiKey, Sender};
use super::sse::SseDecoder;
use super::{CompletionRequest, ModelError, ModelEvent, Provider, ProviderInfo, Usage};
use crate::megaprompt::{Prompt, Role};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Including the version path, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Optional: local servers usually need none.
    pub api_key: Option<ApiKey>,
    /// The model sessions use unless they choose another.
    pub model: String,
    /// How long the server may take to start answering (the response head).
    pub head_timeout: Duration,
    /// How long the body may stay silent before the call counts as stalled.
    pub idle_timeout: Duration,
}

pub struct OpenAi {
    config: OpenAiConfig,
    client: awc::Client,
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Self {
        let client = http::client(config.head_timeout);
        Self { config, client }
    }
}

/// The request body for `prompt`.
pub fn body(prompt: &Prompt, model: &str, max_tokens: u32) -> String {
    let system = prompt.system.iter().map(|b| &*b.text).collect::<Vec<_>>().join("\n\n");
    let mut messages = vec![json!({ "role": "system", "content": system })];
    for m in &prompt.messages {
        let role = if m.role == Role::User { "user" } else { "assistant" };
        messages.push(json!({ "role": role, "content": &*m.text }));
    }
    let stop: Vec<&String> = prompt.stop_sequences.iter().take(4).collect();
    json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": max_tokens,
        "stop": stop,
    })
    .to_string()
}

impl Provider for OpenAi {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "openai".into(), model: self.config.model.clone(), offline: false }
    }

    fn stream(
        &self,
        request: CompletionRequest,
    ) -> futures_util::stream::LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        let c = &self.config;
        let CompletionRequest { prompt, model, max_tokens, .. } = request;
        let url = format!("{}/chat/completions", c.base_url.trim_end_matches('/'));
        let client = self.client.clone();
        let key = c.api_key.clone();
        let idle = c.idle_timeout;
        http::drive_stream(move |tx| async move {
            // A long prompt takes a while to serialise: not on an actor thread.
            let body = match tokio::task::spawn_blocking(move || body(&prompt, &model, max_tokens)).await {
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
    key: Option<ApiKey>,
    body: String,
    idle: Duration,
    tx: &Sender,
) -> Result<(), ModelError> {
    let redactor = key.clone().unwrap_or_else(|| ApiKey::new(String::new()));
    let mut req = client.post(&url).insert_header(("content-type", "application/json"));
    if let Some(k) = &key {
        req = req.insert_header(("authorization", format!("Bearer {}", k.expose())));
    }
    let mut res = req.send_body(body).await.map_err(|e| http::connection_error("the model server", e, &redactor))?;
    if !res.status().is_success() {
        return Err(http::http_error("The model server", &mut res, &redactor).await);
    }
    let mut decoder = SseDecoder::new();
    let mut usage: Option<Usage> = None;
    while let Some(chunk) = http::next_chunk(&mut res, idle, &redactor).await? {
        for message in decoder.feed(&chunk).map_err(http::line_too_long)? {
            // Older llama.cpp builds sent errors as a non-standard `error:` field.
            if let Some((_, legacy)) = message.other.iter().find(|(f, _)| f == "error") {
                let error: Value = serde_json::from_str(legacy).unwrap_or(Value::Null);
                return Err(stream_error(&error, &redactor));
            }
            if message.data.starts_with("[DONE]") {
                if let Some(u) = usage {
                    let _ = tx.send(Ok(ModelEvent::Usage(u))).await;
                }
                return Ok(());
            }
            let data: Value = serde_json::from_str(&message.data).unwrap_or(Value::Null);
            if data.get("error").is_some() {
                return Err(stream_error(&data["error"], &redactor));
            }
            if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
                let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
                let cached = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
                usage = Some(Usage {
                    input: prompt.saturating_sub(cached),
                    cache_write: 0,
                    cache_write_1h: 0,
                    cache_read: cached,
                    output: u["completion_tokens"].as_u64().unwrap_or(0),
                });
            }
            // The usage chunk has `choices: []`; never index blindly.
            let text = data["choices"].get(0).and_then(|c| c["delta"]["content"].as_str()).unwrap_or_default();
            if !text.is_empty() && tx.send(Ok(ModelEvent::Text(text.to_owned()))).await.is_err() {
                return Ok(());
            }
        }
    }
    Err(ModelError::new("truncated", "the stream ended before [DONE]", true))
}

fn stream_error(error: &Value, key: &ApiKey) -> ModelError {
    let message = error["message"].as_str().unwrap_or("the model server reported an error");
    let kind = error["type"].as_str().unwrap_or("error");
    let retryable =
        matches!(kind, "server_error" | "unavailable_error") || error["code"].as_u64().is_some_and(|c| c >= 500);
    ModelError::new("provider-error", key.redact(&format!("the model server reported {kind}: {message}")), retryable)
}
