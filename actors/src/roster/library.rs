//! The roster as a running server holds it: one loaded [`Roster`] at a
//! time, swapped whole when the folder changes — whether the app wrote a
//! character or someone edited a file by hand — so no restart is needed.
//! A malformed file is reported (in the roster's problems, and the log) and
//! the others stay. A session's head never changes with it: sessions
//! snapshot their characters when they open or when one joins.
//!
//! Changes are found by comparing a stamp of the folder (every file's name,
//! size and modification time), looked at once a second by the server;
//! polling a few dozen entries is cheaper and more portable than a file
//! watcher, and catches editors that replace files by renaming.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::Roster;

type Stamp = Vec<(String, u64, Option<SystemTime>)>;

pub struct Library {
    dir: Option<PathBuf>,
    current: RwLock<Arc<Roster>>,
    stamp: Mutex<Stamp>,
}

fn stamp(dir: &Path) -> Stamp {
    let mut entries: Stamp = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), meta.len(), meta.modified().ok()))
        })
        .collect();
    entries.sort();
    entries
}

impl Library {
    /// The roster in `dir` (the `roster/characters` folder), kept current.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<Self>> {
        let before = stamp(dir);
        let roster = Roster::load(dir)?;
        Ok(Arc::new(Self {
            dir: Some(dir.to_owned()),
            current: RwLock::new(Arc::new(roster)),
            stamp: Mutex::new(before),
        }))
    }

    /// A roster that never changes (tests, offline commands).
    pub fn fixed(roster: Roster) -> Arc<Self> {
        Arc::new(Self { dir: None, current: RwLock::new(Arc::new(roster)), stamp: Mutex::new(Vec::new()) })
    }

    pub fn current(&self) -> Arc<Roster> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The folder the characters live in, if they come from one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads the folder again if anything in it changed; says whether it did.
    /// Blocking file I/O: call it off the actor threads.
    pub fn refresh(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        let now = stamp(dir);
        let mut seen = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return false;
        }
        match Roster::load(dir) {
            Ok(roster) => {
                for problem in roster.problems() {
                    log::warn!("roster: skipped {problem}");
                }
                log::info!("roster: reloaded, {} characters", roster.characters().count());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(roster);
                *seen = now;
                true
            }
            Err(e) => {
                log::warn!("roster: cannot reload: {e:#}");
                false
            }
        }
    }
}
