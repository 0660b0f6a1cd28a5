//! `logs/<session>/replays/index.json`: every replay of a session, as
//! listed, and per replayed turn its summary — what the chat and the static
//! viewer show, computed by the one module that computes it (the viewer
//! reads files, not the API).
//!
//! Invariants:
//! - The index is rewritten whole (temp file + rename), so a reader never
//!   sees half of one.
//! - Writes of one session's index never overlap, and one asked for earlier
//!   never lands over one asked for later: each is numbered when asked for,
//!   and a write that finds a later one already done is skipped (the later
//!   one read the replay logs after it, so it holds at least as much).
//! - A replay run asks for a write after each sample and before it closes,
//!   and waits for it, so the index holds a sample before the replay's next
//!   event is published: a client that reads the index on `turn-start` or
//!   `replay-close` sees every sample that has ended.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::summary::{ReplayListing, Summary, summarise};
use super::{ReplayError, replays_dir};
use crate::event::Logged;
use crate::event_log;
use crate::id::SessionId;

/// Writes sessions' replay indexes in the order they were asked for.
#[derive(Clone, Default)]
pub struct Indexer {
    asked: Arc<AtomicU64>,
    /// Per session, the number of the last write that landed.
    landed: Arc<Mutex<HashMap<SessionId, u64>>>,
}

impl Indexer {
    /// Rewrites `session`'s index, marking `running` as being played.
    /// Numbered now, written on a blocking thread; resolves once written
    /// (or once a later write has made this one needless).
    pub fn write(
        &self,
        logs: PathBuf,
        session: SessionId,
        running: Vec<String>,
    ) -> impl Future<Output = Result<(), ReplayError>> + use<> {
        let number = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let this = self.clone();
        async move {
            let written = tokio::task::spawn_blocking(move || this.write_numbered(number, &logs, &session, &running));
            written.await.map_err(|e| ReplayError::Unavailable(e.to_string()))?
        }
    }

    /// Rewrites `session`'s index at once (blocking).
    pub fn write_now(&self, logs: &Path, session: &SessionId, running: &[String]) -> Result<(), ReplayError> {
        let number = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.write_numbered(number, logs, session, running)
    }

    fn write_numbered(
        &self,
        number: u64,
        logs: &Path,
        session: &SessionId,
        running: &[String],
    ) -> Result<(), ReplayError> {
        // Held across the write: one index write at a time, and no older
        // one after a newer.
        let mut landed = self.landed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if landed.get(session).is_some_and(|&last| last > number) {
            return Ok(());
        }
        write_index(logs, session, running)?;
        landed.insert(session.clone(), number);
        Ok(())
    }
}

/// Every replay log of `session`, read (blocking), in the order they were
/// started (ids name their second only, so two in one second need the
/// `replay-open` time to keep their order).
pub fn read_all(logs: &Path, session: &SessionId) -> Result<Vec<Vec<Arc<Logged>>>, ReplayError> {
    let dir = replays_dir(logs, session);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(|source| event_log::LogError::Io { path: dir.clone(), source })?,
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    let mut logs_read = Vec::new();
    for path in paths {
        match event_log::read_file(&path, session) {
            Ok(events) if !events.is_empty() => logs_read.push(events),
            Ok(_) => {}
            // One unreadable replay must not hide the others.
            Err(e) => log::warn!("session {session}: a replay log cannot be read: {e}"),
        }
    }
    // Stable: ids (the paths' order) break a tie.
    logs_read.sort_by_key(|events| events[0].event.ts);
    Ok(logs_read)
}

fn write_index(logs: &Path, session: &SessionId, running: &[String]) -> Result<(), ReplayError> {
    // Each log with its listing, read once.
    let listed: Vec<(ReplayListing, Vec<Arc<Logged>>)> = read_all(logs, session)?
        .into_iter()
        .filter_map(|log| ReplayListing::from_events(&log).map(|listing| (listing, log)))
        .collect();
    let events = event_log::read(logs, session)?;
    let turns: std::collections::BTreeSet<u32> = listed.iter().map(|(l, _)| l.turn).collect();
    let summaries: Vec<Summary> = turns
        .into_iter()
        .map(|turn| {
            let same_turn: Vec<Vec<Arc<Logged>>> =
                listed.iter().filter(|(l, _)| l.turn == turn).map(|(_, log)| log.clone()).collect();
            summarise(turn, &events, &same_turn)
        })
        .collect();
    let listings: Vec<ReplayListing> = listed
        .into_iter()
        .map(|(mut l, _)| {
            l.running = !l.closed && running.contains(&l.id);
            l
        })
        .collect();
    let index = serde_json::json!({ "session": session, "replays": listings, "turns": summaries });
    let text = serde_json::to_string_pretty(&index).unwrap_or_default();
    crate::record::write_atomic(&replays_dir(logs, session).join("index.json"), &text)
        .map_err(|e| ReplayError::Unavailable(e.to_string()))
}
