//! OpenAI-compatible Chat Completions, streamed: OpenAI itself, llama.cpp's
//! server, vLLM, Ollama.
//!
//! The head becomes the system message. These servers cache prefixes on
//! their own (OpenAI automatically, llama.cpp in its KV cache), so no marks
//! are sent; `prompt_tokens_details.cached_tokens` is read when present.
//! Usage is asked for with `stream_options.include_usage` but never assumed:
//! servers that omit it give a turn with unknown tokens, not a failure.

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde_json::{Value, json};

use super::http::{self, ApiKey, Sender};
use super::sse::SseDecoder;
use super::{
    CompletionRequest, Constraint, Dialect, ModelError, ModelEvent, ModelFacts, Provider, ProviderFacts, ProviderInfo,
    ResponseMeta, Usage,
};
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

/// The request body for `prompt`, with the turn's grammar in the field the
/// server understands (see [`Dialect`]).
pub fn body(prompt: &Prompt, model: &str, max_tokens: u32, constraint: Option<&Constraint>) -> String {
    let system = prompt.system.iter().map(|b| &*b.text).collect::<Vec<_>>().join("\n\n");
    let mut messages = vec![json!({ "role": "system", "content": system })];
    for m in &prompt.messages {
        let role = if m.role == Role::User { "user" } else { "assistant" };
        // No cache marks here: a coda simply closes its message's text.
        let content = match &m.coda {
            None => m.text.to_string(),
            Some(coda) => format!("{}\n\n{coda}", m.text),
        };
        messages.push(json!({ "role": role, "content": content }));
    }
    let stop: Vec<&String> = prompt.stop_sequences.iter().take(4).collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": max_tokens,
        "stop": stop,
    });
    match constraint {
        Some(Constraint { dialect: Dialect::Gbnf, grammar }) => body["grammar"] = json!(grammar),
        Some(Constraint { dialect: Dialect::Vllm, grammar }) => {
            body["structured_outputs"] = json!({ "grammar": grammar })
        }
        Some(Constraint { dialect: Dialect::VllmLegacy, grammar }) => body["guided_grammar"] = json!(grammar),
        None => {}
    }
    body.to_string()
}

/// vLLM took `structured_outputs` from 0.10.2 and dropped `guided_grammar` in 0.12.
fn vllm_dialect(version: Option<&str>) -> Dialect {
    let parts: Vec<u32> = version.unwrap_or("").split(['.', '+', '-']).take(3).map_while(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [0, minor, ..] if *minor < 10 => Dialect::VllmLegacy,
        [0, 10, patch, ..] if *patch < 2 => Dialect::VllmLegacy,
        [0, 10] => Dialect::VllmLegacy,
        _ => Dialect::Vllm,
    }
}

impl OpenAi {
    fn headers(&self) -> Vec<(&'static str, String)> {
        self.config.api_key.iter().map(|k| ("authorization", format!("Bearer {}", k.expose()))).collect()
    }

    /// The server's root (llama.cpp's `/props`, vLLM's `/version` live there).
    fn root(&self) -> String {
        let base = self.config.base_url.trim_end_matches('/');
        base.strip_suffix("/v1").unwrap_or(base).to_owned()
    }
}

