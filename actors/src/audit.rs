//! `panel audit`: checks that a recorded session is what it claims to be.
//!
//! From the log: `seq` runs 1, 2, 3 … with no gap; every turn that starts
//! is closed by `turn-end` or `turn-aborted`; everyone who confers, speaks or
//! passes is on stage at that turn; at least one character is on stage at
//! all times. Against the log: `session.json` (participants and their
//! join/leave turns, totals equal to the sum of `cost` events),
//! `transcript.md` and the session's `index.json` entry. And nothing in the
//! folder may look like an API key.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::event::{Event, EventBody};
use crate::event_log;
use crate::id::{CharacterId, SessionId};
use crate::record;

/// One thing found wrong, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}:{n}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

struct Report {
    session: SessionId,
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, file: &str, line: Option<usize>, message: impl Into<String>) {
        self.findings.push(Finding { file: format!("{}/{file}", self.session), line, message: message.into() });
    }
}

/// Everything wrong with session `id` in `logs`; empty when all is well.
pub fn audit(logs: &Path, id: &SessionId) -> Vec<Finding> {
    let mut r = Report { session: id.clone(), findings: Vec::new() };
    let path = event_log::events_path(logs, id);
    let Ok(bytes) = std::fs::read(&path) else {
        r.add("events.jsonl", None, "missing or unreadable");
        return r.findings;
    };
    let events = check_log(&mut r, &bytes);
    check_artefacts(&mut r, logs, id);
    if events.is_some() {
        scan_for_keys(&mut r, &logs.join(id.as_str()), "");
    }
    r.findings
}

fn check_log(r: &mut Report, bytes: &[u8]) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    if !text.is_empty() && !text.ends_with('\n') {
        r.add("events.jsonl", Some(text.lines().count()), "the last line is torn (no newline)");
    }
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push((i + 1, e)),
            Err(e) => r.add("events.jsonl", Some(i + 1), format!("not a valid event: {e}")),
        }
    }
    let Some((_, first)) = events.first() else {
        r.add("events.jsonl", None, "no events");
        return None;
    };
    let EventBody::SessionOpen { participants, config, .. } = &first.body else {
        r.add("events.jsonl", Some(1), "the first event is not session-open");
        return None;
    };
    let real_provider = config.provider != "rehearsal";
    let mut on_stage: BTreeSet<CharacterId> = participants.iter().map(|c| c.id.clone()).collect();
    let mut turn_cast: BTreeSet<CharacterId> = BTreeSet::new();
    let mut open: Option<u32> = None;
    // Whether the open turn has started (taken all its floor lines).
    let mut started = false;
    let mut expected = 1;
    for (line, e) in &events {
        let line = Some(*line);
        if e.seq != expected {
            r.add("events.jsonl", line, format!("seq {} where {expected} was expected", e.seq));
        }
        expected = e.seq + 1;
        match &e.body {
            EventBody::HumanSpeak { .. } => {
                // A room's several lines of one turn come before its start.
                if let Some(t) = open.filter(|t| *t != e.turn || started) {
                    r.add("events.jsonl", line, format!("the floor speaks while turn {t} is still open"));
                }
                open = Some(e.turn);
                started = false;
            }
            EventBody::TurnStart { cast, .. } => {
                started = true;
                if open != Some(e.turn) {
                    r.add("events.jsonl", line, format!("turn {} starts without the floor's line", e.turn));
                }
                open = Some(e.turn);
                turn_cast = cast.iter().cloned().collect();
                if turn_cast != on_stage {
                    r.add(
                        "events.jsonl",
                        line,
                        format!("turn {}'s cast {:?} is not who is on stage {:?}", e.turn, turn_cast, on_stage),
                    );
                }
            }
            EventBody::Deliberation { speaker, .. }
            | EventBody::Speak { speaker, .. }
            | EventBody::Pass { speaker } => {
                if open != Some(e.turn) {
                    r.add("events.jsonl", line, format!("{} outside an open turn", e.body.kind()));
                }
                if !turn_cast.contains(speaker) {
                    r.add(
                        "events.jsonl",
                        line,
                        format!("{speaker} {} but is not on stage in turn {}", e.body.kind(), e.turn),
                    );
                }
            }
            EventBody::TurnEnd { provenance, .. } if real_provider => {
                if let Some(missing) = missing_provenance(provenance.as_deref()) {
                    r.add("events.jsonl", line, format!("turn {} does not record {missing}", e.turn));
                }
                if open.is_none() {
                    r.add("events.jsonl", line, "turn-end closes no open turn");
                }
                open = None;
            }
            EventBody::TurnEnd { .. } | EventBody::TurnAborted { .. } => {
                if open.is_none() {
                    r.add("events.jsonl", line, format!("{} closes no open turn", e.body.kind()));
                }
                open = None;
            }
            EventBody::Join { character, .. } => {
                if open.is_some() {
                    r.add("events.jsonl", line, format!("{character} joins mid-turn"));
                }
                if !on_stage.insert(character.clone()) {
                    r.add("events.jsonl", line, format!("{character} joins but is already on stage"));
                }
            }
            EventBody::Leave { character, .. } => {
                if open.is_some() {
                    r.add("events.jsonl", line, format!("{character} leaves mid-turn"));
                }
                if !on_stage.remove(character) {
                    r.add("events.jsonl", line, format!("{character} leaves but is not on stage"));
                }
                if on_stage.is_empty() {
                    r.add("events.jsonl", line, "nobody is left on stage");
                }
            }
            EventBody::SessionOpen { .. } if e.seq != 1 => r.add("events.jsonl", line, "a second session-open"),
            _ => {}
        }
    }
    if let Some(t) = open {
        r.add("events.jsonl", None, format!("turn {t} is never closed"));
    }
    Some(events.into_iter().map(|(_, e)| e).collect())
}

