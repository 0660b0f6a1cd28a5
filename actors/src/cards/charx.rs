//! CHARX: a zip holding `card.json` (a V3 card) and its assets, the main
//! icon referenced as `embeded://path` (also met: `embedded://`, `__asset:`).
//!
//! The zip is untrusted: at most [`MAX_ENTRIES`] entries, each read through
//! a cap of [`MAX_ENTRY`] bytes whatever its header claims (a zip bomb stops
//! there and is refused), names with `..` or a leading `/` refused, and
//! encrypted entries refused. Some files carry data before the zip (an image
//! followed by a zip): reading starts at the first local-file header.

use std::io::{Cursor, Read as _};

use serde_json::Value;

use super::{Avatar, CardError};

pub const MAX_ENTRIES: usize = 256;
pub const MAX_ENTRY: u64 = 16 << 20;

/// Where a zip starts in `bytes`, if one does.
pub fn zip_start(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"PK\x03\x04")
}

/// The card JSON text, and the main icon if there is one.
pub fn read(bytes: &[u8]) -> Result<(String, Option<Avatar>), CardError> {
    let bad = |m: String| CardError::BadZip(m);
    let start = zip_start(bytes).ok_or_else(|| bad("no zip inside".into()))?;
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[start..])).map_err(|e| bad(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(bad(format!("{} entries; at most {MAX_ENTRIES} are read", zip.len())));
    }
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
        let name = entry.name();
        if name.split(['/', '\\']).any(|part| part == "..") || name.starts_with('/') || name.starts_with('\\') {
            return Err(bad(format!("an entry named {name:?} points outside the archive")));
        }
        if entry.encrypted() {
            return Err(CardError::Encrypted);
        }
    }
    let card = read_entry(&mut zip, "card.json")?.ok_or_else(|| bad("no card.json at its root".into()))?;
    let text = String::from_utf8_lossy(&card).into_owned();
    let json: Value = serde_json::from_str(&text).map_err(|e| CardError::BadJson(e.to_string()))?;
    let avatar = match main_icon(&json) {
        Some(path) => read_entry(&mut zip, &path)?.map(Avatar::sniff),
        None => None,
    };
    Ok((text, avatar.flatten()))
}

/// The zip path of the card's main icon, from its `assets`.
fn main_icon(card: &Value) -> Option<String> {
    let assets = card["data"]["assets"].as_array()?;
    let icons: Vec<&Value> = assets.iter().filter(|a| a["type"] == "icon").collect();
    let main = icons.iter().find(|a| a["name"] == "main").or(icons.first())?;
    let uri = main["uri"].as_str()?;
    ["embeded://", "embedded://", "__asset:"].iter().find_map(|p| uri.strip_prefix(p)).map(str::to_owned)
}

/// One entry's bytes, read through the size cap.
fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<Vec<u8>>, CardError> {
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(CardError::BadZip(e.to_string())),
    };
    let mut out = Vec::new();
    (&mut entry).take(MAX_ENTRY + 1).read_to_end(&mut out).map_err(|e| CardError::BadZip(e.to_string()))?;
    if out.len() as u64 > MAX_ENTRY {
        return Err(CardError::BadZip(format!("{name} inflates past {} MiB (a zip bomb?)", MAX_ENTRY >> 20)));
    }
    Ok(Some(out))
}
