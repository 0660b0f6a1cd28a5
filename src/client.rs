//! A small client of panel's own API, for the commands that talk to a
//! server (`panel tail`, `panel run`): JSON requests with the server's error
//! shape turned into messages, and a session's event stream that reconnects
//! by itself.
//!
//! The stream yields each logged event once, in order: after a dropped
//! connection (a server restart, an actor restart, a network blip) it
//! reconnects with `Last-Event-ID` set to the last seq it delivered, and
//! drops anything at or below it, so a consumer never sees a gap or a
//! duplicate. Typing deltas (`speak-delta`) pass through as they come and are
//! not replayed.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use panel_actors::provider::sse::SseDecoder;
use serde_json::Value;

/// One item of a session's stream.
#[derive(Debug, Clone)]
pub enum Streamed {
    /// A logged event: its JSON as logged, and parsed.
    Event { json: String, value: Value },
    /// A typing delta (not logged).
    Delta(Value),
    /// Who is here: the seats connected and the other watchers (not logged).
    Presence(Value),
    /// The connection dropped; reconnecting after this wait.
    Reconnecting(Duration),
}

/// The server answered with an error; its code lets a caller act on it
/// (`panel run` continues a session refused as `context-full`).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct Refused {
    pub what: String,
    pub code: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    client: awc::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        // No overall timeout: an event stream is open for as long as it lives.
        let client = awc::Client::builder().disable_timeout().finish();
        Self { base: base.trim_end_matches('/').to_owned(), token, client }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        let req = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.insert_header(("authorization", format!("Bearer {t}"))),
            None => req,
        }
    }

    async fn answer(
        &self,
        what: &str,
        res: Result<
            awc::ClientResponse<
                impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
            >,
            awc::error::SendRequestError,
        >,
    ) -> anyhow::Result<Value> {
        let mut res = res.map_err(|e| anyhow!("{what}: cannot reach {}: {e}", self.base))?;
        let body = res.body().limit(64 << 20).await.with_context(|| what.to_owned())?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !res.status().is_success() {
            let message = value["error"]["message"].as_str().map_or_else(|| res.status().to_string(), str::to_owned);
            let code = value["error"]["code"].as_str().unwrap_or_default().to_owned();
            return Err(Refused { what: what.to_owned(), code, message }.into());
        }
        Ok(value)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let res = self.request(awc::http::Method::GET, path).timeout(Duration::from_secs(60)).send().await;
        self.answer(&format!("GET {path}"), res).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let res = self.request(awc::http::Method::POST, path).timeout(Duration::from_secs(600)).send_json(body).await;
        self.answer(&format!("POST {path}"), res).await
    }

    /// Raw bytes of a file the server serves (e.g. `/logs/ID/events.jsonl`).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let mut res = self
            .request(awc::http::Method::GET, path)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        if !res.status().is_success() {
            bail!("GET {path}: {}", res.status());
        }
        let body = res.body().limit(256 << 20).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The SSE stream at `path`, each event's kind and JSON handed to `each`,
    /// until one of kind `last` has been (a stream that ends before it is an
    /// error: what was asked for did not finish).
    pub async fn until(&self, path: &str, last: &str, mut each: impl FnMut(&str, &Value)) -> anyhow::Result<()> {
        let mut res = self
            .request(awc::http::Method::GET, path)
            .insert_header(("accept", "text/event-stream"))
            .send()
            .await
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        if !res.status().is_success() {
            bail!("GET {path}: {}", res.status());
        }
        let mut decoder = SseDecoder::new();
        while let Some(chunk) = res.next().await {
            let chunk = chunk.map_err(|e| anyhow!("GET {path}: {e}"))?;
            for message in decoder.feed(&chunk).map_err(|_| anyhow!("an event line too long"))? {
                let Ok(value) = serde_json::from_str::<Value>(&message.data) else { continue };
                each(&message.event, &value);
                if message.event == last {
                    return Ok(());
                }
            }
        }
        bail!("GET {path}: the stream ended before its {last}")
    }

    /// Speaks each line of `lines` into session `id` from `seat`, over the
    /// session's WebSocket, and hands `refused` every line the server did
    /// not take, with why. The socket opens at once and is kept open while
    /// nobody types — its pings answered, a dropped one opened again — so
    /// the seat counts as here from the start and stays so.
    pub async fn speak(
        &self,
        id: &str,
        seat: &str,
        mut lines: tokio::sync::mpsc::Receiver<String>,
        mut refused: impl FnMut(&str, &str),
    ) {
        let scheme = if self.base.starts_with("https:") { "wss" } else { "ws" };
        let host = self.base.split_once("://").map_or(self.base.as_str(), |(_, rest)| rest);
        let url = format!(
            "{scheme}://{host}/api/sessions/{id}/ws?events=none&seat={}",
            percent_encoding::utf8_percent_encode(seat, percent_encoding::NON_ALPHANUMERIC)
        );
        let connect = || async {
            let mut req = self.client.ws(url.as_str());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            req.connect().await.map(|(_, framed)| framed).map_err(|e| format!("cannot reach the session: {e}"))
        };
        let mut socket = connect().await.ok();
        let mut n = 0u64;
        // Between a socket that went while idle and the next try: a server
        // that lets in and at once closes is not hammered.
        let mut backoff = Duration::from_millis(250);
        loop {
            let next = match socket.as_mut() {
                Some(framed) => tokio::select! {
                    line = lines.recv() => Idle::Line(line),
                    frame = framed.next() => Idle::Frame(frame),
                },
                None => Idle::Line(lines.recv().await),
            };
            let line = match next {
                Idle::Line(Some(line)) => line,
                Idle::Line(None) => break,
                Idle::Frame(frame) => {
                    if !keep(socket.as_mut(), frame).await {
                        drop(socket.take());
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        socket = connect().await.ok();
                    }
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            n += 1;
            if socket.is_none() {
                match connect().await {
                    Ok(framed) => socket = Some(framed),
                    Err(why) => {
                        refused(&line, &why);
                        continue;
                    }
                }
            }
            let Some(framed) = socket.as_mut() else { continue };
            match say(framed, &line, n).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(Unsaid::Refused(why)) => refused(&line, &why),
                Err(Unsaid::Dropped) => {
                    refused(&line, "the connection dropped; type it again");
                    socket = None;
                }
            }
        }
    }

    /// The streams of `ids` from after `since` (each), reconnecting as
    /// needed, delivered to `each` until it returns false or every session
    /// has closed. One session uses its own stream; several share one
    /// multiplexed connection (`/api/events`), resumed with the combined id.
    pub async fn follow(
        &self,
        ids: &[String],
        since: u64,
        mut each: impl FnMut(Streamed) -> bool,
    ) -> anyhow::Result<()> {
        let mut last: Vec<(String, u64)> = ids.iter().map(|id| (id.clone(), since)).collect();
        let mut done: Vec<String> = Vec::new();
        let mut wait = Duration::from_millis(250);
        loop {
            let position: Vec<String> = last.iter().map(|(id, seq)| format!("{id}:{seq}")).collect();
            let req = if let [(id, seq)] = last.as_slice() {
                let path = format!("/api/sessions/{id}/events?since={seq}&presence=1");
                let req = self.request(awc::http::Method::GET, &path);
                // The server prefers Last-Event-ID over `since`; both say the same.
                if *seq > 0 { req.insert_header(("last-event-id", seq.to_string())) } else { req }
            } else {
                let sessions = ids.join(",");
                let path =
                    format!("/api/events?sessions={sessions}&since={}&deltas=all&presence=1", position.join(","));
                self.request(awc::http::Method::GET, &path)
            };
            match req.insert_header(("accept", "text/event-stream")).send().await {
                Ok(res) if res.status() == awc::http::StatusCode::NOT_FOUND => {
                    bail!("no session {} on {}", ids.join(", "), self.base)
                }
                Ok(res) if res.status().is_client_error() => bail!("the server refused: {}", res.status()),
                Ok(mut res) if res.status().is_success() => {
                    let mut decoder = SseDecoder::new();
                    while let Some(chunk) = res.next().await {
                        let Ok(chunk) = chunk else { break };
                        wait = Duration::from_millis(250);
                        for message in decoder.feed(&chunk).map_err(|_| anyhow!("an event line too long"))? {
                            let Ok(value) = serde_json::from_str::<Value>(&message.data) else { continue };
                            let session = value["session"].as_str().unwrap_or_default().to_owned();
                            match message.event.as_str() {
                                "speak-delta" | "presence" => {
                                    let item = match message.event.as_str() {
                                        "presence" => Streamed::Presence(value),
                                        _ => Streamed::Delta(value),
                                    };
                                    if !each(item) {
                                        return Ok(());
                                    }
                                    continue;
                                }
                                "stream-error" => {
                                    // A session that does not exist, or has closed: nothing more from it.
                                    eprintln!("{session}: {}", value["message"].as_str().unwrap_or_default());
                                    if !done.contains(&session) {
                                        done.push(session);
                                    }
                                    if done.len() == ids.len() {
                                        return Ok(());
                                    }
                                    continue;
                                }
                                _ => {}
                            }
                            let Some(seq) = value["seq"].as_u64() else { continue };
                            let Some(at) = last.iter_mut().find(|(id, _)| *id == session) else { continue };
                            if seq <= at.1 {
                                continue;
                            }
                            at.1 = seq;
                            let closing = value["kind"] == "session-close";
                            if !each(Streamed::Event { json: message.data, value }) {
                                return Ok(());
                            }
                            if closing && !done.contains(&session) {
                                done.push(session);
                            }
                            if done.len() == ids.len() {
                                return Ok(());
                            }
                        }
                    }
                }
                // A server starting up, or an actor being restarted: try again.
                Ok(_) | Err(_) => {}
            }
            if !each(Streamed::Reconnecting(wait)) {
                return Ok(());
            }
            actix_web::rt::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

/// What came first while nobody was typing.
enum Idle {
    Line(Option<String>),
    Frame(Option<Result<awc::ws::Frame, awc::error::WsProtocolError>>),
}

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// Answers what the server sent between lines; false once the socket is gone.
async fn keep(socket: Option<&mut Socket>, frame: Option<Result<awc::ws::Frame, awc::error::WsProtocolError>>) -> bool {
    use futures_util::SinkExt as _;
    match (socket, frame) {
        (Some(framed), Some(Ok(awc::ws::Frame::Ping(p)))) => framed.send(awc::ws::Message::Pong(p)).await.is_ok(),
        (_, Some(Ok(awc::ws::Frame::Close(_))) | Some(Err(_)) | None) => false,
        _ => true,
    }
}

/// Why a line was not said.
enum Unsaid {
    /// The server refused it, saying why.
    Refused(String),
    /// The socket went before the line's answer came.
    Dropped,
}

/// Says line `n` and waits for its answer.
async fn say(framed: &mut Socket, line: &str, n: u64) -> Result<(), Unsaid> {
    use futures_util::SinkExt as _;
    let say = serde_json::json!({ "type": "say", "text": line, "id": n });
    framed.send(awc::ws::Message::Text(say.to_string().into())).await.map_err(|_| Unsaid::Dropped)?;
    loop {
        match framed.next().await {
            Some(Ok(awc::ws::Frame::Text(bytes))) => {
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if answer["id"] != n {
                    continue;
                }
                if answer["type"] == "error" {
                    return Err(Unsaid::Refused(answer["message"].as_str().unwrap_or("refused").to_owned()));
                }
                return Ok(());
            }
            other => {
                if !keep(Some(&mut *framed), other).await {
                    return Err(Unsaid::Dropped);
                }
            }
        }
    }
}
