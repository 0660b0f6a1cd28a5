//! A recorded session's artefacts, derived from `events.jsonl` alone:
//! `session.json` (the manifest), `transcript.md`, and `logs/index.json`
//! (every closed session). The same log always gives the same bytes, so
//! `panel rebuild` can regenerate them and `panel audit` can check them.
//! Every file is written atomically: a temporary file, then a rename.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::event::{Event, EventBody, Logged, Parent, StudyTag, Timestamp, Totals};
use crate::event_log::{self, LogError};
use crate::id::{CharacterId, SessionId};

mod transcript;
pub use transcript::transcript;

/// One character's part in a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub id: CharacterId,
    pub name: String,
    pub tagline: String,
    pub colour: String,
    /// Turns they joined at (0: the starting cast).
    pub joined: Vec<u32>,
    /// Turns they left at.
    pub left: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ManifestTotals {
    #[serde(flatten)]
    pub sum: Totals,
    /// Cache reads over all input tokens (0–1).
    pub cache_read_share: f64,
}

/// `session.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub id: SessionId,
    pub title: String,
    pub created: Timestamp,
    pub closed: Option<Timestamp>,
    pub model: String,
    pub provider: String,
    /// The output format's version, from `roster/prompts/panel.toml`.
    pub format: String,
    /// A hash of the exact templates the session ran with.
    pub templates: String,
    pub participants: Vec<Part>,
    pub totals: ManifestTotals,
    pub events: u64,
    /// The session this one continues or branches from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    /// The sampling seed the session ran with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The study, condition and repeat a study's session plays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study: Option<StudyTag>,
}

/// One line of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IndexEntry {
    pub id: SessionId,
    pub title: String,
    pub created: Timestamp,
    pub closed: Option<Timestamp>,
    pub model: String,
    pub cast: Vec<String>,
    pub turns: u32,
    pub usd: f64,
    /// The session this one continues or branches from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<StudyTag>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{0}: the log does not start with session-open")]
    NoOpen(SessionId),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The manifest of a session, from its events.
pub fn manifest(events: &[Arc<Logged>]) -> Option<Manifest> {
    let first = &events.first()?.event;
    let EventBody::SessionOpen { config, model, participants, templates, parent, study, .. } = &first.body else {
        return None;
    };
    let mut parts: Vec<Part> = participants
        .iter()
        .map(|c| Part {
            id: c.id.clone(),
            name: c.name.clone(),
            tagline: c.tagline.clone(),
            colour: c.colour.clone(),
            joined: vec![0],
            left: vec![],
        })
        .collect();
    let mut totals = ManifestTotals::default();
    let mut closed = None;
    for Event { turn, body, ts, .. } in events.iter().map(|l| &l.event) {
        match body {
            EventBody::Join { character, materials } => match parts.iter_mut().find(|p| p.id == *character) {
                Some(p) => p.joined.push(*turn),
                None => {
                    let m = materials.as_ref();
                    parts.push(Part {
                        id: character.clone(),
                        name: m.map_or_else(|| character.to_string(), |m| m.name.clone()),
                        tagline: m.map(|m| m.tagline.clone()).unwrap_or_default(),
                        colour: m.map_or_else(|| "#888888".into(), |m| m.colour.clone()),
                        joined: vec![*turn],
                        left: vec![],
                    })
                }
            },
            EventBody::Leave { character, .. } => {
                if let Some(p) = parts.iter_mut().find(|p| p.id == *character) {
                    p.left.push(*turn);
                }
            }
            EventBody::TurnStart { .. } => totals.sum.turns = totals.sum.turns.max(*turn),
            // Turns and keep-warm pings: everything that was spent.
            EventBody::Cost(_) | EventBody::KeepWarm { .. } => totals.sum.add_event(body),
            EventBody::SessionClose { .. } => closed = Some(*ts),
            _ => {}
        }
    }
    let t = &mut totals.sum;
    let all_input = t.input + t.cache_write + t.cache_read;
    t.usd = round(t.usd, 6);
    totals.cache_read_share =
        if all_input == 0 { 0.0 } else { round(totals.sum.cache_read as f64 / all_input as f64, 4) };
    let template_hash = {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_string(templates).unwrap_or_default();
        format!("{:x}", Sha256::digest(json.as_bytes()))[..16].to_owned()
    };
    Some(Manifest {
        id: first.session.clone(),
        title: config.title.clone(),
        created: first.ts,
        closed,
        model: model.clone(),
        provider: config.provider.clone(),
        format: templates.version.clone(),
        templates: template_hash,
        participants: parts,
        totals,
        events: events.len() as u64,
        parent: parent.clone(),
        seed: config.seed,
        study: study.clone(),
    })
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `index.json` for the closed sessions in `logs`, newest first, with the
/// logs that could not be read (they are left out, not fatal).
pub fn index(logs: &Path) -> (String, Vec<(SessionId, RecordError)>) {
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for id in session_ids(logs) {
        match event_log::read(logs, &id) {
            Ok(events) => manifests.extend(manifest(&events)),
            Err(e) => problems.push((id, e.into())),
        }
    }
    (index_of(manifests), problems)
}

/// One closing at a time rewrites `index.json`: it is read, changed and
/// written back, and two at once would lose one's entry.
static INDEX: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Puts one session's entry into `index.json`, leaving the others as they
/// are: closing a session costs the same however many are recorded. An index
/// that is missing or unreadable is rebuilt from every log instead.
pub fn update_index(logs: &Path, m: &Manifest) -> Result<(), RecordError> {
    let _one_at_a_time = INDEX.lock().unwrap_or_else(|e| e.into_inner());
    let path = logs.join("index.json");
    let current: Option<Vec<IndexEntry>> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<IndexFile>(&text).ok())
        .map(|f| f.sessions);
    let Some(mut entries) = current else {
        let (text, problems) = index(logs);
        for (id, e) in problems {
            log::warn!("index.json: left out session {id}, whose log cannot be read: {e}");
        }
        return write_atomic(&path, &text);
    };
    entries.retain(|e| e.id != m.id);
    entries.extend(entry_of(m.clone()));
    write_atomic(&path, &index_text(entries))
}

