//! Where panel's data lives when no flag says: the roster folder and the
//! logs folder, each found the same way, so `panel` runs from any folder.
//!
//! 1. `./roster` (or `./logs`) when it exists in the current folder — a
//!    checkout, or a user's project folder;
//! 2. else `$PANEL_HOME/roster` (`…/logs`);
//! 3. else the platform's data folder (`~/.local/share/panel` on Linux,
//!    through `directories`);
//! 4. with no home folder at all, the current folder, as before.
//!
//! `--roster`/`PANEL_ROSTER` and `--logs`/`PANEL_LOGS` still override; the
//! banner says which folder is in use and why ([`why`]).
//!
//! A home roster (2 or 3) that does not exist yet is written out from the
//! defaults built into the binary ([`ready_roster`]), whole or not at all:
//! into a temporary sibling, then renamed into place. One that exists is
//! the user's: nothing in it is ever overwritten; only a prompt template
//! this binary needs and the folder lacks (after an upgrade) is added.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;

use crate::exit::Exit;

/// How a default folder was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// It exists in the current folder.
    Here,
    /// Under `$PANEL_HOME`.
    PanelHome,
    /// Under the platform's data folder.
    DataDir,
    /// No home folder could be found: relative to the current folder.
    NoHome,
}

/// A default folder and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub source: Source,
}

/// The default roster and logs folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub roster: Place,
    pub logs: Place,
}

impl Home {
    /// The defaults, given which names exist as folders in the current
    /// folder, `$PANEL_HOME` and the platform's data folder (both may be
    /// missing).
    pub fn resolve(here: impl Fn(&str) -> bool, panel_home: Option<PathBuf>, data_dir: Option<PathBuf>) -> Self {
        let home = match (panel_home, data_dir) {
            (Some(p), _) => Some((p, Source::PanelHome)),
            (None, Some(d)) => Some((d, Source::DataDir)),
            (None, None) => None,
        };
        let place = |name: &str| {
            if here(name) {
                return Place { path: PathBuf::from(name), source: Source::Here };
            }
            match &home {
                Some((dir, source)) => Place { path: dir.join(name), source: *source },
                None => Place { path: PathBuf::from(name), source: Source::NoHome },
            }
        };
        Self { roster: place("roster"), logs: place("logs") }
    }

    /// The defaults for this process: its current folder and environment,
    /// found once.
    pub fn detected() -> &'static Self {
        static HOME: OnceLock<Home> = OnceLock::new();
        HOME.get_or_init(|| {
            let panel_home = std::env::var_os("PANEL_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
            let data_dir = directories::BaseDirs::new().map(|b| b.data_dir().join("panel"));
            Self::resolve(|name| Path::new(name).is_dir(), panel_home, data_dir)
        })
    }
}

/// The default of `--roster`.
pub fn default_roster() -> PathBuf {
    Home::detected().roster.path.clone()
}

/// The default of `--logs`.
pub fn default_logs() -> PathBuf {
    Home::detected().logs.path.clone()
}

/// Which of the two folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Roster,
    Logs,
}

/// Why `path` is the `folder` in use, in words for the banner.
pub fn why(path: &Path, folder: Folder) -> String {
    let home = Home::detected();
    let (place, flag) = match folder {
        Folder::Roster => (&home.roster, "--roster or PANEL_ROSTER"),
        Folder::Logs => (&home.logs, "--logs or PANEL_LOGS"),
    };
    if place.path != path {
        return format!("set by {flag}");
    }
    let name = match folder {
        Folder::Roster => "roster",
        Folder::Logs => "logs",
    };
    match place.source {
        Source::Here => "found in the current folder".into(),
        Source::PanelHome => "in PANEL_HOME".into(),
        Source::DataDir => format!("the data folder: no ./{name} here and PANEL_HOME unset"),
        Source::NoHome => "no home folder found: the current folder".into(),
    }
}

/// What [`ready_roster`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// Not a home roster, or nothing was missing.
    Untouched,
    /// The folder was created with the default roster.
    Created,
    /// These many prompt templates the folder lacked were added.
    Completed(usize),
}

/// Makes sure the roster at `roster` can be loaded when it is the home
/// roster (`$PANEL_HOME`'s or the data folder's): see the module's comment.
/// A roster in the current folder or named by a flag is left as it is.
pub fn ready_roster(roster: &Path) -> anyhow::Result<Seeded> {
    let place = &Home::detected().roster;
    if place.path != roster || !matches!(place.source, Source::PanelHome | Source::DataDir) {
        return Ok(Seeded::Untouched);
    }
    seed(roster).map_err(|e| {
        Exit::CannotStart.error(format!("cannot write the default roster into {}: {e:#}", roster.display()))
    })
}

