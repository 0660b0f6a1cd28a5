//! Errors at the HTTP boundary: every one is a status code and a JSON body
//! `{"error":{"code":…,"message":…}}`, with a stable `code` scripts can match.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use panel_actors::continuation::CarryError;
use panel_actors::counterfactual::ReplayError;
use panel_actors::id::InvalidId;
use panel_actors::registry::RegistryError;
use panel_actors::session::SessionError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self.body())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-id", e.to_string())
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::QueueFull(_) | SessionError::CastQueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            SessionError::ContextFull { .. } => StatusCode::CONFLICT,
            SessionError::UnknownProvider(_) => StatusCode::BAD_REQUEST,
            SessionError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::Closed | SessionError::Log(panel_actors::event_log::LogError::Locked(_)) => {
                StatusCode::CONFLICT
            }
            SessionError::Log(_) | SessionError::Replay(_) | SessionError::Context(_) | SessionError::Panicked(_) => {
                log::error!("{e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let (status, code) = match &e {
            RegistryError::NotFound(_) => (StatusCode::NOT_FOUND, "session-not-found"),
            RegistryError::ActorStopped(_) => (StatusCode::CONFLICT, "actor-stopped"),
            RegistryError::AlreadyRunning(_) => (StatusCode::CONFLICT, "actor-running"),
            RegistryError::Closed(_) => (StatusCode::CONFLICT, "session-closed"),
            RegistryError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "actor-unavailable"),
            // Answered as the error that stopped the actor would have been.
            RegistryError::Failed { code: "log-locked", .. } => (StatusCode::CONFLICT, "log-locked"),
            RegistryError::Failed { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, *code),
            RegistryError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            RegistryError::Carry(CarryError::NothingToCarry) => (StatusCode::CONFLICT, "nothing-to-continue"),
            RegistryError::Carry(CarryError::NoSuchTurn { .. }) => (StatusCode::BAD_REQUEST, "bad-turn"),
            RegistryError::Carry(_) => (StatusCode::INTERNAL_SERVER_ERROR, "carry-failed"),
            // The provider's own refusal keeps its meaning (context-full, overloaded, …).
            RegistryError::Recap(m) => {
                (StatusCode::BAD_GATEWAY, if m.code == "context-full" { "context-full" } else { "recap-failed" })
            }
            RegistryError::Replay(_) => {
                let RegistryError::Replay(inner) = e else { unreachable!() };
                return inner.into();
            }
            RegistryError::Session(_) => {
                let RegistryError::Session(inner) = e else { unreachable!() };
                return inner.into();
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        let status = match &e {
            ReplayError::TurnInFlight(_) | ReplayError::TurnAborted(_) => StatusCode::CONFLICT,
            ReplayError::NotFound(_) | ReplayError::Log(panel_actors::event_log::LogError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            ReplayError::Rebuild(_) | ReplayError::Log(_) | ReplayError::Unavailable(_) => {
                log::error!("{e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<panel_actors::event_log::LogError> for ApiError {
    fn from(e: panel_actors::event_log::LogError) -> Self {
        RegistryError::from(e).into()
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "actor-unavailable", format!("the actor did not answer: {e}"))
    }
}

/// Maps the JSON extractor's failures (malformed, wrong type, too large)
/// into the same error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", err.to_string())
        }
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad-content-type",
            "send the body as JSON with Content-Type: application/json",
        ),
        E::Deserialize(d) => ApiError::new(StatusCode::BAD_REQUEST, "bad-json", d.to_string()),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "bad-request", err.to_string()),
    };
    api.into()
}

/// Query-string failures in the same shape.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-query", err.to_string()).into()
}

/// Path failures in the same shape.
pub fn path_error(err: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-path", err.to_string()).into()
}
