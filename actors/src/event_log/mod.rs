//! The append-only event log: `logs/<session>/events.jsonl`.
//!
//! Invariants:
//! - `seq` runs 1, 2, 3 … with no gaps; whoever appends assigns it (an
//!   [`EventLog`] here, or a session's [`Appender`]).
//! - A line is written in one `write` on an `O_APPEND` file and is in the OS
//!   before anyone is told of it, so nobody (gateway, subscriber) ever sees an
//!   event that a reader of the file could not. If the write fails part way,
//!   the file is cut back to its previous length: no half line survives.
//! - Durability is a setting: fsync after every event, or only where it
//!   matters (turn end, abort, open, close, repair) — the default.
//! - [`EventLog::open`] repairs what a crash can leave: a torn final line is
//!   truncated (and a `log-repair` event says how many bytes went), and a turn
//!   that never ended is closed with `turn-aborted` (reason `recovery`), before
//!   anything new is appended. [`recovery`] does the same for every log at
//!   start-up, reading only the tail of those that need nothing.
//! - One writer per log: the writer holds an exclusive lock on the file, so
//!   a second server, a `panel close` beside a running server, or a racing
//!   actor cannot interleave lines. Taking the lock never waits: a log that is
//!   held is reported as such, and the server orders its own hand-overs.
//! - No actor thread writes or syncs a file: a session's lines go to the
//!   [`writer`] threads, which write them in order and only then publish them.

pub mod recovery;
pub mod writer;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use writer::{Appender, LogFailed, LogWriter};

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

