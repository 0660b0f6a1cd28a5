//! Adding and editing characters in the roster folder.
//!
//! Invariants: an id is derived from the name, safely (lowercase ASCII
//! letters, digits and hyphens) and made unique with a suffix — an existing
//! character is never overwritten by an addition; the text is checked by
//! the same parser that loads it before anything is written; and an
//! addition writes its files (avatar, card sidecar, then the character file
//! itself, which is what makes it exist) each through a temporary file, and
//! removes what it wrote if a later step fails — so it lands whole or not
//! at all.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Avatar, Draft};
use super::{FrontMatter, LibraryInfo, parse_entry};
use crate::id::CharacterId;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Invalid(String),
    #[error("no character {0}")]
    NotFound(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io { path: path.to_owned(), source }
}

/// An avatar file name: `<stem>.<image ext>`, nothing that leaves the folder.
pub fn is_avatar_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    matches!(ext, "png" | "jpg" | "webp" | "gif")
        && !stem.is_empty()
        && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The id a name suggests: `Sir Robert de Montfort` → `sir-robert-de-montfort`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(40).collect();
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "character".to_owned() } else { out }
}

/// The character file's text for `front` and `materials`.
fn render(front: &FrontMatter, materials: &str) -> Result<String, WriteError> {
    let toml = toml::to_string(front).map_err(|e| WriteError::Invalid(e.to_string()))?;
    Ok(format!("+++\n{toml}+++\n\n{}\n", materials.trim()))
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn put(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// A new character from `draft`, with its avatar and its card's JSON.
/// Returns the id it was given.
pub fn add(
    dir: &Path,
    draft: &Draft,
    avatar: Option<&Avatar>,
    card: Option<&Value>,
) -> Result<CharacterId, WriteError> {
    let taken = |id: &str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().split('.').next() == Some(id))
    };
    let base = slug(&draft.name);
    let id = std::iter::once(base.clone())
        .chain((2..1000).map(|n| format!("{base}-{n}")))
        .find(|id| !taken(id))
        .ok_or_else(|| WriteError::Invalid(format!("too many characters named like {base}")))?;
    let id = CharacterId::parse(&id).map_err(|e| WriteError::Invalid(e.to_string()))?;
    let front = FrontMatter {
        name: draft.name.clone(),
        tagline: draft.tagline.clone(),
        colour: draft.colour.clone(),
        farewell: draft.farewell.clone(),
        avatar: avatar.map(|a| format!("{id}.{}", a.ext)),
        creator_notes: draft.creator_notes.clone(),
        source: draft.source.clone(),
    };
    let text = render(&front, &draft.materials)?;
    let md = dir.join(format!("{id}.md"));
    parse_entry(&md, &text).map_err(WriteError::Invalid)?;

    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| {
        if let Some(a) = avatar {
            let path = dir.join(format!("{id}.{}", a.ext));
            put(&path, &a.bytes)?;
            written.push(path);
        }
        if let Some(card) = card {
            let path = dir.join(format!("{id}.card.json"));
            let json = serde_json::to_vec_pretty(card).map_err(|e| WriteError::Invalid(e.to_string()))?;
            put(&path, &json)?;
            written.push(path);
        }
        // Last, and never over an existing file: a hard link fails if the name is taken.
        let tmp = dir.join(format!("{id}.md.tmp"));
        std::fs::write(&tmp, &text).map_err(io(&tmp))?;
        let linked = std::fs::hard_link(&tmp, &md).map_err(io(&md));
        let _ = std::fs::remove_file(&tmp);
        linked
    })();
    if result.is_err() {
        for path in written {
            let _ = std::fs::remove_file(path);
        }
    }
    result.map(|()| id)
}

/// What an edit may change.
#[derive(Debug, Clone)]
pub struct Edit {
    pub name: String,
    pub tagline: String,
    pub colour: String,
    pub farewell: Option<String>,
    pub materials: String,
}

/// Edits character `id`; its avatar is replaced when one is given (under a
/// new name: the old file is kept for the sessions that show it). Where it
/// came from and its creator notes are kept.
pub fn update(dir: &Path, id: &CharacterId, edit: &Edit, avatar: Option<&Avatar>) -> Result<(), WriteError> {
    let md = dir.join(format!("{id}.md"));
    let old = std::fs::read_to_string(&md).map_err(|_| WriteError::NotFound(id.to_string()))?;
    let (before, info): (_, LibraryInfo) = parse_entry(&md, &old).map_err(WriteError::Invalid)?;
    let front = FrontMatter {
        name: edit.name.trim().to_owned(),
        tagline: edit.tagline.trim().to_owned(),
        colour: edit.colour.trim().to_owned(),
        farewell: edit.farewell.clone().filter(|f| !f.trim().is_empty()),
        avatar: avatar.map(|a| versioned_avatar_name(id, a)).or(before.avatar.clone()),
        creator_notes: info.creator_notes,
        source: info.source,
    };
    let text = render(&front, &edit.materials)?;
    parse_entry(&md, &text).map_err(WriteError::Invalid)?;
    // The old avatar stays: sessions recorded its name and still show it.
    if let Some(a) = avatar {
        put(&dir.join(versioned_avatar_name(id, a)), &a.bytes)?;
    }
    put(&md, text.as_bytes())
}

/// A replaced avatar's file name, `<id>-<first 8 hex of its SHA-256>.<ext>`:
/// a new name for new bytes, so no recorded name ever shows another image.
fn versioned_avatar_name(id: &CharacterId, avatar: &Avatar) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(&avatar.bytes);
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{id}-{short}.{}", avatar.ext)
}
