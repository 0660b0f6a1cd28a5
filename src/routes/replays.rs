//! Replays of a session's turns (counterfactual turns):
//! `POST /api/sessions/{id}/replay` plays one turn again,
//! `GET /api/sessions/{id}/replays` lists them,
//! `GET /api/sessions/{id}/replays/{rid}` describes one (with the summary
//! of its turn), and `GET /api/sessions/{id}/replays/{rid}/events` streams
//! its log as SSE — live while it plays, with the same resume rules as a
//! session's stream (`Last-Event-ID`, or `?since=N`; `since=0` is all of it),
//! through the same gateway and framing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use panel_actors::counterfactual::ReplayRequest;
use panel_actors::counterfactual::book::{DescribeReplay, ListReplays, ReplayGateway};
use panel_actors::event::ReplayMode;
use panel_actors::event_log;
use panel_actors::gateway::{Frame, Replay, Subscribe};
use panel_actors::registry::StartReplay;
use serde::Deserialize;
use serde_json::json;

use super::events::{Since, SseBody, event_stream, resume_point};
use super::{AppState, session_id};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    turn: u32,
    #[serde(default)]
    mode: ReplayMode,
    n: Option<u32>,
    provider: Option<String>,
    model: Option<String>,
    depth: Option<u8>,
}

pub async fn start(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ReplayBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let b = body.into_inner();
    let ask = ReplayRequest {
        turn: b.turn,
        mode: b.mode,
        n: b.n.unwrap_or(1),
        provider: b.provider,
        model: b.model,
        depth: b.depth,
    };
    let listing = state.registry.send(StartReplay { id, ask }).await??;
    Ok(HttpResponse::Created().json(listing))
}

pub async fn list(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let replays = state.replays.send(ListReplays(id.clone())).await??;
    Ok(HttpResponse::Ok().json(json!({ "session": id, "replays": replays })))
}

pub async fn detail(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (id, rid) = path.into_inner();
    let session = session_id(&id)?;
    let (replay, summary) = state.replays.send(DescribeReplay { session, id: rid }).await??;
    Ok(HttpResponse::Ok().json(json!({ "replay": replay, "summary": summary })))
}

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<Since>,
) -> Result<HttpResponse, ApiError> {
    let (id, rid) = path.into_inner();
    let session = session_id(&id)?;
    let since = resume_point(&req, query.since())?;
    let (gateway, file) = state.replays.send(ReplayGateway { session: session.clone(), id: rid }).await??;
    let subscription = gateway.send(Subscribe { since, presence: false }).await?;
    let replay = match subscription.replay {
        Replay::Nothing => Vec::new(),
        Replay::Frames(ref frames) => frames.clone(),
        Replay::FromLog { since } => {
            let events = web::block(move || event_log::read_after_file(&file, &session, since))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log-unreadable", e.to_string()))??;
            events.iter().map(|l| Frame::event(l)).collect()
        }
    };
    let mut body = SseBody::new(replay, subscription, state.keep_alive);
    body.count = Some(super::StreamCount::new(&state.streams));
    Ok(event_stream(body))
}
