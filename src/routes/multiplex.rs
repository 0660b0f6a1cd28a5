//! `GET /api/events?sessions=A,B,…`: many sessions' events on one stream.
//!
//! Browsers allow six HTTP/1.1 connections per host; one EventSource per
//! tab starves the seventh tab. This stream carries every listed session at
//! once, so a browser needs one (its SharedWorker holds it for every tab),
//! and `panel tail` follows several sessions on one connection.
//!
//! - `event:` is the kind and `data:` the event's JSON exactly as for the
//!   single-session stream (it names its `session`).
//! - `id:` is the position of *every* listed session after this event:
//!   `A:12,B:7,C:0` (a session's seq, 0 for none yet). EventSource sends it
//!   back as `Last-Event-ID` when it reconnects; `?since=` takes the same
//!   form for a first connection. Each session then replays exactly what it
//!   logged after its own position and goes live: per session, no gap and
//!   no duplicate. A session missing from the position starts from 0.
//! - Replayed history is merged across sessions in the order it was logged
//!   (each session in seq order, sessions merged by timestamp); live events
//!   go out as they are logged.
//! - `?deltas=A,B` (or `all`) carries the typing deltas of those sessions
//!   (unnumbered, as ever). `?since=0` starts every session from its
//!   beginning (so does leaving a session out). `?directory=1` adds a `directory` event whenever
//!   any session's listing changes (opened, a turn, a cost, closed),
//!   coalesced to at most one per 300 ms, for live session lists.
//! - A listed session that does not exist, or is closed, gets one
//!   `stream-error` event (`{"session","code","message"}`); the others are
//!   unaffected.
//!
//! The same guard, bounded queues and slow-subscriber rule as the single
//! stream: if any of its sessions' gateways drops it (it fell behind), the
//! whole stream ends, and the client resumes from its combined id.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, SelectAll};
use futures_util::{Stream, StreamExt as _};
use panel_actors::gateway::{Frame, Unsubscriber};
use panel_actors::id::SessionId;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::events::{event_stream, flag, subscribe};
use super::{AppState, StreamCount};
use crate::error::ApiError;

/// Most sessions one stream may carry.
pub const MAX_SESSIONS: usize = 64;
/// Least time between two `directory` notes.
const DIRECTORY_EVERY: Duration = Duration::from_millis(300);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[serde(default)]
    sessions: String,
    since: Option<String>,
    deltas: Option<String>,
    /// `1` (or `true`): add `directory` notes.
    directory: Option<String>,
    /// `1` (or `true`): add each session's `presence` (who is here).
    presence: Option<String>,
    /// A client may repeat the stream's auth token here.
    #[allow(dead_code)]
    token: Option<String>,
    /// Or an invite's secret.
    #[allow(dead_code)]
    invite: Option<String>,
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn ids(list: &str, directory: bool) -> Result<Vec<SessionId>, ApiError> {
    let mut seen = HashSet::new();
    let ids: Vec<SessionId> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(SessionId::parse)
        .filter(|id| id.as_ref().map_or(true, |id| seen.insert(id.clone())))
        .collect::<Result<_, _>>()?;
    // A live session list may follow no session, only the directory.
    if ids.is_empty() && !directory {
        return Err(bad("no-sessions", "list the sessions to follow: ?sessions=ID,ID (or ask for ?directory=1)"));
    }
    if ids.len() > MAX_SESSIONS {
        return Err(bad("too-many-sessions", format!("at most {MAX_SESSIONS} sessions per stream")));
    }
    Ok(ids)
}

/// `A:12,B:7` → each session's position (`0` alone: every one from its start).
pub fn positions(text: &str) -> Result<Vec<(SessionId, u64)>, ApiError> {
    let wrong = || bad("bad-last-event-id", "the position must read ID:seq,ID:seq (or 0)");
    if text.trim() == "0" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (id, seq) = p.rsplit_once(':').ok_or_else(wrong)?;
            Ok((SessionId::parse(id).map_err(|_| wrong())?, seq.parse().map_err(|_| wrong())?))
        })
        .collect()
}

