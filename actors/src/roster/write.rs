//! Adding and editing characters in the roster folder.
//!
//! Invariants: an id is derived from the name, safely (lowercase ASCII
//! letters, digits and hyphens), cut so that it fits [`CharacterId::MAX_LEN`]
//! with its uniqueness suffix (`-2`, `-3`, …) — every name the roster takes
//! gives an id. An addition first reserves its id atomically (it creates
//! `<id>.reserved` with `create_new`, so two imports of one name at once
//! get two ids), then writes each file (avatar, card sidecar, then the
//! character file itself, which is what makes it exist) through a
//! temporary file of its own in the folder, moved into place only where no
//! file is (an existing character is never overwritten); a failure removes
//! only what this addition created. The text is checked by the same parser
//! that loads it before anything is written, and control characters are
//! kept out of it. Error messages name the character, never a path of the
//! machine.

use std::io::Write as _;
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
    /// `what`: the file, as a person would name it ("ada's avatar"); the
    /// io error's kind only, since its text may carry a path.
    #[error("cannot write {what}: {kind}")]
    Io { what: String, kind: std::io::ErrorKind },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WriteError {
    let what = what.into();
    move |e| WriteError::Io { what, kind: e.kind() }
}

/// An avatar file name: `<stem>.<image ext>`, nothing that leaves the folder.
pub fn is_avatar_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else { return false };
    matches!(ext, "png" | "jpg" | "webp" | "gif")
        && !stem.is_empty()
        && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The id a name suggests: `Sir Robert de Montfort` → `sir-robert-de-montfort`,
/// at most [`CharacterId::MAX_LEN`] characters.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = cut(&out, CharacterId::MAX_LEN);
    if out.is_empty() { "character".to_owned() } else { out }
}

/// `slug` cut to `max` characters with no trailing '-' (slugs are ASCII,
/// so every byte is a char boundary).
fn cut(slug: &str, max: usize) -> String {
    slug.chars().take(max).collect::<String>().trim_end_matches('-').to_owned()
}

/// The `n`th id for `base`: `base`, then `base-2`, … each cut to fit.
fn candidate(base: &str, n: usize) -> String {
    if n == 1 {
        return cut(base, CharacterId::MAX_LEN);
    }
    let suffix = format!("-{n}");
    format!("{}{suffix}", cut(base, CharacterId::MAX_LEN - suffix.len()))
}

/// The character file's text for `front` and `materials`.
fn render(front: &FrontMatter, materials: &str) -> Result<String, WriteError> {
    let toml = toml::to_string(front).map_err(|e| WriteError::Invalid(e.to_string()))?;
    Ok(format!("+++\n{toml}+++\n\n{}\n", super::printable(materials.trim())))
}

/// A temporary file of this write's own in `dir`, holding `bytes`. Its
/// random hidden name is never a character's; it is removed when dropped.
fn staged(dir: &Path, bytes: &[u8], what: &str) -> Result<tempfile::NamedTempFile, WriteError> {
    let mut tmp = tempfile::Builder::new().prefix(".write-").suffix(".tmp").tempfile_in(dir).map_err(io(what))?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_data()).map_err(io(what))?;
    Ok(tmp)
}

/// Writes `bytes` to `path`, replacing what is there, through a temporary file.
fn put(dir: &Path, path: &Path, bytes: &[u8], what: &str) -> Result<(), WriteError> {
    staged(dir, bytes, what)?.persist(path).map(drop).map_err(|e| io(what)(e.error))
}

/// Creates `path` holding `bytes`, failing if any file has the name.
fn create(dir: &Path, path: &Path, bytes: &[u8], what: &str) -> Result<(), WriteError> {
    staged(dir, bytes, what)?.persist_noclobber(path).map(drop).map_err(|e| io(what)(e.error))
}

