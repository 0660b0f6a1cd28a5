//! Character Cards, the format SillyTavern, RisuAI and the card sites
//! exchange characters in: read from JSON (V1, V2, V3, Pygmalion), PNG
//! (`ccv3` / `chara` in tEXt, zTXt or iTXt) and CHARX zips, and written back
//! as V3 JSON or a PNG carrying V3 and a V2 backfill.
//!
//! Reading is lenient where SillyTavern is — keywords in any case,
//! whitespace in base64, invalid UTF-8 replaced, `character_book: null`, a
//! string where a list belongs, a number for `character_version` — and
//! strict where safety needs it: size caps on the file, each chunk and each
//! zip entry, zip entry count, no path traversal, no decompression bomb.
//! The whole card JSON is kept as it came, so nothing in it is lost; the
//! fields read from it carry no control characters ([`printable`]).
//!
//! [`mapping`] turns a card into a roster character, and back.

pub mod charx;
pub mod mapping;
pub mod png;

use serde_json::Value;

/// Largest card file read.
pub const MAX_FILE: usize = 16 << 20;
/// Largest text chunk, decompressed.
pub const MAX_CHUNK: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the file is larger than {} MiB", .0 >> 20)]
    TooLarge(usize),
    #[error("the card's text chunks inflate past {} MiB (a decompression bomb?)", .0 >> 20)]
    InflatesTooFar(usize),
    #[error("not a character card: {0}")]
    NotACard(String),
    #[error("a damaged PNG: {0}")]
    BadPng(String),
    #[error("the PNG holds no character card (no ccv3 or chara text chunk)")]
    NoCard,
    #[error("the card's base64 does not decode: {0}")]
    BadBase64(String),
    #[error("the card is not valid JSON: {0}")]
    BadJson(String),
    #[error("the card has no name")]
    NoName,
    #[error("a damaged or unsafe CHARX zip: {0}")]
    BadZip(String),
    #[error("the card is encrypted (RisuAI's protected format), which panel cannot read")]
    Encrypted,
}

impl CardError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "card-too-large",
            Self::InflatesTooFar(_) => "card-inflates-too-far",
            Self::NotACard(_) => "not-a-card",
            Self::BadPng(_) => "bad-png",
            Self::NoCard => "no-card-in-png",
            Self::BadBase64(_) => "bad-base64",
            Self::BadJson(_) => "bad-card-json",
            Self::NoName => "card-without-name",
            Self::BadZip(_) => "bad-charx",
            Self::Encrypted => "encrypted-card",
        }
    }
}

pub use crate::roster::Avatar;

/// The shape a card came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    V3,
    V2,
    V1,
    Pygmalion,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Self::V3 => "chara_card_v3",
            Self::V2 => "chara_card_v2",
            Self::V1 => "tavern_v1",
            Self::Pygmalion => "pygmalion",
        }
    }
}