impl Durability {
    /// Whether appending `body` must reach the disk before it is published.
    pub fn must_sync(self, body: &EventBody) -> bool {
        match self {
            Self::PerEvent => true,
            Self::PerTurn => matches!(
                body,
                EventBody::TurnEnd { .. }
                    | EventBody::TurnAborted { .. }
                    | EventBody::SessionOpen { .. }
                    | EventBody::SessionClose { .. }
                    | EventBody::LogRepair { .. }
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("session {0} already exists")]
    Exists(SessionId),
    #[error("session {0} has no log")]
    NotFound(SessionId),
    #[error("session {0}'s log is held by another writer (is a panel server serving it?)")]
    Locked(SessionId),
    #[error("{}: {source}", shown(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}, line {line}: {message}", shown(path))]
    Corrupt { path: PathBuf, line: usize, message: String },
    /// The log failed earlier (see the error logged then) and takes no more events.
    #[error("session {0}'s log failed and takes no more events: {1}")]
    Failed(SessionId, String),
}

/// A log's path as messages show it: the session's folder and the file
/// (`<session>/events.jsonl`), never where the logs folder sits on this
/// machine — these messages reach API answers and logged events.
fn shown(path: &std::path::Path) -> String {
    let mut parts: Vec<_> = path.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy()).collect();
    parts.reverse();
    parts.join("/")
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

impl Opened {
    /// The events the repair appended (already in the log).
    pub fn repairs(&self) -> &[Arc<Logged>] {
        let appended = self.torn_bytes.min(1) as usize + self.recovered_turn.map_or(0, |_| 1);
        &self.events[self.events.len() - appended..]
    }
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

    /// Creates a new log at `path` (making its folder) for events about
    /// `session`: a replay's log, which lives beside its session's and is
    /// never the session's own. Fails rather than touch an existing file.
    pub fn create_file(path: PathBuf, session: &SessionId, durability: Durability) -> Result<Self, LogError> {
        let io = |source| LogError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = match OpenOptions::new().append(true).create_new(true).open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(LogError::Exists(session.clone())),
            other => other.map_err(io)?,
        };
        lock(&file, &path, session)?;
        Ok(Self { path, file, len: 0, next_seq: 1, session: session.clone(), durability })
    }

    /// Opens an existing log for appending, repairing a crash's leftovers.
    pub fn open(root: &Path, id: &SessionId, durability: Durability) -> Result<Opened, LogError> {
        let mut opened = Self::open_file(events_path(root, id), id, durability)?;
        opened.recovered_turn = open_turn(&opened.events);
        if let Some(turn) = opened.recovered_turn {
            let reason = "recovery".to_owned();
            opened.events.push(opened.log.append(turn, EventBody::TurnAborted { reason })?);
        }
        Ok(opened)
    }

    /// Opens an existing log at `path` for appending, cutting off a torn
    /// final line (and logging that repair); a turn left open is the
    /// caller's to close (a session's and a replay's close differently).
    pub fn open_file(path: PathBuf, id: &SessionId, durability: Durability) -> Result<Opened, LogError> {
        // Lock before reading, so no other writer can append in between.
        let file = match OpenOptions::new().append(true).open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LogError::NotFound(id.clone())),
            other => other.map_err(|source| LogError::Io { path: path.clone(), source })?,
        };
        lock(&file, &path, id)?;
        let (bytes, whole) = read_bytes(&path, id)?;
        let torn_bytes = (bytes.len() - whole) as u64;
        let mut events = parse_lines(&path, &bytes[..whole], 1)?;
        drop(bytes);
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
        Ok(Opened { log, events, torn_bytes, recovered_turn: None })
    }

    /// Appends one event, assigning its `seq` and `ts`. When this returns,
    /// the line is in the file (and on disk, per the durability setting).
    /// For tools and repairs; a running session appends through its [`Appender`].
    pub fn append(&mut self, turn: u32, body: EventBody) -> Result<Arc<Logged>, LogError> {
        self.append_sample(turn, None, body)
    }

    /// Like [`EventLog::append`], for an event of one sample of a replay.
    pub fn append_sample(&mut self, turn: u32, sample: Option<u32>, body: EventBody) -> Result<Arc<Logged>, LogError> {
        let logged = encode_sample(&self.session, self.next_seq, turn, sample, body)
            .map_err(|message| LogError::Corrupt { path: self.path.clone(), line: self.next_seq as usize, message })?;
        let sync = self.durability.must_sync(&logged.event.body);
        self.write(&logged, sync)?;
        Ok(logged)
    }

    /// Writes an event encoded elsewhere, whose seq must be the next one.
    pub fn write(&mut self, logged: &Logged, sync: bool) -> Result<(), LogError> {
        if logged.event.seq != self.next_seq {
            let message = format!("seq {} handed to a log expecting {}", logged.event.seq, self.next_seq);
            return Err(LogError::Corrupt { path: self.path.clone(), line: self.next_seq as usize, message });
        }
        let mut line = Vec::with_capacity(logged.json.len() + 1);
        line.extend_from_slice(logged.json.as_bytes());
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            // Cut back a partial write so the file only ever holds whole lines.
            let _ = self.file.set_len(self.len);
            return Err(LogError::Io { path: self.path.clone(), source });
        }
        if sync {
            self.sync()?;
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Puts everything appended so far on disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::Io { path: self.path.clone(), source })
    }

    /// The `seq` the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An event with its seq and a timestamp of now, serialised once.
pub fn encode(session: &SessionId, seq: u64, turn: u32, body: EventBody) -> Result<Arc<Logged>, String> {
    encode_sample(session, seq, turn, None, body)
}

/// Like [`encode`], for an event of one sample of a replay.
pub fn encode_sample(
    session: &SessionId,
    seq: u64,
    turn: u32,
    sample: Option<u32>,
    body: EventBody,
) -> Result<Arc<Logged>, String> {
    let event = Event { seq, ts: Timestamp::now(), session: session.clone(), turn, sample, body };
    let json = serde_json::to_string(&event).map_err(|e| format!("cannot serialise: {e}"))?;
    Ok(Arc::new(Logged { event, json: json.into() }))
}

/// Reads a log without opening it for writing: every whole line, in order.
/// A torn final line (a writer mid-append, or a crash not yet repaired) is
/// left out, so readers can tail a live log safely.
pub fn read(root: &Path, id: &SessionId) -> Result<Vec<Arc<Logged>>, LogError> {
    let path = events_path(root, id);
    let (bytes, whole) = read_bytes(&path, id)?;
    parse_lines(&path, &bytes[..whole], 1)
}

