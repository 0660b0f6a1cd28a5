//! A local stand-in for the Anthropic Messages API that speaks its wire
//! format as `shared/reference/llm-wire.md` records it: named SSE events,
//! JSON padded with spaces inside the closing brace, `ping`s, cumulative
//! usage, errors in the documented shapes. It checks every request (headers,
//! system blocks, where the cache marks sit and how many, alternating roles)
//! and records what is wrong; it simulates the prefix cache (breakpoints,
//! lookback, minimum length, TTL) and reports usage as the API would; it
//! streams in irregular chunks; and it injects faults on demand.
//!
//! One file (about 500 lines) on purpose: the cost bench includes it by path,
//! and the wire checks, the simulated cache and the faults share its state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use futures_util::StreamExt as _;
use panel_actors::prefix_cache::{CacheBlock, PrefixCache, estimate_tokens};
use serde_json::{Value, json};

/// A fault to inject into the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 rate_limit_error with `retry-after-ms`.
    RateLimited,
    /// 529 overloaded_error.
    Overloaded,
    /// 500 api_error.
    ServerError,
    /// 401 authentication_error whose message echoes the key it was sent.
    Unauthorized,
    /// 200, then `event: error` overloaded_error before any text.
    OverloadedMidStream,
    /// 200, some text, then `event: error` overloaded_error.
    OverloadedAfterText,
    /// 200, then the connection drops.
    Drop,
    /// 200, then nothing more.
    Stall,
}

/// What one request cost, as reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reported {
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
    /// Token size of each block, in order (system blocks, then messages).
    pub blocks: Vec<u64>,
    /// Which blocks carried a cache mark.
    pub marks: Vec<bool>,
}

#[derive(Default)]
struct State {
    key: String,
    outputs: VecDeque<String>,
    faults: VecDeque<Fault>,
    problems: Vec<String>,
    requests: Vec<Value>,
    /// Holds the next turn's answer until the sender is used or dropped.
    hold: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The bodies of the turns' requests (not pre-warms) exactly as they arrived.
    raw: Vec<web::Bytes>,
    reported: Vec<Reported>,
    cache: Option<PrefixCache>,
    seed: u64,
    /// Divides the cache TTLs, as the server's time scale does.
    scale: f64,
    /// Prompts larger than this are refused as too long.
    window: Option<u64>,
    /// Pre-warm requests received, and the last one, to check against the turn that follows it.
    pings: Vec<Value>,
    last_ping: Option<Value>,
    stop_reasons: VecDeque<String>,
    /// How long a pre-warm takes to answer, and whether one is being answered now.
    ping_delay: Duration,
    ping_in_flight: bool,
    /// When each request arrived, and whether it was a pre-warm.
    arrivals: Vec<(Instant, bool)>,
    /// The input window the models endpoint states for every model, when set.
    listed_window: Option<u64>,
}

#[derive(Clone)]
pub struct MockAnthropic {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl MockAnthropic {
    /// Starts the mock on a free port; it expects `key` in `x-api-key`.
    /// `min_tokens` is the model's minimum cacheable prefix.
    pub async fn start(key: &str, min_tokens: u64) -> Self {
        Self::start_scaled(key, min_tokens, 1.0).await
    }

    /// Like [`MockAnthropic::start`], with cache TTLs divided by `scale`.
    pub async fn start_scaled(key: &str, min_tokens: u64, scale: f64) -> Self {
        let state = Arc::new(Mutex::new(State {
            key: key.to_owned(),
            cache: Some(PrefixCache::new(min_tokens)),
            seed: 7,
            scale,
            ..State::default()
        }));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/v1/messages", web::post().to(messages))
                .route("/v1/models", web::get().to(models))
                .route("/v1/models/{id}", web::get().to(model))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { url: format!("http://127.0.0.1:{port}"), state }
    }

