//! A local OpenAI-compatible chat-completions server, in the shapes
//! `shared/reference/llm-wire.md` records: data-only SSE, `[DONE]`, the
//! usage chunk with `choices: []` when asked for, llama.cpp's key order and
//! `timings`, and both the standard and the legacy (`error:` field) ways of
//! reporting an error mid-stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// How the next answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Usage with `prompt_tokens_details.cached_tokens`.
    WithUsage { cached: u64 },
    /// A server that sends no usage at all.
    NoUsage,
    /// An error as `data: {"error":…}` after some text.
    ErrorMidStream,
    /// llama.cpp's old non-standard `error:` field.
    LegacyError,
    /// Cut off by the window: `finish_reason: "length"`, and llama.cpp's `truncated: true`.
    Truncated,
}

/// Which server the mock is, as far as panel can tell from outside.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// Says nothing about itself (OpenAI, Ollama): no `/props`, no model windows.
    Plain,
    /// llama.cpp's `llama-server`: `/props` with its `n_ctx`.
    LlamaCpp { n_ctx: u64 },
    /// vLLM: `max_model_len` in `/v1/models`, its version at `/version`.
    Vllm { max_model_len: u64, version: String, flat_errors: bool },
}

#[derive(Default)]
struct State {
    server: Option<Server>,
    /// Answer any request carrying a grammar with 400, as a server that refuses the field.
    refuse_grammar: bool,
    /// The grammars received, as sent.
    grammars: Vec<String>,
    /// Prompts above this many tokens are refused, whatever the server states.
    refusal: Option<u64>,
    styles: VecDeque<Style>,
    requests: Vec<Value>,
    problems: Vec<String>,
}

#[derive(Clone)]
pub struct MockOpenAi {
    /// Including `/v1`, as OPENAI_BASE_URL is given.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl MockOpenAi {
    pub async fn start() -> Self {
        Self::start_as(Server::Plain).await
    }

    pub async fn start_as(kind: Server) -> Self {
        let state = Arc::new(Mutex::new(State { server: Some(kind), ..State::default() }));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/v1/chat/completions", web::post().to(completions))
                .route("/v1/models", web::get().to(models))
                .route("/props", web::get().to(props))
                .route("/version", web::get().to(version))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { url: format!("http://127.0.0.1:{port}/v1"), state }
    }

    /// Refuse prompts above `tokens` as the server refuses an overflow, even
    /// if its stated window is larger (as when its tokenizer counts more).
    pub fn set_refusal(&self, tokens: u64) {
        self.state.lock().unwrap().refusal = Some(tokens);
    }

    /// Refuse every request that carries a grammar, as a server that cannot parse it.
    pub fn refuse_grammar(&self) {
        self.state.lock().unwrap().refuse_grammar = true;
    }

    /// The grammars received, in order.
    pub fn grammars(&self) -> Vec<String> {
        self.state.lock().unwrap().grammars.clone()
    }

    pub fn push_style(&self, style: Style) {
        self.state.lock().unwrap().styles.push_back(style);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }
}

fn server(state: &web::Data<Arc<Mutex<State>>>) -> Server {
    state.lock().unwrap().server.clone().unwrap_or(Server::Plain)
}

async fn models(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    match server(&state) {
        Server::Plain => HttpResponse::NotFound().json(json!({"error":{"message":"Not found","type":"not_found_error"}})),
        // One model; meta's n_ctx_train is the training length, not the window.
        Server::LlamaCpp { .. } => HttpResponse::Ok().json(json!({"object":"list","data":[{"id":"local","object":"model","created":1764100000,"owned_by":"llamacpp","meta":{"vocab_type":2,"n_vocab":151936,"n_ctx_train":131072,"n_embd":2048,"n_params":1_700_000_000u64,"size":1_200_000_000u64}}]})),
        Server::Vllm { max_model_len, .. } => HttpResponse::Ok().json(json!({"object":"list","data":[{"id":"local","object":"model","created":1764100000,"owned_by":"vllm","root":"Qwen/Qwen3-1.7B","parent":null,"max_model_len":max_model_len,"permission":[]}]})),
    }
}

async fn props(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    match server(&state) {
        Server::LlamaCpp { n_ctx } => HttpResponse::Ok().json(json!({"default_generation_settings":{"n_ctx":n_ctx,"params":{"n_predict":-1}},"total_slots":1,"model_path":"/models/local.gguf","build_info":"b7000-abcdef"})),
        _ => HttpResponse::NotFound().json(json!({"error":{"message":"Not found","type":"not_found_error"}})),
    }
}

