//! The browser app built into the binary (see `crate::assets`), served at
//! `/` when no `--static` folder is given.
//!
//! A path names a file; `/` and a folder's trailing slash name its
//! `index.html`. Each answer carries a strong `ETag` (the file's SHA-256)
//! and `Cache-Control: no-cache`: a browser revalidates every time and
//! gets a bodiless 304 while the binary is the same, and the new files at
//! once after an upgrade — never a stale script beside a new server.

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::assets;
use crate::error::ApiError;

pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "the app's files are read-only",
        ));
    }
    let path = req.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_owned() };
    let Some(file) = assets::app_file(&path) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such file"));
    };
    let etag = format!("\"{}\"", file.hash);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*"));
    let mut answer = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    answer.insert_header((header::ETAG, etag)).insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        return Ok(answer.finish());
    }
    let body = match file.bytes {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    };
    Ok(answer.content_type(file.content_type).body(body))
}