/// What a real provider's finished turn must record of what produced it,
/// or `None` if it records it all.
fn missing_provenance(p: Option<&crate::event::Provenance>) -> Option<&'static str> {
    let Some(p) = p else { return Some("its provenance") };
    if p.request_id.as_deref().is_none_or(str::is_empty) {
        return Some("the provider's request id");
    }
    if p.reported_model.as_deref().is_none_or(str::is_empty) {
        return Some("the model id the provider reported");
    }
    if p.stop_reason.as_deref().is_none_or(str::is_empty) {
        return Some("its stop reason");
    }
    if p.prefix_hash.is_empty() || p.duration_ms <= 0.0 {
        return Some("its prompt's prefix hash and timings");
    }
    None
}

fn check_artefacts(r: &mut Report, logs: &Path, id: &SessionId) {
    let Ok(events) = event_log::read(logs, id) else { return };
    let Some(manifest) = record::manifest(&events) else { return };
    let dir = logs.join(id.as_str());
    if manifest.closed.is_none() {
        return;
    }
    let Some(expected) = record::artefacts(&events) else { return };
    match std::fs::read_to_string(dir.join("session.json")) {
        Err(_) => r.add("session.json", None, "missing for a closed session"),
        Ok(found) if found != expected.manifest => {
            let found: Value = serde_json::from_str(&found).unwrap_or(Value::Null);
            let want: Value = serde_json::from_str(&expected.manifest).unwrap_or(Value::Null);
            let costs: f64 =
                events.iter().filter_map(|l| if let EventBody::Cost(c) = &l.event.body { c.usd } else { None }).sum();
            if found["participants"] != want["participants"] {
                r.add("session.json", None, "participants[] disagree with the join and leave events");
            }
            if found["totals"] != want["totals"] {
                r.add(
                    "session.json",
                    None,
                    format!(
                        "totals differ from the sum of the cost events (usd {} in the file, {costs:.6} in the log)",
                        found["totals"]["usd"]
                    ),
                );
            }
            for key in ["id", "title", "created", "closed", "model", "provider", "format", "templates", "events"] {
                if found[key] != want[key] {
                    r.add("session.json", None, format!("{key} is {} but the log says {}", found[key], want[key]));
                }
            }
            if found == want {
                r.add("session.json", None, "not byte-identical to what the log gives (run panel rebuild)");
            }
        }
        Ok(_) => {}
    }
    match std::fs::read_to_string(dir.join("transcript.md")) {
        Err(_) => r.add("transcript.md", None, "missing for a closed session"),
        Ok(found) if found != expected.transcript => {
            let line = found.lines().zip(expected.transcript.lines()).position(|(a, b)| a != b).map(|i| i + 1);
            r.add("transcript.md", line, "disagrees with the log");
        }
        Ok(_) => {}
    }
    let index: Value = std::fs::read_to_string(logs.join("index.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let entry = index["sessions"].as_array().and_then(|s| s.iter().find(|e| e["id"] == id.as_str()));
    match entry {
        None => r.add("../index.json", None, "has no entry for this closed session"),
        Some(e) => {
            let want = serde_json::json!({
                "turns": manifest.totals.sum.turns,
                "usd": manifest.totals.sum.usd,
                "title": manifest.title,
                "cast": manifest.participants.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            });
            for key in ["turns", "usd", "title", "cast"] {
                if e[key] != want[key] {
                    r.add("../index.json", None, format!("its {key} is {} but the log says {}", e[key], want[key]));
                }
            }
        }
    }
}

/// Flags anything shaped like a secret key: `sk-…` / `sk-ant-…` or a bearer
/// token with a long run of key characters.
fn scan_for_keys(r: &mut Report, dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            scan_for_keys(r, &path, &format!("{name}/"));
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if looks_like_key(line) {
                r.add(&name, Some(i + 1), "holds something that looks like an API key");
            }
        }
    }
}

pub fn looks_like_key(text: &str) -> bool {
    let key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    ["sk-", "Bearer "].iter().any(|marker| {
        text.match_indices(marker).any(|(at, _)| {
            let before_ok = at == 0 || !text[..at].ends_with(key_char);
            before_ok && text[at + marker.len()..].chars().take_while(|c| key_char(*c)).count() >= 20
        })
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_key;

    #[test]
    fn key_shapes_are_recognised_and_ordinary_text_is_not() {
        assert!(looks_like_key("x sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAA y"));
        assert!(looks_like_key("Authorization: Bearer abcdefghijklmnopqrstuvwxyz"));
        assert!(!looks_like_key("a task-oriented sk- prefix, short"));
        assert!(!looks_like_key("risk-averse-and-very-cautious-thinking-here"));
    }
}
