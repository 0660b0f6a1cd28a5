//! The append-only event log: `logs/<session>/events.jsonl`.
//!
//! Invariants:
//! - `seq` runs 1, 2, 3 … with no gaps; [`EventLog::append`] assigns it.
//! - A line is written in one `write` on an `O_APPEND` file and is in the OS
//!   before `append` returns, so nobody (gateway, subscriber) ever sees an
//!   event that a reader of the file could not. If the write fails part way,
//!   the file is cut back to its previous length: no half line survives.
//! - Durability is a setting: fsync after every event, or only where it
//!   matters (turn end, abort, open, close, repair) — the default.
//! - [`EventLog::open`] repairs what a crash can leave: a torn final line is
//!   truncated (and a `log-repair` event says how many bytes went), and a turn
//!   that never ended is closed with `turn-aborted` (reason `recovery`), before
//!   anything new is appended.
//! - One writer per log: the writer holds an exclusive lock on the file, so
//!   a second server, a `panel close` beside a running server, or a racing
//!   actor cannot interleave lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::event::{Event, EventBody, Logged, Timestamp};
use crate::id::SessionId;

/// When the log asks the OS to put events on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// fsync after every event: nothing acknowledged is ever lost, at a
    /// cost of one disk flush per streamed line.
    PerEvent,
    /// fsync when a turn ends (or aborts) and on open, close and repair. A
    /// power cut can lose the tail of the turn in flight, which recovery then
    /// closes as aborted. A process crash loses nothing either way.
    #[default]
    PerTurn,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("session {0} already exists")]
    Exists(SessionId),
    #[error("session {0} has no log")]
    NotFound(SessionId),
    #[error("session {0}'s log is held by another writer (is a panel server serving it?)")]
    Locked(SessionId),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    Corrupt { path: PathBuf, line: usize, message: String },
}

/// What [`EventLog::open`] found and did.
#[derive(Debug)]
pub struct Opened {
    pub log: EventLog,
    /// Every event in the log, including any the repair appended.
    pub events: Vec<Arc<Logged>>,
    /// Bytes of a torn final line that were cut off (0 if none).
    pub torn_bytes: u64,
    /// The turn that was open and has been closed as aborted, if any.
    pub recovered_turn: Option<u32>,
}

/// The writer of one session's log.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    len: u64,
    next_seq: u64,
    session: SessionId,
    durability: Durability,
}

/// `logs/<session>/events.jsonl`.
pub fn events_path(root: &Path, id: &SessionId) -> PathBuf {
    root.join(id.as_str()).join("events.jsonl")
}

