//! The roster: the library of characters a session's cast is drawn from.
//!
//! Each character is one file, `roster/characters/<id>.md`: TOML front matter
//! between `+++` lines (name, tagline, colour, optional farewell, avatar,
//! creator notes and where an imported card came from), then a markdown
//! body of materials. The file name is the id. Beside it may sit its avatar
//! (`<id>.png`, …) and, for an imported card, the card's whole JSON
//! (`<id>.card.json`), so nothing of it is lost.
//!
//! Loading never fails as a whole because of one bad file: each malformed
//! file becomes a [`RosterProblem`] naming its path, and the others load.
//! [`Library`] holds the current roster and picks up changes to the folder
//! without a restart; [`write`](mod@write) adds and edits characters safely.

mod draft;
mod library;
pub mod write;

pub use draft::{Avatar, Draft, Source, printable};
pub use library::Library;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::id::CharacterId;

/// One character, as snapshotted into a session's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Character {
    pub id: CharacterId,
    pub name: String,
    pub tagline: String,
    /// A CSS colour (`#rrggbb`) for the UI.
    pub colour: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub farewell: Option<String>,
    /// Persona, voice, concerns and sample lines, as markdown.
    pub materials: String,
    /// The avatar's file name beside the character's file, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// What the library shows about a character beyond what the prompt uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LibraryInfo {
    /// A card's notes for people (never in the prompt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_notes: Option<String>,
    /// Where an imported card came from, and what of it is kept unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl Character {
    /// The bullet lines of the materials section whose heading contains
    /// `heading` (case-insensitive), e.g. "Sample lines".
    pub fn section_items(&self, heading: &str) -> Vec<&str> {
        let heading = heading.to_lowercase();
        let mut inside = false;
        let mut items = Vec::new();
        for line in self.materials.lines() {
            let trimmed = line.trim();
            if let Some(title) = trimmed.strip_prefix('#') {
                inside = title.to_lowercase().contains(&heading);
            } else if inside && let Some(item) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
                items.push(item.trim());
            }
        }
        items
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FrontMatter {
    pub name: String,
    pub tagline: String,
    pub colour: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub farewell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// A roster file that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterProblem {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for RosterProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The loaded library.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    characters: BTreeMap<CharacterId, Character>,
    info: BTreeMap<CharacterId, LibraryInfo>,
    problems: Vec<RosterProblem>,
}

impl Roster {
    /// Loads every `*.md` under `dir` (the `roster/characters` folder).
    /// Only a missing or unreadable folder is an error.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the roster folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        entries.sort();
        let mut roster = Self::default();
        for path in entries {
            let loaded =
                std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| parse_entry(&path, &text));
            match loaded {
                Ok((c, info)) => {
                    roster.info.insert(c.id.clone(), info);
                    roster.characters.insert(c.id.clone(), c);
                }
                Err(message) => roster.problems.push(RosterProblem { path, message }),
            }
        }
        Ok(roster)
    }

    pub fn get(&self, id: &CharacterId) -> Option<&Character> {
        self.characters.get(id)
    }

    pub fn characters(&self) -> impl Iterator<Item = &Character> {
        self.characters.values()
    }

    /// What the library shows about a character beyond the prompt.
    pub fn info(&self, id: &CharacterId) -> Option<&LibraryInfo> {
        self.info.get(id)
    }

    pub fn contains(&self, id: &CharacterId) -> bool {
        self.characters.contains_key(id)
    }

    /// Files that did not load, with their paths and reasons.
    pub fn problems(&self) -> &[RosterProblem] {
        &self.problems
    }

    pub fn from_characters(characters: impl IntoIterator<Item = Character>) -> Self {
        let characters = characters.into_iter().map(|c| (c.id.clone(), c)).collect();
        Self { characters, info: BTreeMap::new(), problems: Vec::new() }
    }
}