    /// The text the next turn streams (otherwise a short speak by the first character).
    pub fn push_output(&self, text: &str) {
        self.state.lock().unwrap().outputs.push_back(text.to_owned());
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// Everything wrong with the requests received so far.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Holds the next turn's answer (not a pre-warm's) until the returned
    /// sender is used or dropped: a turn kept in flight for as long as a test needs.
    pub fn hold_next_turn(&self) -> tokio::sync::oneshot::Sender<()> {
        let (release, held) = tokio::sync::oneshot::channel();
        self.state.lock().unwrap().hold = Some(held);
        release
    }

    /// The turns' request bodies (pre-warms left out), byte for byte.
    pub fn raw_turn_requests(&self) -> Vec<web::Bytes> {
        self.state.lock().unwrap().raw.clone()
    }

    /// Usage reported for each successful request, in order.
    pub fn reported(&self) -> Vec<Reported> {
        self.state.lock().unwrap().reported.clone()
    }

    /// The pre-warm requests received, in order.
    pub fn pings(&self) -> Vec<Value> {
        self.state.lock().unwrap().pings.clone()
    }

    /// Refuse prompts larger than `tokens`, as the API refuses one too long.
    pub fn set_window(&self, tokens: u64) {
        self.state.lock().unwrap().window = Some(tokens);
    }

    /// Pre-warms take this long to answer from now on.
    pub fn set_ping_delay(&self, delay: Duration) {
        self.state.lock().unwrap().ping_delay = delay;
    }

    /// When each request arrived, and whether it was a pre-warm.
    pub fn arrivals(&self) -> Vec<(Instant, bool)> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// The models endpoint states `tokens` as every model's input window.
    pub fn set_listed_window(&self, tokens: u64) {
        self.state.lock().unwrap().listed_window = Some(tokens);
    }

    /// The stop reason the next turn reports (otherwise `end_turn`).
    pub fn push_stop_reason(&self, reason: &str) {
        self.state.lock().unwrap().stop_reasons.push_back(reason.to_owned());
    }
}

/// Models, as `GET /v1/models` lists them (with their input windows).
const MODELS: [(&str, u64); 2] = [("claude-sonnet-5", 1_000_000), ("claude-haiku-4-5-20251001", 200_000)];

fn listed(state: &web::Data<Arc<Mutex<State>>>) -> Vec<(&'static str, u64)> {
    let window = state.lock().unwrap().listed_window;
    MODELS.iter().map(|(id, w)| (*id, window.unwrap_or(*w))).collect()
}

async fn models(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let data: Vec<Value> = listed(&state)
        .iter()
        .map(|(id, window)| json!({ "type": "model", "id": id, "display_name": id, "created_at": "2026-01-01T00:00:00Z", "max_input_tokens": window, "max_tokens": 64000 }))
        .collect();
    HttpResponse::Ok().json(json!({ "data": data, "has_more": false, "first_id": MODELS[0].0, "last_id": MODELS[1].0 }))
}

async fn model(id: web::Path<String>, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    match listed(&state).iter().find(|(m, _)| *m == id.as_str()) {
        Some((id, window)) => HttpResponse::Ok().json(
            json!({ "type": "model", "id": id, "display_name": id, "max_input_tokens": window, "max_tokens": 64000 }),
        ),
        None => HttpResponse::NotFound().json(error_body("not_found_error", &format!("model: {id}"))),
    }
}

/// A pre-warm must be the prefix the turn after it reuses: the same system
/// blocks (marks included), messages that begin that turn's, and the second
/// mark on its newest message.
fn compare_ping(ping: &Value, turn: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if ping["system"] != turn["system"] {
        problems.push("the pre-warm's system blocks differ from the next turn's".to_owned());
    }
    let (pm, tm) = (
        ping["messages"].as_array().cloned().unwrap_or_default(),
        turn["messages"].as_array().cloned().unwrap_or_default(),
    );
    let text = |m: &Value| (m["role"].clone(), m["content"][0]["text"].clone());
    if pm.len() > tm.len() || pm.iter().zip(&tm).any(|(p, t)| text(p) != text(t)) {
        problems.push("the pre-warm's messages are not the start of the next turn's".to_owned());
    }
    let marked: Vec<bool> = pm.iter().map(|m| !m["content"][0]["cache_control"].is_null()).collect();
    if marked.last() != Some(&true) || marked.iter().filter(|m| **m).count() != 1 {
        problems.push("the pre-warm's breakpoint is not on its newest message alone".to_owned());
    }
    problems
}

/// Compact JSON with the API's trailing padding inside the closing brace.
fn padded(value: &Value, pad: usize) -> String {
    let mut s = value.to_string();
    s.pop();
    format!("{s}{}}}", " ".repeat(pad))
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy" })
}

/// Checks a request as the real API would, listing what is wrong.
fn check(req: &HttpRequest, body: &Value, key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("x-api-key") != key {
        problems.push("x-api-key missing or wrong".into());
    }
    if header("anthropic-version") != "2023-06-01" {
        problems.push(format!("anthropic-version is {:?}", header("anthropic-version")));
    }
    if !header("content-type").starts_with("application/json") {
        problems.push("content-type is not application/json".into());
    }
    let prewarm = body["max_tokens"] == 0;
    if prewarm && body["stream"] == true {
        problems.push("max_tokens: 0 (a pre-warm) cannot be streamed".into());
    }
    if !body["model"].is_string() || !body["max_tokens"].is_u64() || !prewarm && body["stream"] != true {
        problems.push("model, max_tokens and stream: true (or a max_tokens: 0 pre-warm) are required".into());
    }
    let system = body["system"].as_array().cloned().unwrap_or_default();
    if system.is_empty() || system.iter().any(|b| b["type"] != "text" || b["text"].as_str().is_none_or(str::is_empty)) {
        problems.push("system must be non-empty text blocks".into());
    }
    // panel's layout marks every turn; a request with no marks at all (a
    // one-off, like a recap) is valid and simply not cached.
    let cached = body.to_string().contains("cache_control");
    if cached && system.last().is_some_and(|b| b["cache_control"].is_null()) {
        problems.push("no cache breakpoint at the end of the system blocks (the head)".into());
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if messages.is_empty() {
        problems.push("no messages".into());
    }
    for (i, m) in messages.iter().enumerate() {
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if m["role"] != want {
            problems.push(format!("message {i} has role {} where {want} was expected", m["role"]));
        }
        let blocks = m["content"].as_array().cloned().unwrap_or_default();
        if blocks.is_empty() || blocks.iter().any(|b| b["text"].as_str().is_none_or(str::is_empty)) {
            problems.push(format!("message {i} has empty content"));
        }
    }
    if messages.last().is_some_and(|m| m["role"] != "user") {
        problems.push("the conversation must end with a user message (no prefill)".into());
    }
    let last_marked = messages
        .last()
        .and_then(|m| m["content"].as_array()?.last().cloned())
        .is_some_and(|b| !b["cache_control"].is_null());
    if cached && !last_marked {
        problems.push("no cache breakpoint on the newest message".into());
    }
    let marks: Vec<&Value> = system
        .iter()
        .chain(messages.iter().flat_map(|m| m["content"].as_array().into_iter().flatten()))
        .map(|b| &b["cache_control"])
        .filter(|c| !c.is_null())
        .collect();
    if marks.len() > 4 {
        problems.push(format!("{} cache breakpoints; the API allows 4", marks.len()));
    }
    for c in marks {
        if c["type"] != "ephemeral" || !(c["ttl"].is_null() || c["ttl"] == "5m" || c["ttl"] == "1h") {
            problems.push(format!("bad cache_control {c}"));
        }
    }
    problems
}

async fn messages(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prewarm = json["max_tokens"] == 0;
    let (delay, hold) = {
        let mut st = state.lock().unwrap();
        st.arrivals.push((Instant::now(), prewarm));
        if st.ping_in_flight {
            st.problems.push("a request arrived while a pre-warm was still being answered".into());
        }
        st.ping_in_flight = prewarm;
        if prewarm { (st.ping_delay, None) } else { (Duration::ZERO, st.hold.take()) }
    };
    if let Some(held) = hold {
        let _ = held.await;
    }
    if !delay.is_zero() {
        // A pre-warm's round trip: the time the API takes to read the prefix.
        actix_web::rt::time::sleep(delay).await;
    }
    let mut st = state.lock().unwrap();
    st.ping_in_flight = false;
    st.requests.push(json.clone());
    if !prewarm {
        st.raw.push(body.clone());
    }
    let problems = check(&req, &json, &st.key);
    if !problems.is_empty() {
        st.problems.extend(problems.iter().cloned());
        let status = if problems.iter().any(|p| p.starts_with("x-api-key")) { 401 } else { 400 };
        let kind = if status == 401 { "authentication_error" } else { "invalid_request_error" };
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(error_body(kind, &problems.join("; ")));
    }
    let fault = st.faults.pop_front();
    match fault {
        Some(Fault::RateLimited) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("retry-after-ms", "30"))
                .insert_header(("x-should-retry", "true"))
                .json(error_body("rate_limit_error", "This request would exceed your organization's rate limit."));
        }
        Some(Fault::Overloaded) => {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(529).unwrap())
                .json(error_body("overloaded_error", "Overloaded"));
        }
        Some(Fault::ServerError) => {
            return HttpResponse::InternalServerError().json(error_body("api_error", "Internal server error"));
        }
        Some(Fault::Unauthorized) => {
            let key = st.key.clone();
            return HttpResponse::Unauthorized()
                .json(error_body("authentication_error", &format!("invalid x-api-key {key}")));
        }
        _ => {}
    }

