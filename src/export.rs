//! `panel export`: closed sessions as a static site — the viewer, the
//! sessions' files, the avatars they show, and the studies they belong to
//! (`logs/studies/<id>/`, for the study page and the grouped list) — that
//! any static host serves. Only relative URLs are used, so the folder can
//! be published anywhere. The viewer comes from the binary (see
//! `crate::assets`), or from the `--static` folder when one is given.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use panel_actors::id::SessionId;
use panel_actors::record;
use panel_actors::roster::write::is_avatar_name;

use crate::assets;
use crate::commands::ids;
use crate::config::ExportArgs;

/// The viewer's files, relative to the browser app's folder.
const VIEWER: [&str; 23] = [
    "viewer.html",
    "app.css",
    "js/api.js",
    "js/dom.js",
    "js/library.js",
    "js/timeline.js",
    "js/window.js",
    "js/search.js",
    "js/viewer.js",
    "js/replays.js",
    "js/dynamics.js",
    "js/recorded.js",
    "js/comparison.js",
    "js/compare.js",
    "js/study.js",
    "vendor/vega.min.js",
    "vendor/vega-lite.min.js",
    "vendor/vega-embed.min.js",
    "vendor/LICENSE.vega-lite",
    "vendor/LICENSE.vega-embed",
    "vendor/diff.min.js",
    "vendor/LICENSE.diff",
    "vendor/README.md",
];
/// A recorded session's files.
const SESSION_FILES: [&str; 4] = ["events.jsonl", "session.json", "transcript.md", "dynamics.json"];
/// A study's files; `report.json` is absent until the study has finished.
const STUDY_FILES: [&str; 2] = ["study.json", "report.json"];

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let logs = &args.logs.logs;
    let rebuilt = record::rebuild(logs)?;
    for (id, problem) in &rebuilt.problems {
        eprintln!("skipped {id}: {problem}");
    }
    let closed: Vec<SessionId> = record::session_ids(logs)
        .into_iter()
        .filter(|id| logs.join(id.as_str()).join("session.json").exists())
        .collect();
    let chosen = if args.ids.is_empty() { closed.clone() } else { ids(&args.ids)? };
    for id in &chosen {
        anyhow::ensure!(closed.contains(id), "session {id} is not closed (or does not exist); close it first");
    }
    let out = &args.out;
    std::fs::create_dir_all(out.join("js"))?;
    std::fs::create_dir_all(out.join("vendor"))?;
    // The viewer is the site's front page too.
    for (file, to) in VIEWER.iter().map(|f| (*f, *f)).chain([("viewer.html", "index.html")]) {
        match &args.static_dir {
            Some(dir) => copy(&dir.join(file), &out.join(to))?,
            None => {
                let asset = assets::app_file(file).with_context(|| format!("the built-in app has no {file}"))?;
                let to = out.join(to);
                std::fs::write(&to, &asset.bytes).with_context(|| format!("cannot write {}", to.display()))?;
            }
        }
    }
    for id in &chosen {
        let dir = out.join("logs").join(id.as_str());
        std::fs::create_dir_all(&dir)?;
        for file in SESSION_FILES {
            copy(&logs.join(id.as_str()).join(file), &dir.join(file))?;
        }
        copy_replays(&logs.join(id.as_str()).join("replays"), &dir.join("replays"))?;
    }
    let studies = copy_studies(logs, &chosen, &out.join("logs").join("studies"))?;
    let avatars = copy_avatars(&args.roster.join("characters"), logs, &chosen, &out.join("avatars"))?;
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(logs.join("index.json"))?)?;
    let sessions: Vec<&serde_json::Value> = index["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| chosen.iter().any(|id| s["id"] == id.as_str()))
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "sessions": sessions }))?;
    text.push('\n');
    record::write_atomic(&out.join("logs").join("index.json"), &text)?;
    println!(
        "exported {} session(s), {studies} study folder(s) and {avatars} avatar(s) to {} — serve that folder with any static file server",
        chosen.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Copies a session's replays (their logs and index), when it has any:
/// they are part of what was learned from it.
fn copy_replays(from: &Path, to: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    std::fs::create_dir_all(to)?;
    for entry in entries {
        let name = entry?.file_name();
        let shown = name.to_string_lossy();
        // Only what panel writes there; never a temporary file.
        if shown == "index.json" || (shown.ends_with(".jsonl") && !shown.starts_with('.')) {
            copy(&from.join(&name), &to.join(&name))?;
        }
    }
    Ok(())
}

/// Copies the folders of the studies the chosen sessions belong to (their
/// `study` tag, as session.json records it) from `logs/studies/` into `to`.
/// A study whose folder is gone is skipped: its sessions still show, only
/// its page is missing. Answers how many were copied.
fn copy_studies(logs: &Path, chosen: &[SessionId], to: &Path) -> anyhow::Result<usize> {
    let mut ids = std::collections::BTreeSet::new();
    for id in chosen {
        let path = logs.join(id.as_str()).join("session.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read session {id}'s manifest"))?;
        let manifest: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("session {id}'s manifest"))?;
        // The id becomes a path: only the shape panel study gives ids.
        if let Some(study) = manifest["study"]["id"].as_str().filter(|s| is_study_id(s)) {
            ids.insert(study.to_owned());
        }
    }
    let mut copied = 0;
    for study in ids {
        let from = logs.join("studies").join(&study);
        if !from.join("study.json").is_file() {
            continue;
        }
        let dir = to.join(&study);
        std::fs::create_dir_all(&dir)?;
        for file in STUDY_FILES.iter().filter(|f| from.join(f).is_file()) {
            copy(&from.join(file), &dir.join(file))?;
        }
        copied += 1;
    }
    Ok(copied)
}

fn is_study_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Copies the avatars the chosen sessions show (their starting cast's and
/// every joiner's, as the log recorded them) from the roster into `to`, so
/// the exported viewer shows faces without panel's API. An avatar since
/// removed from the roster is skipped: the viewer falls back to the
/// character's colour. Answers how many were copied.
fn copy_avatars(characters: &Path, logs: &Path, chosen: &[SessionId], to: &Path) -> anyhow::Result<usize> {
    let mut names = std::collections::BTreeSet::new();
    for id in chosen {
        let path = logs.join(id.as_str()).join("events.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let shown = match event["kind"].as_str() {
                Some("session-open") => event["participants"].as_array().cloned().unwrap_or_default(),
                Some("join") => vec![event["materials"].clone()],
                _ => continue,
            };
            // The name was checked when the character was loaded; checked
            // again here because it becomes a path.
            names.extend(
                shown.iter().filter_map(|c| c["avatar"].as_str()).filter(|a| is_avatar_name(a)).map(str::to_owned),
            );
        }
    }
    let mut copied = 0;
    for name in names {
        let from = characters.join(&name);
        if from.is_file() {
            std::fs::create_dir_all(to)?;
            copy(&from, &to.join(&name))?;
            copied += 1;
        }
    }
    Ok(copied)
}
