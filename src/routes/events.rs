//! `GET /api/sessions/{id}/events`: the session's events as server-sent events.
//!
//! `id:` is the event's seq, `event:` its kind, `data:` its JSON. With
//! `Last-Event-ID` (or `?since=N`; `since=0` is the whole session) the
//! stream replays exactly what came after, then goes live; without either it
//! is live only. Frames come pre-built from the gateway, so every subscriber
//! is sent the same bytes. The body is never compressed or buffered.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::Stream;
use panel_actors::gateway::{Frame, Subscribe};
use panel_actors::registry::GatewayOf;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, interval_at};

use super::{AppState, session_id};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct Since {
    since: Option<u64>,
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
    let gateway = state.registry.send(GatewayOf(session_id(&id)?)).await??;
    let subscription = gateway.send(Subscribe { since }).await??;
    let body = SseBody::new(subscription.replay, subscription.live, state.keep_alive);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header(CacheControl(vec![CacheDirective::NoCache, CacheDirective::NoStore]))
        .insert_header(("x-accel-buffering", "no"))
        .insert_header((header::CONNECTION, "keep-alive"))
        .streaming(body))
}

/// The SSE body: a greeting, the replay, then live frames and keep-alives.
/// It ends when the gateway drops the subscription (the subscriber fell
/// behind, or the server is shutting down); EventSource then reconnects.
pub struct SseBody {
    greeted: bool,
    replay: std::vec::IntoIter<Frame>,
    live: mpsc::Receiver<Frame>,
    keep_alive: Interval,
    /// The rest of the frame being written: its shared JSON, then its end.
    rest: Vec<Bytes>,
}

impl SseBody {
    pub fn new(replay: Vec<Frame>, live: mpsc::Receiver<Frame>, every: Duration) -> Self {
        let every = every.max(Duration::from_millis(10));
        Self {
            greeted: false,
            replay: replay.into_iter(),
            live,
            keep_alive: interval_at(Instant::now() + every, every),
            rest: Vec::with_capacity(2),
        }
    }
}

impl SseBody {
    /// Returns the frame's first part and keeps the others for the next polls.
    fn start(&mut self, frame: Frame) -> Bytes {
        self.rest.push(Bytes::from_static(Frame::END));
        self.rest.push(frame.json);
        frame.prefix
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
        if let Some(part) = self.rest.pop() {
            return Poll::Ready(Some(Ok(part)));
        }
        if let Some(frame) = self.replay.next() {
            return Poll::Ready(Some(Ok(self.start(frame))));
        }
        match self.live.poll_recv(cx) {
            Poll::Ready(Some(frame)) => return Poll::Ready(Some(Ok(self.start(frame)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if self.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
        }
        Poll::Pending
    }
}