    if prewarm {
        st.pings.push(json.clone());
        st.last_ping = Some(json.clone());
    } else if let Some(ping) = st.last_ping.take() {
        let found = compare_ping(&ping, &json);
        st.problems.extend(found);
    }
    // Usage, from the simulated prefix cache.
    let ttl_1h = json.to_string().contains("\"ttl\":\"1h\"");
    let texts: Vec<(String, bool)> = json["system"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            json["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["content"].as_array().into_iter().flatten()),
        )
        .map(|b| (b["text"].as_str().unwrap_or_default().to_owned(), !b["cache_control"].is_null()))
        .collect();
    let blocks: Vec<CacheBlock> =
        texts.iter().map(|(t, m)| CacheBlock { text: t, tokens: estimate_tokens(t), breakpoint: *m }).collect();
    let total: u64 = blocks.iter().map(|b| b.tokens).sum();
    if let Some(window) = st.window.filter(|w| total > *w) {
        let message = format!("prompt is too long: {total} tokens > {window} maximum");
        return HttpResponse::BadRequest().json(error_body("invalid_request_error", &message));
    }
    let ttl = Duration::from_secs(if ttl_1h { 3600 } else { 300 }).div_f64(st.scale.max(f64::MIN_POSITIVE));
    let charge = st.cache.as_mut().unwrap().charge(&blocks, Instant::now(), ttl);
    if prewarm {
        let (w5, w1) = if ttl_1h { (0, charge.cache_write) } else { (charge.cache_write, 0) };
        let usage = json!({"input_tokens":charge.input,"cache_creation_input_tokens":charge.cache_write,"cache_read_input_tokens":charge.cache_read,"cache_creation":{"ephemeral_5m_input_tokens":w5,"ephemeral_1h_input_tokens":w1},"output_tokens":0,"service_tier":"standard"});
        st.reported.push(Reported {
            input: charge.input,
            cache_write: charge.cache_write,
            cache_read: charge.cache_read,
            output: 0,
            blocks: blocks.iter().map(|b| b.tokens).collect(),
            marks: blocks.iter().map(|b| b.breakpoint).collect(),
        });
        return HttpResponse::Ok()
            .insert_header(("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"))
            .json(json!({"model":json["model"],"id":"msg_01PreWarm","type":"message","role":"assistant","content":[],"stop_reason":"max_tokens","stop_sequence":null,"usage":usage}));
    }
    let stop_reason = st.stop_reasons.pop_front().unwrap_or_else(|| "end_turn".to_owned());
    let output = st.outputs.pop_front().unwrap_or_else(|| default_output(&json));
    let output_tokens = estimate_tokens(&output);
    st.reported.push(Reported {
        input: charge.input,
        cache_write: charge.cache_write,
        cache_read: charge.cache_read,
        output: output_tokens,
        blocks: blocks.iter().map(|b| b.tokens).collect(),
        marks: blocks.iter().map(|b| b.breakpoint).collect(),
    });
    st.seed = st.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut rng = fastrand::Rng::with_seed(st.seed);
    drop(st);

    let (w5, w1) = if ttl_1h { (0, charge.cache_write) } else { (charge.cache_write, 0) };
    let start = json!({"type":"message_start","message":{"model":json["model"],"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":charge.input,"cache_creation_input_tokens":charge.cache_write,"cache_read_input_tokens":charge.cache_read,"cache_creation":{"ephemeral_5m_input_tokens":w5,"ephemeral_1h_input_tokens":w1},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}});
    let mut sse = format!("event: message_start\ndata: {}\n\n", padded(&start, 3));
    sse.push_str(&format!(
        "event: content_block_start\ndata: {}\n\n",
        padded(&json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}), 5)
    ));
    sse.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
    let mut tail: Option<Result<Bytes, std::io::Error>> = None;
    let mut stall = false;
    match fault {
        Some(Fault::OverloadedMidStream) => {
            sse.push_str(&format!(
                "event: error\ndata: {}\n\n",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            ));
            return stream_response(sse, rng, None, false);
        }
        Some(Fault::Drop) => tail = Some(Err(std::io::Error::other("connection dropped"))),
        Some(Fault::Stall) => stall = true,
        _ => {}
    }
    if tail.is_none() && !stall {
        let chars: Vec<char> = output.chars().collect();
        let mut i = 0;
        let stop_early = matches!(fault, Some(Fault::OverloadedAfterText));
        while i < chars.len() {
            let n = rng.usize(1..=7).min(chars.len() - i);
            let piece: String = chars[i..i + n].iter().collect();
            let delta = json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":piece}});
            sse.push_str(&format!("event: content_block_delta\ndata: {}\n\n", padded(&delta, rng.usize(0..12))));
            i += n;
            if stop_early && i > chars.len() / 2 {
                sse.push_str(&format!(
                    "event: error\ndata: {}\n\n",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                ));
                return stream_response(sse, rng, None, false);
            }
        }
        sse.push_str(&format!(
            "event: content_block_stop\ndata: {}\n\n",
            padded(&json!({"type":"content_block_stop","index":0}), 8)
        ));
        let end = json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"input_tokens":charge.input,"cache_creation_input_tokens":charge.cache_write,"cache_read_input_tokens":charge.cache_read,"output_tokens":output_tokens}});
        sse.push_str(&format!("event: message_delta\ndata: {}\n\n", padded(&end, 13)));
        sse.push_str(&format!("event: message_stop\ndata: {}\n\n", padded(&json!({"type":"message_stop"}), 14)));
    }
    stream_response(sse, rng, tail, stall)
}

/// Streams `sse` in irregular chunks, then an optional failure or a stall.
fn stream_response(
    sse: String,
    mut rng: fastrand::Rng,
    tail: Option<Result<Bytes, std::io::Error>>,
    stall: bool,
) -> HttpResponse {
    let bytes = sse.into_bytes();
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let n = rng.usize(1..=97).min(bytes.len() - i);
        chunks.push(Ok(Bytes::copy_from_slice(&bytes[i..i + n])));
        i += n;
    }
    chunks.extend(tail);
    let body = futures_util::stream::iter(chunks).then(|c| async move {
        // Yield between chunks so they leave as separate writes.
        tokio::task::yield_now().await;
        c
    });
    let body = if stall { body.chain(futures_util::stream::pending()).boxed_local() } else { body.boxed_local() };
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"))
        .streaming(body)
}

/// A short, valid answer by the first character of the head.
fn default_output(body: &Value) -> String {
    let head = body["system"][0]["text"].as_str().unwrap_or_default();
    let name = head.split("<character name=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("Ada");
    format!("<speak who=\"{name}\">Noted. Here is my considered answer to that.</speak>\n")
}