/// Parses one character file. The error is a message for a human; the
/// caller adds the path.
pub fn parse_character(path: &Path, text: &str) -> Result<Character, String> {
    parse_entry(path, text).map(|(c, _)| c)
}

/// Parses one character file, with what the library shows about it.
pub fn parse_entry(path: &Path, text: &str) -> Result<(Character, LibraryInfo), String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let id = CharacterId::parse(stem).map_err(|e| format!("bad file name: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("+++\n")
        .or_else(|| text.strip_prefix("+++\r\n"))
        .ok_or("the file must start with a `+++` line opening the TOML front matter")?;
    let end = rest.find("\n+++").ok_or("the front matter is not closed by a `+++` line")?;
    let front: FrontMatter = toml::from_str(&rest[..end]).map_err(|e| format!("bad front matter: {}", e.message()))?;
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']).trim_end();
    // The parser must be able to find this name at the start of a confer line.
    crate::parser::check_name(&front.name).map_err(|e| format!("bad `name`: {e}"))?;
    if !is_hex_colour(&front.colour) {
        return Err(format!("`colour` must look like #3a7bd5, not {:?}", front.colour));
    }
    if body.is_empty() {
        return Err("the materials (the text after the front matter) are empty".into());
    }
    if let Some(a) = &front.avatar
        && !write::is_avatar_name(a)
    {
        return Err(format!("`avatar` must name an image file beside this one, not {a:?}"));
    }
    let character = Character {
        id,
        name: front.name.trim().to_owned(),
        tagline: front.tagline.trim().to_owned(),
        colour: front.colour.to_lowercase(),
        farewell: front.farewell.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()),
        materials: body.to_owned(),
        avatar: front.avatar,
    };
    Ok((character, LibraryInfo { creator_notes: front.creator_notes, source: front.source }))
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\nname = \"Ada\"\ntagline = \"Systems engineer\"\ncolour = \"#3A7BD5\"\n+++\n\n# Ada\n\n## Sample lines\n- It depends on the failure mode.\n- Show me the queue.\n";

    #[test]
    fn a_well_formed_file_loads_with_its_id_from_the_file_name() {
        let c = parse_character(Path::new("roster/characters/ada.md"), GOOD).unwrap();
        assert_eq!(c.id.as_str(), "ada");
        assert_eq!(c.name, "Ada");
        assert_eq!(c.colour, "#3a7bd5");
        assert_eq!(c.farewell, None);
        assert_eq!(c.section_items("sample lines"), ["It depends on the failure mode.", "Show me the queue."]);
    }

    #[test]
    fn malformed_files_are_reported_with_a_reason() {
        let cases = [
            ("no front matter", "# Ada"),
            ("unclosed", "+++\nname = \"Ada\"\n"),
            ("bad toml", "+++\nname = Ada\n+++\nbody"),
            ("bad colour", "+++\nname = \"Ada\"\ntagline = \"x\"\ncolour = \"blue\"\n+++\nbody"),
            ("unknown key", "+++\nname = \"Ada\"\ntagline = \"x\"\ncolour = \"#000000\"\nage = 3\n+++\nbody"),
            ("empty body", "+++\nname = \"Ada\"\ntagline = \"x\"\ncolour = \"#000000\"\n+++\n"),
        ];
        for (what, text) in cases {
            assert!(parse_character(Path::new("ada.md"), text).is_err(), "{what}");
        }
        assert!(parse_character(Path::new("Bad Name.md"), GOOD).is_err());
    }

    #[test]
    fn one_bad_file_does_not_take_the_others_down() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ada.md"), GOOD).unwrap();
        std::fs::write(dir.path().join("broken.md"), "not a character").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let roster = Roster::load(dir.path()).unwrap();
        assert_eq!(roster.characters().count(), 1);
        assert_eq!(roster.problems().len(), 1);
        let problem = roster.problems()[0].to_string();
        assert!(problem.contains("broken.md"), "{problem}");
    }
}
