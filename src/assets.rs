//! What the binary carries inside itself, so one installed file runs from
//! any folder: the browser app and the viewer (`static/`), and the default
//! roster — its characters, prompt templates and pricing (`roster/`).
//!
//! Both are embedded at build time in every profile (rust-embed's
//! `debug-embed`), so a debug build proves the same as a release one: what
//! the tests load from the binary is what a user's installed copy serves.
//! Working on the app, `--static DIR` serves a folder instead; the roster a
//! server runs on is always a folder (the default one is written out once,
//! see `config::home`), since the user edits it and the server watches it.

use std::borrow::Cow;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct BrowserApp;

#[derive(RustEmbed)]
#[folder = "roster/"]
struct DefaultRoster;

/// One built-in file: its bytes, its content type and a strong validator.
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    pub content_type: String,
    /// Hex SHA-256 of the bytes, for `ETag`.
    pub hash: String,
}

/// The built-in browser app's file at `path` (relative, `/`-separated, as
/// in a URL: `js/api.js`).
pub fn app_file(path: &str) -> Option<Asset> {
    let file = BrowserApp::get(path)?;
    let mime = file.metadata.mimetype();
    // Text the browser should not have to sniff for its encoding.
    let text = mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json");
    let content_type =
        if text && !mime.contains("charset") { format!("{mime}; charset=utf-8") } else { mime.to_owned() };
    let hash = file.metadata.sha256_hash().iter().map(|b| format!("{b:02x}")).collect();
    Some(Asset { bytes: file.data, content_type, hash })
}

/// Every file of the default roster, as (relative path, bytes), in a stable order.
pub fn default_roster() -> Vec<(String, Cow<'static, [u8]>)> {
    let mut files: Vec<(String, Cow<'static, [u8]>)> = DefaultRoster::iter()
        .filter_map(|path| DefaultRoster::get(&path).map(|f| (path.into_owned(), f.data)))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_and_the_viewer_are_built_in_with_their_content_types() {
        let index = app_file("index.html").expect("index.html is embedded");
        assert!(index.content_type.starts_with("text/html"), "{}", index.content_type);
        assert!(app_file("viewer.html").is_some());
        assert!(app_file("app.css").unwrap().content_type.starts_with("text/css"));
        assert!(app_file("js/main.js").unwrap().content_type.contains("javascript"));
        assert_eq!(app_file("js/main.js").unwrap().hash.len(), 64);
        assert!(app_file("no-such-file.js").is_none());
    }

    #[test]
    fn the_default_roster_holds_six_characters_the_templates_and_the_prices() {
        let files = default_roster();
        let characters = files.iter().filter(|(p, _)| p.starts_with("characters/") && p.ends_with(".md")).count();
        assert_eq!(characters, 6);
        assert!(files.iter().any(|(p, _)| p == "prompts/head.md.j2"));
        assert!(files.iter().any(|(p, _)| p == "prompts/panel.toml"));
        assert!(files.iter().any(|(p, _)| p == "pricing.toml"));
    }
}