fn note(session: &SessionId, code: &str, message: String) -> Bytes {
    let data = json!({ "kind": "stream-error", "session": session, "code": code, "message": message });
    Bytes::from(format!("event: stream-error\ndata: {data}\n\n"))
}

/// When an event was logged, from its JSON, to merge replays in order.
fn logged_at(frame: &Frame) -> Option<chrono::DateTime<chrono::Utc>> {
    let json = std::str::from_utf8(&frame.json).ok()?;
    let start = json.find("\"ts\":\"")? + 6;
    let end = start + json[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&json[start..end]).ok().map(|t| t.to_utc())
}

/// Each session's history in its own log order (by `seq`: a clock that
/// stepped back must not reorder or drop anything), the sessions merged by
/// when their next event was logged, so a reader sees them roughly as they
/// happened.
fn interleave(frames: Vec<(usize, Frame)>) -> Vec<(usize, Frame)> {
    let mut queues: Vec<VecDeque<Frame>> = Vec::new();
    let total = frames.len();
    for (i, frame) in frames {
        if queues.len() <= i {
            queues.resize_with(i + 1, VecDeque::new);
        }
        queues[i].push_back(frame);
    }
    for queue in &mut queues {
        queue.make_contiguous().sort_by_key(|f| f.seq);
    }
    let mut merged = Vec::with_capacity(total);
    while let Some(i) =
        (0..queues.len()).filter(|&i| !queues[i].is_empty()).min_by_key(|&i| (queues[i].front().and_then(logged_at), i))
    {
        merged.push((i, queues[i].pop_front().expect("chosen queue is not empty")));
    }
    merged
}

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, ApiError> {
    let directory = flag(query.directory.as_deref());
    let presence = flag(query.presence.as_deref());
    let ids = ids(&query.sessions, directory)?;
    let header = req.headers().get("last-event-id").map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let at = match header.as_deref().or(query.since.as_deref()) {
        Some(text) => positions(text)?,
        None => Vec::new(),
    };
    let deltas: Option<HashSet<SessionId>> = match query.deltas.as_deref() {
        Some("all") => None,
        Some(list) => Some(list.split(',').filter_map(|s| SessionId::parse(s.trim()).ok()).collect()),
        None => Some(HashSet::new()),
    };

    let mut notes = Vec::new();
    let mut replay: Vec<(usize, Frame)> = Vec::new();
    let mut sources = Vec::new();
    let mut live: SelectAll<BoxStream<'static, (usize, Option<Frame>)>> = SelectAll::new();
    for id in ids {
        let since = at.iter().find(|(s, _)| *s == id).map_or(0, |(_, seq)| *seq);
        match subscribe(&state, &id, Some(since), presence).await {
            Ok((frames, subscription)) => {
                let i = sources.len();
                let closed = frames.last().is_some_and(|f| f.unnumbered.starts_with(b"event: session-close\n"));
                if closed {
                    notes.push(note(&id, "session-closed", format!("session {id} is closed: nothing more will come")));
                }
                replay.extend(frames.into_iter().map(|f| (i, f)));
                let rx = subscription.live;
                let frames =
                    stream::unfold(rx, move |mut rx| async move { rx.recv().await.map(|f| ((i, Some(f)), rx)) });
                live.push(frames.chain(stream::once(async move { (i, None) })).boxed());
                let wants_deltas = deltas.as_ref().is_none_or(|d| d.contains(&id));
                sources.push(Source { id, sent: since, deltas: wants_deltas, _guard: subscription.guard });
            }
            Err(e) => notes.push(note(&id, e.code, e.message)),
        }
    }
    let replay = interleave(replay);

    let body = Multi {
        sources,
        directory: directory.then(|| state.directory.changes()),
        keep_alive: state.keep_alive.max(Duration::from_millis(10)),
        _count: StreamCount::new(&state.streams),
    };
    Ok(event_stream(body.run(notes, replay, live)))
}

struct Source {
    id: SessionId,
    /// The last seq sent.
    sent: u64,
    deltas: bool,
    _guard: Unsubscriber,
}

struct Multi {
    sources: Vec<Source>,
    directory: Option<watch::Receiver<u64>>,
    keep_alive: Duration,
    _count: StreamCount,
}

