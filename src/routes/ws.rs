//! `GET /api/sessions/{id}/ws`: the browser's input channel.
//!
//! In: `{"type":"say","text":…,"to"?:…,"seat"?:…}` (`?seat=NAME` at connect
//! names the seat for every line that does not name its own), `{"type":"add","character":…}`,
//! `{"type":"retire","character":…}`, `{"type":"settings","keep_warm":…}`, each with an optional `"id"` echoed in
//! the answer. Out: `{"type":"ack",…}` or `{"type":"error","code":…,"message":…}`
//! per command, and the session's events as their bare JSON (the same JSON
//! as SSE `data:`), so a WebSocket-only client works too. `?since=N` replays
//! history first, as for SSE.
//!
//! A socket an invite opened (a speaker's: the guard lets no one else in)
//! may only say: its other commands are answered `invite-forbidden`, and the
//! socket is closed (policy, "the invite was revoked") when its invite is.

use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use bytestring::ByteString;
use futures_util::StreamExt as _;
use panel_actors::event::KeepWarm;
use panel_actors::floor::check_seat;
use panel_actors::gateway::{Attend, Attendance, Frame, Subscription};
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::registry::{Configure, Registry};
use panel_actors::session::{CastChange, ChangeCast, Say, SessionError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::{resume_point, subscribe};

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    since: Option<u64>,
    /// `none`: do not push the session's events (the client watches over SSE).
    events: Option<String>,
    /// The seat this connection speaks from, unless a message names its own.
    seat: Option<String>,
}
use super::{AppState, MAX_BODY, ask_session, session_id};
use crate::error::ApiError;
use crate::invite::{Grant, Invites};

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let since = resume_point(&req, query.since)?;
    // Resolve everything that can fail before upgrading, so failures are
    // ordinary HTTP errors. A browser that watches over SSE sends
    // `?events=none`: input only.
    let subscription = match query.events.as_deref() {
        Some("none") => {
            state.registry.send(panel_actors::registry::GatewayOf(id.clone())).await??;
            None
        }
        _ => Some(subscribe(&state, &id, since, false).await?),
    };
    // An empty `?seat=` is the anonymous floor, as no parameter is. A name
    // that could never be a seat is refused now; one that clashes with the
    // cast is refused with the line that uses it (the cast changes).
    // A speaker invited under a seat speaks as that seat, whatever it asks.
    let grant = crate::invite::grant(&req);
    let fixed = grant.as_ref().and_then(|g| g.seat.as_deref());
    let seat = fixed.or(query.seat.as_deref()).filter(|s| !s.trim().is_empty());
    let seat = seat.map(|s| check_seat(s, [])).transpose().map_err(SessionError::from)?;
    let gateway = state.registry.send(panel_actors::registry::GatewayOf(id.clone())).await??;
    let attendance = gateway.send(Attend { seat: seat.clone() }).await?;
    let (response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "not-a-websocket", e.to_string()))?;
    let messages = messages.max_frame_size(MAX_BODY).aggregate_continuations().max_continuation_size(MAX_BODY);
    let registry = state.registry.clone();
    let invites = req.app_data::<web::Data<Invites>>().cloned();
    let roster = state.roster.clone();
    let connection = Connection { id, registry, seat, grant, invites, roster, _attendance: attendance };
    actix_web::rt::spawn(run(connection, session, messages, subscription, state.keep_alive));
    Ok(response)
}

/// Who a WebSocket speaks for: one session, from one seat (or none).
struct Connection {
    id: SessionId,
    registry: Addr<Registry>,
    seat: Option<String>,
    /// The invite it came in by, if any: it may only speak.
    grant: Option<Grant>,
    /// The invites on file, whose seats no character may join under.
    invites: Option<web::Data<Invites>>,
    roster: std::sync::Arc<panel_actors::roster::Library>,
    /// Counts this connection in the session's presence while it lives.
    _attendance: Attendance,
}