impl EventLog {
    /// Creates the session's folder and an empty log. Fails with
    /// [`LogError::Exists`] rather than touching an existing session.
    pub fn create(root: &Path, id: &SessionId, durability: Durability) -> Result<Self, LogError> {
        let dir = root.join(id.as_str());
        let io = |source| LogError::Io { path: dir.clone(), source };
        std::fs::create_dir_all(root).map_err(io)?;
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(LogError::Exists(id.clone()));
            }
            other => other.map_err(io)?,
        }
        let path = events_path(root, id);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| LogError::Io { path: path.clone(), source })?;
        lock(&file, &path, id)?;
        Ok(Self { path, file, len: 0, next_seq: 1, session: id.clone(), durability })
    }

    /// Opens an existing log for appending, repairing a crash's leftovers.
    pub fn open(root: &Path, id: &SessionId, durability: Durability) -> Result<Opened, LogError> {
        let path = events_path(root, id);
        // Lock before reading, so no other writer can append in between.
        let file = match OpenOptions::new().append(true).open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LogError::NotFound(id.clone())),
            other => other.map_err(|source| LogError::Io { path: path.clone(), source })?,
        };
        lock(&file, &path, id)?;
        let (bytes, whole) = read_bytes(&path, id)?;
        let torn_bytes = (bytes.len() - whole) as u64;
        let mut events = parse_lines(&path, &bytes[..whole])?;
        for (i, logged) in events.iter().enumerate() {
            let line = i + 1;
            if logged.event.seq != line as u64 {
                let message = format!("seq {} where {line} was expected", logged.event.seq);
                return Err(LogError::Corrupt { path, line, message });
            }
            if logged.event.session != *id {
                let message = format!("event of session {} in this log", logged.event.session);
                return Err(LogError::Corrupt { path, line, message });
            }
        }
        if torn_bytes > 0 {
            file.set_len(whole as u64).map_err(|source| LogError::Io { path: path.clone(), source })?;
        }
        let mut log =
            Self { path, file, len: whole as u64, next_seq: events.len() as u64 + 1, session: id.clone(), durability };
        let last_turn = events.last().map_or(0, |l| l.event.turn);
        if torn_bytes > 0 {
            events.push(log.append(last_turn, EventBody::LogRepair { torn_bytes })?);
        }
        let recovered_turn = open_turn(&events);
        if let Some(turn) = recovered_turn {
            let reason = "recovery".to_owned();
            events.push(log.append(turn, EventBody::TurnAborted { reason })?);
        }
        Ok(Opened { log, events, torn_bytes, recovered_turn })
    }

    /// Appends one event, assigning its `seq` and `ts`. When this returns,
    /// the line is in the file (and on disk, per the durability setting).
    pub fn append(&mut self, turn: u32, body: EventBody) -> Result<Arc<Logged>, LogError> {
        let event = Event { seq: self.next_seq, ts: Timestamp::now(), session: self.session.clone(), turn, body };
        let mut line = serde_json::to_string(&event).map_err(|e| LogError::Corrupt {
            path: self.path.clone(),
            line: self.next_seq as usize,
            message: format!("cannot serialise: {e}"),
        })?;
        line.push('\n');
        if let Err(source) = self.file.write_all(line.as_bytes()) {
            // Cut back a partial write so the file only ever holds whole lines.
            let _ = self.file.set_len(self.len);
            return Err(LogError::Io { path: self.path.clone(), source });
        }
        let must_sync = match self.durability {
            Durability::PerEvent => true,
            Durability::PerTurn => matches!(
                event.body,
                EventBody::TurnEnd { .. }
                    | EventBody::TurnAborted { .. }
                    | EventBody::SessionOpen { .. }
                    | EventBody::SessionClose { .. }
                    | EventBody::LogRepair { .. }
            ),
        };
        if must_sync {
            self.sync()?;
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        line.pop();
        Ok(Arc::new(Logged { event, json: line.into() }))
    }

    /// Puts everything appended so far on disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::Io { path: self.path.clone(), source })
    }

    /// The `seq` the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a log without opening it for writing: every whole line, in order.
/// A torn final line (a writer mid-append, or a crash not yet repaired) is
/// left out, so readers can tail a live log safely.
pub fn read(root: &Path, id: &SessionId) -> Result<Vec<Arc<Logged>>, LogError> {
    let path = events_path(root, id);
    let (bytes, whole) = read_bytes(&path, id)?;
    parse_lines(&path, &bytes[..whole])
}

/// Takes the writer's lock. A writer that is just going away (an actor
/// being restarted) gets a moment to let go; a live one keeps it.
fn lock(file: &File, path: &Path, id: &SessionId) -> Result<(), LogError> {
    for attempt in 0..20 {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if attempt < 19 => {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::WouldBlock) => break,
            Err(std::fs::TryLockError::Error(source)) => return Err(LogError::Io { path: path.to_owned(), source }),
        }
    }
    Err(LogError::Locked(id.clone()))
}

/// The log's bytes, and how many of them are whole lines.
fn read_bytes(path: &Path, id: &SessionId) -> Result<(Vec<u8>, usize), LogError> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LogError::NotFound(id.clone())),
        other => other.map_err(|source| LogError::Io { path: path.to_owned(), source })?,
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok((bytes, whole))
}

fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Vec<Arc<Logged>>, LogError> {
    let corrupt = |line: usize, message: String| LogError::Corrupt { path: path.to_owned(), line, message };
    let mut events = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let json = std::str::from_utf8(raw).map_err(|e| corrupt(i + 1, e.to_string()))?;
        let event: Event = serde_json::from_str(json).map_err(|e| corrupt(i + 1, e.to_string()))?;
        events.push(Arc::new(Logged { event, json: json.into() }));
    }
    Ok(events)
}

/// The turn left open by a crash: the floor spoke (or the turn started) and
/// no `turn-end` / `turn-aborted` followed.
fn open_turn(events: &[Arc<Logged>]) -> Option<u32> {
    events.iter().rev().find_map(|l| match &l.event.body {
        b if b.closes_turn() => Some(None),
        EventBody::HumanSpeak { .. } | EventBody::TurnStart { .. } => Some(Some(l.event.turn)),
        _ => None,
    })?
}