/// An id held for one addition; the reservation is released when dropped.
struct Reservation(PathBuf);

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reserves the first free id for `base`. A name is free when this call
/// created its reservation and no other file has it as its stem: whoever
/// writes under an id holds its reservation until its character file exists.
fn reserve(dir: &Path, base: &str) -> Result<(CharacterId, Reservation), WriteError> {
    let stems = || -> Vec<String> {
        let entries = std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok);
        entries.map(|e| e.file_name().to_string_lossy().split('.').next().unwrap_or_default().to_owned()).collect()
    };
    let mut seen = stems();
    for n in 1..1000 {
        let id = candidate(base, n);
        if seen.contains(&id) {
            continue;
        }
        let path = dir.join(format!("{id}.reserved"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("a new character {id}"))(e)),
        }
        let held = Reservation(path);
        // Another addition may have finished under this id since the listing.
        seen = stems();
        if seen.iter().filter(|s| **s == id).count() > 1 {
            continue;
        }
        let id = CharacterId::parse(&id).map_err(|e| WriteError::Invalid(e.to_string()))?;
        return Ok((id, held));
    }
    Err(WriteError::Invalid(format!("too many characters named like {base}")))
}

/// A new character from `draft`, with its avatar and its card's JSON.
/// Returns the id it was given.
pub fn add(
    dir: &Path,
    draft: &Draft,
    avatar: Option<&Avatar>,
    card: Option<&Value>,
) -> Result<CharacterId, WriteError> {
    let base = slug(&draft.name);
    // Checked under a stand-in id first, so that a bad draft reserves nothing.
    let check = |id: &str, avatar_name: Option<String>| {
        let front = FrontMatter {
            name: super::printable(&draft.name),
            tagline: super::printable(&draft.tagline),
            colour: draft.colour.clone(),
            farewell: draft.farewell.as_deref().map(super::printable),
            avatar: avatar_name,
            creator_notes: draft.creator_notes.as_deref().map(super::printable),
            source: draft.source.clone(),
        };
        let text = render(&front, &draft.materials)?;
        parse_entry(&dir.join(format!("{id}.md")), &text).map_err(WriteError::Invalid)?;
        Ok::<_, WriteError>(text)
    };
    let stand_in = candidate(&base, 999);
    check(&stand_in, avatar.map(|a| format!("{stand_in}.{}", a.ext)))?;
    let card_json = card.map(serde_json::to_vec_pretty).transpose().map_err(|e| WriteError::Invalid(e.to_string()))?;

    let (id, _held) = reserve(dir, &base)?;
    let text = check(id.as_str(), avatar.map(|a| format!("{id}.{}", a.ext)))?;
    let mut created: Vec<PathBuf> = Vec::new();
    let mut result = Ok(());
    if let Some(a) = avatar {
        let path = dir.join(format!("{id}.{}", a.ext));
        result = create(dir, &path, &a.bytes, &format!("{id}'s avatar"));
        if result.is_ok() {
            created.push(path);
        }
    }
    if let (Ok(()), Some(json)) = (&result, &card_json) {
        let path = dir.join(format!("{id}.card.json"));
        result = create(dir, &path, json, &format!("{id}'s card"));
        if result.is_ok() {
            created.push(path);
        }
    }
    // Last: the character file is what makes it exist.
    if result.is_ok() {
        result = create(dir, &dir.join(format!("{id}.md")), text.as_bytes(), &format!("character {id}"));
    }
    if result.is_err() {
        for path in created {
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
    let what = format!("character {id}");
    let old = std::fs::read_to_string(&md).map_err(|_| WriteError::NotFound(id.to_string()))?;
    let (before, info): (_, LibraryInfo) = parse_entry(&md, &old).map_err(WriteError::Invalid)?;
    let front = FrontMatter {
        name: super::printable(edit.name.trim()),
        tagline: super::printable(edit.tagline.trim()),
        colour: edit.colour.trim().to_owned(),
        farewell: edit.farewell.as_deref().filter(|f| !f.trim().is_empty()).map(super::printable),
        avatar: avatar.map(|a| versioned_avatar_name(id, a)).or(before.avatar.clone()),
        creator_notes: info.creator_notes,
        source: info.source,
    };
    let text = render(&front, &edit.materials)?;
    parse_entry(&md, &text).map_err(WriteError::Invalid)?;
    // The old avatar stays: sessions recorded its name and still show it.
    if let Some(a) = avatar {
        put(dir, &dir.join(versioned_avatar_name(id, a)), &a.bytes, &format!("{id}'s avatar"))?;
    }
    put(dir, &md, text.as_bytes(), &what)
}

/// A replaced avatar's file name, `<id>-<first 8 hex of its SHA-256>.<ext>`:
/// a new name for new bytes, so no recorded name ever shows another image.
fn versioned_avatar_name(id: &CharacterId, avatar: &Avatar) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(&avatar.bytes);
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{id}-{short}.{}", avatar.ext)
}
