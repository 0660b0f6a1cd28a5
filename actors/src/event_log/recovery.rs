//! Start-up recovery: every log a crash left torn, or with a turn that never
//! ended, is repaired before the server accepts a connection — so no tailer
//! ever watches a turn that can no longer end, and nothing reading
//! `events.jsonl` meets a torn last line.
//!
//! A log that needs nothing costs one read of its last few kilobytes, so
//! start-up time stays flat in the number of healthy sessions. Only a log
//! that needs repair is read whole, by [`EventLog::open`], which appends the
//! `log-repair` and `turn-aborted` (reason `recovery`) events.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Durability, EventLog, LogError, events_path, turn_state};
use crate::event::Event;
use crate::id::SessionId;

/// What start-up recovery found and did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every session with a log.
    pub sessions: Vec<SessionId>,
    pub repaired: Vec<Repaired>,
    /// Logs that could not be checked or repaired, and why. They are left
    /// as they are; the session reports the error when it is opened.
    pub problems: Vec<(SessionId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub id: SessionId,
    pub torn_bytes: u64,
    /// The turn closed as aborted, if one was open.
    pub turn: Option<u32>,
}

/// Checks every log under `root` and repairs those that need it.
pub fn recover_all(root: &Path, durability: Durability) -> Recovered {
    let mut out = Recovered { sessions: session_ids(root), ..Recovered::default() };
    for id in &out.sessions {
        let path = events_path(root, id);
        match needs_repair(&path) {
            Ok(false) => {}
            Ok(true) => match EventLog::open(root, id, durability) {
                Ok(opened) => out.repaired.push(Repaired {
                    id: id.clone(),
                    torn_bytes: opened.torn_bytes,
                    turn: opened.recovered_turn,
                }),
                Err(e) => out.problems.push((id.clone(), e.to_string())),
            },
            Err(e) => out.problems.push((id.clone(), e.to_string())),
        }
    }
    out
}

/// Every session folder under `root` that has a log, sorted.
pub fn session_ids(root: &Path) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str().and_then(|n| SessionId::parse(n).ok()))
        .filter(|id| events_path(root, id).exists())
        .collect();
    ids.sort();
    ids
}

/// Whether the log ends torn or inside a turn, reading it backwards from its
/// end only as far as the last event that opens or closes a turn.
pub fn needs_repair(path: &Path) -> Result<bool, LogError> {
    let io = |source| LogError::Io { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        file.by_ref().take(len - start).read_to_end(&mut bytes).map_err(io)?;
        if bytes.last() != Some(&b'\n') {
            return Ok(true);
        }
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        // Unless this window starts the file, its first line may be cut.
        if start > 0 && !lines.is_empty() {
            lines.remove(0);
        }
        for line in lines.iter().rev() {
            let event: Event = serde_json::from_slice(line).map_err(|e| LogError::Corrupt {
                path: path.to_owned(),
                line: 0,
                message: format!("near the end: {e}"),
            })?;
            if let Some(open) = turn_state(&event.body) {
                return Ok(open);
            }
        }
        if start == 0 {
            return Ok(false);
        }
        window = window.saturating_mul(4);
    }
}