async fn run(
    connection: Connection,
    mut session: actix_ws::Session,
    mut messages: actix_ws::AggregatedMessageStream,
    subscription: Option<(Vec<Frame>, Subscription)>,
    keep_alive: Duration,
) {
    let (replay, mut live, _guard) = match subscription {
        Some((replay, Subscription { live, guard, .. })) => (replay, Some(live), Some(guard)),
        None => (Vec::new(), None, None),
    };
    let mut sent = 0;
    for frame in replay {
        sent = frame.seq.unwrap_or(sent);
        if send_json(&mut session, frame.json).await.is_err() {
            return;
        }
    }
    let mut heartbeat = tokio::time::interval(keep_alive.max(Duration::from_millis(10)));
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    last_heard = Instant::now();
                    let answer = command(&connection, &text).await;
                    if session.text(answer.to_string()).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    let answer = error_reply(None, "bad-message", "send commands as JSON text frames");
                    if session.text(answer.to_string()).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                Some(Err(e)) => break Some(CloseReason { code: CloseCode::Policy, description: Some(e.to_string()) }),
            },
            frame = next_frame(&mut live) => match frame {
                // Already sent in the replay.
                Some(frame) if frame.seq.is_some_and(|seq| seq <= sent) => {}
                Some(frame) => {
                    sent = frame.seq.unwrap_or(sent);
                    if send_json(&mut session, frame.json).await.is_err() {
                        return;
                    }
                }
                // The gateway let go: this client fell behind, or the server is stopping.
                None => break Some(CloseReason { code: CloseCode::Again, description: Some("reconnect with ?since=<last seq>".into()) }),
            },
            () = revoked(connection.grant.as_ref()) => {
                break Some(CloseReason { code: CloseCode::Policy, description: Some("the invite was revoked".into()) });
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > keep_alive * 3 {
                    break Some(CloseReason { code: CloseCode::Away, description: Some("no answer to pings".into()) });
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(reason).await;
}

/// When the invite that opened this socket is revoked; never for the token holder.
async fn revoked(grant: Option<&Grant>) {
    match grant {
        Some(grant) => grant.revoked().await,
        None => std::future::pending().await,
    }
}

/// The next live frame, or never when the client did not subscribe.
async fn next_frame(
    live: &mut Option<tokio::sync::mpsc::Receiver<panel_actors::gateway::Frame>>,
) -> Option<panel_actors::gateway::Frame> {
    match live {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send_json(session: &mut actix_ws::Session, json: bytes::Bytes) -> Result<(), actix_ws::Closed> {
    match ByteString::try_from(json) {
        Ok(text) => session.text(text).await,
        Err(_) => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Command {
    Say {
        text: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        seat: Option<String>,
    },
    Add {
        character: CharacterId,
    },
    Retire {
        character: CharacterId,
    },
    Settings {
        keep_warm: Option<KeepWarm>,
    },
}

/// Runs one command and returns its answer.
async fn command(connection: &Connection, text: &str) -> Value {
    let mut value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error_reply(None, "bad-json", &e.to_string()),
    };
    let request_id = value.as_object_mut().and_then(|o| o.remove("id"));
    let command: Command = match serde_json::from_value(value) {
        Ok(c) => c,
        Err(e) => return error_reply(request_id, "bad-command", &e.to_string()),
    };
    if connection.grant.is_some() && !matches!(command, Command::Say { .. }) {
        return error_reply(
            request_id,
            "invite-forbidden",
            "an invite may speak here, not change the cast or settings",
        );
    }
    let result = run_command(connection, command).await;
    match result {
        Ok((kind, result)) => json!({ "type": "ack", "id": request_id, "for": kind, "result": result }),
        Err(e) => error_reply(request_id, e.code, &e.message),
    }
}

async fn run_command(connection: &Connection, command: Command) -> Result<(&'static str, Value), ApiError> {
    let Connection { id: session, registry, .. } = connection;
    match command {
        Command::Say { text, to, seat } => {
            let fixed = connection.grant.as_ref().and_then(|g| g.seat.clone());
            let seat = fixed.or(seat).or_else(|| connection.seat.clone());
            Ok(("say", to_value(ask_session(registry, session, Say { text, to, seat }).await??)))
        }
        Command::Add { character } => {
            let invites = connection.invites.as_deref().map(|i| &**i);
            super::invites::refuse_join_under_an_invites_seat(invites, &connection.roster, session, &character)?;
            let change = ChangeCast(CastChange::Add(character));
            Ok(("add", to_value(ask_session(registry, session, change).await??)))
        }
        Command::Retire { character } => {
            let change = ChangeCast(CastChange::Retire(character));
            Ok(("retire", to_value(ask_session(registry, session, change).await??)))
        }
        Command::Settings { keep_warm } => {
            let info = registry.send(Configure { id: session.clone(), keep_warm }).await??;
            Ok(("settings", to_value(info)))
        }
    }
}

fn to_value(result: impl serde::Serialize) -> Value {
    serde_json::to_value(result).unwrap_or_default()
}

fn error_reply(id: Option<Value>, code: &str, message: &str) -> Value {
    json!({ "type": "error", "id": id, "code": code, "message": message })
}
