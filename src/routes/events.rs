//! `GET /api/sessions/{id}/events`: the session's events as server-sent events.
//!
//! `id:` is the event's seq, `event:` its kind, `data:` its JSON. With
//! `Last-Event-ID` (or `?since=N`; `since=0` is the whole session) the
//! stream replays exactly what came after, then goes live; without either it
//! is live only. Frames come pre-built from the gateway, so every subscriber
//! is sent the same bytes, one chunk per event. The body is never compressed
//! or buffered.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::Stream;
use panel_actors::event_log;
use panel_actors::gateway::{Frame, Replay, Subscribe, Subscription, Unsubscriber};
use panel_actors::id::SessionId;
use panel_actors::registry::GatewayOf;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, interval_at};

use super::{AppState, session_id};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct Since {
    since: Option<u64>,
    /// `1` (or `true`): add `presence` frames, who is here.
    presence: Option<String>,
}

impl Since {
    pub fn since(&self) -> Option<u64> {
        self.since
    }

    pub fn presence(&self) -> bool {
        flag(self.presence.as_deref())
    }
}

/// A query flag: `1` or `true`.
pub fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true"))
}

/// The resume point: `Last-Event-ID` (sent by EventSource on reconnect) wins
/// over `?since`, which is how a fresh page asks for history.
pub fn resume_point(req: &HttpRequest, since: Option<u64>) -> Result<Option<u64>, ApiError> {
    match req.headers().get("last-event-id") {
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse().ok()).map(Some).ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "bad-last-event-id",
                "Last-Event-ID must be an event seq",
            )
        }),
        None => Ok(since),
    }
}

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Since>,
) -> Result<HttpResponse, ApiError> {
    let since = resume_point(&req, query.since)?;
    let (replay, subscription) = subscribe(&state, &session_id(&id)?, since, query.presence()).await?;
    let mut body = SseBody::new(replay, subscription, state.keep_alive);
    body.count = Some(super::StreamCount::new(&state.streams));
    Ok(event_stream(body))
}

/// An event-stream response: never compressed, cached or buffered by a proxy.
pub fn event_stream(body: impl Stream<Item = Result<Bytes, Infallible>> + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header(CacheControl(vec![CacheDirective::NoCache, CacheDirective::NoStore]))
        .insert_header(("x-accel-buffering", "no"))
        .insert_header((header::CONNECTION, "keep-alive"))
        .streaming(body)
}

/// Subscribes to a session's gateway and resolves its replay into frames,
/// reading the log on the blocking pool when the gateway does not remember
/// that far back. A gateway retired between the lookup and the subscription
/// (its last watcher left just then) is looked up again: the registry has
/// let go of it, so the next lookup gives a live one. Each retry needs a new
/// such coincidence, so a few are plenty.
pub async fn subscribe(
    state: &AppState,
    id: &SessionId,
    since: Option<u64>,
    presence: bool,
) -> Result<(Vec<Frame>, Subscription), ApiError> {
    const TRIES: usize = 4;
    let mut tries = 1;
    let subscription = loop {
        let gateway = state.registry.send(GatewayOf(id.clone())).await??;
        match gateway.send(Subscribe { since, presence }).await {
            Ok(s) => break s,
            Err(_) if tries < TRIES => tries += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let replay = match subscription.replay {
        Replay::Nothing => Vec::new(),
        Replay::Frames(ref frames) => frames.clone(),
        Replay::FromLog { since } => {
            let (logs, id) = (state.logs.clone(), id.clone());
            let events = web::block(move || event_log::read_after(&logs, &id, since))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log-unreadable", e.to_string()))??;
            events.iter().map(|l| Frame::event(l)).collect()
        }
    };
    Ok((replay, subscription))
}

/// The SSE body: a greeting, the replay, then live frames and keep-alives.
/// Every event goes out as one chunk, the very bytes the gateway framed. It
/// ends when the gateway drops the subscription (the subscriber fell
/// behind, or the server is shutting down); EventSource then reconnects.
pub struct SseBody {
    greeted: bool,
    replay: std::vec::IntoIter<Frame>,
    live: mpsc::Receiver<Frame>,
    /// The last event sent; live events up to it came in the replay too.
    sent: u64,
    keep_alive: Interval,
    _guard: Unsubscriber,
    /// Counted among the open event streams while it lives.
    pub count: Option<super::StreamCount>,
}

impl SseBody {
    pub fn new(replay: Vec<Frame>, subscription: Subscription, every: Duration) -> Self {
        let every = every.max(Duration::from_millis(10));
        Self {
            greeted: false,
            replay: replay.into_iter(),
            live: subscription.live,
            sent: 0,
            keep_alive: interval_at(Instant::now() + every, every),
            _guard: subscription.guard,
            count: None,
        }
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.greeted {
            self.greeted = true;
            // `retry` sets EventSource's reconnect delay; the comment gets the
            // headers and a first chunk out at once.
            return Poll::Ready(Some(Ok(Bytes::from_static(b"retry: 1000\n: panel\n\n"))));
        }
        if let Some(frame) = self.replay.next() {
            self.sent = frame.seq.unwrap_or(self.sent);
            return Poll::Ready(Some(Ok(frame.sse)));
        }
        loop {
            match self.live.poll_recv(cx) {
                Poll::Ready(Some(frame)) => match frame.seq {
                    Some(seq) if seq <= self.sent => continue,
                    Some(seq) => {
                        self.sent = seq;
                        return Poll::Ready(Some(Ok(frame.sse)));
                    }
                    None => return Poll::Ready(Some(Ok(frame.sse))),
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        if self.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
        }
        Poll::Pending
    }
}
