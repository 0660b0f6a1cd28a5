//! The character library: listing, importing Character Cards, making and
//! editing characters, avatars, and exporting cards.
//!
//! Writes go through `panel_actors::roster::write` (safe ids, whole or
//! nothing) on the blocking pool, then the library is reloaded at once so
//! the next request sees them; files edited by hand are picked up by the
//! server's once-a-second look at the folder.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use futures_util::StreamExt as _;
use panel_actors::cards::{self, Avatar, CardError, mapping};
use panel_actors::id::CharacterId;
use panel_actors::roster::write::{self, Edit, WriteError};
use panel_actors::roster::{Character, Roster};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

/// Largest card file accepted.
pub const MAX_CARD: usize = cards::MAX_FILE;
/// Largest character made in the app, its avatar (base64) included.
pub const MAX_CHARACTER: usize = 6 << 20;

fn card_error(e: CardError) -> ApiError {
    let status = match e {
        CardError::TooLarge(_) | CardError::InflatesTooFar(_) => StatusCode::PAYLOAD_TOO_LARGE,
        CardError::NotACard(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad-character", m),
        WriteError::NotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "character-not-found", format!("no character {id}"))
        }
        WriteError::Io { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "roster-unwritable", e.to_string()),
    }
}

fn character_id(raw: &str) -> Result<CharacterId, ApiError> {
    CharacterId::parse(raw).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-id", e.to_string()))
}

fn folder(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    state.roster.dir().map(ToOwned::to_owned).ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "roster-read-only", "this server's roster is not a folder it can write")
    })
}

/// One character as the library shows it.
fn listed(roster: &Roster, c: &Character) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if c.avatar.is_some() {
        v["avatar_url"] = json!(format!("/api/roster/{}/avatar", c.id));
    }
    if let Some(info) = roster.info(&c.id) {
        v["library"] = serde_json::to_value(info).unwrap_or_default();
    }
    v
}

pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let roster = state.roster.current();
    let characters: Vec<Value> = roster.characters().map(|c| listed(&roster, c)).collect();
    let problems: Vec<_> = roster.problems().iter().map(|p| p.to_string()).collect();
    HttpResponse::Ok().json(json!({ "characters": characters, "problems": problems }))
}

/// Reads a body of at most `limit` bytes, refusing a larger one with 413.
async fn body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "card-too-large",
            format!("the file is larger than {} MiB", limit >> 20),
        )
    };
    let declared = req.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-body", e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The file's name, recorded as where the character came from.
    filename: Option<String>,
    #[allow(dead_code)]
    token: Option<String>,
}

/// `POST /api/roster/import`: the body is a card file (PNG, JSON or CHARX).
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body(&req, payload, MAX_CARD).await?;
    let dir = folder(&state)?;
    let file = query
        .filename
        .as_deref()
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).chars().take(200).collect::<String>());
    let library = state.roster.clone();
    let added = web::block(move || -> Result<CharacterId, ApiError> {
        let imported = cards::read(&bytes).map_err(card_error)?;
        let draft = mapping::draft(&imported, file.as_deref()).ok_or_else(|| card_error(CardError::NoName))?;
        let id = write::add(&dir, &draft, imported.avatar.as_ref(), Some(&imported.card.json)).map_err(write_error)?;
        library.refresh();
        Ok(id)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "import-failed", e.to_string()))??;
    created(&state, &added)
}

fn created(state: &AppState, id: &CharacterId) -> Result<HttpResponse, ApiError> {
    let roster = state.roster.current();
    let c = roster
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "roster-stale", "written but not loaded"))?;
    Ok(HttpResponse::Created().json(listed(&roster, c)))
}

/// A character made or edited in the app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharacterBody {
    name: String,
    tagline: String,
    colour: Option<String>,
    farewell: Option<String>,
    materials: String,
    /// An image, base64 (a `data:` URL is fine).
    avatar: Option<String>,
}

fn avatar_of(body: &CharacterBody) -> Result<Option<Avatar>, ApiError> {
    let Some(text) = &body.avatar else { return Ok(None) };
    let b64 = text.split_once("base64,").map_or(text.as_str(), |(_, b)| b);
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad-avatar", m.to_owned());
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad("the avatar is not base64"))?;
    if bytes.len() > 4 << 20 {
        return Err(bad("the avatar is larger than 4 MiB"));
    }
    Avatar::sniff(bytes).map(Some).ok_or_else(|| bad("the avatar is not a PNG, JPEG, WEBP or GIF image"))
}

