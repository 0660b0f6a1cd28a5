//! REST for sessions: create, list, inspect, say, change the cast, close,
//! continue or branch, fork, and stop / start one session's actor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::BTreeMap;

use panel_actors::event::{Carry, KeepWarm, StudyTag};
use panel_actors::id::CharacterId;
use panel_actors::provider::CacheTtl;
use panel_actors::registry::{
    CloseSession, Configure, Continue, Crash, Create, Detail, Fork, List, StartActor, StopActor,
};
use panel_actors::session::{CastChange, ChangeCast, Say};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, ask_session, session_id};
use crate::error::ApiError;
use crate::invite::Invites;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    cast: Vec<CharacterId>,
    title: Option<String>,
    depth: Option<u8>,
    /// A provider from `GET /api/providers` (default: the server's).
    provider: Option<String>,
    /// One of that provider's models (default: its default model).
    model: Option<String>,
    cache_ttl: Option<CacheTtl>,
    keep_warm: Option<KeepWarm>,
    /// The sampling seed (default: a fresh one, recorded in `session-open`).
    seed: Option<u64>,
    /// A study's session: `{id, condition, repeat}` (set by `panel study`).
    study: Option<StudyTag>,
    /// Prompt files replacing the server's for this session, by file name
    /// (a study condition's `prompts`).
    prompts: Option<BTreeMap<String, String>>,
}

/// A study tag a reader can trust: short, printable names, a repeat from 1.
fn check_study(tag: &StudyTag) -> Result<(), ApiError> {
    let printable = |s: &str| !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control);
    if !(printable(&tag.id) && printable(&tag.condition)) || tag.repeat == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-study",
            "a study tag needs an id and a condition (1–200 printable characters) and a repeat from 1",
        ));
    }
    Ok(())
}

pub async fn create(state: web::Data<AppState>, body: web::Json<CreateBody>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title-too-long",
            "a title has at most 200 characters",
        ));
    }
    if let Some(tag) = &body.study {
        check_study(tag)?;
    }
    let create = Create {
        seed: body.seed,
        study: body.study,
        prompts: body.prompts,
        title: body.title,
        depth: body.depth,
        provider: body.provider,
        model: body.model,
        cache_ttl: body.cache_ttl,
        keep_warm: body.keep_warm,
        ..Create::new(body.cast)
    };
    let info = state.registry.send(create).await??;
    Ok(HttpResponse::Created().json(info))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    keep_warm: Option<KeepWarm>,
}

/// Changes a running session's settings (those that may change: keep-warm).
pub async fn settings(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let info = state.registry.send(Configure { id, keep_warm: body.keep_warm }).await??;
    Ok(HttpResponse::Ok().json(info))
}

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.registry.send(List).await?))
}

/// The session's detail; for a request let in by an invite, also what that
/// invite allows (`"you": {"role", "seat"?}`), so a page can offer only that.
pub async fn detail(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let detail = state.registry.send(Detail(id)).await??;
    let Some(grant) = crate::invite::grant(&req) else { return Ok(HttpResponse::Ok().json(detail)) };
    let mut value = serde_json::to_value(detail)
        .map_err(|e| ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let you = match &grant.seat {
        Some(seat) => serde_json::json!({ "role": grant.role, "seat": seat }),
        None => serde_json::json!({ "role": grant.role }),
    };
    value["you"] = you;
    Ok(HttpResponse::Ok().json(value))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SayBody {
    text: String,
    to: Option<String>,
    /// Who on the floor is speaking (a named seat).
    seat: Option<String>,
}

pub async fn say(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SayBody>,
) -> Result<HttpResponse, ApiError> {
    let SayBody { text, to, seat } = body.into_inner();
    // A speaker invited under a seat speaks as that seat, whatever it asks.
    let seat = crate::invite::grant(&req).and_then(|g| g.seat).or(seat);
    let accepted = ask_session(&state.registry, &session_id(&id)?, Say { text, to, seat }).await??;
    Ok(HttpResponse::Accepted().json(accepted))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastBody {
    add: Option<CharacterId>,
    retire: Option<CharacterId>,
}

pub async fn cast(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<CastBody>,
) -> Result<HttpResponse, ApiError> {
    let session = session_id(&id)?;
    let change = match body.into_inner() {
        CastBody { add: Some(c), retire: None } => CastChange::Add(c),
        CastBody { add: None, retire: Some(c) } => CastChange::Retire(c),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-cast-change",
                "send exactly one of {\"add\": id} or {\"retire\": id}",
            ));
        }
    };
    if let CastChange::Add(character) = &change {
        let invites = req.app_data::<web::Data<Invites>>().map(|i| &***i);
        super::invites::refuse_join_under_an_invites_seat(invites, &state.roster, &session, character)?;
    }
    let accepted = ask_session(&state.registry, &session, ChangeCast(change)).await??;
    Ok(HttpResponse::Accepted().json(accepted))
}

pub async fn close(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let summary = state.registry.send(CloseSession(session_id(&id)?)).await??;
    Ok(HttpResponse::Ok().json(summary))
}

pub async fn fork(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let info = state.registry.send(Fork(session_id(&id)?)).await??;
    Ok(HttpResponse::Created().json(info))
}

/// `{"at_turn"?: N, "carry"?: "transcript" | "recap"}`; an empty body takes both defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinueBody {
    at_turn: Option<u32>,
    #[serde(default)]
    carry: Carry,
}

/// Continues a session fresh (or branches it from an earlier turn).
pub async fn continue_session(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let body: ContinueBody = if body.iter().all(u8::is_ascii_whitespace) {
        ContinueBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-json", e.to_string()))?
    };
    let info = state.registry.send(Continue { id, at_turn: body.at_turn, carry: body.carry }).await??;
    Ok(HttpResponse::Created().json(info))
}

pub async fn stop_actor(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    state.registry.send(StopActor(id.clone())).await??;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "actor": "stopped" })))
}

pub async fn start_actor(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let info = state.registry.send(StartActor(session_id(&id)?)).await??;
    Ok(HttpResponse::Ok().json(info))
}

pub async fn panic_actor(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if !state.debug_routes {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-such-route",
            "debug routes are off (start with --debug-routes)",
        ));
    }
    state.registry.send(Crash(session_id(&id)?)).await??;
    Ok(HttpResponse::Accepted().json(json!({ "panicking": true })))
}