enum Next {
    Frame(usize, Option<Frame>),
    /// The directory changed: a note is due.
    Directory,
    /// A due note's time has come.
    DirectoryDue,
    KeepAlive,
}

/// When the last `directory` note went out, and when the next is due.
struct Coalescing {
    last: tokio::time::Instant,
    due: Option<tokio::time::Instant>,
}

impl Multi {
    /// The `id:` after an event: every session's position.
    fn position(&self) -> String {
        let mut id = String::new();
        for (n, s) in self.sources.iter().enumerate() {
            if n > 0 {
                id.push(',');
            }
            id.push_str(&format!("{}:{}", s.id, s.sent));
        }
        id
    }

    /// The bytes for a frame of source `i`, if it is sent at all.
    fn framed(&mut self, i: usize, frame: &Frame) -> Option<Bytes> {
        let source = &mut self.sources[i];
        match frame.seq {
            Some(seq) if seq <= source.sent => None,
            Some(seq) => {
                source.sent = seq;
                let id = self.position();
                let mut buf = BytesMut::with_capacity(id.len() + 5 + frame.unnumbered.len());
                buf.put_slice(b"id: ");
                buf.put_slice(id.as_bytes());
                buf.put_u8(b'\n');
                buf.put_slice(&frame.unnumbered);
                Some(buf.freeze())
            }
            None if source.deltas || frame.presence => Some(frame.unnumbered.clone()),
            None => None,
        }
    }

    fn run(
        mut self,
        notes: Vec<Bytes>,
        replay: Vec<(usize, Frame)>,
        live: SelectAll<BoxStream<'static, (usize, Option<Frame>)>>,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> {
        let mut first = vec![Bytes::from_static(b"retry: 1000\n: panel\n\n")];
        first.extend(notes);
        for (i, frame) in &replay {
            first.extend(self.framed(*i, frame));
        }
        let head = stream::iter(first.into_iter().map(Ok));
        let tick = tokio::time::interval_at(tokio::time::Instant::now() + self.keep_alive, self.keep_alive);
        // A directory note is due at most once per DIRECTORY_EVERY: a burst of
        // changes waits for its deadline, while events keep flowing.
        let coalescing = Coalescing { last: tokio::time::Instant::now() - DIRECTORY_EVERY, due: None };
        let tail = stream::unfold((self, live, tick, coalescing), |(mut me, mut live, mut tick, mut dir)| async move {
            loop {
                let next = tokio::select! {
                    item = live.next(), if !live.is_empty() => match item {
                        Some((i, frame)) => Next::Frame(i, frame),
                        None => Next::KeepAlive,
                    },
                    changed = async {
                        match me.directory.as_mut() {
                            Some(rx) => rx.changed().await,
                            None => std::future::pending().await,
                        }
                    } => match changed {
                        Ok(()) => Next::Directory,
                        Err(_) => Next::KeepAlive,
                    },
                    _ = async {
                        match dir.due {
                            Some(due) => tokio::time::sleep_until(due).await,
                            None => std::future::pending().await,
                        }
                    } => Next::DirectoryDue,
                    _ = tick.tick() => Next::KeepAlive,
                };
                match next {
                    // A gateway let go of this stream (it fell behind, or the
                    // server is stopping): end it; the client resumes.
                    Next::Frame(_, None) => return None,
                    Next::Frame(i, Some(frame)) => {
                        if let Some(bytes) = me.framed(i, &frame) {
                            return Some((Ok(bytes), (me, live, tick, dir)));
                        }
                    }
                    Next::Directory => {
                        if let Some(rx) = me.directory.as_mut() {
                            rx.borrow_and_update();
                        }
                        dir.due.get_or_insert(dir.last + DIRECTORY_EVERY);
                    }
                    Next::DirectoryDue => {
                        dir.due = None;
                        dir.last = tokio::time::Instant::now();
                        let note = Bytes::from_static(b"event: directory\ndata: {\"kind\":\"directory\"}\n\n");
                        return Some((Ok(note), (me, live, tick, dir)));
                    }
                    Next::KeepAlive => {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (me, live, tick, dir)));
                    }
                }
            }
        });
        head.chain(tail)
    }
}