/// `POST /api/roster`: a new character.
pub async fn create(state: web::Data<AppState>, body: web::Json<CharacterBody>) -> Result<HttpResponse, ApiError> {
    let dir = folder(&state)?;
    let avatar = avatar_of(&body)?;
    let name = mapping::clean_name(&body.name);
    let draft = mapping::Draft {
        colour: body.colour.clone().unwrap_or_else(|| mapping::colour_of(&name)),
        name,
        tagline: body.tagline.trim().to_owned(),
        farewell: body.farewell.clone(),
        materials: body.materials.clone(),
        creator_notes: None,
        source: None,
    };
    let library = state.roster.clone();
    let id = web::block(move || {
        let id = write::add(&dir, &draft, avatar.as_ref(), None);
        library.refresh();
        id
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "roster-unwritable", e.to_string()))?
    .map_err(write_error)?;
    created(&state, &id)
}

/// `PUT /api/roster/{id}`: an edit, for new sessions and later joins
/// (a running session's head never changes).
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<CharacterBody>,
) -> Result<HttpResponse, ApiError> {
    let id = character_id(&id)?;
    let dir = folder(&state)?;
    let avatar = avatar_of(&body)?;
    let edit = Edit {
        name: body.name.clone(),
        tagline: body.tagline.clone(),
        colour: body.colour.clone().unwrap_or_else(|| mapping::colour_of(&body.name)),
        farewell: body.farewell.clone(),
        materials: body.materials.clone(),
    };
    let (library, which) = (state.roster.clone(), id.clone());
    web::block(move || {
        let done = write::update(&dir, &which, &edit, avatar.as_ref());
        library.refresh();
        done
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "roster-unwritable", e.to_string()))?
    .map_err(write_error)?;
    let roster = state.roster.current();
    let c = roster.get(&id).ok_or_else(|| write_error(WriteError::NotFound(id.to_string())))?;
    Ok(HttpResponse::Ok().json(listed(&roster, c)))
}

/// A file beside the characters (an avatar, a card sidecar), read on the
/// blocking pool: avatars run to megabytes and every chat asks for them.
async fn read_beside(state: &AppState, name: &str) -> Option<Vec<u8>> {
    let path = state.roster.dir()?.join(name);
    web::block(move || std::fs::read(path).ok()).await.ok().flatten()
}

fn found(state: &AppState, raw: &str) -> Result<Character, ApiError> {
    let id = character_id(raw)?;
    state.roster.current().get(&id).cloned().ok_or_else(|| write_error(WriteError::NotFound(raw.to_owned())))
}

#[derive(Debug, Deserialize)]
pub struct AvatarQuery {
    file: Option<String>,
}

/// `GET /api/roster/{id}/avatar[?file=NAME]`: the character's avatar now,
/// or the one named — the name a session's log recorded, which an edit
/// since may have replaced (replaced avatars are kept for that).
pub async fn avatar(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<AvatarQuery>,
) -> Result<HttpResponse, ApiError> {
    let c = found(&state, &id)?;
    let file = match query.into_inner().file {
        Some(name) if write::is_avatar_name(&name) && name.starts_with(c.id.as_str()) => name,
        Some(_) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad-avatar", "file must name one of its avatars"));
        }
        None => {
            c.avatar.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no-avatar", format!("{id} has no avatar")))?
        }
    };
    let bytes = read_beside(&state, &file)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no-avatar", "the avatar file is missing"))?;
    let kind = match file.rsplit('.').next() {
        Some("png") => "image/png",
        Some("jpg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "image/gif",
    };
    Ok(HttpResponse::Ok().content_type(kind).insert_header(("cache-control", "no-cache")).body(bytes))
}

/// The character's card: its original (from the sidecar) or panel's own.
async fn card(state: &AppState, c: &Character) -> Value {
    let sidecar =
        read_beside(state, &format!("{}.card.json", c.id)).await.and_then(|b| serde_json::from_slice(&b).ok());
    mapping::card_of(c, sidecar.as_ref())
}

/// `GET /api/roster/{id}/card.json`: a V3 card.
pub async fn card_json(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let c = found(&state, &id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("content-disposition", format!("attachment; filename=\"{}.json\"", c.id)))
        .json(card(&state, &c).await))
}

/// `GET /api/roster/{id}/card.png`: the avatar (or a disc of the
/// character's colour) carrying the card as `ccv3` and a V2 `chara`.
pub async fn card_png(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let c = found(&state, &id)?;
    let v3 = card(&state, &c).await;
    let avatar = match c.avatar.as_deref().filter(|a| a.ends_with(".png")) {
        Some(a) => read_beside(&state, a).await,
        None => None,
    };
    let image = avatar.unwrap_or_else(|| cards::png::generated_avatar(&c.colour));
    let png = cards::png::with_card(&image, &mapping::v2_backfill(&v3).to_string(), &v3.to_string())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export-failed", e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("content-disposition", format!("attachment; filename=\"{}.png\"", c.id)))
        .body(png))
}
