//! `POST /api/sessions/{id}/invites` (`{"role": "speaker" | "watcher",
//! "seat"?}` → 201 `{"id", "url", "role", "seat"?, …}`), `GET` (the list)
//! and `DELETE …/invites/{iid}` (revoke, 204): links that let someone
//! watch one session, or speak in it, without the token.
//!
//! Invariants:
//! - Only a server with `--token` has invites (`409 invites-need-token`
//!   otherwise), and only the token holder reaches these routes: the
//!   guard's table gives invitees none of them.
//! - The secret appears in the create answer's `url` and nowhere else: not
//!   in the list, not in a log line, not in an error.
//! - The url is `http://<Host>/?invite=SECRET#/s/<id>`: the guard trades the
//!   query for a cookie and drops it from the address bar; the fragment,
//!   which browsers keep across that redirect, opens the session's chat.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use panel_actors::floor::{check_seat_named, seat_taken};
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::registry::Detail;
use panel_actors::roster::Library;
use panel_actors::session::SessionError;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, session_id};
use crate::error::ApiError;
use crate::invite::{InviteError, Invites, Role};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    role: String,
    seat: Option<String>,
}

/// The invite store and the session, once both are known to exist. The
/// store is there only on a server with a token.
fn open(req: &HttpRequest, state: &AppState, id: &str) -> Result<(web::Data<Invites>, SessionId), ApiError> {
    let invites = req.app_data::<web::Data<Invites>>().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invites-need-token",
            "invites need a server started with --token: without one, nobody beyond this machine can be let in",
        )
    })?;
    let id = session_id(id)?;
    if !state.directory.contains(&id) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "session-not-found", format!("no session {id}")));
    }
    Ok((invites, id))
}

fn saved(e: InviteError) -> ApiError {
    match e {
        InviteError::NoRandomness => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-randomness",
            "the system gave no randomness for a secret",
        ),
        InviteError::Save(source) => {
            log::error!("invites could not be saved: {source}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "invites-unsaved",
                "the session's invites could not be saved",
            )
        }
    }
}

/// A character may not join under a seat an invite of this session fixes:
/// its holder's lines would pass for the character, and be refused.
pub fn refuse_join_under_an_invites_seat(
    invites: Option<&Invites>,
    roster: &Library,
    session: &SessionId,
    character: &CharacterId,
) -> Result<(), ApiError> {
    let Some(invites) = invites else { return Ok(()) };
    let roster = roster.current();
    // One the roster does not hold is the session's to judge.
    let Some(joiner) = roster.get(character) else { return Ok(()) };
    let listed = invites.list(session);
    match seat_taken(joiner, listed.iter().filter_map(|l| l.seat.as_deref())) {
        Some(seat) => Err(SessionError::SeatTaken { name: joiner.name.clone(), seat: seat.to_owned() }.into()),
        None => Ok(()),
    }
}

/// The invite's seat, trimmed, checked as a floor line's would be against
/// the cast on stage now: an invite must not be fixed to a name its holder
/// could never speak under.
async fn seat(
    state: &AppState,
    session: &SessionId,
    seat: Option<String>,
    role: Role,
) -> Result<Option<String>, ApiError> {
    let Some(seat) = seat else { return Ok(None) };
    if role != Role::Speaker {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad-seat", "only a speaker's invite names a seat"));
    }
    let detail = state.registry.send(Detail(session.clone())).await??;
    let on_stage = detail.summary.on_stage.iter().map(|p| (p.id.as_str(), p.name.as_str()));
    let seat = check_seat_named(&seat, on_stage)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad-seat", e.to_string()))?;
    Ok(Some(seat))
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let (invites, session) = open(&req, &state, &id)?;
    let CreateBody { role, seat: wanted } = body.into_inner();
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-role", "an invite's role is \"speaker\" or \"watcher\"")
    })?;
    let seat = seat(&state, &session, wanted, role).await?;
    // The host the token holder addressed: the invitee reaches it the same way.
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost").to_owned();
    let made = session.clone();
    let (listing, secret) = web::block(move || invites.create(&made, role, seat))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the invite was not made"))?
        .map_err(saved)?;
    let url = format!("http://{host}/?invite={secret}#/s/{session}");
    let mut answer = serde_json::to_value(&listing).unwrap_or_default();
    answer["url"] = json!(url);
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(answer))
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (invites, session) = open(&req, &state, &id)?;
    Ok(HttpResponse::Ok().json(json!({ "invites": invites.list(&session) })))
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, invite) = path.into_inner();
    let (invites, session) = open(&req, &state, &id)?;
    let found = web::block(move || invites.revoke(&session, &invite))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the invite was not revoked"))?
        .map_err(saved)?;
    if !found {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "invite-not-found", "this session has no such invite"));
    }
    Ok(HttpResponse::NoContent().finish())
}