impl Provider for OpenAi {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "openai".into(), model: self.config.model.clone(), offline: false, cache_expires: false }
    }

    /// llama.cpp answers `GET /props` (its window, `n_ctx`); vLLM lists its
    /// models with `owned_by: "vllm"` and `max_model_len`, and its version at
    /// `GET /version`. A server that says neither takes no grammar.
    fn facts(&self) -> LocalBoxFuture<'static, ProviderFacts> {
        let (client, headers, root) = (self.client.clone(), self.headers(), self.root());
        let models_url = format!("{}/models", self.config.base_url.trim_end_matches('/'));
        Box::pin(async move {
            let props = http::get_json(&client, &format!("{root}/props"), &headers).await;
            let llama_window = props.as_ref().and_then(|p| p["default_generation_settings"]["n_ctx"].as_u64());
            let listed = http::get_json(&client, &models_url, &headers).await.unwrap_or(Value::Null);
            let entries = listed["data"].as_array().cloned().unwrap_or_default();
            let vllm = entries.iter().any(|m| m["owned_by"] == "vllm" || m["max_model_len"].is_u64());
            let models = entries
                .iter()
                .filter_map(|m| {
                    let id = m["id"].as_str()?.to_owned();
                    Some(ModelFacts { id, window: m["max_model_len"].as_u64().or(llama_window) })
                })
                .collect();
            let dialect = if llama_window.is_some() {
                Some(Dialect::Gbnf)
            } else if vllm {
                let version = http::get_json(&client, &format!("{root}/version"), &headers).await;
                Some(vllm_dialect(version.as_ref().and_then(|v| v["version"].as_str())))
            } else {
                None
            };
            ProviderFacts { models, dialect }
        })
    }

    fn window(&self, model: &str) -> LocalBoxFuture<'static, Option<u64>> {
        let facts = self.facts();
        let model = model.to_owned();
        Box::pin(async move {
            let facts = facts.await;
            let listed = facts.models.iter().find(|m| m.id == model).or(facts.models.first());
            listed.and_then(|m| m.window)
        })
    }

    fn stream(
        &self,
        request: CompletionRequest,
    ) -> futures_util::stream::LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        let c = &self.config;
        let CompletionRequest { prompt, model, max_tokens, constraint, .. } = request;
        let url = format!("{}/chat/completions", c.base_url.trim_end_matches('/'));
        let client = self.client.clone();
        let key = c.api_key.clone();
        let idle = c.idle_timeout;
        http::drive_stream(move |tx| async move {
            // A long prompt takes a while to serialise: not on an actor thread.
            let serialise = move || body(&prompt, &model, max_tokens, constraint.as_ref());
            let body = match tokio::task::spawn_blocking(serialise).await {
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
    let header_id = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut decoder = SseDecoder::new();
    let mut usage: Option<Usage> = None;
    let mut meta = ResponseMeta { request_id: header_id, ..ResponseMeta::default() };
    while let Some(chunk) = http::next_chunk(&mut res, idle, &redactor).await? {
        for message in decoder.feed(&chunk).map_err(http::line_too_long)? {
            // Older llama.cpp builds sent errors as a non-standard `error:` field.
            if let Some((_, legacy)) = message.other.iter().find(|(f, _)| f == "error") {
                let error: Value = serde_json::from_str(legacy).unwrap_or(Value::Null);
                return Err(stream_error(&error, &redactor));
            }
            if message.data.starts_with("[DONE]") {
                let _ = tx.send(Ok(ModelEvent::Meta(meta))).await;
                if let Some(u) = usage {
                    let _ = tx.send(Ok(ModelEvent::Usage(u))).await;
                }
                return Ok(());
            }
            let data: Value = serde_json::from_str(&message.data).unwrap_or(Value::Null);
            if data.get("error").is_some() {
                return Err(stream_error(&data["error"], &redactor));
            }
            if meta.model.is_none() {
                meta.model = data["model"].as_str().map(str::to_owned);
            }
            if meta.request_id.is_none() {
                meta.request_id = data["id"].as_str().map(str::to_owned);
            }
            if let Some(reason) = data["choices"].get(0).and_then(|c| c["finish_reason"].as_str()) {
                meta.stop_reason = Some(reason.to_owned());
            }
            // llama.cpp marks a generation its window cut short.
            if data["truncated"] == true {
                meta.stop_reason = Some("truncated".to_owned());
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
    if kind == "exceed_context_size_error" || message.contains("maximum context length") {
        return ModelError::new(
            "context-full",
            key.redact(&format!("the model server reported {kind}: {message}")),
            false,
        );
    }
    let retryable =
        matches!(kind, "server_error" | "unavailable_error") || error["code"].as_u64().is_some_and(|c| c >= 500);
    ModelError::new("provider-error", key.redact(&format!("the model server reported {kind}: {message}")), retryable)
}