#[derive(serde::Deserialize)]
struct IndexFile {
    sessions: Vec<IndexEntry>,
}

fn entry_of(m: Manifest) -> Option<IndexEntry> {
    m.closed?;
    let cast = m.participants.iter().map(|p| p.name.clone()).collect();
    Some(IndexEntry {
        id: m.id,
        title: m.title,
        created: m.created,
        closed: m.closed,
        model: m.model,
        cast,
        turns: m.totals.sum.turns,
        usd: m.totals.sum.usd,
        parent: m.parent,
        study: m.study,
    })
}

fn index_text(mut entries: Vec<IndexEntry>) -> String {
    entries.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    pretty(&serde_json::json!({ "sessions": entries }))
}

/// `index.json` for the closed sessions among `manifests`, newest first.
fn index_of(manifests: Vec<Manifest>) -> String {
    index_text(manifests.into_iter().filter_map(entry_of).collect())
}

/// Every session folder under `logs` that has a log, sorted.
pub fn session_ids(logs: &Path) -> Vec<SessionId> {
    event_log::recovery::session_ids(logs)
}

fn pretty(value: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// The three artefacts of one session, as bytes.
pub struct Artefacts {
    pub manifest: String,
    pub transcript: String,
}

pub fn artefacts(events: &[Arc<Logged>]) -> Option<Artefacts> {
    Some(Artefacts { manifest: pretty(&manifest(events)?), transcript: transcript(events)? })
}

/// Writes `session.json` and `transcript.md` for `id`, then its entry in
/// `index.json`. Reads this session's log only.
pub fn write_session(logs: &Path, id: &SessionId) -> Result<(), RecordError> {
    let events = event_log::read(logs, id)?;
    write_artefacts(logs, id, &events)?;
    let m = manifest(&events).ok_or_else(|| RecordError::NoOpen(id.clone()))?;
    update_index(logs, &m)
}

fn write_artefacts(logs: &Path, id: &SessionId, events: &[Arc<Logged>]) -> Result<(), RecordError> {
    let a = artefacts(events).ok_or_else(|| RecordError::NoOpen(id.clone()))?;
    let dir = logs.join(id.as_str());
    write_atomic(&dir.join("session.json"), &a.manifest)?;
    // The figures the viewer's Dynamics view reads, offline and in exports.
    let plain: Vec<Event> = events.iter().map(|l| l.event.clone()).collect();
    write_atomic(&dir.join("dynamics.json"), &pretty(&crate::dynamics::compute(&plain)))?;
    write_atomic(&dir.join("transcript.md"), &a.transcript)
}

/// What [`rebuild`] did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub sessions: Vec<SessionId>,
    /// Logs that could not be read: left out of the index, reported here.
    pub problems: Vec<(SessionId, RecordError)>,
}

/// Regenerates every closed session's artefacts and the index. A log that
/// cannot be read is skipped and reported; the others are rebuilt.
pub fn rebuild(logs: &Path) -> Result<Rebuilt, RecordError> {
    let mut done = Rebuilt::default();
    let mut manifests = Vec::new();
    for id in session_ids(logs) {
        let events = match event_log::read(logs, &id) {
            Ok(events) => events,
            Err(e) => {
                done.problems.push((id, e.into()));
                continue;
            }
        };
        let Some(m) = manifest(&events) else {
            done.problems.push((id.clone(), RecordError::NoOpen(id)));
            continue;
        };
        if m.closed.is_some() {
            write_artefacts(logs, &id, &events)?;
            done.sessions.push(id);
        }
        manifests.push(m);
    }
    // Each log is read once: the index comes from the manifests just made.
    write_atomic(&logs.join("index.json"), &index_of(manifests))?;
    Ok(done)
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// reader sees the old file or the new one, never half of one. Each call
/// has a temporary name of its own, so two writes at once never share one.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), RecordError> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = |source| RecordError::Io { path: path.to_owned(), source };
    let nth = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{nth}", std::process::id()));
    let written = (|| {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // Nothing half-written is left behind (there may be nothing to remove).
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}
