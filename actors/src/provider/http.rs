//! What the HTTP providers share: the API key that never shows, the awc
//! client, error classification and retry hints, reading a body with a
//! per-read timeout, and turning a request task into the provider's stream.

use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::{self, LocalBoxStream};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{ModelError, ModelEvent};

/// An API key. It is read from the environment and used in one request
/// header; it has no `Display`, and its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key.trim().to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Removes the key from text that is about to be shown or logged.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_owned() } else { text.replace(&self.0, "[redacted]") }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// An awc client for streaming: a generous limit for the response head (a
/// long prompt can take a while to start), no limit on the body, whose
/// pace the model client watches instead.
pub fn client(head_timeout: Duration) -> awc::Client {
    // awc's rustls connector panics without a process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::builder().timeout(head_timeout).finish()
}

pub type Sender = mpsc::Sender<Result<ModelEvent, ModelError>>;

/// Turns a request task into the provider's stream. The task is not spawned:
/// the stream polls it, so whoever drops the stream (a cancelled turn, a
/// retry, a closed session) drops the request and its connection at once.
/// A detached task waiting on a silent connection would never notice.
pub fn drive_stream<F>(task: impl FnOnce(Sender) -> F) -> LocalBoxStream<'static, Result<ModelEvent, ModelError>>
where
    F: std::future::Future<Output = ()> + 'static,
{
    let (tx, mut rx) = mpsc::channel(64);
    let driver = stream::once(task(tx)).filter_map(|()| std::future::ready(None));
    let items = stream::poll_fn(move |cx| rx.poll_recv(cx));
    Box::pin(stream::select(items, driver))
}

/// The next piece of a response body, or a stall if none comes within `idle`.
pub async fn next_chunk<S>(res: &mut S, idle: Duration, key: &ApiKey) -> Result<Option<bytes::Bytes>, ModelError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    match tokio::time::timeout(idle, futures_util::StreamExt::next(res)).await {
        Err(_) => Err(ModelError::new("stalled", format!("the model sent nothing for {idle:?}"), true)),
        Ok(None) => Ok(None),
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(Some(Err(e))) => Err(ModelError::new("connection", key.redact(&format!("the stream broke: {e}")), true)),
    }
}

/// A provider answered with a line no event stream should have.
pub fn line_too_long(e: super::sse::LineTooLong) -> ModelError {
    ModelError::new("provider-error", e.to_string(), false)
}

/// A failed HTTP answer, read into a [`ModelError`]: the provider's own
/// message, whether to retry (honouring `x-should-retry`), and how long the
/// server asked us to wait.
pub async fn http_error(
    provider: &str,
    res: &mut awc::ClientResponse<
        impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    >,
    key: &ApiKey,
) -> ModelError {
    let status = res.status().as_u16();
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let should_retry = header("x-should-retry").map(|v| v == "true");
    let retry_after = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
        .or_else(|| header("retry-after").and_then(|v| v.parse::<f64>().ok()))
        .filter(|s| *s > 0.0 && *s <= 60.0)
        .map(Duration::from_secs_f64);
    let body = res.body().limit(64 * 1024).await.unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let kind = json["error"]["type"].as_str().unwrap_or_default().to_owned();
    // Most servers wrap the error in `error`; older vLLM builds answer flat.
    let message = json["error"]["message"]
        .as_str()
        .or(json["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let spend_cap = json["error"]["details"]["error_code"] == "enforced_spend_limit_reached";
    // The prompt does not fit the model's window: Anthropic ("prompt is too
    // long", or "exceed context limit" on older models), llama.cpp (by type;
    // its wording varies by build), vLLM ("maximum context length").
    let overflow = status == 400
        && (kind == "exceed_context_size_error"
            || message.contains("prompt is too long")
            || message.contains("exceed context limit")
            || message.contains("maximum context length"));
    let code = match status {
        _ if overflow => "context-full",
        400 => "bad-request",
        401 => "unauthorized",
        402 => "billing",
        403 => "forbidden",
        404 => "not-found",
        408 => "timeout",
        413 => "too-large",
        429 => "rate-limited",
        529 => "overloaded",
        s if s >= 500 => "provider-error",
        _ => "provider-error",
    };
    let retryable = should_retry.unwrap_or(!spend_cap && (matches!(status, 408 | 409 | 429) || status >= 500));
    let kind = if kind.is_empty() { String::new() } else { format!(" {kind}") };
    let text = key.redact(&format!("{provider} answered {status}{kind}: {message}"));
    ModelError { code: code.to_owned(), message: text, retryable, retry_after }
}

/// A GET whose JSON answer is wanted, or nothing if the server does not
/// answer it (in time, with 200 and JSON).
pub async fn get_json(client: &awc::Client, url: &str, headers: &[(&str, String)]) -> Option<Value> {
    let mut req = client.get(url).timeout(Duration::from_secs(10));
    for (name, value) in headers {
        req = req.insert_header((*name, value.as_str()));
    }
    let mut res = req.send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json::<Value>().limit(4 << 20).await.ok()
}

/// A connection that could not be made or broke: worth retrying.
pub fn connection_error(provider: &str, e: impl std::fmt::Display, key: &ApiKey) -> ModelError {
    ModelError::new("connection", key.redact(&format!("cannot reach {provider}: {e}")), true)
}