/// Writes the default roster into `dir`: all of it when `dir` does not
/// exist, else only the prompt templates it lacks.
pub fn seed(dir: &Path) -> anyhow::Result<Seeded> {
    let defaults = crate::assets::default_roster();
    if !dir.exists() {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "roster".into());
        let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        for (path, bytes) in &defaults {
            let to = staging.join(path);
            std::fs::create_dir_all(to.parent().unwrap_or(&staging))?;
            std::fs::write(&to, bytes).with_context(|| format!("cannot write {}", to.display()))?;
        }
        return match std::fs::rename(&staging, dir) {
            Ok(()) => Ok(Seeded::Created),
            // Another panel starting at the same moment wrote it first.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(Seeded::Untouched)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(e).with_context(|| format!("cannot create {}", dir.display()))
            }
        };
    }
    let mut added = 0;
    for (path, bytes) in defaults.iter().filter(|(p, _)| p.starts_with("prompts/")) {
        let to = dir.join(path);
        if to.exists() {
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap_or(dir))?;
        let staging = to.with_file_name(format!(".{}.{}.tmp", path.replace('/', "_"), std::process::id()));
        std::fs::write(&staging, bytes).with_context(|| format!("cannot write {}", staging.display()))?;
        // A link fails if the file appeared meanwhile: what the user wrote stays.
        let placed = std::fs::hard_link(&staging, &to).or_else(|_| {
            if to.exists() {
                Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            } else {
                std::fs::rename(&staging, &to)
            }
        });
        let _ = std::fs::remove_file(&staging);
        if placed.is_ok() {
            added += 1;
        }
    }
    Ok(if added == 0 { Seeded::Untouched } else { Seeded::Completed(added) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_in_the_current_folder_come_first_then_panel_home_then_the_data_folder() {
        let data = Some(PathBuf::from("/data/panel"));
        let home = Home::resolve(|n| n == "roster", Some("/ph".into()), data.clone());
        assert_eq!(home.roster, Place { path: "roster".into(), source: Source::Here });
        assert_eq!(home.logs, Place { path: "/ph/logs".into(), source: Source::PanelHome });
        let home = Home::resolve(|_| false, None, data);
        assert_eq!(home.roster, Place { path: "/data/panel/roster".into(), source: Source::DataDir });
        assert_eq!(home.logs.path, PathBuf::from("/data/panel/logs"));
        let home = Home::resolve(|_| false, None, None);
        assert_eq!(home.logs, Place { path: "logs".into(), source: Source::NoHome });
    }

    #[test]
    fn a_missing_roster_is_written_out_whole_and_an_existing_one_keeps_every_edit() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("deep/panel/roster");
        assert_eq!(seed(&dir).unwrap(), Seeded::Created);
        assert!(dir.join("characters/ada.md").is_file());
        assert!(dir.join("prompts/head.md.j2").is_file());
        assert!(dir.join("pricing.toml").is_file());
        // No staging folder is left beside it.
        let siblings: Vec<_> = std::fs::read_dir(dir.parent().unwrap()).unwrap().collect();
        assert_eq!(siblings.len(), 1);

        std::fs::write(dir.join("characters/ada.md"), "edited").unwrap();
        std::fs::remove_file(dir.join("characters/byron.md")).unwrap();
        std::fs::write(dir.join("prompts/floor.txt.j2"), "my floor").unwrap();
        std::fs::remove_file(dir.join("prompts/join.txt.j2")).unwrap();
        assert_eq!(seed(&dir).unwrap(), Seeded::Completed(1));
        assert_eq!(std::fs::read_to_string(dir.join("characters/ada.md")).unwrap(), "edited");
        assert!(!dir.join("characters/byron.md").exists(), "a removed character stays removed");
        assert_eq!(std::fs::read_to_string(dir.join("prompts/floor.txt.j2")).unwrap(), "my floor");
        assert!(dir.join("prompts/join.txt.j2").is_file(), "a missing template is added back");
        assert_eq!(seed(&dir).unwrap(), Seeded::Untouched);
        let leftovers = std::fs::read_dir(dir.join("prompts")).unwrap().filter_map(Result::ok);
        assert!(leftovers.map(|e| e.file_name().to_string_lossy().into_owned()).all(|n| !n.ends_with(".tmp")));
    }
}
