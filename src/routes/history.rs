//! `GET /api/sessions/{id}/history[?since=N]`: a session's logged events in
//! one response, `{"session", "last_seq", "events": [...]}`, for a browser
//! that opens a long session (DESIGN: the log is the truth; the stream then
//! carries on from `last_seq`, so nothing is missed or shown twice).
//!
//! Invariants: the events are the log's own lines, byte for byte and in
//! order, so the page sees exactly what the stream would have sent; only
//! whole lines are served (a line being written has no newline yet, and is
//! left for the stream); each line is checked to be JSON with a seq before
//! it is served, so one bad line is a clear error, never a broken array. The
//! log is read without opening it for writing, on the blocking pool, and the
//! events are not re-serialised (a 1,000-turn log is a few megabytes).

use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use panel_actors::event_log::{self, LogError};
use panel_actors::id::SessionId;
use serde::Deserialize;

use super::{AppState, session_id};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only the events after this seq (a page catching up after a gap).
    since: Option<u64>,
}

/// The one field read from each line; the rest is only checked to be JSON.
#[derive(Deserialize)]
struct Seq {
    seq: u64,
}

pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&id)?;
    let logs = state.logs.clone();
    let since = query.since.unwrap_or(0);
    let body = web::block(move || history(&logs, &id, since))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log-unreadable", e.to_string()))??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(body))
}

/// The response body, built from the log's whole lines after `since`.
fn history(logs: &std::path::Path, id: &SessionId, since: u64) -> Result<String, ApiError> {
    let path = event_log::events_path(logs, id);
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LogError::NotFound(id.clone()).into()),
        Err(e) => {
            log::warn!("session {id}: cannot read {}: {e}", path.display());
            return Err(unreadable(id, "cannot be read"));
        }
        Ok(b) => b,
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&bytes[..whole]).map_err(|_| unreadable(id, "is not UTF-8"))?;
    let mut body = String::with_capacity(text.len() + 64);
    body.push_str(&format!("{{\"session\":\"{}\",\"events\":[", id.as_str()));
    let mut last = 0;
    let mut first = true;
    for (n, line) in text.split('\n').enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let seq = serde_json::from_str::<Seq>(line)
            .map_err(|e| unreadable(id, &format!("has a bad line {}: {e}", n + 1)))?
            .seq;
        last = last.max(seq);
        if seq <= since {
            continue;
        }
        if !first {
            body.push(',');
        }
        first = false;
        body.push_str(line);
    }
    body.push_str(&format!("],\"last_seq\":{last}}}"));
    Ok(body)
}

fn unreadable(id: &SessionId, what: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log-unreadable", format!("the log of session {id} {what}"))
}
