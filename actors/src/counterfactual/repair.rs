//! Replays a stop or a crash cut short: closed when the book starts, so
//! that no replay is shown playing forever and no stream of one waits for
//! a `replay-close` that would never come.
//!
//! Invariants:
//! - Only logs without `replay-close` are touched, and only by appending
//!   (as a session's recovery does): a torn final line is cut and logged,
//!   the sample left open gets `error` + `turn-aborted` (reason
//!   `interrupted`, with its `sample`), then `replay-close` with the totals
//!   of what the log says was spent.
//! - A log another writer holds (a replay still playing in another process
//!   on the same logs) is left alone, and listed as playing.
//! - Each session touched, and each whose index still says something is
//!   playing, gets its index rewritten with only those held playing.

use std::path::Path;

use super::index::Indexer;
use super::summary::ReplayListing;
use super::{INTERRUPTED, INTERRUPTED_WHY, replays_dir};
use crate::event::EventBody;
use crate::event_log::{Durability, EventLog, LogError};
use crate::id::SessionId;

/// Closes every interrupted replay under `logs` and rewrites the indexes
/// that need it (blocking: call on a blocking thread).
pub fn close_interrupted(logs: &Path, durability: Durability, index: &Indexer) {
    let Ok(sessions) = std::fs::read_dir(logs) else { return };
    for entry in sessions.filter_map(Result::ok) {
        let Ok(session) = SessionId::parse(&entry.file_name().to_string_lossy()) else { continue };
        let dir = replays_dir(logs, &session);
        let Ok(files) = std::fs::read_dir(&dir) else { continue };
        let (mut touched, mut held) = (false, Vec::new());
        for path in files.filter_map(Result::ok).map(|f| f.path()) {
            if path.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            match close_one(&path, &session, durability) {
                Ok(Closing::Closed) => touched = true,
                Ok(Closing::Whole) => {}
                // Still playing elsewhere: listed as such.
                Ok(Closing::Held) => held.extend(path.file_stem().map(|s| s.to_string_lossy().into_owned())),
                Err(e) => log::warn!("session {session}: an interrupted replay could not be closed: {e}"),
            }
        }
        let stale =
            std::fs::read_to_string(dir.join("index.json")).is_ok_and(|text| text.contains("\"running\": true"));
        if touched || stale {
            let written = index.write_now(logs, &session, &held);
            if let Err(e) = written {
                log::warn!("session {session}: the replay index could not be written: {e}");
            }
        }
    }
}

/// What [`close_one`] found.
enum Closing {
    /// It was whole: closed by its run.
    Whole,
    /// It was cut short, and is closed now.
    Closed,
    /// Another writer holds it: it is being played.
    Held,
}

/// Closes one replay's log if it was cut short.
fn close_one(path: &Path, session: &SessionId, durability: Durability) -> Result<Closing, LogError> {
    let events = crate::event_log::read_file(path, session)?;
    if events.last().is_some_and(|l| matches!(l.event.body, EventBody::ReplayClose { .. })) {
        return Ok(Closing::Whole);
    }
    let mut opened = match EventLog::open_file(path.to_owned(), session, durability) {
        Ok(opened) => opened,
        Err(LogError::Locked(_)) => return Ok(Closing::Held),
        Err(e) => return Err(e),
    };
    let events = &opened.events;
    let Some(first) = events.first() else { return Ok(Closing::Whole) };
    let turn = first.event.turn;
    // What was spent, as the listing counts it.
    let totals = ReplayListing::from_events(events).map(|l| l.totals).unwrap_or_default();
    // The sample whose turn-start has no end after it.
    let open = events.iter().rev().find_map(|l| match &l.event.body {
        EventBody::TurnStart { .. } => Some(l.event.sample),
        b if b.closes_turn() => Some(None),
        _ => None,
    });
    let log = &mut opened.log;
    if let Some(sample) = open.flatten() {
        let message = INTERRUPTED_WHY.to_owned();
        log.append_sample(turn, Some(sample), EventBody::Error { code: INTERRUPTED.into(), message })?;
        log.append_sample(turn, Some(sample), EventBody::TurnAborted { reason: INTERRUPTED.into() })?;
    }
    log.append_sample(turn, None, EventBody::ReplayClose { totals })?;
    log.sync()?;
    Ok(Closing::Closed)
}
