//! The providers and the health check.

use actix_web::{HttpResponse, web};
use panel_actors::registry::{Providers, Stats};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.registry.send(Stats).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "provider": state.provider,
        "sessions": stats.sessions,
        "sessions_running": stats.running,
        "gateways": stats.gateways,
        "subscribers": stats.subscribers,
        "event_streams": state.streams.load(std::sync::atomic::Ordering::Relaxed),
    })))
}

/// Every provider on offer, with its models, default, cache TTLs and keep-warm modes.
pub async fn providers(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let providers = state.registry.send(Providers).await?;
    Ok(HttpResponse::Ok().json(json!({ "providers": providers, "default": state.provider.name })))
}
