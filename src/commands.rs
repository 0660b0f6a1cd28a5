//! The commands besides `serve`: closing sessions offline, rebuilding and
//! auditing artefacts, and exporting a static site.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use panel_actors::audit;
use panel_actors::event_log::LogWriter;
use panel_actors::id::SessionId;
use panel_actors::model_client::ModelClient;
use panel_actors::pricing::Pricing;
use panel_actors::provider::Provider;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::record;
use panel_actors::roster::{Library, Roster};
use panel_actors::session::{Close, Session, SessionDeps};
use panel_actors::templates::{Renderer, Templates};

use crate::config::{AuditArgs, CloseArgs, ExportArgs, LogsArg};

fn ids(raw: &[String]) -> anyhow::Result<Vec<SessionId>> {
    raw.iter().map(|s| SessionId::parse(s).map_err(anyhow::Error::from)).collect()
}

/// Closes sessions straight from their logs (for sessions no server is
/// serving: with a server running, use its close route instead).
pub fn close(args: CloseArgs) -> anyhow::Result<ExitCode> {
    let logs = args.logs.logs.clone();
    let ids = ids(&args.ids)?;
    actix::System::new().block_on(async move {
        let roster = Roster::load(&args.roster.join("characters"))?;
        let prompts = args.roster.join("prompts");
        // No turn runs while closing; the rehearsal engine only fills the slot.
        let provider = Rehearsal::load(&prompts, Duration::ZERO)?;
        let renderer = Arc::new(Renderer::new(Templates::load(&prompts)?)?);
        let info = provider.info();
        let model = ModelClient::new(Box::new(provider)).start();
        let deps = SessionDeps {
            pricing: Arc::new(Pricing::load(&args.roster.join("pricing.toml"))?),
            ..SessionDeps::new(logs.clone(), Library::fixed(roster), renderer, model, info, LogWriter::start(1, None))
        };
        for id in ids {
            let session =
                Session::open(deps.clone(), id.clone(), None).with_context(|| format!("cannot open session {id}"))?;
            if session.info().closed {
                println!("{id}: already closed");
            } else {
                let totals = session.start().send(Close).await??;
                println!("{id}: closed after {} turns, ${:.4}", totals.turns, totals.usd);
            }
            record::write_session(&logs, &id)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rebuild(args: LogsArg) -> anyhow::Result<ExitCode> {
    let done = record::rebuild(&args.logs)?;
    println!("rebuilt {} closed session(s) and {}", done.sessions.len(), args.logs.join("index.json").display());
    for (id, problem) in &done.problems {
        eprintln!("skipped {id}: {problem}");
    }
    Ok(if done.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let ids = if args.all || args.ids.is_empty() { record::session_ids(&args.logs.logs) } else { ids(&args.ids)? };
    let mut failed = 0;
    for id in &ids {
        let findings = audit::audit(&args.logs.logs, id);
        if findings.is_empty() {
            println!("ok    {id}");
        } else {
            failed += 1;
            println!("FAIL  {id}");
            for f in findings {
                println!("      {f}");
            }
        }
    }
    println!("{} session(s) audited, {failed} with problems", ids.len());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The viewer's files, relative to the static folder.
const VIEWER: [&str; 7] =
    ["viewer.html", "app.css", "js/api.js", "js/dom.js", "js/library.js", "js/timeline.js", "js/viewer.js"];
/// A recorded session's files.
const SESSION_FILES: [&str; 3] = ["events.jsonl", "session.json", "transcript.md"];

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
    for file in VIEWER {
        copy(&args.static_dir.join(file), &out.join(file))?;
    }
    // The viewer is the site's front page too.
    copy(&args.static_dir.join("viewer.html"), &out.join("index.html"))?;
    for id in &chosen {
        let dir = out.join("logs").join(id.as_str());
        std::fs::create_dir_all(&dir)?;
        for file in SESSION_FILES {
            copy(&logs.join(id.as_str()).join(file), &dir.join(file))?;
        }
    }
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
        "exported {} session(s) to {} — serve that folder with any static file server",
        chosen.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}
