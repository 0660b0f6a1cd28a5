//! Starting the real application on port 0, and small real clients for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use awc::Client;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use panel::config::{ProviderChoice, Settings};
use panel::startup::{Application, Stopper};
use panel_actors::cache_clock::TimeScale;
use panel_actors::model_client::RetryPolicy;
use panel_actors::provider::CacheTtl;
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: Client,
    pub stopper: Stopper,
    _dir: Option<tempfile::TempDir>,
}

pub struct Options {
    /// Milliseconds between rehearsal pieces: 0 for speed, more to act mid-turn.
    pub pace_ms: u64,
    pub logs: Option<PathBuf>,
    pub subscriber_queue: usize,
    pub provider: ProviderChoice,
    pub retry: RetryPolicy,
    pub token: Option<String>,
    pub cache_ttl: CacheTtl,
    pub passivate_after: Option<Duration>,
    /// Divides every cache duration (TTLs, ping lead, silence cap).
    pub time_scale: f64,
    /// The silence after which keep-warm stops (unscaled).
    pub keep_warm_cap: Duration,
    /// The input window the rehearsal engine simulates.
    pub rehearsal_window: Option<u64>,
    /// The window of a model nobody states one for (`--context-tokens`).
    pub context_tokens: Option<u64>,
    /// How an OpenAI-compatible server's turns are held to the format.
    pub constrain: panel_actors::registry::Constrain,
    /// Providers on offer besides the default.
    pub other_providers: Vec<ProviderChoice>,
    /// The roster folder (default: the repository's, read-only by convention).
    pub roster: Option<PathBuf>,
    /// How often streams ping (a socket silent for three is closed).
    pub keep_alive: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pace_ms: 0,
            logs: None,
            subscriber_queue: 1024,
            provider: ProviderChoice::Rehearsal,
            // Quick retries and a short stall timeout keep fault tests fast.
            retry: RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                idle_timeout: Duration::from_secs(2),
            },
            token: None,
            cache_ttl: CacheTtl::FiveMinutes,
            passivate_after: None,
            time_scale: 1.0,
            keep_warm_cap: Duration::from_secs(1800),
            rehearsal_window: None,
            context_tokens: None,
            constrain: panel_actors::registry::Constrain::Auto,
            other_providers: Vec::new(),
            roster: None,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// The Anthropic provider at a mock's `url`, with `key`, Claude Sonnet 5 by default.
pub fn anthropic_at(url: &str, key: &str) -> ProviderChoice {
    ProviderChoice::Anthropic(panel_actors::provider::anthropic::AnthropicConfig {
        base_url: url.to_owned(),
        api_key: panel_actors::provider::http::ApiKey::new(key.into()),
        model: "claude-sonnet-5".into(),
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(2),
    })
}

/// An OpenAI-compatible provider at a mock's `url` (with `/v1`), model `local`.
pub fn openai_at(url: &str) -> ProviderChoice {
    ProviderChoice::OpenAi(panel_actors::provider::openai::OpenAiConfig {
        base_url: url.to_owned(),
        api_key: None,
        model: "local".into(),
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(2),
    })
}

