//! `GET /api/sessions/{id}/dynamics`: the session's dynamics (per turn, per
//! character, per session) as JSON, computed by `panel_actors::dynamics`
//! from the log alone — the same numbers `panel data` and `panel report`
//! give. Works for open and closed sessions alike: the log is read without
//! opening it for writing (a torn final line of a live log is left out), on
//! the blocking pool.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use panel_actors::{dynamics, event_log};

use super::{AppState, session_id};
use crate::error::ApiError;

pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let logs = state.logs.clone();
    let figures = web::block(move || {
        event_log::read(&logs, &id).map(|logged| {
            let events: Vec<_> = logged.iter().map(|l| l.event.clone()).collect();
            dynamics::compute(&events)
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log-unreadable", e.to_string()))??;
    Ok(HttpResponse::Ok().json(figures))
}
