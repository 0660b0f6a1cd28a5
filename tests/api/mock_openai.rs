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
}

#[derive(Default)]
struct State {
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
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/v1/chat/completions", web::post().to(completions))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { url: format!("http://127.0.0.1:{port}/v1"), state }
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
    drop(st);
    let head = messages.first().and_then(|m| m["content"].as_str()).unwrap_or_default();
    let name = head.split("<character name=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("Ada");
    let text = format!("<speak who=\"{name}\">From a local model: a short answer.</speak>");
    let mut sse = String::new();
    sse.push_str(&chunk(Some(""), None));
    let pieces: Vec<String> = text.as_bytes().chunks(9).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    for (i, piece) in pieces.iter().enumerate() {
        sse.push_str(&chunk(Some(piece), None));
        if i == 2 && style == Style::ErrorMidStream {
            sse.push_str("data: {\"error\":{\"message\":\"the model crashed\",\"type\":\"server_error\"}}\n\n");
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

fn respond(sse: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/event-stream").streaming(futures_util::stream::iter(
        sse.into_bytes()
            .chunks(41)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ))
}