/// A copy of the repository's roster in `dir`, for tests that change it.
pub fn roster_copy(dir: &Path) -> PathBuf {
    let to = dir.join("roster");
    for sub in ["characters", "prompts"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for entry in std::fs::read_dir(repo("roster").join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(sub).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(repo("roster/pricing.toml"), to.join("pricing.toml")).unwrap();
    to
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

/// Every log line of this test process, so tests can check what was logged
/// (and what never was). Set TEST_LOG to also see them.
static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture {
    echo: bool,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        if self.echo {
            eprintln!("{line}");
        }
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

pub fn init_logging() {
    let capture = Capture { echo: std::env::var_os("TEST_LOG").is_some() };
    if log::set_boxed_logger(Box::new(capture)).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

pub fn log_lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

pub async fn spawn_with(options: Options) -> TestApp {
    init_logging();
    let (dir, logs) = match options.logs {
        Some(logs) => (None, logs),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let logs = dir.path().to_owned();
            (Some(dir), logs)
        }
    };
    let settings = Settings {
        token: options.token,
        rehearsal_pace: Duration::from_millis(options.pace_ms),
        debug_routes: true,
        subscriber_queue: options.subscriber_queue,
        workers: 2,
        retry: options.retry,
        cache_ttl: options.cache_ttl,
        passivate_after: options.passivate_after,
        time_scale: TimeScale::new(options.time_scale),
        keep_warm_cap: options.keep_warm_cap,
        rehearsal_window: options.rehearsal_window.unwrap_or(panel_actors::provider::rehearsal::WINDOW),
        context_tokens: options.context_tokens,
        constrain: options.constrain,
        other_providers: options.other_providers,
        keep_alive: options.keep_alive,
        ..Settings::local(
            logs.clone(),
            options.roster.unwrap_or_else(|| repo("roster")),
            repo("static"),
            options.provider,
        )
    };

    let app = Application::build(settings).await.expect("the app builds");
    let port = app.port();
    let stopper = app.stopper();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = Client::builder().timeout(WAIT).finish();
    TestApp { address: format!("http://127.0.0.1:{port}"), port, client, stopper, _dir: dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut res = self.client.get(self.url(path)).send().await.expect("GET answered");
        (res.status().as_u16(), res.json().limit(16 << 20).await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut res = self.client.post(self.url(path)).send_json(&body).await.expect("POST answered");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        let mut res = self.client.post(self.url(path)).send().await.expect("POST answered");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let mut res = self.client.delete(self.url(path)).send().await.expect("DELETE answered");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    /// Creates a session and returns its id.
    pub async fn create(&self, cast: &[&str]) -> String {
        let (status, body) = self.post("/api/sessions", json!({ "cast": cast, "title": "test" })).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn say(&self, id: &str, text: &str) -> Value {
        let (status, body) = self.post(&format!("/api/sessions/{id}/say"), json!({ "text": text })).await;
        assert_eq!(status, 202, "{body}");
        body
    }

    pub async fn sse(&self, id: &str, since: Option<u64>) -> Sse {
        self.sse_with(id, since.map_or(String::new(), |s| format!("?since={s}")), None).await
    }

    pub async fn sse_resume(&self, id: &str, last_event_id: u64) -> Sse {
        self.sse_with(id, String::new(), Some(last_event_id)).await
    }

    pub async fn sse_with(&self, id: &str, query: String, last_event_id: Option<u64>) -> Sse {
        let mut req = self.client.get(self.url(&format!("/api/sessions/{id}/events{query}")));
        if let Some(n) = last_event_id {
            req = req.insert_header(("Last-Event-ID", n.to_string()));
        }
        Sse::from_response(req.send().await.expect("SSE answered"))
    }

    /// Polls the session's detail until `done` holds of it (with a timeout).
    pub async fn detail_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(&format!("/api/sessions/{id}")).await;
            assert_eq!(status, 200, "{body}");
            if done(&body) {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {body}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The session's `prefix_hash`, from its running actor.
    pub async fn prefix_hash(&self, id: &str) -> String {
        let (status, body) = self.get(&format!("/api/sessions/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body["live"]["prefix_hash"].as_str().expect("a running actor reports its prefix hash").to_owned()
    }
}

/// One server-sent event as the wire carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `id:` as a seq (the single-session stream's ids).
    pub id: Option<u64>,
    /// The `id:` as sent (the multiplexed stream's `A:12,B:7`).
    pub raw_id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("data is JSON")
    }
}

type Body = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// A minimal, strict EventSource: parses frames as the spec says.
pub struct Sse {
    body: Body,
    buf: BytesMut,
    pub ended: bool,
}

impl Sse {
    pub fn from_response(
        res: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
        >,
    ) -> Self {
        assert_eq!(res.status().as_u16(), 200);
        let content_type = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert_eq!(content_type, "text/event-stream");
        Self { body: Box::pin(res), buf: BytesMut::new(), ended: false }
    }

    /// The next event with data (comments and `retry` skipped), or `None`
    /// when the server ends the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = find(&self.buf, b"\n\n") {
                let block = self.buf.split_to(end + 2);
                let text = std::str::from_utf8(&block).expect("SSE is UTF-8");
                let (mut id, mut raw_id, mut event, mut data) = (None, None, String::from("message"), Vec::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                        raw_id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent { id, raw_id, event, data: data.join("\n") });
            }
            match tokio::time::timeout(WAIT, self.body.next()).await.expect("an SSE frame within the timeout") {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => panic!("SSE body failed: {e}"),
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// Events (deltas included) up to and including the next `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let e = self.next().await.unwrap_or_else(|| panic!("stream ended before {kind}; saw {seen:?}"));
            let done = e.event == kind;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Only the logged events (those with an id).
pub fn logged(events: &[SseEvent]) -> Vec<SseEvent> {
    events.iter().filter(|e| e.id.is_some()).cloned().collect()
}

pub fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}