/// A card read from a file: the fields panel uses, and the whole JSON.
#[derive(Debug, Clone)]
pub struct Card {
    pub shape: Shape,
    /// The card exactly as it came (for the sidecar and export).
    pub json: Value,
    pub name: String,
    pub nickname: Option<String>,
    pub description: String,
    pub personality: String,
    pub scenario: String,
    pub first_mes: String,
    pub mes_example: String,
    pub alternate_greetings: Vec<String>,
    pub creator_notes: String,
    pub system_prompt: String,
    pub post_history_instructions: String,
    pub creator: String,
    pub character_version: String,
    pub tags: Vec<String>,
    pub book: Vec<BookEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookEntry {
    pub name: String,
    pub keys: Vec<String>,
    pub content: String,
    pub constant: bool,
    pub enabled: bool,
}

/// A card file, read.
#[derive(Debug, Clone)]
pub struct Imported {
    pub card: Card,
    pub avatar: Option<Avatar>,
}

/// Reads a card from a file's bytes, whatever its container.
pub fn read(bytes: &[u8]) -> Result<Imported, CardError> {
    if bytes.len() > MAX_FILE {
        return Err(CardError::TooLarge(MAX_FILE));
    }
    if bytes.starts_with(png::SIGNATURE) {
        let card = parse(&png::card_text(bytes)?)?;
        return Ok(Imported { card, avatar: Avatar::sniff(bytes.to_vec()) });
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') || bytes.starts_with(b"\xef\xbb\xbf") {
        return Ok(Imported { card: parse(&String::from_utf8_lossy(bytes))?, avatar: None });
    }
    if bytes.starts_with(b"rcc||") {
        return Err(CardError::Encrypted);
    }
    if charx::zip_start(bytes).is_some() {
        let (text, avatar) = charx::read(bytes)?;
        return Ok(Imported { card: parse(&text)?, avatar });
    }
    let what = match Avatar::sniff(bytes.to_vec()) {
        Some(a) => format!("a {} image without a card (cards come as PNG, JSON or CHARX)", a.ext.to_uppercase()),
        None => "neither a PNG, JSON nor a CHARX zip".to_owned(),
    };
    Err(CardError::NotACard(what))
}

pub use crate::roster::printable;

/// A string, however it came: numbers as written, null and other shapes as
/// "", control characters dropped.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A list of strings; a lone string is a list of one.
fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(text).filter(|s| !s.trim().is_empty()).collect(),
        Value::String(s) if !s.trim().is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Parses card JSON of any shape.
pub fn parse(source: &str) -> Result<Card, CardError> {
    let source = source.trim_start_matches('\u{feff}');
    if source.starts_with("rcc||") {
        return Err(CardError::Encrypted);
    }
    let json: Value = serde_json::from_str(source).map_err(|e| CardError::BadJson(e.to_string()))?;
    if !json.is_object() {
        return Err(CardError::BadJson("the card is not a JSON object".into()));
    }
    let (shape, d) = match json["spec"].as_str() {
        Some("chara_card_v3") => (Shape::V3, &json["data"]),
        Some("chara_card_v2") => (Shape::V2, &json["data"]),
        _ if json.get("char_name").is_some() => (Shape::Pygmalion, &json),
        _ if json.get("name").is_some() => (Shape::V1, &json),
        _ if json["data"].get("name").is_some() => (Shape::V2, &json["data"]),
        _ => return Err(CardError::NoName),
    };
    let field = |v1: &str, pyg: &str| text(if shape == Shape::Pygmalion { &d[pyg] } else { &d[v1] });
    let name = field("name", "char_name").trim().to_owned();
    if name.is_empty() {
        return Err(CardError::NoName);
    }
    let book = d["character_book"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| BookEntry {
            name: [text(&e["name"]), text(&e["comment"])]
                .into_iter()
                .map(|n| n.trim().to_owned())
                .find(|n| !n.is_empty())
                .unwrap_or_default(),
            keys: list(&e["keys"]),
            content: text(&e["content"]),
            constant: e["constant"].as_bool().unwrap_or(false),
            enabled: e["enabled"].as_bool().unwrap_or(true),
        })
        .filter(|e| !e.content.trim().is_empty())
        .collect();
    Ok(Card {
        shape,
        name,
        nickname: d["nickname"].as_str().map(printable).map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        description: field("description", "char_persona"),
        personality: text(&d["personality"]),
        scenario: field("scenario", "world_scenario"),
        first_mes: field("first_mes", "char_greeting"),
        mes_example: field("mes_example", "example_dialogue"),
        alternate_greetings: list(&d["alternate_greetings"]),
        creator_notes: text(&d["creator_notes"]),
        system_prompt: text(&d["system_prompt"]),
        post_history_instructions: text(&d["post_history_instructions"]),
        creator: text(&d["creator"]),
        character_version: text(&d["character_version"]),
        tags: list(&d["tags"]),
        book,
        json,
    })
}
