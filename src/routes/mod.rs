//! The HTTP surface: REST for scripts, SSE for watchers, WebSocket for the
//! browser, and the static app (built in, or a `--static` folder).

mod dynamics;
mod embedded;
mod events;
mod history;
mod invites;
mod meta;
mod multiplex;
mod replays;
mod roster;
mod sessions;
mod ws;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::web;
use panel_actors::id::SessionId;
use panel_actors::provider::ProviderInfo;
use panel_actors::registry::{Lookup, Registry};
use panel_actors::roster::Library;
use panel_actors::session::Session;

use crate::error::{ApiError, json_error, path_error, query_error};

/// Largest JSON body accepted (a floor message is capped far below this).
pub const MAX_BODY: usize = 64 * 1024;

/// Shared by every handler.
pub struct AppState {
    pub registry: Addr<Registry>,
    /// The logs folder, for replays older than a gateway remembers.
    pub logs: std::path::PathBuf,
    pub roster: Arc<Library>,
    pub provider: ProviderInfo,
    pub debug_routes: bool,
    pub keep_alive: Duration,
    /// The session directory, for live session lists.
    pub directory: Arc<panel_actors::registry::Directory>,
    /// Event streams (SSE responses) open now, single or multiplexed.
    pub streams: Arc<std::sync::atomic::AtomicUsize>,
    /// Where sessions' replays are kept and streamed from.
    pub replays: Addr<panel_actors::counterfactual::book::Replays>,
}

/// Counts an open event stream for as long as it lives.
pub struct StreamCount(Arc<std::sync::atomic::AtomicUsize>);

impl StreamCount {
    pub fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for StreamCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `static_dir`: the browser app's folder, or `None` for the built-in app.
pub fn configure(cfg: &mut web::ServiceConfig, static_dir: Option<&Path>, logs_dir: &Path) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_BODY).error_handler(json_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .route("/healthz", web::get().to(meta::health))
        .service(
            web::scope("/api")
                .service(
                    // A new or edited character may carry its avatar.
                    web::resource("/roster")
                        .app_data(web::JsonConfig::default().limit(roster::MAX_CHARACTER).error_handler(json_error))
                        .get(roster::list)
                        .post(roster::create),
                )
                .route("/roster/import", web::post().to(roster::import))
                .service(
                    web::resource("/roster/{id}")
                        .app_data(web::JsonConfig::default().limit(roster::MAX_CHARACTER).error_handler(json_error))
                        .put(roster::update),
                )
                .route("/roster/{id}/avatar", web::get().to(roster::avatar))
                .route("/roster/{id}/card.json", web::get().to(roster::card_json))
                .route("/roster/{id}/card.png", web::get().to(roster::card_png))
                .route("/providers", web::get().to(meta::providers))
                .route("/events", web::get().to(multiplex::stream))
                .route("/sessions", web::get().to(sessions::list))
                .route("/sessions", web::post().to(sessions::create))
                .route("/sessions/{id}", web::get().to(sessions::detail))
                .route("/sessions/{id}/say", web::post().to(sessions::say))
                .route("/sessions/{id}/cast", web::post().to(sessions::cast))
                .route("/sessions/{id}/close", web::post().to(sessions::close))
                .route("/sessions/{id}/settings", web::post().to(sessions::settings))
                .route("/sessions/{id}/fork", web::post().to(sessions::fork))
                .route("/sessions/{id}/continue", web::post().to(sessions::continue_session))
                .route("/sessions/{id}/actor", web::delete().to(sessions::stop_actor))
                .route("/sessions/{id}/actor", web::post().to(sessions::start_actor))
                .route("/sessions/{id}/actor/panic", web::post().to(sessions::panic_actor))
                .route("/sessions/{id}/events", web::get().to(events::stream))
                .route("/sessions/{id}/dynamics", web::get().to(dynamics::get))
                .route("/sessions/{id}/history", web::get().to(history::get))
                .route("/sessions/{id}/replay", web::post().to(replays::start))
                .route("/sessions/{id}/replays", web::get().to(replays::list))
                .route("/sessions/{id}/replays/{rid}", web::get().to(replays::detail))
                .route("/sessions/{id}/replays/{rid}/events", web::get().to(replays::stream))
                .route("/sessions/{id}/ws", web::get().to(ws::connect))
                .route("/sessions/{id}/invites", web::post().to(invites::create))
                .route("/sessions/{id}/invites", web::get().to(invites::list))
                .route("/sessions/{id}/invites/{iid}", web::delete().to(invites::revoke))
                .default_service(web::to(not_found)),
        )
        // Recorded sessions, for the viewer: the same layout as an export.
        .service(actix_files::Files::new("/logs", logs_dir));
    match static_dir {
        Some(dir) => cfg.service(actix_files::Files::new("/", dir).index_file("index.html")),
        None => cfg.default_service(web::to(embedded::serve)),
    };
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "no-such-route", "no such API route"))
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    Ok(SessionId::parse(raw)?)
}

/// Sends `msg` to a session's actor, starting it if need be. An actor that
/// stops between the lookup and the send (passivated, or stopped for
/// debugging) is looked up once more, which starts it again or says why not.
pub async fn ask_session<M>(registry: &Addr<Registry>, id: &SessionId, msg: M) -> Result<M::Result, ApiError>
where
    M: actix::Message + Clone + Send + 'static,
    M::Result: Send,
    Session: actix::Handler<M>,
{
    let mut tries = 0;
    loop {
        let actor = registry.send(Lookup(id.clone())).await??;
        match actor.send(msg.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(e) if tries == 0 => {
                log::debug!("session {id}: its actor went away mid-request ({e}); asking again");
                tries += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