/// The events after `since`, reading the log backwards from its end only as
/// far as needed: a subscriber that is nearly up to date costs a few
/// kilobytes of reading, not the whole log.
pub fn read_after(root: &Path, id: &SessionId, since: u64) -> Result<Vec<Arc<Logged>>, LogError> {
    read_after_file(&events_path(root, id), id, since)
}

/// Reads a log at `path` (a replay's) without opening it for writing, as [`read`] does.
pub fn read_file(path: &Path, id: &SessionId) -> Result<Vec<Arc<Logged>>, LogError> {
    let (bytes, whole) = read_bytes(path, id)?;
    parse_lines(path, &bytes[..whole], 1)
}

/// The events after `since` of the log at `path` (a replay's), as [`read_after`] reads them.
pub fn read_after_file(path: &Path, id: &SessionId, since: u64) -> Result<Vec<Arc<Logged>>, LogError> {
    let path = path.to_owned();
    let io = |source| LogError::Io { path: path.clone(), source };
    let mut file = match File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LogError::NotFound(id.clone())),
        other => other.map_err(io)?,
    };
    let len = file.metadata().map_err(io)?.len();
    let mut window = 16 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        Read::by_ref(&mut file).take(len - start).read_to_end(&mut bytes).map_err(io)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Unless this window starts the file, its first line may be cut: skip it.
        let first = if start == 0 { 0 } else { bytes.iter().position(|&b| b == b'\n').map_or(whole, |i| i + 1) };
        let from = first.min(whole);
        let events = parse_lines(&path, &bytes[from..whole], 0)?;
        let reaches_back = start == 0 || events.first().is_some_and(|l| l.event.seq <= since + 1);
        if reaches_back {
            return Ok(events.into_iter().filter(|l| l.event.seq > since).collect());
        }
        window = window.saturating_mul(4);
    }
}

/// Takes the writer's lock, or reports the log as held. It never waits: a
/// writer of this process hands its log over explicitly (the registry stops
/// an actor, and its log is released, before another opens it), and one of
/// another process is not going to let go.
fn lock(file: &File, path: &Path, id: &SessionId) -> Result<(), LogError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked(id.clone())),
        Err(std::fs::TryLockError::Error(source)) => Err(LogError::Io { path: path.to_owned(), source }),
    }
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

/// Parses whole lines. `first_line` numbers them for error messages (0 when
/// the bytes do not start the file, and the seq is the better guide).
fn parse_lines(path: &Path, bytes: &[u8], first_line: usize) -> Result<Vec<Arc<Logged>>, LogError> {
    let corrupt = |line: usize, message: String| LogError::Corrupt { path: path.to_owned(), line, message };
    let mut events = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let line = if first_line == 0 { 0 } else { first_line + i };
        let json = std::str::from_utf8(raw).map_err(|e| corrupt(line, e.to_string()))?;
        let event: Event = serde_json::from_str(json).map_err(|e| corrupt(line, e.to_string()))?;
        events.push(Arc::new(Logged { event, json: json.into() }));
    }
    Ok(events)
}

/// The turn left open by a crash: the floor spoke (or the turn started) and
/// no `turn-end` / `turn-aborted` followed.
fn open_turn(events: &[Arc<Logged>]) -> Option<u32> {
    events.iter().rev().find_map(|l| turn_state(&l.event.body).map(|open| open.then_some(l.event.turn)))?
}

/// Whether an event closes a turn (`Some(false)`), opens one (`Some(true)`),
/// or says nothing about it (`None`).
fn turn_state(body: &EventBody) -> Option<bool> {
    match body {
        b if b.closes_turn() => Some(false),
        EventBody::HumanSpeak { .. } | EventBody::TurnStart { .. } => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_error_names_the_session_and_its_file_but_not_the_machines_folders() {
        let path = PathBuf::from("/home/someone/work/logs/abc123/events.jsonl");
        let io = LogError::Io { path: path.clone(), source: std::io::Error::other("File too large") };
        assert_eq!(io.to_string(), "abc123/events.jsonl: File too large");
        let corrupt = LogError::Corrupt { path, line: 7, message: "not JSON".into() };
        assert_eq!(corrupt.to_string(), "abc123/events.jsonl, line 7: not JSON");
    }
}