async fn version(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    match server(&state) {
        Server::Vllm { version, .. } => HttpResponse::Ok().json(json!({ "version": version })),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// The server's refusal of a prompt of `tokens` that does not fit `window`, in its own words.
fn overflow(kind: &Server, tokens: u64, window: u64) -> HttpResponse {
    match kind {
        Server::LlamaCpp { .. } => HttpResponse::BadRequest().json(json!({"error":{"code":400,"message":format!("request ({tokens} tokens) exceeds the available context size ({window} tokens), try increasing it"),"type":"exceed_context_size_error","n_prompt_tokens":tokens,"n_ctx":window}})),
        Server::Vllm { flat_errors: true, .. } => HttpResponse::BadRequest().json(json!({"object":"error","message":format!("This model's maximum context length is {window} tokens. However, you requested {tokens} tokens in the messages, Please reduce the length of the messages."),"type":"BadRequestError","param":null,"code":400})),
        _ => HttpResponse::BadRequest().json(json!({"error":{"object":"error","message":format!("This model's maximum context length is {window} tokens. However, you requested {tokens} tokens in the messages, Please reduce the length of the messages."),"type":"BadRequestError","param":null,"code":400}})),
    }
}

fn chunk(content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(c) => json!({ "content": c }),
        None => json!({}),
    };
    // llama.cpp's insertion order: choices, created, id, model, system_fingerprint, object.
    format!(
        "data: {{\"choices\":[{{\"finish_reason\":{},\"index\":0,\"delta\":{delta}}}],\"created\":1764100000,\"id\":\"chatcmpl-abcdefghijklmnopqrstuvwx\",\"model\":\"local\",\"system_fingerprint\":\"b7000-abcdef\",\"object\":\"chat.completion.chunk\"}}\n\n",
        finish.map_or("null".to_owned(), |f| format!("\"{f}\""))
    )
}

async fn completions(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = state.lock().unwrap();
    st.requests.push(json.clone());
    let messages = json["messages"].as_array().cloned().unwrap_or_default();
    if messages.first().is_none_or(|m| m["role"] != "system") || messages.last().is_none_or(|m| m["role"] != "user") {
        st.problems.push("messages must start with system and end with user".into());
    }
    if json["stream"] != true || json["stream_options"]["include_usage"] != true {
        st.problems.push("stream and stream_options.include_usage are expected".into());
    }
    if json["stop"].as_array().is_some_and(|s| s.len() > 4) {
        st.problems.push("more than 4 stop sequences".into());
    }
    if req.headers().get("content-type").is_none_or(|v| v != "application/json") {
        st.problems.push("content-type is not application/json".into());
    }
    let style = st.styles.pop_front().unwrap_or(Style::WithUsage { cached: 0 });
    let kind = st.server.clone().unwrap_or(Server::Plain);
    let refusal = st.refusal;
    let text = answer(&messages);
    // The grammar, in the field this server reads — and nowhere else.
    let fields = [
        ("grammar", json["grammar"].as_str()),
        ("structured_outputs.grammar", json["structured_outputs"]["grammar"].as_str()),
        ("guided_grammar", json["guided_grammar"].as_str()),
    ];
    let expected = match &kind {
        Server::Plain => None,
        Server::LlamaCpp { .. } => Some("grammar"),
        // structured_outputs from 0.10.2; guided_grammar before (and gone in 0.12).
        Server::Vllm { version, .. } if ["0.8", "0.9", "0.10.0", "0.10.1"].iter().any(|v| version.starts_with(v)) => {
            Some("guided_grammar")
        }
        Server::Vllm { .. } => Some("structured_outputs.grammar"),
    };
    let mut grammar = None;
    for (field, value) in fields {
        match (value, Some(field) == expected) {
            (Some(g), true) => grammar = Some(g.to_owned()),
            (Some(_), false) => {
                st.problems.push(format!("a grammar in {field}, which this server ({kind:?}) does not read"))
            }
            (None, true) if !st.refuse_grammar => st.problems.push(format!("no grammar in {field} for {kind:?}")),
            _ => {}
        }
    }
    if let Some(g) = &grammar {
        st.grammars.push(g.clone());
        if st.refuse_grammar {
            return HttpResponse::BadRequest().json(
                json!({"error":{"code":400,"message":"failed to parse grammar","type":"invalid_request_error"}}),
            );
        }
        match crate::gbnf::Grammar::parse(g) {
            Err(e) => st.problems.push(format!("malformed grammar: {e}")),
            Ok(parsed) if !parsed.accepts(&text) => {
                st.problems.push(format!("the grammar rejects a well-formed answer to this turn:\n{text}\n{g}"))
            }
            Ok(_) => {}
        }
    }
    drop(st);
    let tokens: u64 =
        messages.iter().map(|m| m["content"].as_str().unwrap_or_default().len() as u64).sum::<u64>().div_ceil(4);
    let window = match kind {
        Server::LlamaCpp { n_ctx } => Some(n_ctx),
        Server::Vllm { max_model_len, .. } => Some(max_model_len),
        Server::Plain => None,
    };
    if let Some(window) = refusal.or(window).filter(|w| tokens > *w) {
        return overflow(&kind, tokens, window);
    }
    let head = messages.first().and_then(|m| m["content"].as_str()).unwrap_or_default();
    let mut sse = String::new();
    sse.push_str(&chunk(Some(""), None));
    let pieces: Vec<String> = text.as_bytes().chunks(9).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    for (i, piece) in pieces.iter().enumerate() {
        sse.push_str(&chunk(Some(piece), None));
        if i == 2 && style == Style::ErrorMidStream {
            sse.push_str("data: {\"error\":{\"message\":\"the model crashed\",\"type\":\"server_error\"}}\n\n");
            return respond(sse);
        }
        if i == 3 && style == Style::Truncated {
            // Mid-speak, the window is full: llama.cpp's last chunk says so.
            sse.push_str("data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],\"created\":1764100000,\"id\":\"chatcmpl-abcdefghijklmnopqrstuvwx\",\"model\":\"local\",\"system_fingerprint\":\"b7000-abcdef\",\"object\":\"chat.completion.chunk\",\"truncated\":true}\n\n");
            sse.push_str("data: [DONE]\n\n");
            return respond(sse);
        }
        if i == 2 && style == Style::LegacyError {
            sse.push_str(
                "error: {\"code\":400,\"message\":\"context too long\",\"type\":\"invalid_request_error\"}\n\n",
            );
            return respond(sse);
        }
    }
    sse.push_str(&chunk(None, Some("stop")));
    if let Style::WithUsage { cached } = style {
        let prompt = (head.len() as u64).div_ceil(4) + 50;
        sse.push_str(&format!(
            "data: {{\"choices\":[],\"created\":1764100000,\"id\":\"chatcmpl-abcdefghijklmnopqrstuvwx\",\"model\":\"local\",\"object\":\"chat.completion.chunk\",\"usage\":{{\"completion_tokens\":12,\"prompt_tokens\":{prompt},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{cached}}}}},\"timings\":{{\"cache_n\":{cached},\"prompt_n\":{}}}}}\n\n",
            prompt + 12,
            prompt - cached
        ));
    }
    sse.push_str("data: [DONE]\n\n");
    respond(sse)
}

/// A well-formed answer to the turn the messages ask for: one speak by the
/// addressee for an @-turn or by the only character of a one-to-one, else a
/// confer and a speak by the head's first character.
fn answer(messages: &[Value]) -> String {
    let head = messages.first().and_then(|m| m["content"].as_str()).unwrap_or_default();
    let names: Vec<&str> = head.split("<character name=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    let first = names.first().copied().unwrap_or("Ada");
    let last = messages.last().and_then(|m| m["content"].as_str()).unwrap_or_default();
    let floor = last.rfind("From the floor").map_or("", |i| &last[i..]);
    if let Some(to) = floor.strip_prefix("From the floor, to ").and_then(|r| r.split(':').next()) {
        return format!("<speak who=\"{to}\">From a local model: a short answer.</speak>\n");
    }
    if names.len() == 1 {
        return format!("<speak who=\"{first}\">From a local model: a short answer.</speak>\n");
    }
    format!(
        "<confer>\n{first}: Mine, briefly.\n</confer>\n<speak who=\"{first}\">From a local model: a short answer.</speak>\n"
    )
}

fn respond(sse: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/event-stream").streaming(futures_util::stream::iter(
        sse.into_bytes()
            .chunks(41)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ))
}
